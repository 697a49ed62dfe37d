//! The Graph HTTP client: one GET per call, with the retries Graph's guidance asks for.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use url::Url;

use super::Error;
use super::Settings as GraphSettings;
use super::transport::{BuildError, Transport, TransportError};
use crate::auth::Caller;
use crate::config::trim_slash;
use crate::obo::DownstreamTokens;
use crate::telemetry::metrics;

/// Retries after 429/502/503/504 before giving up.
const MAX_RETRIES: u32 = 2;
/// The longest `Retry-After` we wait for inside one tool call; longer means give up now.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// Backoff when the response names no `Retry-After`.
const BASE_BACKOFF: Duration = Duration::from_millis(200);

/// The signed-in user's profile (`GET /v1.0/me`), the fields the tools use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub id: Option<String>,
    pub display_name: Option<String>,
    pub mail: Option<String>,
    pub user_principal_name: Option<String>,
}

/// Microsoft Graph, called as a given caller.
#[derive(Clone)]
pub struct GraphClient {
    transport: Arc<Transport>,
    /// `{base_url}/v1.0/me`, parsed once.
    me_url: Url,
    base_url: String,
    /// `server.address` of the Graph spans.
    host: String,
    /// `{graph origin}/.default`: every permission the app was consented for on Graph.
    scope: String,
    timeout: Duration,
    tokens: Arc<dyn DownstreamTokens>,
}

impl GraphClient {
    /// A client for the configured Graph cloud, getting its tokens from `tokens`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS roots, a proxy URL in the environment).
    pub fn new(
        settings: &GraphSettings,
        tokens: Arc<dyn DownstreamTokens>,
    ) -> Result<Self, BuildError> {
        let transport = Transport::new(settings, |name| std::env::var(name).ok())?;
        if !transport.is_direct() {
            tracing::info!("Graph requests go through the proxy named by the environment");
        }
        let base_url = trim_slash(&settings.base_url);
        // Cannot fail: `base_url` is a valid http(s) URL and the suffix a plain path.
        let me_url = Url::parse(&format!("{base_url}/v1.0/me"))
            .unwrap_or_else(|_| settings.base_url.clone());
        Ok(Self {
            transport: Arc::new(transport),
            me_url,
            base_url,
            host: settings.base_url.host_str().unwrap_or_default().to_owned(),
            scope: default_scope(&settings.base_url),
            timeout: settings.timeout,
            tokens,
        })
    }

    /// The scope requested for Graph tokens, e.g. `https://graph.microsoft.com/.default`.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// `GET /v1.0/me` as `caller`.
    ///
    /// # Errors
    /// Any [`Error`]: token acquisition, HTTP status, timeout, unreachable, bad JSON.
    pub async fn me(&self, caller: &Caller) -> Result<Me, Error> {
        self.get_json(caller, &self.me_url, "/v1.0/me").await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        caller: &Caller,
        url: &Url,
        path: &str,
    ) -> Result<T, Error> {
        let scopes = [self.scope.as_str()];
        let mut refreshed = false;
        let mut retries = 0;
        loop {
            let token = self.tokens.token(caller, &scopes).await?;
            let span = tracing::info_span!(
                target: "mcp_obo::graph",
                "GET",
                otel.kind = "client",
                http.request.method = "GET",
                server.address = %self.host,
                url.full = %url,
                http.request.resend_count = retries + u32::from(refreshed),
                http.response.status_code = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
                error.type = tracing::field::Empty,
            );
            let started = std::time::Instant::now();
            let headers = span.in_scope(crate::telemetry::otel::outgoing_headers);
            let Some(authorization) = token.authorization() else {
                return Err(Error::Token(crate::obo::Error::Protocol {
                    detail: "the access token has characters an HTTP header cannot carry".into(),
                }));
            };
            let sent = self
                .transport
                .get(url, authorization, &headers)
                .instrument(span.clone())
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    let error = self.transport_error(&e);
                    span.record("otel.status_code", "ERROR");
                    span.record(
                        "error.type",
                        if e.is_timeout() {
                            "timeout"
                        } else {
                            "transport"
                        },
                    );
                    metrics::graph_request(
                        if e.is_timeout() {
                            "timeout"
                        } else {
                            "unreachable"
                        },
                        started.elapsed(),
                    );
                    tracing::debug!(error = %e, "graph request failed");
                    return Err(error);
                }
            };
            let status = StatusCode::from_u16(response.status).map_err(|_| Error::Malformed {
                reason: format!("HTTP status {} is not valid", response.status),
            })?;
            span.record("http.response.status_code", status.as_u16());
            metrics::graph_request(status.as_str(), started.elapsed());
            if !status.is_success() {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", status.as_str());
            }
            if status.is_success() {
                return serde_json::from_slice(&response.body).map_err(|e| Error::Malformed {
                    reason: e.to_string(),
                });
            }
            let retry_after = response.retry_after;
            let (code, message) = graph_error(&response.body);
            match status {
                StatusCode::UNAUTHORIZED if !refreshed => {
                    // The token may have been revoked or the cache stale: one fresh try.
                    tracing::debug!(path, "graph answered 401; retrying once with a fresh token");
                    self.tokens.invalidate(caller, &scopes).await;
                    refreshed = true;
                }
                StatusCode::UNAUTHORIZED => return Err(Error::Unauthorized { code }),
                StatusCode::FORBIDDEN => return Err(Error::Forbidden { code, message }),
                StatusCode::NOT_FOUND => {
                    return Err(Error::NotFound {
                        path: path.to_owned(),
                    });
                }
                StatusCode::TOO_MANY_REQUESTS
                | StatusCode::BAD_GATEWAY
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT => {
                    let wait = retry_after.unwrap_or(BASE_BACKOFF * 2u32.pow(retries));
                    if retries >= MAX_RETRIES || wait > MAX_RETRY_AFTER {
                        return Err(if status == StatusCode::TOO_MANY_REQUESTS {
                            Error::Throttled { retry_after }
                        } else {
                            Error::Unavailable {
                                status: status.as_u16(),
                            }
                        });
                    }
                    retries += 1;
                    tracing::debug!(
                        path,
                        status = status.as_u16(),
                        ?wait,
                        retries,
                        "graph retry"
                    );
                    tokio::time::sleep(wait).await;
                }
                _ if status.is_server_error() => {
                    return Err(Error::Unavailable {
                        status: status.as_u16(),
                    });
                }
                _ => {
                    return Err(Error::Unexpected {
                        status: status.as_u16(),
                        code,
                    });
                }
            }
        }
    }

    fn transport_error(&self, e: &TransportError) -> Error {
        if e.is_timeout() {
            Error::Timeout {
                timeout: self.timeout,
            }
        } else if e.is_malformed() {
            Error::Malformed {
                reason: "the response could not be read as HTTP".into(),
            }
        } else {
            Error::Unreachable {
                base_url: self.base_url.clone(),
            }
        }
    }
}

/// `https://graph.microsoft.com/.default` for `https://graph.microsoft.com`.
fn default_scope(base_url: &Url) -> String {
    format!("{}/.default", base_url.origin().ascii_serialization())
}

/// Graph's error body: `{"error": {"code": "...", "message": "..."}}`.
fn graph_error(body: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        code: Option<String>,
        message: Option<String>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(body) => (
            body.error.code,
            body.error.message.map(|m| m.chars().take(300).collect()),
        ),
        Err(_) => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_follows_the_cloud() {
        for (base, scope) in [
            (
                "https://graph.microsoft.com",
                "https://graph.microsoft.com/.default",
            ),
            (
                "https://graph.microsoft.us/",
                "https://graph.microsoft.us/.default",
            ),
            (
                "https://microsoftgraph.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn/.default",
            ),
            ("http://127.0.0.1:9000", "http://127.0.0.1:9000/.default"),
        ] {
            let url = Url::parse(base).expect("test URL");
            assert_eq!(default_scope(&url), scope);
        }
    }
}
