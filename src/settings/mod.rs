//! The server's settings: every section, loaded and checked together. With `server/` this is
//! the composition root: the only code that knows every module's section.
//!
//! The machinery (layers, sources, reading sections, every problem at once) is `config/`'s;
//! each module owns its section's serde type and checks (`auth::Settings` and
//! `auth::EntraSettings`, `obo::Settings`, `graph::Settings`, `telemetry::Settings` and
//! `telemetry::LogSettings`). Here:
//!
//! - `defaults.toml`: every key and its built-in default;
//! - `server.rs`: [`ServerSettings`], the `[server]` section (the listener and the transport);
//! - `platform.rs`: the hosting platform's variables mapped onto keys, and what is derived
//!   from them before the sections are read (`server.public_url`, `obo.client_assertion`);
//! - `checks.rs`: the checks across sections that involve the platform (and where the others
//!   live).
//!
//! Entra's defaults (single or multi-tenant, identifier URIs) are resolved once here, into
//! the [`auth::Entra`] that auth, obo and doctor read.

mod checks;
mod platform;
mod server;

use std::collections::BTreeMap;
use std::path::Path;

use crate::auth::{self, AuthMode};
use crate::config::{Env, Error, Layers, Problem, Reader, Schema, Source, trim_slash};
use crate::{graph, obo, telemetry};

pub use server::Settings as ServerSettings;

/// Every key the server understands, its own variables' prefix and its list keys.
const SCHEMA: Schema = Schema {
    defaults: include_str!("defaults.toml"),
    env_prefix: "MCP_OBO__",
    list_keys: &[
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
    ],
};

/// Everything the server needs to start, validated: each module's section.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub auth: auth::Settings,
    /// `[entra]` with the `[auth]` keys that complete it, resolved.
    pub entra: auth::Entra,
    pub obo: obo::Settings,
    pub graph: graph::Settings,
    pub telemetry: telemetry::Settings,
    pub log: telemetry::LogSettings,
}

/// Settings plus, for each key, its effective value (secrets redacted) and source.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub settings: Settings,
    pub effective: BTreeMap<String, (String, Source)>,
}

/// Loads settings from the layers described in `config/`'s docs, with the platform's
/// variables on top.
///
/// # Errors
/// [`Error::Read`] when the file cannot be read or parsed; [`Error::Invalid`] listing every
/// unknown key and every bad value otherwise.
pub fn load(file: Option<&Path>, env: &Env) -> Result<Loaded, Error> {
    let mut layers = Layers::merge(&SCHEMA, file, env, platform::well_known(env))?;
    platform::derive_public_url(&mut layers, env);
    let mut r = Reader::new(layers);
    let mut sections = Sections::read(&mut r, env);
    sections.check(&mut r, env);
    if !r.problems().is_empty() {
        return Err(Error::Invalid(r.problems().to_vec()));
    }
    let Sections {
        server: Some(server),
        auth: Some(auth),
        entra: Some(entra),
        obo: Some(obo),
        graph: Some(graph),
        telemetry: Some(telemetry),
        log: Some(log),
        ..
    } = sections
    else {
        return Err(Error::Invalid(vec![Problem::new(
            "(all)",
            "configuration could not be parsed",
        )]));
    };
    let effective = r.effective(|key| match key {
        "server.public_url" => Some(trim_slash(&server.public_url)),
        "server.listen" => Some(server.listen.to_string()),
        _ => None,
    });
    let settings = Settings {
        entra: auth::Entra::resolve(&auth, &entra),
        server,
        auth,
        obo,
        graph,
        telemetry,
        log,
    };
    Ok(Loaded {
        settings,
        effective,
    })
}

/// Each section as read: `None` where it could not be (the reader holds why).
struct Sections {
    server: Option<ServerSettings>,
    auth: Option<auth::Settings>,
    entra: Option<auth::EntraSettings>,
    obo: Option<obo::Settings>,
    /// Moved into `obo` once checked.
    shared_cache: Option<obo::SharedCacheSettings>,
    graph: Option<graph::Settings>,
    telemetry: Option<telemetry::Settings>,
    log: Option<telemetry::LogSettings>,
}

impl Sections {
    /// Reads every section, in an order that matters: `obo.client_assertion` is detected from
    /// the platform once the auth mode is known, before `[obo]` is read.
    fn read(r: &mut Reader, env: &Env) -> Self {
        let mut server: Option<ServerSettings> = r.section("server");
        if let Some(server) = &mut server {
            server.public_url_explicit = !matches!(
                r.sources().get("server.public_url"),
                Some(Source::Derived(_))
            );
        }
        let auth: Option<auth::Settings> = r.section("auth");
        let entra = r.section("entra");
        platform::detect_client_assertion(&mut r.layers, auth.as_ref().map(|a| a.mode), env);
        Self {
            server,
            auth,
            entra,
            obo: r.section("obo"),
            shared_cache: r.section("obo.shared_cache"),
            graph: r.section("graph"),
            telemetry: r.section("telemetry"),
            log: r.section("log"),
        }
    }

    /// Each module's own checks, then those across sections (see checks.rs); the problems go
    /// to `r`.
    fn check(&mut self, r: &mut Reader, env: &Env) {
        let (server, auth) = (&self.server, &self.auth);
        if let Some(server) = server {
            r.check(server.validate());
        }
        if let (Some(auth), Some(entra)) = (auth, &self.entra) {
            r.check(auth.validate(entra));
        }
        if let Some(obo) = &mut self.obo {
            r.check(obo.read_secret_file());
            r.check(obo.validate());
            let mode = auth.as_ref().map_or(AuthMode::None, |a| a.mode);
            r.check(checks::oidc_entra_grant(mode, obo));
            if let Some(mut shared_cache) = self.shared_cache.take() {
                r.check(shared_cache.read_password_file());
                r.check(shared_cache.validate(obo.client_assertion));
                obo.shared_cache = shared_cache;
            }
        }
        if let Some(telemetry) = &mut self.telemetry {
            // Never a problem: what cannot be honoured is a warning (telemetry never stops
            // the server).
            telemetry.apply_otel_env(&|name| crate::config::var(env, name));
        }
        if let (Some(telemetry), Some(server)) = (&self.telemetry, server) {
            r.check(telemetry.validate(server.listen));
        }
        if let (Some(auth), Some(server)) = (auth, server) {
            r.check(checks::auth_none(auth.mode, server, env));
        }
    }
}

#[cfg(test)]
mod tests;
