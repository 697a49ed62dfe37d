//! Private keys that sign compact JWTs and publish their public half as JWKs.

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256,
};
use serde_json::{Value, json};

use super::b64url;

/// A signing failure; only a broken crypto library produces one.
#[derive(Debug, thiserror::Error)]
#[error("signing failed: {0}")]
pub struct SignError(&'static str);

enum Inner {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A private signing key with its key id.
pub struct SigningKey {
    kid: String,
    inner: Inner,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh RSA-2048 key for RS256.
    ///
    /// # Errors
    /// When the crypto library cannot generate a key.
    pub fn generate_rsa(kid: impl Into<String>) -> Result<Self, SignError> {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| SignError("rsa keygen"))?;
        Ok(Self {
            kid: kid.into(),
            inner: Inner::Rsa(pair),
        })
    }

    /// A fresh P-256 key for ES256.
    ///
    /// # Errors
    /// When the crypto library cannot generate a key.
    pub fn generate_ec(kid: impl Into<String>) -> Result<Self, SignError> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| SignError("ec keygen"))?;
        Ok(Self {
            kid: kid.into(),
            inner: Inner::Ec(pair),
        })
    }

    /// An RSA key from PKCS#8 DER (e.g. a persisted development key).
    ///
    /// # Errors
    /// When the bytes are not an RSA PKCS#8 key.
    pub fn rsa_from_pkcs8(kid: impl Into<String>, der: &[u8]) -> Result<Self, SignError> {
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|_| SignError("rsa pkcs8"))?;
        Ok(Self {
            kid: kid.into(),
            inner: Inner::Rsa(pair),
        })
    }

    /// The private key as PKCS#8 DER, for persisting a development key.
    ///
    /// # Errors
    /// For EC keys (not persisted) or a crypto failure.
    pub fn to_pkcs8(&self) -> Result<Vec<u8>, SignError> {
        use aws_lc_rs::encoding::AsDer;
        match &self.inner {
            Inner::Rsa(pair) => pair
                .as_der()
                .map(|d| d.as_ref().to_vec())
                .map_err(|_| SignError("rsa export")),
            Inner::Ec(_) => Err(SignError("ec export unsupported")),
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWS algorithm this key signs with.
    pub fn alg(&self) -> &'static str {
        match self.inner {
            Inner::Rsa(_) => "RS256",
            Inner::Ec(_) => "ES256",
        }
    }

    /// The public half as a JWK (`kid`, `alg`, `use: sig`).
    pub fn public_jwk(&self) -> Value {
        match &self.inner {
            Inner::Rsa(pair) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA",
                    "kid": self.kid,
                    "use": "sig",
                    "alg": "RS256",
                    "n": b64url(public.modulus().big_endian_without_leading_zero()),
                    "e": b64url(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Inner::Ec(pair) => {
                // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
                let point = pair.public_key().as_ref();
                let (x, y) = point
                    .get(1..)
                    .unwrap_or_default()
                    .split_at(32.min(point.len().saturating_sub(1)));
                json!({
                    "kty": "EC",
                    "kid": self.kid,
                    "use": "sig",
                    "alg": "ES256",
                    "crv": "P-256",
                    "x": b64url(x),
                    "y": b64url(y),
                })
            }
        }
    }

    /// Signs `claims` as a compact JWT with `typ` (e.g. `JWT`, `at+jwt`) and any extra
    /// header fields.
    ///
    /// # Errors
    /// When signing fails.
    pub fn sign(
        &self,
        typ: &str,
        extra_header: Value,
        claims: &Value,
    ) -> Result<String, SignError> {
        let mut header = json!({"alg": self.alg(), "typ": typ, "kid": self.kid});
        if let (Some(h), Some(extra)) = (header.as_object_mut(), extra_header.as_object()) {
            for (k, v) in extra {
                h.insert(k.clone(), v.clone());
            }
        }
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let signature = self.sign_bytes(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", b64url(&signature)))
    }

    fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let rng = SystemRandom::new();
        match &self.inner {
            Inner::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|_| SignError("rsa sign"))?;
                Ok(sig)
            }
            Inner::Ec(pair) => pair
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SignError("ec sign")),
        }
    }
}
