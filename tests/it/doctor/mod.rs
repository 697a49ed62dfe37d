//! `mcp-obo doctor`: the real binary against a fake Entra + Microsoft Graph that
//! serves Graph's real shapes for the app registration, with one broken variant per check:
//! each must print exactly its failing line and its fix (and nothing else failing), and the
//! all-correct registration with a running server must exit 0. The broken variants cover
//! the configuration (step 1: a settings change), the endpoints (step 2: [`Endpoint`], or
//! Graph at a closed port), the credential (step 3: a missing token file, a failing managed
//! identity endpoint) and the app registration (step 4: [`Broken`]). Then doctor against
//! `mcp-obo dev` (every check passes) and against a server with the wrong public_url.
//!
//! One fake for every step; the tests are in a file per step.
//! - `fake.rs`: the fake Entra + Graph, [`Endpoint`] and [`Broken`], and the ids it serves.
//! - `world.rs`: [`World`], a started fake with its token files, and the doctor runs.
//! - this file: reading doctor's output (its failing lines, their fixes, no credential).

mod configuration;
mod credential;
mod deployment;
mod endpoints;
mod fake;
mod registration;
mod world;

use std::process::{Command, Output};

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::fake_imds::{FakeImds, IDENTITY_HEADER, MI_CLIENT_ID, MI_PRINCIPAL_ID};
use crate::support::{ServerProcess, binary, free_port};
use fake::*;
use world::{World, run};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Each non-passing line with the fix lines under it, as one string.
fn lines_with(output: &str, label: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut current: Option<String> = None;
    for line in output.lines() {
        if line.starts_with("PASS ")
            || line.starts_with("WARN ")
            || line.starts_with("FAIL ")
            || !line.starts_with(' ')
        {
            found.extend(current.take());
            if line.starts_with(label) {
                current = Some(line.to_owned());
            }
        } else if let Some(c) = &mut current {
            c.push('\n');
            c.push_str(line);
        }
    }
    found.extend(current);
    found
}

const PUBLIC: &str = "http://127.0.0.1:9";

fn mcp_url() -> String {
    format!("{PUBLIC}/mcp")
}

/// Runs doctor against the fake with `broken`, and returns its failing lines (with fixes)
/// after checking the exit code and that no credential was printed.
async fn failures_with(broken: Broken) -> (Vec<String>, String) {
    let world = World::start(broken, &mcp_url()).await;
    failures_in(&world, &world.server_env(PUBLIC), true).await
}

/// Runs doctor against `world` with `env` (reading the registration with the operator's
/// token when `graph_token`), and returns its failing lines (with fixes, latency as
/// `(N ms)`) and its report, after checking the exit code and that no credential was
/// printed.
async fn failures_in(
    world: &World,
    env: &[(String, String)],
    graph_token: bool,
) -> (Vec<String>, String) {
    let (failures, text, _) = report_in(world, env, graph_token).await;
    (failures, text)
}

/// [`failures_in`], with the whole output.
async fn report_in(
    world: &World,
    env: &[(String, String)],
    graph_token: bool,
) -> (Vec<String>, String, Output) {
    let token_file = world.graph_token_file();
    let args: &[&str] = if graph_token {
        &["--graph-token-file", token_file.to_str().expect("utf-8")]
    } else {
        &[]
    };
    let output = world.doctor_env(env, args).await;
    let text = stdout(&output);
    assert_no_credential(&output, &[OPERATOR_TOKEN, &world.assertion]);
    let failures = lines_with(&mask_latency(&text), "FAIL ");
    assert_eq!(
        output.status.code(),
        Some(if failures.is_empty() { 0 } else { 1 }),
        "{text}"
    );
    (failures, text, output)
}

/// No `secrets` on stdout or stderr.
fn assert_no_credential(output: &Output, secrets: &[&str]) {
    let everything = format!(
        "{}{}",
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    );
    for secret in secrets {
        assert!(
            !everything.contains(secret),
            "a credential was printed:\n{everything}"
        );
    }
}

/// Each line's trailing latency, `(123 ms)`, as `(N ms)`.
fn mask_latency(text: &str) -> String {
    text.lines()
        .map(|line| {
            let masked = line.strip_suffix(" ms)").and_then(|rest| {
                let (head, ms) = rest.rsplit_once(" (")?;
                (!ms.is_empty() && ms.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| format!("{head} (N ms)"))
            });
            masked.unwrap_or_else(|| line.to_owned()) + "\n"
        })
        .collect()
}

/// The one failing line `line` with `fix` under it.
fn failure(line: &str, fix: &str) -> Vec<String> {
    vec![format!("{line}\n    fix: {fix}")]
}

async fn assert_only_failure(broken: Broken, line: &str, fix: &str) {
    let (failures, text) = failures_with(broken).await;
    assert_eq!(failures, vec![format!("{line}\n    fix: {fix}")], "{text}");
}
