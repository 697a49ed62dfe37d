//! The MCP boundary is the route scope, whatever the path's spelling: a property test sends
//! thousands of generated aliases of every MCP path (percent-encodings in upper and lower
//! hex, case changes, trailing and doubled slashes, `.` and `..` segments, encoded slashes)
//! with and without a valid token, with the public or a foreign `Host` / `Origin`, and
//! checks that
//! - a request without a valid token never gets a 2xx;
//! - a foreign `Host` or `Origin` never gets past 403/404;
//! - a challenge always names the metadata of the path as mounted, not the alias.
//!
//! Requests go out through hyper's HTTP/1.1 connection, which sends the request target
//! exactly as written (a URL-parsing client would resolve the dot segments itself).

use std::sync::Arc;

use crate::support::mcp_http::initialize;
use crate::support::tokens::{TestIssuer, now};
use crate::support::{StaticTokens, TestApp, entra_env, spawn_app_owned, wait_ready};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;

const MCP_PATHS: [&str; 2] = ["/mcp", "/runtime/webhooks/mcp"];
const PUBLIC_HOST: &str = "mcp.example.com";
const METADATA: &str = "https://mcp.example.com/.well-known/oauth-protected-resource";

/// How many generated requests each server gets; `PROPTEST_CASES` overrides.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One generated spelling of an MCP path.
fn alias() -> impl Strategy<Value = String> {
    (
        prop::sample::select(MCP_PATHS.to_vec()),
        prop::collection::vec(0u8..8, 24),
        prop::collection::vec((0u8..8, any::<u8>()), 0..3),
    )
        .prop_map(|(path, spelling, mutations)| {
            let mut out = String::new();
            // The leading `/` stays: a request target in origin form starts with one.
            out.push('/');
            for (i, c) in path.chars().enumerate().skip(1) {
                match spelling[i % spelling.len()] {
                    0 => out.push_str(&format!("%{:02X}", c as u32)),
                    1 => out.push_str(&format!("%{:02x}", c as u32)),
                    2 if c.is_ascii_alphabetic() => out.push(c.to_ascii_uppercase()),
                    _ => out.push(c),
                }
            }
            for (kind, at) in mutations {
                mutate(&mut out, kind, at);
            }
            out
        })
}

/// A structural change at the `at`-th slash (wrapping).
fn mutate(path: &mut String, kind: u8, at: u8) {
    let slashes: Vec<usize> = path.match_indices('/').map(|(i, _)| i).collect();
    let slash = slashes
        .get(usize::from(at) % slashes.len().max(1))
        .copied()
        .unwrap_or(0);
    match kind {
        0 => path.push('/'),
        1 => path.push_str("//"),
        2 => path.insert(slash, '/'),
        3 => path.insert_str(slash, "/."),
        4 => path.insert_str(slash, "/x/.."),
        5 => path.push_str(if at.is_multiple_of(2) { "/." } else { "/.." }),
        6 => path.push_str(if at.is_multiple_of(2) { "%2F" } else { "%2f" }),
        _ if slash > 0 => {
            path.replace_range(
                slash..=slash,
                if at.is_multiple_of(2) { "%2F" } else { "%2f" },
            );
        }
        _ => path.push_str("/%2F"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    None,
    Invalid,
    Valid,
}

#[derive(Debug, Clone)]
struct Case {
    path: String,
    token: Token,
    foreign_host: bool,
    /// `None`: no Origin header; `Some(true)`: a foreign origin.
    origin: Option<bool>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        alias(),
        prop_oneof![Just(Token::None), Just(Token::Invalid), Just(Token::Valid)],
        any::<bool>(),
        prop_oneof![Just(None), Just(Some(false)), Just(Some(true))],
    )
        .prop_map(|(path, token, foreign_host, origin)| Case {
            path,
            token,
            foreign_host,
            origin,
        })
}

/// One keep-alive HTTP/1.1 connection, reopened when the server closes it.
struct Connection {
    addr: std::net::SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

struct Answer {
    status: u16,
    challenge: Option<String>,
    body: String,
}

impl Connection {
    async fn open(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        let usable = match self.sender.as_mut() {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            let stream = tokio::net::TcpStream::connect(self.addr)
                .await
                .map_err(|e| e.to_string())?;
            let (sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| "no connection".to_owned())
    }

    async fn send(&mut self, case: &Case, valid: &str) -> Result<Answer, String> {
        let mut request = hyper::Request::post(case.path.as_str())
            .header(
                "host",
                if case.foreign_host {
                    "evil.example"
                } else {
                    PUBLIC_HOST
                },
            )
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        match case.origin {
            Some(true) => request = request.header("origin", "https://evil.example"),
            Some(false) => request = request.header("origin", "https://mcp.example.com"),
            None => {}
        }
        match case.token {
            Token::Valid => request = request.header("authorization", format!("Bearer {valid}")),
            Token::Invalid => {
                // The valid token with its signature's last characters changed.
                let forged = format!("{}AAAA", &valid[..valid.len() - 4]);
                request = request.header("authorization", format!("Bearer {forged}"));
            }
            Token::None => {}
        }
        let body = serde_json::to_vec(&initialize("2025-06-18")).map_err(|e| e.to_string())?;
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let response = self
            .open()
            .await?
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Answer {
            status,
            challenge,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// What the run saw, so a run that never reached MCP through an alias fails too.
#[derive(Default)]
struct Seen {
    alias_served_with_token: usize,
    alias_challenged_without_token: usize,
}

fn check(case: &Case, answer: &Answer, seen: &mut Seen) -> Result<(), TestCaseError> {
    let context = format!("{case:?} → {} {}", answer.status, answer.body);
    let foreign = case.foreign_host || case.origin == Some(true);
    if foreign {
        prop_assert!(
            answer.status == 403 || answer.status == 404,
            "a foreign Host/Origin got past the guard: {context}"
        );
    }
    if case.token != Token::Valid {
        prop_assert!(
            !(200..300).contains(&answer.status),
            "served without a valid token: {context}"
        );
    }
    if let Some(challenge) = &answer.challenge {
        let named = MCP_PATHS
            .iter()
            .any(|p| challenge.contains(&format!("resource_metadata=\"{METADATA}{p}\"")));
        prop_assert!(
            named,
            "challenge does not name a mounted path's metadata: {challenge} for {context}"
        );
    }
    let alias = !MCP_PATHS.contains(&case.path.as_str());
    if alias && answer.status == 200 {
        prop_assert!(
            answer.body.contains("\"serverInfo\""),
            "200 that is not an initialize result: {context}"
        );
        seen.alias_served_with_token += 1;
    }
    if alias && answer.status == 401 && case.token == Token::None {
        seen.alias_challenged_without_token += 1;
    }
    Ok(())
}

fn run_property(extra: &[(&str, &str)], cases_default: u32) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let issuer = rt.block_on(TestIssuer::start());
    let mut env = entra_env(&issuer);
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let app: TestApp = spawn_app_owned(&env, StaticTokens::new("graph-token"));
    rt.block_on(wait_ready(&app));
    let valid = issuer.entra_token(json!({"exp": now() + 3600}));
    let connection = Arc::new(tokio::sync::Mutex::new(Connection {
        addr: app.addr,
        sender: None,
    }));
    let seen = std::cell::RefCell::new(Seen::default());
    let mut runner = TestRunner::new(Config {
        cases: cases(cases_default),
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&case(), |case| {
        let answer = rt
            .block_on(async { connection.lock().await.send(&case, &valid).await })
            .map_err(|e| TestCaseError::fail(format!("{case:?}: {e}")))?;
        check(&case, &answer, &mut seen.borrow_mut())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let seen = seen.into_inner();
    assert!(
        seen.alias_served_with_token > 0 && seen.alias_challenged_without_token > 0,
        "no generated alias reached MCP: served {}, challenged {}",
        seen.alias_served_with_token,
        seen.alias_challenged_without_token
    );
    drop(app);
}

#[test]
fn no_spelling_of_an_mcp_path_passes_without_a_valid_token_or_with_a_foreign_host() {
    run_property(&[], 8000);
}

#[test]
fn the_same_holds_with_sessions_on() {
    run_property(&[("MCP_OBO__SERVER__SESSIONS", "true")], 4000);
}

/// The aliases found by the attack that started this test, named: each answered 200 with
/// no token before the guard and the authorizer moved onto the route scopes.
#[tokio::test]
async fn the_reported_aliases_are_challenged() {
    let issuer = TestIssuer::start().await;
    let app = spawn_app_owned(&entra_env(&issuer), StaticTokens::new("graph-token"));
    wait_ready(&app).await;
    let mut connection = Connection {
        addr: app.addr,
        sender: None,
    };
    for path in ["/%6Dcp", "/%6dcp/", "/runtime/webhooks/%6dcp", "/%6D%63%70"] {
        for foreign_host in [false, true] {
            let case = Case {
                path: path.into(),
                token: Token::None,
                foreign_host,
                origin: None,
            };
            let answer = connection.send(&case, "unused").await.expect("answer");
            let expected = if foreign_host { 403 } else { 401 };
            assert_eq!(answer.status, expected, "{path}: {}", answer.body);
        }
    }
}

/// An absolute-form target names its own host, which RFC 9112 §3.2.2 says wins over
/// `Host`: a foreign one is refused before authorization even with an allowed `Host`, a
/// foreign `Host` is refused beside an allowed one, and an allowed pair is served as usual.
#[tokio::test]
async fn an_absolute_form_target_must_name_an_allowed_host_too() {
    let issuer = TestIssuer::start().await;
    let app = spawn_app_owned(&entra_env(&issuer), StaticTokens::new("graph-token"));
    wait_ready(&app).await;
    let valid = issuer.entra_token(json!({"exp": now() + 3600}));
    let mut connection = Connection {
        addr: app.addr,
        sender: None,
    };
    for (target, foreign_host, token, expected) in [
        ("http://evil.example/mcp", false, Token::Valid, 403),
        ("http://evil.example/mcp", false, Token::None, 403),
        (
            "https://evil.example:443/runtime/webhooks/mcp",
            false,
            Token::None,
            403,
        ),
        ("http://mcp.example.com/mcp", true, Token::None, 403),
        ("http://mcp.example.com/mcp", false, Token::None, 401),
        ("https://mcp.example.com/mcp", false, Token::Valid, 200),
    ] {
        let case = Case {
            path: target.into(),
            token,
            foreign_host,
            origin: None,
        };
        let answer = connection.send(&case, &valid).await.expect("answer");
        assert_eq!(answer.status, expected, "{case:?}: {}", answer.body);
    }
}
