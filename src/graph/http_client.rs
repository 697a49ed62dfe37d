//! The HTTP under the Graph calls: hyper-util's pooled HTTP/1.1 client, over a connector put
//! together from well-kept parts: hyper-util's TCP connector, its proxy rules (`HTTPS_PROXY`,
//! `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, read as curl does) and `CONNECT` tunnel, and rustls
//! (tokio-rustls) with the process's platform verifier from [`crate::outbound`].
//!
//! Why not reqwest, as for every other outgoing request: Graph is called on every tool call, and
//! reqwest's own layers over this same hyper client (redirect and retry policies that run even
//! when disabled, its request and body wrappers) cost about 12 µs of CPU per call, a tenth of
//! a warm HelloTool (BENCHMARKS.md, "Issue 14, third session"). What is ours here is only the
//! wiring: which proxy a destination goes through, the timeouts and the answer's size cap.
//!
//! `connector.rs`: the connector (TCP, the proxy's tunnel, TLS) and its connection.

mod connector;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, PROXY_AUTHORIZATION, USER_AGENT};
use http::uri::Scheme;
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use connector::{ConnectError, Connector};

/// An answer, its body read whole.
pub(super) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why no usable answer arrived. Never holds a header value (the token) or a proxy URL (it
/// may carry a password).
#[derive(Debug, thiserror::Error)]
pub(super) enum SendError {
    /// Connecting (TCP, proxy tunnel, TLS) took longer than the connect timeout.
    #[error("connecting took longer than the connect timeout")]
    ConnectTimeout,
    /// The whole request, from connecting to the body's last byte, took longer than the
    /// timeout.
    #[error("no complete answer within the timeout")]
    Timeout,
    /// No connection could be made (refused, DNS, proxy, TLS).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// What came back could not be read as an HTTP answer.
    #[error("the response could not be read as HTTP")]
    Malformed,
    /// The body is larger than the cap.
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
    /// The connection broke before an answer arrived.
    #[error("the connection closed before an answer arrived")]
    Closed,
}

impl SendError {
    /// Either timeout: connecting, or the whole request.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout | Self::ConnectTimeout)
    }
}

/// The settings the client is built with.
#[derive(Clone)]
pub(super) struct HttpConfig {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_body: usize,
    /// The proxy rules, read from the environment once per process.
    pub proxies: Arc<Matcher>,
}

impl HttpConfig {
    pub fn new(connect_timeout: Duration, timeout: Duration, max_body: usize) -> Self {
        Self {
            connect_timeout,
            timeout,
            max_body,
            proxies: Arc::new(Matcher::from_env()),
        }
    }
}

/// A pooled client (keep-alive, HTTP/1.1, no redirects: hyper does not follow them).
#[derive(Clone)]
pub(super) struct HttpClient {
    client: Client<Connector, Empty<Bytes>>,
    config: HttpConfig,
}

impl HttpClient {
    /// # Errors
    /// When the platform's roots cannot be loaded.
    pub fn new(config: HttpConfig) -> Result<Self, crate::outbound::TlsError> {
        let mut tls = crate::outbound::tls_config()?;
        // HTTP/1.1 only: one small GET per call, where hyper's HTTP/2 costs more CPU.
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        let connector = Connector {
            tcp,
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            proxies: config.proxies.clone(),
            timeout: config.connect_timeout,
        };
        let client = Client::builder(TokioExecutor::new())
            // Without a timer the pool never drops idle connections.
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(Self { client, config })
    }

    /// `GET uri` with `headers`; the body read whole, up to the cap.
    pub async fn get(&self, uri: Uri, mut headers: HeaderMap) -> Result<Reply, SendError> {
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(crate::outbound::USER_AGENT),
        );
        if uri.scheme() == Some(&Scheme::HTTP) {
            // Plain http through a proxy goes to the proxy as one request in absolute form
            // (the connector marks the connection), so the proxy's credentials go with it.
            if let Some(auth) = self
                .config
                .proxies
                .intercept(&uri)
                .and_then(|p| p.basic_auth().cloned())
            {
                headers.insert(PROXY_AUTHORIZATION, auth);
            }
        }
        let mut request = Request::new(Empty::new());
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        tokio::time::timeout(self.config.timeout, self.exchange(request))
            .await
            .map_err(|_| SendError::Timeout)?
    }

    async fn exchange(&self, request: Request<Empty<Bytes>>) -> Result<Reply, SendError> {
        let response = self.client.request(request).await.map_err(request_error)?;
        let (parts, body) = response.into_parts();
        let max = self.config.max_body;
        // Refused before reading when the length is announced, and while reading otherwise.
        let announced = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if announced.is_some_and(|n| n > max as u64) {
            return Err(SendError::TooLarge(max));
        }
        let body = Limited::new(body, max)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    SendError::TooLarge(max)
                } else {
                    SendError::Malformed
                }
            })?
            .to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// What a failed request means to the caller, from hyper-util's error and its sources.
fn request_error(e: hyper_util::client::legacy::Error) -> SendError {
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(c) = s.downcast_ref::<ConnectError>() {
            return match c {
                ConnectError::TimedOut => SendError::ConnectTimeout,
                other => SendError::Connect(other.to_string()),
            };
        }
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return if h.is_parse() {
                SendError::Malformed
            } else {
                SendError::Closed
            };
        }
        source = s.source();
    }
    if e.is_connect() {
        SendError::Connect("connection failed".into())
    } else {
        SendError::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_with_proxy(proxy: &str) -> HttpClient {
        let config = HttpConfig {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            max_body: 1024,
            proxies: Arc::new(Matcher::builder().all(proxy).build()),
        };
        HttpClient::new(config).expect("client")
    }

    #[tokio::test]
    async fn a_proxy_that_is_not_http_is_refused_without_naming_its_credentials() {
        for proxy in [
            "https://user:pa55word@proxy.invalid:3128",
            "socks5://user:pa55word@proxy.invalid:1080",
        ] {
            let client = client_with_proxy(proxy);
            let uri = Uri::from_static("https://graph.invalid/v1.0/me");
            let err = match client.get(uri, HeaderMap::new()).await {
                Err(e) => e,
                Ok(reply) => panic!("answered {}", reply.status),
            };
            let text = err.to_string();
            assert!(
                matches!(err, SendError::Connect(_)) && text.contains("only http:// proxies"),
                "{proxy}: {text}"
            );
            assert!(!text.contains("pa55word"), "{text}");
        }
    }
}
