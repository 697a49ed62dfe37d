//! [`Entra`]: the Entra ID tenant and application this server belongs to, resolved once
//! from `[entra]` and the `[auth]` keys that complete it, so that everything reading it (the
//! authorizer, the resource metadata, the exchange, `mcp-obo doctor`) applies the same
//! defaults: a missing tenant is the `organizations` endpoint, missing identifier URIs are
//! `api://{client_id}`.

use url::Url;

use super::{EntraSettings, Settings};
use crate::config::{de, trim_slash};

/// Entra's multi-tenant endpoints: `organizations` (work and school accounts of any tenant)
/// and `common` (also personal Microsoft accounts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultiTenant {
    Organizations,
    Common,
}

de::words!(MultiTenant {
    Organizations => "organizations",
    Common => "common",
});

/// Whose users the app serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenancy {
    /// One tenant: its GUID (the Entra modes require one), or a domain in local mode.
    Single(String),
    /// A multi-tenant endpoint, and the tenants (`tid`, lowercase) whose users may call
    /// (`auth.allowed_tenants`, which the Entra modes require).
    Multi {
        endpoint: MultiTenant,
        allowed: Vec<String>,
    },
}

impl Tenancy {
    /// The tenant as Entra's URLs spell it: the tenant, `organizations` or `common`.
    pub fn path(&self) -> &str {
        match self {
            Self::Single(tenant) => tenant,
            Self::Multi { endpoint, .. } => endpoint.as_str(),
        }
    }

    /// Whether the tenant is the caller's (`tid`), not fixed.
    pub fn is_multi(&self) -> bool {
        matches!(self, Self::Multi { .. })
    }
}

/// The Entra ID tenant and application, with Entra's defaults applied.
#[derive(Debug, Clone)]
pub struct Entra {
    /// Sign-in authority host (`entra.authority_host`: sovereign clouds, a loopback fake).
    pub authority_host: Url,
    pub tenancy: Tenancy,
    /// The app registration's client id (`entra.client_id`); empty when not configured,
    /// which the Entra modes refuse.
    pub client_id: String,
    /// `auth.identifier_uris`, else [`default_identifier_uri`]; never empty. The first is
    /// the prefix of the scopes clients are told to request.
    pub identifier_uris: Vec<String>,
    /// Whether `entra.tenant_id` was configured (developer credentials otherwise use
    /// their own default tenant).
    tenant_configured: bool,
}

impl Entra {
    /// `[entra]` with `[auth]`'s identifier URIs and allowed tenants.
    pub fn resolve(auth: &Settings, entra: &EntraSettings) -> Self {
        let tenant = entra.tenant_id.as_deref();
        let multi = |endpoint| Tenancy::Multi {
            endpoint,
            allowed: auth
                .allowed_tenants
                .iter()
                .map(|t| t.to_ascii_lowercase())
                .collect(),
        };
        let tenancy = match tenant.map(str::parse::<MultiTenant>) {
            None => multi(MultiTenant::Organizations),
            Some(Ok(endpoint)) => multi(endpoint),
            Some(Err(_)) => Tenancy::Single(tenant.unwrap_or_default().to_owned()),
        };
        let client_id = entra.client_id.clone().unwrap_or_default();
        let identifier_uris = if auth.identifier_uris.is_empty() {
            vec![default_identifier_uri(&client_id)]
        } else {
            auth.identifier_uris.clone()
        };
        Self {
            authority_host: entra.authority_host.clone(),
            tenancy,
            client_id,
            identifier_uris,
            tenant_configured: tenant.is_some(),
        }
    }

    /// The authority host as URLs are built from it: without its trailing slash.
    pub fn authority(&self) -> String {
        trim_slash(&self.authority_host)
    }

    /// The v2.0 endpoint of the tenancy (`{authority}/{tenant}/v2.0`): the authorization
    /// server clients sign in with, and the base of its discovery document.
    pub fn v2_endpoint(&self) -> String {
        format!("{}/{}/v2.0", self.authority(), self.tenancy.path())
    }

    /// What the on-behalf-of exchange takes from `[entra]` when `[obo]` leaves it unset.
    pub fn exchange_app(&self) -> crate::obo::EntraApp {
        crate::obo::EntraApp {
            client_id: self.client_id.clone(),
            authority: self.authority(),
            tenant: self.tenancy.path().to_owned(),
            multi_tenant: self.tenancy.is_multi(),
        }
    }

    /// The tenant local developer credentials sign in to: the configured one, else `None`
    /// (the developer tools' own default).
    pub fn developer_tenant(&self) -> Option<&str> {
        self.tenant_configured.then(|| self.tenancy.path())
    }
}

/// The identifier URI Entra gives an app registration by default, and this server assumes
/// when `auth.identifier_uris` is empty.
pub fn default_identifier_uri(client_id: &str) -> String {
    format!("api://{client_id}")
}
