#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance, pinned in
# tests/e2e/package.json) against an already running MCP server, one server scenario at a
# time, under the project-local Node 22 (.tools/node22, see scripts/setup-test-tools.sh).
#
# Usage: tests/e2e/run-conformance.sh URL [scenario ...]
#   URL        e.g. http://127.0.0.1:PORT/mcp
#   scenario   default: the scenarios applicable to a stateless, tool-only server (below)
# Environment:
#   CONFORMANCE_TIMEOUT      seconds per scenario (default 120); a timeout counts as failing
#   CONFORMANCE_OUTPUT_DIR   keep the suite's checks.json files there (default: temp dir, removed)
#   CONFORMANCE_STRICT_WARNINGS=1   also count a scenario with WARNING checks as failing
#
# Exit status: 0 if every scenario is ok, 1 if any failed, 2 on usage/setup errors.
#
# How the suite reports (read from its dist/index.js, v0.1.16, `server --scenario X`):
#   * each check has status SUCCESS | FAILURE | WARNING | INFO; it prints them, then
#     "Passed: <ok>/<ok+failed>, <failed> failed, <warnings> warnings";
#   * exit code 1 if any check is FAILURE, else 0 (WARNINGs do not fail a server scenario);
#     unknown scenario names and thrown errors also exit 1;
#   * with -o DIR it writes DIR/server-<scenario>-<timestamp>/checks.json (the check list).
# This script requires BOTH: exit code 0 AND a checks.json with zero FAILURE and at least
# one SUCCESS check (a scenario that records only warnings, e.g. because it could not test
# anything, is not "ok"). Any disagreement between the two counts as failing.
#
# Output safety: the outer CI runner reads a line "N passed, N failed" as a test summary.
# Every line of the suite's output is prefixed with "conformance[<scenario>]: " and the
# counts are reworded ("N ok / N failing"), so no line of ours has that form.
#
# Server scenarios in conformance 0.1.16 (`conformance list --server`) and whether they
# apply to mcp-obo (stateless Streamable HTTP, JSON responses, tools only: HelloTool, no
# resources/prompts/logging/completions, no sessions, GET -> 405):
#   APPLICABLE (run by default):
#     server-initialize         initialize handshake + notifications/initialized
#     ping                      ping -> {}
#     tools-list                every tool has name, description and inputSchema
#     dns-rebinding-protection  (2025-11-25) POST initialize with Host/Origin evil.example.com
#                               must get 4xx, with the URL's own localhost Host must get 2xx.
#                               The suite sends NO Authorization header: a server that
#                               demands a bearer token on initialize fails the 2xx half.
#   NOT APPLICABLE to a tool-only HelloTool server:
#     tools-call-simple-text, tools-call-image, tools-call-audio,
#     tools-call-embedded-resource, tools-call-mixed-content, tools-call-with-logging,
#     tools-call-error, tools-call-with-progress, tools-call-sampling,
#     tools-call-elicitation, json-schema-2020-12, elicitation-sep1034-defaults,
#     elicitation-sep1330-enums      -> each calls/lists a dedicated test_* tool that only
#                                       the suite's reference "everything" server has
#     logging-set-level              -> needs the logging capability
#     completion-complete            -> needs completions (on a prompt)
#     server-sse-polling             -> needs a session, SSE and a test_reconnection tool
#                                       (also in the suite's "pending" list)
#     server-sse-multiple-streams    -> needs an Mcp-Session-Id; on a stateless server it
#                                       records only a WARNING, i.e. tests nothing
#     resources-list, resources-read-text, resources-read-binary, resources-templates-read,
#     resources-subscribe, resources-unsubscribe,
#     prompts-list, prompts-get-simple, prompts-get-with-args,
#     prompts-get-embedded-resource, prompts-get-with-image   -> no resources/prompts
# Note: the suite's client is @modelcontextprotocol/sdk's Client, which always offers the
# SDK's latest protocol version (2025-11-25) in initialize.
set -euo pipefail

DEFAULT_SCENARIOS=(server-initialize ping tools-list dns-rebinding-protection)

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$E2E_DIR/../.." && pwd)"
NODE_BIN_DIR="$REPO_ROOT/.tools/node22/bin"
NODE="$NODE_BIN_DIR/node"
CLI="$E2E_DIR/node_modules/.bin/conformance"

if [[ $# -lt 1 || "$1" == -h || "$1" == --help ]]; then
  echo "usage: $0 URL [scenario ...]   (default scenarios: ${DEFAULT_SCENARIOS[*]})" >&2
  exit 2
fi
URL="$1"
shift
if [[ $# -gt 0 ]]; then SCENARIOS=("$@"); else SCENARIOS=("${DEFAULT_SCENARIOS[@]}"); fi

if [[ ! -x "$NODE" || ! -e "$CLI" ]]; then
  echo "run-conformance: missing $NODE or $CLI; run scripts/setup-test-tools.sh first" >&2
  exit 2
fi
export PATH="$NODE_BIN_DIR:$PATH"

TIMEOUT_S="${CONFORMANCE_TIMEOUT:-120}"
STRICT_WARNINGS="${CONFORMANCE_STRICT_WARNINGS:-0}"
if [[ -n "${CONFORMANCE_OUTPUT_DIR:-}" ]]; then
  mkdir -p "$CONFORMANCE_OUTPUT_DIR"
  OUT_ROOT="$(cd "$CONFORMANCE_OUTPUT_DIR" && pwd)"
  KEEP_OUT=1
else
  OUT_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/mcp-conformance.XXXXXX")"
  KEEP_OUT=0
fi
cleanup() { if [[ "$KEEP_OUT" == 0 ]]; then rm -rf "$OUT_ROOT"; fi; }
trap cleanup EXIT

# Prefix each line with the scenario, drop ANSI colours, and reword any count summary so
# that no line has the form "N passed, N failed".
sanitize() {
  local tag="$1"
  sed -u -E \
    -e 's/\x1b\[[0-9;]*[A-Za-z]//g' \
    -e 's#Passed: ([0-9]+)/([0-9]+), ([0-9]+) failed, ([0-9]+) warnings#checks: \1/\2 ok, \3 failing, \4 warnings#g' \
    -e 's#([0-9]+) passed, ([0-9]+) failed#\1 ok / \2 failing#g' \
    -e "s#^#conformance[$tag]: #"
}

# Prints "success failure warning other total" from a checks.json (or nothing if unreadable).
count_checks() {
  "$NODE" -e '
    const fs = require("fs");
    let checks;
    try { checks = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); } catch { process.exit(3); }
    if (!Array.isArray(checks)) process.exit(3);
    const n = (s) => checks.filter((c) => c && c.status === s).length;
    const s = n("SUCCESS"), f = n("FAILURE"), w = n("WARNING");
    const failing = checks.filter((c) => c && c.status === "FAILURE").map((c) => c.id).join(",");
    console.log([s, f, w, checks.length - s - f - w, checks.length, failing || "-"].join(" "));
  ' "$1"
}

ok_count=0
fail_count=0
failed_names=()

for scenario in "${SCENARIOS[@]}"; do
  # scenario names go into a path below; refuse anything odd
  if [[ ! "$scenario" =~ ^[A-Za-z0-9._-]+$ ]]; then
    echo "conformance[$scenario]: invalid scenario name -> FAILING"
    fail_count=$((fail_count + 1)); failed_names+=("$scenario"); continue
  fi
  sdir="$OUT_ROOT/$scenario"
  rm -rf "$sdir"; mkdir -p "$sdir"
  echo "conformance[$scenario]: running against $URL"
  set +e
  timeout --kill-after=10 "$TIMEOUT_S" \
    "$NODE" "$CLI" server --url "$URL" --scenario "$scenario" -o "$sdir" </dev/null 2>&1 | sanitize "$scenario"
  rc=${PIPESTATUS[0]}
  set -e

  reason=""
  mapfile -t results < <(find "$sdir" -name checks.json -type f)
  if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    reason="timed out after ${TIMEOUT_S}s"
  fi
  if [[ ${#results[@]} -ne 1 ]]; then
    summary="no checks.json (found ${#results[@]})"
    [[ -n "$reason" ]] || reason="suite wrote ${#results[@]} checks.json files (expected 1), exit code $rc"
  elif ! counts="$(count_checks "${results[0]}")"; then
    summary="unreadable checks.json"
    [[ -n "$reason" ]] || reason="could not parse ${results[0]}"
  else
    read -r n_ok n_fail n_warn n_other n_total failing_ids <<<"$counts"
    summary="checks: $n_ok ok / $n_fail failing / $n_warn warnings / $n_other info (of $n_total)"
    if [[ -n "$reason" ]]; then :
    elif [[ $rc -ne 0 ]]; then reason="suite exit code $rc"
    elif [[ $n_fail -ne 0 ]]; then reason="failing checks: $failing_ids (but exit code 0?)"
    elif [[ $n_ok -eq 0 ]]; then reason="no check succeeded (nothing was actually tested)"
    elif [[ "$STRICT_WARNINGS" == 1 && $n_warn -ne 0 ]]; then reason="warnings with CONFORMANCE_STRICT_WARNINGS=1"
    fi
    if [[ $rc -ne 0 && $n_fail -ne 0 ]]; then reason="failing checks: $failing_ids"; fi
  fi

  if [[ -z "$reason" ]]; then
    echo "conformance[$scenario] $summary -> ok"
    ok_count=$((ok_count + 1))
  else
    echo "conformance[$scenario] $summary -> FAILING ($reason)"
    fail_count=$((fail_count + 1))
    failed_names+=("$scenario")
  fi
done

if [[ "$KEEP_OUT" == 1 ]]; then echo "conformance: checks.json files kept under $OUT_ROOT"; fi
if [[ $fail_count -ne 0 ]]; then echo "conformance: failing scenarios: ${failed_names[*]}"; fi
echo "conformance: $ok_count scenarios ok, $fail_count scenarios failing"
[[ $fail_count -eq 0 ]]
