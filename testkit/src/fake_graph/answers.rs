//! The fake Graph's answers to a `GET`, shared by the axum server and the minimal loop: the
//! path's permission checked against the token's `scp`, `/me`, and `calendarView` paged with
//! `$top`/`$skip` and a next link, every body from `shapes`.

use axum::http::StatusCode;
use mcp_obo::devidp::shapes;
use serde_json::Value;

use super::{GRAPH, GraphState, identity, lock};

fn body_of(value: &Value) -> axum::body::Bytes {
    value.to_string().into()
}

/// Graph's answer to `GET path?query` with `token`, as both servers send it.
pub(super) fn respond(
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
    let Some(permission) = shapes::permission_for(path) else {
        return (StatusCode::NOT_FOUND, body_of(&shapes::not_found(path)));
    };
    let Some(identity) = token.and_then(|t| identity(state, t)) else {
        return (StatusCode::UNAUTHORIZED, body_of(&shapes::invalid_token()));
    };
    if !identity.scopes.iter().any(|s| s == permission.value) {
        return (StatusCode::FORBIDDEN, body_of(&shapes::access_denied()));
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
        let refusal = shapes::invalid_parameter(
            "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
        );
        return (StatusCode::BAD_REQUEST, body_of(&refusal));
    }
    let number = |name: &str, default: usize| match param(name) {
        None => Some(default),
        Some(v) => v.parse::<usize>().ok(),
    };
    let bad_paging = || {
        let refusal = shapes::error("BadRequest", "Invalid value for $top or $skip.");
        (StatusCode::BAD_REQUEST, body_of(&refusal))
    };
    let (Some(top), Some(skip)) = (number("$top", 10), number("$skip", 0)) else {
        return bad_paging();
    };
    if top == 0 || top > 1000 {
        return bad_paging();
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
    let next = (skip + top < events.len()).then(|| {
        match lock(&state.next_link).clone() {
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
        }
    });
    let context = format!("{GRAPH}/v1.0/$metadata#users('{user_id}')/calendarView");
    let body = shapes::page(Some(&context), page, next.as_deref());
    (StatusCode::OK, body.to_string().into())
}
