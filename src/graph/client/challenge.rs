//! Graph's 401, and continuous access evaluation: when the answer carries
//! `WWW-Authenticate: Bearer ..., error="insufficient_claims", claims="<base64 JSON>"` (the
//! user was disabled, their password reset, a location policy changed), the cached token is
//! dropped and a new one exchanged with those claims, bypassing the cache; Entra may then
//! require the user to sign in again ([`crate::obo::Error::ClaimsChallenge`]). Any other 401,
//! and a challenge that cannot be read (too large, not base64, not a JSON object), is a plain
//! 401: the cached token is dropped and the next try exchanges afresh.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::HeaderMap;
use http::header::WWW_AUTHENTICATE;

use super::GraphClient;
use crate::auth::Caller;
use crate::obo::{AccessToken, Claims, MAX_CLAIMS_BYTES};
use crate::telemetry::metrics;

/// The longest `WWW-Authenticate` value read; Graph's are a few hundred bytes.
const MAX_HEADER_BYTES: usize = 8 * 1024;
/// The most auth-params read from one header value.
const MAX_PARAMS: usize = 32;

/// Base64 with padding or without: Graph pads, other resources may not.
const STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl GraphClient {
    /// Answers Graph's first 401 for a call: the cached token is dropped, and for a claims
    /// challenge a new one is exchanged with its claims, which the retry uses (`Some`);
    /// otherwise (`None`) the retry asks for a token as usual, which exchanges afresh.
    ///
    /// # Errors
    /// The re-exchange's error, e.g. [`crate::obo::Error::ClaimsChallenge`] when the user
    /// must sign in again.
    pub(super) async fn answer_unauthorized(
        &self,
        caller: &Caller,
        scopes: &[&str],
        headers: &HeaderMap,
        span: &tracing::Span,
    ) -> Result<Option<AccessToken>, crate::obo::Error> {
        let Some(claims) = insufficient_claims(headers) else {
            // The token may have been revoked or the cache stale: one fresh try.
            tracing::debug!("graph answered 401; retrying once with a fresh token");
            self.tokens.invalidate(caller, scopes).await;
            return Ok(None);
        };
        span.record("graph.cae_challenge", true);
        tracing::debug!(
            claims = %claims.names(),
            "graph answered a claims challenge; exchanging again with its claims"
        );
        self.tokens.invalidate(caller, scopes).await;
        let result = self.tokens.token_with_claims(caller, scopes, &claims).await;
        metrics::graph_claims_challenge(match &result {
            Ok(_) => "reexchanged",
            Err(crate::obo::Error::ClaimsChallenge { .. }) => "interaction_required",
            Err(_) => "failed",
        });
        result.map(Some)
    }
}

/// The claims of an `insufficient_claims` Bearer challenge in `headers`, if there is one
/// that can be read.
fn insufficient_claims(headers: &HeaderMap) -> Option<Claims> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter(|v| v.len() <= MAX_HEADER_BYTES)
        .filter_map(|v| v.to_str().ok())
        .flat_map(challenges)
        .filter(|c| c.scheme.eq_ignore_ascii_case("bearer"))
        .filter(|c| c.param("error") == Some("insufficient_claims"))
        .find_map(|c| decode_claims(c.param("claims")?))
}

/// Base64 (standard or URL-safe, padded or not) of a JSON object, within the bounds.
fn decode_claims(encoded: &str) -> Option<Claims> {
    if encoded.len() > MAX_CLAIMS_BYTES.div_ceil(3) * 4 {
        return None;
    }
    let json = STANDARD
        .decode(encoded)
        .or_else(|_| URL_SAFE.decode(encoded))
        .ok()?;
    Claims::parse(&json)
}

/// One challenge of a `WWW-Authenticate` value (RFC 9110 §11.6.1).
#[derive(Debug, PartialEq)]
struct Challenge {
    scheme: String,
    params: Vec<(String, String)>,
}

impl Challenge {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The challenges in `value`: `scheme name=token, name="quoted \" string", ...`, possibly
/// several, comma-separated. Whatever does not parse ends the list; a token68 is skipped.
fn challenges(value: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut rest = value;
    let mut params = 0;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        let Some((word, after)) = token(rest) else {
            break;
        };
        let after_ws = after.trim_start_matches([' ', '\t']);
        match after_ws.strip_prefix('=') {
            Some(value) if !value.starts_with('=') => {
                let value = value.trim_start_matches([' ', '\t']);
                if value.is_empty() || value.starts_with(',') {
                    // A token68 ending in one `=`.
                    rest = value;
                    continue;
                }
                let Some((param, remaining)) = param_value(value) else {
                    break;
                };
                params += 1;
                if params > MAX_PARAMS {
                    break;
                }
                if let Some(current) = out.last_mut() {
                    current.params.push((word.to_owned(), param));
                }
                rest = remaining;
            }
            // `scheme` (then its params), or a token68 with `=` padding: skipped.
            Some(_) => rest = after_ws.trim_start_matches('='),
            None => {
                out.push(Challenge {
                    scheme: word.to_owned(),
                    params: Vec::new(),
                });
                rest = after;
            }
        }
    }
    out
}

/// A token (RFC 9110 `tchar`s) at the start of `s`, and what follows it.
fn token(s: &str) -> Option<(&str, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~/".contains(c)))
        .unwrap_or(s.len());
    (end > 0).then(|| s.split_at(end))
}

/// A parameter value (a token or a quoted string) at the start of `s`, and what follows.
fn param_value(s: &str) -> Option<(String, &str)> {
    let Some(quoted) = s.strip_prefix('"') else {
        return token(s).map(|(v, rest)| (v.to_owned(), rest));
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &quoted[i + 1..])),
            '\\' => value.push(chars.next()?.1),
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use serde_json::json;

    use super::*;

    /// Graph's answer for a revoked session, as documented for CAE.
    const GRAPH: &str = r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwgInZhbHVlIjoiMTYwNDEwNjY1MSJ9fX0=""#;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(WWW_AUTHENTICATE, HeaderValue::from_str(v).expect("header"));
        }
        headers
    }

    #[test]
    fn graphs_insufficient_claims_challenge_yields_its_claims() {
        let claims = insufficient_claims(&headers(&[GRAPH])).expect("a challenge");
        let expected = json!({"access_token": {"nbf": {"essential": true, "value": "1604106651"}}});
        assert_eq!(Some(claims), Claims::parse(expected.to_string().as_bytes()));
    }

    #[test]
    fn the_challenge_is_found_among_others_and_in_any_padding_or_alphabet() {
        let b64 = STANDARD.encode(r#"{"access_token":{"nbf":{"essential":true,"value":"1"}}}"#);
        let unpadded = b64.trim_end_matches('=');
        for value in [
            format!(r#"Basic realm="x", Bearer error="insufficient_claims", claims="{b64}""#),
            format!(r#"Bearer error=insufficient_claims, claims={unpadded}"#),
            format!(r#"Negotiate abc==, bearer ERROR="insufficient_claims",claims="{b64}""#),
            format!(r#"Negotiate abc=, Bearer error="insufficient_claims", claims="{b64}""#),
        ] {
            assert!(
                insufficient_claims(&headers(&[&value])).is_some(),
                "{value}"
            );
        }
        assert!(insufficient_claims(&headers(&["Basic realm=\"x\"", GRAPH])).is_some());
    }

    #[test]
    fn anything_else_is_a_plain_401() {
        let b64 = |s: &str| STANDARD.encode(s);
        let huge = b64(&format!(
            r#"{{"access_token":{{"x":"{}"}}}}"#,
            "a".repeat(10_000)
        ));
        for value in [
            String::new(),
            r#"Bearer realm="", error="invalid_token""#.to_owned(),
            r#"Bearer error="insufficient_claims""#.to_owned(),
            r#"Bearer error="insufficient_claims", claims="%%%not base64%%%""#.to_owned(),
            format!(
                r#"Bearer error="insufficient_claims", claims="{}""#,
                b64("not json")
            ),
            format!(
                r#"Bearer error="insufficient_claims", claims="{}""#,
                b64("[1]")
            ),
            format!(r#"Bearer error="insufficient_claims", claims="{huge}""#),
            format!(
                r#"Basic error="insufficient_claims", claims="{}""#,
                b64("{}")
            ),
            r#"Bearer error="insufficient_claims", claims="unterminated"#.to_owned(),
            "Bearer ====, ,,, =\"\", error=".to_owned(),
        ] {
            assert!(
                insufficient_claims(&headers(&[&value])).is_none(),
                "{value}"
            );
        }
    }

    #[test]
    fn quoted_strings_unescape_and_params_are_bounded() {
        let parsed = challenges(r#"Bearer realm="a \"b\" c", error=x"#);
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].param("realm"), Some(r#"a "b" c"#));
        assert_eq!(parsed[0].param("error"), Some("x"));
        let many = format!("Bearer {}", "a=b, ".repeat(1000));
        assert_eq!(challenges(&many)[0].params.len(), MAX_PARAMS);
    }
}
