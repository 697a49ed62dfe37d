//! The Graph HTTP client: one GET per call, with the retries Graph's guidance asks for.
//!
//! The HTTP itself is reqwest: one shared client (hyper's keep-alive pool, rustls with the
//! platform verifier, the `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY` environment),
//! HTTP/1.1 only, redirects not followed. What is ours: the answer's size cap, how a failure
//! reads to the user, and Graph's retry rules.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use serde::{Deserialize, Serialize};
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
const USER_AGENT: &str = concat!("mcp-obo/", env!("CARGO_PKG_VERSION"));

/// The signed-in user's profile (`GET /v1.0/me`), the fields the tools use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub id: Option<String>,
    pub display_name: Option<String>,
    pub mail: Option<String>,
    pub user_principal_name: Option<String>,
}

/// The HTTP client for Graph could not be built (TLS set-up). Never contains a token.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot build the HTTP client for Microsoft Graph: {0}; check the system's TLS trust store (SSL_CERT_FILE, SSL_CERT_DIR)"
)]
pub struct BuildError(#[source] reqwest::Error);

/// Microsoft Graph, called as a given caller.
#[derive(Clone)]
pub struct GraphClient {
    /// Shared by every worker; cheap to clone (an `Arc` inside).
    http: reqwest::Client,
    /// `{base_url}/v1.0/me`, parsed once.
    me_url: Url,
    base_url: String,
    /// `server.address` of the Graph spans.
    host: String,
    /// `{graph origin}/.default`: every permission the app was consented for on Graph.
    scope: String,
    connect_timeout: Duration,
    timeout: Duration,
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
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            // A Graph 3xx is an error to report, not a place to send the token.
            .redirect(reqwest::redirect::Policy::none())
            // One small GET per call: hyper's HTTP/2 costs more CPU per request than HTTP/1.1
            // here (BENCHMARKS.md, "tried, reverted").
            .http1_only()
            .user_agent(USER_AGENT)
            .build()
            .map_err(BuildError)?;
        let base_url = trim_slash(&settings.base_url);
        // Cannot fail: `base_url` is a valid http(s) URL and the suffix a plain path.
        let me_url = Url::parse(&format!("{base_url}/v1.0/me"))
            .unwrap_or_else(|_| settings.base_url.clone());
        Ok(Self {
            http,
            me_url,
            base_url,
            host: settings.base_url.host_str().unwrap_or_default().to_owned(),
            scope: default_scope(&settings.base_url),
            connect_timeout: settings.connect_timeout,
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
        let mut response = self
            .http
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
                    self.connect_timeout
                } else {
                    self.timeout
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
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::SystemTime;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::Notify;

    use super::*;
    use crate::obo::AccessToken;

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

    const TOKEN: &str = "t0k.en";
    const ME: &str = r#"{"id":"1","displayName":"Ada","mail":"ada@contoso.com","userPrincipalName":"ada@contoso.com"}"#;

    fn ok() -> Vec<u8> {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{ME}",
            ME.len()
        )
        .into_bytes()
    }

    /// Always the same token; counts what it is asked.
    #[derive(Default)]
    struct Tokens {
        issued: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl DownstreamTokens for Tokens {
        async fn token(
            &self,
            _caller: &Caller,
            _scopes: &[&str],
        ) -> Result<AccessToken, crate::obo::Error> {
            self.issued.fetch_add(1, Ordering::SeqCst);
            Ok(AccessToken::new(
                TOKEN,
                SystemTime::now() + Duration::from_secs(3600),
            ))
        }

        async fn invalidate(&self, _caller: &Caller, _scopes: &[&str]) {}
    }

    /// What the scripted server does with the next request it reads.
    enum Step {
        /// Write these bytes and keep the connection.
        Answer(Vec<u8>),
        /// Write these bytes (a keep-alive answer), wait for `Scripted::close_now`, then close
        /// the connection, as a server does with one it considers idle; `Scripted::closed` is
        /// notified once it is closed.
        AnswerThenCloseWhenTold(Vec<u8>),
        /// Close without answering.
        Close,
        /// Write these bytes, then never write more.
        AnswerAndHang(Vec<u8>),
    }

    /// A server answering from `script`; records each request head with its connection's
    /// number.
    struct Scripted {
        url: Url,
        requests: Arc<Mutex<Vec<(usize, String)>>>,
        close_now: Arc<Notify>,
        closed: Arc<Notify>,
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn scripted(script: Vec<Step>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = Url::parse(&format!(
            "http://{}",
            listener.local_addr().expect("address")
        ))
        .expect("url");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let (close_now, closed) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let (seen, told, notify) = (requests.clone(), close_now.clone(), closed.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((mut stream, _)) = listener.accept().await {
                n += 1;
                let (seen, script) = (seen.clone(), script.clone());
                let (told, notify) = (told.clone(), notify.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            if matches!(stream.read_buf(&mut buf).await, Ok(0) | Err(_)) {
                                return;
                            }
                        }
                        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
                        let head: Vec<u8> = buf.drain(..end).collect();
                        lock(&seen).push((n, String::from_utf8_lossy(&head).into_owned()));
                        let step = lock(&script).pop_front();
                        match step {
                            Some(Step::Answer(bytes)) => {
                                let _ = stream.write_all(&bytes).await;
                            }
                            Some(Step::AnswerThenCloseWhenTold(bytes)) => {
                                let _ = stream.write_all(&bytes).await;
                                told.notified().await;
                                drop(stream);
                                notify.notify_one();
                                return;
                            }
                            Some(Step::Close) | None => return,
                            Some(Step::AnswerAndHang(bytes)) => {
                                let _ = stream.write_all(&bytes).await;
                                std::future::pending::<()>().await;
                            }
                        }
                    }
                });
            }
        });
        Scripted {
            url,
            requests,
            close_now,
            closed,
        }
    }

    impl Scripted {
        fn requests(&self) -> Vec<(usize, String)> {
            lock(&self.requests).clone()
        }

        fn connections(&self) -> Vec<usize> {
            self.requests().iter().map(|(n, _)| *n).collect()
        }
    }

    fn settings(base_url: &Url) -> GraphSettings {
        GraphSettings {
            base_url: base_url.clone(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
        }
    }

    fn client(settings: &GraphSettings) -> GraphClient {
        GraphClient::new(settings, Arc::new(Tokens::default())).expect("graph client")
    }

    async fn me(graph: &GraphClient) -> Result<Me, Error> {
        graph.me(&Caller::local_developer()).await
    }

    #[tokio::test]
    async fn sends_the_token_as_a_get_and_reuses_the_connection() {
        let server = scripted(vec![Step::Answer(ok()), Step::Answer(ok())]).await;
        let graph = client(&settings(&server.url));
        let profile = me(&graph).await.expect("profile");
        assert_eq!(profile.display_name.as_deref(), Some("Ada"));
        me(&graph).await.expect("second profile");

        let requests = server.requests();
        let head = requests[0].1.to_ascii_lowercase();
        assert!(head.starts_with("get /v1.0/me http/1.1\r\n"), "{head}");
        assert!(
            head.contains("\r\nauthorization: bearer t0k.en\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\naccept: application/json\r\n"), "{head}");
        assert!(head.contains("\r\nuser-agent: mcp-obo/"), "{head}");
        assert_eq!(
            server.connections(),
            [1, 1],
            "the keep-alive connection is reused"
        );
    }

    #[tokio::test]
    async fn an_idle_connection_the_server_closed_does_not_fail_the_next_call() {
        // Each answer keeps the connection alive as far as HTTP says; once the call has
        // returned (the connection is back in the pool), the server closes it, as load
        // balancers do with idle connections. The next call, made right away, must still
        // succeed on a new connection. (What makes it work: hyper's connection task reads
        // before it writes, sees the close and cancels the unwritten request, and
        // hyper-util's pool sends it again on a new connection, `retry_canceled_requests`;
        // or the pool has already dropped the closed connection.)
        const ROUNDS: usize = 20;
        let server = scripted(
            (0..ROUNDS)
                .map(|_| Step::AnswerThenCloseWhenTold(ok()))
                .collect(),
        )
        .await;
        let graph = client(&settings(&server.url));
        for round in 0..ROUNDS {
            me(&graph)
                .await
                .unwrap_or_else(|e| panic!("call {round}: {e}"));
            server.close_now.notify_one();
            server.closed.notified().await;
        }
        let expected: Vec<usize> = (1..=ROUNDS).collect();
        assert_eq!(
            server.connections(),
            expected,
            "each request sent once, each on a new connection"
        );
    }

    #[tokio::test]
    async fn a_new_connection_closed_without_an_answer_is_unreachable_and_not_resent() {
        let server = scripted(vec![Step::Close, Step::Answer(ok())]).await;
        let err = me(&client(&settings(&server.url)))
            .await
            .expect_err("no answer");
        assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
        assert_eq!(server.requests().len(), 1, "the GET is not sent again");
    }

    #[tokio::test]
    async fn an_answer_that_is_not_http_is_malformed() {
        let server = scripted(vec![Step::Answer(b"HTTP/1.1 2OO OK\r\n\r\n".to_vec())]).await;
        let err = me(&client(&settings(&server.url)))
            .await
            .expect_err("refused");
        assert!(
            err.to_string().contains("could not be read as HTTP"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn an_announced_body_over_the_cap_is_refused_unread() {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        // The body never comes: refusing must not wait for it.
        let server = scripted(vec![Step::AnswerAndHang(head.into_bytes())]).await;
        let err = me(&client(&settings(&server.url)))
            .await
            .expect_err("too large");
        assert!(matches!(err, Error::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains("larger than 4 MiB"), "{err}");
    }

    #[tokio::test]
    async fn a_streamed_body_over_the_cap_is_refused() {
        // Chunked, so no length is announced: 64 KiB chunks until past the cap.
        let chunk = vec![b' '; 64 * 1024];
        let mut answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..=(MAX_BODY / chunk.len()) {
            answer.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            answer.extend_from_slice(&chunk);
            answer.extend_from_slice(b"\r\n");
        }
        answer.extend_from_slice(b"0\r\n\r\n");
        let server = scripted(vec![Step::Answer(answer)]).await;
        let err = me(&client(&settings(&server.url)))
            .await
            .expect_err("too large");
        assert!(err.to_string().contains("larger than 4 MiB"), "{err}");
    }

    #[tokio::test]
    async fn a_body_at_the_cap_is_read() {
        // The same framing, one chunk fewer: a body of exactly the cap (JSON after spaces).
        let mut body = vec![b' '; MAX_BODY - ME.len()];
        body.extend_from_slice(ME.as_bytes());
        let mut answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for part in body.chunks(64 * 1024) {
            answer.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            answer.extend_from_slice(part);
            answer.extend_from_slice(b"\r\n");
        }
        answer.extend_from_slice(b"0\r\n\r\n");
        let server = scripted(vec![Step::Answer(answer)]).await;
        let profile = me(&client(&settings(&server.url)))
            .await
            .expect("a body of exactly the cap");
        assert_eq!(profile.display_name.as_deref(), Some("Ada"));
    }

    #[tokio::test]
    async fn a_redirect_is_an_error_and_the_token_goes_nowhere_else() {
        let elsewhere = scripted(vec![Step::Answer(ok())]).await;
        let redirect = format!(
            "HTTP/1.1 302 Found\r\nLocation: {}v1.0/me\r\nContent-Length: 0\r\n\r\n",
            elsewhere.url
        );
        let server = scripted(vec![Step::Answer(redirect.into_bytes())]).await;
        let err = me(&client(&settings(&server.url)))
            .await
            .expect_err("not followed");
        assert!(
            matches!(err, Error::Unexpected { status: 302, .. }),
            "{err:?}"
        );
        assert_eq!(server.requests().len(), 1);
        assert!(elsewhere.requests().is_empty(), "the redirect was followed");
    }

    #[tokio::test]
    async fn gives_up_after_the_total_timeout_before_or_during_the_body() {
        for answered in [
            Vec::new(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"id\":".to_vec(),
        ] {
            let server = scripted(vec![Step::AnswerAndHang(answered)]).await;
            let mut s = settings(&server.url);
            s.timeout = Duration::from_millis(200);
            let err = me(&client(&s)).await.expect_err("timeout");
            assert!(
                matches!(err, Error::Timeout { timeout } if timeout == s.timeout),
                "{err:?}"
            );
        }
    }

    #[tokio::test]
    async fn gives_up_after_the_connect_timeout() {
        // A listener with a full accept queue: Linux drops further SYNs (unless
        // net.ipv4.tcp_abort_on_overflow is set), so the next connect never completes.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        let addr = socket.local_addr().expect("address");
        let _listener = socket.listen(0).expect("listen");
        let _fills_the_queue = tokio::net::TcpStream::connect(addr)
            .await
            .expect("first connect");
        let mut s = settings(&Url::parse(&format!("http://{addr}")).expect("url"));
        s.connect_timeout = Duration::from_millis(200);
        s.timeout = Duration::from_secs(30);
        let err = me(&client(&s)).await.expect_err("connect timeout");
        assert!(
            matches!(err, Error::Timeout { timeout } if timeout == s.connect_timeout),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn nothing_listening_is_unreachable() {
        // A port nothing listens on: bind, note it, close.
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind")
            .local_addr()
            .expect("address")
            .port();
        let url = Url::parse(&format!("http://127.0.0.1:{port}")).expect("url");
        let err = me(&client(&settings(&url))).await.expect_err("refused");
        assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn https_refuses_a_certificate_the_platform_does_not_trust() {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .expect("params")
            .self_signed(&key)
            .expect("self-signed");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            let mut tls = acceptor.accept(stream).await?;
            // Only reached if the client trusted the certificate: whatever it sent.
            let mut request = Vec::new();
            tls.read_to_end(&mut request).await?;
            Ok::<_, std::io::Error>(request)
        });
        let url = Url::parse(&format!("https://localhost:{port}")).expect("url");
        let err = me(&client(&settings(&url)))
            .await
            .expect_err("an untrusted certificate");
        assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
        let handshake = server.await.expect("server task");
        assert!(
            handshake.is_err(),
            "the client completed the handshake and sent {handshake:?}"
        );
    }
}
