//! What a Graph answer means: the value, a retry (as Graph's throttling guidance says), or
//! the error that tells the user what happened.

use http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::super::Error;
use super::super::http_client::Reply;
use super::Endpoint;
use crate::outbound::{self, Step};

/// What a Graph answer other than the first 401 means: the value, a retry (429, 502, 503,
/// 504, as Graph's guidance says), or the error that tells the user what happened.
pub(super) fn judge<T: DeserializeOwned>(
    endpoint: &Endpoint,
    reply: &Reply,
) -> Result<Step<T, Error>, Error> {
    let status = reply.status;
    if status.is_success() {
        return serde_json::from_slice(&reply.body)
            .map(Step::Done)
            .map_err(|e| Error::Malformed {
                reason: e.to_string(),
            });
    }
    let (code, message) = graph_error(&reply.body);
    match status {
        StatusCode::UNAUTHORIZED => Err(Error::Unauthorized { code }),
        StatusCode::FORBIDDEN => Err(Error::Forbidden {
            code,
            message,
            permissions: endpoint.permissions.to_string(),
        }),
        StatusCode::NOT_FOUND => Err(Error::NotFound {
            path: endpoint.path.to_string(),
        }),
        StatusCode::TOO_MANY_REQUESTS
        | StatusCode::BAD_GATEWAY
        | StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::GATEWAY_TIMEOUT => {
            let retry_after = outbound::retry_after(&reply.headers);
            Ok(Step::Retry {
                retry_after,
                status: Some(status.as_u16()),
                error: if status == StatusCode::TOO_MANY_REQUESTS {
                    Error::Throttled { retry_after }
                } else {
                    Error::Unavailable {
                        status: status.as_u16(),
                    }
                },
            })
        }
        _ if status.is_server_error() => Err(Error::Unavailable {
            status: status.as_u16(),
        }),
        _ => Err(Error::Unexpected {
            status: status.as_u16(),
            code,
        }),
    }
}

/// Graph's error body: `{"error": {"code": "...", "message": "..."}}`.
fn graph_error(body: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        code: Option<String>,
        message: Option<String>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(body) => (
            body.error.code,
            body.error.message.map(|m| m.chars().take(300).collect()),
        ),
        Err(_) => (None, None),
    }
}
