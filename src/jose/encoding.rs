//! Encodings and digests JOSE uses.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Base64url without padding, as JOSE uses.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 digest.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// A random URL-safe string from `bytes` random bytes (codes, refresh tokens, client ids).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // SystemRandom only fails when the OS has no entropy source; fall back to a digest of
    // the time and address so the caller still gets a value (the dev IdP is the only user).
    if aws_lc_rs::rand::fill(&mut buf).is_err() {
        let seed = format!("{:?}{:p}", std::time::SystemTime::now(), &buf);
        buf = sha256(seed.as_bytes()).to_vec();
    }
    b64url(&buf)
}
