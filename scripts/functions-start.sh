#!/bin/sh
# The `functions` image's start command (Dockerfile): runs the Functions host exactly as the
# base image does, passes its log through unchanged, and stops the container with the reason
# when the host does not set mcp-obo up as its custom handler. Without this, such a host runs
# on and answers every path with 404, and the revision's startup probe fails silently.
#
# The host is configured when it logs that it created the custom handler's HTTP function
# (`Created function 'http-handler1' …` or `1 functions found (Custom)`, docs/deploy.md,
# "How the Functions host runs mcp-obo"). It is not when it logs `0 functions found` or
# `No job functions found` (a host older than the `mcp-custom-handler` profile, or a
# host.json it did not apply), `Configuration profile … is not supported`, or a startup
# error, when it exits first, or when MCP_OBO_HOST_CHECK_SECONDS (default 120, within the
# startup probe's 150 s) pass without either.
#
# MCP_OBO_HOST_START: the host's start command (default: the base image's own CMD).
set -u

host_start="${MCP_OBO_HOST_START:-/opt/startup/start_nonappservice.sh}"
deadline="${MCP_OBO_HOST_CHECK_SECONDS:-120}"
work="$(mktemp -d)"
log="$work/host.log"
verdict="$work/verdict"
mkfifo "$log"

fail() {
  echo "mcp-obo: FATAL: the Functions host did not configure mcp-obo as its custom handler: $1" >&2
  echo "mcp-obo: see docs/deploy.md, \"How the Functions host runs mcp-obo\" (host version, host.json, FUNCTIONS_WORKER_RUNTIME=custom)" >&2
}

# The host in its own session and process group (setsid, util-linux), so that stopping it
# stops its children too (the start script runs the host as its child).
if command -v setsid >/dev/null 2>&1; then
  setsid "$host_start" >"$log" 2>&1 &
else
  "$host_start" >"$log" 2>&1 &
fi
host=$!
stop_host() { kill -TERM "-$host" 2>/dev/null || kill -TERM "$host" 2>/dev/null; }
trap 'stop_host' TERM INT

# The deadline: a host that says neither yes nor no in time is stopped with the reason.
(
  trap 'kill "$nap" 2>/dev/null; exit 0' TERM
  sleep "$deadline" &
  nap=$!
  wait "$nap"
  if [ ! -s "$verdict" ]; then
    echo "no 'Created function' or 'functions found (Custom)' line within ${deadline}s" >"$verdict"
    kill -TERM "-$host" 2>/dev/null || kill -TERM "$host" 2>/dev/null
  fi
) >/dev/null 2>&1 &
watchdog=$!

while IFS= read -r line; do
  printf '%s\n' "$line"
  [ -s "$verdict" ] && [ "$(cat "$verdict")" = ok ] && continue
  case "$line" in
    *"Created function 'http-handler"* | *" 1 functions found (Custom)"* | "1 functions found (Custom)"*)
      echo ok >"$verdict" ;;
    *" 0 functions found"* | "0 functions found"* | *"No job functions found"*)
      echo "it created no function for mcp-obo ($line): the host predates the mcp-custom-handler profile and customHandler.http.routes, or did not read /home/site/wwwroot/host.json" >"$verdict" ;;
    *"Configuration profile"*"is not supported"*)
      echo "it does not know host.json's configurationProfile ($line): use a host release with the mcp-custom-handler profile" >"$verdict" ;;
    *"A host error has occurred during startup"*)
      echo "it failed to start ($line)" >"$verdict" ;;
  esac
  if [ -s "$verdict" ] && [ "$(cat "$verdict")" != ok ]; then
    break
  fi
done <"$log"

kill -TERM "$watchdog" 2>/dev/null
verdict_text=""
[ -s "$verdict" ] && verdict_text="$(cat "$verdict")"
if [ "$verdict_text" != ok ]; then
  stop_host
  rm -rf "$work"
  fail "${verdict_text:-the host exited before it created the custom handler function}"
  exit 1
fi
wait "$host"
status=$?
rm -rf "$work"
exit "$status"
