//! The Graph HTTP client: a typed GET of any Graph path, with the retries Graph's guidance
//! asks for and bounded paging that never leaves the configured Graph origin and API version.
//!
//! The HTTP itself is hyper-util's pooled client ([`super::http_client`]): one per calling thread,
//! HTTP/1.1, redirects not followed, the environment's proxy rules. What is ours here: the token
//! each call asks for (exactly the calling tool's permissions, [`Endpoint`]), how a failure reads
//! to the user, and Graph's retry rules; a 401 and its claims challenge (continuous access
//! evaluation) are answered in `client/challenge.rs`, and what every other answer means in
//! `client/answer.rs`.

use std::sync::Arc;

use http::StatusCode;
use http::Uri;
use http::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use thread_local::ThreadLocal;
use tracing::Instrument;
use url::Url;

use super::Error;
use super::Settings as GraphSettings;
use super::http_client::{HttpClient, HttpConfig, Reply, SendError};
use super::settings::ScopeMode;
use crate::auth::Caller;
use crate::config::trim_slash;
use crate::obo::{AccessToken, DownstreamTokens};
use crate::outbound::{self, Retries, Step};
use crate::telemetry::metrics;
use answer::judge;

/// Retries after 429/502/503/504 before giving up.
const MAX_RETRIES: u32 = 2;
/// Larger Graph answers are refused rather than buffered (`/me` is about 1 KB).
const MAX_BODY: usize = 4 * 1024 * 1024;
/// Pages fetched for one call at most, whatever the tool's item bound (empty pages).
const MAX_PAGES: usize = 20;

/// One Graph path a tool calls, prepared once when the tool is built: its URL, and the
/// scopes its token is requested for (the tool's permissions, resource-qualified for the
/// configured cloud, sorted and deduplicated so the token cache key is stable).
#[derive(Debug, Clone)]
pub struct Endpoint {
    url: Url,
    /// `url`, parsed once for calls without query parameters (HelloTool's hot path).
    uri: Uri,
    /// The path as given, e.g. `/v1.0/me`, for messages.
    path: Arc<str>,
    /// `{base path}/{version}/`: where a `@odata.nextLink` may point.
    version_prefix: Arc<str>,
    scopes: Arc<[String]>,
    /// The permissions the tool declared, as the 403 message names them.
    permissions: Arc<str>,
}

/// One page of a Graph collection.
#[derive(Deserialize)]
struct Page<T> {
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
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
    #[error("the Graph path {0} must start with /v1.0/ or /beta/")]
    Path(String),
}

/// Microsoft Graph, called as a given caller.
#[derive(Clone)]
pub struct GraphClient {
    /// One HTTP client (and keep-alive pool) per thread that calls Graph. actix-web runs
    /// each worker on a single-threaded runtime, and hyper drives a connection from a task
    /// on the runtime that opened it: with one pool for all workers, a connection opened by
    /// one worker and checked out by another costs two cross-thread wake-ups per call
    /// (BENCHMARKS.md, "Issue 14, second session"). Every client shares the process's TLS
    /// configuration, so a thread's first call loads no roots.
    http: Arc<ThreadLocal<HttpClient>>,
    /// How each thread's client is made (timeouts, size cap, proxy rules).
    config: HttpConfig,
    base_url: String,
    /// `graph.base_url`, parsed.
    base: Url,
    /// `server.address` of the Graph spans.
    host: String,
    /// `graph.scopes`: each tool's permissions, or `.default`.
    scope_mode: ScopeMode,
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
        Ok(Self {
            http,
            config,
            base_url: trim_slash(&settings.base_url),
            base: settings.base_url.clone(),
            host: settings.base_url.host_str().unwrap_or_default().to_owned(),
            scope_mode: settings.scopes,
            tokens,
        })
    }

    /// Prepares `path` (e.g. `/v1.0/me/calendarView`) for a tool needing `permissions`
    /// (e.g. `Calendars.Read`); call it when the tool is built, not per call.
    ///
    /// # Errors
    /// When the path names no API version (`/v1.0/`, `/beta/`) or makes no valid URL.
    pub fn endpoint(&self, path: &str, permissions: &[&str]) -> Result<Endpoint, BuildError> {
        let version = ["/v1.0/", "/beta/"]
            .into_iter()
            .find(|v| path.starts_with(v))
            .ok_or_else(|| BuildError::Path(path.to_owned()))?;
        let joined = format!("{}{path}", self.base_url);
        let url = Url::parse(&joined).map_err(|_| BuildError::Path(path.to_owned()))?;
        // `base_url` is a validated http(s) URL and the suffix a plain path, so this fails
        // only on a URL `http::Uri` reads differently from `url::Url`.
        let uri = Uri::try_from(joined).map_err(|_| BuildError::BaseUrl(self.base_url.clone()))?;
        let base_path = self.base.path().trim_end_matches('/');
        Ok(Endpoint {
            url,
            uri,
            path: path.into(),
            version_prefix: format!("{base_path}{version}").into(),
            scopes: scopes_for(&self.base, self.scope_mode, permissions).into(),
            permissions: permissions.join(", ").into(),
        })
    }

    /// `GET` `endpoint` with `query` parameters and extra `headers` (e.g. `Prefer`) as
    /// `caller`, the answer read as `T`.
    ///
    /// # Errors
    /// Any [`Error`]: token acquisition, HTTP status, timeout, unreachable, bad JSON.
    pub async fn get<T: DeserializeOwned>(
        &self,
        caller: &Caller,
        endpoint: &Endpoint,
        query: &[(&str, &str)],
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<T, Error> {
        let uri = with_query(endpoint, query)?;
        self.get_json(caller, endpoint, &uri, headers).await
    }

    /// The items of the Graph collection at `endpoint`, following `@odata.nextLink` until
    /// `limit` items (or the last page).
    ///
    /// # Security
    /// A next link is followed only to the configured Graph origin (scheme, host, port) and
    /// the endpoint's API version; any other is an error and no request (so no token) goes
    /// there.
    ///
    /// # Errors
    /// Any [`Error`] of a page, or [`Error::NextLink`].
    pub async fn get_pages<T: DeserializeOwned>(
        &self,
        caller: &Caller,
        endpoint: &Endpoint,
        query: &[(&str, &str)],
        headers: &[(HeaderName, HeaderValue)],
        limit: usize,
    ) -> Result<Vec<T>, Error> {
        let mut uri = with_query(endpoint, query)?;
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let page: Page<T> = self.get_json(caller, endpoint, &uri, headers).await?;
            items.extend(page.value);
            if items.len() >= limit {
                items.truncate(limit);
                break;
            }
            let Some(next) = page.next_link else { break };
            uri = next_page(endpoint, &next)?;
        }
        Ok(items)
    }

    /// One call: a token, the GET, Graph's retries (`outbound::Retries`) and its first
    /// 401 answered once (`client/challenge.rs`).
    async fn get_json<T: DeserializeOwned>(
        &self,
        caller: &Caller,
        endpoint: &Endpoint,
        url: &Uri,
        extra: &[(HeaderName, HeaderValue)],
    ) -> Result<T, Error> {
        let scopes: Vec<&str> = endpoint.scopes.iter().map(String::as_str).collect();
        let mut refreshed = false;
        // The token a claims challenge's re-exchange returned, for the retry.
        let mut answered = None;
        let mut retries = Retries::new("graph", MAX_RETRIES);
        loop {
            let token = match answered.take() {
                Some(token) => token,
                None => self.tokens.token(caller, &scopes).await?,
            };
            let span = outbound::client_span!(
                "mcp_obo::graph",
                "GET",
                self.host,
                url,
                retries.resends(),
                graph.cae_challenge = tracing::field::Empty
            );
            let reply = self.attempt(url, &token, extra, &span).await?;
            let step = if reply.status == StatusCode::UNAUTHORIZED && !refreshed {
                refreshed = true;
                answered = self
                    .answer_unauthorized(caller, &scopes, &reply.headers, &span)
                    .await?;
                Ok(Step::Again)
            } else {
                judge(endpoint, &reply)
            };
            if let Some(result) = retries.after(step).await {
                return result;
            }
        }
    }

    /// One GET with `token`, recorded on `span` and in the metrics.
    async fn attempt(
        &self,
        url: &Uri,
        token: &AccessToken,
        extra: &[(HeaderName, HeaderValue)],
        span: &tracing::Span,
    ) -> Result<Reply, Error> {
        let started = std::time::Instant::now();
        let mut headers = span.in_scope(crate::telemetry::otel::outgoing_headers);
        for (name, value) in extra {
            headers.insert(name.clone(), value.clone());
        }
        let Some(authorization) = token.authorization() else {
            return Err(Error::Token(crate::obo::Error::Protocol {
                detail: "the access token has characters an HTTP header cannot carry".into(),
            }));
        };
        match self
            .send(url, authorization, headers)
            .instrument(span.clone())
            .await
        {
            Ok(reply) => {
                outbound::record_status(span, reply.status);
                metrics::graph_request(reply.status.as_str(), started.elapsed());
                Ok(reply)
            }
            Err(e) => {
                let (kind, outcome) = if e.is_timeout() {
                    ("timeout", "timeout")
                } else {
                    ("transport", "unreachable")
                };
                outbound::record_failure(span, kind);
                metrics::graph_request(outcome, started.elapsed());
                tracing::debug!(error = %e, "graph request failed");
                Err(self.transport_error(&e))
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

/// `https://graph.microsoft.com/.default` for `https://graph.microsoft.com`.
fn default_scope(base_url: &Url) -> String {
    format!("{}/.default", base_url.origin().ascii_serialization())
}

/// The scopes a token for `permissions` is requested with: each qualified with the Graph
/// origin (`https://graph.microsoft.com/Calendars.Read`), sorted and deduplicated; `.default`
/// in [`ScopeMode::Default`] or for a tool that declares none.
fn scopes_for(base_url: &Url, mode: ScopeMode, permissions: &[&str]) -> Vec<String> {
    if mode == ScopeMode::Default || permissions.is_empty() {
        return vec![default_scope(base_url)];
    }
    let origin = base_url.origin().ascii_serialization();
    let mut scopes: Vec<String> = permissions
        .iter()
        .map(|p| format!("{origin}/{p}"))
        .collect();
    scopes.sort();
    scopes.dedup();
    scopes
}

/// `endpoint` with `query` (the pre-parsed URI when there is none).
fn with_query(endpoint: &Endpoint, query: &[(&str, &str)]) -> Result<Uri, Error> {
    if query.is_empty() {
        return Ok(endpoint.uri.clone());
    }
    let mut url = endpoint.url.clone();
    url.query_pairs_mut().extend_pairs(query);
    Uri::try_from(url.as_str()).map_err(|_| Error::Malformed {
        reason: "the request URL with its query is not a valid URI".into(),
    })
}

/// The next page's URI, when `link` stays on the endpoint's Graph origin and API version.
fn next_page(endpoint: &Endpoint, link: &str) -> Result<Uri, Error> {
    let refused = || Error::NextLink {
        path: endpoint.path.to_string(),
    };
    let next = Url::parse(link).map_err(|_| refused())?;
    if next.origin() != endpoint.url.origin()
        || !next.path().starts_with(&*endpoint.version_prefix)
        || !next.username().is_empty()
        || next.password().is_some()
    {
        return Err(refused());
    }
    Uri::try_from(next.as_str()).map_err(|_| refused())
}

mod answer;
mod challenge;
#[cfg(test)]
mod tests;
