//! Value types and checks shared by every module's settings: [`Secret`], [`Problem`], and
//! the URL and GUID rules.

use std::fmt;

use url::Url;

/// A secret value: never printed.
#[derive(Clone)]
pub struct Secret(std::sync::Arc<str>);

impl Secret {
    pub fn new(value: impl Into<std::sync::Arc<str>>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One configuration problem, naming the key, the value and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits.
pub fn is_guid(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Whether the URL's host is a loopback name or address.
pub fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether a `Host`-style authority (`name`, `name:port`, `[v6]:port`) names a loopback
/// name or address. Anything but a plain authority (a path, user info, spaces) is not.
pub fn is_loopback_authority(authority: &str) -> bool {
    let plain = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    plain && Url::parse(&format!("http://{authority}/")).is_ok_and(|url| is_loopback_url(&url))
}

/// A URL as users write it: no trailing slash on a bare origin.
pub fn trim_slash(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

/// An absolute http(s) URL; plain `http` only for loopback hosts. The error says why not.
///
/// # Errors
/// The message for a [`Problem`], quoting `raw`.
pub fn https_url(raw: &str) -> Result<Url, String> {
    let Ok(url) = Url::parse(raw) else {
        return Err(format!(
            "{raw:?} is not valid; expected an absolute URL such as https://host"
        ));
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback_url(&url) => Ok(url),
        "http" => Err(format!(
            "{raw:?} uses plain http; https is required except for loopback addresses (localhost, 127.0.0.1, [::1])"
        )),
        other => Err(format!(
            "{raw:?} has scheme {other:?}; expected https (or http for loopback)"
        )),
    }
}
