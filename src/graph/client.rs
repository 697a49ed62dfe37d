//! The Graph HTTP client: one GET per call, with the retries Graph's guidance asks for.
//!
//! The HTTP itself is reqwest: a client per calling thread (hyper's keep-alive pool, rustls with the
//! platform verifier set up once in [`crate::outbound`], the `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY` environment),
//! HTTP/1.1 only, redirects not followed. What is ours: the answer's size cap, how a failure
//! reads to the user, and Graph's retry rules.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use thread_local::ThreadLocal;
use tracing::Instrument;
use url::Url;

use super::Error;
use super::Settings as GraphSettings;
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
    #[error("cannot build the HTTP client for Microsoft Graph: {0}")]
    Http(#[source] reqwest::Error),
}

/// Microsoft Graph, called as a given caller.
#[derive(Clone)]
pub struct GraphClient {
    /// One reqwest client (and keep-alive pool) per thread that calls Graph. actix-web runs
    /// each worker on a single-threaded runtime, and hyper drives a connection from a task
    /// on the runtime that opened it: with one pool for all workers, a connection opened by
    /// one worker and checked out by another costs two cross-thread wake-ups per call
    /// (BENCHMARKS.md, "Issue 14: per-worker pools"). Every client shares the process's TLS
    /// configuration, so a thread's first call loads no roots.
    http: Arc<ThreadLocal<reqwest::Client>>,
    /// How each thread's client is made (timeouts, no redirects, HTTP/1.1).
    config: HttpConfig,
    /// `{base_url}/v1.0/me`, parsed once.
    me_url: Url,
    base_url: String,
    /// `server.address` of the Graph spans.
    host: String,
    /// `{graph origin}/.default`: every permission the app was consented for on Graph.
    scope: String,
    tokens: Arc<dyn DownstreamTokens>,
}

/// An answer from Graph, its body read (and capped).
struct Reply {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

/// Why no usable answer arrived. Never contains a header value (the token): reqwest's errors
/// name the URL, and ours carries no query string with secrets.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error(transparent)]
    Http(reqwest::Error),
    #[error("response body larger than {MAX_BODY} bytes")]
    TooLarge,
    /// This thread's client could not be built (as the first one was at start-up, it can
    /// only fail if the system's state changed since).
    #[error(transparent)]
    Build(BuildError),
}

/// The settings every thread's Graph client is built with.
#[derive(Clone, Copy)]
struct HttpConfig {
    connect_timeout: Duration,
    timeout: Duration,
}

impl HttpConfig {
    fn build(self) -> Result<reqwest::Client, BuildError> {
        crate::outbound::builder()?
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            // A Graph 3xx is an error to report, not a place to send the token.
            .redirect(reqwest::redirect::Policy::none())
            // One small GET per call: hyper's HTTP/2 costs more CPU per request than HTTP/1.1
            // here (BENCHMARKS.md, "tried, reverted").
            .http1_only()
            .build()
            .map_err(BuildError::Http)
    }
}

impl SendError {
    fn is_timeout(&self) -> bool {
        matches!(self, Self::Http(e) if e.is_timeout())
    }
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
        let config = HttpConfig {
            connect_timeout: settings.connect_timeout,
            timeout: settings.timeout,
        };
        // Built now on this thread, so a client that cannot be built stops start-up.
        let http = Arc::new(ThreadLocal::new());
        http.get_or_try(|| config.build())?;
        let base_url = trim_slash(&settings.base_url);
        // Cannot fail: `base_url` is a valid http(s) URL and the suffix a plain path.
        let me_url = Url::parse(&format!("{base_url}/v1.0/me"))
            .unwrap_or_else(|_| settings.base_url.clone());
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

    /// `GET url` with the token, `Accept: application/json` and `headers` (trace context);
    /// the body read whole, up to [`MAX_BODY`].
    async fn send(
        &self,
        url: &Url,
        authorization: &HeaderValue,
        mut headers: HeaderMap,
    ) -> Result<Reply, SendError> {
        // A clone keeps the value's `sensitive` mark (set where the token is made), so hyper
        // and reqwest's `Debug` never print it.
        headers.insert(AUTHORIZATION, authorization.clone());
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let http = self
            .http
            .get_or_try(|| self.config.build())
            .map_err(SendError::Build)?;
        let mut response = http
            .get(url.clone())
            .headers(headers)
            .send()
            .await
            .map_err(SendError::Http)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| retry_after(v.as_bytes()));
        // Refused before reading when the length is announced, and while reading otherwise.
        let announced = response.content_length().unwrap_or(0);
        if announced > MAX_BODY as u64 {
            return Err(SendError::TooLarge);
        }
        let mut body = Vec::with_capacity(usize::try_from(announced).unwrap_or(0));
        while let Some(chunk) = response.chunk().await.map_err(SendError::Http)? {
            if chunk.len() > MAX_BODY - body.len() {
                return Err(SendError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }

    fn transport_error(&self, e: &SendError) -> Error {
        match e {
            SendError::Http(e) if e.is_timeout() => Error::Timeout {
                timeout: if e.is_connect() {
                    self.config.connect_timeout
                } else {
                    self.config.timeout
                },
            },
            SendError::Http(e) if e.is_connect() => Error::Unreachable {
                base_url: self.base_url.clone(),
            },
            SendError::Http(e) if e.is_body() || e.is_decode() || is_parse_error(e) => {
                Error::Malformed {
                    reason: "the response could not be read as HTTP".into(),
                }
            }
            SendError::Build(e) => {
                tracing::warn!(error = %e, "cannot build this thread's HTTP client for Graph");
                Error::Unreachable {
                    base_url: self.base_url.clone(),
                }
            }
            SendError::TooLarge => Error::Malformed {
                reason: format!("the response is larger than {} MiB", MAX_BODY >> 20),
            },
            // The connection broke before an answer arrived.
            SendError::Http(_) => Error::Unreachable {
                base_url: self.base_url.clone(),
            },
        }
    }
}

/// Whether hyper could not parse what came back as an HTTP answer.
fn is_parse_error(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return h.is_parse();
        }
        source = s.source();
    }
    false
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
