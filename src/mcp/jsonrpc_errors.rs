//! Turns the transport's plain-text HTTP errors into JSON-RPC error bodies, and a body that
//! is not JSON into the spec's parse error (-32700, HTTP 400) rather than a 415.
//!
//! Wrapped on the MCP route scopes; only error responses are touched, successful traffic
//! passes untouched. [`error_response`] is the same body for the scope's own refusals (408
//! from `body_deadline.rs`, 429 from `limits.rs`).

use actix_web::HttpResponse;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;

/// JSON-RPC 2.0 parse error.
const PARSE_ERROR: i32 = -32700;
/// JSON-RPC 2.0 invalid request.
pub(super) const INVALID_REQUEST: i32 = -32600;
/// JSON-RPC 2.0 implementation-defined server error: the request was refused by a limit.
pub(super) const LIMITED: i32 = -32000;

/// An HTTP error `status` whose body is the JSON-RPC error `code` and `message`, for the
/// request `id` when known (else `null`).
pub(super) fn error_response(
    mut status: actix_web::HttpResponseBuilder,
    id: Option<serde_json::Value>,
    code: i32,
    message: &str,
) -> HttpResponse {
    status.json(serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message},
    }))
}

/// Marker for the middleware.
pub struct JsonRpcErrors;

impl JsonRpcErrors {
    pub async fn map(
        req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
        let sent_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        let res = next.call(req).await?;
        let status = res.status();
        let plain = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|ct| !ct.contains("json"));
        if !status.is_client_error() || !plain || status == StatusCode::UNAUTHORIZED {
            return Ok(res.map_into_left_body());
        }
        let (code, status, message) = if status == StatusCode::UNSUPPORTED_MEDIA_TYPE && sent_json {
            // The body claimed to be JSON and did not parse: that is a parse error.
            (
                PARSE_ERROR,
                StatusCode::BAD_REQUEST,
                "Parse error: the request body is not valid JSON-RPC".to_owned(),
            )
        } else {
            let message = match status {
                StatusCode::NOT_ACCEPTABLE => {
                    "Not Acceptable: Accept must include application/json and text/event-stream"
                        .to_owned()
                }
                StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                    "Unsupported Media Type: Content-Type must be application/json".to_owned()
                }
                StatusCode::PAYLOAD_TOO_LARGE => {
                    "Payload Too Large: the request body exceeds server.max_body_bytes".to_owned()
                }
                StatusCode::METHOD_NOT_ALLOWED => {
                    "Method Not Allowed: this server is stateless; use POST".to_owned()
                }
                other => other.canonical_reason().unwrap_or("Bad Request").to_owned(),
            };
            (INVALID_REQUEST, status, message)
        };
        let mut response = HttpResponse::build(status);
        if let Some(allow) = res.headers().get(header::ALLOW) {
            response.insert_header((header::ALLOW, allow.clone()));
        }
        let (req, _) = res.into_parts();
        let response = error_response(response, None, code, &message);
        Ok(ServiceResponse::new(req, response).map_into_right_body())
    }
}
