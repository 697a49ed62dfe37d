//! The provider's HTML helpers: escaping and the error page a refused request shows.

use actix_web::HttpResponse;

pub(in crate::devidp) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

pub(in crate::devidp) fn refusal_page(message: &str) -> HttpResponse {
    refusal(actix_web::http::StatusCode::BAD_REQUEST, message)
}

pub(super) fn refusal(status: actix_web::http::StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><h1>Sign-in error</h1><p>{}</p>",
            escape(message)
        ))
}
