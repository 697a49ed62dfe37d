#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this): installs the test peers
# (Node 22 + npm packages, Python lint tools), checks formatting and lints, then runs every
# test with one shared debug build. The last thing printed is cargo test's own summary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# One full build, not an edit loop: incremental caches would only add ~1.5 GB to target/.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

scripts/setup-test-tools.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
# --workspace: the server and the members beside it (testkit/, loadtest/), in one build.
echo "== cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --locked --workspace --no-fail-fast 2>&1
