//! The sign-in page (`GET authorize`) and its decision (`POST authorize`): a user picked
//! from the dev users, a form bound to its request by an anti-forgery token, and the code.

use std::collections::HashMap;
use std::time::Instant;

use actix_web::{HttpResponse, web};

use super::authorize::{Failure, Request, failure, redirect_with, validate};
use super::html::{escape, refusal};
use super::{Form, Query, param};
use crate::devidp::consent;
use crate::devidp::state::{CODE_LIFETIME, CodeGrant, DevState, PendingAuthorization};
use crate::jose::random_token;

/// The sign-in form's anti-forgery field: a random token the page was issued with, bound
/// to its authorization request (kept server-side), so no other page can post a sign-in.
pub(in crate::devidp) const ANTI_FORGERY_FIELD: &str = "anti_forgery_token";

/// The request as a form's hidden inputs, with a fresh anti-forgery token bound to
/// `pending` (the one the POST must present).
pub(in crate::devidp) fn pending_form(
    state: &DevState,
    q: &HashMap<String, String>,
    pending: PendingAuthorization,
) -> String {
    let anti_forgery = random_token(32);
    state.pending.insert(anti_forgery.clone(), pending);
    q.iter()
        .filter(|(k, _)| k.as_str() != ANTI_FORGERY_FIELD)
        .chain([(&ANTI_FORGERY_FIELD.to_owned(), &anti_forgery)])
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect()
}

pub(super) async fn authorize_page(state: web::Data<DevState>, q: Query) -> HttpResponse {
    if consent::is_consent_request(&q, false) {
        return consent::page(&state, &q, false);
    }
    let request = match validate(&state, &q).await {
        Ok(r) => r,
        Err(f) => return failure(&state, f),
    };
    let hidden = pending_form(&state, &q, request.pending());
    let buttons: String = state
        .users
        .iter()
        .map(|u| {
            format!(
                "<button type=\"submit\" name=\"user\" value=\"{}\">{} &lt;{}&gt;</button>",
                escape(&u.id),
                escape(&u.name),
                escape(&u.email)
            )
        })
        .collect();
    let client = escape(
        request
            .client
            .name
            .as_deref()
            .unwrap_or(&request.client.client_id),
    );
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>mcp-obo dev sign-in</title>\
<style>body{{font-family:system-ui;max-width:32rem;margin:3rem auto}}button{{display:block;width:100%;margin:.5rem 0;padding:.7rem;font-size:1rem}}</style></head>\
<body><h1>Sign in (development)</h1><p><b>{client}</b> asks to act as you on <code>{aud}</code> with <code>{scope}</code>.</p>\
<form method=\"post\" id=\"signin\">{hidden}{buttons}</form>\
<form method=\"post\">{hidden}<button type=\"submit\" name=\"deny\" value=\"1\">Cancel</button></form>\
<p><small>This is the mcp-obo development identity provider. Never use it for real accounts.</small></p></body></html>",
        aud = escape(&request.audience),
        scope = escape(&request.scope),
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page)
}

pub(super) async fn authorize_decision(state: web::Data<DevState>, form: Form) -> HttpResponse {
    if consent::is_consent_request(&form, false) {
        return consent::decide(&state, &form, false);
    }
    let request = match validate(&state, &form).await {
        Ok(r) => r,
        Err(f) => return failure(&state, f),
    };
    if let Some(refused) = anti_forgery_refusal(&state, &form, &request) {
        return refused;
    }
    if form.contains_key("deny") {
        return failure(
            &state,
            Failure::Redirect {
                redirect_uri: request.redirect_uri,
                state: request.state,
                error: "access_denied",
                description: "the user cancelled the sign-in".into(),
            },
        );
    }
    let Some(user) = form.get("user").and_then(|id| state.user(id)) else {
        return failure(
            &state,
            Failure::Page("choose one of the listed users".into()),
        );
    };
    let code = random_token(32);
    state.codes.insert(
        code.clone(),
        CodeGrant {
            client_id: request.client.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge,
            user,
            scope: request.scope,
            audience: request.audience,
            expires: Instant::now() + CODE_LIFETIME,
        },
    );
    let mut params = vec![("code", code), ("iss", state.issuer())];
    if let Some(s) = request.state {
        params.push(("state", s));
    }
    redirect_with(&request.redirect_uri, &params)
}

/// The form must carry the token its page was issued with, for this same request; each
/// token answers one POST. The refusal otherwise: missing → 400, unknown, used or another
/// request's → 403.
fn anti_forgery_refusal(
    state: &DevState,
    form: &HashMap<String, String>,
    request: &Request,
) -> Option<HttpResponse> {
    let Some(token) = param(form, ANTI_FORGERY_FIELD) else {
        return Some(refusal(
            actix_web::http::StatusCode::BAD_REQUEST,
            "the sign-in form is missing its anti-forgery token; start the sign-in again from your client",
        ));
    };
    match state.pending.remove(token) {
        Some(pending) if pending == request.pending() => None,
        _ => Some(refusal(
            actix_web::http::StatusCode::FORBIDDEN,
            "this sign-in form was not issued for this request, or has expired; start the sign-in again from your client",
        )),
    }
}
