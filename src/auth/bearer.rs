//! The bearer token of a request: the one `Authorization: Bearer` header (RFC 6750 §2.1),
//! or under Easy Auth the token header its proxy adds.

use actix_web::dev::ServiceRequest;
use actix_web::http::header;

use super::middleware::TokenPolicy;
use super::{Error, easyauth};

/// RFC 6750 `b64token` characters (what a bearer token may contain).
const fn is_b64token(b: u8) -> bool {
    b.is_ascii_alphanumeric() | matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

impl TokenPolicy {
    /// The bearer token from the `Authorization` header (or Easy Auth's token header).
    pub(super) fn bearer_token<'r>(&self, req: &'r ServiceRequest) -> Result<&'r str, Error> {
        let mut values = req.headers().get_all(header::AUTHORIZATION);
        let first = values.next();
        if values.next().is_some() {
            return Err(Error::InvalidRequest("more than one Authorization header"));
        }
        if let Some(value) = first {
            let bytes = value.as_bytes();
            let (scheme, rest) = match bytes.iter().position(|b| *b == b' ') {
                Some(i) => (&bytes[..i], &bytes[i + 1..]),
                None => (bytes, &[][..]),
            };
            if !scheme.eq_ignore_ascii_case(b"bearer") {
                return Err(if value.to_str().is_ok() {
                    Error::MissingToken
                } else {
                    Error::InvalidRequest("malformed Authorization header")
                });
            }
            let token = rest.trim_ascii();
            // One pass over the 1-2 KB token, without early exit so it vectorises; b64token
            // bytes are ASCII, so the token is then valid UTF-8.
            let b64token = token.iter().fold(true, |ok, b| ok & is_b64token(*b));
            return match std::str::from_utf8(token) {
                Ok(token) if b64token && !token.is_empty() => Ok(token),
                _ => Err(Error::InvalidRequest("malformed Authorization header")),
            };
        }
        if self.easyauth
            && let Some(token) = req
                .headers()
                .get(easyauth::TOKEN_HEADER)
                .and_then(|v| v.to_str().ok())
            && !token.trim().is_empty()
        {
            return Ok(token.trim());
        }
        Err(Error::MissingToken)
    }
}
