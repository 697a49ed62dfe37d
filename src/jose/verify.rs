//! Checking a token against one known key (the dev provider's own tokens, the tests').

use serde_json::Value;

use super::SigningKey;

/// Verifies a JWT signed by `key`'s public half, checking `aud` when `audiences` is not
/// empty and always `exp`; returns the claims.
pub fn verify_with(key: &SigningKey, token: &str, audiences: &[&str]) -> Option<Value> {
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.public_jwk()).ok()?;
    let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).ok()?;
    let header = jsonwebtoken::decode_header(token).ok()?;
    if header.kid.as_deref() != Some(key.kid()) || format!("{:?}", header.alg) != key.alg() {
        return None;
    }
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.leeway = 30;
    if audiences.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(audiences);
    }
    validation.set_required_spec_claims(&["exp"]);
    jsonwebtoken::decode::<Value>(token, &decoding, &validation)
        .ok()
        .map(|d| d.claims)
}
