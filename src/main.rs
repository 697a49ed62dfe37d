//! The `mcp-obo` command: parse the CLI, load settings, run the chosen command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use mcp_obo::auth::AuthMode;
use mcp_obo::config;
use mcp_obo::server::{self, Application, Dependencies};
use mcp_obo::settings::{self, Loaded};
use mcp_obo::telemetry::escape;

#[derive(Parser)]
#[command(
    name = "mcp-obo",
    version,
    about = "Remote MCP server whose tools call Microsoft Graph on behalf of the signed-in user"
)]
struct Cli {
    /// Configuration file (TOML or JSON); values from MCP_OBO__* variables override it.
    #[arg(long, global = true, env = "MCP_OBO_CONFIG")]
    config: Option<PathBuf>,
    /// Log format on stderr (overrides log.format).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the MCP server (the default).
    Serve,
    /// Run the whole sign-in and on-behalf-of flow locally: the MCP server, a development
    /// identity provider and a Microsoft Graph emulator, on loopback only.
    Dev(mcp_obo::devidp::DevArgs),
    /// Print the effective configuration, secrets redacted, with where each value came from.
    Config,
    /// Check the configuration, the endpoints, the server's credential, the Entra app
    /// registration and (with --url) a running deployment; print the fix for each failure.
    Doctor(mcp_obo::doctor::DoctorArgs),
    /// List the tools and the Microsoft Graph delegated permissions they need
    /// (--permissions-json: the file infra/graph-permissions.json the Bicep reads).
    Tools(mcp_obo::tools_command::ToolsArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut env = config::process_env();
    if let Some(format) = cli.log_format {
        let value = match format {
            LogFormatArg::Text => "text",
            LogFormatArg::Json => "json",
        };
        env.push(("MCP_OBO__LOG__FORMAT".into(), value.into()));
    }
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Dev(args) = command {
        return mcp_obo::devidp::run(&args, cli.config.as_deref(), env);
    }
    if let Command::Tools(args) = command {
        return mcp_obo::tools_command::run(&args);
    }
    if let Command::Doctor(args) = command {
        return mcp_obo::doctor::run(&args, cli.config.as_deref(), &env);
    }
    let loaded = match settings::load(cli.config.as_deref(), &env) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("mcp-obo: {}", config::redact_credentials(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Config => {
            print!("{}", render_config(&loaded));
            ExitCode::SUCCESS
        }
        _ => serve(&loaded),
    }
}

fn serve(loaded: &Loaded) -> ExitCode {
    let settings = &loaded.settings;
    let _telemetry = mcp_obo::telemetry::init(&settings.log, &settings.telemetry);
    let result = actix_web::rt::System::new().block_on(async {
        let app = Application::build(settings, Dependencies::from_settings(settings)?)?;
        let metrics = match (settings.telemetry.metrics, app.metrics_addr()) {
            (false, _) => "off".to_owned(),
            (true, Some(addr)) => format!("http://{addr}/metrics"),
            (true, None) => "/metrics on the main listener".to_owned(),
        };
        tracing::info!(
            address = %app.local_addr(),
            mcp_url = %format!("{}/mcp", config::trim_slash(&settings.server.public_url)),
            auth_mode = settings.auth.mode.as_str(),
            metrics = %metrics,
            "mcp-obo listening"
        );
        if settings.auth.mode == AuthMode::None {
            tracing::warn!("auth.mode = none: no inbound authorization; tools use your developer credentials (az login). Loopback only.");
        }
        app.run_until_stopped(server::shutdown_signal())
            .await
            .map_err(server::StartError::Server)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // An error may name a configured URL, and a URL may carry a password.
            let e = config::redact_credentials(&e.to_string()).into_owned();
            tracing::error!(error = %e, "server failed");
            eprintln!("mcp-obo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `key = "value"  # source`, grouped by section; values are redacted (`settings::load`)
/// and escaped, so none can restyle or rewrite the terminal.
fn render_config(loaded: &Loaded) -> String {
    let mut out = String::new();
    let mut section = "";
    for (key, (value, source)) in &loaded.effective {
        let (sect, name) = key.split_once('.').unwrap_or(("", key));
        if sect != section {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&format!("[{sect}]\n"));
            section = sect;
        }
        // Debug quotes and escapes the value; `escape` also catches what Debug prints as is
        // (Unicode line separators, bidirectional overrides).
        let value = format!("{value:?}");
        let source = source.to_string();
        out.push_str(&format!(
            "{name} = {}  # {}\n",
            escape(&value),
            escape(&source)
        ));
    }
    out
}
