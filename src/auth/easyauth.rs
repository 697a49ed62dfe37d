//! App Service / Container Apps built-in authentication ("Easy Auth") headers.
//!
//! Which headers the platform injects, as documented: Container Apps names
//! `X-MS-CLIENT-PRINCIPAL-NAME` and `X-MS-CLIENT-PRINCIPAL-ID` (learn.microsoft.com,
//! azure/container-apps/authentication, "Access user claims in application code"); App
//! Service, whose authentication module Container Apps runs, adds `X-MS-CLIENT-PRINCIPAL`
//! (base64 JSON claims), `X-MS-CLIENT-PRINCIPAL-IDP` and, for Entra,
//! `X-MS-TOKEN-AAD-ACCESS-TOKEN` (azure/app-service/configure-authentication-user-identities).
//! The caller is matched by what is present: the principal id (the Entra object id), the
//! claims' object and tenant ids, or both, which must then agree. `-NAME` is a display name
//! (UPN or e-mail) and identifies no one reliably, so it is not used.
//!
//! # Security
//! The platform strips `X-MS-*` headers from external requests; nothing else does. These
//! headers are therefore read only in `auth.mode = easyauth`, and even then the bearer
//! token is validated in full and must name the same user (and tenant) as the principal.

use actix_web::http::header::HeaderMap;
use base64::Engine;
use serde::Deserialize;

use super::{Caller, Error, Reason};

pub const PRINCIPAL_HEADER: &str = "x-ms-client-principal";
pub const PRINCIPAL_ID_HEADER: &str = "x-ms-client-principal-id";
pub const PRINCIPAL_IDP_HEADER: &str = "x-ms-client-principal-idp";
pub const TOKEN_HEADER: &str = "x-ms-token-aad-access-token";

/// The identity provider name Easy Auth gives Microsoft Entra ID.
const ENTRA_IDP: &str = "aad";

const OID_CLAIMS: [&str; 2] = [
    "http://schemas.microsoft.com/identity/claims/objectidentifier",
    "oid",
];
const TID_CLAIMS: [&str; 2] = [
    "http://schemas.microsoft.com/identity/claims/tenantid",
    "tid",
];

/// The user and tenant the platform says it authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub oid: Option<String>,
    pub tid: Option<String>,
    /// Whether the claims header (`X-MS-CLIENT-PRINCIPAL`) was present: then the tenant must
    /// be named and match too. The id header alone carries no tenant; the token's tenant is
    /// the validator's to check.
    pub has_claims: bool,
}

/// Why the platform's principal headers do not establish a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalError {
    /// Neither `X-MS-CLIENT-PRINCIPAL` nor `X-MS-CLIENT-PRINCIPAL-ID`.
    Missing,
    /// Present but unreadable, from another identity provider, or contradicting each other.
    Invalid,
}

impl Principal {
    /// Whether this principal is the validated token's user (`subject` = `oid`) and tenant.
    pub fn matches(&self, subject: &str, tenant: Option<&str>) -> bool {
        let same_user = self.oid.as_deref() == Some(subject);
        let same_tenant = if self.has_claims {
            self.tid.is_some() && self.tid.as_deref() == tenant
        } else {
            true
        };
        same_user && same_tenant
    }
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    claims: Vec<RawClaim>,
}

#[derive(Deserialize)]
struct RawClaim {
    typ: String,
    val: String,
}

/// Decodes `X-MS-CLIENT-PRINCIPAL` (base64 JSON); `None` when it is not that.
pub fn decode_principal(value: &str) -> Option<Principal> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    let raw: Raw = serde_json::from_slice(&bytes).ok()?;
    let find = |names: &[&str]| {
        raw.claims
            .iter()
            .find(|c| names.contains(&c.typ.as_str()))
            .map(|c| c.val.clone())
    };
    Some(Principal {
        oid: find(&OID_CLAIMS),
        tid: find(&TID_CLAIMS),
        has_claims: true,
    })
}

/// The principal from whichever of the documented headers the platform sent.
pub fn principal_from(headers: &HeaderMap) -> Result<Principal, PrincipalError> {
    let text = |name: &str| match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| PrincipalError::Invalid),
    };
    if let Some(idp) = text(PRINCIPAL_IDP_HEADER)?
        && !idp.eq_ignore_ascii_case(ENTRA_IDP)
    {
        return Err(PrincipalError::Invalid);
    }
    let id = text(PRINCIPAL_ID_HEADER)?;
    let claims = match text(PRINCIPAL_HEADER)? {
        Some(value) => Some(decode_principal(value).ok_or(PrincipalError::Invalid)?),
        None => None,
    };
    match (claims, id) {
        (None, None) => Err(PrincipalError::Missing),
        (None, Some("")) => Err(PrincipalError::Invalid),
        (None, Some(id)) => Ok(Principal {
            oid: Some(id.to_owned()),
            tid: None,
            has_claims: false,
        }),
        (Some(principal), None) => Ok(principal),
        (Some(principal), Some(id)) if principal.oid.as_deref() == Some(id) => Ok(principal),
        (Some(_), Some(_)) => Err(PrincipalError::Invalid),
    }
}

/// The principal the request's token must match, or why the request is refused: no principal
/// header is a missing sign-in (401), an unreadable one a mismatch.
///
/// # Errors
/// [`Error::MissingToken`] or [`Error::InvalidToken`].
pub(super) fn required_principal(headers: &HeaderMap) -> Result<Principal, Error> {
    principal_from(headers).map_err(|e| match e {
        PrincipalError::Missing => Error::MissingToken,
        PrincipalError::Invalid => Error::InvalidToken(Reason::EasyAuthMismatch),
    })
}

/// Whether the validated token's user is the one the platform authenticated.
///
/// # Errors
/// [`Error::InvalidToken`] when they differ.
pub(super) fn check_caller(principal: &Principal, caller: &Caller) -> Result<(), Error> {
    if principal.matches(&caller.subject, caller.tenant_id.as_deref()) {
        Ok(())
    } else {
        Err(Error::InvalidToken(Reason::EasyAuthMismatch))
    }
}
