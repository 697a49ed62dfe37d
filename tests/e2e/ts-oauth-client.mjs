#!/usr/bin/env node
// MCP TypeScript SDK client that signs in with OAuth (authorization code + PKCE) on its own,
// for mcp-obo end-to-end tests.
//
// Usage (run with the project-local Node 22, see scripts/setup-test-tools.sh):
//   .tools/node22/bin/node tests/e2e/ts-oauth-client.mjs --url http://127.0.0.1:PORT/mcp \
//       [--tool HelloTool] [--print-token] [--redirect-url URL] [--timeout-ms 15000]
//
// Nothing is configured but the MCP URL: everything else is discovered the way the MCP
// authorization spec says, by the SDK's own auth() flow (sdk/client/auth.js) driven by
// StreamableHTTPClientTransport's `authProvider`:
//   POST MCP URL → 401 WWW-Authenticate: Bearer resource_metadata="…", scope="…"
//   → GET that RFC 9728 metadata → authorization_servers[0]
//   → GET its RFC 8414 / OIDC metadata → dynamic client registration (RFC 7591)
//   → authorization request (PKCE S256, RFC 8707 resource = the metadata's resource)
//   → redirectToAuthorization(url), here followed headlessly (below)
//   → transport.finishAuth(code): token request → reconnect with the token.
// Then it lists tools and calls --tool with no arguments ('' skips the call).
//
// Headless sign-in: redirectToAuthorization() plays the browser. It GETs the authorization
// URL and follows every redirect by hand (redirect: 'manual'), keeping cookies in a small
// path-aware jar, until the authorization server redirects to --redirect-url (a loopback URL
// nobody listens on; it is never requested). The authorization server's interaction pages
// must complete sign-in and consent by redirecting (tests/e2e/oidc-provider-server.mjs does).
// The code, state (checked) and iss (RFC 9207, checked against the discovered issuer) are
// taken from that final Location.
//
// Prints ONE JSON line to stdout and exits 0:
//   {"tools": [...], "call": {...} | null, "authorizationServer": "...", "resource": "...",
//    "accessTokenClaims": {...}, "steps": [...], "accessToken": "..." (only --print-token)}
// "steps" lists every HTTP exchange in order as {step, method, url, status, ...}; step is one
// of mcp, protected-resource-metadata, authorization-server-metadata, registration,
// authorize (the authorization endpoint), interaction (any other authorization-server page
// met while following redirects), callback (the final redirect to --redirect-url), token.
// Codes, tokens and secrets are never printed in steps.
// A CallToolResult with "isError": true is still printed with exit code 0 - callers check it.
// On any error prints {"error": "...", "steps": [...]} on one line to stdout and exits 1.

import { randomBytes } from 'node:crypto';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { MemoryOAuthProvider } from './memory-oauth-provider.mjs';

for (const level of ['log', 'info', 'debug', 'warn']) {
  console[level] = (...args) => console.error(...args);
}

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const steps = [];

function fail(err) {
  let msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause) msg += ` (cause: ${cause.code ?? ''}${cause.code ? ' ' : ''}${cause.message ?? String(cause)})`;
  out({ error: msg, steps });
  process.exit(1);
}

function parseArgs(argv) {
  const opts = {
    tool: 'HelloTool',
    timeoutMs: 15000,
    printToken: false,
    redirectUrl: 'http://127.0.0.1:9/mcp-obo-e2e/oauth/callback',
  };
  const known = { '--url': 'url', '--tool': 'tool', '--timeout-ms': 'timeoutMs', '--redirect-url': 'redirectUrl' };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    if (a === '--print-token') {
      opts.printToken = true;
      continue;
    }
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

/** `Bearer a="b", c=d` → {a: 'b', c: 'd'} (enough for the challenges servers send). */
function challengeParams(header) {
  const params = {};
  if (!header) return params;
  const re = /([a-zA-Z_][\w-]*)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g;
  for (const m of header.matchAll(re)) params[m[1]] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3];
  return params;
}

/** The URL without query or fragment (they may carry codes). */
function bare(url) {
  const u = new URL(url);
  u.search = '';
  u.hash = '';
  return u.href;
}

function decodeJwtPayload(jwt) {
  const part = String(jwt).split('.')[1];
  if (!part) return null;
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
}

/** What the SDK fetches, classified and recorded; the authorization server's endpoints are learnt from its metadata. */
class StepRecorder {
  constructor(mcpUrl) {
    this.mcpUrl = new URL(mcpUrl).href;
    this.asMetadata = undefined;
  }

  fetch() {
    return async (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
      const res = await fetch(input, init);
      await this.record(method, url, init, res);
      return res;
    };
  }

  async record(method, url, init, res) {
    const step = { step: 'other', method, url: bare(url), status: res.status };
    const path = url.pathname;
    const meta = this.asMetadata;
    if (bare(url) === bare(this.mcpUrl)) {
      step.step = 'mcp';
      try {
        const body = typeof init?.body === 'string' ? JSON.parse(init.body) : undefined;
        if (body?.method) step.rpcMethod = body.method;
      } catch {
        // not JSON: leave it out
      }
      const challenge = res.headers.get('www-authenticate');
      if (challenge) {
        step.wwwAuthenticate = challenge;
        const p = challengeParams(challenge);
        if (p.resource_metadata) step.resourceMetadata = p.resource_metadata;
        if (p.scope) step.scope = p.scope;
      }
    } else if (path.startsWith('/.well-known/oauth-protected-resource')) {
      step.step = 'protected-resource-metadata';
      if (res.ok) {
        const doc = await res.clone().json().catch(() => undefined);
        step.resource = doc?.resource;
        step.authorizationServers = doc?.authorization_servers;
      }
    } else if (path.startsWith('/.well-known/oauth-authorization-server') || path.includes('/.well-known/openid-configuration')) {
      step.step = 'authorization-server-metadata';
      if (res.ok) {
        const doc = await res.clone().json().catch(() => undefined);
        if (doc) {
          this.asMetadata = doc;
          step.issuer = doc.issuer;
        }
      }
    } else if (meta && bare(url) === bare(meta.registration_endpoint ?? '')) {
      step.step = 'registration';
      if (res.ok) {
        const doc = await res.clone().json().catch(() => undefined);
        step.clientId = doc?.client_id;
        step.tokenEndpointAuthMethod = doc?.token_endpoint_auth_method;
      }
    } else if (meta && bare(url) === bare(meta.token_endpoint ?? '')) {
      step.step = 'token';
      const form = new URLSearchParams(init?.body instanceof URLSearchParams ? init.body : String(init?.body ?? ''));
      step.grantType = form.get('grant_type');
      step.resource = form.get('resource') ?? undefined;
      step.pkce = form.has('code_verifier');
    }
    steps.push(step);
  }
}

/** An in-memory OAuthClientProvider (sdk/client/auth.d.ts) whose "browser" follows redirects headlessly. */
class HeadlessOAuthProvider extends MemoryOAuthProvider {
  constructor({ redirectUrl, timeoutMs }) {
    super({ redirectUrl, timeoutMs });
  }

  get clientMetadata() {
    return {
      client_name: 'mcp-obo e2e TypeScript SDK client',
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      // A native (CLI) app with a loopback redirect, RFC 8252.
      application_type: 'native',
    };
  }

  /** The user agent: follow redirects (with cookies) until the authorization server sends us to redirectUrl. */
  async redirectToAuthorization(authorizationUrl) {
    const redirect = new URL(this._redirectUrl);
    const jar = new CookieJar();
    let url = new URL(authorizationUrl);
    const authorizeEndpoint = bare(url);
    for (let hop = 0; hop < 20; hop++) {
      if (url.origin === redirect.origin && url.pathname === redirect.pathname) {
        this.acceptCallback(url);
        return;
      }
      const headers = {};
      const cookie = jar.header(url);
      if (cookie) headers.cookie = cookie;
      const res = await fetch(url, { redirect: 'manual', headers, signal: AbortSignal.timeout(this.timeoutMs) });
      steps.push({
        step: bare(url) === authorizeEndpoint && hop === 0 ? 'authorize' : 'interaction',
        method: 'GET',
        url: bare(url),
        status: res.status,
      });
      jar.store(url, res.headers.getSetCookie());
      const location = res.headers.get('location');
      if ([301, 302, 303, 307, 308].includes(res.status) && location) {
        await res.body?.cancel();
        url = new URL(location, url);
        continue;
      }
      const body = await res.text().catch(() => '');
      throw new Error(`sign-in stopped at ${bare(url)} with HTTP ${res.status}: ${body.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').slice(0, 400)}`);
    }
    throw new Error('sign-in did not reach the redirect URL within 20 redirects');
  }

  acceptCallback(url) {
    const q = url.searchParams;
    const issuer = this._discovery?.authorizationServerMetadata?.issuer;
    steps.push({
      step: 'callback',
      method: 'GET',
      url: bare(url),
      status: null,
      hasCode: q.has('code'),
      stateMatches: q.get('state') === this._state,
      iss: q.get('iss') ?? undefined,
    });
    if (q.has('error')) throw new Error(`authorization failed: ${q.get('error')} ${q.get('error_description') ?? ''}`.trim());
    if (q.get('state') !== this._state) throw new Error('authorization response state does not match the request');
    // RFC 9207: when the server says it sends iss, it must be the issuer we discovered.
    if (q.has('iss') && issuer && q.get('iss') !== issuer) {
      throw new Error(`authorization response iss ${q.get('iss')} is not the discovered issuer ${issuer}`);
    }
    if (!q.get('code')) throw new Error('authorization response has no code');
    this.authorizationCode = q.get('code');
  }
}

/** Just enough of RFC 6265 for an authorization server's session and interaction cookies. */
class CookieJar {
  constructor() {
    this.cookies = new Map(); // `${path}\n${name}` -> {name, value, path}
  }

  store(requestUrl, setCookies) {
    for (const line of setCookies) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const dir = requestUrl.pathname.slice(0, requestUrl.pathname.lastIndexOf('/')) || '/';
      let path = dir;
      let expired = false;
      for (const attr of attrs) {
        const [k, ...rest] = attr.split('=');
        const key = k.trim().toLowerCase();
        const v = rest.join('=').trim();
        if (key === 'path' && v.startsWith('/')) path = v;
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      const id = `${path}\n${name}`;
      if (expired || value === '') this.cookies.delete(id);
      else this.cookies.set(id, { name, value, path });
    }
  }

  header(url) {
    const matches = [...this.cookies.values()].filter(
      (c) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`),
    );
    return matches.map((c) => `${c.name}=${c.value}`).join('; ');
  }
}

function newTransport(url, provider, recorder) {
  return new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: recorder.fetch() });
}

function newClient() {
  return new Client({ name: 'mcp-obo-e2e-ts-oauth-client', version: '0.0.0' }, { capabilities: {} });
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const watchdog = setTimeout(() => fail(new Error(`overall timeout after ${opts.timeoutMs * 3} ms`)), opts.timeoutMs * 3);
  watchdog.unref();

  const recorder = new StepRecorder(opts.url);
  const provider = new HeadlessOAuthProvider({ redirectUrl: opts.redirectUrl, timeoutMs: opts.timeoutMs });
  const reqOpts = { timeout: opts.timeoutMs };

  // First attempt: no token. The SDK meets the 401, discovers, registers, and "redirects"
  // (our headless follower runs inside that call), then gives up with UnauthorizedError.
  const first = newTransport(opts.url, provider, recorder);
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

  // Back from the "browser": the same transport exchanges the code (PKCE verifier, resource).
  await first.finishAuth(provider.authorizationCode);
  await firstClient.close().catch(() => {});
  const tokens = provider.tokens();
  if (!tokens?.access_token) throw new Error('no access token after finishAuth');

  // Reconnect, now with the token.
  const transport = newTransport(opts.url, provider, recorder);
  const client = newClient();
  try {
    await client.connect(transport, reqOpts);
    const tools = [];
    let cursor;
    for (let page = 0; ; page++) {
      if (page >= 100) throw new Error('tools/list: more than 100 pages');
      const res = await client.listTools(cursor ? { cursor } : undefined, reqOpts);
      tools.push(...res.tools);
      cursor = res.nextCursor;
      if (!cursor) break;
    }
    let call = null;
    if (opts.tool) {
      if (!tools.some((t) => t.name === opts.tool)) {
        throw new Error(`tool ${JSON.stringify(opts.tool)} not in tools/list (${tools.map((t) => t.name).join(', ')})`);
      }
      call = await client.callTool({ name: opts.tool, arguments: {} }, undefined, reqOpts);
    }
    const discovery = provider.discoveryState();
    const result = {
      tools,
      call,
      authorizationServer: discovery?.authorizationServerUrl,
      issuer: discovery?.authorizationServerMetadata?.issuer,
      resource: discovery?.resourceMetadata?.resource,
      clientId: provider.clientInformation()?.client_id,
      accessTokenClaims: decodeJwtPayload(tokens.access_token),
      steps,
    };
    if (opts.printToken) result.accessToken = tokens.access_token;
    out(result);
  } finally {
    clearTimeout(watchdog);
    if (transport.sessionId) await transport.terminateSession().catch(() => {});
    await client.close().catch(() => {});
  }
}

main().then(
  () => process.exit(0),
  (err) => fail(err),
);
