//! The `claims` request parameter of an Entra exchange (OpenID Connect Core §5.5, as Entra
//! and MSAL use it): the client capabilities this server declares (`xms_cc`, so Entra issues
//! continuous-access-evaluation tokens) merged with the claims a downstream API's challenge
//! asked for.
//!
//! [`Claims`] is a challenge's claims, parsed and bounded where the challenge arrives
//! (`graph/`); this file only merges and serialises them.

use std::fmt;

use serde_json::{Map, Value};

/// The largest claims JSON accepted from a challenge. Entra's are a few hundred bytes (an
/// `nbf` or `xms_cc` request); anything far larger is not a claims challenge.
pub const MAX_CLAIMS_BYTES: usize = 4096;

/// The claims a downstream API's challenge asked for: a JSON object whose `access_token`
/// member, when present, is an object too.
///
/// `Debug` prints only the member names, bounded: the values are the challenger's and are
/// passed on, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Claims(Map<String, Value>);

impl Claims {
    /// `json` as claims, or `None` when it is larger than [`MAX_CLAIMS_BYTES`], not a JSON
    /// object, or its `access_token` member is not an object.
    pub fn parse(json: &[u8]) -> Option<Self> {
        if json.len() > MAX_CLAIMS_BYTES {
            return None;
        }
        let Value::Object(map) = serde_json::from_slice(json).ok()? else {
            return None;
        };
        match map.get("access_token") {
            None | Some(Value::Object(_)) => Some(Self(map)),
            Some(_) => None,
        }
    }

    /// The requested claims' names (`access_token.nbf`), for logs and spans.
    pub fn names(&self) -> String {
        let mut names = Vec::new();
        for (member, value) in &self.0 {
            match value {
                Value::Object(inner) if !inner.is_empty() => {
                    names.extend(inner.keys().map(|k| format!("{member}.{k}")));
                }
                _ => names.push(member.clone()),
            }
        }
        let joined = names.join(",");
        crate::telemetry::escape(&crate::telemetry::bounded(&joined)).into_owned()
    }
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Claims").field(&self.names()).finish()
    }
}

/// Whether `name` may be declared as a client capability (`cp1`): a short word, so it can
/// never break the JSON or smuggle other claims in.
pub fn is_capability(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The `claims` parameter for an exchange: the challenge's claims, with
/// `access_token.xms_cc = {"values": capabilities}` set (as MSAL merges them: the declared
/// capabilities replace any the challenge named). `None` when there is nothing to send.
pub fn request_parameter(capabilities: &[String], challenge: Option<&Claims>) -> Option<String> {
    let mut claims = challenge.map(|c| c.0.clone()).unwrap_or_default();
    if !capabilities.is_empty() {
        let access_token = claims
            .entry("access_token")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(members) = access_token {
            members.insert(
                "xms_cc".into(),
                serde_json::json!({ "values": capabilities }),
            );
        }
    }
    (!claims.is_empty()).then(|| Value::Object(claims).to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cp1() -> Vec<String> {
        vec!["cp1".to_owned()]
    }

    #[test]
    fn capabilities_alone_are_declared_as_xms_cc() {
        let sent = request_parameter(&cp1(), None).expect("a parameter");
        assert_eq!(sent, r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#);
        assert_eq!(request_parameter(&[], None), None);
    }

    #[test]
    fn a_challenge_is_merged_with_the_capabilities_member_by_member() {
        let challenge = Claims::parse(
            br#"{"access_token":{"nbf":{"essential":true,"value":"1604106651"}},"id_token":{"acrs":{"essential":true}}}"#,
        )
        .expect("claims");
        let sent = request_parameter(&cp1(), Some(&challenge)).expect("a parameter");
        let sent: Value = serde_json::from_str(&sent).expect("JSON");
        assert_eq!(
            sent,
            json!({
                "access_token": {
                    "nbf": {"essential": true, "value": "1604106651"},
                    "xms_cc": {"values": ["cp1"]},
                },
                "id_token": {"acrs": {"essential": true}},
            })
        );
        // Without capabilities, the challenge goes as it came.
        let alone = request_parameter(&[], Some(&challenge)).expect("a parameter");
        assert_eq!(
            serde_json::from_str::<Value>(&alone).expect("JSON")["access_token"],
            json!({"nbf": {"essential": true, "value": "1604106651"}})
        );
    }

    #[test]
    fn the_declared_capabilities_replace_any_the_challenge_names() {
        let challenge =
            Claims::parse(br#"{"access_token":{"xms_cc":{"values":["cp9"]}}}"#).expect("claims");
        let sent = request_parameter(&cp1(), Some(&challenge)).expect("a parameter");
        assert_eq!(sent, r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#);
    }

    #[test]
    fn only_a_bounded_json_object_is_claims() {
        for bad in [
            &b"not json"[..],
            b"[1,2]",
            b"\"text\"",
            b"{\"access_token\":\"nbf\"}",
            b"{\"access_token\":[]}",
        ] {
            assert_eq!(
                Claims::parse(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let huge = format!(r#"{{"access_token":{{"x":"{}"}}}}"#, "a".repeat(5000));
        assert_eq!(Claims::parse(huge.as_bytes()), None);
        assert!(Claims::parse(b"{}").is_some());
    }

    #[test]
    fn claims_print_their_names_only() {
        let claims = Claims::parse(br#"{"access_token":{"nbf":{"value":"secret-ish\nforged"}}}"#)
            .expect("claims");
        let printed = format!("{claims:?}");
        assert!(printed.contains("access_token.nbf"), "{printed}");
        assert!(!printed.contains("secret-ish"), "{printed}");
    }

    #[test]
    fn capabilities_are_short_words() {
        assert!(is_capability("cp1"));
        assert!(is_capability("llt"));
        for bad in ["", "cp 1", "cp1\"}", "a,b", &"c".repeat(33)] {
            assert!(!is_capability(bad), "{bad:?}");
        }
    }
}
