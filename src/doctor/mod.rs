//! `mcp-obo doctor`: finds the Entra and deployment misconfiguration that otherwise shows up
//! as a failed sign-in or tool call far from its cause. It reads the configuration `serve`
//! would run with and checks, in order:
//!
//! 1. `config_checks.rs`: the configuration (what `mcp-obo config` validates, plus
//!    cross-checks between values);
//! 2. `endpoints.rs`: discovery, keys, token endpoint and Graph answer, with latency;
//! 3. `credential.rs`: the server's client assertion can be obtained (its `iss`/`sub`/`aud`
//!    shown, never the assertion);
//! 4. `registration.rs` (reads Graph) and `app_checks.rs` (pure checks): the app
//!    registration matches what the server and its identity need;
//! 5. `deployment.rs` (`--url`): a running deployment answers as MCP clients need.
//!
//! `report.rs` renders one line per check (text or `--json`); `expect.rs` derives what the
//! server expects from its settings; `probe.rs` is the HTTP client; `graph_shapes.rs` the
//! Graph answers read. Exit code 0 when nothing failed, 1 otherwise. No token or secret is
//! ever printed: checks are built from URLs, names and claims only.

mod app_checks;
mod config_checks;
mod credential;
mod deployment;
mod endpoints;
mod expect;
mod graph_shapes;
mod probe;
mod registration;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use url::Url;

use crate::auth::AuthMode;
use crate::config::{self, Env};
use crate::settings;

pub use report::{Check, Report, Status};

/// `mcp-obo doctor` options.
#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// A running deployment's MCP URL (e.g. https://<app>.azurecontainerapps.io/mcp) to
    /// check as a client would.
    #[arg(long, value_name = "URL")]
    pub url: Option<Url>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// A file holding a Microsoft Graph token to read the app registration with (default:
    /// your `az login` / `azd auth login` sign-in).
    #[arg(long, value_name = "PATH", env = "MCP_OBO_DOCTOR_GRAPH_TOKEN_FILE")]
    pub graph_token_file: Option<PathBuf>,
    /// Time allowed for each HTTP request.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// One step's lines, and what later steps need from it.
pub struct Step<T> {
    pub checks: Vec<Check>,
    pub found: T,
}

/// Runs every check and prints the report; exit code 0 when nothing failed.
pub fn run(args: &DoctorArgs, config_file: Option<&Path>, env: &Env) -> ExitCode {
    let report = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(diagnose(args, config_file, env)),
        Err(e) => {
            eprintln!("mcp-obo doctor: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Every step in order; a step whose inputs an earlier failure took away is left out.
pub async fn diagnose(args: &DoctorArgs, config_file: Option<&Path>, env: &Env) -> Report {
    let mut report = Report::default();
    let probe = match probe::Probe::new(args.timeout) {
        Ok(probe) => probe,
        Err(e) => {
            report.push(Check::fail(
                "doctor.http",
                format!("cannot initialise the HTTP client: {e}"),
                "check the system's TLS certificates (SSL_CERT_FILE)",
            ));
            return report;
        }
    };
    let loaded = match settings::load(config_file, env) {
        Ok(loaded) => loaded,
        Err(config::Error::Invalid(problems)) => {
            report.extend(config_checks::problems(&problems));
            if let Some(url) = &args.url {
                report.extend(deployment::check(&probe, url, None).await);
            }
            return report;
        }
        Err(e) => {
            report.push(Check::fail(
                "config.valid",
                e.to_string(),
                "fix the configuration file named by --config / MCP_OBO_CONFIG",
            ));
            return report;
        }
    };
    let settings = &loaded.settings;
    let expected = expect::Expected::from_settings(settings);
    report.extend(config_checks::checks(&loaded, &expected));

    let endpoints = endpoints::check(&probe, settings, &expected).await;
    report.extend(endpoints.checks);
    let credential = credential::check(
        settings,
        &expected,
        endpoints.found.token_endpoint.as_deref(),
    )
    .await;
    report.extend(credential.checks);
    // Without Graph answering (its failing line says why) the registration cannot be read:
    // its step would only repeat that failure, with a sign-in fix that does not apply. A
    // Graph that is not Microsoft's is refused (that step's one line) whether it answers or
    // not.
    let app = if matches!(settings.auth.mode, AuthMode::Entra | AuthMode::EasyAuth)
        && (endpoints.found.graph_answers
            || registration::foreign_graph(&expected.graph_base).is_some())
    {
        let step = registration::check(
            &probe,
            args.graph_token_file.as_deref(),
            &credential.found,
            &expected,
        )
        .await;
        report.extend(step.checks);
        step.found
    } else {
        None
    };
    if let Some(url) = &args.url {
        report.extend(deployment::check(&probe, url, app.as_ref()).await);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn when_graph_does_not_answer_the_registration_is_not_read() {
        // Bound but not listening: connections to it are refused, and no one else gets it.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        let closed = format!("http://{}", socket.local_addr().expect("addr"));
        let dir = tempfile::tempdir().expect("temp dir");
        let token_file = dir.path().join("graph-token");
        std::fs::write(&token_file, "operator-token").expect("token file");
        let env: Env = [
            ("MCP_OBO__SERVER__PUBLIC_URL", "http://127.0.0.1:9"),
            ("MCP_OBO__AUTH__MODE", "entra"),
            (
                "MCP_OBO__ENTRA__TENANT_ID",
                "11111111-1111-4111-8111-111111111111",
            ),
            (
                "MCP_OBO__ENTRA__CLIENT_ID",
                "22222222-2222-4222-8222-222222222222",
            ),
            ("MCP_OBO__ENTRA__AUTHORITY_HOST", closed.as_str()),
            ("MCP_OBO__GRAPH__BASE_URL", closed.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let args = DoctorArgs {
            url: None,
            json: false,
            graph_token_file: Some(token_file),
            timeout: Duration::from_secs(5),
        };
        let report = diagnose(&args, None, &env).await;
        let graph = report
            .checks
            .iter()
            .find(|c| c.id == "endpoints.graph")
            .expect("the Graph line");
        assert_eq!(
            graph.line(),
            format!("FAIL endpoints.graph: cannot reach {closed}: connection failed")
        );
        assert!(
            report.checks.iter().all(|c| !c.id.starts_with("app.")),
            "{}",
            report.text()
        );
    }
}
