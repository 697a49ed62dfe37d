//! `GET /consent/complete`: the page a user's consent returns to. The consent link in a tool's
//! answer (`obo::Error::ConsentRequired`) asks Entra for exactly the permissions that tool
//! lacks and names this page as its `redirect_uri`, so consent works wherever the server runs
//! (Container Apps, AKS, compose), not only behind Easy Auth's `/.auth/login/aad`.
//!
//! # Security
//! The query carries an authorization code (or an error): the handler takes no extractor,
//! so nothing of it is read, logged or redeemed; the request log records paths only and the
//! HTTP span never sees the query (`telemetry/query.rs`). The answer is a fixed page that no
//! other site may frame, cache or learn the URL of (`Referrer-Policy`).

use actix_web::HttpResponse;
use actix_web::http::header;

/// The page's text; `{wait}` says when a retry sees the consent (the server remembers a
/// consent-missing answer for `obo.failure_cache_ttl`, so a client looping on it costs one
/// exchange).
const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mcp-obo: consent</title></head>
<body>
<h1>Thank you</h1>
<p>If you accepted the permissions, go back to your MCP client (VS Code, Claude, your agent)
and call the tool again{wait}: it works from then on.</p>
<p>If Microsoft showed an error instead (for example that your organization does not let users
consent), ask an administrator to grant consent for everyone; the tool's answer names the
permission and the administrator's link.</p>
<p>You can close this page.</p>
</body></html>
"#;

/// The page, written once when the server starts.
pub struct Page(String);

impl Page {
    /// The page for a server that remembers a consent-missing answer for `remembered`.
    pub fn new(remembered: std::time::Duration) -> Self {
        let wait = match remembered.as_secs() {
            0 => String::new(),
            s => format!(" in {s} seconds (this server remembers the earlier answer that long)"),
        };
        Self(PAGE.replace("{wait}", &wait))
    }
}

/// The fixed page; what the query says is never looked at.
pub async fn complete(page: actix_web::web::Data<Page>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ))
        .body(page.0.clone())
}
