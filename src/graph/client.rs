//! The Graph HTTP client: one GET per call, with the retries Graph's guidance asks for.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use thread_local::ThreadLocal;
use tracing::Instrument;
use url::Url;

use super::Error;
use crate::auth::Caller;
use crate::config::{GraphSettings, trim_slash};
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
    /// One connection pool per worker thread. A pooled connection's I/O task runs on the
    /// thread that opened it, so a pool shared by the actix workers hands a request to
    /// another thread whenever it picks that thread's connection: a wake-up and a core hop
    /// per call (BENCHMARKS.md).
    http: Arc<ThreadLocal<reqwest::Client>>,
    connect_timeout: Duration,
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
    /// When the HTTP client cannot be built (TLS initialisation).
    pub fn new(
        settings: &GraphSettings,
        tokens: Arc<dyn DownstreamTokens>,
    ) -> Result<Self, reqwest::Error> {
        let http = Arc::new(ThreadLocal::new());
        // Built once here so a TLS initialisation failure stops start-up.
        http.get_or_try(|| http_client(settings.connect_timeout, settings.timeout))?;
        let base_url = trim_slash(&settings.base_url);
        // Cannot fail: `base_url` is a valid http(s) URL and the suffix a plain path.
        let me_url = Url::parse(&format!("{base_url}/v1.0/me"))
            .unwrap_or_else(|_| settings.base_url.clone());
        Ok(Self {
            http,
            connect_timeout: settings.connect_timeout,
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
        let http = self
            .http
            .get_or_try(|| http_client(self.connect_timeout, self.timeout))
            .map_err(|e| self.transport_error(&e))?;
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
            let request = http.get(url.clone()).headers(headers);
            let request = match token.authorization() {
                Some(value) => request.header(reqwest::header::AUTHORIZATION, value.clone()),
                None => request.bearer_auth(token.secret()),
            };
            let sent = request
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
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
                    return Err(error);
                }
            };
            let status = response.status();
            span.record("http.response.status_code", status.as_u16());
            metrics::graph_request(status.as_str(), started.elapsed());
            if !status.is_success() {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", status.as_str());
            }
            if status.is_success() {
                let body = response
                    .bytes()
                    .await
                    .map_err(|e| self.transport_error(&e))?;
                return serde_json::from_slice(&body).map_err(|e| Error::Malformed {
                    reason: e.to_string(),
                });
            }
            let retry_after = retry_after(response.headers());
            let (code, message) = graph_error(response).await;
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

    fn transport_error(&self, e: &reqwest::Error) -> Error {
        if e.is_timeout() {
            Error::Timeout {
                timeout: self.timeout,
            }
        } else if e.is_decode() || e.is_body() {
            Error::Malformed {
                reason: "the response body could not be read".into(),
            }
        } else {
            Error::Unreachable {
                base_url: self.base_url.clone(),
            }
        }
    }
}

/// A Graph HTTP client. Redirects are not followed: Graph's JSON API does not redirect, and
/// a bearer token must not follow one.
fn http_client(
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mcp-obo/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// `https://graph.microsoft.com/.default` for `https://graph.microsoft.com`.
fn default_scope(base_url: &Url) -> String {
    format!("{}/.default", base_url.origin().ascii_serialization())
}

/// `Retry-After` in seconds (the form Graph sends).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Graph's error body: `{"error": {"code": "...", "message": "..."}}`.
async fn graph_error(response: reqwest::Response) -> (Option<String>, Option<String>) {
    #[derive(Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        code: Option<String>,
        message: Option<String>,
    }
    let Ok(bytes) = response.bytes().await else {
        return (None, None);
    };
    match serde_json::from_slice::<Body>(&bytes) {
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
