//! One verification key: which keys of a set are usable, for which algorithm, and which
//! issuer each is bound to.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// One verification key, the algorithm it is for and the issuer it belongs to, if it says.
#[derive(Clone)]
pub struct VerifyingKey {
    pub key: Arc<DecodingKey>,
    pub algorithm: Algorithm,
    /// The key's own `issuer` member, which may hold a `{tenantid}` template; `None` when
    /// the key declares none (then it is the issuer's, whoever that is).
    pub issuer: Option<Arc<str>>,
}

/// The placeholder Entra's multi-tenant key sets put in a key's `issuer`.
const TENANT_TEMPLATE: &str = "{tenantid}";

impl VerifyingKey {
    /// Whether a token naming `iss` (and tenant `tid`) may be verified by this key: any
    /// token when the key declares no issuer; otherwise only when `iss` is exactly the
    /// key's issuer, with `{tenantid}` replaced by `tid` (no `tid`, no match).
    pub fn allows_issuer(&self, iss: &str, tid: Option<&str>) -> bool {
        let Some(declared) = self.issuer.as_deref() else {
            return true;
        };
        if !declared.contains(TENANT_TEMPLATE) {
            return declared == iss;
        }
        tid.is_some_and(|tid| declared.replace(TENANT_TEMPLATE, tid) == iss)
    }
}

/// What a key set says of a key's `issuer`, a member [`jsonwebtoken::jwk::Jwk`] drops.
pub(super) enum DeclaredIssuer {
    Absent,
    Issuer(Arc<str>),
    /// Present but not a string: the key is not used.
    Unusable,
}

/// Each key's `issuer` in `body`, in the order of its `keys`.
pub(super) fn declared_issuers(body: &serde_json::Value) -> Vec<DeclaredIssuer> {
    let keys = body.get("keys").and_then(serde_json::Value::as_array);
    keys.map(|keys| {
        keys.iter()
            .map(|key| match key.get("issuer") {
                None | Some(serde_json::Value::Null) => DeclaredIssuer::Absent,
                Some(serde_json::Value::String(issuer)) => {
                    DeclaredIssuer::Issuer(Arc::from(issuer.as_str()))
                }
                Some(_) => DeclaredIssuer::Unusable,
            })
            .collect()
    })
    .unwrap_or_default()
}

/// The usable signing keys of `set` by `kid`, with `issuers[i]` what the set said of key
/// `i`'s `issuer`: keys without `kid`, not for signatures, of an algorithm never accepted or
/// with an unusable `issuer` are left out.
pub(super) fn usable_keys(
    set: &JwkSet,
    issuers: &[DeclaredIssuer],
) -> HashMap<String, VerifyingKey> {
    let mut keys = HashMap::new();
    for (index, jwk) in set.keys.iter().enumerate() {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let issuer = match issuers.get(index) {
            Some(DeclaredIssuer::Unusable) => continue,
            Some(DeclaredIssuer::Issuer(issuer)) => Some(Arc::clone(issuer)),
            Some(DeclaredIssuer::Absent) | None => None,
        };
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            continue;
        }
        let Some(algorithm) = algorithm_for(jwk) else {
            continue;
        };
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            keys.insert(
                kid,
                VerifyingKey {
                    key: Arc::new(key),
                    algorithm,
                    issuer,
                },
            );
        }
    }
    keys
}

/// The only algorithms ever accepted, by key type. `none` and HMAC never are.
fn algorithm_for(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Algorithm> {
    let declared = jwk.common.key_algorithm;
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => match declared {
            None | Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
            Some(KeyAlgorithm::RS384) => Some(Algorithm::RS384),
            Some(KeyAlgorithm::RS512) => Some(Algorithm::RS512),
            Some(KeyAlgorithm::PS256) => Some(Algorithm::PS256),
            Some(KeyAlgorithm::PS384) => Some(Algorithm::PS384),
            Some(KeyAlgorithm::PS512) => Some(Algorithm::PS512),
            _ => None,
        },
        AlgorithmParameters::EllipticCurve(params) => match (declared, &params.curve) {
            (None | Some(KeyAlgorithm::ES256), jsonwebtoken::jwk::EllipticCurve::P256) => {
                Some(Algorithm::ES256)
            }
            (None | Some(KeyAlgorithm::ES384), jsonwebtoken::jwk::EllipticCurve::P384) => {
                Some(Algorithm::ES384)
            }
            _ => None,
        },
        _ => None,
    }
}
