//! Consent in the dev provider: the link a tool's consent message carries (Entra's
//! `authorize?prompt=consent` for the server's own app, or `adminconsent`) shows a page that
//! grants the asked Graph permissions to the chosen dev user (or, for admin consent, to every
//! dev user) and returns to the server's `/consent/complete`, as Entra does. So a user
//! started with `--without-consent` can walk the whole incremental consent path locally.
//!
//! What it returns carries a random `code` that nothing redeems (the server's page never
//! reads it), as Entra's consent redirect does.

use std::collections::HashMap;

use actix_web::HttpResponse;
use url::Url;

use super::DEV_APP;
use super::state::{DevState, PendingAuthorization};
use crate::jose::random_token;
use crate::tools::graph_permissions;

use super::provider::{ANTI_FORGERY_FIELD, escape};

/// Whether `q` asks for the dev app's consent rather than a client's sign-in.
pub fn is_consent_request(q: &HashMap<String, String>, admin: bool) -> bool {
    q.get("client_id").map(String::as_str) == Some(DEV_APP)
        && (admin || q.get("prompt").map(String::as_str) == Some("consent"))
}

/// A consent request, checked: where it returns and the registered permissions it asks.
struct Consent {
    redirect_uri: String,
    state: Option<String>,
    permissions: Vec<&'static str>,
    scope: String,
}

impl Consent {
    fn pending(&self) -> PendingAuthorization {
        PendingAuthorization {
            client_id: DEV_APP.to_owned(),
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            code_challenge: String::new(),
            scope: self.scope.clone(),
            audience: "consent".to_owned(),
        }
    }
}

fn check(state: &DevState, q: &HashMap<String, String>) -> Result<Consent, String> {
    let redirect_uri = q
        .get("redirect_uri")
        .ok_or("redirect_uri is missing")?
        .clone();
    // Only the MCP server's own consent page: `{its origin}/consent/complete`.
    let returns_to_server = Url::parse(&redirect_uri).ok().is_some_and(|url| {
        url.path() == "/consent/complete"
            && state
                .mcp_resources
                .iter()
                .any(|r| Url::parse(r).is_ok_and(|r| r.origin() == url.origin()))
    });
    if !returns_to_server {
        return Err(format!(
            "redirect_uri {redirect_uri} is not the MCP server's /consent/complete page"
        ));
    }
    let scope = q.get("scope").cloned().unwrap_or_default();
    let prefix = format!("{}/", state.graph_base);
    let registered = graph_permissions();
    let mut permissions = Vec::new();
    for asked in scope.split_whitespace() {
        let name = asked.strip_prefix(&prefix).unwrap_or(asked);
        let permission = registered
            .iter()
            .find(|p| p.value.eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("{asked} is not a Graph permission of a registered tool"))?;
        permissions.push(permission.value);
    }
    if permissions.is_empty() {
        return Err("scope names no Graph permission".to_owned());
    }
    Ok(Consent {
        redirect_uri,
        state: q.get("state").cloned(),
        permissions,
        scope,
    })
}

/// `GET`: the consent page, one button per dev user (admin consent: one for all).
pub fn page(state: &DevState, q: &HashMap<String, String>, admin: bool) -> HttpResponse {
    let consent = match check(state, q) {
        Ok(c) => c,
        Err(message) => return super::provider::refusal_page(&message),
    };
    let hidden = super::provider::pending_form(state, q, consent.pending());
    let buttons: String = if admin {
        "<button type=\"submit\" name=\"user\" value=\"*\">Grant for every dev user (admin consent)</button>".to_owned()
    } else {
        state
            .users
            .iter()
            .map(|u| {
                format!(
                    "<button type=\"submit\" name=\"user\" value=\"{}\">Accept as {} &lt;{}&gt;</button>",
                    escape(&u.id),
                    escape(&u.name),
                    escape(&u.email)
                )
            })
            .collect()
    };
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>mcp-obo dev consent</title>\
<style>body{{font-family:system-ui;max-width:32rem;margin:3rem auto}}button{{display:block;width:100%;margin:.5rem 0;padding:.7rem;font-size:1rem}}</style></head>\
<body><h1>Permissions requested (development)</h1><p><b>mcp-obo (dev)</b> asks to read, on your behalf: <code>{}</code>.</p>\
<form method=\"post\" id=\"signin\">{hidden}{buttons}</form>\
<p><small>This is the mcp-obo development identity provider. Never use it for real accounts.</small></p></body></html>",
        escape(&consent.permissions.join(", "))
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page)
}

/// `POST`: records the grant and returns to the server's consent page.
pub fn decide(state: &DevState, form: &HashMap<String, String>, admin: bool) -> HttpResponse {
    let consent = match check(state, form) {
        Ok(c) => c,
        Err(message) => return super::provider::refusal_page(&message),
    };
    let issued_for_this = form
        .get(ANTI_FORGERY_FIELD)
        .and_then(|token| state.pending.remove(token))
        .is_some_and(|pending| pending == consent.pending());
    if !issued_for_this {
        return super::provider::refusal_page(
            "this consent form was not issued for this request, or has expired; follow the link from the tool's message again",
        );
    }
    let users: Vec<String> = match form.get("user").map(String::as_str) {
        Some("*") if admin => state.users.iter().map(|u| u.id.clone()).collect(),
        Some(id) if !admin && state.user(id).is_some() => vec![id.to_owned()],
        _ => return super::provider::refusal_page("choose one of the listed users"),
    };
    for user in &users {
        state.grant(user, &consent.permissions);
    }
    let mut url = match Url::parse(&consent.redirect_uri) {
        Ok(url) => url,
        Err(_) => return super::provider::refusal_page("invalid redirect_uri"),
    };
    {
        let mut pairs = url.query_pairs_mut();
        if admin {
            pairs.append_pair("admin_consent", "True");
        } else {
            pairs.append_pair("code", &random_token(32));
        }
        if let Some(s) = &consent.state {
            pairs.append_pair("state", s);
        }
    }
    HttpResponse::Found()
        .insert_header(("location", url.to_string()))
        .finish()
}
