//! How Graph GETs reach the network.
//!
//! [`Transport::Direct`] is a small HTTP/1.1 client for exactly what the Graph client sends:
//! a GET with a handful of headers, and a JSON answer framed by `Content-Length` or chunked
//! encoding. Each worker thread keeps its own keep-alive connections (TLS for `https`), and a
//! request is written and its answer read in the calling task. A general client (reqwest over
//! hyper's pool) costs about twice the CPU per call: a pool checkout, a hand-off to a separate
//! connection task and back, and a per-request proxy match (BENCHMARKS.md). HTTP/2 measured
//! slower still for this one-small-GET-per-call pattern.
//!
//! [`Transport::Proxied`] is reqwest, used when an `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`
//! environment variable is set, because it implements forward proxies and `NO_PROXY`.

use std::cell::RefCell;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderValue};
use thread_local::ThreadLocal;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

use super::Settings as GraphSettings;

/// Larger Graph answers are refused rather than buffered (`/me` is about 1 KB).
const MAX_BODY: usize = 4 * 1024 * 1024;
/// Status line plus headers.
const MAX_HEAD: usize = 64 * 1024;
/// A pooled connection idle longer than this is closed rather than reused: load balancers in
/// front of Graph drop idle connections after a few minutes, and reqwest's default is 90 s.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per worker thread.
const MAX_IDLE: usize = 256;

/// A Graph answer: what the client looks at.
#[derive(Debug)]
pub(super) struct Reply {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

/// Why no answer arrived. Never contains a header value (the token).
#[derive(Debug, thiserror::Error)]
pub(super) enum TransportError {
    #[error("timed out")]
    Timeout,
    #[error("could not connect: {0}")]
    Connect(io::Error),
    #[error("connection failed: {0}")]
    Io(#[from] io::Error),
    #[error("malformed HTTP response: {0}")]
    Protocol(&'static str),
    #[error("response body larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("{0}")]
    Proxied(#[source] reqwest::Error),
}

impl TransportError {
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Timeout => true,
            Self::Proxied(e) => e.is_timeout(),
            _ => false,
        }
    }

    /// The connection worked but what came back is not a usable HTTP answer.
    pub fn is_malformed(&self) -> bool {
        match self {
            Self::Protocol(_) | Self::TooLarge => true,
            Self::Proxied(e) => e.is_decode() || e.is_body(),
            _ => false,
        }
    }
}

/// Could not set up the transport (TLS roots, proxy URL).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot load the platform's TLS roots for Graph: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cannot build the Graph HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("graph.base_url {0} has no host")]
    NoHost(Url),
}

pub(super) enum Transport {
    Direct(Direct),
    Proxied(ThreadLocal<reqwest::Client>, Proxy),
}

/// The proxy settings read from the environment at start-up.
pub(super) struct Proxy {
    url: String,
    no_proxy: Option<String>,
    connect_timeout: Duration,
    timeout: Duration,
}

impl Transport {
    /// Direct, unless `env` names a proxy for the base URL's scheme.
    pub fn new(
        settings: &GraphSettings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, BuildError> {
        let var = |name: &str| {
            env(name)
                .or_else(|| env(&name.to_ascii_lowercase()))
                .filter(|v| !v.trim().is_empty())
        };
        let proxy = match settings.base_url.scheme() {
            "https" => var("HTTPS_PROXY"),
            _ => var("HTTP_PROXY"),
        }
        .or_else(|| var("ALL_PROXY"));
        match proxy {
            Some(url) => {
                let proxy = Proxy {
                    url,
                    no_proxy: var("NO_PROXY"),
                    connect_timeout: settings.connect_timeout,
                    timeout: settings.timeout,
                };
                let http = ThreadLocal::new();
                // Built once here so a bad proxy URL stops start-up.
                http.get_or_try(|| proxy.client())?;
                Ok(Self::Proxied(http, proxy))
            }
            None => Ok(Self::Direct(Direct::new(settings)?)),
        }
    }

    pub fn is_direct(&self) -> bool {
        matches!(self, Self::Direct(_))
    }

    /// `GET url` with `authorization`, `Accept: application/json` and `extra` headers.
    pub async fn get(
        &self,
        url: &Url,
        authorization: &HeaderValue,
        extra: &HeaderMap,
    ) -> Result<Reply, TransportError> {
        match self {
            Self::Direct(direct) => direct.get(url, authorization, extra).await,
            Self::Proxied(http, proxy) => {
                let http = http
                    .get_or_try(|| proxy.client())
                    .map_err(TransportError::Proxied)?;
                let response = http
                    .get(url.clone())
                    .headers(extra.clone())
                    .header(reqwest::header::AUTHORIZATION, authorization.clone())
                    .header(reqwest::header::ACCEPT, "application/json")
                    .send()
                    .await
                    .map_err(TransportError::Proxied)?;
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| retry_after(v.as_bytes()));
                let body = response.bytes().await.map_err(TransportError::Proxied)?;
                Ok(Reply {
                    status,
                    retry_after,
                    body,
                })
            }
        }
    }
}

impl Proxy {
    fn client(&self) -> Result<reqwest::Client, reqwest::Error> {
        let proxy = reqwest::Proxy::all(&self.url)?.no_proxy(
            self.no_proxy
                .as_deref()
                .and_then(reqwest::NoProxy::from_string),
        );
        reqwest::Client::builder()
            .proxy(proxy)
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .build()
    }
}

const USER_AGENT: &str = concat!("mcp-obo/", env!("CARGO_PKG_VERSION"));

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

struct Conn {
    io: Box<dyn Io>,
    buf: BytesMut,
    idle_since: Instant,
}

pub(super) struct Direct {
    host: String,
    port: u16,
    /// `Host:` and the fixed headers, ready to copy into each request head.
    fixed_headers: String,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
    /// Keep-alive connections of each worker thread: a tokio socket belongs to the runtime
    /// (the actix worker) that opened it.
    idle: ThreadLocal<RefCell<Vec<Conn>>>,
    connect_timeout: Duration,
    timeout: Duration,
}

/// How one attempt failed, and whether a fresh connection may try again.
struct Failed {
    error: TransportError,
    /// Nothing of an answer arrived on a reused connection: the server had closed it while
    /// it sat idle, and a GET is safe to send again.
    stale: bool,
}

impl Direct {
    fn new(settings: &GraphSettings) -> Result<Self, BuildError> {
        let url = &settings.base_url;
        let host = url
            .host_str()
            .ok_or_else(|| BuildError::NoHost(url.clone()))?
            .to_owned();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| BuildError::NoHost(url.clone()))?;
        let host_header = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        // An IPv6 literal's host_str is bracketed; connecting and TLS names want it bare.
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tls = if url.scheme() == "https" {
            use rustls_platform_verifier::BuilderVerifierExt;
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_platform_verifier()?
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = rustls::pki_types::ServerName::try_from(bare.clone())
                .map_err(|_| BuildError::NoHost(url.clone()))?;
            Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Self {
            host: bare,
            port,
            fixed_headers: format!(
                "Host: {host_header}\r\nUser-Agent: {USER_AGENT}\r\nAccept: application/json\r\n"
            ),
            tls,
            idle: ThreadLocal::new(),
            connect_timeout: settings.connect_timeout,
            timeout: settings.timeout,
        })
    }

    async fn get(
        &self,
        url: &Url,
        authorization: &HeaderValue,
        extra: &HeaderMap,
    ) -> Result<Reply, TransportError> {
        let mut head = Vec::with_capacity(256 + authorization.len());
        head.extend_from_slice(b"GET ");
        head.extend_from_slice(url.path().as_bytes());
        if let Some(q) = url.query() {
            head.push(b'?');
            head.extend_from_slice(q.as_bytes());
        }
        head.extend_from_slice(b" HTTP/1.1\r\n");
        head.extend_from_slice(self.fixed_headers.as_bytes());
        head.extend_from_slice(b"Authorization: ");
        head.extend_from_slice(authorization.as_bytes());
        head.extend_from_slice(b"\r\n");
        for (name, value) in extra {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        tokio::time::timeout(self.timeout, self.send(&head))
            .await
            .unwrap_or(Err(TransportError::Timeout))
    }

    async fn send(&self, head: &[u8]) -> Result<Reply, TransportError> {
        let mut fresh_only = false;
        loop {
            // No borrow of the pool lives across an await: the future may be Send.
            let pooled = if fresh_only { None } else { self.take_idle() };
            let reused = pooled.is_some();
            let mut conn = match pooled {
                Some(c) => c,
                None => self.connect().await?,
            };
            match exchange(&mut conn, head).await {
                Ok((reply, keep)) => {
                    let mut idle = self.pool().borrow_mut();
                    if keep && idle.len() < MAX_IDLE {
                        conn.idle_since = Instant::now();
                        idle.push(conn);
                    }
                    return Ok(reply);
                }
                // The server closed it while it sat idle: once more, on a new connection.
                Err(Failed { stale: true, .. }) if reused => fresh_only = true,
                Err(f) => return Err(f.error),
            }
        }
    }

    /// The most recently used idle connection, unless it has been idle too long, and then
    /// so have all the others (they are kept in order of use).
    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.pool().borrow_mut();
        let conn = idle.pop()?;
        if conn.idle_since.elapsed() < IDLE_TIMEOUT {
            Some(conn)
        } else {
            idle.clear();
            None
        }
    }

    fn pool(&self) -> &RefCell<Vec<Conn>> {
        self.idle.get_or(|| RefCell::new(Vec::new()))
    }

    async fn connect(&self) -> Result<Conn, TransportError> {
        let connect = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
            tcp.set_nodelay(true)?;
            let io: Box<dyn Io> = match &self.tls {
                Some((connector, name)) => Box::new(connector.connect(name.clone(), tcp).await?),
                None => Box::new(tcp),
            };
            Ok::<_, io::Error>(io)
        };
        let io = tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| TransportError::Timeout)?
            .map_err(TransportError::Connect)?;
        Ok(Conn {
            io,
            buf: BytesMut::with_capacity(4096),
            idle_since: Instant::now(),
        })
    }
}

/// Writes `head`, reads one answer. `Ok((reply, reusable))`.
async fn exchange(conn: &mut Conn, head: &[u8]) -> Result<(Reply, bool), Failed> {
    let stale = |error: io::Error| Failed {
        error: error.into(),
        stale: true,
    };
    if !conn.buf.is_empty() {
        // Bytes nobody asked for: the connection is out of step.
        return Err(Failed {
            error: TransportError::Protocol("unsolicited data on an idle connection"),
            stale: true,
        });
    }
    conn.io.write_all(head).await.map_err(stale)?;
    conn.io.flush().await.map_err(stale)?;
    let fail = |error: TransportError| Failed {
        error,
        stale: false,
    };
    let head = loop {
        match read_head(conn).await {
            Ok(Some(h)) if (100..200).contains(&h.status) => continue,
            Ok(Some(h)) => break h,
            Ok(None) => {
                return Err(Failed {
                    error: io::Error::from(io::ErrorKind::UnexpectedEof).into(),
                    stale: true,
                });
            }
            // Before any byte of an answer: the server may have closed the idle connection.
            Err(TransportError::Io(e)) if conn.buf.is_empty() => return Err(stale(e)),
            Err(e) => return Err(fail(e)),
        }
    };
    let body = if head.status == 204 || head.status == 304 {
        Bytes::new()
    } else if head.chunked {
        read_chunked(conn).await.map_err(fail)?
    } else if let Some(len) = head.content_length {
        read_exact_body(conn, len).await.map_err(fail)?
    } else {
        read_to_close(conn).await.map_err(fail)?
    };
    let framed = head.chunked || head.content_length.is_some();
    let reusable = head.keep_alive && framed && conn.buf.is_empty();
    Ok((
        Reply {
            status: head.status,
            retry_after: head.retry_after,
            body,
        },
        reusable,
    ))
}

struct Head {
    status: u16,
    content_length: Option<usize>,
    chunked: bool,
    keep_alive: bool,
    retry_after: Option<Duration>,
}

/// Reads until a whole status line and headers are buffered and consumes them. `None`: the
/// connection closed before any byte of an answer.
async fn read_head(conn: &mut Conn) -> Result<Option<Head>, TransportError> {
    loop {
        if !conn.buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&conn.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let head = parse_head(&response)?;
                    conn.buf.advance(len);
                    return Ok(Some(head));
                }
                Ok(httparse::Status::Partial) if conn.buf.len() > MAX_HEAD => {
                    return Err(TransportError::Protocol("response headers too large"));
                }
                Ok(httparse::Status::Partial) => {}
                Err(_) => return Err(TransportError::Protocol("invalid status line or header")),
            }
        }
        if fill(conn).await? == 0 {
            return if conn.buf.is_empty() {
                Ok(None)
            } else {
                Err(TransportError::Protocol("connection closed mid-headers"))
            };
        }
    }
}

fn parse_head(response: &httparse::Response<'_, '_>) -> Result<Head, TransportError> {
    let status = response
        .code
        .ok_or(TransportError::Protocol("no status code"))?;
    let mut head = Head {
        status,
        content_length: None,
        chunked: false,
        keep_alive: response.version == Some(1),
        retry_after: None,
    };
    for h in response.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let len = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or(TransportError::Protocol("invalid Content-Length"))?;
            if head.content_length.is_some_and(|l| l != len) {
                return Err(TransportError::Protocol("conflicting Content-Length"));
            }
            head.content_length = Some(len);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked must be the final coding; anything else is not something we asked for.
            let last = h.value.rsplit(|b| *b == b',').next().unwrap_or_default();
            if !last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(TransportError::Protocol("unsupported Transfer-Encoding"));
            }
            head.chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    head.keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && response.version == Some(0) {
                    head.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("retry-after") {
            head.retry_after = retry_after(h.value);
        }
    }
    if head.chunked {
        // RFC 9112 6.3: Transfer-Encoding overrides Content-Length, and such a message must
        // not be reused.
        if head.content_length.take().is_some() {
            head.keep_alive = false;
        }
    }
    if head.content_length.is_some_and(|l| l > MAX_BODY) {
        return Err(TransportError::TooLarge);
    }
    Ok(head)
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

/// Reads more into the buffer; 0 at end of stream.
async fn fill(conn: &mut Conn) -> Result<usize, TransportError> {
    conn.buf.reserve(4096);
    Ok(conn.io.read_buf(&mut conn.buf).await?)
}

async fn read_exact_body(conn: &mut Conn, len: usize) -> Result<Bytes, TransportError> {
    while conn.buf.len() < len {
        if fill(conn).await? == 0 {
            return Err(TransportError::Protocol("connection closed mid-body"));
        }
    }
    Ok(conn.buf.split_to(len).freeze())
}

async fn read_to_close(conn: &mut Conn) -> Result<Bytes, TransportError> {
    while fill(conn).await? != 0 {
        if conn.buf.len() > MAX_BODY {
            return Err(TransportError::TooLarge);
        }
    }
    Ok(conn.buf.split().freeze())
}

/// Decodes a chunked body (RFC 9112 7.1), discarding extensions and trailers.
async fn read_chunked(conn: &mut Conn) -> Result<Bytes, TransportError> {
    let mut body = BytesMut::new();
    loop {
        let line = read_line(conn).await?;
        let size = line.split(|b| *b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size.trim_ascii())
            .ok()
            .filter(|s| !s.is_empty())
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or(TransportError::Protocol("invalid chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(conn).await?.is_empty() {}
            return Ok(body.freeze());
        }
        if size > MAX_BODY - body.len() {
            return Err(TransportError::TooLarge);
        }
        while conn.buf.len() < size + 2 {
            if fill(conn).await? == 0 {
                return Err(TransportError::Protocol("connection closed mid-chunk"));
            }
        }
        body.extend_from_slice(&conn.buf[..size]);
        if &conn.buf[size..size + 2] != b"\r\n" {
            return Err(TransportError::Protocol("chunk not followed by CRLF"));
        }
        conn.buf.advance(size + 2);
    }
}

/// One CRLF-terminated line, without the CRLF.
async fn read_line(conn: &mut Conn) -> Result<Bytes, TransportError> {
    loop {
        if let Some(end) = conn.buf.windows(2).position(|w| w == b"\r\n") {
            let line = conn.buf.split_to(end).freeze();
            conn.buf.advance(2);
            return Ok(line);
        }
        if conn.buf.len() > MAX_HEAD {
            return Err(TransportError::Protocol("chunk header line too long"));
        }
        if fill(conn).await? == 0 {
            return Err(TransportError::Protocol("connection closed mid-chunk"));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use tokio::net::TcpListener;

    use super::*;

    /// What the scripted server does with the next request it reads.
    enum Step {
        /// Write these bytes and keep the connection.
        Answer(&'static [u8]),
        /// Write these bytes and close.
        AnswerAndClose(&'static [u8]),
        /// Close without answering.
        Close,
        /// Never answer.
        Hang,
    }

    const OK: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\":\"one\"}";

    /// A server answering from `script`; records each request head with its connection's
    /// number.
    struct Scripted {
        url: Url,
        requests: Arc<Mutex<Vec<(usize, String)>>>,
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
        let seen = requests.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((mut stream, _)) = listener.accept().await {
                n += 1;
                let (seen, script) = (seen.clone(), script.clone());
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
                        seen.lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push((n, String::from_utf8_lossy(&head).into_owned()));
                        let step = script
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .pop_front();
                        match step {
                            Some(Step::Answer(bytes)) => {
                                let _ = stream.write_all(bytes).await;
                            }
                            Some(Step::AnswerAndClose(bytes)) => {
                                let _ = stream.write_all(bytes).await;
                                return;
                            }
                            Some(Step::Close) | None => return,
                            Some(Step::Hang) => std::future::pending::<()>().await,
                        }
                    }
                });
            }
        });
        Scripted { url, requests }
    }

    impl Scripted {
        fn requests(&self) -> Vec<(usize, String)> {
            self.requests
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        }

        fn transport(&self) -> Transport {
            transport(&self.url, |_| None)
        }
    }

    fn settings(base_url: &Url) -> GraphSettings {
        GraphSettings {
            base_url: base_url.clone(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
        }
    }

    fn transport(base_url: &Url, env: impl Fn(&str) -> Option<String>) -> Transport {
        Transport::new(&settings(base_url), env).expect("transport")
    }

    fn bearer() -> HeaderValue {
        HeaderValue::from_static("Bearer t0k.en")
    }

    async fn get(t: &Transport, url: &Url) -> Result<Reply, TransportError> {
        t.get(
            &url.join("/v1.0/me").expect("url"),
            &bearer(),
            &HeaderMap::new(),
        )
        .await
    }

    #[tokio::test]
    async fn sends_the_request_head_and_reuses_the_connection() {
        let server = scripted(vec![Step::Answer(OK), Step::Answer(OK)]).await;
        let t = server.transport();
        let mut extra = HeaderMap::new();
        extra.insert("traceparent", HeaderValue::from_static("00-ab-cd-01"));
        let url = server.url.join("/v1.0/users?$top=1").expect("url");
        let reply = t.get(&url, &bearer(), &extra).await.expect("answer");
        assert_eq!(reply.status, 200);
        assert_eq!(&reply.body[..], br#"{"a":"one"}"#);
        let reply = get(&t, &server.url).await.expect("second answer");
        assert_eq!(&reply.body[..], br#"{"a":"one"}"#);

        let requests = server.requests();
        let host = server.url.host_str().expect("host");
        let port = server.url.port().expect("port");
        assert_eq!(
            requests[0],
            (
                1,
                format!(
                    "GET /v1.0/users?$top=1 HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: {USER_AGENT}\r\nAccept: application/json\r\nAuthorization: Bearer t0k.en\r\ntraceparent: 00-ab-cd-01\r\n\r\n"
                )
            )
        );
        assert_eq!(requests[1].0, 1, "the keep-alive connection is reused");
    }

    #[tokio::test]
    async fn decodes_chunked_bodies_and_skips_interim_answers() {
        let server = scripted(vec![
            Step::Answer(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n7\r\n:\"two\"}\r\n0\r\nX-Trailer: t\r\n\r\n",
            ),
            Step::Answer(OK),
        ])
        .await;
        let t = server.transport();
        let reply = get(&t, &server.url).await.expect("answer");
        assert_eq!(&reply.body[..], br#"{"a":"two"}"#);
        get(&t, &server.url).await.expect("second answer");
        assert_eq!(server.requests()[1].0, 1, "reused after a chunked body");
    }

    #[tokio::test]
    async fn reads_status_and_retry_after() {
        let server = scripted(vec![Step::Answer(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 2\r\n\r\n{}",
        )])
        .await;
        let reply = get(&server.transport(), &server.url).await.expect("answer");
        assert_eq!(reply.status, 429);
        assert_eq!(reply.retry_after, Some(Duration::from_secs(7)));
    }

    #[tokio::test]
    async fn does_not_reuse_a_connection_the_server_closes_or_leaves_unframed() {
        let server = scripted(vec![
            Step::Answer(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"),
            Step::AnswerAndClose(b"HTTP/1.1 200 OK\r\n\r\n{\"to\":\"eof\"}"),
            Step::Answer(OK),
        ])
        .await;
        let t = server.transport();
        get(&t, &server.url).await.expect("first");
        let reply = get(&t, &server.url).await.expect("second");
        assert_eq!(&reply.body[..], br#"{"to":"eof"}"#, "body read to the end");
        get(&t, &server.url).await.expect("third");
        let conns: Vec<usize> = server.requests().iter().map(|(n, _)| *n).collect();
        assert_eq!(conns, [1, 2, 3]);
    }

    #[tokio::test]
    async fn retries_once_on_a_fresh_connection_when_an_idle_one_was_closed() {
        // The server answers, then drops the connection while it sits in the pool.
        let server = scripted(vec![Step::AnswerAndClose(OK), Step::Answer(OK)]).await;
        let t = server.transport();
        get(&t, &server.url).await.expect("first");
        let reply = get(&t, &server.url)
            .await
            .expect("second, on a new connection");
        assert_eq!(reply.status, 200);
        let conns: Vec<usize> = server.requests().iter().map(|(n, _)| *n).collect();
        assert_eq!(conns, [1, 2]);
    }

    #[tokio::test]
    async fn a_new_connection_closed_without_an_answer_is_an_error_not_a_retry() {
        let server = scripted(vec![Step::Close, Step::Answer(OK)]).await;
        let err = get(&server.transport(), &server.url)
            .await
            .expect_err("no answer");
        assert!(matches!(err, TransportError::Io(_)), "{err:?}");
        assert_eq!(
            server.requests().len(),
            1,
            "a GET on a fresh connection is not resent"
        );
    }

    #[tokio::test]
    async fn refuses_malformed_and_oversized_answers() {
        for (answer, malformed) in [
            (&b"HTTP/1.1 2OO OK\r\n\r\n"[..], true),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n", true),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
                true,
            ),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", true),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                true,
            ),
            // A chunk size near usize::MAX must not overflow the length check.
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\nffffffffffffffff\r\n",
                true,
            ),
        ] {
            let server = scripted(vec![Step::Answer(answer)]).await;
            let err = get(&server.transport(), &server.url)
                .await
                .expect_err("refused");
            assert_eq!(err.is_malformed(), malformed, "{err:?} for {answer:?}");
        }
    }

    #[tokio::test]
    async fn gives_up_after_the_timeout() {
        let server = scripted(vec![Step::Hang]).await;
        let mut s = settings(&server.url);
        s.timeout = Duration::from_millis(100);
        let t = Transport::new(&s, |_| None).expect("transport");
        let err = get(&t, &server.url).await.expect_err("timeout");
        assert!(err.is_timeout(), "{err:?}");
    }

    #[tokio::test]
    async fn unreachable_is_a_connect_error() {
        // A port nothing listens on: bind, note it, close.
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind")
            .local_addr()
            .expect("address")
            .port();
        let url = Url::parse(&format!("http://127.0.0.1:{port}")).expect("url");
        let err = get(&transport(&url, |_| None), &url)
            .await
            .expect_err("refused");
        assert!(matches!(err, TransportError::Connect(_)), "{err:?}");
        assert!(!err.is_timeout() && !err.is_malformed());
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
        let handshake = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            acceptor.accept(stream).await.map(|_| ())
        });
        let url = Url::parse(&format!("https://localhost:{port}")).expect("url");
        let err = get(&transport(&url, |_| None), &url)
            .await
            .expect_err("an untrusted certificate");
        assert!(matches!(err, TransportError::Connect(_)), "{err:?}");
        assert!(err.to_string().contains("certificate"), "{err}");
        assert!(
            handshake.await.expect("server task").is_err(),
            "the client aborted the handshake"
        );
    }

    #[test]
    fn a_proxy_in_the_environment_selects_reqwest() {
        let https = Url::parse("https://graph.microsoft.com").expect("url");
        let http = Url::parse("http://graph.test").expect("url");
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert!(transport(&https, env(&[])).is_direct());
        assert!(transport(&https, env(&[("HTTPS_PROXY", " ")])).is_direct());
        assert!(transport(&https, env(&[("HTTP_PROXY", "http://p:3128")])).is_direct());
        assert!(!transport(&https, env(&[("HTTPS_PROXY", "http://p:3128")])).is_direct());
        assert!(!transport(&https, env(&[("https_proxy", "http://p:3128")])).is_direct());
        assert!(!transport(&https, env(&[("ALL_PROXY", "http://p:3128")])).is_direct());
        assert!(!transport(&http, env(&[("http_proxy", "http://p:3128")])).is_direct());
        assert!(transport(&http, env(&[("HTTPS_PROXY", "http://p:3128")])).is_direct());
    }

    #[tokio::test]
    async fn requests_go_through_the_proxy_the_environment_names() {
        let proxy = scripted(vec![Step::Answer(OK)]).await;
        let graph = Url::parse("http://graph.invalid").expect("url");
        let proxy_url = proxy.url.to_string();
        let t = transport(&graph, move |name| {
            (name == "HTTP_PROXY").then(|| proxy_url.clone())
        });
        let reply = get(&t, &graph).await.expect("answer through the proxy");
        assert_eq!(&reply.body[..], br#"{"a":"one"}"#);
        let head = &proxy.requests()[0].1;
        assert!(
            head.starts_with("GET http://graph.invalid/v1.0/me HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(head.contains("authorization: Bearer t0k.en\r\n"), "{head}");
    }
}
