//! App Service / Container Apps built-in authentication ("Easy Auth") headers.
//!
//! # Security
//! The platform strips `X-MS-*` headers from external requests; nothing else does. These
//! headers are therefore read only in `auth.mode = easyauth`, and even then the bearer
//! token is validated in full and must name the same user and tenant as the principal.

use base64::Engine;
use serde::Deserialize;

pub const PRINCIPAL_HEADER: &str = "x-ms-client-principal";
pub const TOKEN_HEADER: &str = "x-ms-token-aad-access-token";

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
    })
}
