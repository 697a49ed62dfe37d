//! A downstream access token that cannot leak through `Debug` or `Display`.

use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::HeaderValue;

/// A bearer token for a downstream API, with its expiry.
///
/// Kept only as its `Authorization` header value: the token is never needed on its own, and
/// a cache of 10,000 users holds 10,000 of them (1–2 KB each for Entra).
#[derive(Clone)]
pub struct AccessToken {
    /// `Bearer {token}` as a sensitive header value, built once per token rather than per
    /// call; `None` if the token is not a valid header value.
    authorization: Option<HeaderValue>,
    expires_at: SystemTime,
}

impl AccessToken {
    pub fn new(token: &str, expires_at: SystemTime) -> Self {
        let authorization = HeaderValue::from_maybe_shared(Bytes::from(format!("Bearer {token}")))
            .ok()
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        Self {
            authorization,
            expires_at,
        }
    }

    /// The `Authorization` header value for this token (cheap to clone).
    pub fn authorization(&self) -> Option<&HeaderValue> {
        self.authorization.as_ref()
    }

    /// The token itself, for the shared cache to seal (never to print).
    pub(crate) fn bearer(&self) -> Option<&str> {
        self.authorization
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
    }

    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// Whether the token is still good for at least `margin`.
    pub fn valid_for(&self, margin: Duration) -> bool {
        SystemTime::now()
            .checked_add(margin)
            .is_some_and(|deadline| deadline < self.expires_at)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("authorization", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_token_debug_is_redacted() {
        let token = AccessToken::new("graph-secret-value", SystemTime::now());
        let printed = format!("{token:?}");
        assert!(!printed.contains("graph-secret-value"));
        assert!(printed.contains("<redacted>"));
    }

    #[test]
    fn authorization_is_a_sensitive_bearer_header() {
        let token = AccessToken::new("abc.def", SystemTime::now());
        let header = token.authorization().expect("valid header value");
        assert_eq!(header, "Bearer abc.def");
        assert!(header.is_sensitive());
        assert!(
            AccessToken::new("bad\nvalue", SystemTime::now())
                .authorization()
                .is_none()
        );
    }

    #[test]
    fn validity_respects_the_margin() {
        let soon = AccessToken::new("t", SystemTime::now() + Duration::from_secs(30));
        assert!(soon.valid_for(Duration::from_secs(5)));
        assert!(!soon.valid_for(Duration::from_secs(120)));
    }
}
