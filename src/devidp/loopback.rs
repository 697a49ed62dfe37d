//! What every answer of the dev identity provider and Graph emulator goes through: they
//! listen on loopback, and answer only requests addressed to loopback, so a web page whose
//! name an attacker points at 127.0.0.1 (DNS rebinding) is refused before anything is
//! read; and their pages cannot be framed (clickjacking the sign-in buttons).

use actix_web::HttpResponse;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{DefaultHeaders, Next};

use crate::config::is_loopback_authority;

/// Answers 403 to a request whose `Host` (or absolute-form target's authority) is not
/// `localhost`, a 127.0.0.0/8 address or `[::1]` (any port); 400 without one.
pub async fn only_loopback_host(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let host = req
        .headers()
        .get(header::HOST)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let target = req.uri().authority().map(|a| a.as_str().to_owned());
    let refused = match (host, target) {
        (None, None) => Some((400, "a Host header is required")),
        (host, target) => {
            let loopback = [host, target]
                .iter()
                .flatten()
                .all(|authority| is_loopback_authority(authority));
            (!loopback).then_some((
                403,
                "the development identity provider answers only to localhost, 127.0.0.1 or [::1]",
            ))
        }
    };
    match refused {
        None => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Some((status, message)) => {
            tracing::debug!(
                status,
                "dev provider: request refused, Host is not loopback"
            );
            let status = actix_web::http::StatusCode::from_u16(status)
                .unwrap_or(actix_web::http::StatusCode::FORBIDDEN);
            let response = HttpResponse::build(status)
                .content_type("text/plain; charset=utf-8")
                .body(message);
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}

/// Headers on every answer: never framed by another page.
pub fn no_framing() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"))
}
