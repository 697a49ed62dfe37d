//! Access token validation: signature against the issuer's keys, `iss`, `aud`, `exp`/`nbf`,
//! tenant and client-application allow-lists; the result is a [`Caller`].
//!
//! # Security
//! - Only the algorithms the issuer's JWKS declares for the key (RS*/PS*/ES*) are accepted;
//!   `none` and HMAC are refused whatever the header says (no HS256-with-public-key trick).
//! - A token without `kid` is refused: every issuer this server trusts sets it.
//! - Oversized tokens are refused before parsing.
//! - A header with `crit` is refused: it names extensions this server does not understand.
//! - `iss` is compared exactly (no slash trimming): OIDC issuers as configured (and as the
//!   discovery document declares), Entra v2 `{authority}/{tid}/v2.0`, v1 `{v1_host}/{tid}/`.
//! - `exp` further than [`crate::jose::MAX_EXPIRY_HORIZON`] away is refused, so no time
//!   arithmetic on a token's claims can overflow.
//! - Why a token failed is returned as a [`Reason`] for logs, never echoed to the client.

use std::collections::HashSet;
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use super::jwks::{JwksCache, KeyError};
use super::{Caller, Error, Reason, UserAssertion};

/// Which issuers are trusted.
#[derive(Debug, Clone)]
pub enum IssuerPolicy {
    /// Exactly this issuer (OIDC), character for character. When the key cache checked the
    /// discovery document's `issuer` against the configuration ([`JwksCache::issuer`]), that
    /// declared issuer is the one compared: it is the configured one, spelled as the provider
    /// spells it (a bare origin `https://idp` cannot be told from `https://idp/` once parsed
    /// as a URL, and providers use both).
    Exact(String),
    /// Entra ID: v2 `{authority}/{tid}/v2.0` or v1 `{v1_host}/{tid}/`, `tid` allowed.
    Entra {
        authority: String,
        v1_host: String,
        tenants: TenantPolicy,
    },
}

/// Which Entra tenants' users may call.
#[derive(Debug, Clone)]
pub enum TenantPolicy {
    One(String),
    AllowList(HashSet<String>),
}

impl TenantPolicy {
    fn allows(&self, tid: &str) -> bool {
        match self {
            Self::One(t) => t.eq_ignore_ascii_case(tid),
            Self::AllowList(set) => set.contains(&tid.to_ascii_lowercase()),
        }
    }
}

/// A validated token's caller and the `kid` of the key that verified it.
#[derive(Debug)]
pub struct Validated {
    pub caller: Caller,
    pub kid: Box<str>,
}

/// Whether the JWS protected header has a `crit` member at all (even `null`, which the
/// header type reads as absent).
fn names_crit(token: &str) -> Result<bool, Error> {
    use base64::Engine;
    let segment = token.split('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Error::InvalidToken(Reason::Malformed))?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(|_| Error::InvalidToken(Reason::Malformed))?;
    Ok(header.contains_key("crit"))
}

/// Everything needed to validate one issuer's tokens.
pub struct TokenValidator {
    pub jwks: Arc<JwksCache>,
    pub issuer: IssuerPolicy,
    pub audiences: Vec<String>,
    /// `azp`/`appid` allow-list; empty allows any client.
    pub allowed_client_apps: HashSet<String>,
    /// Clock skew allowed on `exp`/`nbf`; at most [`MAX_LEEWAY_SECS`] is used.
    pub leeway_secs: u64,
    pub max_token_bytes: usize,
}

/// The largest leeway applied (the configuration allows at most 10 minutes too); a larger
/// value would only make the time checks overflow.
pub const MAX_LEEWAY_SECS: u64 = 600;

const ALLOWED: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// `scp` is a space-separated string (Entra); some issuers send an array.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ScopeClaim {
    Text(String),
    List(Vec<String>),
}

impl ScopeClaim {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::Text(s) => s.split_whitespace().map(str::to_owned).collect(),
            Self::List(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    iss: String,
    exp: u64,
    sub: Option<String>,
    oid: Option<String>,
    tid: Option<String>,
    name: Option<String>,
    preferred_username: Option<String>,
    upn: Option<String>,
    unique_name: Option<String>,
    email: Option<String>,
    scp: Option<ScopeClaim>,
    scope: Option<ScopeClaim>,
    #[serde(default)]
    roles: Vec<String>,
    azp: Option<String>,
    appid: Option<String>,
    client_id: Option<String>,
    idtyp: Option<String>,
}

impl TokenValidator {
    /// Validates `token` and returns the caller it names.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] with the reason, or [`Error::KeysUnavailable`] when the
    /// issuer's keys cannot be had at all.
    pub async fn validate(&self, token: &str) -> Result<Caller, Error> {
        self.validate_with_kid(token)
            .await
            .map(|validated| validated.caller)
    }

    /// As [`Self::validate`], also returning the `kid` of the key that verified the token
    /// (so a cache of validated tokens can forget those whose key is withdrawn).
    ///
    /// # Errors
    /// As [`Self::validate`].
    pub async fn validate_with_kid(&self, token: &str) -> Result<Validated, Error> {
        let invalid = Error::InvalidToken;
        if token.len() > self.max_token_bytes {
            return Err(invalid(Reason::TooLarge));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid(Reason::Malformed))?;
        if header.crit.is_some() || names_crit(token)? {
            return Err(invalid(Reason::CriticalHeader));
        }
        if !ALLOWED.contains(&header.alg) {
            return Err(invalid(Reason::DisallowedAlgorithm));
        }
        let kid = header.kid.as_deref().ok_or(invalid(Reason::MissingKid))?;
        let key = self.jwks.key(kid).await.map_err(|e| match e {
            KeyError::Unknown => invalid(Reason::UnknownKid),
            KeyError::Unavailable => Error::KeysUnavailable,
        })?;
        if key.algorithm != header.alg {
            return Err(invalid(Reason::DisallowedAlgorithm));
        }
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = self.leeway_secs.min(MAX_LEEWAY_SECS);
        validation.validate_nbf = true;
        validation.set_audience(&self.audiences);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(|e| {
            invalid(match e.kind() {
                ErrorKind::ExpiredSignature => Reason::Expired,
                ErrorKind::ImmatureSignature => Reason::NotYetValid,
                ErrorKind::InvalidAudience => Reason::WrongAudience,
                ErrorKind::InvalidSignature => Reason::BadSignature,
                ErrorKind::MissingRequiredClaim(_) => Reason::MissingClaim,
                ErrorKind::InvalidAlgorithm => Reason::DisallowedAlgorithm,
                _ => Reason::Malformed,
            })
        })?;
        let claims = data.claims;
        self.check_issuer(&claims)?;
        let expires_at =
            crate::jose::expiry_at_unix(claims.exp).ok_or(invalid(Reason::ExpiryOutOfRange))?;
        let client_app = claims
            .azp
            .clone()
            .or(claims.appid.clone())
            .or(claims.client_id.clone());
        if !self.allowed_client_apps.is_empty()
            && !client_app
                .as_deref()
                .is_some_and(|c| self.allowed_client_apps.contains(&c.to_ascii_lowercase()))
        {
            return Err(invalid(Reason::WrongClientApp));
        }
        let subject = claims
            .oid
            .clone()
            .or(claims.sub.clone())
            .ok_or(invalid(Reason::MissingClaim))?;
        let scopes = claims
            .scp
            .or(claims.scope)
            .map(ScopeClaim::into_vec)
            .unwrap_or_default();
        // Entra app-only tokens carry roles but no delegated scopes (and `idtyp: app`).
        let app_only = claims.idtyp.as_deref() == Some("app") || scopes.is_empty();
        let caller = Caller {
            subject,
            tenant_id: claims.tid,
            name: claims.name,
            username: claims
                .preferred_username
                .or(claims.upn)
                .or(claims.unique_name)
                .or(claims.email),
            scopes,
            roles: claims.roles,
            client_app,
            app_only,
            assertion: Some(UserAssertion::new(token, expires_at)),
        };
        Ok(Validated {
            caller,
            kid: kid.into(),
        })
    }

    fn check_issuer(&self, claims: &Claims) -> Result<(), Error> {
        let iss = claims.iss.as_str();
        match &self.issuer {
            IssuerPolicy::Exact(expected) => {
                let same = match self.jwks.issuer() {
                    Some(declared) => *declared == *iss,
                    None => iss == expected,
                };
                if !same {
                    return Err(Error::InvalidToken(Reason::WrongIssuer));
                }
            }
            IssuerPolicy::Entra {
                authority,
                v1_host,
                tenants,
            } => {
                let tid = claims
                    .tid
                    .as_deref()
                    .ok_or(Error::InvalidToken(Reason::MissingClaim))?;
                let v2 = format!("{authority}/{tid}/v2.0");
                // Exactly as Entra issues them: v2 without, v1 with a trailing slash.
                let v1 = format!("{v1_host}/{tid}/");
                if iss != v2 && iss != v1 {
                    return Err(Error::InvalidToken(Reason::WrongIssuer));
                }
                if !tenants.allows(tid) {
                    return Err(Error::InvalidToken(Reason::WrongTenant));
                }
            }
        }
        Ok(())
    }
}
