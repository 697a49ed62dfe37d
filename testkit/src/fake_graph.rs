//! A fake Microsoft Graph: `/v1.0/me` answers per bearer token, rejects unknown tokens the
//! way Graph does (401 `InvalidAuthenticationToken`), can be scripted to fail, and answers
//! tokens revoked by continuous access evaluation with Graph's claims challenge.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// What the next `/v1.0/me` request gets instead of the normal answer.
#[derive(Clone)]
pub enum Scripted {
    /// This status, an optional `Retry-After`, and a Graph error body with `code`.
    Status(u16, Option<u64>, &'static str),
    /// 200 with a body that is not JSON.
    Malformed,
    /// Never answer (the client's timeout must fire).
    Hang,
    /// Signal `entered`, then answer normally once `release` is notified.
    Hold {
        entered: Arc<Notify>,
        release: Arc<Notify>,
    },
}

/// Verifying mode: tokens must be JWTs signed by the issuer's keys for `audience`.
struct Verifier {
    keys: Arc<Mutex<Vec<Value>>>,
    audience: String,
    /// The MCP server's own audience: a token for it here means passthrough.
    inbound_audiences: Vec<String>,
    /// Tokens already verified (as Graph caches validated tokens), so a load run measures
    /// the MCP server rather than this fake's RSA checks: signature → (the whole token,
    /// signing kid, exp, the serialized profile). A hit is honoured only for the identical
    /// token, while it is unexpired and its key is still published. (Keyed by the signature,
    /// a quarter of the token, to hash less per request.)
    verified: Mutex<HashMap<String, Verified>>,
}

struct Verified {
    token: String,
    kid: String,
    exp: i64,
    body: axum::body::Bytes,
}

impl Verifier {
    /// The profile body for a valid downstream token, `None` for anything else; records a
    /// passthrough of the caller's own token.
    fn profile(&self, token: &str, state: &GraphState) -> Option<axum::body::Bytes> {
        {
            let memo = lock(&self.verified);
            if let Some(v) = memo.get(signature(token))
                && v.token == token
            {
                let key_published = lock(&self.keys).iter().any(|k| k["kid"] == v.kid.as_str());
                if v.exp > super::tokens::now() && key_published {
                    return Some(v.body.clone());
                }
            }
        }
        let keys = lock(&self.keys).clone();
        let Some(claims) =
            super::tokens::verify(token, &keys, std::slice::from_ref(&self.audience))
        else {
            if super::tokens::verify(token, &keys, &self.inbound_audiences).is_some() {
                state
                    .passthrough_seen
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
            return None;
        };
        let body = axum::body::Bytes::from(
            serde_json::to_vec(&json!({
                "id": claims["oid"],
                "displayName": claims["name"],
                "mail": claims["preferred_username"],
                "userPrincipalName": claims["preferred_username"],
            }))
            .ok()?,
        );
        let kid = jsonwebtoken::decode_header(token).ok()?.kid?;
        let exp = claims["exp"].as_i64()?;
        lock(&self.verified).insert(
            signature(token).to_owned(),
            Verified {
                token: token.to_owned(),
                kid,
                exp,
                body: body.clone(),
            },
        );
        Some(body)
    }
}

/// A compact JWS's last segment.
fn signature(token: &str) -> &str {
    token.rsplit('.').next().unwrap_or(token)
}

#[derive(Default)]
struct GraphState {
    profiles: Mutex<HashMap<String, Value>>,
    script: Mutex<VecDeque<Scripted>>,
    seen_tokens: Mutex<Vec<String>>,
    /// Off for load runs, where the list would grow by a token per request.
    not_recording: std::sync::atomic::AtomicBool,
    verifier: Mutex<Option<Arc<Verifier>>>,
    passthrough_seen: std::sync::atomic::AtomicBool,
    /// Continuous access evaluation: revoked token → the `WWW-Authenticate` value it gets.
    revoked: Mutex<HashMap<String, String>>,
}

/// The running fake; the server stops when the test's runtime ends.
#[derive(Clone)]
pub struct FakeGraph {
    pub url: String,
    state: Arc<GraphState>,
}

impl FakeGraph {
    pub async fn start() -> Self {
        let state = Arc::new(GraphState::default());
        let app = axum::Router::new()
            .route("/v1.0/me", get(me))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake graph");
        let addr = listener.local_addr().expect("fake graph address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}"),
            state,
        }
    }

    /// The same `/v1.0/me` answers (verifying mode or known users; no scripting, no token
    /// recording) from a bare HTTP/1.1 keep-alive loop instead of axum: a load run charges
    /// the fake's CPU to the cores the server under test shares, and axum's routing and body
    /// plumbing were most of it.
    pub async fn start_minimal() -> Self {
        let state = Arc::new(GraphState::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake graph");
        let addr = listener.local_addr().expect("fake graph address");
        let serving = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_minimal(stream, serving.clone()));
            }
        });
        Self {
            url: format!("http://{addr}"),
            state,
        }
    }

    /// A fake Graph that knows one user, Ada Lovelace, by `token`.
    pub async fn with_ada(token: &str) -> Self {
        let graph = Self::start().await;
        graph.add_user(
            token,
            "Ada Lovelace",
            Some("ada@contoso.com"),
            "ada@contoso.onmicrosoft.com",
        );
        graph
    }

    /// Answer `/me` for requests bearing `token` with this user's profile.
    pub fn add_user(&self, token: &str, display_name: &str, mail: Option<&str>, upn: &str) {
        let profile = json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
            "id": format!("id-{upn}"),
            "displayName": display_name,
            "mail": mail,
            "userPrincipalName": upn,
        });
        lock(&self.state.profiles).insert(token.to_owned(), profile);
    }

    pub fn script(&self, step: Scripted) {
        lock(&self.state.script).push_back(step);
    }

    /// From now on, accept only JWTs signed by `keys` with `aud = audience`, answering with
    /// the profile the token names; a token for `inbound_audiences` is recorded as passthrough.
    pub fn verify_tokens(
        &self,
        keys: Arc<Mutex<Vec<Value>>>,
        audience: &str,
        inbound_audiences: &[&str],
    ) {
        *lock(&self.state.verifier) = Some(Arc::new(Verifier {
            keys,
            audience: audience.to_owned(),
            inbound_audiences: inbound_audiences.iter().map(|a| (*a).to_owned()).collect(),
            verified: Mutex::new(HashMap::new()),
        }));
    }

    /// Revokes `token` as continuous access evaluation does: from now on a request bearing it
    /// gets 401 with `WWW-Authenticate: Bearer ..., error="insufficient_claims",
    /// claims="<base64 of claims>"`, as Graph answers after a critical event.
    pub fn revoke(&self, token: &str, claims: &Value) {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(claims.to_string());
        self.revoke_with_challenge(
            token,
            &format!(
                r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000", error="insufficient_claims", claims="{encoded}""#
            ),
        );
    }

    /// Revokes `token` with this exact `WWW-Authenticate` value (a malformed challenge).
    pub fn revoke_with_challenge(&self, token: &str, www_authenticate: &str) {
        lock(&self.state.revoked).insert(token.to_owned(), www_authenticate.to_owned());
    }

    /// Whether the MCP server ever sent Graph the caller's own (inbound) token.
    pub fn passthrough_seen(&self) -> bool {
        self.state
            .passthrough_seen
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stop keeping `seen_tokens` (a load run would grow it by a token per request).
    pub fn stop_recording(&self) {
        self.state
            .not_recording
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Every bearer token presented, in order.
    pub fn seen_tokens(&self) -> Vec<String> {
        lock(&self.state.seen_tokens).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn graph_error(status: StatusCode, code: &str, retry_after: Option<u64>) -> Response {
    let body = json!({"error": {"code": code, "message": format!("fake graph: {code}")}});
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(
            "retry-after",
            seconds.to_string().parse().expect("numeric header value"),
        );
    }
    response
}

/// Graph's answer to a token continuous access evaluation revoked.
fn revoked(www_authenticate: &str) -> Response {
    let mut response = graph_error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", None);
    if let Ok(value) = www_authenticate.parse() {
        response.headers_mut().insert("www-authenticate", value);
    }
    response
}

async fn me(State(state): State<Arc<GraphState>>, headers: HeaderMap) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    if let Some(t) = &token
        && !state
            .not_recording
            .load(std::sync::atomic::Ordering::Relaxed)
    {
        lock(&state.seen_tokens).push(t.clone());
    }
    let step = lock(&state.script).pop_front();
    match step {
        Some(Scripted::Status(status, retry_after, code)) => {
            let status = StatusCode::from_u16(status).expect("valid scripted status");
            return graph_error(status, code, retry_after);
        }
        Some(Scripted::Malformed) => {
            return (StatusCode::OK, "<html>not json</html>").into_response();
        }
        Some(Scripted::Hang) => std::future::pending::<()>().await,
        Some(Scripted::Hold { entered, release }) => {
            entered.notify_one();
            release.notified().await;
        }
        None => {}
    }
    if let Some(challenge) = token
        .as_deref()
        .and_then(|t| lock(&state.revoked).get(t).cloned())
    {
        return revoked(&challenge);
    }
    match profile(&state, token.as_deref()) {
        Some(body) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        None => graph_error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", None),
    }
}

/// `/v1.0/me`'s profile body for `token` (verifying mode, else the known users); `None` is
/// Graph's 401 `InvalidAuthenticationToken`.
fn profile(state: &GraphState, token: Option<&str>) -> Option<axum::body::Bytes> {
    let token = token?;
    let verifier = lock(&state.verifier).clone();
    if let Some(v) = verifier {
        return v.profile(token, state);
    }
    let profile = lock(&state.profiles).get(token)?.clone();
    serde_json::to_vec(&profile).ok().map(Into::into)
}

/// One connection of [`FakeGraph::start_minimal`]: HTTP/1.1 keep-alive, `GET /v1.0/me` only.
async fn serve_minimal(mut stream: tokio::net::TcpStream, state: Arc<GraphState>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(4096);
    let mut out = Vec::with_capacity(1024);
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        let parsed = match request.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => Some(n),
            Ok(httparse::Status::Partial) => None,
            Err(_) => {
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                return;
            }
        };
        let Some(n) = parsed else {
            if matches!(stream.read_buf(&mut buf).await, Ok(0) | Err(_)) {
                return;
            }
            continue;
        };
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .and_then(|h| std::str::from_utf8(h.value).ok())
        };
        let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        // Graph's GETs carry no body; one here means the client is out of step.
        let has_body = header("content-length").is_some_and(|v| v.trim() != "0")
            || header("transfer-encoding").is_some();
        let (status, body) = if has_body {
            ("400 Bad Request", axum::body::Bytes::new())
        } else if request.method != Some("GET") || request.path != Some("/v1.0/me") {
            ("404 Not Found", axum::body::Bytes::new())
        } else {
            let token = header("authorization").and_then(|v| v.strip_prefix("Bearer "));
            match profile(&state, token) {
                Some(body) => ("200 OK", body),
                None => (
                    "401 Unauthorized",
                    axum::body::Bytes::from_static(
                        br#"{"error":{"code":"InvalidAuthenticationToken","message":"fake graph: InvalidAuthenticationToken"}}"#,
                    ),
                ),
            }
        };
        buf.drain(..n);
        out.clear();
        out.extend_from_slice(
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&body);
        if stream.write_all(&out).await.is_err() || close || has_body {
            return;
        }
    }
}
