//! What the configured server expects of Entra and of its app registration, derived once
//! from the settings the way `serve` derives it (audiences as the authorizer accepts them,
//! scopes as the metadata advertises them), so every step compares against the same values.

use crate::auth::{ResourceMetadata, accepted_audiences};
use crate::config::trim_slash;
use crate::settings::Settings;

/// The values the checks compare with.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub client_id: String,
    /// `entra.tenant_id` as Entra's URLs spell it (GUID, `organizations` or `common`).
    pub tenant: String,
    /// Whether the tenant is a multi-tenant endpoint (tokens carry the caller's tenant).
    pub multi_tenant: bool,
    /// `entra.authority_host` without its trailing slash.
    pub authority: String,
    /// [`crate::auth::Entra::identifier_uris`] (`auth.identifier_uris`, or
    /// `api://{client_id}` when none are configured).
    pub identifier_uris: Vec<String>,
    /// The identifier URI advertised scopes are prefixed with (the first).
    pub scope_prefix: String,
    /// Every `aud` the authorizer accepts.
    pub accepted_audiences: Vec<String>,
    /// Delegated scopes (`scp` values) the server requires or a tool needs.
    pub scopes: Vec<String>,
    /// The same, as the protected resource metadata advertises them.
    pub advertised_scopes: Vec<String>,
    pub allowed_client_apps: Vec<String>,
    /// `{public_url}/mcp`.
    pub mcp_url: String,
    /// `graph.base_url` without its trailing slash.
    pub graph_base: String,
    /// Where users consent: `obo.consent_url`, else the link each tool answer builds.
    pub consent_url: String,
    /// The federated assertion audience this cloud's Entra expects, when the authority is
    /// one of Microsoft's clouds.
    pub cloud_exchange_audience: Option<&'static str>,
}

impl Expected {
    pub fn from_settings(s: &Settings) -> Self {
        let client_id = s.entra.client_id.clone();
        let identifier_uris = s.entra.identifier_uris.clone();
        let scope_prefix = identifier_uris.first().cloned().unwrap_or_default();
        let mut scopes = s.auth.required_scopes.clone();
        for (_, scope) in &s.auth.tool_scopes {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        // As the running server advertises them (its metadata), not derived a second time.
        let advertised_scopes =
            ResourceMetadata::from_settings(&s.auth, &s.entra, &s.server.public_url, &[], &scopes)
                .scopes_supported()
                .to_vec();
        let public_url = trim_slash(&s.server.public_url);
        Self {
            tenant: s.entra.tenancy.path().to_owned(),
            multi_tenant: s.entra.tenancy.is_multi(),
            authority: s.entra.authority(),
            identifier_uris,
            scope_prefix,
            accepted_audiences: accepted_audiences(&s.auth, &s.entra),
            scopes,
            advertised_scopes,
            allowed_client_apps: s.auth.allowed_client_apps.clone(),
            mcp_url: format!("{public_url}/mcp"),
            graph_base: trim_slash(&s.graph.base_url),
            consent_url: s.obo.consent_url.as_ref().map_or_else(
                || "the consent link each tool's answer gives".to_owned(),
                url::Url::to_string,
            ),
            cloud_exchange_audience: cloud_exchange_audience(s.entra.authority_host.host_str()),
            client_id,
        }
    }

    /// The v2.0 issuer tokens carry (`{tenantid}` for the multi-tenant endpoints, as
    /// Entra's discovery document spells it).
    pub fn entra_issuer(&self) -> String {
        if self.multi_tenant {
            format!("{}/{{tenantid}}/v2.0", self.authority)
        } else {
            format!("{}/{}/v2.0", self.authority, self.tenant)
        }
    }

    /// Where an administrator grants tenant-wide consent.
    pub fn admin_consent_url(&self) -> String {
        format!(
            "{}/{}/adminconsent?client_id={}",
            self.authority, self.tenant, self.client_id
        )
    }
}

/// Each Microsoft cloud's audience for federated client assertions (Entra's workload
/// identity federation documentation); `None` for any other authority (a test double).
pub fn cloud_exchange_audience(authority_host: Option<&str>) -> Option<&'static str> {
    match authority_host? {
        "login.microsoftonline.com" => Some("api://AzureADTokenExchange"),
        "login.microsoftonline.us" => Some("api://AzureADTokenExchangeUSGov"),
        "login.chinacloudapi.cn" | "login.partner.microsoftonline.cn" => {
            Some("api://AzureADTokenExchangeChina")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cloud_has_its_exchange_audience() {
        assert_eq!(
            cloud_exchange_audience(Some("login.microsoftonline.us")),
            Some("api://AzureADTokenExchangeUSGov")
        );
        assert_eq!(
            cloud_exchange_audience(Some("login.chinacloudapi.cn")),
            Some("api://AzureADTokenExchangeChina")
        );
        assert_eq!(cloud_exchange_audience(Some("127.0.0.1")), None);
    }
}
