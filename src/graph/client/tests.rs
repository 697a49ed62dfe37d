//! The client against scripted local servers. Here the scripted server, the fakes and the
//! token scopes; beside it:
//! - `connection.rs`: framing, keep-alive, redirects, unreachable servers, TLS refusal;
//! - `limits.rs`: the answer's size cap and the timeouts.

mod connection;
mod limits;

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
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

/// The scripted server's state, shared by its connections.
#[derive(Clone)]
struct Script {
    steps: Arc<Mutex<VecDeque<Step>>>,
    requests: Arc<Mutex<Vec<(usize, String)>>>,
    close_now: Arc<Notify>,
    closed: Arc<Notify>,
}

async fn scripted(script: Vec<Step>) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = Url::parse(&format!(
        "http://{}",
        listener.local_addr().expect("address")
    ))
    .expect("url");
    let shared = Script {
        steps: Arc::new(Mutex::new(VecDeque::from(script))),
        requests: Arc::new(Mutex::new(Vec::new())),
        close_now: Arc::new(Notify::new()),
        closed: Arc::new(Notify::new()),
    };
    let served = shared.clone();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((stream, _)) = listener.accept().await {
            n += 1;
            tokio::spawn(serve_connection(stream, n, served.clone()));
        }
    });
    Scripted {
        url,
        requests: shared.requests,
        close_now: shared.close_now,
        closed: shared.closed,
    }
}

/// Connection `n`: each request head read is recorded, then answered by the next step.
async fn serve_connection(mut stream: TcpStream, n: usize, script: Script) {
    let mut buf = Vec::new();
    loop {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            if matches!(stream.read_buf(&mut buf).await, Ok(0) | Err(_)) {
                return;
            }
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
        let head: Vec<u8> = buf.drain(..end).collect();
        lock(&script.requests).push((n, String::from_utf8_lossy(&head).into_owned()));
        let step = lock(&script.steps).pop_front();
        match step {
            Some(Step::Answer(bytes)) => {
                let _ = stream.write_all(&bytes).await;
            }
            Some(Step::AnswerThenCloseWhenTold(bytes)) => {
                let _ = stream.write_all(&bytes).await;
                script.close_now.notified().await;
                drop(stream);
                script.closed.notify_one();
                return;
            }
            Some(Step::Close) | None => return,
            Some(Step::AnswerAndHang(bytes)) => {
                let _ = stream.write_all(&bytes).await;
                std::future::pending::<()>().await;
            }
        }
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
