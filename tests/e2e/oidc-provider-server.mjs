#!/usr/bin/env node
// The npm `oidc-provider` authorization server as a test peer for mcp-obo end-to-end tests.
//
// Usage (run with the project-local Node 22, see scripts/setup-test-tools.sh):
//   .tools/node22/bin/node tests/e2e/oidc-provider-server.mjs \
//       --resource http://127.0.0.1:SERVERPORT/mcp --graph http://127.0.0.1:GRAPHPORT \
//       [--port 0]
//
// Listens on 127.0.0.1:--port (0, the default, picks a free port). When it accepts
// requests it prints ONE JSON line to stdout:
//   {"issuer": "http://127.0.0.1:PORT", "jwks_uri": "...", "token_endpoint": "...", ...}
// and then logs only to stderr. It runs until killed (SIGTERM/SIGINT close it cleanly).
//
// What it is configured as (oidc-provider 9.x):
// - issuer http://127.0.0.1:PORT. oidc-provider accepts any absolute http(s) issuer
//   (`isWebUri`); its cookies are only marked `secure` when the request is, so plain http on
//   loopback works for development and tests.
// - signing key: a fresh RS256 key generated at start (nothing committed), published at the
//   discovery document's jwks_uri as usual.
// - resourceIndicators (RFC 8707): the MCP resource (--resource) with scope `mcp:tools`, and
//   the Graph resource (--graph) with scope `User.Read`; both get JWT access tokens
//   (`typ: at+jwt`, `aud` = the resource, `scope`, `client_id`, `sub`, plus `name`,
//   `preferred_username` and `email` of the user via extraTokenClaims). A request without a
//   resource defaults to the MCP resource. Graph tokens are issued only by token exchange.
// - registration: open dynamic client registration (RFC 7591), as the MCP TypeScript SDK
//   registers itself. `mcp:tools` is a known scope so that the SDK's registration (which
//   carries the protected resource's scopes) is accepted.
// - PKCE (S256, the only method oidc-provider implements) required for every client.
// - devInteractions off. Instead /interaction/:uid is a headless login-and-consent page:
//   it signs in the fixed test user (account `kc-user-1`, "Kim Tester", kim@example.org)
//   and grants whatever scopes and resources the prompt asks for, answering 303 back to the
//   provider, so a client that just follows redirects ends at its redirect_uri with a code.
// - a confidential client `mcp-server` / `mcp-server-secret` (client_secret_post), allowed
//   only the RFC 8693 token-exchange grant registered below: the MCP server uses it to trade
//   the user's MCP token for a Graph token.

import * as http from 'node:http';
import { randomBytes } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify } from 'jose';

// Keep stdout for the single ready line: the library's notices go to stderr.
for (const level of ['log', 'info', 'debug', 'warn']) {
  console[level] = (...args) => console.error(...args);
}

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const MCP_SCOPE = 'mcp:tools';
const GRAPH_SCOPE = 'User.Read';
const SERVER_CLIENT_ID = 'mcp-server';
const SERVER_CLIENT_SECRET = 'mcp-server-secret';

const USER = {
  accountId: 'kc-user-1',
  name: 'Kim Tester',
  email: 'kim@example.org',
  preferred_username: 'kim@example.org',
};

function parseArgs(argv) {
  const opts = { port: '0' };
  const known = { '--port': 'port', '--resource': 'resource', '--graph': 'graph' };
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
  if (!opts.resource) throw new Error('--resource is required (the MCP server resource, e.g. http://127.0.0.1:7071/mcp)');
  if (!opts.graph) throw new Error('--graph is required (the Graph resource, e.g. http://127.0.0.1:PORT)');
  for (const k of ['resource', 'graph']) {
    if (!URL.canParse(opts[k])) throw new Error(`--${k} must be an absolute URL`);
  }
  opts.port = Number(opts.port);
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error('--port must be 0..65535');
  return opts;
}

const noSlash = (u) => u.replace(/\/+$/, '');

function resourceServerInfo(opts, indicator) {
  if (noSlash(indicator) === noSlash(opts.resource)) {
    return { scope: MCP_SCOPE, accessTokenFormat: 'jwt', audience: opts.resource, accessTokenTTL: 3600 };
  }
  if (noSlash(indicator) === noSlash(opts.graph)) {
    return { scope: GRAPH_SCOPE, accessTokenFormat: 'jwt', audience: opts.graph, accessTokenTTL: 3600 };
  }
  return undefined;
}

/** The Graph resource a token-exchange request asks for: `{graph}/.default`, or `audience`/`resource`. */
function requestedTarget(opts, params) {
  const targets = [];
  for (const s of (params.scope ?? '').split(' ').filter(Boolean)) {
    if (!s.endsWith('/.default')) throw new errors.InvalidScope(`only {resource}/.default scopes can be exchanged for, got ${s}`, s);
    targets.push(s.slice(0, -'/.default'.length));
  }
  if (params.audience) targets.push(params.audience);
  if (params.resource) targets.push(params.resource);
  const unique = [...new Set(targets.map(noSlash))];
  if (unique.length !== 1) throw new errors.InvalidTarget('exactly one target resource (scope {resource}/.default, audience or resource) is required');
  if (unique[0] !== noSlash(opts.graph)) throw new errors.InvalidTarget(`tokens can only be exchanged for ${opts.graph}`);
  return opts.graph;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));

  // Bind first: the issuer carries the port.
  let handler = (req, res) => {
    res.statusCode = 503;
    res.end('starting');
  };
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', resolve);
  });
  const issuer = `http://127.0.0.1:${server.address().port}`;

  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = `test-${randomBytes(6).toString('hex')}`;
  const signingJwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  // The same public key the provider publishes at its jwks_uri.
  const ownKeys = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }] });

  const configuration = {
    jwks: { keys: [signingJwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: ['openid', 'offline_access', MCP_SCOPE],
    // OAuth 2.1: the code flow only (no implicit / hybrid).
    responseTypes: ['code'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email'],
    },
    clients: [
      {
        client_id: SERVER_CLIENT_ID,
        client_secret: SERVER_CLIENT_SECRET,
        token_endpoint_auth_method: 'client_secret_post',
        grant_types: [TOKEN_EXCHANGE],
        response_types: [],
        redirect_uris: [],
      },
    ],
    async findAccount(_ctx, sub) {
      if (sub !== USER.accountId) return undefined;
      return {
        accountId: USER.accountId,
        async claims() {
          return {
            sub: USER.accountId,
            name: USER.name,
            email: USER.email,
            preferred_username: USER.preferred_username,
          };
        },
      };
    },
    async extraTokenClaims(_ctx, token) {
      const extra = {};
      if (token.accountId === USER.accountId) {
        extra.name = USER.name;
        extra.preferred_username = USER.preferred_username;
        extra.email = USER.email;
      }
      if (token.gty === TOKEN_EXCHANGE) {
        // RFC 8693 §4.1: the party acting on the user's behalf.
        extra.act = { sub: token.clientId };
      }
      return extra;
    },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf ?? opts.resource,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, indicator, client) => {
          const info = resourceServerInfo(opts, indicator);
          // Graph tokens only come from the token exchange (below), never straight to a client.
          if (!info || (noSlash(indicator) === noSlash(opts.graph) && client?.clientId !== SERVER_CLIENT_ID)) {
            throw new errors.InvalidTarget();
          }
          return info;
        },
      },
    },
    interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 600,
      AuthorizationCode: 60,
      Grant: 3600,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
    },
  };

  const provider = new Provider(issuer, configuration);

  // RFC 8693 token exchange for the MCP server: subject_token = the user's access token for
  // the MCP resource (a JWT this provider signed), result = a JWT for Graph for the same user.
  provider.registerGrantType(
    TOKEN_EXCHANGE,
    async (ctx) => {
      const { params, client } = ctx.oidc; // the client is already authenticated
      if (client.clientId !== SERVER_CLIENT_ID) {
        throw new errors.UnauthorizedClient('only the MCP server may exchange tokens');
      }
      if (!params.subject_token) throw new errors.InvalidRequest('missing required parameter subject_token');
      if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
        throw new errors.InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
      }
      if (params.requested_token_type && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
        throw new errors.InvalidRequest(`requested_token_type must be ${ACCESS_TOKEN_TYPE}`);
      }
      if (params.actor_token) throw new errors.InvalidRequest('actor_token is not supported');
      let subject;
      try {
        ({ payload: subject } = await jwtVerify(params.subject_token, ownKeys, {
          issuer,
          audience: opts.resource,
          typ: 'at+jwt',
          algorithms: ['RS256'],
          requiredClaims: ['sub', 'exp', 'client_id'],
        }));
      } catch (e) {
        throw new errors.InvalidGrant(`subject_token is not a valid access token for ${opts.resource}: ${e.code ?? e.message}`);
      }
      if (!String(subject.scope ?? '').split(' ').includes(MCP_SCOPE)) {
        throw new errors.InvalidGrant(`subject_token lacks the ${MCP_SCOPE} scope`);
      }
      if (!(await configuration.findAccount(ctx, subject.sub))) {
        throw new errors.InvalidGrant('subject_token names an unknown user');
      }
      const target = requestedTarget(opts, params);
      const info = resourceServerInfo(opts, target);
      const remaining = subject.exp - Math.floor(Date.now() / 1000);
      const token = new ctx.oidc.provider.AccessToken({
        accountId: subject.sub,
        client,
        gty: TOKEN_EXCHANGE,
        scope: info.scope,
        resourceServer: new ctx.oidc.provider.ResourceServer(target, info),
        // Never outlive the token it was exchanged for.
        expiresIn: Math.max(1, Math.min(info.accessTokenTTL, remaining)),
      });
      ctx.oidc.entity('AccessToken', token);
      const value = await token.save();
      console.error(`oidc-provider: token exchange for ${subject.sub} (${subject.client_id}) -> ${target}`);
      ctx.body = {
        access_token: value,
        issued_token_type: ACCESS_TOKEN_TYPE,
        token_type: 'Bearer',
        expires_in: token.expiration,
        scope: token.scope,
      };
    },
    ['subject_token', 'subject_token_type', 'requested_token_type', 'actor_token', 'actor_token_type', 'audience', 'resource', 'scope'],
  );

  provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error:', err));
  provider.on('grant.error', (_ctx, err) => console.error('oidc-provider grant.error:', err.message, err.error_description ?? ''));
  provider.on('authorization.error', (_ctx, err) => console.error('oidc-provider authorization.error:', err.message, err.error_description ?? ''));
  provider.on('registration_create.error', (_ctx, err) => console.error('oidc-provider registration error:', err.message, err.error_description ?? ''));

  const callback = provider.callback();

  // The headless "user": signs Kim in and consents to everything asked.
  async function interaction(req, res) {
    try {
      const details = await provider.interactionDetails(req, res);
      const { prompt, params, session } = details;
      if (prompt.name === 'login') {
        await provider.interactionFinished(req, res, { login: { accountId: USER.accountId } }, { mergeWithLastSubmission: false });
        return;
      }
      if (prompt.name === 'consent') {
        const grant = details.grantId
          ? await provider.Grant.find(details.grantId)
          : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
        const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = prompt.details;
        if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
        if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
        for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) {
          grant.addResourceScope(indicator, scopes.join(' '));
        }
        const grantId = await grant.save();
        await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
        return;
      }
      throw new Error(`unexpected prompt ${prompt.name}`);
    } catch (e) {
      console.error('oidc-provider interaction failed:', e);
      if (!res.headersSent) {
        res.statusCode = 400;
        res.setHeader('content-type', 'text/plain');
      }
      res.end(`interaction failed: ${e.message}`);
    }
  }

  handler = (req, res) => {
    const { pathname } = new URL(req.url, issuer);
    if (req.method === 'GET' && /^\/interaction\/[^/]+$/.test(pathname)) {
      interaction(req, res);
      return;
    }
    callback(req, res);
  };

  const shutdown = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  process.stdout.write(
    `${JSON.stringify({
      issuer,
      discovery: `${issuer}/.well-known/openid-configuration`,
      jwks_uri: provider.urlFor('jwks'),
      authorization_endpoint: provider.urlFor('authorization'),
      token_endpoint: provider.urlFor('token'),
      registration_endpoint: provider.urlFor('registration'),
      resource: opts.resource,
      graph: opts.graph,
      server_client_id: SERVER_CLIENT_ID,
    })}\n`,
  );
}

main().catch((err) => {
  process.stdout.write(`${JSON.stringify({ error: err instanceof Error ? err.message : String(err) })}\n`);
  process.exit(1);
});
