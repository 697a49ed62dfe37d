//! A test token issuer: keys generated in the test, OIDC discovery and JWKS served locally
//! both in the Entra shape (`/{tenant}/v2.0/...`) and a plain OIDC shape (`/oidc/...`), with
//! key rotation and outages on demand.
//!
//! This file is the constants, the claims and JWT helpers the tests share; beside it:
//! - `issuer.rs`: [`TestIssuer`], its discovery and key documents, [`TokenEndpointPolicy`]
//! - `token_endpoint.rs`: the on-behalf-of and token exchange endpoints

mod issuer;
mod token_endpoint;

pub use issuer::{APP_PERMISSIONS, FederatedCredential, TestIssuer, TokenEndpointPolicy};

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use mcp_obo::jose::b64url;
use serde_json::{Value, json};

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const OTHER_TENANT: &str = "11111111-2222-3333-4444-555555555555";
pub const CLIENT_ID: &str = "00000000-aaaa-bbbb-cccc-111111111111";
pub const VSCODE: &str = "aebc6443-996d-45c2-90f0-388ff96faa56";
pub const USER_OID: &str = "9f3c1d2e-0000-4000-8000-00000000ada1";

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The `X-MS-CLIENT-PRINCIPAL` header Easy Auth adds for a validated Entra token (base64
/// JSON): the user's object id and tenant id claims, and a display name.
pub fn easy_auth_principal(oid: &str, tid: &str) -> String {
    use base64::Engine;
    let principal = json!({
        "auth_typ": "aad",
        "claims": [
            {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": oid},
            {"typ": "http://schemas.microsoft.com/identity/claims/tenantid", "val": tid},
            {"typ": "name", "val": "Ada Lovelace"}
        ],
        "name_typ": "name", "role_typ": "roles"
    });
    base64::engine::general_purpose::STANDARD.encode(principal.to_string())
}

/// Merges `overrides` into `claims`; `null` removes a claim.
pub fn merge(claims: &mut Value, overrides: Value) {
    if let (Some(c), Some(o)) = (claims.as_object_mut(), overrides.as_object()) {
        for (k, v) in o {
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
    }
}

/// A compact JWT with an arbitrary header and signature bytes (for forged tokens).
pub fn raw_jwt(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes()),
        b64url(signature)
    )
}

/// HS256 over `header.claims` with `secret` (the classic public-key-as-HMAC-secret forgery).
pub fn hs256_jwt(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64url(tag.as_ref()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Entra's error body for `AADSTS{code}`, with `extra` members merged in.
pub fn entra_error(error: &str, code: u64, extra: Value) -> Value {
    let mut body = mcp_obo::devidp::shapes::entra_error(error, code, "fake entra says no.");
    merge(&mut body, extra);
    body
}

/// Verifies `token` against any of `jwks` (RS256/ES256), checking `aud` when given.
pub fn verify(token: &str, jwks: &[Value], audiences: &[String]) -> Option<Value> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let kid = header.kid?;
    let jwk_value = jwks.iter().find(|k| k["kid"] == kid.as_str())?;
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk_value.clone()).ok()?;
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).ok()?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    if audiences.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(audiences);
    }
    validation.set_required_spec_claims(&["exp"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .ok()
        .map(|d| d.claims)
}

/// A JWT's claims, read without verifying it (to look at a token a fake issued).
pub fn claims_of(jwt: &str) -> Value {
    use base64::Engine;
    jwt.split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}
