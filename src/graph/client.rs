//! The Graph HTTP client: one GET per call, with the retries Graph's guidance asks for.
//!
//! The HTTP itself is hyper-util's pooled client ([`super::http_client`]): one per calling thread,
//! HTTP/1.1, redirects not followed, the environment's proxy rules. What is ours here: how a
//! failure reads to the user, and Graph's retry rules.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use http::Uri;
use http::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use thread_local::ThreadLocal;
use tracing::Instrument;
use url::Url;

use super::Error;
use super::Settings as GraphSettings;
use super::http_client::{HttpClient, HttpConfig, Reply, SendError};
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
/// Larger Graph answers are refused rather than buffered (`/me` is about 1 KB).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The signed-in user's profile (`GET /v1.0/me`), the fields the tools use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub id: Option<String>,
    pub display_name: Option<String>,
    pub mail: Option<String>,
    pub user_principal_name: Option<String>,
}

/// The HTTP client for Graph could not be built. Never contains a token.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Tls(#[from] crate::outbound::TlsError),
    #[error(
        "the Graph base URL {0} cannot be used as a request target; set graph.base_url to an http(s) origin"
    )]
    BaseUrl(String),
}

/// Microsoft Graph, called as a given caller.
#[derive(Clone)]
pub struct GraphClient {
    /// One HTTP client (and keep-alive pool) per thread that calls Graph. actix-web runs
    /// each worker on a single-threaded runtime, and hyper drives a connection from a task
    /// on the runtime that opened it: with one pool for all workers, a connection opened by
    /// one worker and checked out by another costs two cross-thread wake-ups per call
    /// (BENCHMARKS.md, "Issue 14: per-worker pools"). Every client shares the process's TLS
    /// configuration, so a thread's first call loads no roots.
    http: Arc<ThreadLocal<HttpClient>>,
    /// How each thread's client is made (timeouts, size cap, proxy rules).
    config: HttpConfig,
    /// `{base_url}/v1.0/me`, parsed once.
    me_url: Uri,
    base_url: String,
    /// `server.address` of the Graph spans.
    host: String,
    /// `{graph origin}/.default`: every permission the app was consented for on Graph.
    scope: String,
    tokens: Arc<dyn DownstreamTokens>,
}

impl GraphClient {
    /// A client for the configured Graph cloud, getting its tokens from `tokens`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS set-up).
    pub fn new(
        settings: &GraphSettings,
        tokens: Arc<dyn DownstreamTokens>,
    ) -> Result<Self, BuildError> {
        let config = HttpConfig::new(settings.connect_timeout, settings.timeout, MAX_BODY);
        // Built now on this thread, so a client that cannot be built stops start-up.
        let http = Arc::new(ThreadLocal::new());
        http.get_or_try(|| HttpClient::new(config.clone()))?;
        let base_url = trim_slash(&settings.base_url);
        // `base_url` is a validated http(s) URL and the suffix a plain path, so this fails
        // only on a URL `http::Uri` reads differently from `url::Url`.
        let me_url = Uri::try_from(format!("{base_url}/v1.0/me"))
            .map_err(|_| BuildError::BaseUrl(base_url.clone()))?;
        Ok(Self {
            http,
            config,
            me_url,
            base_url,
            host: settings.base_url.host_str().unwrap_or_default().to_owned(),
            scope: default_scope(&settings.base_url),
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
        url: &Uri,
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
                .send(url, authorization, headers)
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
            let status = response.status;
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
            let retry_after = response
                .headers
                .get(RETRY_AFTER)
                .and_then(|v| retry_after(v.as_bytes()));
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

    /// `GET url` with the token, `Accept: application/json` and `headers` (trace context),
    /// on this thread's client.
    async fn send(
        &self,
        url: &Uri,
        authorization: &HeaderValue,
        mut headers: HeaderMap,
    ) -> Result<Reply, SendError> {
        // A clone keeps the value's `sensitive` mark (set where the token is made), so hyper's
        // `Debug` never prints it.
        headers.insert(AUTHORIZATION, authorization.clone());
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let http = match self
            .http
            .get_or_try(|| HttpClient::new(self.config.clone()))
        {
            Ok(http) => http,
            Err(e) => {
                // As the first one was built at start-up, this can only fail if the
                // system's trust store changed since.
                tracing::warn!(error = %e, "cannot build this thread's HTTP client for Graph");
                return Err(SendError::Connect(e.to_string()));
            }
        };
        http.get(url.clone(), headers).await
    }

    fn transport_error(&self, e: &SendError) -> Error {
        match e {
            SendError::ConnectTimeout => Error::Timeout {
                timeout: self.config.connect_timeout,
            },
            SendError::Timeout => Error::Timeout {
                timeout: self.config.timeout,
            },
            SendError::Malformed => Error::Malformed {
                reason: "the response could not be read as HTTP".into(),
            },
            SendError::TooLarge(max) => Error::Malformed {
                reason: format!("the response is larger than {} MiB", max >> 20),
            },
            // No connection, or it broke before an answer arrived.
            SendError::Connect(_) | SendError::Closed => Error::Unreachable {
                base_url: crate::config::redact_credentials(&self.base_url).into_owned(),
            },
        }
    }
}

/// `Retry-After` in seconds (the form Graph sends).
fn retry_after(value: &[u8]) -> Option<Duration> {
    std::str::from_utf8(value)
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
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
mod tests;
