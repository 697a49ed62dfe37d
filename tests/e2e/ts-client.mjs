#!/usr/bin/env node
// MCP TypeScript SDK test peer (client side) for mcp-obo end-to-end tests.
//
// Usage (run with the project-local Node 22, see scripts/setup-test-tools.sh):
//   .tools/node22/bin/node tests/e2e/ts-client.mjs \
//       --url http://127.0.0.1:PORT/mcp --protocol-version 2025-06-18|2025-11-25 \
//       [--token BEARER] [--tool HelloTool] [--timeout-ms 15000]
//
// Connects with the official SDK (Client + StreamableHTTPClientTransport), negotiates
// exactly --protocol-version, lists tools (following pagination), calls --tool with no
// arguments, and prints ONE JSON line to stdout:
//   {"negotiatedProtocolVersion": "...", "tools": [...], "call": {...}}
// then exits 0. "tools" are the tool objects and "call" is the CallToolResult exactly as
// the server sent them (raw JSON-RPC results, captured before the SDK's schema parsing;
// the SDK still validates them). A CallToolResult with "isError": true is a valid result:
// it is printed and the exit code is still 0 - callers must check it.
// On any error prints {"error": "..."} on one line to stdout and exits 1 (plus
// "httpStatus": N when the failure was a non-2xx HTTP answer, e.g. 401).
// --tool '' skips the call ("call": null).
//
// How the protocol version is forced: the SDK 1.32.x Client always offers
// LATEST_PROTOCOL_VERSION in `initialize` and has no option to choose another one
// (see dist/esm/client/index.js, Client.connect). So the transport below subclasses
// StreamableHTTPClientTransport and rewrites `params.protocolVersion` of the outgoing
// `initialize` request. The server's answer (`result.protocolVersion` of the initialize
// response, captured raw) must equal the requested version; the SDK then calls
// transport.setProtocolVersion(...) with it, so every later request carries that
// `MCP-Protocol-Version` header. Both are cross-checked below.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';

// Keep stdout for the single JSON result line: anything the libraries log goes to stderr.
for (const level of ['log', 'info', 'debug', 'warn']) {
  console[level] = (...args) => console.error(...args);
}

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

function fail(err) {
  let msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  const report = {};
  // StreamableHTTPError (sdk/client/streamableHttp.js) carries the HTTP status in .code
  if (err instanceof StreamableHTTPError && Number.isInteger(err.code) && err.code > 0) {
    report.httpStatus = err.code;
    msg += ` (HTTP ${err.code})`;
  }
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause) msg += ` (cause: ${cause.code ?? ''}${cause.code ? ' ' : ''}${cause.message ?? String(cause)})`;
  out({ error: msg, ...report });
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { tool: 'HelloTool', timeoutMs: 15000 };
  const known = {
    '--url': 'url',
    '--protocol-version': 'protocolVersion',
    '--token': 'token',
    '--tool': 'tool',
    '--timeout-ms': 'timeoutMs',
  };
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
  if (!opts.protocolVersion) throw new Error('--protocol-version is required');
  if (!SUPPORTED_PROTOCOL_VERSIONS.includes(opts.protocolVersion)) {
    throw new Error(
      `--protocol-version ${opts.protocolVersion} is not supported by this SDK (supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`,
    );
  }
  opts.timeoutMs = Number(opts.timeoutMs);
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) throw new Error('--timeout-ms must be a positive number');
  return opts;
}

/**
 * StreamableHTTPClientTransport that offers a fixed protocol version in `initialize`
 * and records the raw JSON-RPC results the server sends back, by request method.
 */
class PinnedVersionTransport extends StreamableHTTPClientTransport {
  constructor(url, opts, protocolVersion) {
    super(url, opts);
    this.requestedProtocolVersion = protocolVersion;
    this.offeredProtocolVersion = undefined; // what actually went out in initialize
    this.methodById = new Map(); // outgoing request id -> method
    this.rawResults = new Map(); // method -> [raw result, ...] in arrival order
  }

  async send(message, options) {
    if (message && typeof message === 'object' && 'method' in message && 'id' in message) {
      if (message.method === 'initialize') {
        message = {
          ...message,
          params: { ...message.params, protocolVersion: this.requestedProtocolVersion },
        };
        this.offeredProtocolVersion = message.params.protocolVersion;
      }
      this.methodById.set(message.id, message.method);
    }
    return super.send(message, options);
  }

  // Called by Protocol.connect's onmessage wrapper for every incoming message (see
  // dist/esm/shared/protocol.js: a pre-set transport.onmessage is chained, not replaced).
  recordIncoming(message) {
    if (message && typeof message === 'object' && 'id' in message && 'result' in message) {
      const method = this.methodById.get(message.id);
      if (method) {
        if (!this.rawResults.has(method)) this.rawResults.set(method, []);
        this.rawResults.get(method).push(message.result);
      }
    }
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const headers = {};
  if (opts.token) headers['Authorization'] = `Bearer ${opts.token}`;

  const transport = new PinnedVersionTransport(
    new URL(opts.url),
    { requestInit: { headers } },
    opts.protocolVersion,
  );
  // Set before connect: Protocol.connect chains a pre-existing onmessage handler.
  transport.onmessage = (message) => transport.recordIncoming(message);

  const client = new Client({ name: 'mcp-obo-e2e-ts-client', version: '0.0.0' }, { capabilities: {} });
  const reqOpts = { timeout: opts.timeoutMs };

  const watchdog = setTimeout(
    () => fail(new Error(`overall timeout after ${opts.timeoutMs * 3} ms`)),
    opts.timeoutMs * 3,
  );
  watchdog.unref();

  try {
    await client.connect(transport, reqOpts);

    if (transport.offeredProtocolVersion !== opts.protocolVersion) {
      throw new Error(
        `initialize offered ${transport.offeredProtocolVersion ?? '(nothing)'} instead of ${opts.protocolVersion}`,
      );
    }
    const initResults = transport.rawResults.get('initialize') ?? [];
    if (initResults.length !== 1) throw new Error(`expected 1 initialize result, got ${initResults.length}`);
    const negotiated = initResults[0].protocolVersion;
    if (negotiated !== opts.protocolVersion) {
      throw new Error(`server negotiated protocol version ${negotiated}, requested ${opts.protocolVersion}`);
    }
    if (transport.protocolVersion !== negotiated) {
      throw new Error(`transport uses protocol version ${transport.protocolVersion}, server answered ${negotiated}`);
    }

    const tools = [];
    let cursor;
    for (let page = 0; ; page++) {
      if (page >= 100) throw new Error('tools/list: more than 100 pages');
      const res = await client.listTools(cursor ? { cursor } : undefined, reqOpts);
      cursor = res.nextCursor;
      if (!cursor) break;
    }
    for (const raw of transport.rawResults.get('tools/list') ?? []) tools.push(...(raw.tools ?? []));

    let call = null;
    if (opts.tool) {
      if (!tools.some((t) => t && t.name === opts.tool)) {
        throw new Error(`tool ${JSON.stringify(opts.tool)} not in tools/list (${tools.map((t) => t?.name).join(', ')})`);
      }
      await client.callTool({ name: opts.tool, arguments: {} }, undefined, reqOpts);
      const calls = transport.rawResults.get('tools/call') ?? [];
      if (calls.length !== 1) throw new Error(`expected 1 tools/call result, got ${calls.length}`);
      call = calls[0];
    }

    out({ negotiatedProtocolVersion: negotiated, tools, call });
  } finally {
    clearTimeout(watchdog);
    // Best effort: end a session if the server made one (mcp-obo is stateless and makes none).
    if (transport.sessionId) await transport.terminateSession().catch(() => {});
    await client.close().catch(() => {});
  }
}

main().then(
  () => process.exit(0),
  (err) => fail(err),
);
