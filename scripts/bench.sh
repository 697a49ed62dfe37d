#!/usr/bin/env bash
# The load benchmark of issue 8: builds the release binary, then runs benches/load.rs, which
# starts the fakes, the server (auth on and off) and wrk, prints a Markdown table and writes
# it into BENCHMARKS.md. About 5 minutes of measuring after the builds.
#
#   scripts/bench.sh            # load benchmark (BENCHMARKS.md updated)
#   scripts/bench.sh --micro    # also the criterion micro-benchmarks (micro, obo_cache)
#
# Knobs (environment, see benches/load.rs): MCP_OBO_BENCH_DURATION, MCP_OBO_BENCH_ROUNDS, MCP_OBO_BENCH_CONNECTIONS,
# MCP_OBO_BENCH_USERS, MCP_OBO_BENCH_OUT, MCP_OBO_BENCH_PERF.
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
# `cargo bench` builds the package again with the dev-dependencies' features unified and
# re-links target/release/mcp-obo; measure the binary `cargo build --release` made.
mkdir -p target/bench
cp target/release/mcp-obo target/bench/mcp-obo

echo "== cargo bench --bench load"
MCP_OBO_BIN="$PWD/target/bench/mcp-obo" cargo bench --bench load

if [ "${1:-}" = "--micro" ]; then
  echo "== cargo bench --bench micro --bench obo_cache"
  cargo bench --bench micro --bench obo_cache
fi
