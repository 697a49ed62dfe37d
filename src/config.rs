//! Typed settings, layered as: built-in defaults < optional file (`--config PATH`) <
//! `MCP_OBO__SECTION__KEY` environment variables < the well-known variables the Azure platform
//! sets (`FUNCTIONS_CUSTOMHANDLER_PORT`, `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, ...).
//!
//! This is the only module that reads configuration files or the environment. It parses every
//! value into a typed [`Settings`] (URLs, socket addresses, durations, enums) and reports every
//! problem at once, each naming the key, the bad value and what is allowed. It also remembers
//! where each value came from, for `mcp-obo config`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, File, FileFormat};
use url::Url;

/// The built-in defaults, one entry per key the server understands.
const DEFAULTS: &str = include_str!("config/defaults.toml");

/// Prefix of the project's own environment variables (`MCP_OBO__SERVER__LISTEN`).
const ENV_PREFIX: &str = "MCP_OBO__";

/// Everything the server needs to start, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub auth: AuthSettings,
    pub entra: EntraSettings,
    pub obo: OboSettings,
    pub graph: GraphSettings,
    pub telemetry: TelemetrySettings,
    pub log: LogSettings,
}

/// Traces (OpenTelemetry, configured by the standard `OTEL_*` variables) and metrics.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// `/metrics` in Prometheus text format.
    pub metrics: bool,
    /// Serve `/metrics` on this address instead of the main listener.
    pub metrics_listen: Option<SocketAddr>,
    /// OTLP traces endpoint (full URL); `None` turns tracing export off.
    pub otlp_traces_endpoint: Option<Url>,
    pub otlp_protocol: OtlpProtocol,
    /// `OTEL_EXPORTER_OTLP_HEADERS` (e.g. an API key); values are secrets.
    pub otlp_headers: Vec<(String, Secret)>,
    pub service_name: String,
    /// `OTEL_RESOURCE_ATTRIBUTES` plus what the platform's variables reveal.
    pub resource_attributes: Vec<(String, String)>,
    pub sampler: Sampler,
}

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    HttpProtobuf,
    Grpc,
}

/// `OTEL_TRACES_SAMPLER` (+ `_ARG`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio(f64),
}

/// HTTP listener and MCP transport settings.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Where to listen. `FUNCTIONS_CUSTOMHANDLER_PORT` overrides it under the Functions host.
    pub listen: SocketAddr,
    /// The canonical public base URL clients use; the MCP endpoint is `{public_url}/mcp`.
    /// Drives the Host/Origin allow-lists and (later) the protected resource metadata.
    pub public_url: Url,
    /// Extra accepted `Host` values (`name` matches any port, `name:port` only that port).
    pub allowed_hosts: Vec<String>,
    /// Extra accepted browser origins (`scheme://host[:port]`).
    pub allowed_origins: Vec<String>,
    /// Whether sessions (`Mcp-Session-Id`) are offered to pre-2026 clients. Off by default:
    /// Functions custom-handler hosting and scale-out without affinity need stateless.
    pub sessions: bool,
    /// Stateless mode: answer sessions-era `tools/list` / `tools/call` without rmcp's
    /// per-request transport (`mcp/direct.rs`). Off sends every request through rmcp.
    pub fast_path: bool,
    /// Largest accepted request body; larger bodies get 413.
    pub max_body_bytes: usize,
    /// How long in-flight requests may run after SIGTERM/SIGINT before being dropped.
    pub shutdown_timeout: Duration,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Whether `public_url` was configured (or given by the platform) rather than derived
    /// from the listen address.
    pub public_url_explicit: bool,
    /// Peers whose `X-Forwarded-Host`/`-Proto` are believed when `public_url` is derived.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// Inbound authorization.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub mode: AuthMode,
    /// `oidc`: the issuer (`iss`); its discovery document gives the keys.
    pub issuer: Option<Url>,
    /// Accepted `aud` values. `entra`: the client id and identifier URIs are added.
    pub audiences: Vec<String>,
    /// `entra`: the app's identifier URIs; empty means `api://{client_id}`.
    pub identifier_uris: Vec<String>,
    /// Delegated scopes (as they appear in `scp`) every MCP request needs.
    pub required_scopes: Vec<String>,
    /// App roles that admit an app-only caller (no user); empty admits none.
    pub accepted_roles: Vec<String>,
    /// Client applications (`azp`/`appid`) allowed to call; empty allows any.
    pub allowed_client_apps: Vec<String>,
    /// `entra` with `organizations`/`common`: the tenants (`tid`) allowed.
    pub allowed_tenants: Vec<String>,
    /// Overrides the `authorization_servers` of the protected resource metadata.
    pub authorization_servers: Vec<Url>,
    /// `parent:child` pairs: a token with `parent` also satisfies `child`.
    pub scope_implies: Vec<(String, String)>,
    /// `Tool:scope` pairs: extra delegated scopes a tool needs beyond `required_scopes`.
    pub tool_scopes: Vec<(String, String)>,
    /// Clock skew allowed on `exp`/`nbf`.
    pub leeway: Duration,
    /// `resource_name` in the protected resource metadata.
    pub resource_name: String,
    pub jwks_refresh_interval: Duration,
    /// Unknown `kid` refreshes the keys at most this often.
    pub jwks_min_refresh_interval: Duration,
    /// Longer bearer tokens are refused before any parsing.
    pub max_token_bytes: usize,
}

/// How callers are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// No inbound authorization: loopback only, tools use the developer's own credentials.
    None,
    /// Microsoft Entra ID tokens (v1 and v2), validated by this server.
    Entra,
    /// Any OpenID Connect issuer's JWT access tokens.
    Oidc,
    /// Behind App Service / Container Apps built-in auth: its principal header is required
    /// and the token is still validated as in `entra`.
    EasyAuth,
}

impl AuthMode {
    const ALLOWED: &'static str = "none, entra, oidc, easyauth";

    fn parse(value: &str) -> Option<Self> {
        match value {
            "none" => Some(Self::None),
            "entra" => Some(Self::Entra),
            "oidc" => Some(Self::Oidc),
            "easyauth" => Some(Self::EasyAuth),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Entra => "entra",
            Self::Oidc => "oidc",
            Self::EasyAuth => "easyauth",
        }
    }
}

/// The Entra ID tenant and application this server belongs to.
#[derive(Debug, Clone)]
pub struct EntraSettings {
    /// Directory (tenant) id; also selects the tenant for developer credentials locally.
    pub tenant_id: Option<String>,
    /// The app registration's client id.
    pub client_id: Option<String>,
    /// Sign-in authority host (sovereign clouds, or a loopback fake in tests).
    pub authority_host: Url,
}

/// The on-behalf-of exchange: how the server proves who it is, and where it exchanges.
#[derive(Debug, Clone)]
pub struct OboSettings {
    pub grant: OboGrant,
    /// `None`: no exchange configured (tools that need Graph say so).
    pub client_assertion: Option<AssertionKind>,
    /// The confidential client doing the exchange (the app registration); defaults to
    /// `entra.client_id`.
    pub client_id: Option<String>,
    /// The user-assigned managed identity whose token is the client assertion.
    pub managed_identity_client_id: Option<String>,
    /// Audience of the federated assertion (`api://AzureADTokenExchange`; USGov/China differ).
    pub token_exchange_audience: String,
    /// Workload identity: the projected service-account token (re-read when it rotates).
    pub federated_token_file: Option<std::path::PathBuf>,
    /// `client_secret`: from `MCP_OBO__OBO__CLIENT_SECRET` or `client_secret_file` only.
    pub client_secret: Option<Secret>,
    /// `certificate`: PEM file with the certificate and its PKCS#8 private key.
    pub certificate_file: Option<std::path::PathBuf>,
    /// Overrides the token endpoint (Entra default: `{authority}/{tenant}/oauth2/v2.0/token`).
    pub token_endpoint: Option<Url>,
    /// RFC 8693 `audience` parameter, when the issuer wants one.
    pub audience: Option<String>,
    /// Where users grant consent (AADSTS65001); default `{public_url}/.auth/login/aad`.
    pub consent_url: Url,
    pub timeout: Duration,
    pub max_retries: u32,
    pub cache_max_entries: usize,
    /// Cached tokens are used until this long before the earlier of the two expiries.
    pub expiry_margin: Duration,
}

/// The exchange grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OboGrant {
    /// Entra's jwt-bearer grant with `requested_token_use=on_behalf_of`.
    EntraObo,
    /// RFC 8693 token exchange (Keycloak, Okta, Auth0, ...).
    TokenExchange,
}

/// Where the client credential comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionKind {
    ManagedIdentity,
    WorkloadIdentity,
    ClientSecret,
    Certificate,
}

/// A secret value: never printed.
#[derive(Clone)]
pub struct Secret(std::sync::Arc<str>);

impl Secret {
    pub fn new(value: impl Into<std::sync::Arc<str>>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Microsoft Graph client settings.
#[derive(Debug, Clone)]
pub struct GraphSettings {
    /// `https://graph.microsoft.com`, `https://graph.microsoft.us`,
    /// `https://microsoftgraph.chinacloudapi.cn`, or a test double.
    pub base_url: Url,
    pub connect_timeout: Duration,
    /// Total time allowed for one Graph request, body included.
    pub timeout: Duration,
}

/// Log output.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive such as `info` or `mcp_obo=debug,info`; `RUST_LOG` wins.
    pub level: String,
    /// Which HTTP requests get a log line.
    pub requests: RequestLogging,
}

/// Which HTTP requests get a log line (`log.requests`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestLogging {
    /// Every request (an access log).
    All,
    /// Requests answered 4xx/5xx or failed (successful ones are counted in `/metrics` and
    /// traced when OTLP is on): the default, since a line per call is most of a log bill
    /// and about a sixth of a tool call's CPU.
    Failures,
}

/// Log line format on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where a setting's effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    /// Derived from another setting (e.g. `public_url` from `listen`).
    Derived(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Env(name) => write!(f, "env {name}"),
            Self::Derived(from) => write!(f, "derived from {from}"),
        }
    }
}

/// One configuration problem, naming the key, the value and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Configuration could not be loaded; every problem found is listed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read configuration: {0}")]
    Read(String),
    #[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

/// Settings plus, for each key, its effective value (secrets redacted) and source.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub settings: Settings,
    pub effective: BTreeMap<String, (String, Source)>,
}

/// The process environment as a list, so loading is a pure function tests can call.
pub type Env = Vec<(String, String)>;

/// Read the process environment, once, for [`load`].
pub fn process_env() -> Env {
    std::env::vars().collect()
}

/// Loads settings from the layers described in the module docs.
///
/// # Errors
/// [`Error::Read`] when the file cannot be read or parsed; [`Error::Invalid`] listing every
/// unknown key and every bad value otherwise.
pub fn load(file: Option<&Path>, env: &Env) -> Result<Loaded, Error> {
    let defaults = Config::builder()
        .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
        .build()
        .map_err(|e| Read(format!("built-in defaults: {e}")))?;
    let known = flatten_keys(&defaults);

    let mut sources: BTreeMap<String, Source> =
        known.iter().map(|k| (k.clone(), Source::Default)).collect();
    let mut problems = Vec::new();
    let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));

    if let Some(path) = file {
        let from_file = Config::builder()
            .add_source(File::from(path).required(true))
            .build()
            .map_err(|e| Read(format!("{}: {e}", path.display())))?;
        for key in flatten_keys(&from_file) {
            if is_secret(&key) {
                problems.push(Problem {
                    key: key.clone(),
                    message: format!(
                        "secrets are not read from configuration files ({}); set the environment variable MCP_OBO__{} or point {}_file at a file outside the repository",
                        path.display(),
                        key.to_ascii_uppercase().replace('.', "__"),
                        key
                    ),
                });
            } else if known.contains(&key) {
                sources.insert(key, Source::File(path.to_path_buf()));
            } else {
                problems.push(unknown_key(&key, &format!("file {}", path.display())));
            }
        }
        builder = builder.add_source(File::from(path).required(true));
    }

    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let key = rest.to_ascii_lowercase().replace("__", ".");
        if !known.contains(&key) {
            problems.push(unknown_key(&key, &format!("env {name}")));
            continue;
        }
        builder = set(builder, &key, value);
        sources.insert(key, Source::Env(name.clone()));
    }

    for (key, name, value) in well_known(env) {
        builder = set(builder, key, &value);
        sources.insert(key.to_owned(), Source::Env(name.to_owned()));
    }

    let merged = builder
        .build()
        .map_err(|e| Read(format!("merging layers: {e}")))?;
    let mut fields = Fields {
        config: &merged,
        problems,
    };
    let settings = parse(&mut fields, &mut sources, env);
    if !fields.problems.is_empty() {
        return Err(Error::Invalid(fields.problems));
    }
    let Some(settings) = settings else {
        return Err(Error::Invalid(vec![Problem {
            key: "(all)".into(),
            message: "configuration could not be parsed".into(),
        }]));
    };
    let effective = effective_values(&merged, &known, &settings, &sources);
    Ok(Loaded {
        settings,
        effective,
    })
}

use Error::Read;

fn unknown_key(key: &str, from: &str) -> Problem {
    Problem {
        key: key.to_owned(),
        message: format!(
            "unknown key (from {from}); see the configuration reference in README.md for the keys that exist"
        ),
    }
}

/// Keys holding lists; from the environment they are comma-separated.
const LIST_KEYS: &[&str] = &[
    "server.allowed_hosts",
    "server.allowed_origins",
    "server.trusted_proxies",
    "auth.audiences",
    "auth.identifier_uris",
    "auth.required_scopes",
    "auth.accepted_roles",
    "auth.allowed_client_apps",
    "auth.allowed_tenants",
    "auth.authorization_servers",
    "auth.scope_implies",
    "auth.tool_scopes",
];

/// Keys like `server.allowed_hosts` accept a comma-separated string from the environment.
fn set(
    builder: config::ConfigBuilder<config::builder::DefaultState>,
    key: &str,
    value: &str,
) -> config::ConfigBuilder<config::builder::DefaultState> {
    let is_list = LIST_KEYS.contains(&key);
    let result = if is_list {
        let items: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        builder.clone().set_override(key, items)
    } else {
        builder.clone().set_override(key, value)
    };
    // set_override only fails for an unparsable key path; every key here comes from the
    // defaults file, so the fallback keeps the previous builder and is never taken.
    result.unwrap_or(builder)
}

/// The Azure platform's own variables, mapped onto settings (highest precedence).
fn well_known(env: &Env) -> Vec<(&'static str, &'static str, String)> {
    let get = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut out = Vec::new();
    if let Some(port) = get("FUNCTIONS_CUSTOMHANDLER_PORT") {
        // The Functions host proxies to the custom handler over loopback.
        out.push((
            "server.listen",
            "FUNCTIONS_CUSTOMHANDLER_PORT",
            format!("127.0.0.1:{port}"),
        ));
    }
    if let Some(tenant) = get("AZURE_TENANT_ID") {
        out.push(("entra.tenant_id", "AZURE_TENANT_ID", tenant));
    }
    if let Some(client) = get("AZURE_CLIENT_ID") {
        out.push(("entra.client_id", "AZURE_CLIENT_ID", client));
    }
    if let Some(host) = get("AZURE_AUTHORITY_HOST") {
        out.push(("entra.authority_host", "AZURE_AUTHORITY_HOST", host));
    }
    if let Some(id) = get("OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID") {
        out.push((
            "obo.managed_identity_client_id",
            "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID",
            id,
        ));
    }
    if let Some(audience) = get("TOKEN_EXCHANGE_AUDIENCE") {
        out.push((
            "obo.token_exchange_audience",
            "TOKEN_EXCHANGE_AUDIENCE",
            audience,
        ));
    }
    if let Some(file) = get("AZURE_FEDERATED_TOKEN_FILE") {
        out.push((
            "obo.federated_token_file",
            "AZURE_FEDERATED_TOKEN_FILE",
            file,
        ));
    }
    if get("AZURE_CLIENT_ID").is_none()
        && let Some(client) = get("WEBSITE_AUTH_CLIENT_ID")
    {
        out.push(("entra.client_id", "WEBSITE_AUTH_CLIENT_ID", client));
    }
    out
}

fn flatten_keys(config: &Config) -> Vec<String> {
    fn walk(prefix: &str, table: config::Map<String, config::Value>, out: &mut Vec<String>) {
        for (name, value) in table {
            let key = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}.{name}")
            };
            match value.kind {
                config::ValueKind::Table(inner) => walk(&key, inner, out),
                _ => out.push(key),
            }
        }
    }
    let mut out = Vec::new();
    if let Ok(table) = config
        .clone()
        .try_deserialize::<config::Map<String, config::Value>>()
    {
        walk("", table, &mut out);
    }
    out
}

/// Reads typed values out of the merged config, collecting every problem.
struct Fields<'a> {
    config: &'a Config,
    problems: Vec<Problem>,
}

impl Fields<'_> {
    fn problem(&mut self, key: &str, message: String) {
        self.problems.push(Problem {
            key: key.to_owned(),
            message,
        });
    }

    fn string(&mut self, key: &str) -> String {
        match self.config.get_string(key) {
            Ok(value) => value.trim().to_owned(),
            Err(e) => {
                self.problem(key, format!("expected a string: {e}"));
                String::new()
            }
        }
    }

    fn optional(&mut self, key: &str) -> Option<String> {
        Some(self.string(key)).filter(|v| !v.is_empty())
    }

    fn list(&mut self, key: &str) -> Vec<String> {
        match self.config.get::<Vec<String>>(key) {
            Ok(items) => items.into_iter().map(|s| s.trim().to_owned()).collect(),
            Err(_) => {
                // A single string (from a file) is accepted as a comma-separated list.
                let value = self.string(key);
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
        }
    }

    /// One of a fixed set of words, e.g. `text` or `json`.
    fn choice<T: Copy>(&mut self, key: &str, options: &[(&str, T)]) -> Option<T> {
        let raw = self.string(key);
        if let Some((_, value)) = options.iter().find(|(word, _)| *word == raw) {
            return Some(*value);
        }
        let words: Vec<&str> = options.iter().map(|(word, _)| *word).collect();
        let allowed = match words.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        self.problem(key, format!("{raw:?} is not valid; expected {allowed}"));
        None
    }

    fn parsed<T: std::str::FromStr>(&mut self, key: &str, allowed: &str) -> Option<T> {
        let raw = self.string(key);
        match raw.parse::<T>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.problem(key, format!("{raw:?} is not valid; expected {allowed}"));
                None
            }
        }
    }

    fn bool(&mut self, key: &str) -> Option<bool> {
        let raw = self.string(key);
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => {
                self.problem(key, format!("{raw:?} is not valid; expected true or false"));
                None
            }
        }
    }

    fn duration(&mut self, key: &str) -> Option<Duration> {
        let raw = self.string(key);
        match humantime::parse_duration(&raw) {
            Ok(d) => Some(d),
            Err(_) => {
                self.problem(
                    key,
                    format!("{raw:?} is not valid; expected a duration such as 500ms, 10s or 2m"),
                );
                None
            }
        }
    }

    /// An absolute http(s) URL. Plain `http` only for loopback hosts unless `any_http`.
    fn url(&mut self, key: &str, any_http: bool) -> Option<Url> {
        let raw = self.string(key);
        let url = match Url::parse(&raw) {
            Ok(url) => url,
            Err(_) => {
                self.problem(
                    key,
                    format!("{raw:?} is not valid; expected an absolute URL such as https://host"),
                );
                return None;
            }
        };
        match url.scheme() {
            "https" => Some(url),
            "http" if any_http || is_loopback_url(&url) => Some(url),
            "http" => {
                self.problem(
                    key,
                    format!(
                        "{raw:?} uses plain http; https is required except for loopback addresses (localhost, 127.0.0.1, [::1])"
                    ),
                );
                None
            }
            other => {
                self.problem(
                    key,
                    format!("{raw:?} has scheme {other:?}; expected https (or http for loopback)"),
                );
                None
            }
        }
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits.
pub fn is_guid(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Whether the URL's host is a loopback name or address.
pub fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Variables only a hosting platform sets, and the platform each reveals.
const HOSTING_PLATFORM_VARS: &[(&str, &str)] = &[
    ("FUNCTIONS_CUSTOMHANDLER_PORT", "Azure Functions"),
    ("WEBSITE_HOSTNAME", "Azure App Service or Functions"),
    ("CONTAINER_APP_NAME", "Azure Container Apps"),
    ("KUBERNETES_SERVICE_HOST", "Kubernetes"),
];

/// Whether `name` is in `env` with a non-blank value.
fn is_set(env: &Env, name: &str) -> bool {
    env.iter().any(|(k, v)| k == name && !v.trim().is_empty())
}

fn parse(
    f: &mut Fields<'_>,
    sources: &mut BTreeMap<String, Source>,
    env: &Env,
) -> Option<Settings> {
    let listen: Option<SocketAddr> = f.parsed(
        "server.listen",
        "an IP address and port such as 127.0.0.1:7071 or 0.0.0.0:8080",
    );
    let (public_url, public_url_explicit) = match f.optional("server.public_url") {
        Some(_) => (f.url("server.public_url", false), true),
        None => {
            let url = derive_public_url(env, listen, sources);
            let explicit = !matches!(sources.get("server.public_url"), Some(Source::Derived(_)));
            (url, explicit)
        }
    };
    let mut trusted_proxies = Vec::new();
    for raw in f.list("server.trusted_proxies") {
        match raw.parse::<std::net::IpAddr>() {
            Ok(ip) => trusted_proxies.push(ip),
            Err(_) => f.problem(
                "server.trusted_proxies",
                format!("{raw:?} is not valid; expected IP addresses such as 10.0.0.4"),
            ),
        }
    }
    let allowed_hosts = f.list("server.allowed_hosts");
    let allowed_origins = f.list("server.allowed_origins");
    for origin in &allowed_origins {
        let ok = Url::parse(origin).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            f.problem(
                "server.allowed_origins",
                format!(
                    "{origin:?} is not valid; expected an origin such as https://app.example.com"
                ),
            );
        }
    }
    let sessions = f.bool("server.sessions");
    let fast_path = f.bool("server.fast_path");
    let max_body_bytes: Option<usize> = f.parsed("server.max_body_bytes", "a number of bytes");
    if max_body_bytes.is_some_and(|n| n < 1024) {
        f.problem("server.max_body_bytes", "must be at least 1024".into());
    }
    let shutdown_timeout = f.duration("server.shutdown_timeout");
    let workers: Option<usize> =
        f.parsed("server.workers", "a number of threads (0 = one per core)");

    let mode_raw = f.string("auth.mode");
    let mode = AuthMode::parse(&mode_raw);
    if mode.is_none() {
        f.problem(
            "auth.mode",
            format!(
                "{mode_raw:?} is not valid; expected one of: {}",
                AuthMode::ALLOWED
            ),
        );
    }
    let auth = parse_auth(f, mode);
    if mode == Some(AuthMode::None)
        && let Some(addr) = listen
        && !addr.ip().is_loopback()
    {
        f.problem(
            "auth.mode",
            format!(
                "\"none\" (no inbound authorization) is allowed only on a loopback listen address, but server.listen is {addr}; listen on 127.0.0.1 or configure authorization"
            ),
        );
    }
    if mode == Some(AuthMode::None) {
        // On a hosting platform a loopback address proves nothing: the Functions host, for
        // one, forwards public traffic to a handler listening on 127.0.0.1.
        let platform: Vec<String> = HOSTING_PLATFORM_VARS
            .iter()
            .filter(|(name, _)| is_set(env, name))
            .map(|(name, platform)| format!("{name} is set: {platform}"))
            .collect();
        if !platform.is_empty() {
            f.problem(
                "auth.mode",
                format!(
                    "\"none\" (no inbound authorization) is refused on a hosting platform, where the public can reach the server even on a loopback address ({}); set auth.mode (MCP_OBO__AUTH__MODE) to entra, easyauth or oidc",
                    platform.join(", ")
                ),
            );
        }
    }

    let tenant_id = f.optional("entra.tenant_id");
    if let Some(t) = &tenant_id
        && !t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        f.problem(
            "entra.tenant_id",
            format!("{t:?} is not valid; expected a tenant GUID or domain such as contoso.onmicrosoft.com"),
        );
    }
    let client_id = f.optional("entra.client_id");
    let authority_host = f.url("entra.authority_host", false);
    if matches!(mode, Some(AuthMode::Entra | AuthMode::EasyAuth)) {
        let mode = mode.map(AuthMode::as_str).unwrap_or_default();
        if client_id.is_none() {
            f.problem(
                "entra.client_id",
                format!("required with auth.mode = {mode}: the application (client) id of the server's app registration (or set AZURE_CLIENT_ID)"),
            );
        }
        match tenant_id.as_deref() {
            None => f.problem(
                "entra.tenant_id",
                format!("required with auth.mode = {mode}: the directory (tenant) id, or organizations with auth.allowed_tenants (or set AZURE_TENANT_ID)"),
            ),
            Some(t) if !matches!(t, "organizations" | "common") && !is_guid(t) => f.problem(
                "entra.tenant_id",
                format!("{t:?} is not valid with auth.mode = {mode}; expected the tenant GUID (tokens carry it in tid), or organizations with auth.allowed_tenants"),
            ),
            Some("organizations" | "common")
                if auth.as_ref().is_some_and(|a| a.allowed_tenants.is_empty()) =>
            {
                f.problem(
                    "auth.allowed_tenants",
                    "required when entra.tenant_id is organizations or common: list the tenant ids whose users may call".into(),
                );
            }
            _ => {}
        }
    }

    let obo = parse_obo(f, env, mode, public_url.as_ref(), sources);

    let base_url = f.url("graph.base_url", false);
    let connect_timeout = f.duration("graph.connect_timeout");
    let timeout = f.duration("graph.timeout");

    let telemetry = parse_telemetry(f, env);

    let format = f.choice(
        "log.format",
        &[("text", LogFormat::Text), ("json", LogFormat::Json)],
    );
    let requests = f.choice(
        "log.requests",
        &[
            ("all", RequestLogging::All),
            ("failures", RequestLogging::Failures),
        ],
    );
    let level = f.string("log.level");
    if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
        f.problem(
            "log.level",
            format!("{level:?} is not valid; expected a level (error, warn, info, debug, trace) or directives such as mcp_obo=debug,info"),
        );
    }

    Some(Settings {
        server: ServerSettings {
            listen: listen?,
            public_url: public_url?,
            allowed_hosts,
            allowed_origins,
            sessions: sessions?,
            fast_path: fast_path?,
            max_body_bytes: max_body_bytes?,
            shutdown_timeout: shutdown_timeout?,
            workers: workers?,
            public_url_explicit,
            trusted_proxies,
        },
        auth: auth?,
        entra: EntraSettings {
            tenant_id,
            client_id,
            authority_host: authority_host?,
        },
        obo: obo?,
        graph: GraphSettings {
            base_url: base_url?,
            connect_timeout: connect_timeout?,
            timeout: timeout?,
        },
        telemetry: telemetry?,
        log: LogSettings {
            format: format?,
            level,
            requests: requests?,
        },
    })
}

fn parse_auth(f: &mut Fields<'_>, mode: Option<AuthMode>) -> Option<AuthSettings> {
    let issuer = match f.optional("auth.issuer") {
        Some(_) => f.url("auth.issuer", false),
        None => None,
    };
    let audiences = f.list("auth.audiences");
    if mode == Some(AuthMode::Oidc) {
        if issuer.is_none() && f.optional("auth.issuer").is_none() {
            f.problem(
                "auth.issuer",
                "required with auth.mode = oidc: the issuer URL whose discovery document lists the signing keys".into(),
            );
        }
        if audiences.is_empty() {
            f.problem(
                "auth.audiences",
                "required with auth.mode = oidc: the aud value(s) the issuer puts in tokens for this server (usually the MCP URL)".into(),
            );
        }
    }
    let mut authorization_servers = Vec::new();
    for raw in f.list("auth.authorization_servers") {
        match Url::parse(&raw) {
            Ok(url) if url.scheme() == "https" || is_loopback_url(&url) => {
                authorization_servers.push(url)
            }
            _ => f.problem(
                "auth.authorization_servers",
                format!("{raw:?} is not valid; expected https issuer URLs"),
            ),
        }
    }
    let mut scope_implies = Vec::new();
    for raw in f.list("auth.scope_implies") {
        match raw.split_once(':') {
            Some((parent, child)) if !parent.trim().is_empty() && !child.trim().is_empty() => {
                scope_implies.push((parent.trim().to_owned(), child.trim().to_owned()));
            }
            _ => f.problem(
                "auth.scope_implies",
                format!(
                    "{raw:?} is not valid; expected parent:child, e.g. Mail.ReadWrite:Mail.Read"
                ),
            ),
        }
    }
    let mut tool_scopes = Vec::new();
    for raw in f.list("auth.tool_scopes") {
        match raw.split_once(':') {
            Some((tool, scope)) if !tool.trim().is_empty() && !scope.trim().is_empty() => {
                tool_scopes.push((tool.trim().to_owned(), scope.trim().to_owned()));
            }
            _ => f.problem(
                "auth.tool_scopes",
                format!("{raw:?} is not valid; expected Tool:scope, e.g. HelloTool:Profile.Read"),
            ),
        }
    }
    let leeway = f.duration("auth.leeway");
    if leeway.is_some_and(|l| l > Duration::from_secs(600)) {
        f.problem("auth.leeway", "must be at most 10m".into());
    }
    let jwks_refresh_interval = f.duration("auth.jwks_refresh_interval");
    let jwks_min_refresh_interval = f.duration("auth.jwks_min_refresh_interval");
    let max_token_bytes: Option<usize> = f.parsed("auth.max_token_bytes", "a number of bytes");
    Some(AuthSettings {
        mode: mode?,
        issuer,
        audiences,
        identifier_uris: f.list("auth.identifier_uris"),
        required_scopes: f.list("auth.required_scopes"),
        accepted_roles: f.list("auth.accepted_roles"),
        allowed_client_apps: f.list("auth.allowed_client_apps"),
        allowed_tenants: f.list("auth.allowed_tenants"),
        authorization_servers,
        scope_implies,
        tool_scopes,
        leeway: leeway?,
        resource_name: f.string("auth.resource_name"),
        jwks_refresh_interval: jwks_refresh_interval?,
        jwks_min_refresh_interval: jwks_min_refresh_interval?,
        max_token_bytes: max_token_bytes?,
    })
}

fn parse_obo(
    f: &mut Fields<'_>,
    env: &Env,
    mode: Option<AuthMode>,
    public_url: Option<&Url>,
    sources: &mut BTreeMap<String, Source>,
) -> Option<OboSettings> {
    let env_set = |name: &str| env.iter().any(|(k, v)| k == name && !v.trim().is_empty());
    let grant_raw = f.string("obo.grant");
    let grant = match grant_raw.as_str() {
        "entra_obo" => Some(OboGrant::EntraObo),
        "token_exchange" => Some(OboGrant::TokenExchange),
        _ => {
            f.problem(
                "obo.grant",
                format!("{grant_raw:?} is not valid; expected entra_obo or token_exchange"),
            );
            None
        }
    };
    let federated_token_file = f
        .optional("obo.federated_token_file")
        .map(std::path::PathBuf::from);
    let kind_raw = f.string("obo.client_assertion");
    let client_assertion = match kind_raw.as_str() {
        "managed_identity" => Some(AssertionKind::ManagedIdentity),
        "workload_identity" => Some(AssertionKind::WorkloadIdentity),
        "client_secret" => Some(AssertionKind::ClientSecret),
        "certificate" => Some(AssertionKind::Certificate),
        // Not set: detect the platform's federation when inbound authorization is on.
        "" if mode.is_some_and(|m| m != AuthMode::None) => {
            let detected = if federated_token_file.is_some() {
                Some((
                    AssertionKind::WorkloadIdentity,
                    "AZURE_FEDERATED_TOKEN_FILE",
                ))
            } else if env_set("IDENTITY_ENDPOINT") {
                Some((AssertionKind::ManagedIdentity, "IDENTITY_ENDPOINT"))
            } else {
                None
            };
            if let Some((_, from)) = detected {
                sources.insert("obo.client_assertion".into(), Source::Derived(from));
            }
            detected.map(|(k, _)| k)
        }
        "" => None,
        other => {
            f.problem(
                "obo.client_assertion",
                format!("{other:?} is not valid; expected managed_identity, workload_identity, client_secret or certificate"),
            );
            None
        }
    };
    let secret_file = f.optional("obo.client_secret_file");
    let client_secret = match (f.optional("obo.client_secret"), secret_file) {
        (Some(secret), _) => Some(Secret::new(secret)),
        (None, Some(path)) => match std::fs::read_to_string(&path) {
            Ok(s) if !s.trim().is_empty() => Some(Secret::new(s.trim())),
            _ => {
                f.problem(
                    "obo.client_secret_file",
                    format!("cannot read a secret from {path:?}"),
                );
                None
            }
        },
        (None, None) => None,
    };
    let certificate_file = f
        .optional("obo.certificate_file")
        .map(std::path::PathBuf::from);
    match client_assertion {
        Some(AssertionKind::WorkloadIdentity) if federated_token_file.is_none() => f.problem(
            "obo.federated_token_file",
            "required with obo.client_assertion = workload_identity (AKS sets AZURE_FEDERATED_TOKEN_FILE when the pod uses workload identity)".into(),
        ),
        Some(AssertionKind::ClientSecret) if client_secret.is_none() => f.problem(
            "obo.client_secret",
            "required with obo.client_assertion = client_secret: set MCP_OBO__OBO__CLIENT_SECRET or obo.client_secret_file".into(),
        ),
        Some(AssertionKind::Certificate) if certificate_file.is_none() => f.problem(
            "obo.certificate_file",
            "required with obo.client_assertion = certificate: a PEM file with the certificate and its PKCS#8 private key".into(),
        ),
        _ => {}
    }
    let token_endpoint_set = f.optional("obo.token_endpoint").is_some();
    let token_endpoint = if token_endpoint_set {
        f.url("obo.token_endpoint", false)
    } else {
        None
    };
    if grant == Some(OboGrant::TokenExchange)
        && client_assertion.is_some()
        && token_endpoint.is_none()
    {
        f.problem(
            "obo.token_endpoint",
            "required with obo.grant = token_exchange: the issuer's token endpoint".into(),
        );
    }
    // Without it the Entra endpoint is built per caller from the token's tenant claim, which
    // a non-Entra issuer's tokens can set to anything.
    if mode == Some(AuthMode::Oidc)
        && grant == Some(OboGrant::EntraObo)
        && client_assertion.is_some()
        && !token_endpoint_set
    {
        f.problem(
            "obo.token_endpoint",
            "required with auth.mode = oidc and obo.grant = entra_obo: set MCP_OBO__OBO__TOKEN_ENDPOINT (obo.token_endpoint) to the Entra token endpoint to exchange at, e.g. https://login.microsoftonline.com/<tenant id>/oauth2/v2.0/token, or use obo.grant = token_exchange with the issuer's own token endpoint".into(),
        );
    }
    let consent_url = match f.optional("obo.consent_url") {
        Some(_) => f.url("obo.consent_url", false),
        None => {
            public_url.and_then(|u| Url::parse(&format!("{}/.auth/login/aad", trim_slash(u))).ok())
        }
    };
    let timeout = f.duration("obo.timeout");
    let max_retries: Option<u32> = f.parsed("obo.max_retries", "a number of retries (0-5)");
    if max_retries.is_some_and(|n| n > 5) {
        f.problem("obo.max_retries", "must be at most 5".into());
    }
    let cache_max_entries: Option<usize> =
        f.parsed("obo.cache_max_entries", "a number of cached tokens");
    if cache_max_entries == Some(0) {
        f.problem("obo.cache_max_entries", "must be at least 1".into());
    }
    let expiry_margin = f.duration("obo.expiry_margin");
    Some(OboSettings {
        grant: grant?,
        client_assertion,
        client_id: f.optional("obo.client_id"),
        managed_identity_client_id: f.optional("obo.managed_identity_client_id"),
        token_exchange_audience: f.string("obo.token_exchange_audience"),
        federated_token_file,
        client_secret,
        certificate_file,
        token_endpoint,
        audience: f.optional("obo.audience"),
        consent_url: consent_url?,
        timeout: timeout?,
        max_retries: max_retries?,
        cache_max_entries: cache_max_entries?,
        expiry_margin: expiry_margin?,
    })
}

/// Telemetry: `telemetry.*` keys plus the standard OpenTelemetry variables.
fn parse_telemetry(f: &mut Fields<'_>, env: &Env) -> Option<TelemetrySettings> {
    let get = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let metrics = f.bool("telemetry.metrics");
    let metrics_listen = match f.optional("telemetry.metrics_listen") {
        Some(_) => f.parsed::<SocketAddr>(
            "telemetry.metrics_listen",
            "an IP address and port such as 0.0.0.0:9464",
        ),
        None => None,
    };
    let protocol_raw = get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|| "http/protobuf".into());
    let otlp_protocol = match protocol_raw.as_str() {
        "http/protobuf" => OtlpProtocol::HttpProtobuf,
        "grpc" => OtlpProtocol::Grpc,
        other => {
            f.problem(
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                format!("{other:?} is not supported; expected http/protobuf or grpc"),
            );
            OtlpProtocol::HttpProtobuf
        }
    };
    let traces_endpoint = match (
        get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        get("OTEL_EXPORTER_OTLP_ENDPOINT"),
    ) {
        (Some(full), _) => Some(("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", full)),
        // The base endpoint gets the signal path appended for HTTP (OTLP spec).
        (None, Some(base)) if otlp_protocol == OtlpProtocol::HttpProtobuf => Some((
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("{}/v1/traces", base.trim_end_matches('/')),
        )),
        (None, Some(base)) => Some(("OTEL_EXPORTER_OTLP_ENDPOINT", base)),
        (None, None) => None,
    };
    let otlp_traces_endpoint = match traces_endpoint {
        Some((name, raw)) => {
            match Url::parse(&raw) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
                _ => {
                    f.problem(name, format!("{raw:?} is not valid; expected a URL such as http://otel-collector:4318"));
                    None
                }
            }
        }
        None => None,
    };
    let otlp_headers = get("OTEL_EXPORTER_OTLP_HEADERS")
        .map(|raw| {
            raw.split(',')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.trim().to_owned(), Secret::new(v.trim())))
                .collect()
        })
        .unwrap_or_default();
    let mut resource_attributes: Vec<(String, String)> = get("OTEL_RESOURCE_ATTRIBUTES")
        .map(|raw| {
            raw.split(',')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    resource_attributes.extend(platform_attributes(&get));
    let ratio = get("OTEL_TRACES_SAMPLER_ARG").map(|a| a.parse::<f64>());
    let ratio = match ratio {
        None => 1.0,
        Some(Ok(r)) if (0.0..=1.0).contains(&r) => r,
        Some(_) => {
            f.problem(
                "OTEL_TRACES_SAMPLER_ARG",
                "expected a ratio between 0 and 1".into(),
            );
            1.0
        }
    };
    let sampler = match get("OTEL_TRACES_SAMPLER")
        .as_deref()
        .unwrap_or("parentbased_always_on")
    {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatio(ratio),
        "parentbased_always_on" => Sampler::ParentBasedAlwaysOn,
        "parentbased_always_off" => Sampler::ParentBasedAlwaysOff,
        "parentbased_traceidratio" => Sampler::ParentBasedTraceIdRatio(ratio),
        other => {
            f.problem(
                "OTEL_TRACES_SAMPLER",
                format!("{other:?} is not supported; expected always_on, always_off, traceidratio or a parentbased_ variant"),
            );
            Sampler::ParentBasedAlwaysOn
        }
    };
    Some(TelemetrySettings {
        metrics: metrics?,
        metrics_listen,
        otlp_traces_endpoint,
        otlp_protocol,
        otlp_headers,
        service_name: get("OTEL_SERVICE_NAME").unwrap_or_else(|| "mcp-obo".into()),
        resource_attributes,
        sampler,
    })
}

/// Resource attributes the hosting platform's own variables reveal.
fn platform_attributes(get: &dyn Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut push = |k: &str, v: String| out.push((k.to_owned(), v));
    if let Some(app) = get("CONTAINER_APP_NAME") {
        push("cloud.provider", "azure".into());
        push("cloud.platform", "azure_container_apps".into());
        push("service.namespace", app);
        if let Some(rev) = get("CONTAINER_APP_REVISION") {
            push("service.version.revision", rev);
        }
        if let Some(replica) = get("CONTAINER_APP_REPLICA_NAME") {
            push("service.instance.id", replica);
        }
    } else if let Some(site) = get("WEBSITE_SITE_NAME") {
        push("cloud.provider", "azure".into());
        push("cloud.platform", "azure_functions".into());
        push("faas.name", site);
        if let Some(instance) = get("WEBSITE_INSTANCE_ID") {
            push("faas.instance", instance);
        }
    }
    if get("KUBERNETES_SERVICE_HOST").is_some() {
        if let Some(pod) = get("POD_NAME").or_else(|| get("HOSTNAME")) {
            push("k8s.pod.name", pod);
        }
        if let Some(ns) = get("POD_NAMESPACE") {
            push("k8s.namespace.name", ns);
        }
    }
    out
}

/// Without an explicit `public_url`: the platform's host name when it says one, else the
/// listen address (local use).
fn derive_public_url(
    env: &Env,
    listen: Option<SocketAddr>,
    sources: &mut BTreeMap<String, Source>,
) -> Option<Url> {
    let platform = ["WEBSITE_HOSTNAME", "CONTAINER_APP_HOSTNAME"]
        .into_iter()
        .find_map(|name| {
            env.iter()
                .find(|(k, v)| k == name && !v.trim().is_empty())
                .map(|(_, v)| (name, v.trim().to_owned()))
        });
    if let Some((name, host)) = platform
        && let Ok(url) = Url::parse(&format!("https://{host}"))
    {
        sources.insert("server.public_url".into(), Source::Env(name.to_owned()));
        return Some(url);
    }
    let addr = listen?;
    let host = if addr.ip().is_unspecified() {
        "localhost".to_owned()
    } else {
        match addr {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        }
    };
    sources.insert("server.public_url".into(), Source::Derived("server.listen"));
    Url::parse(&format!("http://{host}:{}", addr.port())).ok()
}

fn effective_values(
    merged: &Config,
    known: &[String],
    settings: &Settings,
    sources: &BTreeMap<String, Source>,
) -> BTreeMap<String, (String, Source)> {
    known
        .iter()
        .map(|key| {
            let value = match key.as_str() {
                // Derived values are shown as the server will use them.
                "server.public_url" => trim_slash(&settings.server.public_url),
                "server.listen" => settings.server.listen.to_string(),
                _ if is_secret(key) => "<redacted>".to_owned(),
                _ => display_value(merged.get::<config::Value>(key).ok()),
            };
            let source = sources.get(key).cloned().unwrap_or(Source::Default);
            (key.clone(), (value, source))
        })
        .collect()
}

/// Keys whose values are never printed.
fn is_secret(key: &str) -> bool {
    let name = key.rsplit('.').next().unwrap_or(key);
    name.ends_with("secret") || name.contains("password") || name.ends_with("private_key")
}

fn display_value(value: Option<config::Value>) -> String {
    let Some(value) = value else {
        return String::new();
    };
    match value.kind {
        config::ValueKind::Array(items) => items
            .into_iter()
            .map(|v| display_value(Some(v)))
            .collect::<Vec<_>>()
            .join(","),
        _ => value.to_string(),
    }
}

/// A URL as users write it: no trailing slash on a bare origin.
pub fn trim_slash(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_load_and_listen_on_loopback() {
        let loaded = load(None, &env(&[])).expect("defaults are valid");
        assert_eq!(loaded.settings.server.listen.to_string(), "127.0.0.1:7071");
        assert_eq!(
            loaded.settings.server.public_url.as_str(),
            "http://127.0.0.1:7071/"
        );
        assert_eq!(loaded.effective["server.listen"].1, Source::Default);
    }

    #[test]
    fn functions_port_wins_over_project_env() {
        let loaded = load(
            None,
            &env(&[
                ("MCP_OBO__SERVER__LISTEN", "127.0.0.1:9000"),
                ("FUNCTIONS_CUSTOMHANDLER_PORT", "8123"),
                // auth.mode = none is refused under the Functions host.
                ("MCP_OBO__AUTH__MODE", "entra"),
                ("AZURE_TENANT_ID", "11111111-2222-3333-4444-555555555555"),
                ("AZURE_CLIENT_ID", "66666666-7777-8888-9999-000000000000"),
            ]),
        )
        .expect("valid");
        assert_eq!(loaded.settings.server.listen.port(), 8123);
        assert_eq!(
            loaded.effective["server.listen"].1,
            Source::Env("FUNCTIONS_CUSTOMHANDLER_PORT".into())
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let Err(Error::Invalid(problems)) = load(
            None,
            &env(&[
                ("MCP_OBO__SERVER__LISTEN", "nowhere"),
                ("MCP_OBO__GRAPH__TIMEOUT", "soon"),
                ("MCP_OBO__LOG__FORMAT", "xml"),
                ("MCP_OBO__LOG__REQUESTS", "some"),
                ("MCP_OBO__SERVER__NOPE", "1"),
            ]),
        ) else {
            panic!("bad values must be rejected");
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "server.listen",
            "graph.timeout",
            "log.format",
            "log.requests",
            "server.nope",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
    }

    #[test]
    fn auth_none_refuses_a_public_listen_address() {
        let Err(Error::Invalid(problems)) =
            load(None, &env(&[("MCP_OBO__SERVER__LISTEN", "0.0.0.0:7071")]))
        else {
            panic!("auth none on 0.0.0.0 must be refused");
        };
        assert!(problems.iter().any(|p| p.key == "auth.mode"));
    }

    fn problems(pairs: &[(&str, &str)]) -> Vec<Problem> {
        match load(None, &env(pairs)) {
            Err(Error::Invalid(problems)) => problems,
            Err(e) => panic!("expected configuration problems, got {e}"),
            Ok(_) => panic!("expected configuration problems for {pairs:?}"),
        }
    }

    const OIDC: &[(&str, &str)] = &[
        ("MCP_OBO__AUTH__MODE", "oidc"),
        ("MCP_OBO__AUTH__ISSUER", "https://idp.example/realms/x"),
        ("MCP_OBO__AUTH__AUDIENCES", "https://mcp.example.com/mcp"),
        ("MCP_OBO__OBO__CLIENT_ASSERTION", "client_secret"),
        ("MCP_OBO__OBO__CLIENT_SECRET", "s3cret"),
    ];

    #[test]
    fn oidc_with_the_entra_grant_needs_an_explicit_token_endpoint() {
        let found = problems(OIDC);
        let problem = found
            .iter()
            .find(|p| p.key == "obo.token_endpoint")
            .unwrap_or_else(|| panic!("obo.token_endpoint missing from {found:?}"));
        assert!(
            problem.message.contains("MCP_OBO__OBO__TOKEN_ENDPOINT"),
            "{problem}"
        );
        // The platform's federation, detected, counts as a configured exchange too.
        let mut detected: Vec<(&str, &str)> = OIDC[..3].to_vec();
        detected.push(("IDENTITY_ENDPOINT", "http://127.0.0.1:42356/msi/token"));
        assert!(
            problems(&detected)
                .iter()
                .any(|p| p.key == "obo.token_endpoint")
        );
    }

    #[test]
    fn oidc_with_the_entra_grant_is_valid_with_a_token_endpoint_or_without_an_exchange() {
        let mut with_endpoint = OIDC.to_vec();
        with_endpoint.push((
            "MCP_OBO__OBO__TOKEN_ENDPOINT",
            "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/oauth2/v2.0/token",
        ));
        load(None, &env(&with_endpoint)).expect("an explicit token endpoint is enough");
        load(None, &env(&OIDC[..3])).expect("no exchange configured: nothing to call");
    }

    #[test]
    fn auth_none_refuses_to_start_on_a_hosting_platform_even_on_loopback() {
        for (name, value) in [
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "8123"),
            ("WEBSITE_HOSTNAME", "mcp.azurewebsites.net"),
            ("CONTAINER_APP_NAME", "mcp"),
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
        ] {
            let found = problems(&[("MCP_OBO__SERVER__LISTEN", "127.0.0.1:7071"), (name, value)]);
            let problem = found
                .iter()
                .find(|p| p.key == "auth.mode")
                .unwrap_or_else(|| panic!("{name}: auth.mode missing from {found:?}"));
            for word in [name, "MCP_OBO__AUTH__MODE", "entra", "easyauth", "oidc"] {
                assert!(problem.message.contains(word), "{word} missing: {problem}");
            }
        }
    }

    #[test]
    fn a_platform_variable_does_not_stop_authorized_modes() {
        load(
            None,
            &env(&[
                ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
                ("MCP_OBO__AUTH__MODE", "entra"),
                ("AZURE_TENANT_ID", "11111111-2222-3333-4444-555555555555"),
                ("AZURE_CLIENT_ID", "66666666-7777-8888-9999-000000000000"),
            ]),
        )
        .expect("entra on a platform is fine");
        // An empty variable is no platform.
        load(None, &env(&[("WEBSITE_HOSTNAME", " ")])).expect("empty is unset");
    }

    #[test]
    fn plain_http_graph_is_only_for_loopback() {
        assert!(
            load(
                None,
                &env(&[("MCP_OBO__GRAPH__BASE_URL", "http://127.0.0.1:1")])
            )
            .is_ok()
        );
        assert!(
            load(
                None,
                &env(&[("MCP_OBO__GRAPH__BASE_URL", "http://graph.example")])
            )
            .is_err()
        );
    }

    #[test]
    fn list_values_split_on_commas_from_env() {
        let loaded = load(
            None,
            &env(&[(
                "MCP_OBO__SERVER__ALLOWED_HOSTS",
                "a.example, b.example:8443",
            )]),
        )
        .expect("valid");
        assert_eq!(
            loaded.settings.server.allowed_hosts,
            vec!["a.example".to_owned(), "b.example:8443".to_owned()]
        );
    }
}
