-- wrk script for the load tool (loadtest/src/wrk.rs): one kind of request per run, rotating
-- through a file of users' bearer tokens, and checking EVERY response (status 200 and a marker of success in
-- the body: MCP errors come back as HTTP 200 with a JSON-RPC error or `isError: true`).
--
--   wrk -t2 -c64 -d10s --latency -s loadtest/load.lua URL -- MODE [TOKEN_FILE]
--
-- MODE: healthz (GET), list (POST tools/list), hello (POST tools/call HelloTool),
--       events (POST tools/call UpcomingEvents, top 10: one calendarView page),
--       graph (GET with a bearer token: the fake Graph's /v1.0/me on its own),
--       proxy (hello's POST to a reference proxy, the Rust floor or nginx, with downstream
--       tokens: answered by the fake Graph's /v1.0/me through the proxy).
-- TOKEN_FILE: one token per line; each request carries the next one (`Authorization: Bearer`).
-- done() prints one machine-readable `WRK_RESULT key=value ...` line for the harness.

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local MCP_HEADERS = {
  ["Content-Type"] = "application/json",
  ["Accept"] = "application/json, text/event-stream",
  ["MCP-Protocol-Version"] = "2025-06-18",
}
local BODIES = {
  list = '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}',
  hello = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"HelloTool","arguments":{}}}',
  proxy = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"HelloTool","arguments":{}}}',
  events = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"UpcomingEvents","arguments":{"top":10}}}',
}
local EXPECT = {
  healthz = '"status":"ok"',
  list = '"name":"HelloTool"',
  hello = '"isError":false',
  events = '"events":[{"',
  graph = '"displayName"',
  proxy = '"displayName"',
}

local prepared = {}
local n = 0
local i = 0
local expect = nil

-- Per-thread globals, read by done() through thread:get.
bad = 0
checked = 0
bad_sample = ""

function init(args)
  local mode = args[1]
  local file = args[2]
  expect = EXPECT[mode]
  if expect == nil then
    error("unknown mode " .. tostring(mode))
  end
  local method = "GET"
  local body = BODIES[mode]
  if body ~= nil then
    method = "POST"
  end
  local function headers(token)
    local h = {}
    if body ~= nil then
      for k, v in pairs(MCP_HEADERS) do
        h[k] = v
      end
    end
    if token ~= nil then
      h["Authorization"] = "Bearer " .. token
    end
    return h
  end
  if file ~= nil then
    for line in io.lines(file) do
      if line ~= "" then
        n = n + 1
        prepared[n] = wrk.format(method, nil, headers(line), body)
      end
    end
  else
    n = 1
    prepared[1] = wrk.format(method, nil, headers(nil), body)
  end
  if n == 0 then
    error("no tokens in " .. tostring(file))
  end
  -- Threads start at different users.
  i = ((tid or 0) * 7919) % n
end

function request()
  i = i + 1
  if i > n then
    i = 1
  end
  return prepared[i]
end

function response(status, headers, body)
  checked = checked + 1
  if status ~= 200 or body == nil or not string.find(body, expect, 1, true) then
    bad = bad + 1
    if bad_sample == "" then
      bad_sample = tostring(status) .. " " .. string.sub(body or "", 1, 300)
    end
  end
end

function done(summary, latency, requests)
  local total_bad, total_checked, sample = 0, 0, ""
  for _, t in ipairs(threads) do
    total_bad = total_bad + (t:get("bad") or 0)
    total_checked = total_checked + (t:get("checked") or 0)
    local s = t:get("bad_sample")
    if sample == "" and s ~= nil then
      sample = s
    end
  end
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d "
      .. "connect=%d read=%d write=%d status=%d timeout=%d bad=%d checked=%d\n",
    summary.requests, summary.duration,
    math.floor(latency:percentile(50)), math.floor(latency:percentile(90)),
    math.floor(latency:percentile(99)), math.floor(latency.max),
    e.connect, e.read, e.write, e.status, e.timeout, total_bad, total_checked))
  if sample ~= "" then
    io.write("WRK_BAD_SAMPLE " .. string.gsub(sample, "[\r\n]", " ") .. "\n")
  end
end
