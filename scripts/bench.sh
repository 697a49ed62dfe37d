#!/usr/bin/env bash
# The load benchmark: builds the release binary, then runs the load tool
# (loadtest/, the mcp-obo-loadtest workspace member), which starts the fakes, the server (auth
# on and off) and wrk, prints a Markdown table and writes it into BENCHMARKS.md. About 5
# minutes of measuring after the builds.
#
#   scripts/bench.sh            # load benchmark (BENCHMARKS.md updated)
#   scripts/bench.sh --micro    # also the criterion micro-benchmarks (micro, obo_cache)
#
# Knobs (environment, see `cargo run -p mcp-obo-loadtest -- --help`): MCP_OBO_BENCH_DURATION,
# MCP_OBO_BENCH_ROUNDS, MCP_OBO_BENCH_CONNECTIONS, MCP_OBO_BENCH_THREADS, MCP_OBO_BENCH_USERS,
# MCP_OBO_BENCH_OUT, MCP_OBO_BENCH_PERF, MCP_OBO_BENCH_HELLO_ONLY.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v wrk >/dev/null; then
  echo "== installing wrk"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y wrk
fi

echo "== cargo build --release --bin mcp-obo"
cargo build --release --bin mcp-obo

# The load tool links only mcp_obo's library (for the fakes), never the server binary, so
# target/release/mcp-obo stays the one `cargo build --release --bin mcp-obo` made, with the
# server's own features.
echo "== cargo run --release -p mcp-obo-loadtest"
cargo run --release -p mcp-obo-loadtest -- --binary "$PWD/target/release/mcp-obo"

if [ "${1:-}" = "--micro" ]; then
  echo "== cargo bench --bench micro --bench obo_cache"
  cargo bench --bench micro --bench obo_cache
fi
