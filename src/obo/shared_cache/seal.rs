//! What the shared cache stores, and how it is made useless to whoever reads Redis.
//!
//! - The Redis key is a digest (a domain tag, the SHA-256 of the user's token, the scopes),
//!   never the token: [`Keys`].
//! - The value is AES-256-GCM under a key derived (HKDF-SHA256) from the user's own raw
//!   token and the scopes, with a random nonce, and the Redis key as associated data: only a
//!   caller presenting that token, for those scopes, can open it, and an entry moved to
//!   another key, written under another key's material or altered fails to open.
//!
//! # Security
//! A holder of the user's token can read that user's entry, as they could exchange the
//! token themselves; nobody else can, Redis's operators included.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::obo::UserAssertion;
use crate::obo::{AccessToken, Error};

/// The format of the sealed value; a change makes older entries fail to open (they are then
/// replaced), never misread.
const VERSION: u8 = 1;
/// Separates this digest from every other SHA-256 of the token the server computes.
const KEY_TAG: &[u8] = b"mcp-obo shared token cache key v1\0";
/// HKDF salt: fixed, so every replica derives the same key from the same token.
const SALT: &[u8] = b"mcp-obo shared token cache seal v1";

/// The Redis keys of one user and set of scopes, and the key their entry is sealed with.
pub(crate) struct Keys {
    /// `{prefix}{<hex digest>}:t`: the entry. The braces are a Redis Cluster hash tag, so
    /// the entry and its lock live on the same node.
    pub entry: String,
    /// `{prefix}{<hex digest>}:l`: the cross-replica exchange lock.
    pub lock: String,
    seal: LessSafeKey,
}

impl Keys {
    /// `None` only if key derivation fails, which it cannot for these lengths.
    pub fn new(prefix: &str, user: &UserAssertion, scopes: &[&str]) -> Option<Self> {
        let mut hash = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        hash.update(KEY_TAG);
        hash.update(user.digest());
        let mut info = Vec::with_capacity(64);
        info.push(VERSION);
        // Each scope ends with a byte no scope contains (scopes are space-free), so
        // `["a", "b"]` and `["ab"]` differ.
        for scope in scopes {
            hash.update(scope.as_bytes());
            hash.update(b" ");
            info.extend_from_slice(scope.as_bytes());
            info.push(b' ');
        }
        let digest = hex(hash.finish().as_ref());
        // expand fails only for an output longer than 255 hash lengths, never for 32 bytes.
        let seal = Salt::new(HKDF_SHA256, SALT)
            .extract(user.expose().as_bytes())
            .expand(&[&info], &AES_256_GCM)
            .map(|okm| LessSafeKey::new(UnboundKey::from(okm)))
            .ok()?;
        Some(Self {
            entry: format!("{prefix}{{{digest}}}:t"),
            lock: format!("{prefix}{{{digest}}}:l"),
            seal,
        })
    }

    /// The sealed value of `entry`: version ‖ nonce ‖ ciphertext and tag.
    ///
    /// # Errors
    /// Only when the system's random number generator fails.
    pub fn seal(&self, entry: &Entry) -> Result<Vec<u8>, ()> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| ())?;
        let mut payload = Payload::from(entry);
        let plain = serde_json::to_vec(&payload);
        payload.wipe();
        let mut plain = plain.map_err(|_| ())?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plain.len() + 16);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(&plain);
        plain.zeroize();
        let mut body = out.split_off(start);
        let sealed = self.seal.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(self.entry.as_bytes()),
            &mut body,
        );
        if sealed.is_err() {
            body.zeroize();
            return Err(());
        }
        out.append(&mut body);
        Ok(out)
    }

    /// The entry sealed in `value`, or `None` when it does not open under this key (written
    /// for another token, scopes or key, altered, or of another format version).
    pub fn open(&self, value: &[u8]) -> Option<Entry> {
        let (&version, rest) = value.split_first()?;
        if version != VERSION || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = sealed.to_vec();
        let entry = self
            .seal
            .open_in_place(nonce, Aad::from(self.entry.as_bytes()), &mut body)
            .ok()
            .and_then(|plain| serde_json::from_slice::<Payload>(plain).ok())
            .and_then(Payload::into_entry);
        body.zeroize();
        entry
    }
}

/// What one entry holds: a token, or a failure of the caller's own state.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    Token(AccessToken),
    Failure(Error),
}

/// The serialised form, short field names: one entry per user and set of scopes.
#[derive(Serialize, Deserialize)]
#[serde(tag = "k")]
enum Payload {
    /// The token and its expiry (unix seconds).
    #[serde(rename = "t")]
    Token { t: String, e: u64 },
    #[serde(rename = "consent")]
    Consent {
        p: String,
        u: String,
        a: Option<String>,
    },
    #[serde(rename = "grant")]
    InvalidGrant { c: String },
    #[serde(rename = "claims")]
    Claims { c: String },
    #[serde(rename = "app")]
    AppOnly { c: String },
    /// Anything else is never written (only the caller's own state is remembered).
    #[serde(rename = "none")]
    Unremembered,
}

impl From<&Entry> for Payload {
    fn from(entry: &Entry) -> Self {
        match entry {
            Entry::Token(token) => Self::Token {
                t: token.bearer().unwrap_or_default().to_owned(),
                e: token
                    .expires_at()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            },
            Entry::Failure(Error::ConsentRequired {
                permissions,
                consent_url,
                admin_consent_url,
            }) => Self::Consent {
                p: permissions.clone(),
                u: consent_url.clone(),
                a: admin_consent_url.clone(),
            },
            Entry::Failure(Error::InvalidGrant { code }) => Self::InvalidGrant { c: code.clone() },
            Entry::Failure(Error::ClaimsChallenge { claims }) => Self::Claims { c: claims.clone() },
            Entry::Failure(Error::AppOnly { code }) => Self::AppOnly { c: code.clone() },
            Entry::Failure(_) => Self::Unremembered,
        }
    }
}

impl Payload {
    /// Overwrites the plaintext token held, before the payload is dropped.
    fn wipe(&mut self) {
        if let Self::Token { t, .. } = self {
            t.zeroize();
        }
    }

    fn into_entry(self) -> Option<Entry> {
        Some(match self {
            Self::Token { mut t, e } => {
                let expires_at = UNIX_EPOCH.checked_add(Duration::from_secs(e));
                let token = expires_at.map(|at| AccessToken::new(&t, at));
                t.zeroize();
                Entry::Token(token?)
            }
            Self::Consent { p, u, a } => Entry::Failure(Error::ConsentRequired {
                permissions: p,
                consent_url: u,
                admin_consent_url: a,
            }),
            Self::InvalidGrant { c } => Entry::Failure(Error::InvalidGrant { code: c }),
            Self::Claims { c } => Entry::Failure(Error::ClaimsChallenge { claims: c }),
            Self::AppOnly { c } => Entry::Failure(Error::AppOnly { code: c }),
            Self::Unremembered => return None,
        })
    }
}

/// The time left until `until`, if any.
pub(crate) fn remaining(until: SystemTime) -> Option<Duration> {
    until
        .duration_since(SystemTime::now())
        .ok()
        .filter(|d| !d.is_zero())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
#[path = "seal_tests.rs"]
mod tests;
