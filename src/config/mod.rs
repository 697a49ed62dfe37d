//! Loading settings, layered as: built-in defaults (`defaults.toml`) < optional file
//! (`--config PATH`) < `MCP_OBO__SECTION__KEY` environment variables < the well-known
//! variables the platform sets (`FUNCTIONS_CUSTOMHANDLER_PORT`, `AZURE_TENANT_ID`,
//! `AZURE_CLIENT_ID`, `OTEL_*`, ...).
//!
//! This is the only module that reads configuration files or the environment, but it owns no
//! setting: each module owns its section as a serde type with its own checks
//! (`server::Settings`, `auth::Settings` and `auth::EntraSettings`, `obo::Settings`,
//! `graph::Settings`, `telemetry::Settings` and `telemetry::LogSettings`). Here:
//!
//! - `layers.rs`: merges the layers with the `config` crate, remembers where each value came
//!   from (for `mcp-obo config`), reports unknown keys and secrets written in files;
//! - `platform.rs`: the platform's variables, and what is derived from them before the
//!   sections are read (`server.public_url`, `obo.client_assertion`);
//! - `section.rs`: reads each section, reporting every bad key, not only the first;
//! - `checks.rs`: the checks across sections that involve the platform (and where the
//!   others live);
//! - `de.rs`: the serde helpers the sections use, each error saying what is allowed;
//! - `values.rs`: [`Secret`], [`Problem`] and the URL rules the modules share.
//!
//! Every problem is collected, and [`load`] fails with all of them at once.

pub mod de;

mod checks;
mod layers;
mod platform;
mod section;
mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use values::{
    Problem, Secret, https_url, is_guid, is_loopback_authority, is_loopback_url,
    redact_credentials, trim_slash,
};

/// Everything the server needs to start, validated: each module's section.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: crate::server::Settings,
    pub auth: crate::auth::Settings,
    pub entra: crate::auth::EntraSettings,
    pub obo: crate::obo::Settings,
    pub graph: crate::graph::Settings,
    pub telemetry: crate::telemetry::Settings,
    pub log: crate::telemetry::LogSettings,
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
    let mut layers = layers::merge(file, env)?;
    platform::derive_public_url(&mut layers, env);
    let mut r = section::Reader::new(layers);

    let mut server: Option<crate::server::Settings> = r.section("server");
    if let Some(server) = &mut server {
        server.public_url_explicit = !matches!(
            r.sources().get("server.public_url"),
            Some(Source::Derived(_))
        );
    }
    let auth: Option<crate::auth::Settings> = r.section("auth");
    let entra: Option<crate::auth::EntraSettings> = r.section("entra");
    platform::detect_client_assertion(&mut r.layers, auth.as_ref().map(|a| a.mode), env);
    let mut obo: Option<crate::obo::Settings> = r.section("obo");
    let shared_cache: Option<crate::obo::SharedCacheSettings> = r.section("obo.shared_cache");
    let graph: Option<crate::graph::Settings> = r.section("graph");
    let mut telemetry: Option<crate::telemetry::Settings> = r.section("telemetry");
    let log: Option<crate::telemetry::LogSettings> = r.section("log");

    // Each module's own checks, then those across sections (see checks.rs).
    if let Some(server) = &server {
        r.check(server.validate());
    }
    if let (Some(auth), Some(entra)) = (&auth, &entra) {
        r.check(auth.validate(entra));
    }
    if let Some(obo) = &mut obo {
        r.check(obo.read_secret_file());
        r.check(
            obo.validate(
                auth.as_ref()
                    .map_or(crate::auth::AuthMode::None, |a| a.mode),
            ),
        );
        if let Some(mut shared_cache) = shared_cache {
            r.check(shared_cache.read_password_file());
            r.check(shared_cache.validate(obo.client_assertion));
            obo.shared_cache = shared_cache;
        }
    }
    if let Some(telemetry) = &mut telemetry {
        // Never a problem: what cannot be honoured is a warning (telemetry never stops
        // the server).
        telemetry.apply_otel_env(&|name| platform::get(env, name));
    }
    if let (Some(telemetry), Some(server)) = (&telemetry, &server) {
        r.check(telemetry.validate(server.listen));
    }
    if let (Some(auth), Some(server)) = (&auth, &server) {
        r.check(checks::auth_none(auth.mode, server, env));
    }

    if !r.problems().is_empty() {
        return Err(Error::Invalid(r.problems().to_vec()));
    }
    let (Some(server), Some(auth), Some(entra), Some(obo), Some(graph), Some(telemetry), Some(log)) =
        (server, auth, entra, obo, graph, telemetry, log)
    else {
        return Err(Error::Invalid(vec![Problem::new(
            "(all)",
            "configuration could not be parsed",
        )]));
    };
    let settings = Settings {
        server,
        auth,
        entra,
        obo,
        graph,
        telemetry,
        log,
    };
    let effective = effective_values(&r.layers, &settings);
    Ok(Loaded {
        settings,
        effective,
    })
}

/// Each known key's value as the server uses it (secrets, and passwords in URLs, redacted),
/// and its source.
fn effective_values(
    layers: &layers::Layers,
    settings: &Settings,
) -> BTreeMap<String, (String, Source)> {
    layers
        .sources
        .iter()
        .map(|(key, source)| {
            let value = match key.as_str() {
                "server.public_url" => trim_slash(&settings.server.public_url),
                "server.listen" => settings.server.listen.to_string(),
                _ if layers::is_secret(key) => "<redacted>".to_owned(),
                _ => {
                    let (section, name) = key.rsplit_once('.').unwrap_or(("", key));
                    layers::display_value(layers.tables.get(section).and_then(|t| t.get(name)))
                }
            };
            let value = redact_credentials(&value).into_owned();
            (key.clone(), (value, source.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests;
