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
//! - A key that declares its own `issuer` verifies only tokens of that issuer
//!   ([`super::jwks::VerifyingKey::allows_issuer`]), whatever the signature says.
//! - Only access tokens are accepted: never an ID token, and app-only callers are told from
//!   users by what the issuer defines, not by a missing claim ([`TokenValidator::kind`]).
//! - Why a token failed is returned as a [`Reason`] for logs, never echoed to the client.
//!
//! `claims.rs`: the claims read and the [`Caller`] they make.

mod claims;

use std::collections::HashSet;
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};

use super::jwks::{JwksCache, KeyError, VerifyingKey};
use super::{Caller, Error, Reason};
use crate::obo::UserAssertion;
use claims::{Claims, Decided};

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

/// Tenant `tid`'s v2 and v1 issuers, exactly as Entra issues them: v2 without, v1 with a
/// trailing slash.
fn entra_issuers(authority: &str, v1_host: &str, tid: &str) -> (String, String) {
    (
        format!("{authority}/{tid}/v2.0"),
        format!("{v1_host}/{tid}/"),
    )
}

/// Whether a JWS `typ` names an RFC 9068 access token (`at+jwt`; media types compare
/// case-insensitively and may omit `application/`, RFC 7515 §4.1.9).
fn is_rfc9068(typ: Option<&str>) -> bool {
    typ.is_some_and(|typ| {
        let typ = typ.to_ascii_lowercase();
        typ == "at+jwt" || typ == "application/at+jwt"
    })
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
    /// The checks, in this order, each refusing: size; header (parses, no `crit`, an allowed
    /// algorithm, a `kid`); the key (known, for the header's algorithm); signature, `exp`,
    /// `nbf` and `aud`; `iss` and tenant; the key's own issuer; the expiry's range; the
    /// client application; a subject; access token or not ([`Self::kind`]).
    ///
    /// # Errors
    /// As [`Self::validate`].
    pub async fn validate_with_kid(&self, token: &str) -> Result<Validated, Error> {
        let invalid = Error::InvalidToken;
        let header = self.checked_header(token)?;
        let kid = header.kid.as_deref().ok_or(invalid(Reason::MissingKid))?;
        let key = self.key_for(kid, header.alg).await?;
        let mut claims = self.verified_claims(token, &key)?;
        self.check_issuer(&claims)?;
        if !self.key_allows(&key, &claims) {
            return Err(invalid(Reason::KeyIssuer));
        }
        let expires_at =
            crate::jose::expiry_at_unix(claims.exp).ok_or(invalid(Reason::ExpiryOutOfRange))?;
        let client_app = self.allowed_client_app(&claims)?;
        let subject = claims
            .oid
            .clone()
            .or(claims.sub.clone())
            .ok_or(invalid(Reason::MissingClaim))?;
        let scopes = claims.take_scopes();
        let app_only = self.kind(header.typ.as_deref(), &claims, &scopes)?;
        let decided = Decided {
            subject,
            scopes,
            client_app,
            app_only,
        };
        let caller = claims.into_caller(decided, UserAssertion::new(token, expires_at));
        Ok(Validated {
            caller,
            kid: kid.into(),
        })
    }

    /// The token's protected header, once the token's size, the header's form, the absence
    /// of `crit` and the algorithm allow-list are checked.
    fn checked_header(&self, token: &str) -> Result<jsonwebtoken::Header, Error> {
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
        Ok(header)
    }

    /// The issuer's key `kid`, which must be for the header's algorithm `alg`.
    async fn key_for(&self, kid: &str, alg: Algorithm) -> Result<VerifyingKey, Error> {
        let invalid = Error::InvalidToken;
        let key = self.jwks.key(kid).await.map_err(|e| match e {
            KeyError::Unknown => invalid(Reason::UnknownKid),
            KeyError::Unavailable => Error::KeysUnavailable,
        })?;
        if key.algorithm != alg {
            return Err(invalid(Reason::DisallowedAlgorithm));
        }
        Ok(key)
    }

    /// The claims, once the signature, `exp`/`nbf` (with the leeway), `aud` and the
    /// presence of `exp`, `aud` and `iss` are checked.
    fn verified_claims(&self, token: &str, key: &VerifyingKey) -> Result<Claims, Error> {
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = self.leeway_secs.min(MAX_LEEWAY_SECS);
        validation.validate_nbf = true;
        validation.set_audience(&self.audiences);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(|e| {
            Error::InvalidToken(match e.kind() {
                ErrorKind::ExpiredSignature => Reason::Expired,
                ErrorKind::ImmatureSignature => Reason::NotYetValid,
                ErrorKind::InvalidAudience => Reason::WrongAudience,
                ErrorKind::InvalidSignature => Reason::BadSignature,
                ErrorKind::MissingRequiredClaim(_) => Reason::MissingClaim,
                ErrorKind::InvalidAlgorithm => Reason::DisallowedAlgorithm,
                _ => Reason::Malformed,
            })
        })?;
        Ok(data.claims)
    }

    /// The client application (`azp`, `appid` or `client_id`), which must be on the
    /// allow-list when there is one.
    fn allowed_client_app(&self, claims: &Claims) -> Result<Option<String>, Error> {
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
            return Err(Error::InvalidToken(Reason::WrongClientApp));
        }
        Ok(client_app)
    }

    /// Whether a verified token is an app-only access token (`true`) or a user's (`false`);
    /// a token that is no access token at all is refused.
    ///
    /// # Security
    /// An ID token is signed with the same keys, and Entra's carry the server's client id
    /// as `aud`: signature, issuer and audience cannot tell it from an access token. But an
    /// ID token is for the client, not for a resource server (OIDC Core §2), so:
    /// - In every mode, a token with `nonce`, `at_hash` or `c_hash` is refused: OIDC Core
    ///   §2 defines them for ID tokens, and no access token carries them.
    /// - `entra`: a token with delegated scopes (`scp`) is a user's (unless `idtyp` says
    ///   `app`). One without is app-only only where Entra says so: `idtyp: app`, or,
    ///   without the optional `idtyp`, `sub` equal to `oid` (a service principal is both;
    ///   a user's `sub` is pairwise, never the `oid`). Anything else without `scp` (an ID
    ///   token carrying the user's app `roles`, `idtyp: user` without scopes) is refused.
    /// - `oidc`, RFC 9068 tokens (header `typ` `at+jwt`, §2.1): `client_id` and `sub` are
    ///   required (§2.2), and the token is app-only exactly when `sub` is the `client_id`
    ///   (client credentials, §2.2), a user's otherwise, with or without a `scope` claim.
    /// - `oidc`, issuers that do not follow RFC 9068: app-only when the token has no scope,
    ///   says `idtyp: app` or has `sub` equal to its `client_id`; a user's otherwise.
    fn kind(&self, typ: Option<&str>, claims: &Claims, scopes: &[String]) -> Result<bool, Error> {
        let not_access = Error::InvalidToken(Reason::NotAnAccessToken);
        if claims.nonce.is_some() || claims.at_hash.is_some() || claims.c_hash.is_some() {
            return Err(not_access);
        }
        let says_app = claims.idtyp.as_deref() == Some("app");
        let sub = claims.sub.as_deref();
        match &self.issuer {
            IssuerPolicy::Entra { .. } => {
                if says_app || !scopes.is_empty() {
                    return Ok(says_app);
                }
                let service_principal =
                    claims.idtyp.is_none() && sub.is_some() && sub == claims.oid.as_deref();
                if service_principal {
                    Ok(true)
                } else {
                    Err(not_access)
                }
            }
            IssuerPolicy::Exact(_) => {
                let client = claims.client_id.as_deref();
                let client_credentials = sub.is_some() && sub == client;
                if is_rfc9068(typ) {
                    if client.is_none() || sub.is_none() {
                        return Err(Error::InvalidToken(Reason::MissingClaim));
                    }
                    return Ok(client_credentials);
                }
                Ok(says_app || scopes.is_empty() || client_credentials)
            }
        }
    }

    /// Whether `key` may verify a token of the issuer `claims` name (checked after
    /// [`Self::check_issuer`]). Entra's v2 key sets bind their keys to the v2 issuer, and
    /// the same keys sign the tenant's v1 tokens: a v1 token counts as its tenant's v2
    /// issuer here (as Microsoft.IdentityModel's signing-key issuer check does).
    fn key_allows(&self, key: &VerifyingKey, claims: &Claims) -> bool {
        let tid = claims.tid.as_deref();
        if key.allows_issuer(&claims.iss, tid) {
            return true;
        }
        match (&self.issuer, tid) {
            (
                IssuerPolicy::Entra {
                    authority, v1_host, ..
                },
                Some(tid),
            ) => {
                let (v2, v1) = entra_issuers(authority, v1_host, tid);
                claims.iss == v1 && key.allows_issuer(&v2, Some(tid))
            }
            _ => false,
        }
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
                let (v2, v1) = entra_issuers(authority, v1_host, tid);
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
