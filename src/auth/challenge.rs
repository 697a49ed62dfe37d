//! HTTP answers to authorization failures: RFC 6750 `WWW-Authenticate` challenges carrying
//! the RFC 9728 `resource_metadata` URL, as the MCP authorization spec requires.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

use super::{Error, Reason};

/// The response for `error`, for a request to an MCP path under `base`.
pub fn respond(error: &Error, metadata_url: &str, required_scopes: &[String]) -> HttpResponse {
    let scope = required_scopes.join(" ");
    let (status, params, description): (StatusCode, Vec<(&str, String)>, &str) = match error {
        Error::MissingToken => (StatusCode::UNAUTHORIZED, vec![], "authorization required"),
        Error::InvalidRequest(what) => (
            StatusCode::BAD_REQUEST,
            vec![
                ("error", "invalid_request".into()),
                ("error_description", (*what).into()),
            ],
            what,
        ),
        Error::InvalidToken(reason) => {
            // Short and uninformative on purpose: an attacker learns nothing from it.
            let description = if *reason == Reason::Expired {
                "token expired"
            } else {
                "invalid token"
            };
            (
                StatusCode::UNAUTHORIZED,
                vec![
                    ("error", "invalid_token".into()),
                    ("error_description", description.into()),
                ],
                description,
            )
        }
        Error::InsufficientScope {
            scopes,
            description,
        } => {
            let needed = scopes.join(" ");
            let mut res = HttpResponse::build(StatusCode::FORBIDDEN);
            res.insert_header((
                "www-authenticate",
                header_value(&[
                    ("error", "insufficient_scope".into()),
                    ("error_description", (*description).into()),
                    ("scope", needed),
                    ("resource_metadata", metadata_url.into()),
                ]),
            ));
            return res.json(body("insufficient_scope", description));
        }
        Error::KeysUnavailable => {
            return HttpResponse::ServiceUnavailable()
                .insert_header(("retry-after", "5"))
                .json(body(
                    "temporarily_unavailable",
                    "the token issuer's keys cannot be fetched; retry shortly",
                ));
        }
    };
    let mut all = params;
    all.push(("resource_metadata", metadata_url.into()));
    if !scope.is_empty() {
        all.push(("scope", scope));
    }
    let error_code = match error {
        Error::InvalidRequest(_) => "invalid_request",
        Error::InvalidToken(_) => "invalid_token",
        _ => "unauthorized",
    };
    HttpResponse::build(status)
        .insert_header(("www-authenticate", header_value(&all)))
        .json(body(error_code, description))
}

fn body(error: &str, description: &str) -> serde_json::Value {
    serde_json::json!({"error": error, "error_description": description})
}

/// `Bearer k="v", k2="v2"` with quotes and backslashes escaped.
fn header_value(params: &[(&str, String)]) -> String {
    let rendered: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    if rendered.is_empty() {
        "Bearer".to_owned()
    } else {
        format!("Bearer {}", rendered.join(", "))
    }
}
