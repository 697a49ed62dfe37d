//! The `dev` command: wires the development identity provider and Graph emulator
//! ([`crate::devidp`]) to the production server, configured in Entra mode against them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{self as devidp, DEV_APP, DEV_TENANT, DevUser};
use crate::config::Env;
use crate::server::{self, Application, Dependencies};
use crate::settings;
use crate::tools::graph_permissions;

/// `mcp-obo dev` options.
#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// Port of the MCP server on 127.0.0.1; the identity provider, the Graph emulator and
    /// `/metrics` take the next three.
    #[arg(long, default_value_t = 7071)]
    pub port: u16,
    /// Port of the identity provider (default: --port + 1).
    #[arg(long)]
    pub idp_port: Option<u16>,
    /// Port of the Graph emulator (default: --port + 2).
    #[arg(long)]
    pub graph_port: Option<u16>,
    /// Port of the `/metrics` listener on 127.0.0.1 (default: --port + 3).
    #[arg(long)]
    pub metrics_port: Option<u16>,
    /// Folder for the development signing keys (kept between runs) and the federated token.
    #[arg(long, default_value = ".mcp-obo-dev")]
    pub state_dir: PathBuf,
    /// A development user, as "Name <email>" (repeatable). Default: Ada and Alan.
    #[arg(long = "user", value_name = "NAME <EMAIL>")]
    pub users: Vec<String>,
    /// A Graph permission of a registered tool (e.g. Calendars.Read) the --user users have
    /// not consented to (repeatable): the dev on-behalf-of exchange refuses it with
    /// AADSTS65001, so the incremental consent path can be tried. Needs --user; the default
    /// users (Ada and Alan) have consented to everything.
    #[arg(
        long = "without-consent",
        value_name = "PERMISSION",
        requires = "users"
    )]
    pub without_consent: Vec<String>,
}

/// Platform variables that would point the dev server at real cloud endpoints.
const PLATFORM_VARS: &[&str] = &[
    "FUNCTIONS_CUSTOMHANDLER_PORT",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_AUTHORITY_HOST",
    "AZURE_FEDERATED_TOKEN_FILE",
    "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID",
    "TOKEN_EXCHANGE_AUDIENCE",
    "IDENTITY_ENDPOINT",
    "WEBSITE_HOSTNAME",
    "WEBSITE_AUTH_CLIENT_ID",
    "CONTAINER_APP_HOSTNAME",
];

fn parse_user(raw: &str) -> Option<DevUser> {
    let (name, rest) = raw.split_once('<')?;
    let email = rest.trim().strip_suffix('>')?.trim();
    (!name.trim().is_empty() && email.contains('@')).then(|| DevUser::new(name.trim(), email))
}

/// Runs `mcp-obo dev` until SIGTERM/SIGINT.
pub fn run(args: &DevArgs, config_file: Option<&Path>, env: Env) -> ExitCode {
    let checked = dev_users(args).and_then(|users| Ok((users, ports(args)?)));
    let (users, ports) = match checked {
        Ok(checked) => checked,
        Err(message) => {
            eprintln!("mcp-obo dev: {message}");
            return ExitCode::from(2);
        }
    };
    let result = actix_web::rt::System::new().block_on(serve(args, config_file, env, users, ports));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-obo dev: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The `--user` users with their `--without-consent` permissions, or Ada and Alan; the
/// error says which argument is not valid.
fn dev_users(args: &DevArgs) -> Result<Vec<DevUser>, String> {
    let mut users = Vec::new();
    for raw in &args.users {
        match parse_user(raw) {
            Some(u) => users.push(u),
            None => {
                return Err(format!(
                    "--user {raw:?} is not valid; expected \"Name <email>\", e.g. \"Grace Hopper <grace@contoso.dev>\""
                ));
            }
        }
    }
    let known = graph_permissions();
    for permission in &args.without_consent {
        if !known
            .iter()
            .any(|p| p.value.eq_ignore_ascii_case(permission))
        {
            let values: Vec<&str> = known.iter().map(|p| p.value).collect();
            return Err(format!(
                "--without-consent {permission:?} is not a Graph permission of a registered tool; expected one of {}",
                values.join(", ")
            ));
        }
    }
    for user in &mut users {
        user.without_consent.clone_from(&args.without_consent);
    }
    if users.is_empty() {
        users = devidp::default_users();
    }
    Ok(users)
}

/// The ports beside the MCP server's.
struct Ports {
    idp: u16,
    graph: u16,
    metrics: u16,
}

/// The given ports, or the three after `--port`.
fn ports(args: &DevArgs) -> Result<Ports, String> {
    let idp = args.idp_port.or_else(|| args.port.checked_add(1));
    let graph = args.graph_port.or_else(|| args.port.checked_add(2));
    let metrics = args.metrics_port.or_else(|| args.port.checked_add(3));
    let (Some(idp), Some(graph), Some(metrics), false) = (idp, graph, metrics, args.port == 0)
    else {
        return Err(format!(
            "--port {} leaves no room for the identity provider, Graph emulator and metrics ports; choose another --port",
            args.port
        ));
    };
    Ok(Ports {
        idp,
        graph,
        metrics,
    })
}

/// Starts the identity provider and Graph emulator, then serves the production server
/// against them until stopped.
async fn serve(
    args: &DevArgs,
    config_file: Option<&Path>,
    env: Env,
    users: Vec<DevUser>,
    ports: Ports,
) -> Result<(), String> {
    let mcp_base = format!("http://127.0.0.1:{}", args.port);
    let resources = vec![
        format!("{mcp_base}/mcp"),
        format!("{mcp_base}/runtime/webhooks/mcp"),
        mcp_base.clone(),
    ];
    let mut services = devidp::start(
        ports.idp,
        ports.graph,
        &args.state_dir,
        resources.clone(),
        users.clone(),
    )
    .map_err(|e| e.to_string())?;
    services.spawn();
    let state_dir =
        std::fs::canonicalize(&args.state_dir).unwrap_or_else(|_| args.state_dir.clone());
    let token_file = state_dir.join("federated-token");
    let vars = server_vars(
        env,
        args.port,
        ports.metrics,
        &resources,
        &services,
        &token_file,
    );
    let doctor_config = state_dir.join("doctor.toml");
    write_doctor_config(&doctor_config, &vars)
        .map_err(|e| format!("cannot write {}: {e}", doctor_config.display()))?;
    let loaded = settings::load(config_file, &vars).map_err(|e| e.to_string())?;
    let settings = loaded.settings;
    let _telemetry = crate::telemetry::init(&settings.log, &settings.telemetry);
    if !settings.server.listen.ip().is_loopback() {
        return Err("mcp-obo dev listens on loopback only".to_owned());
    }
    let deps = Dependencies::from_settings(&settings).map_err(|e| e.to_string())?;
    let app = Application::build(&settings, deps).map_err(|e| e.to_string())?;
    let metrics_url = match (settings.telemetry.metrics, app.metrics_addr()) {
        (true, Some(addr)) => format!("http://{addr}/metrics"),
        _ => "off (telemetry.metrics = false)".to_owned(),
    };
    print_banner(
        &format!("{mcp_base}/mcp"),
        &metrics_url,
        &services,
        &users,
        &doctor_config,
    );
    app.run_until_stopped(server::shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

/// The environment the dev server runs with: `env` without anything that would point it at
/// real cloud endpoints, plus Entra mode against the dev services.
fn server_vars(
    env: Env,
    port: u16,
    metrics_port: u16,
    resources: &[String],
    services: &devidp::DevServices,
    token_file: &Path,
) -> Env {
    let mut vars: Env = env
        .into_iter()
        .filter(|(k, _)| {
            !PLATFORM_VARS.contains(&k.as_str())
                && !k.starts_with("MCP_OBO__AUTH__")
                && !k.starts_with("MCP_OBO__OBO__")
                && !k.starts_with("MCP_OBO__ENTRA__")
        })
        .collect();
    vars.extend(
        [
            ("MCP_OBO__SERVER__LISTEN", format!("127.0.0.1:{port}")),
            (
                "MCP_OBO__SERVER__PUBLIC_URL",
                format!("http://127.0.0.1:{port}"),
            ),
            (
                "MCP_OBO__TELEMETRY__METRICS_LISTEN",
                format!("127.0.0.1:{metrics_port}"),
            ),
            ("MCP_OBO__AUTH__MODE", "entra".into()),
            ("MCP_OBO__AUTH__AUDIENCES", resources.join(",")),
            ("MCP_OBO__ENTRA__TENANT_ID", DEV_TENANT.into()),
            ("MCP_OBO__ENTRA__CLIENT_ID", DEV_APP.into()),
            (
                "MCP_OBO__ENTRA__AUTHORITY_HOST",
                services.authority().to_owned(),
            ),
            ("MCP_OBO__GRAPH__BASE_URL", services.graph_base.clone()),
            ("MCP_OBO__OBO__CLIENT_ASSERTION", "workload_identity".into()),
            // Nothing to protect the dev provider from, and a developer trying the
            // consent path retries right after consenting.
            ("MCP_OBO__OBO__FAILURE_CACHE_TTL", "0s".into()),
            (
                "MCP_OBO__OBO__FEDERATED_TOKEN_FILE",
                token_file.display().to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v)),
    );
    vars
}

/// The `MCP_OBO__*` settings `dev` gives its server, as a configuration file, so that
/// `mcp-obo --config <state>/doctor.toml doctor` checks exactly that configuration.
fn write_doctor_config(path: &Path, vars: &Env) -> std::io::Result<()> {
    let mut sections: std::collections::BTreeMap<String, Vec<(String, String)>> =
        std::collections::BTreeMap::new();
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix("MCP_OBO__") else {
            continue;
        };
        if let Some((section, key)) = rest.split_once("__") {
            sections
                .entry(section.to_ascii_lowercase())
                .or_default()
                .push((key.to_ascii_lowercase(), value.clone()));
        }
    }
    let mut toml = String::from(
        "# Written by `mcp-obo dev`: the configuration it runs its server with, for\n# `mcp-obo --config <this file> doctor`.\n",
    );
    for (section, keys) in sections {
        toml.push_str(&format!("\n[{section}]\n"));
        for (key, value) in keys {
            // A TOML basic string: Rust's escaping of quotes and backslashes is TOML's.
            toml.push_str(&format!("{key} = {value:?}\n"));
        }
    }
    std::fs::write(path, toml)
}

fn print_banner(
    mcp_url: &str,
    metrics_url: &str,
    services: &devidp::DevServices,
    users: &[DevUser],
    doctor_config: &Path,
) {
    let entry = serde_json::json!({"servers": {"mcp-obo-dev": {"type": "http", "url": mcp_url}}});
    let pretty = serde_json::to_string_pretty(&entry).unwrap_or_default();
    let users: String = users
        .iter()
        .map(|u| {
            let missing = if u.without_consent.is_empty() {
                String::new()
            } else {
                format!(" (not consented: {})", u.without_consent.join(", "))
            };
            format!("  - {} <{}>{missing}\n", u.name, u.email)
        })
        .collect();
    println!(
        "mcp-obo dev is running (loopback only; Ctrl-C to stop)\n\n\
MCP server:        {mcp_url}\n\
Identity provider: {issuer}\n\
Graph emulator:    {graph}\n\
Metrics:           {metrics_url}\n\n\
Dev users (pick one on the sign-in page):\n{users}\n\
Check it all (configuration, endpoints, credential, app registration, the running server):\n\
  mcp-obo --config {config} doctor --graph-token-file {token} --url {mcp_url}\n\n\
VS Code (.vscode/mcp.json):\n{pretty}\n",
        issuer = services.state.issuer(),
        graph = services.graph_base,
        config = doctor_config.display(),
        token = services.graph_token_file.display(),
    );
}
