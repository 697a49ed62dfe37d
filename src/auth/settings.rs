//! `[auth]` (inbound authorization) and `[entra]` (the Entra ID tenant and application),
//! as configured. What the server reads of Entra is [`super::Entra`], resolved from both.

use std::time::Duration;

use serde::{Deserialize, Deserializer};
use url::Url;

use super::{Entra, MultiTenant};
use crate::config::{Problem, de, is_guid, is_loopback_url, trim_slash};

/// Inbound authorization.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub mode: AuthMode,
    /// `oidc`: the issuer (`iss`); its discovery document gives the keys.
    #[serde(deserialize_with = "de::optional_https_url")]
    pub issuer: Option<Url>,
    /// Accepted `aud` values. `entra`: the client id and identifier URIs are added.
    #[serde(deserialize_with = "de::list")]
    pub audiences: Vec<String>,
    /// `entra`: the app's identifier URIs; empty means `api://{client_id}`. Read through
    /// [`Entra::identifier_uris`], which applies that default.
    #[serde(deserialize_with = "de::list")]
    pub(super) identifier_uris: Vec<String>,
    /// Delegated scopes (as they appear in `scp`) every MCP request needs.
    #[serde(deserialize_with = "de::list")]
    pub required_scopes: Vec<String>,
    /// App roles that admit an app-only caller (no user); empty admits none.
    #[serde(deserialize_with = "de::list")]
    pub accepted_roles: Vec<String>,
    /// Client applications (`azp`/`appid`) allowed to call; empty allows any.
    #[serde(deserialize_with = "de::list")]
    pub allowed_client_apps: Vec<String>,
    /// `entra` with `organizations`/`common`: the tenants (`tid`) allowed. Read through
    /// [`Entra::tenancy`].
    #[serde(deserialize_with = "de::list")]
    pub(super) allowed_tenants: Vec<String>,
    /// Overrides the `authorization_servers` of the protected resource metadata.
    #[serde(deserialize_with = "authorization_servers")]
    pub authorization_servers: Vec<Url>,
    /// `parent:child` pairs: a token with `parent` also satisfies `child`.
    #[serde(deserialize_with = "scope_implies")]
    pub scope_implies: Vec<(String, String)>,
    /// `Tool:scope` pairs: extra delegated scopes a tool needs beyond `required_scopes`.
    #[serde(deserialize_with = "tool_scopes")]
    pub tool_scopes: Vec<(String, String)>,
    /// Clock skew allowed on `exp`/`nbf`.
    #[serde(deserialize_with = "de::duration")]
    pub leeway: Duration,
    /// `resource_name` in the protected resource metadata.
    #[serde(deserialize_with = "de::string")]
    pub resource_name: String,
    #[serde(deserialize_with = "de::duration")]
    pub jwks_refresh_interval: Duration,
    /// Unknown `kid` refreshes the keys at most this often.
    #[serde(deserialize_with = "de::duration")]
    pub jwks_min_refresh_interval: Duration,
    /// Longer bearer tokens are refused before any parsing.
    #[serde(deserialize_with = "max_token_bytes")]
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

de::words!(AuthMode {
    None => "none",
    Entra => "entra",
    Oidc => "oidc",
    EasyAuth => "easyauth",
});

/// The Entra ID tenant and application this server belongs to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntraSettings {
    /// Directory (tenant) id; also selects the tenant for developer credentials locally.
    #[serde(deserialize_with = "tenant_id")]
    pub tenant_id: Option<String>,
    /// The app registration's client id.
    #[serde(deserialize_with = "de::optional")]
    pub client_id: Option<String>,
    /// Sign-in authority host (sovereign clouds, or a loopback fake in tests).
    #[serde(deserialize_with = "de::https_url")]
    pub authority_host: Url,
}

impl Settings {
    /// Problems no single value shows; `entra` is the `[entra]` section, which the Entra
    /// modes need.
    pub fn validate(&self, entra: &EntraSettings) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.leeway > Duration::from_secs(600) {
            problems.push(Problem::new("auth.leeway", "must be at most 10m"));
        }
        match self.mode {
            AuthMode::Oidc => {
                if self.issuer.is_none() {
                    problems.push(Problem::new(
                        "auth.issuer",
                        "required with auth.mode = oidc: the issuer URL whose discovery document lists the signing keys",
                    ));
                }
                if self.audiences.is_empty() {
                    problems.push(Problem::new(
                        "auth.audiences",
                        "required with auth.mode = oidc: the aud value(s) the issuer puts in tokens for this server (usually the MCP URL)",
                    ));
                }
            }
            AuthMode::Entra | AuthMode::EasyAuth => {
                problems.extend(self.entra_problems(entra));
            }
            AuthMode::None => {}
        }
        problems
    }

    fn entra_problems(&self, entra: &EntraSettings) -> Vec<Problem> {
        let mode = self.mode.as_str();
        let mut problems = Vec::new();
        if entra.client_id.is_none() {
            problems.push(Problem::new(
                "entra.client_id",
                format!("required with auth.mode = {mode}: the application (client) id of the server's app registration (or set AZURE_CLIENT_ID)"),
            ));
        }
        let tenant = entra.tenant_id.as_deref();
        match tenant.map(|t| (t, t.parse::<MultiTenant>().is_ok())) {
            None => problems.push(Problem::new(
                "entra.tenant_id",
                format!("required with auth.mode = {mode}: the directory (tenant) id, or organizations with auth.allowed_tenants (or set AZURE_TENANT_ID)"),
            )),
            Some((t, false)) if !is_guid(t) => {
                problems.push(Problem::new(
                    "entra.tenant_id",
                    format!("{t:?} is not valid with auth.mode = {mode}; expected the tenant GUID (tokens carry it in tid), or organizations with auth.allowed_tenants"),
                ));
            }
            Some((t, true)) if self.allowed_tenants.is_empty() => {
                problems.push(Problem::new(
                    "auth.allowed_tenants",
                    format!("required when entra.tenant_id is {t}: list the tenant ids whose users may call"),
                ));
            }
            _ => {}
        }
        problems
    }
}

fn tenant_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    de::optional_with(d, |t| {
        if t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            Ok(t.to_owned())
        } else {
            Err(format!(
                "{t:?} is not valid; expected a tenant GUID or domain such as contoso.onmicrosoft.com"
            ))
        }
    })
}

fn authorization_servers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Url>, D::Error> {
    de::list_with(d, |raw| match Url::parse(raw) {
        Ok(url) if url.scheme() == "https" || is_loopback_url(&url) => Ok(url),
        _ => Err(format!("{raw:?} is not valid; expected https issuer URLs")),
    })
}

fn scope_implies<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    de::list_with(d, |raw| {
        de::pair(raw).ok_or_else(|| {
            format!("{raw:?} is not valid; expected parent:child, e.g. Mail.ReadWrite:Mail.Read")
        })
    })
}

fn tool_scopes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    de::list_with(d, |raw| {
        de::pair(raw).ok_or_else(|| {
            format!("{raw:?} is not valid; expected Tool:scope, e.g. HelloTool:Profile.Read")
        })
    })
}

fn max_token_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    de::with(d, de::expecting("a number of bytes"))
}

/// The issuer's OIDC discovery document for `auth.mode`; `None` without inbound tokens.
/// The server fetches its keys from it, and `mcp-obo doctor` checks it.
pub fn discovery_url(auth: &Settings, entra: &Entra) -> Option<String> {
    match auth.mode {
        AuthMode::None => None,
        AuthMode::Oidc => Some(format!(
            "{}/.well-known/openid-configuration",
            auth.issuer.as_ref().map(trim_slash).unwrap_or_default()
        )),
        AuthMode::Entra | AuthMode::EasyAuth => Some(format!(
            "{}/.well-known/openid-configuration",
            entra.v2_endpoint()
        )),
    }
}
