//! Value types and checks shared by every module's settings: [`Secret`], [`Problem`], the
//! URL and GUID rules, and [`redact_credentials`] for any text that may quote a URL.

use std::borrow::Cow;
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
    /// A problem; a password in a URL the message quotes is redacted.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            key: key.into(),
            message: redact_credentials(&message).into_owned(),
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

/// Ends the run of URL characters [`redact_credentials`] looks at: whitespace and the
/// quotes and brackets text puts around a URL.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>')
}

/// Where the password of the URL starting just after a `://` lies: the bytes between the
/// userinfo's first `:` and its `@`; `None` when the authority has no password.
///
/// The userinfo ends at the last `@` before the query or fragment; a `host:port/path@…`
/// (a port, then a path holding an `@`) is not a password.
fn password_span(rest: &str) -> Option<(usize, usize)> {
    let token = &rest[..rest.find(ends_url).unwrap_or(rest.len())];
    let before_query = &token[..token.find(['?', '#']).unwrap_or(token.len())];
    let at = before_query.rfind('@')?;
    let colon = before_query[..at].find(':')?;
    if before_query[..colon].contains('/') || colon + 1 == at {
        return None;
    }
    let password = &before_query[colon + 1..at];
    if let Some(slash) = password.find('/')
        && password[..slash].bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((colon + 1, at))
}

/// `text` with the password of every URL in it replaced by `***`
/// (`https://user:secret@host` → `https://user:***@host`), for anything printed: effective
/// configuration values, `mcp-obo doctor` lines, error messages naming a URL.
pub fn redact_credentials(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("://") {
        let start = search + found + 3;
        search = start;
        if let Some((from, to)) = password_span(&text[start..]) {
            out.push_str(&text[copied..start + from]);
            out.push_str("***");
            copied = start + to;
            search = copied;
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::{is_loopback_authority, redact_credentials};

    #[test]
    fn the_password_of_every_url_in_a_text_is_redacted() {
        assert_eq!(
            redact_credentials("https://user:secret@host/x"),
            "https://user:***@host/x"
        );
        assert_eq!(
            redact_credentials(
                "\"http://a:p%40ss@127.0.0.1:9/t\" uses plain http; see https://u:two:colons@h?q=1#f then http://x:y@z"
            ),
            "\"http://a:***@127.0.0.1:9/t\" uses plain http; see https://u:***@h?q=1#f then http://x:***@z"
        );
        assert_eq!(
            redact_credentials("https://u:p@ss/w@rd@host"),
            "https://u:***@host"
        );
    }

    #[test]
    fn urls_without_a_password_are_left_as_they_are() {
        for text in [
            "https://host/path",
            "https://user@host/",
            "https://graph.microsoft.com/v1.0/users/ada@contoso.com",
            "http://127.0.0.1:8080/users/ada@contoso.com",
            "https://host:443?to=a:b@c",
            "no url: here@there",
            "https://u:@host",
        ] {
            assert_eq!(redact_credentials(text), text);
        }
    }

    #[test]
    fn a_loopback_authority_is_a_plain_loopback_name_or_address() {
        for loopback in [
            "localhost",
            "LOCALHOST:7071",
            "127.0.0.1",
            "127.9.9.9:80",
            "[::1]:7071",
        ] {
            assert!(is_loopback_authority(loopback), "{loopback}");
        }
        for other in [
            "",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "localhost@evil.example",
            "localhost/evil",
            "localhost#@evil.example",
            "[::2]:7071",
            "0.0.0.0:7071",
        ] {
            assert!(!is_loopback_authority(other), "{other}");
        }
    }
}
