//! The deployment artifacts (Dockerfile, host.json, `infra/` Bicep, `azure.yaml`, the Helm
//! chart, `docker-compose.yml`) checked offline with their own ecosystems' tools, one test per
//! check of `scripts/lint-deploy.sh`.
//!
//! The tools (Helm SDK, kubernetes-validate, hadolint, checkov, check-jsonschema, yamllint) live
//! in `.tools/venv`, installed by `scripts/setup-test-tools.sh`; without them every test here
//! fails and says so. Nothing reaches the network, a container engine or Azure, and nothing
//! outside the repository is read: `azure.yaml` is checked against the vendored
//! `tests/schemas/azure.yaml.json`, the compose file against check-jsonschema's built-in
//! `vendor.compose-spec` schema.
//!
//! These tests need no server code and no test support (`testkit/`): they only run the script.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fails the test with the setup instruction when the lint venv is missing.
fn require_lint_tools(root: &Path) {
    let venv = root.join(".tools/venv");
    let stamp = venv.join(".setup-test-tools.stamp");
    assert!(
        stamp.is_file() && venv.join("bin/checkov").is_file(),
        "the Python lint tools are not installed in {}: run scripts/setup-test-tools.sh first",
        venv.display()
    );
}

/// Runs `scripts/lint-deploy.sh <check>` and fails with its whole output unless it succeeds.
fn lint_deploy(check: &str) {
    let root = repo_root();
    require_lint_tools(&root);
    let output = Command::new("bash")
        .arg(root.join("scripts/lint-deploy.sh"))
        .arg(check)
        .current_dir(&root)
        .output()
        .expect("bash must be on PATH to run scripts/lint-deploy.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(3) {
        panic!("the lint tools are not usable: run scripts/setup-test-tools.sh\n{stdout}{stderr}");
    }
    assert!(
        output.status.success(),
        "scripts/lint-deploy.sh {check} failed ({}):\n{stdout}{stderr}",
        output.status
    );
}

#[test]
fn helm_chart_lints_and_renders_valid_manifests() {
    lint_deploy("helm");
}

#[test]
fn dockerfile_passes_hadolint() {
    lint_deploy("hadolint");
}

#[test]
fn checkov_finds_no_failed_checks() {
    lint_deploy("checkov");
}

#[test]
fn bicep_files_parse() {
    lint_deploy("bicep");
}

#[test]
fn azure_yaml_and_compose_match_their_schemas() {
    lint_deploy("schemas");
}

#[test]
fn docs_and_artifacts_agree_on_the_functions_host_paths() {
    lint_deploy("claims");
}

#[test]
fn yaml_files_pass_yamllint() {
    lint_deploy("yamllint");
}
