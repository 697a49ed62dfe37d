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
//! These tests need no server code and no test support (`testkit/`): they only run the script
//! (and, for `infra/graph-permissions.json`, the binary's `tools --permissions-json`).

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

/// The command that rewrites the committed permissions file, named when it is stale.
const REGENERATE: &str = "cargo run -- tools --permissions-json > infra/graph-permissions.json";

#[test]
fn the_committed_graph_permissions_file_is_what_the_binary_writes() {
    let output = Command::new(env!("CARGO_BIN_EXE_mcp-obo"))
        .args(["tools", "--permissions-json"])
        .output()
        .expect("the mcp-obo binary runs");
    assert!(output.status.success(), "{output:?}");
    let written = String::from_utf8_lossy(&output.stdout);
    let path = repo_root().join("infra/graph-permissions.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == written,
        "{} disagrees with the registered tools' Graph permissions (the Bicep would request the wrong ones): regenerate it with `{REGENERATE}` and commit it\n--- committed\n{committed}\n--- mcp-obo tools --permissions-json\n{written}",
        path.display()
    );
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

// --- the end of `azd up` (azure.yaml postdeploy hook) ---------------------------------------

/// What azd puts in a hook's environment after `azd up`: the outputs of infra/main.bicep.
const AZD_OUTPUTS: [(&str, &str); 11] = [
    (
        "MCP_URL",
        "https://mcp-x1.happyhill.westeurope.azurecontainerapps.io/mcp",
    ),
    (
        "SERVICE_MCP_ENDPOINT_URL",
        "https://mcp-x1.happyhill.westeurope.azurecontainerapps.io",
    ),
    ("SERVICE_MCP_NAME", "mcp-x1"),
    ("AZURE_RESOURCE_GROUP_NAME", "rg-smoke"),
    (
        "ENTRA_APPLICATION_ID",
        "11111111-2222-3333-4444-555555555555",
    ),
    ("AZURE_TENANT_ID", "66666666-7777-8888-9999-000000000000"),
    (
        "AZURE_IDENTIFIER_URI",
        "api://66666666-7777-8888-9999-000000000000/mcp-obo-x1",
    ),
    ("MCP_VSCODE_PREAUTHORIZED", "true"),
    (
        "MCP_ADMIN_CONSENT_URL",
        "https://login.microsoftonline.com/t/adminconsent?client_id=a",
    ),
    (
        "MCP_ADMIN_CONSENT_COMMAND",
        "az ad app permission admin-consent --id 11111111-2222-3333-4444-555555555555",
    ),
    (
        "MCP_CONSENT_URL",
        "https://mcp-x1.happyhill.westeurope.azurecontainerapps.io/.auth/login/aad",
    ),
];

/// Runs scripts/azd-postdeploy.sh with the azd outputs, a CI job's own AZURE_CLIENT_ID, and
/// `bin` first on PATH (fake `cargo`, maybe a fake `mcp-obo`); returns stdout and whether
/// `cargo` was run.
fn run_postdeploy(bin: &Path) -> (String, bool) {
    let cargo_ran = bin.join("cargo-ran");
    let cargo = bin.join("cargo");
    std::fs::write(
        &cargo,
        format!("#!/bin/sh\ntouch '{}'\nexit 1\n", cargo_ran.display()),
    )
    .expect("write fake cargo");
    make_executable(&cargo);
    let started = std::time::Instant::now();
    let output = Command::new("sh")
        .arg(repo_root().join("scripts/azd-postdeploy.sh"))
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("AZURE_CLIENT_ID", "ci-pipeline-identity")
        .envs(AZD_OUTPUTS)
        .output()
        .expect("sh runs scripts/azd-postdeploy.sh");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the hook never fails the deployment: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the hook took {:?}",
        started.elapsed()
    );
    (stdout, cargo_ran.exists())
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn azd_postdeploy_without_mcp_obo_prints_the_next_steps_and_the_deployed_doctor_command_without_compiling()
 {
    let bin = tempfile::tempdir().expect("temp dir");
    let (stdout, cargo_ran) = run_postdeploy(bin.path());
    assert!(!cargo_ran, "the hook ran cargo:\n{stdout}");
    let mcp_url = AZD_OUTPUTS[0].1;
    assert!(
        stdout.contains(&format!("MCP endpoint: {mcp_url}")),
        "{stdout}"
    );
    // The mcp.json entry is JSON naming the /mcp URL.
    let start = stdout.find("  {").expect("an mcp.json entry");
    let end = stdout[start..].find("\n  }\n").expect("its end") + start + 4;
    let entry: serde_json::Value = serde_json::from_str(&stdout[start..end])
        .unwrap_or_else(|e| panic!("mcp.json entry is not JSON ({e}):\n{stdout}"));
    assert_eq!(entry["servers"]["mcp-obo"]["url"], mcp_url);
    assert_eq!(entry["servers"]["mcp-obo"]["type"], "http");
    assert!(stdout.contains("is pre-authorized"), "{stdout}");
    assert!(
        stdout.contains(
            "az ad app permission admin-consent --id 11111111-2222-3333-4444-555555555555"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "az containerapp exec -n mcp-x1 -g rg-smoke --command \"/home/site/wwwroot/mcp-obo doctor --url {mcp_url}\""
        )),
        "{stdout}"
    );
}

#[test]
fn azd_postdeploy_runs_the_installed_doctor_for_the_entra_application_not_the_ci_identity() {
    let bin = tempfile::tempdir().expect("temp dir");
    let doctor = bin.path().join("mcp-obo");
    std::fs::write(
        &doctor,
        "#!/bin/sh\necho \"doctor $* client=$MCP_OBO__ENTRA__CLIENT_ID azure_client_id=${AZURE_CLIENT_ID:-unset} mode=$MCP_OBO__AUTH__MODE\"\necho 'summary: 20 ok, 2 warnings, 1 failing'\nexit 1\n",
    )
    .expect("write fake mcp-obo");
    make_executable(&doctor);
    let (stdout, cargo_ran) = run_postdeploy(bin.path());
    assert!(!cargo_ran, "the hook ran cargo:\n{stdout}");
    let mcp_url = AZD_OUTPUTS[0].1;
    assert!(
        stdout.contains(&format!(
            "doctor doctor --url {mcp_url} client=11111111-2222-3333-4444-555555555555 azure_client_id=unset mode=entra"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("summary: 20 ok, 2 warnings, 1 failing"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the deployment itself succeeded"),
        "{stdout}"
    );
}

// --- the functions image's start check (scripts/functions-start.sh) -------------------------

/// Runs scripts/functions-start.sh with a fake Functions host that prints `host_log` and then
/// either waits (`then_wait`) or exits 3; returns (exit code, stdout, stderr).
fn run_functions_start(
    host_log: &str,
    then_wait: bool,
    check_seconds: u32,
) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = dir.path().join("host");
    let end = if then_wait { "sleep 300" } else { "exit 3" };
    std::fs::write(
        &host,
        format!("#!/bin/sh\ncat <<'LOG'\n{host_log}\nLOG\n{end}\n"),
    )
    .expect("write fake host");
    make_executable(&host);
    let started = std::time::Instant::now();
    let output = Command::new("sh")
        .arg(repo_root().join("scripts/functions-start.sh"))
        .env("MCP_OBO_HOST_START", &host)
        .env("MCP_OBO_HOST_CHECK_SECONDS", check_seconds.to_string())
        .output()
        .expect("sh runs scripts/functions-start.sh");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the start check took {:?}",
        started.elapsed()
    );
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The start check stopped the container (exit 1) with `reason` in the log.
fn assert_start_refused(host_log: &str, then_wait: bool, check_seconds: u32, reason: &str) {
    let (code, stdout, stderr) = run_functions_start(host_log, then_wait, check_seconds);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("FATAL: the Functions host did not configure mcp-obo")
            && stderr.contains(reason),
        "{stderr}"
    );
}

const HOST_STARTING: &str = "info: Host.Startup[0]\n      Starting Host (HostId=mcp-x1, InstanceId=0, Version=4.1054.250.0, ProcessId=7)";

#[test]
fn functions_start_stops_a_host_that_creates_no_function_with_the_reason_in_the_log() {
    let log = format!("{HOST_STARTING}\ninfo: Host.Startup[0]\n      0 functions found (Custom)");
    let (code, stdout, stderr) = run_functions_start(&log, true, 120);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("0 functions found (Custom)"),
        "the host's log passes through: {stdout}"
    );
    assert!(
        stderr
            .contains("FATAL: the Functions host did not configure mcp-obo as its custom handler")
            && stderr.contains("predates the mcp-custom-handler profile"),
        "{stderr}"
    );
}

#[test]
fn functions_start_stops_a_host_that_does_not_know_the_profile() {
    let log = format!(
        "{HOST_STARTING}\nfail: Host.Startup[0]\n      Configuration profile 'mcp-custom-handler' is not supported. Supported values: '', 'default', 'mcp'."
    );
    assert_start_refused(
        &log,
        true,
        120,
        "does not know host.json's configurationProfile",
    );
}

#[test]
fn functions_start_stops_a_host_that_says_nothing_about_the_handler_before_the_deadline() {
    assert_start_refused(HOST_STARTING, true, 1, "within 1s");
}

#[test]
fn functions_start_reports_a_host_that_exits_before_creating_the_function() {
    assert_start_refused(
        HOST_STARTING,
        false,
        120,
        "exited before it created the custom handler function",
    );
}

#[test]
fn functions_start_passes_a_configured_host_through_and_keeps_its_exit_status() {
    let log = format!(
        "{HOST_STARTING}\ninfo: Host.Startup[0]\n      Created function 'http-handler1' for route '{{*route}}' (authLevel=Anonymous)\n      1 functions found (Custom)\nlater line"
    );
    let (code, stdout, stderr) = run_functions_start(&log, false, 120);
    assert_eq!(code, 3, "the host's own status: {stdout}{stderr}");
    assert!(stdout.contains("later line"), "{stdout}");
    assert!(!stderr.contains("FATAL"), "{stderr}");
}

/// The `key = value` lines of one `[section]` of a TOML file, as written.
fn toml_section(text: &str, section: &str) -> Vec<String> {
    let header = format!("[{section}]");
    text.lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .map(|l| l.split('#').next().unwrap_or("").trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn what_ships_and_what_is_measured_is_the_fat_lto_dist_build() {
    let root = repo_root();
    let read = |file: &str| std::fs::read_to_string(root.join(file)).unwrap_or_default();
    let manifest = read("Cargo.toml");
    let dist = toml_section(&manifest, "profile.dist");
    for setting in [
        "inherits = \"release\"",
        "opt-level = 3",
        "lto = \"fat\"",
        "codegen-units = 1",
    ] {
        assert!(
            dist.iter().any(|l| l == setting),
            "Cargo.toml [profile.dist] lacks {setting}: {dist:?}"
        );
    }
    // Every cargo build the image or the load benchmark makes is the dist one.
    for file in ["Dockerfile", "scripts/bench.sh"] {
        let text = read(file);
        let builds: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("cargo build") || l.contains("cargo run"))
            .filter(|l| !l.trim_start().starts_with('#') && !l.contains("echo"))
            .collect();
        assert!(!builds.is_empty(), "{file} builds nothing");
        for line in builds {
            assert!(
                line.contains("--profile dist"),
                "{file} builds without --profile dist: {line}"
            );
        }
        assert!(
            !text.contains("target/release/"),
            "{file} uses a release-profile binary"
        );
    }
}
