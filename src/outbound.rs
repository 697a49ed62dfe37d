//! Outgoing HTTP clients (Graph, the issuer's keys, the token endpoint) start here, so they
//! share one TLS configuration and follow no redirects; `outbound/retry.rs` is the retry loop,
//! `Retry-After` and backoff rules and the client span that the token exchange and the Graph
//! client share.
//!
//! No redirect is followed: a 307 from the token endpoint would otherwise have the user's
//! token and the client assertion re-posted to whatever host it names, and a keys URL could
//! be redirected from https to plain http behind the `jwks_uri must be https` rule. A 3xx
//! is returned to the caller as the answer, which treats it as a failure.
//!
//! Left to itself, reqwest builds a platform verifier for every client, and the verifier
//! reads and parses every system root (`SSL_CERT_FILE` and `SSL_CERT_DIR`) when it is built:
//! milliseconds of start-up and a root store in memory per client. Here the verifier is built
//! once per process, on first use, and every client gets a copy of the configuration holding
//! it (`tls_backend_preconfigured`). Verification itself is rustls-platform-verifier's.

use std::sync::{Arc, OnceLock};

mod retry;

pub(crate) use retry::client_span;
pub use retry::{Retries, Step, record_failure, record_status, retry_after};

/// The `User-Agent` of every outgoing request.
pub const USER_AGENT: &str = concat!("mcp-obo/", env!("CARGO_PKG_VERSION"));

/// The process's TLS client configuration: the platform's roots, loaded once.
static TLS: OnceLock<Result<rustls::ClientConfig, rustls::Error>> = OnceLock::new();

/// The system's trust store could not be read. Never contains a token.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "cannot set up TLS for outgoing requests: {0}; check the system's trust store (SSL_CERT_FILE, SSL_CERT_DIR)"
)]
pub struct TlsError(#[source] rustls::Error);

/// A reqwest builder with the shared TLS configuration, the server's `User-Agent` and no
/// redirects followed; the caller adds its timeouts.
///
/// # Errors
/// When the platform's roots cannot be loaded (none found, unreadable trust store).
pub fn builder() -> Result<reqwest::ClientBuilder, TlsError> {
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config()?)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT))
}

/// A copy of the process's TLS configuration, for a client built without reqwest (Graph's).
///
/// # Errors
/// When the platform's roots cannot be loaded (none found, unreadable trust store).
pub fn tls_config() -> Result<rustls::ClientConfig, TlsError> {
    TLS.get_or_init(platform_tls).clone().map_err(TlsError)
}

fn platform_tls() -> Result<rustls::ClientConfig, rustls::Error> {
    use rustls_platform_verifier::BuilderVerifierExt;
    // The provider rustls itself and jsonwebtoken use here: aws-lc-rs.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth())
}

/// How a non-success status is described in an error: a redirect says that it is one and
/// that it was not followed (never where it pointed).
pub fn answered(status: reqwest::StatusCode) -> String {
    if status.is_redirection() {
        format!(
            "answered with a redirect (HTTP {}), which is not followed",
            status.as_u16()
        )
    } else {
        format!("answered HTTP {}", status.as_u16())
    }
}

/// What went wrong with a request, without reqwest's own text: that names the URL, and a
/// query string could hold anything.
pub fn failure(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_answer_says_it_was_not_followed() {
        use reqwest::StatusCode;
        assert_eq!(
            answered(StatusCode::FOUND),
            "answered with a redirect (HTTP 302), which is not followed"
        );
        assert_eq!(
            answered(StatusCode::SERVICE_UNAVAILABLE),
            "answered HTTP 503"
        );
    }
}
