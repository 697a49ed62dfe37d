//! A fake Microsoft Graph: `/v1.0/me` and `/v1.0/me/calendarView` answer per bearer token,
//! as Graph does: an unknown token gets 401 `InvalidAuthenticationToken`, a token whose `scp`
//! lacks the path's delegated permission 403 `ErrorAccessDenied`, a calendar view without
//! its time window 400, and a collection is paged with `$top`/`$skip` and an
//! `@odata.nextLink`. It can be scripted to fail, its next link pointed elsewhere, and a token
//! revoked by continuous access evaluation answered with Graph's claims challenge.

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

/// Each path served and the delegated permission Graph requires for it (its documented
/// least-privileged one).
const ROUTES: &[(&str, &str)] = &[
    ("/v1.0/me", "User.Read"),
    ("/v1.0/me/calendarView", "Calendars.Read"),
];

/// Who a token speaks for: the user's id (whose fixtures it reads), the permissions in its
/// `scp`, and the `/me` profile body.
#[derive(Clone)]
struct Identity {
    user_id: String,
    scopes: Vec<String>,
    me: axum::body::Bytes,
}

/// Verifying mode: tokens must be JWTs signed by the issuer's keys for `audience`.
struct Verifier {
    keys: Arc<Mutex<Vec<Value>>>,
    audience: String,
    /// The MCP server's own audience: a token for it here means passthrough.
    inbound_audiences: Vec<String>,
    /// Tokens already verified (as Graph caches validated tokens), so a load run measures
    /// the MCP server rather than this fake's RSA checks: signature → (the whole token,
    /// signing kid, exp, who it is). A hit is honoured only for the identical token, while
    /// it is unexpired and its key is still published. (Keyed by the signature, a quarter of
    /// the token, to hash less per request.)
    verified: Mutex<HashMap<String, Verified>>,
}

struct Verified {
    token: String,
    kid: String,
    exp: i64,
    identity: Identity,
}

impl Verifier {
    /// Who a valid downstream token is, `None` for anything else; records a passthrough of
    /// the caller's own token.
    fn identity(&self, token: &str, state: &GraphState) -> Option<Identity> {
        {
            let memo = lock(&self.verified);
            if let Some(v) = memo.get(signature(token))
                && v.token == token
            {
                let key_published = lock(&self.keys).iter().any(|k| k["kid"] == v.kid.as_str());
                if v.exp > super::tokens::now() && key_published {
                    return Some(v.identity.clone());
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
        let me = axum::body::Bytes::from(
            serde_json::to_vec(&json!({
                "id": claims["oid"],
                "displayName": claims["name"],
                "mail": claims["preferred_username"],
                "userPrincipalName": claims["preferred_username"],
            }))
            .ok()?,
        );
        let identity = Identity {
            // Entra tokens name the user by `oid`; other issuers' by `sub`.
            user_id: claims["oid"]
                .as_str()
                .or_else(|| claims["sub"].as_str())?
                .to_owned(),
            scopes: granted(&claims),
            me,
        };
        let kid = jsonwebtoken::decode_header(token).ok()?.kid?;
        let exp = claims["exp"].as_i64()?;
        lock(&self.verified).insert(
            signature(token).to_owned(),
            Verified {
                token: token.to_owned(),
                kid,
                exp,
                identity: identity.clone(),
            },
        );
        Some(identity)
    }
}

/// The permissions a downstream token holds: Entra's `scp`, or an RFC 9068 token's `scope`
/// (an issuer other than Entra), each by its short name; `.default` is every permission the
/// fake serves, as the app registration's configured permissions are for Entra.
fn granted(claims: &Value) -> Vec<String> {
    let listed = claims["scp"]
        .as_str()
        .or_else(|| claims["scope"].as_str())
        .unwrap_or_default();
    let mut scopes = Vec::new();
    for scope in listed.split(' ') {
        match scope.rsplit('/').next().unwrap_or(scope) {
            ".default" => scopes.extend(ROUTES.iter().map(|(_, p)| (*p).to_owned())),
            short => scopes.push(short.to_owned()),
        }
    }
    scopes
}

/// A compact JWS's last segment.
fn signature(token: &str) -> &str {
    token.rsplit('.').next().unwrap_or(token)
}

#[derive(Default)]
struct GraphState {
    /// Known users (non-verifying mode), by token.
    profiles: Mutex<HashMap<String, Identity>>,
    /// Calendar events by user id, in the order Graph would return them.
    events: Mutex<HashMap<String, Vec<Value>>>,
    /// When set, every `@odata.nextLink` points here instead of the next page.
    next_link: Mutex<Option<String>>,
    /// Graph's own page size limit, below a `$top` that asks for more (0: none).
    page_cap: std::sync::atomic::AtomicUsize,
    /// Requests per path (whatever their answer).
    requests: Mutex<HashMap<String, usize>>,
    script: Mutex<VecDeque<Scripted>>,
    seen_tokens: Mutex<Vec<String>>,
    /// Off for load runs, where the list would grow by a token per request.
    not_recording: std::sync::atomic::AtomicBool,
    verifier: Mutex<Option<Arc<Verifier>>>,
    passthrough_seen: std::sync::atomic::AtomicBool,
    /// `http://127.0.0.1:port`, where next links point.
    origin: std::sync::OnceLock<String>,
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
            .route("/v1.0/me", get(serve))
            .route("/v1.0/me/calendarView", get(serve))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake graph");
        let addr = listener.local_addr().expect("fake graph address");
        let _ = state.origin.set(format!("http://{addr}"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}"),
            state,
        }
    }

    /// The same answers (verifying mode or known users; no scripting, no token recording) from a bare HTTP/1.1 keep-alive loop instead of axum: a load run charges
    /// the fake's CPU to the cores the server under test shares, and axum's routing and body
    /// plumbing were most of it.
    pub async fn start_minimal() -> Self {
        let state = Arc::new(GraphState::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake graph");
        let addr = listener.local_addr().expect("fake graph address");
        let _ = state.origin.set(format!("http://{addr}"));
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

    /// Answer requests bearing `token` as this user, who has consented to every permission
    /// the fake serves (see [`Self::withhold`]); the user's id is `id-{upn}`.
    pub fn add_user(&self, token: &str, display_name: &str, mail: Option<&str>, upn: &str) {
        let profile = json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
            "id": format!("id-{upn}"),
            "displayName": display_name,
            "mail": mail,
            "userPrincipalName": upn,
        });
        let identity = Identity {
            user_id: format!("id-{upn}"),
            scopes: ROUTES.iter().map(|(_, p)| (*p).to_owned()).collect(),
            me: serde_json::to_vec(&profile).expect("profile JSON").into(),
        };
        lock(&self.state.profiles).insert(token.to_owned(), identity);
    }

    /// The known user of `token` loses `permission` from the token's `scp`.
    pub fn withhold(&self, token: &str, permission: &str) {
        if let Some(identity) = lock(&self.state.profiles).get_mut(token) {
            identity.scopes.retain(|p| p != permission);
        }
    }

    /// `user_id`'s calendar (`oid` in verifying mode, `id-{upn}` for known users).
    pub fn set_events(&self, user_id: &str, events: Vec<Value>) {
        lock(&self.state.events).insert(user_id.to_owned(), events);
    }

    /// Every `@odata.nextLink` from now on names `url` (another host, another version, ...).
    pub fn point_next_links_at(&self, url: &str) {
        *lock(&self.state.next_link) = Some(url.to_owned());
    }

    /// Pages hold at most `n` items whatever `$top` asks, as Graph limits page sizes.
    pub fn cap_pages_at(&self, n: usize) {
        self.state
            .page_cap
            .store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many requests reached `path`.
    pub fn requests(&self, path: &str) -> usize {
        lock(&self.state.requests).get(path).copied().unwrap_or(0)
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

async fn serve(
    State(state): State<Arc<GraphState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
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
    let (status, body) = respond(&state, uri.path(), uri.query(), token.as_deref());
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

fn error_body(code: &str) -> axum::body::Bytes {
    json!({"error": {"code": code, "message": format!("fake graph: {code}")}})
        .to_string()
        .into()
}

/// Graph's answer to `GET path?query` with `token`, as both servers send it.
fn respond(
    state: &GraphState,
    path: &str,
    query: Option<&str>,
    token: Option<&str>,
) -> (StatusCode, axum::body::Bytes) {
    if !state
        .not_recording
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        *lock(&state.requests).entry(path.to_owned()).or_default() += 1;
    }
    let Some(&(_, permission)) = ROUTES.iter().find(|(p, _)| *p == path) else {
        return (
            StatusCode::NOT_FOUND,
            error_body("Request_ResourceNotFound"),
        );
    };
    let Some(identity) = token.and_then(|t| identity(state, t)) else {
        return (
            StatusCode::UNAUTHORIZED,
            error_body("InvalidAuthenticationToken"),
        );
    };
    if !identity.scopes.iter().any(|s| s == permission) {
        return (StatusCode::FORBIDDEN, error_body("ErrorAccessDenied"));
    }
    match path {
        "/v1.0/me" => (StatusCode::OK, identity.me),
        _ => calendar_view(state, &identity.user_id, path, query.unwrap_or_default()),
    }
}

/// One page of the user's events: `$top` of them (default 10) from `$skip`, with a next
/// link while more remain. Graph refuses a calendar view without its time window.
fn calendar_view(
    state: &GraphState,
    user_id: &str,
    path: &str,
    query: &str,
) -> (StatusCode, axum::body::Bytes) {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if param("startDateTime").is_none() || param("endDateTime").is_none() {
        return (StatusCode::BAD_REQUEST, error_body("ErrorInvalidParameter"));
    }
    let number = |name: &str, default: usize| match param(name) {
        None => Some(default),
        Some(v) => v.parse::<usize>().ok(),
    };
    let (Some(top), Some(skip)) = (number("$top", 10), number("$skip", 0)) else {
        return (StatusCode::BAD_REQUEST, error_body("BadRequest"));
    };
    if top == 0 || top > 1000 {
        return (StatusCode::BAD_REQUEST, error_body("BadRequest"));
    }
    let top = match state.page_cap.load(std::sync::atomic::Ordering::Relaxed) {
        0 => top,
        cap => top.min(cap),
    };
    let events = lock(&state.events)
        .get(user_id)
        .cloned()
        .unwrap_or_default();
    let page: Vec<Value> = events.iter().skip(skip).take(top).cloned().collect();
    let mut body = json!({ "value": page });
    if skip + top < events.len() {
        let next = match lock(&state.next_link).clone() {
            Some(elsewhere) => elsewhere,
            None => {
                let mut next =
                    url::Url::parse(&format!("http://graph.invalid{path}")).expect("path URL");
                {
                    let mut pairs = next.query_pairs_mut();
                    for (k, v) in params.iter().filter(|(k, _)| k != "$skip") {
                        pairs.append_pair(k, v);
                    }
                    pairs.append_pair("$skip", &(skip + top).to_string());
                }
                // The fake's own origin: the one the request came to.
                format!(
                    "{}{}?{}",
                    state.origin.get().map_or("", String::as_str),
                    path,
                    next.query().unwrap_or_default()
                )
            }
        };
        body["@odata.nextLink"] = json!(next);
    }
    (StatusCode::OK, body.to_string().into())
}

/// Who `token` is (verifying mode, else the known users); `None` is Graph's 401
/// `InvalidAuthenticationToken`.
fn identity(state: &GraphState, token: &str) -> Option<Identity> {
    let verifier = lock(&state.verifier).clone();
    if let Some(v) = verifier {
        return v.identity(token, state);
    }
    lock(&state.profiles).get(token).cloned()
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
            (StatusCode::BAD_REQUEST, axum::body::Bytes::new())
        } else if request.method != Some("GET") {
            (StatusCode::METHOD_NOT_ALLOWED, axum::body::Bytes::new())
        } else {
            let target = request.path.unwrap_or_default();
            let (path, query) = match target.split_once('?') {
                Some((path, query)) => (path, Some(query)),
                None => (target, None),
            };
            let token = header("authorization").and_then(|v| v.strip_prefix("Bearer "));
            respond(&state, path, query, token)
        };
        let status = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or_default()
        );
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

/// `count` calendar events in Graph's shape (`Prefer: outlook.timezone="UTC"`), the n-th
/// titled `"{who} {n}"`, on successive days of December 2026.
pub fn sample_events(who: &str, count: usize) -> Vec<Value> {
    (0..count)
        .map(|n| {
            let day = n % 28 + 1;
            json!({
                "subject": format!("{who} {n}"),
                "start": {"dateTime": format!("2026-12-{day:02}T09:00:00.0000000"), "timeZone": "UTC"},
                "end": {"dateTime": format!("2026-12-{day:02}T09:30:00.0000000"), "timeZone": "UTC"},
                "location": {"displayName": "Room 1"},
                "organizer": {"emailAddress": {"name": "Grace", "address": "grace@contoso.com"}},
                "isOnlineMeeting": n % 2 == 0,
                "onlineMeeting": {"joinUrl": "https://teams.example/join"},
                "webLink": "https://outlook.office365.com/owa/?itemid=1",
            })
        })
        .collect()
}
