//! The provider's token exchange is a real check, not a rubber stamp: what the server gets
//! from it in `sign_in.rs` is only what a correct RFC 8693 request earns.

use serde_json::Value;

use super::{USER_SUB, World};

/// The MCP server's client and secret at the provider.
const SERVER: (&str, Option<&str>) = ("mcp-server", Some("mcp-server-secret"));

/// One RFC 8693 request to `endpoint` as `client` (id, secret) for `subject` and `scope`:
/// the status and the JSON body.
async fn exchange(
    endpoint: &str,
    (client_id, secret): (&str, Option<&str>),
    subject: &str,
    scope: &str,
) -> (u16, Value) {
    let mut form = vec![
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("client_id", client_id),
        ("subject_token", subject),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
        ("scope", scope),
    ];
    if let Some(s) = secret {
        form.push(("client_secret", s));
    }
    let res = reqwest::Client::new()
        .post(endpoint)
        .form(&form)
        .send()
        .await
        .expect("token endpoint");
    let status = res.status().as_u16();
    (status, res.json::<Value>().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn oidc_provider_token_exchange_refuses_wrong_clients_and_subject_tokens() {
    let w = World::start().await;
    let (_run, out) = w.oauth_client(&["--tool", ""]).await;
    let user_token = out["accessToken"].as_str().expect("accessToken").to_owned();
    let public_client = out["clientId"].as_str().expect("clientId").to_owned();
    let endpoint = w.provider.get("token_endpoint");
    let graph_scope = format!("{}/.default", w.graph.url);

    // The MCP server's own request succeeds and yields a Graph token for the user.
    let (status, ok) = exchange(&endpoint, SERVER, &user_token, &graph_scope).await;
    assert_eq!(status, 200, "{ok}");
    let graph_token = ok["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let keys = w.keys.lock().expect("keys").clone();
    let claims =
        crate::support::tokens::verify(&graph_token, &keys, std::slice::from_ref(&w.graph.url))
            .expect("a Graph token");
    assert_eq!(claims["sub"], USER_SUB);

    let tampered = format!("{user_token}x");
    let cases = [
        (
            "wrong secret",
            ("mcp-server", Some("wrong")),
            user_token.as_str(),
            graph_scope.as_str(),
            "invalid_client",
        ),
        (
            "the user's own (public) client",
            (public_client.as_str(), None),
            &user_token,
            &graph_scope,
            "invalid_request",
        ),
        (
            "a Graph token as subject",
            SERVER,
            &graph_token,
            &graph_scope,
            "invalid_grant",
        ),
        (
            "a tampered subject token",
            SERVER,
            &tampered,
            &graph_scope,
            "invalid_grant",
        ),
        (
            "an unknown target",
            SERVER,
            &user_token,
            "https://graph.microsoft.com/.default",
            "invalid_target",
        ),
    ];
    for (what, client, subject, scope, error) in cases {
        let (status, body) = exchange(&endpoint, client, subject, scope).await;
        assert!(
            (400..500).contains(&status) && body["error"] == error,
            "{what}: HTTP {status} {body}, expected {error}"
        );
    }
}
