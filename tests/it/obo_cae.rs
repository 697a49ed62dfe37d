//! Continuous access evaluation end to end, in-process: the exchange declares `cp1`; a
//! Graph claims challenge (a revoked token) drops the cached token and re-exchanges with the
//! challenge's claims; Entra's `interaction_required` then reaches the user as the claims
//! challenge; an unreadable challenge is a plain 401; a day-long token is cached for its life.

use crate::support::mcp_http::tool_error;
use crate::support::obo_world::{World, call_hello};
use crate::support::tokens::now;
use serde_json::{Value, json};

/// The `claims` every Entra exchange sends by default.
const CP1: &str = r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#;

/// What Graph asks for after a critical event: a token issued after it.
fn nbf_challenge() -> Value {
    json!({"access_token": {"nbf": {"essential": true, "value": "1604106651"}}})
}

/// A user whose first call succeeded, and the downstream token that call cached.
async fn signed_in(w: &World) -> (String, String) {
    let user = w.user(1);
    assert_eq!(call_hello(&w.app, &user).await["isError"], false);
    let issued = w.issuer.issued_tokens();
    assert_eq!(issued.len(), 1);
    (user, issued[0].clone())
}

#[tokio::test]
async fn the_exchange_declares_cp1_by_default_and_nothing_when_capabilities_are_empty() {
    let w = World::start(&[]).await;
    assert_eq!(call_hello(&w.app, &w.user(1)).await["isError"], false);
    assert_eq!(w.issuer.claims_requested(), vec![Some(CP1.to_owned())]);

    let w = World::start(&[("MCP_OBO__OBO__CLIENT_CAPABILITIES", "")]).await;
    assert_eq!(call_hello(&w.app, &w.user(1)).await["isError"], false);
    assert_eq!(w.issuer.claims_requested(), vec![None]);
}

#[tokio::test]
async fn a_graph_claims_challenge_re_exchanges_with_its_claims_and_the_new_token_is_cached() {
    let w = World::start(&[]).await;
    let (user, revoked) = signed_in(&w).await;
    w.graph.revoke(&revoked, &nbf_challenge());

    let result = call_hello(&w.app, &user).await;
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(result["structuredContent"]["displayName"], "User 1");
    assert_eq!(w.issuer.exchanges(), 2);
    // The challenge's claims, merged with the declared capability, exactly.
    assert_eq!(
        w.issuer.claims_requested(),
        vec![
            Some(CP1.to_owned()),
            Some(
                r#"{"access_token":{"nbf":{"essential":true,"value":"1604106651"},"xms_cc":{"values":["cp1"]}}}"#
                    .to_owned()
            ),
        ]
    );
    let fresh = w.issuer.issued_tokens()[1].clone();
    assert_ne!(fresh, revoked);
    assert_eq!(
        w.graph.seen_tokens(),
        vec![revoked.clone(), revoked, fresh.clone()]
    );

    // The next call is served the re-exchanged token from the cache.
    assert_eq!(call_hello(&w.app, &user).await["isError"], false);
    assert_eq!(w.issuer.exchanges(), 2);
    assert_eq!(w.graph.seen_tokens().last(), Some(&fresh));
}

#[tokio::test]
async fn a_challenge_entra_answers_with_interaction_required_reaches_the_user_without_data() {
    let w = World::start(&[]).await;
    let (user, revoked) = signed_in(&w).await;
    w.graph.revoke(&revoked, &nbf_challenge());
    let entra_claims = r#"{"access_token":{"capolids":{"essential":true,"values":["c1"]}}}"#;
    w.issuer.script_interaction_required(entra_claims);

    let result = call_hello(&w.app, &user).await;
    let text = tool_error(&result);
    assert!(
        text.contains("claims challenge") && text.contains(entra_claims),
        "{text}"
    );
    assert!(
        result.get("structuredContent").is_none_or(Value::is_null),
        "{result}"
    );
    assert!(!result.to_string().contains("User 1"), "{result}");
    let requested = w.issuer.claims_requested();
    assert_eq!(requested.len(), 2);
    let sent: Value =
        serde_json::from_str(requested[1].as_deref().unwrap_or("null")).expect("JSON");
    assert_eq!(
        sent["access_token"]["nbf"],
        nbf_challenge()["access_token"]["nbf"]
    );

    // The revoked token is gone: the next call gets the challenge again (remembered for
    // obo.failure_cache_ttl), not the data, and Graph never sees the revoked token again.
    let seen = w.graph.seen_tokens().len();
    let again = tool_error(&call_hello(&w.app, &user).await);
    assert!(again.contains(entra_claims), "{again}");
    assert_eq!(
        w.issuer.claims_requested().len(),
        2,
        "no exchange per retry"
    );
    assert_eq!(w.graph.seen_tokens().len(), seen);
}

#[rstest::rstest]
#[case::not_base64(r#"Bearer error="insufficient_claims", claims="%%%not base64%%%""#.to_owned())]
#[case::not_json(format!(r#"Bearer error="insufficient_claims", claims="{}""#, b64("not json")))]
#[case::not_an_object(format!(r#"Bearer error="insufficient_claims", claims="{}""#, b64("[1,2]")))]
#[case::huge(format!(
    r#"Bearer error="insufficient_claims", claims="{}""#,
    b64(&format!(r#"{{"access_token":{{"x":"{}"}}}}"#, "a".repeat(12_000)))
))]
#[case::unterminated(r#"Bearer error="insufficient_claims", claims="eyJ"#.to_owned())]
#[tokio::test]
async fn an_unreadable_challenge_is_a_plain_401(#[case] www_authenticate: String) {
    let w = World::start(&[]).await;
    let (user, revoked) = signed_in(&w).await;
    w.graph.revoke_with_challenge(&revoked, &www_authenticate);

    let result = call_hello(&w.app, &user).await;
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(w.issuer.exchanges(), 2);
    // A fresh exchange as for any 401: the capability only, nothing of the challenge.
    assert_eq!(
        w.issuer.claims_requested(),
        vec![Some(CP1.to_owned()), Some(CP1.to_owned())]
    );
    let health = reqwest::get(w.app.url("/healthz")).await.expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn a_28_hour_token_is_exchanged_once_for_many_calls() {
    let w = World::start(&[]).await;
    w.issuer
        .configure_token_endpoint(|p| p.lifetime_secs = 28 * 3600);
    let user = w.issuer.entra_token(json!({"exp": now() + 29 * 3600}));
    for _ in 0..5 {
        assert_eq!(call_hello(&w.app, &user).await["isError"], false);
    }
    assert_eq!(w.issuer.exchanges(), 1);
}
