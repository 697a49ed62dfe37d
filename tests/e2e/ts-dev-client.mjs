#!/usr/bin/env node
// MCP TypeScript SDK client that signs in headlessly against `mcp-obo dev`'s development
// identity provider, for tests/it/dev_mode/sdk_clients.rs.
//
// Usage (run with the project-local Node 22, see scripts/setup-test-tools.sh):
//   .tools/node22/bin/node tests/e2e/ts-dev-client.mjs --url http://127.0.0.1:PORT/mcp \
//       [--user ada@contoso.dev] [--tool HelloTool] [--timeout-ms 15000]
//
// Only the MCP URL is configured. The SDK's own auth() flow (sdk/client/auth.js, driven by
// StreamableHTTPClientTransport's `authProvider`) does the rest: 401 → protected resource
// metadata → authorization server metadata → dynamic client registration → authorization
// request (PKCE S256, RFC 8707 resource) → redirectToAuthorization(url) →
// transport.finishAuth(code) → token request → reconnect with the token.
//
// redirectToAuthorization() plays the browser for the dev provider's sign-in page: it GETs
// the authorization URL (following plain redirects by hand), reads `<form id="signin">` (the
// request as hidden inputs, one `<button name="user">` per dev user), submits it for the user
// whose button mentions --user (default: the first), and takes code, state (checked) and
// iss (RFC 9207, checked against the discovered issuer; SDK 1.32 does not check it) from the
// 302 to --redirect-url, a loopback URL nobody listens on that is never requested.
// (tests/e2e/ts-oauth-client.mjs is the same client for oidc-provider's interaction pages,
// which complete by redirects; the dev provider's page needs a form POST.)
//
// Prints ONE JSON line to stdout and exits 0:
//   {"tools": ["HelloTool", ...], "call": {...CallToolResult...}, "user": "Name <email>",
//    "issuer": "...", "resource": "...", "clientId": "...", "accessTokenClaims": {...}}
// On any error prints {"error": "..."} on one line and exits 1. Bounded by 3 × --timeout-ms.

import { randomBytes } from 'node:crypto';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { MemoryOAuthProvider } from './memory-oauth-provider.mjs';

for (const level of ['log', 'info', 'debug', 'warn']) {
  console[level] = (...args) => console.error(...args);
}

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

function fail(err) {
  let msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause) msg += ` (cause: ${cause.code ?? ''}${cause.code ? ' ' : ''}${cause.message ?? String(cause)})`;
  out({ error: msg });
  process.exit(1);
}

function parseArgs(argv) {
  const opts = {
    tool: 'HelloTool',
    user: '',
    timeoutMs: 15000,
    redirectUrl: 'http://127.0.0.1:9/mcp-obo-e2e/ts-dev-client/callback',
  };
  const known = { '--url': 'url', '--user': 'user', '--tool': 'tool', '--timeout-ms': 'timeoutMs', '--redirect-url': 'redirectUrl' };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let v;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      v = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const key = known[a];
    if (!key) throw new Error(`unknown argument: ${a}`);
    if (v === undefined) {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
      v = argv[++i];
    }
    opts[key] = v;
  }
  if (!opts.url) throw new Error('--url is required');
  opts.timeoutMs = Number(opts.timeoutMs);
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) throw new Error('--timeout-ms must be a positive number');
  return opts;
}

function decodeJwtPayload(jwt) {
  try {
    return JSON.parse(Buffer.from(String(jwt).split('.')[1], 'base64url').toString('utf8'));
  } catch {
    return null;
  }
}

/** The character references an HTML escaper produces, and numeric ones. */
function unescapeHtml(s) {
  const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return Number.isFinite(cp) ? String.fromCodePoint(cp) : m;
    }
    return named[e.toLowerCase()] ?? m;
  });
}

/** `a="x" b='y' c=z` → {a: 'x', b: 'y', c: 'z'}, values unescaped, names lower-cased. */
function attributes(tag) {
  const attrs = {};
  const re = /([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g;
  for (const m of tag.matchAll(re)) attrs[m[1].toLowerCase()] = unescapeHtml(m[2] ?? m[3] ?? m[4] ?? '');
  return attrs;
}

/** `<form id="signin">`: method, action, hidden inputs and user buttons; null when absent. */
function signInForm(html) {
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const formAttrs = attributes(m[1]);
    if (formAttrs.id !== 'signin') continue;
    const hidden = [];
    for (const input of m[2].matchAll(/<input\b([^>]*)>/gi)) {
      const a = attributes(input[1]);
      if ((a.type ?? '').toLowerCase() === 'hidden' && a.name !== undefined) hidden.push([a.name, a.value ?? '']);
    }
    const users = [];
    for (const button of m[2].matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)) {
      const a = attributes(button[1]);
      if (a.name === 'user') users.push({ id: a.value ?? '', label: unescapeHtml(button[2].replace(/<[^>]*>/g, '').trim()) });
    }
    return { method: (formAttrs.method ?? 'get').toLowerCase(), action: formAttrs.action, hidden, users };
  }
  return null;
}

const plain = (html) => html.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300);

/** An in-memory OAuthClientProvider (sdk/client/auth.d.ts) whose "browser" fills in the dev sign-in form. */
class DevSignInProvider extends MemoryOAuthProvider {
  constructor({ redirectUrl, timeoutMs, user }) {
    super({ redirectUrl, timeoutMs });
    this.user = user;
    this.signedInAs = undefined;
  }

  get clientMetadata() {
    return {
      client_name: 'mcp-obo e2e TypeScript SDK client (dev)',
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    };
  }

  isCallback(url) {
    const redirect = new URL(this._redirectUrl);
    return url.origin === redirect.origin && url.pathname === redirect.pathname;
  }

  async redirectToAuthorization(authorizationUrl) {
    const signal = () => AbortSignal.timeout(this.timeoutMs);
    let url = new URL(authorizationUrl);
    let res;
    for (let hop = 0; ; hop++) {
      if (hop >= 10) throw new Error('the authorization endpoint redirected more than 10 times');
      if (this.isCallback(url)) return this.acceptCallback(url);
      res = await fetch(url, { redirect: 'manual', signal: signal() });
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel();
        url = new URL(location, url);
        continue;
      }
      break;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`sign-in page ${url.origin}${url.pathname} answered HTTP ${res.status}: ${plain(html)}`);
    const form = signInForm(html);
    if (!form) throw new Error(`no <form id="signin"> on ${url.origin}${url.pathname}: ${plain(html)}`);
    if (form.method !== 'post') throw new Error(`the sign-in form uses method ${form.method}, expected post`);
    const user = this.user ? form.users.find((u) => u.label.includes(this.user)) : form.users[0];
    if (!user) throw new Error(`no user ${JSON.stringify(this.user)} on the sign-in page (${form.users.map((u) => u.label).join(', ')})`);
    this.signedInAs = user.label;
    const target = form.action ? new URL(form.action, url) : url;
    const body = new URLSearchParams([...form.hidden, ['user', user.id]]);
    const posted = await fetch(target, { method: 'POST', body, redirect: 'manual', signal: signal() });
    const location = posted.headers.get('location');
    if (posted.status < 300 || posted.status >= 400 || !location) {
      throw new Error(`the sign-in POST answered HTTP ${posted.status}: ${plain(await posted.text().catch(() => ''))}`);
    }
    await posted.body?.cancel();
    const callback = new URL(location, target);
    if (!this.isCallback(callback)) throw new Error(`the sign-in POST redirected to ${callback.origin}${callback.pathname}, not to the redirect URL`);
    return this.acceptCallback(callback);
  }

  acceptCallback(url) {
    const q = url.searchParams;
    if (q.has('error')) throw new Error(`authorization failed: ${q.get('error')} ${q.get('error_description') ?? ''}`.trim());
    if (q.get('state') !== this._state) throw new Error('authorization response state does not match the request');
    const metadata = this._discovery?.authorizationServerMetadata;
    const issuer = metadata?.issuer;
    // RFC 9207: an advertised iss must come back, equal to the discovered issuer.
    if (q.has('iss') ? q.get('iss') !== issuer : metadata?.authorization_response_iss_parameter_supported) {
      throw new Error(`authorization response iss ${q.get('iss')} is not the discovered issuer ${issuer}`);
    }
    if (!q.get('code')) throw new Error('authorization response has no code');
    this.authorizationCode = q.get('code');
  }
}

const newTransport = (url, provider) => new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
const newClient = () => new Client({ name: 'mcp-obo-e2e-ts-dev-client', version: '0.0.0' }, { capabilities: {} });

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const watchdog = setTimeout(() => fail(new Error(`overall timeout after ${opts.timeoutMs * 3} ms`)), opts.timeoutMs * 3);
  watchdog.unref();
  const provider = new DevSignInProvider(opts);
  const reqOpts = { timeout: opts.timeoutMs };

  // Without a token: the SDK meets the 401, discovers, registers and "redirects" (the
  // headless sign-in runs inside that call), then gives up with UnauthorizedError.
  const first = newTransport(opts.url, provider);
  const firstClient = newClient();
  let connected = false;
  try {
    await firstClient.connect(first, reqOpts);
    connected = true;
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
  }
  if (connected) throw new Error('the server accepted the first request without a token');
  if (!provider.authorizationCode) throw new Error('the SDK never sent the user to authorize');
  await first.finishAuth(provider.authorizationCode);
  await firstClient.close().catch(() => {});
  const tokens = provider.tokens();
  if (!tokens?.access_token) throw new Error('no access token after finishAuth');

  const transport = newTransport(opts.url, provider);
  const client = newClient();
  try {
    await client.connect(transport, reqOpts);
    const tools = [];
    let cursor;
    for (let page = 0; ; page++) {
      if (page >= 100) throw new Error('tools/list: more than 100 pages');
      const res = await client.listTools(cursor ? { cursor } : undefined, reqOpts);
      tools.push(...res.tools.map((t) => t.name));
      cursor = res.nextCursor;
      if (!cursor) break;
    }
    const call = opts.tool ? await client.callTool({ name: opts.tool, arguments: {} }, undefined, reqOpts) : null;
    const discovery = provider.discoveryState();
    out({
      tools,
      call,
      user: provider.signedInAs,
      issuer: discovery?.authorizationServerMetadata?.issuer,
      resource: discovery?.resourceMetadata?.resource,
      clientId: provider.clientInformation()?.client_id,
      accessTokenClaims: decodeJwtPayload(tokens.access_token),
    });
  } finally {
    clearTimeout(watchdog);
    await client.close().catch(() => {});
  }
}

main().then(
  () => process.exit(0),
  (err) => fail(err),
);
