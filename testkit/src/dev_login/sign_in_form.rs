//! Minimal HTML reading for the sign-in page, written apart from the provider's own HTML:
//! the form's attributes, its hidden inputs and its user buttons, with character references
//! decoded.

use std::collections::HashMap;

use super::UserChoice;

/// Minimal HTML reading for the sign-in page: the `<form id="signin">` element's method,
/// action, hidden inputs and user buttons.
#[allow(clippy::type_complexity)]
pub(super) fn parse_sign_in_form(
    html: &str,
) -> Option<(
    String,
    Option<String>,
    Vec<(String, String)>,
    Vec<UserChoice>,
)> {
    let mut rest = html;
    let form = loop {
        let start = rest.find("<form")?;
        let tag_end = start + rest[start..].find('>')?;
        let attrs = attributes(&rest[start + 5..tag_end]);
        let body_end = tag_end + rest[tag_end..].find("</form>")?;
        if attrs.get("id").map(String::as_str) == Some("signin") {
            break (attrs, &rest[tag_end + 1..body_end]);
        }
        rest = &rest[body_end..];
    };
    let (form_attrs, body) = form;
    let mut hidden = Vec::new();
    let mut users = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let Some(tag_end) = after.find('>') else {
            break;
        };
        let tag = &after[..tag_end];
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let attrs = attributes(&tag[name.len()..]);
        rest = &after[tag_end + 1..];
        match name.to_ascii_lowercase().as_str() {
            "input"
                if attrs
                    .get("type")
                    .is_some_and(|t| t.eq_ignore_ascii_case("hidden")) =>
            {
                if let Some(n) = attrs.get("name") {
                    hidden.push((n.clone(), attrs.get("value").cloned().unwrap_or_default()));
                }
            }
            "button" if attrs.get("name").map(String::as_str) == Some("user") => {
                let label_end = rest.find("</button>").unwrap_or(rest.len());
                users.push(UserChoice {
                    id: attrs.get("value").cloned().unwrap_or_default(),
                    label: unescape(rest[..label_end].trim()),
                });
            }
            _ => {}
        }
    }
    let method = form_attrs
        .get("method")
        .map(|m| m.to_ascii_lowercase())
        .unwrap_or_else(|| "get".to_owned());
    Some((method, form_attrs.get("action").cloned(), hidden, users))
}

/// `a="x" b='y' c=z d` → {a: x, b: y, c: z, d: ""}, values unescaped.
fn attributes(tag: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = tag.trim_end_matches('/').chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let name: String =
            std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace() && *c != '=')).collect();
        if name.is_empty() {
            return out;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'=').is_some() {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            match chars.peek().copied() {
                Some(q @ ('"' | '\'')) => {
                    chars.next();
                    value = std::iter::from_fn(|| chars.next_if(|c| *c != q)).collect();
                    chars.next();
                }
                _ => {
                    value = std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())).collect();
                }
            }
        }
        out.insert(name.to_ascii_lowercase(), unescape(&value));
    }
}

/// The character references the provider's escaping produces, and numeric ones.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
