//! A fake Microsoft Graph: `/v1.0/me` and `/v1.0/me/calendarView` answer per bearer token,
//! as Graph does: an unknown token gets 401 `InvalidAuthenticationToken`, a token whose `scp`
//! lacks the path's delegated permission 403 `ErrorAccessDenied`, a calendar view without
//! its time window 400, and a collection is paged with `$top`/`$skip` and an
//! `@odata.nextLink`. It can be scripted to fail, its next link pointed elsewhere, and a token
//! revoked by continuous access evaluation answered with Graph's claims challenge.
//!
//! The bodies (profiles, pages, errors) and the path → permission table are
//! `mcp_obo::devidp::shapes`, which the dev Graph emulator serves too. This fake stays apart
//! from that emulator because tests must script it (failures, hangs, revocations, page caps),
//! observe it (tokens seen, requests per path, passthrough) and point it at any token issuer,
//! none of which the emulator shipped in the binary may do; and because a load run needs the
//! bare keep-alive loop of [`FakeGraph::start_minimal`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mcp_obo::devidp::shapes;
use serde_json::Value;
use tokio::sync::Notify;

mod answers;
mod minimal;
mod verifier;

use answers::respond;
use minimal::serve_minimal;
use verifier::Verifier;

/// What this fake names itself in `@odata.context`, as Graph does.
const GRAPH: &str = "https://graph.microsoft.com";

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

/// Who a token speaks for: the user's id (whose fixtures it reads), the permissions in its
/// `scp`, and the `/me` profile body.
#[derive(Clone)]
struct Identity {
    user_id: String,
    scopes: Vec<String>,
    me: axum::body::Bytes,
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
        let app = shapes::PATHS
            .iter()
            .fold(axum::Router::new(), |app, (path, _)| {
                app.route(path, get(serve))
            })
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
        let id = format!("id-{upn}");
        let profile = shapes::me(
            GRAPH,
            &shapes::Profile {
                id: &id,
                display_name,
                mail,
                user_principal_name: upn,
            },
        );
        let identity = Identity {
            user_id: id.clone(),
            scopes: shapes::PATHS
                .iter()
                .map(|(_, p)| p.value.to_owned())
                .collect(),
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
        *lock(&self.state.verifier) =
            Some(Arc::new(Verifier::new(keys, audience, inbound_audiences)));
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

/// `count` calendar events for [`FakeGraph::set_events`], the n-th titled `"{title} {n}"`,
/// thirty minutes from 09:00 UTC on the (n mod 28 + 1)-th of December 2026, organised by
/// Grace; online meetings at `join_url` when given.
pub fn calendar(title: &str, count: usize, join_url: Option<&str>) -> Vec<Value> {
    // 2026-12-01T09:00:00Z.
    let first = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_083_200 + 9 * 3600);
    (0..count)
        .map(|n| {
            let start = first + std::time::Duration::from_secs((n % 28) as u64 * 86_400);
            shapes::event(&shapes::Event {
                id: &format!("event-{n}"),
                subject: &format!("{title} {n}"),
                start,
                end: start + std::time::Duration::from_secs(30 * 60),
                location: "Room 1",
                organizer: ("Grace", "grace@contoso.com"),
                join_url,
                web_link: "https://outlook.office365.com/owa/?itemid=1",
            })
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn graph_error(status: StatusCode, code: &str, retry_after: Option<u64>) -> Response {
    let body = shapes::error(code, &format!("fake graph: scripted {code}"));
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

/// Who `token` is (verifying mode, else the known users); `None` is Graph's 401
/// `InvalidAuthenticationToken`.
fn identity(state: &GraphState, token: &str) -> Option<Identity> {
    let verifier = lock(&state.verifier).clone();
    if let Some(v) = verifier {
        return v.identity(token, state);
    }
    lock(&state.profiles).get(token).cloned()
}
