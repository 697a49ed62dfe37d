//! The development users who can sign in, and the Graph permissions each has consented to.

use crate::jose::sha256;

/// A development user who can sign in.
#[derive(Debug, Clone)]
pub struct DevUser {
    pub id: String,
    pub name: String,
    pub email: String,
    /// Graph permissions (`scp` values) this user has not consented to: the on-behalf-of
    /// exchange for them answers AADSTS65001 (`mcp-obo dev --without-consent`).
    pub without_consent: Vec<String>,
}

impl DevUser {
    pub fn new(name: &str, email: &str) -> Self {
        let digest = sha256(email.to_ascii_lowercase().as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        // A stable GUID-shaped object id per email.
        let id = format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        );
        Self {
            id,
            name: name.to_owned(),
            email: email.to_owned(),
            without_consent: Vec::new(),
        }
    }

    /// Whether the user has consented to the Graph permission `value` (e.g. `User.Read`).
    pub fn consented(&self, value: &str) -> bool {
        !self
            .without_consent
            .iter()
            .any(|v| v.eq_ignore_ascii_case(value))
    }
}

/// Ada and Alan, unless configured otherwise.
pub fn default_users() -> Vec<DevUser> {
    vec![
        DevUser::new("Ada Lovelace", "ada@contoso.dev"),
        DevUser::new("Alan Turing", "alan@contoso.dev"),
    ]
}
