//! The client against scripted local servers: framing, keep-alive, limits, timeouts,
//! redirects, TLS refusal.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

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
        scopes: ScopeMode::PerTool,
    }
}

fn client(settings: &GraphSettings) -> GraphClient {
    GraphClient::new(settings, Arc::new(Tokens::default())).expect("graph client")
}

/// The profile fields these tests read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Me {
    display_name: Option<String>,
}

async fn me(graph: &GraphClient) -> Result<Me, Error> {
    let endpoint = graph
        .endpoint("/v1.0/me", &["User.Read"])
        .expect("endpoint");
    graph
        .get(&Caller::local_developer(), &endpoint, &[], &[])
        .await
}

#[test]
fn a_tool_token_asks_for_its_own_permissions_sorted_and_once() {
    let base = Url::parse("https://graph.microsoft.us/").expect("url");
    assert_eq!(
        scopes_for(
            &base,
            ScopeMode::PerTool,
            &["User.Read", "Calendars.Read", "User.Read"]
        ),
        [
            "https://graph.microsoft.us/Calendars.Read",
            "https://graph.microsoft.us/User.Read"
        ]
    );
    assert_eq!(
        scopes_for(&base, ScopeMode::Default, &["Calendars.Read"]),
        ["https://graph.microsoft.us/.default"]
    );
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
