//! Expiry times read from tokens, token endpoints and identity endpoints, through checked
//! arithmetic: an absurd value is `None`, never an overflow panic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far in the future an expiry read from a token, a token endpoint or an identity
/// endpoint may lie: ten years. Anything later is a bug or an attack, and is refused before
/// any time arithmetic (which would overflow near `u64::MAX` / `i64::MAX` seconds).
pub const MAX_EXPIRY_HORIZON: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// `UNIX_EPOCH + secs` (a JWT `exp`, an `expires_on`), or `None` when that is more than
/// [`MAX_EXPIRY_HORIZON`] from now or not representable.
pub fn expiry_at_unix(secs: u64) -> Option<SystemTime> {
    let at = UNIX_EPOCH.checked_add(Duration::from_secs(secs))?;
    let horizon = SystemTime::now().checked_add(MAX_EXPIRY_HORIZON)?;
    (at <= horizon).then_some(at)
}

/// `now + secs` (an `expires_in`), or `None` when `secs` exceeds [`MAX_EXPIRY_HORIZON`].
pub fn expiry_in(secs: u64) -> Option<SystemTime> {
    let lifetime = Duration::from_secs(secs);
    if lifetime > MAX_EXPIRY_HORIZON {
        return None;
    }
    SystemTime::now().checked_add(lifetime)
}
