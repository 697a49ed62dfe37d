//! The OIDC discovery document, and the checks it must pass before its keys are trusted.

use std::sync::Arc;

use serde::Deserialize;
use url::Url;

/// The members of a discovery document the key cache reads.
#[derive(Deserialize)]
pub(super) struct Discovery {
    pub issuer: Option<String>,
    pub jwks_uri: Url,
}

impl Discovery {
    /// The checked issuer (when one is `expected`, in any of its spellings), or why the
    /// document read from `url` is not trusted.
    pub fn check(
        &self,
        url: &Url,
        expected: Option<&[String]>,
    ) -> Result<Option<Arc<str>>, String> {
        let jwks_uri = &self.jwks_uri;
        if !keys_url_is_secure(jwks_uri) {
            return Err(format!(
                "the discovery document at {url} gives jwks_uri {jwks_uri}, which does not use https (plain http is accepted only for loopback hosts); the issuer's signing keys must come over TLS, so fix the identity provider's configuration"
            ));
        }
        let Some(expected) = expected else {
            return Ok(None);
        };
        match self.issuer.as_deref() {
            Some(declared) if expected.iter().any(|e| e == declared) => {
                Ok(Some(Arc::from(declared)))
            }
            declared => {
                let configured = expected.first().map(String::as_str).unwrap_or_default();
                let declared = match declared {
                    Some(d) => format!("issuer {d:?}"),
                    None => "no issuer".to_owned(),
                };
                Err(format!(
                    "the discovery document at {url} declares {declared}, but auth.issuer is {configured:?}; they must be identical (OpenID Connect Discovery 4.3): set auth.issuer to exactly the issuer the provider declares"
                ))
            }
        }
    }
}

/// Whether signing keys may be fetched from `jwks_uri`: https, or plain http to a loopback
/// host only. Shared with `mcp-obo doctor`, so it cannot pass keys the server refuses.
pub fn keys_url_is_secure(jwks_uri: &Url) -> bool {
    match jwks_uri.scheme() {
        "https" => true,
        "http" => crate::config::is_loopback_url(jwks_uri),
        _ => false,
    }
}
