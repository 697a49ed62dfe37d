//! Why a request was not authorized, and how each case is answered.

/// Why a presented token was refused. Logged (at debug) and counted, never sent in detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    TooLarge,
    Malformed,
    MissingKid,
    UnknownKid,
    /// The JWS header has `crit`: it names extensions that must be understood, and this
    /// server understands none (RFC 7515 §4.1.11).
    CriticalHeader,
    DisallowedAlgorithm,
    BadSignature,
    Expired,
    NotYetValid,
    /// `exp` lies further in the future than any real token lives (or overflows).
    ExpiryOutOfRange,
    WrongIssuer,
    WrongAudience,
    WrongTenant,
    WrongClientApp,
    MissingClaim,
    EasyAuthMismatch,
    /// The key that verified the token declares an `issuer` the token's `iss` is not.
    KeyIssuer,
    /// An ID token (or a token not saying it is an app's), not an access token.
    NotAnAccessToken,
}

impl Reason {
    /// Every reason, so `/metrics` can show each at zero before the first failure.
    pub const ALL: [Self; 18] = [
        Self::TooLarge,
        Self::Malformed,
        Self::MissingKid,
        Self::UnknownKid,
        Self::CriticalHeader,
        Self::DisallowedAlgorithm,
        Self::BadSignature,
        Self::Expired,
        Self::NotYetValid,
        Self::ExpiryOutOfRange,
        Self::WrongIssuer,
        Self::WrongAudience,
        Self::WrongTenant,
        Self::WrongClientApp,
        Self::MissingClaim,
        Self::EasyAuthMismatch,
        Self::KeyIssuer,
        Self::NotAnAccessToken,
    ];

    /// A stable label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::Malformed => "malformed",
            Self::MissingKid => "missing_kid",
            Self::UnknownKid => "unknown_kid",
            Self::CriticalHeader => "critical_header",
            Self::DisallowedAlgorithm => "disallowed_algorithm",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::ExpiryOutOfRange => "expiry_out_of_range",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::WrongTenant => "wrong_tenant",
            Self::WrongClientApp => "wrong_client_app",
            Self::MissingClaim => "missing_claim",
            Self::EasyAuthMismatch => "easyauth_mismatch",
            Self::KeyIssuer => "key_issuer",
            Self::NotAnAccessToken => "not_access_token",
        }
    }
}

/// An authorization failure, mapped to HTTP by `challenge.rs`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No bearer token: 401 with the challenge that starts the client's sign-in.
    #[error("no bearer token")]
    MissingToken,
    /// A malformed request (token in the query string, broken Authorization header): 400.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// A token was presented and refused: 401 `invalid_token`.
    #[error("invalid token: {}", .0.as_str())]
    InvalidToken(Reason),
    /// Valid token, but not enough scope (or no user): 403 `insufficient_scope` naming
    /// every scope needed.
    #[error("insufficient scope: {description}")]
    InsufficientScope {
        scopes: Vec<String>,
        description: &'static str,
    },
    /// The issuer's keys could not be fetched and none are cached: 503, retry later.
    #[error("signing keys unavailable")]
    KeysUnavailable,
}

impl Error {
    /// The failure label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidToken(r) => r.as_str(),
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::KeysUnavailable => "keys_unavailable",
        }
    }

    /// Every label [`Self::reason`] can return, for `/metrics` to show each at zero.
    pub fn reasons() -> Vec<&'static str> {
        let others = [
            Self::MissingToken,
            Self::InvalidRequest(""),
            Self::InsufficientScope {
                scopes: Vec::new(),
                description: "",
            },
            Self::KeysUnavailable,
        ];
        others
            .iter()
            .map(Self::reason)
            .chain(Reason::ALL.iter().map(|r| r.as_str()))
            .collect()
    }
}
