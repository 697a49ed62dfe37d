//! Minimal JOSE: keys that sign compact JWTs and publish themselves as JWKs, and the small
//! pieces around tokens the rest of the crate shares.
//!
//! - `encoding.rs`: base64url, SHA-256, random URL-safe strings.
//! - `signing.rs`: [`SigningKey`] (RS256 / ES256), used where this server *issues* tokens:
//!   the development identity provider, signed client assertions (`private_key_jwt`), and
//!   the tests' token minting. Keys are generated with aws-lc-rs, never loaded from the repo.
//! - `expiry.rs`: times read from tokens and token endpoints, through checked arithmetic.
//! - `verify.rs`: [`verify_with`], checking a token against one known key (the dev provider
//!   and the tests). Verifying callers' tokens lives in `auth/` (jsonwebtoken).

mod encoding;
mod expiry;
mod signing;
mod verify;

pub use encoding::{b64url, random_token, sha256};
pub use expiry::{MAX_EXPIRY_HORIZON, expiry_at_unix, expiry_in};
pub use signing::{SignError, SigningKey};
pub use verify::verify_with;
