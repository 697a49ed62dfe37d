//! `[obo]`: the on-behalf-of exchange: how the server proves who it is, and where it
//! exchanges.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use url::Url;

use crate::config::{Problem, Secret, de};

/// The on-behalf-of exchange settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub grant: OboGrant,
    /// `None`: no exchange configured (tools that need Graph say so). When not set and
    /// inbound authorization is on, the loader detects the platform's federation
    /// (`AZURE_FEDERATED_TOKEN_FILE`, `IDENTITY_ENDPOINT`) before reading this section.
    #[serde(deserialize_with = "client_assertion")]
    pub client_assertion: Option<AssertionKind>,
    /// The confidential client doing the exchange (the app registration); defaults to
    /// `entra.client_id`.
    #[serde(deserialize_with = "de::optional")]
    pub client_id: Option<String>,
    /// The user-assigned managed identity whose token is the client assertion.
    #[serde(deserialize_with = "de::optional")]
    pub managed_identity_client_id: Option<String>,
    /// Audience of the federated assertion (`api://AzureADTokenExchange`; USGov/China differ).
    #[serde(deserialize_with = "de::string")]
    pub token_exchange_audience: String,
    /// Workload identity: the projected service-account token (re-read when it rotates).
    #[serde(deserialize_with = "de::optional")]
    pub federated_token_file: Option<PathBuf>,
    /// `client_secret`: from `MCP_OBO__OBO__CLIENT_SECRET`, or read from
    /// `client_secret_file` by [`Settings::read_secret_file`].
    #[serde(deserialize_with = "de::optional")]
    pub client_secret: Option<Secret>,
    /// A file holding the client secret (a mounted secret), used when `client_secret` is not
    /// set.
    #[serde(deserialize_with = "de::optional")]
    pub client_secret_file: Option<PathBuf>,
    /// `certificate`: PEM file with the certificate and its PKCS#8 private key.
    #[serde(deserialize_with = "de::optional")]
    pub certificate_file: Option<PathBuf>,
    /// Overrides the token endpoint (Entra default: `{authority}/{tenant}/oauth2/v2.0/token`).
    #[serde(deserialize_with = "de::optional_https_url")]
    pub token_endpoint: Option<Url>,
    /// RFC 8693 `audience` parameter, when the issuer wants one.
    #[serde(deserialize_with = "de::optional")]
    pub audience: Option<String>,
    /// Where users grant consent (AADSTS65001); `None`: the link each answer builds for exactly
    /// the missing permissions, returning to `{public_url}/consent/complete`.
    #[serde(deserialize_with = "de::optional_https_url")]
    pub consent_url: Option<Url>,
    #[serde(deserialize_with = "de::duration")]
    pub timeout: Duration,
    #[serde(deserialize_with = "max_retries")]
    pub max_retries: u32,
    #[serde(deserialize_with = "cache_max_entries")]
    pub cache_max_entries: usize,
    /// Cached tokens are used until this long before their own expiry (and never after the
    /// user's token expires).
    #[serde(deserialize_with = "de::duration")]
    pub expiry_margin: Duration,
    /// How long a failed exchange that is the user's or tenant's state (consent missing,
    /// `invalid_grant`, a claims challenge) is remembered per user and scopes; zero: never.
    #[serde(deserialize_with = "de::duration")]
    pub failure_cache_ttl: Duration,
    /// Client capabilities declared in each Entra exchange (`claims` with `xms_cc`); `cp1`
    /// (the default) asks for continuous-access-evaluation tokens, which Graph revokes with a
    /// claims challenge. Empty: none declared.
    #[serde(deserialize_with = "de::list")]
    pub client_capabilities: Vec<String>,
    /// `[obo.shared_cache]`, a section of its own that the loader reads beside this one.
    #[serde(skip)]
    pub shared_cache: super::SharedCacheSettings,
}

/// The exchange grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OboGrant {
    /// Entra's jwt-bearer grant with `requested_token_use=on_behalf_of`.
    EntraObo,
    /// RFC 8693 token exchange (Keycloak, Okta, Auth0, ...).
    TokenExchange,
}

de::words!(OboGrant {
    EntraObo => "entra_obo",
    TokenExchange => "token_exchange",
});

/// Where the client credential comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionKind {
    ManagedIdentity,
    WorkloadIdentity,
    ClientSecret,
    Certificate,
}

de::words!(AssertionKind {
    ManagedIdentity => "managed_identity",
    WorkloadIdentity => "workload_identity",
    ClientSecret => "client_secret",
    Certificate => "certificate",
});

impl Settings {
    /// Reads `client_secret_file` into `client_secret` when no secret is set directly.
    pub fn read_secret_file(&mut self) -> Option<Problem> {
        let path = self.client_secret_file.as_ref()?;
        if self.client_secret.is_some() {
            return None;
        }
        match std::fs::read_to_string(path) {
            Ok(s) if !s.trim().is_empty() => {
                self.client_secret = Some(Secret::new(s.trim()));
                None
            }
            _ => Some(Problem::new(
                "obo.client_secret_file",
                format!("cannot read a secret from {path:?}"),
            )),
        }
    }

    /// Problems no single value of the section shows (the one that involves `auth.mode` is
    /// the loader's, in `settings/checks.rs`).
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        match self.client_assertion {
            Some(AssertionKind::WorkloadIdentity) if self.federated_token_file.is_none() => problems.push(Problem::new(
                "obo.federated_token_file",
                "required with obo.client_assertion = workload_identity (AKS sets AZURE_FEDERATED_TOKEN_FILE when the pod uses workload identity)",
            )),
            Some(AssertionKind::ClientSecret) if self.client_secret.is_none() => problems.push(Problem::new(
                "obo.client_secret",
                "required with obo.client_assertion = client_secret: set MCP_OBO__OBO__CLIENT_SECRET or obo.client_secret_file",
            )),
            Some(AssertionKind::Certificate) if self.certificate_file.is_none() => problems.push(Problem::new(
                "obo.certificate_file",
                "required with obo.client_assertion = certificate: a PEM file with the certificate and its PKCS#8 private key",
            )),
            _ => {}
        }
        let exchange = self.client_assertion.is_some();
        if self.grant == OboGrant::TokenExchange && exchange && self.token_endpoint.is_none() {
            problems.push(Problem::new(
                "obo.token_endpoint",
                "required with obo.grant = token_exchange: the issuer's token endpoint",
            ));
        }
        if self.max_retries > 5 {
            problems.push(Problem::new("obo.max_retries", "must be at most 5"));
        }
        if self.failure_cache_ttl > Duration::from_secs(300) {
            problems.push(Problem::new(
                "obo.failure_cache_ttl",
                "must be at most 5m: a user who has just consented or signed in again gets the remembered failure until it expires (15s is the default; 0s turns it off)",
            ));
        }
        if let Some(bad) = self
            .client_capabilities
            .iter()
            .find(|c| !super::claims::is_capability(c))
        {
            problems.push(Problem::new(
                "obo.client_capabilities",
                format!(
                    "{:?} is not a client capability: use short names of letters, digits, '-', '_' or '.', such as cp1 (an empty list declares none)",
                    crate::telemetry::bounded(bad)
                ),
            ));
        }
        if self.cache_max_entries == 0 {
            problems.push(Problem::new("obo.cache_max_entries", "must be at least 1"));
        }
        problems
    }
}

fn client_assertion<'de, D: Deserializer<'de>>(d: D) -> Result<Option<AssertionKind>, D::Error> {
    de::optional_with(d, str::parse)
}

fn max_retries<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de::with(d, de::expecting("a number of retries (0-5)"))
}

fn cache_max_entries<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    de::with(d, de::expecting("a number of cached tokens"))
}
