#!/usr/bin/env bash
# Offline checks of the deployment artifacts: the Helm chart, the Dockerfile, the
# Bicep infrastructure, azure.yaml, docker-compose.yml and every YAML file. No network, no
# Docker engine, no cluster, no Azure: each artifact is checked with its field's own tools,
# installed into .tools/venv by scripts/setup-test-tools.sh (pins: scripts/requirements-lint.txt).
# Nothing outside the repository is read: the schemas are in tests/schemas/ or in the tools.
#
# Usage: scripts/lint-deploy.sh CHECK
#   helm      helm lint --strict + render with each charts/mcp-obo/ci/*.yaml (Helm 4 SDK), schema
#             strictness, rendered-object assertions, kubernetes-validate --strict (K8S_VERSION)
#   hadolint  hadolint on the Dockerfile (failure threshold: style)
#   checkov   checkov --skip-download: kubernetes (rendered chart), dockerfile, bicep; zero failed
#   bicep     every .bicep file parses with checkov's pycep-parser; Graph extension declared
#   schemas   azure.yaml against tests/schemas/azure.yaml.json (azd's schema, vendored) and
#             docker-compose.yml against check-jsonschema's built-in vendor.compose-spec;
#             values.schema.json against its metaschema, host.json shape; azure.yaml against
#             azd's own rules (tests/schemas/azd-facts.json: remote build platform, hooks)
#   claims    docs and artifacts agree: /runtime/webhooks/mcp (reserved by the Functions host)
#             is claimed by no Functions-host artifact or docs section
#   yamllint  yamllint with the repository's .yamllint
#   all       every check above
#
# Prints one `lint-deploy: <check> ok|FAILED (<seconds>s)` line per check and exits non-zero
# if any check failed (2: usage, 3: tools not installed).
set -uo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.tools/venv"
PY="$VENV/bin/python"
SCHEMAS="$REPO_ROOT/tests/schemas"
CHART="$REPO_ROOT/charts/mcp-obo"
# Kubernetes version the chart is linted and validated against (kubernetes-validate bundles
# the schemas of 1.30 … 1.37).
K8S_VERSION="1.33.0"
CHECKS=(helm hadolint checkov bicep schemas claims yamllint)

say() { echo "lint-deploy: $*"; }

usage() {
  echo "usage: scripts/lint-deploy.sh {$(IFS='|'; echo "${CHECKS[*]}")|all}" >&2
  exit 2
}

require_tools() {
  local missing=()
  local tool
  for tool in python checkov hadolint kubernetes-validate check-jsonschema yamllint; do
    [[ -x "$VENV/bin/$tool" ]] || missing+=("$tool")
  done
  if [[ ! -f "$VENV/.setup-test-tools.stamp" ]] || (( ${#missing[@]} > 0 )); then
    say "the Python lint tools are not installed in .tools/venv${missing:+ (missing: ${missing[*]})}: run scripts/setup-test-tools.sh"
    exit 3
  fi
}

WORK=""
cleanup() { [[ -n "$WORK" ]] && rm -rf "$WORK"; }
trap cleanup EXIT
workdir() {
  if [[ -z "$WORK" ]]; then WORK="$(mktemp -d "${TMPDIR:-/tmp}/lint-deploy.XXXXXX")"; fi
  echo "$WORK"
}

# --- checks ------------------------------------------------------------------------------

check_helm() {
  local out rc=0 dir f
  out="$(workdir)/helm"
  "$PY" "$REPO_ROOT/scripts/lint_deploy.py" helm "$CHART" "$out" "$K8S_VERSION" || rc=1
  for dir in "$out"/*/; do
    f="$dir/builtin.yaml"
    [[ -f "$f" ]] || continue
    # --strict rejects unknown fields; a WARN means an object could not be checked at all.
    local report
    report="$("$VENV/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$f" 2>&1)" || rc=1
    if grep -qE '^(ERROR|WARN)' <<<"$report"; then
      echo "$report" | sed 's/^/  /'
      rc=1
    else
      echo "  kubernetes-validate --strict -k $K8S_VERSION $(basename "$dir"): ok"
    fi
  done
  return "$rc"
}

check_hadolint() {
  "$VENV/bin/hadolint" --failure-threshold style \
    --trusted-registry docker.io --trusted-registry gcr.io --trusted-registry mcr.microsoft.com \
    "$REPO_ROOT/Dockerfile" || return 1
  echo "  Dockerfile: no findings"
}

check_checkov() {
  local work rc=0
  work="$(workdir)"
  "$PY" "$REPO_ROOT/scripts/lint_deploy.py" render "$CHART" "$work/k8s" >/dev/null || return 1
  "$PY" "$REPO_ROOT/scripts/lint_deploy.py" bicep "$REPO_ROOT/infra" "$work/infra" >/dev/null || return 1
  local checkov=("$VENV/bin/checkov" --skip-download --quiet --compact)
  echo "  [kubernetes: rendered chart, every ci values file]"
  "${checkov[@]}" --framework kubernetes -d "$work/k8s" || rc=1
  echo "  [dockerfile]"
  "${checkov[@]}" --framework dockerfile -f "$REPO_ROOT/Dockerfile" || rc=1
  echo "  [bicep: infra/]"
  "${checkov[@]}" --framework bicep -d "$work/infra" || rc=1
  return "$rc"
}

check_bicep() {
  "$PY" "$REPO_ROOT/scripts/lint_deploy.py" bicep "$REPO_ROOT/infra" "$(workdir)/infra"
}

check_schemas() {
  local rc=0
  if [[ ! -f "$SCHEMAS/azure.yaml.json" ]]; then
    say "schema not found: $SCHEMAS/azure.yaml.json (it is part of the repository)"
    return 1
  fi
  # No schema may come from the network: azd's schema names other schemas by URL (only
  # under hosts this repository does not use, see tests/schemas/README.md). A proxy on a
  # closed local port makes any such download fail at once, on every machine, instead of
  # quietly depending on the internet.
  local offline=http://127.0.0.1:9
  local cj=(env "HTTP_PROXY=$offline" "HTTPS_PROXY=$offline" "ALL_PROXY=$offline"
    "http_proxy=$offline" "https_proxy=$offline" "all_proxy=$offline" NO_PROXY= no_proxy=
    "$VENV/bin/check-jsonschema" --no-cache)
  echo "  azure.yaml against tests/schemas/azure.yaml.json"
  "${cj[@]}" --schemafile "$SCHEMAS/azure.yaml.json" "$REPO_ROOT/azure.yaml" || rc=1
  echo "  docker-compose.yml against check-jsonschema's built-in vendor.compose-spec"
  "${cj[@]}" --builtin-schema vendor.compose-spec "$REPO_ROOT/docker-compose.yml" || rc=1
  echo "  charts/mcp-obo/values.schema.json against its metaschema"
  "${cj[@]}" --check-metaschema "$CHART/values.schema.json" || rc=1
  "$PY" "$REPO_ROOT/scripts/lint_deploy.py" functions-image "$REPO_ROOT" "$SCHEMAS/functions-host.json" || rc=1
  "$PY" "$REPO_ROOT/scripts/lint_deploy.py" compose "$REPO_ROOT" "$SCHEMAS/functions-host.json" || rc=1
  "$PY" "$REPO_ROOT/scripts/lint_deploy.py" azure-yaml "$REPO_ROOT" "$SCHEMAS/azd-facts.json" || rc=1
  "$PY" "$REPO_ROOT/scripts/lint_deploy.py" hostjson "$REPO_ROOT/host.json" "$REPO_ROOT/Dockerfile" || rc=1
  "$PY" -c 'import json,sys; [json.load(open(p)) for p in sys.argv[1:]]' \
    "$REPO_ROOT/infra/main.parameters.json" "$REPO_ROOT/infra/bicepconfig.json" || rc=1
  return "$rc"
}

check_claims() {
  "$PY" "$REPO_ROOT/scripts/lint_deploy.py" claims "$REPO_ROOT"
}

check_yamllint() {
  (cd "$REPO_ROOT" && "$VENV/bin/yamllint" --strict --config-file .yamllint .) || return 1
  echo "  yamllint --strict: no findings"
}

run_check() {
  local name="$1" t0=$SECONDS rc=0
  say "$name ..."
  "check_$name" || rc=$?
  if (( rc == 0 )); then
    say "$name ok ($((SECONDS - t0))s)"
  else
    say "$name FAILED ($((SECONDS - t0))s)"
  fi
  return "$rc"
}

main() {
  [[ $# -eq 1 ]] || usage
  local want="$1" name failed=()
  if [[ "$want" == "all" ]]; then
    require_tools
    for name in "${CHECKS[@]}"; do
      run_check "$name" || failed+=("$name")
    done
    if (( ${#failed[@]} > 0 )); then
      say "all: FAILED: ${failed[*]}"
      return 1
    fi
    say "all: every check ok (${CHECKS[*]})"
    return 0
  fi
  for name in "${CHECKS[@]}"; do
    if [[ "$name" == "$want" ]]; then
      require_tools
      run_check "$name"
      return
    fi
  done
  usage
}

# The test harness reads a line such as "3 passed, 1 failed" as a test-run summary; no tool
# output may look like one, so any such line is reworded (the counts are kept).
guard_summary_lines() {
  sed -uE 's/^([[:space:]]*([[:alnum:]_]+:[[:space:]]*)?[0-9]+) passed, ([0-9]+) failed/\1 passed; \3 failed/'
}

main "$@" 2>&1 | guard_summary_lines
exit "${PIPESTATUS[0]}"
