//! [`UserAssertion`]: the caller's own access token, sealed so that only `obo/` can read it.
//!
//! Inbound authorization seals the token it validated into the [`crate::auth::Caller`];
//! everything else (tools, the Graph client, the MCP layer) can carry it, hash it and see
//! when it expires, but the method that returns the token is visible in `obo/` alone, so no
//! other module can forward it (MCP forbids token passthrough). The type lives here, not
//! in `auth/`, because Rust restricts a method's visibility only to an ancestor of the
//! module that defines it.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

/// The caller's own access token, kept in memory only for the on-behalf-of exchange.
///
/// # Security
/// Never forwarded downstream and never printed: `Debug` is redacted, and the token is
/// readable only inside `obo/` (the exchange request body and the shared cache's key
/// derivation). Anywhere else, reading it does not compile:
///
/// ```compile_fail,E0624
/// fn forward(caller: &mcp_obo::auth::Caller) -> Option<&str> {
///     caller.assertion.as_ref().map(|token| token.expose())
/// }
/// ```
#[derive(Clone)]
pub struct UserAssertion(Arc<Inner>);

struct Inner {
    token: Box<str>,
    expires_at: SystemTime,
    /// SHA-256 of the token, computed on first use: the on-behalf-of cache key (as MSAL
    /// keys its OBO cache), so the token itself is never a map key.
    digest: OnceLock<[u8; 32]>,
}

impl UserAssertion {
    /// Seals a validated token that expires at `expires_at` (its `exp`).
    pub(crate) fn new(token: impl Into<Box<str>>, expires_at: SystemTime) -> Self {
        Self(Arc::new(Inner {
            token: token.into(),
            expires_at,
            digest: OnceLock::new(),
        }))
    }

    /// The raw token, for the token exchange request body and the shared cache's key
    /// derivation only.
    pub(in crate::obo) fn expose(&self) -> &str {
        &self.0.token
    }

    /// Whether this is `token`, compared in constant time (a cache lookup by a short hash
    /// must not tell how much of a guessed token matches).
    pub fn is(&self, token: &str) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(self.0.token.as_bytes(), token.as_bytes())
            .is_ok()
    }

    /// When the caller's token expires (`exp`).
    pub fn expires_at(&self) -> SystemTime {
        self.0.expires_at
    }

    /// SHA-256 of the token: a key for caches, from which the token cannot be recovered.
    pub fn digest(&self) -> &[u8; 32] {
        self.0
            .digest
            .get_or_init(|| crate::jose::sha256(self.0.token.as_bytes()))
    }
}

impl fmt::Debug for UserAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserAssertion(<redacted>)")
    }
}
