#!/usr/bin/env bash
# The load benchmark: builds the shipped binary (the `dist` profile: fat LTO, what the
# Dockerfile ships), then runs the load tool (loadtest/, the mcp-obo-loadtest workspace member,
# built with the same profile so the in-process fakes are not slowed by the opt-level-1
# `release` profile), which starts the fakes, the server (auth on and off), the reference
# proxies (the Rust floor, nginx) and wrk, prints a Markdown table and writes it into
# BENCHMARKS.md. About 5 minutes of measuring after the builds (the dist build takes about 7
# minutes on two cores).
#
#   scripts/bench.sh            # load benchmark (BENCHMARKS.md updated)
#   scripts/bench.sh --micro    # also the criterion micro-benchmarks (micro, obo_cache)
#
# Knobs (environment, see `cargo run -p mcp-obo-loadtest -- --help`): MCP_OBO_BENCH_DURATION,
# MCP_OBO_BENCH_ROUNDS, MCP_OBO_BENCH_CONNECTIONS, MCP_OBO_BENCH_THREADS, MCP_OBO_BENCH_USERS,
# MCP_OBO_BENCH_OUT, MCP_OBO_BENCH_PERF, MCP_OBO_BENCH_HELLO_ONLY, MCP_OBO_BENCH_NGINX,
# MCP_OBO_BENCH_SHARED_CACHE.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
# wrk drives the load; nginx (Debian's nginx-light) is the reference proxy HelloTool is
# measured against. RUNLEVEL=1: the package's own nginx service is not started on install.
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx-light)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y --no-install-recommends "${missing[@]}"
fi

echo "== cargo build --profile dist --bin mcp-obo"
cargo build --profile dist --bin mcp-obo

# The load tool links only mcp_obo's library (for the fakes), never the server binary, so
# target/dist/mcp-obo stays the one `cargo build --profile dist --bin mcp-obo` made, with the
# server's own features.
echo "== cargo run --profile dist -p mcp-obo-loadtest"
cargo run --profile dist -p mcp-obo-loadtest -- --binary "$PWD/target/dist/mcp-obo"

if [ "${1:-}" = "--micro" ]; then
  echo "== cargo bench --bench micro --bench obo_cache"
  cargo bench --bench micro --bench obo_cache
fi
