//! On-behalf-of end to end, in-process: MCP request with a user token → validation →
//! client assertion → the (fake) Entra token endpoint → (fake) Graph, which verifies the
//! downstream token's signature and audience and refuses the caller's own token.

use crate::support::fake_graph::{FakeGraph, Scripted};
use crate::support::mcp_http::{post_as, post_as_with, request};
use crate::support::obo_world::{
    EXCHANGE_AUDIENCE, World, call_hello, entra_and_graph, write_sa_token,
};
use crate::support::tokens::{CLIENT_ID, TestIssuer, entra_error, now};
use crate::support::{entra_env, oidc_env, spawn_production_app, wait_ready};
use mcp_obo::jose::SigningKey;
use serde_json::{Value, json};

fn tool_error(result: &Value) -> String {
    assert_eq!(result["isError"], true, "expected a tool error: {result}");
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn hello_tool_calls_graph_on_behalf_of_the_user_with_workload_identity() {
    let w = World::start(&[]).await;
    let result = call_hello(&w.app, &w.user(1)).await;
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(result["structuredContent"]["displayName"], "User 1");
    assert_eq!(result["structuredContent"]["email"], "user1@contoso.com");
    assert_eq!(w.issuer.exchanges(), 1);
}

#[tokio::test]
async fn graph_never_receives_inbound_token() {
    let w = World::start(&[]).await;
    let token = w.user(1);
    let _ = call_hello(&w.app, &token).await;
    assert!(!w.graph.seen_tokens().is_empty());
    assert!(
        !w.graph.seen_tokens().contains(&token),
        "the caller's own token reached Graph"
    );
    assert!(!w.graph.passthrough_seen());
}

#[tokio::test]
async fn two_hundred_simultaneous_first_calls_from_one_user_make_one_exchange() {
    // All 200 at once from one user: above the per-user limits, lifted here (tests/it/limits.rs).
    let w = World::start(&[
        ("MCP_OBO__SERVER__MAX_IN_FLIGHT_PER_USER", "200"),
        ("MCP_OBO__SERVER__RATE_LIMIT", "off"),
    ])
    .await;
    let token = w.user(7);
    let client = reqwest::Client::new();
    let mut calls = Vec::new();
    for _ in 0..200 {
        let url = w.app.mcp_url();
        let token = token.clone();
        let client = client.clone();
        calls.push(tokio::spawn(async move {
            let hello = request(1, "tools/call", json!({"name": "HelloTool"}));
            post_as_with(&client, &url, &token, &hello).await
        }));
    }
    for call in calls {
        let reply = call.await.expect("join");
        assert_eq!(reply.json.expect("json")["result"]["isError"], false);
    }
    assert_eq!(w.issuer.exchanges(), 1);
}

#[tokio::test]
async fn fifty_users_get_fifty_exchanges_and_each_their_own_profile() {
    let w = World::start(&[]).await;
    let client = reqwest::Client::new();
    let mut calls = Vec::new();
    for n in 0..50 {
        let token = w.user(n);
        let url = w.app.mcp_url();
        let client = client.clone();
        calls.push(tokio::spawn(async move {
            let hello = request(1, "tools/call", json!({"name": "HelloTool"}));
            let reply = post_as_with(&client, &url, &token, &hello).await;
            (n, reply.json.expect("json")["result"].clone())
        }));
    }
    for call in calls {
        let (n, result) = call.await.expect("join");
        assert_eq!(
            result["structuredContent"]["email"],
            format!("user{n}@contoso.com"),
            "{result}"
        );
    }
    assert_eq!(w.issuer.exchanges(), 50);
}

#[tokio::test]
async fn cached_tokens_are_reused_until_shortly_before_expiry() {
    let w = World::start(&[]).await;
    let token = w.user(1);
    for _ in 0..3 {
        assert_eq!(call_hello(&w.app, &token).await["isError"], false);
    }
    assert_eq!(w.issuer.exchanges(), 1);
    // A downstream token that lives less than the margin is never reused.
    w.issuer.configure_token_endpoint(|p| p.lifetime_secs = 60);
    let other = w.user(2);
    for _ in 0..2 {
        assert_eq!(call_hello(&w.app, &other).await["isError"], false);
    }
    assert_eq!(
        w.issuer.exchanges(),
        3,
        "an expiring token means a fresh exchange"
    );
}

#[tokio::test]
async fn a_user_token_in_its_last_minutes_costs_one_exchange_for_ten_calls() {
    let w = World::start(&[]).await;
    // Within obo.expiry_margin (2m) of its expiry; the downstream token lives an hour.
    let short_lived = w.issuer.entra_token(json!({"exp": now() + 90}));
    for _ in 0..10 {
        assert_eq!(call_hello(&w.app, &short_lived).await["isError"], false);
    }
    assert_eq!(w.issuer.exchanges(), 1);
}

/// Requests the fake token endpoint received, answered or scripted: each carries the
/// workload identity's client assertion.
fn token_requests(w: &World) -> usize {
    w.issuer.client_assertions().len()
}

/// The next exchange answers Entra's AADSTS65001 (consent missing).
fn script_consent_missing(w: &World) {
    w.issuer.script_token_endpoint(
        400,
        None,
        entra_error(
            "invalid_grant",
            65001,
            json!({"suberror": "consent_required"}),
        ),
    );
}

#[tokio::test]
async fn consent_missing_answers_with_a_link_asking_exactly_the_requested_scopes_returning_to_the_servers_page()
 {
    let w = World::start(&[]).await;
    script_consent_missing(&w);
    let text = tool_error(&call_hello(&w.app, &w.user(1)).await);
    let link = text
        .split_whitespace()
        .find(|word| word.contains("/oauth2/v2.0/authorize?"))
        .unwrap_or_else(|| panic!("no consent link in {text}"));
    let link = url::Url::parse(link).expect("the link is a URL");
    let query: std::collections::HashMap<_, _> = link.query_pairs().into_owned().collect();
    // HelloTool's exchange asks for exactly its own permission.
    let requested = format!("{}/User.Read", w.graph.url.trim_end_matches('/'));
    assert_eq!(query["scope"], requested, "{text}");
    assert_eq!(
        query["redirect_uri"],
        "https://mcp.example.com/consent/complete"
    );
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["prompt"], "consent");
    assert!(text.contains("/v2.0/adminconsent?"), "{text}");
}

#[tokio::test]
async fn a_consent_missing_answer_is_remembered_so_ten_calls_cost_one_exchange() {
    let w = World::start(&[]).await;
    for _ in 0..10 {
        script_consent_missing(&w);
    }
    let token = w.user(1);
    let first = tool_error(&call_hello(&w.app, &token).await);
    assert!(first.contains("have not given yet"), "{first}");
    for _ in 1..10 {
        assert_eq!(tool_error(&call_hello(&w.app, &token).await), first);
    }
    assert_eq!(token_requests(&w), 1);
    // The process's registry, as /metrics renders it (the app runs in this process).
    let metrics = mcp_obo::telemetry::metrics::render();
    // Counted, not only shown (every known result is shown at zero from start-up).
    let failure_cached: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mcp_obo_obo_cache_lookups_total{result=\"failure_cached\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(failure_cached > 0, "{metrics}");
    // Per user: another user's call is exchanged.
    let _ = call_hello(&w.app, &w.user(2)).await;
    assert_eq!(token_requests(&w), 2);
}

#[tokio::test]
async fn a_503_from_the_token_endpoint_is_not_remembered() {
    let w = World::start(&[("MCP_OBO__OBO__MAX_RETRIES", "0")]).await;
    w.issuer
        .script_token_endpoint(503, None, json!({"error": "temporarily_unavailable"}));
    let token = w.user(1);
    let text = tool_error(&call_hello(&w.app, &token).await);
    assert!(text.contains("busy or unavailable"), "{text}");
    assert_eq!(call_hello(&w.app, &token).await["isError"], false);
    assert_eq!(token_requests(&w), 2);
}

#[tokio::test]
async fn a_token_endpoint_redirect_is_not_followed_and_its_target_receives_nothing() {
    use crate::support::redirector::Redirector;
    // Redirects to the real (fake Entra) token endpoint, which would answer: only a client
    // that does not follow the 307 keeps the assertion and the user's token from it.
    let redirector = Redirector::start(307, "").await;
    let endpoint = format!("{}/token", redirector.url);
    let w = World::start(&[
        ("MCP_OBO__OBO__TOKEN_ENDPOINT", endpoint.as_str()),
        ("MCP_OBO__OBO__MAX_RETRIES", "0"),
    ])
    .await;
    let target = format!(
        "{}/{}/oauth2/v2.0/token?collected=1",
        w.issuer.base,
        crate::support::tokens::TENANT
    );
    redirector.set_location(&target);
    let text = tool_error(&call_hello(&w.app, &w.user(1)).await);
    assert_eq!(redirector.requests(), 1);
    assert_eq!(
        token_requests(&w),
        0,
        "the redirect target got the assertion"
    );
    assert_eq!(w.issuer.exchanges(), 0);
    assert!(text.contains("answered with a redirect"), "{text}");
    assert!(
        !text.contains(&w.issuer.base) && !text.contains("collected"),
        "the Location was echoed: {text}"
    );
    assert!(
        !text.contains("127.0.0.1"),
        "the endpoint's host is for the log, not the caller: {text}"
    );
}

#[tokio::test]
async fn a_rotated_federated_token_file_is_read_again() {
    let w = World::start(&[]).await;
    assert_eq!(call_hello(&w.app, &w.user(1)).await["isError"], false);
    write_sa_token(&w.sa_key, &w.sa_file, "second-after-rotation");
    assert_eq!(call_hello(&w.app, &w.user(2)).await["isError"], false);
    let assertions = w.issuer.client_assertions();
    assert_eq!(assertions.len(), 2);
    assert_ne!(
        assertions[0], assertions[1],
        "the rotated token must be the one sent"
    );
    assert_eq!(
        assertions[1],
        std::fs::read_to_string(&w.sa_file).expect("read")
    );
}

#[tokio::test]
async fn graph_rejecting_a_cached_token_triggers_one_fresh_exchange() {
    let w = World::start(&[]).await;
    let token = w.user(1);
    assert_eq!(call_hello(&w.app, &token).await["isError"], false);
    w.graph
        .script(Scripted::Status(401, None, "InvalidAuthenticationToken"));
    assert_eq!(call_hello(&w.app, &token).await["isError"], false);
    assert_eq!(w.issuer.exchanges(), 2);
}

#[rstest::rstest]
#[case::consent(400, None, entra_error("invalid_grant", 65001, json!({"suberror": "consent_required"})), "redirect_uri=https%3A%2F%2Fmcp.example.com%2Fconsent%2Fcomplete")]
#[case::claims_challenge(
    400,
    None,
    entra_error("interaction_required", 50076, json!({"claims": "{\"access_token\":{\"capolids\":{\"essential\":true,\"values\":[\"c1\"]}}}"})),
    "capolids"
)]
#[case::app_only(400, None, entra_error("invalid_request", 7000114, json!({})), "signed-in user")]
#[case::federation_propagating(400, None, entra_error("invalid_grant", 50013, json!({})), "retry in a minute")]
#[case::fic_missing(401, None, entra_error("invalid_client", 700213, json!({})), "retry in a minute")]
#[case::bad_client(401, None, entra_error("invalid_client", 7000215, json!({})), "server configuration problem")]
#[case::revoked(400, None, entra_error("invalid_grant", 50173, json!({})), "sign in again")]
#[tokio::test]
async fn token_endpoint_errors_become_messages_that_say_what_to_do(
    #[case] status: u16,
    #[case] retry_after: Option<u64>,
    #[case] body: Value,
    #[case] expected: &str,
) {
    let w = World::start(&[]).await;
    w.issuer.script_token_endpoint(status, retry_after, body);
    let text = tool_error(&call_hello(&w.app, &w.user(1)).await);
    assert!(
        text.to_lowercase().contains(&expected.to_lowercase()),
        "expected {expected:?} in {text:?}"
    );
    // The server stays healthy: the next call works (another user's: a failure of the
    // first user's own state is remembered for them, obo.failure_cache_ttl).
    assert_eq!(call_hello(&w.app, &w.user(2)).await["isError"], false);
    let health = reqwest::get(w.app.url("/healthz")).await.expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test]
async fn throttling_is_retried_honouring_retry_after_then_reported() {
    let w = World::start(&[]).await;
    w.issuer
        .script_token_endpoint(429, Some(0), json!({"error": "temporarily_unavailable"}));
    assert_eq!(
        call_hello(&w.app, &w.user(1)).await["isError"],
        false,
        "one 429 is retried"
    );
    for _ in 0..3 {
        w.issuer
            .script_token_endpoint(503, Some(0), json!({"error": "temporarily_unavailable"}));
    }
    let text = tool_error(&call_hello(&w.app, &w.user(2)).await);
    assert!(text.contains("busy or unavailable"), "{text}");
}

#[tokio::test]
async fn an_unreachable_token_endpoint_names_the_dependency() {
    let port = crate::support::free_port();
    let endpoint = format!("http://127.0.0.1:{port}/token");
    let w = World::start(&[
        ("MCP_OBO__OBO__TOKEN_ENDPOINT", endpoint.as_str()),
        ("MCP_OBO__OBO__MAX_RETRIES", "0"),
    ])
    .await;
    let text = tool_error(&call_hello(&w.app, &w.user(1)).await);
    assert!(text.contains("cannot reach the token endpoint"), "{text}");
    assert!(!text.contains(&endpoint), "no internal URL: {text}");
}

#[tokio::test]
async fn a_missing_federated_token_file_is_reported_as_a_server_problem() {
    let w = World::start(&[]).await;
    std::fs::remove_file(&w.sa_file).expect("remove");
    let text = tool_error(&call_hello(&w.app, &w.user(1)).await);
    assert!(
        text.contains("workload identity token file") && text.contains("operator"),
        "{text}"
    );
    assert!(
        !text.contains(&w.sa_file.display().to_string()),
        "no file path: {text}"
    );
}

#[tokio::test]
async fn client_secret_authenticates_the_exchange_and_is_never_in_the_config_output() {
    let w = World::start(&[
        ("MCP_OBO__OBO__CLIENT_ASSERTION", "client_secret"),
        ("MCP_OBO__OBO__CLIENT_SECRET", "s3cr3t-value"),
    ])
    .await;
    w.issuer
        .configure_token_endpoint(|p| p.client_secret = Some("s3cr3t-value".into()));
    assert_eq!(call_hello(&w.app, &w.user(1)).await["isError"], false);
    w.issuer
        .configure_token_endpoint(|p| p.client_secret = Some("rotated".into()));
    let text = tool_error(&call_hello(&w.app, &w.user(2)).await);
    assert!(
        text.contains("server configuration problem") && !text.contains("s3cr3t"),
        "{text}"
    );
    let loaded = mcp_obo::settings::load(
        None,
        &vec![("MCP_OBO__OBO__CLIENT_SECRET".into(), "s3cr3t-value".into())],
    )
    .expect("valid");
    assert_eq!(loaded.effective["obo.client_secret"].0, "<redacted>");
    assert!(!format!("{:?}", loaded.settings).contains("s3cr3t"));
}

#[rstest::rstest]
#[case::u64_max_number(json!(u64::MAX))]
#[case::u64_max_string(json!("18446744073709551615"))]
#[case::i64_max(json!(i64::MAX))]
#[case::two_pow_53(json!(1u64 << 53))]
#[tokio::test]
async fn an_absurd_expires_in_fails_the_exchange_and_the_server_keeps_serving(
    #[case] expires_in: Value,
) {
    let w = World::start(&[]).await;
    w.issuer.script_token_endpoint(
        200,
        None,
        json!({"token_type": "Bearer", "access_token": "downstream-token-value", "expires_in": expires_in}),
    );
    let text = tool_error(&call_hello(&w.app, &w.user(1)).await);
    assert!(
        text.contains("expires_in") && !text.contains("downstream-token-value"),
        "{text}"
    );
    // Nothing was cached and the server still serves: the next call exchanges afresh.
    assert_eq!(call_hello(&w.app, &w.user(1)).await["isError"], false);
    assert_eq!(call_hello(&w.app, &w.user(2)).await["isError"], false);
}

/// The payload of a compact JWT.
fn jwt_claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("a compact JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON payload")
}

/// A world whose exchanges authenticate with a certificate (`private_key_jwt`).
async fn certificate_world() -> (World, tempfile::TempDir) {
    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("rsa key");
    let cert = rcgen::CertificateParams::new(vec!["mcp-obo".into()])
        .expect("params")
        .self_signed(&key_pair)
        .expect("self-signed");
    let dir = tempfile::tempdir().expect("temp dir");
    let pem_path = dir.path().join("client.pem");
    std::fs::write(
        &pem_path,
        format!("{}{}", cert.pem(), key_pair.serialize_pem()),
    )
    .expect("write pem");
    let thumbprint = mcp_obo::jose::b64url(&mcp_obo::jose::sha256(cert.der()));
    let public = SigningKey::rsa_from_pkcs8("x", &key_pair.serialize_der())
        .expect("pkcs8")
        .public_jwk();
    let path = pem_path.display().to_string();
    let w = World::start(&[
        ("MCP_OBO__OBO__CLIENT_ASSERTION", "certificate"),
        ("MCP_OBO__OBO__CERTIFICATE_FILE", path.as_str()),
    ])
    .await;
    w.issuer
        .configure_token_endpoint(|p| p.certificates = vec![(thumbprint, public)]);
    (w, dir)
}

#[tokio::test]
async fn certificate_assertions_made_in_the_same_second_have_distinct_random_jtis() {
    let (w, _dir) = certificate_world().await;
    let mut same_second = false;
    for round in 0..5 {
        let users: Vec<String> = (0..4).map(|i| w.user(round * 4 + i)).collect();
        let calls = users.iter().map(|user| call_hello(&w.app, user));
        for result in futures_util::future::join_all(calls).await {
            assert_eq!(result["isError"], false, "{result}");
        }
        let claims: Vec<Value> = w
            .issuer
            .client_assertions()
            .iter()
            .map(|a| jwt_claims(a))
            .collect();
        let mut seconds: Vec<i64> = claims.iter().filter_map(|c| c["iat"].as_i64()).collect();
        seconds.sort_unstable();
        if seconds.windows(2).any(|w| w[0] == w[1]) {
            same_second = true;
            break;
        }
    }
    assert!(
        same_second,
        "no two assertions were made in the same second; the test proved nothing"
    );
    let jtis: Vec<String> = w
        .issuer
        .client_assertions()
        .iter()
        .map(|a| jwt_claims(a)["jti"].as_str().unwrap_or_default().to_owned())
        .collect();
    for jti in &jtis {
        assert_eq!(jti.len(), 22, "128 bits as base64url: {jti}");
        assert!(
            jti.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{jti}"
        );
    }
    let distinct: std::collections::HashSet<&String> = jtis.iter().collect();
    assert_eq!(distinct.len(), jtis.len(), "repeated jti: {jtis:?}");
}

#[tokio::test]
async fn a_certificate_signs_a_private_key_jwt_with_its_thumbprint() {
    let (w, _dir) = certificate_world().await;
    assert_eq!(call_hello(&w.app, &w.user(1)).await["isError"], false);
}

#[tokio::test]
async fn rfc8693_token_exchange_works_for_non_entra_issuers() {
    let issuer = TestIssuer::start().await;
    let graph = FakeGraph::start().await;
    graph.verify_tokens(
        issuer.keys_handle(),
        &graph.url,
        &["https://mcp.example.com/mcp"],
    );
    let resource = graph.url.clone();
    issuer.configure_token_endpoint(|p| {
        p.resource = resource;
        p.client_id = "mcp-server".into();
        p.client_secret = Some("kc-secret".into());
        p.user_audiences = vec!["https://mcp.example.com/mcp".into()];
    });
    let mut env = oidc_env(&issuer);
    env.extend([
        ("MCP_OBO__GRAPH__BASE_URL".into(), graph.url.clone()),
        ("MCP_OBO__OBO__GRANT".into(), "token_exchange".into()),
        (
            "MCP_OBO__OBO__CLIENT_ASSERTION".into(),
            "client_secret".into(),
        ),
        ("MCP_OBO__OBO__CLIENT_ID".into(), "mcp-server".into()),
        ("MCP_OBO__OBO__CLIENT_SECRET".into(), "kc-secret".into()),
        (
            "MCP_OBO__OBO__TOKEN_ENDPOINT".into(),
            format!("{}/token", issuer.oidc_issuer()),
        ),
    ]);
    let app = spawn_production_app(&env);
    wait_ready(&app).await;
    let user = issuer.sign(&json!({
        "iss": issuer.oidc_issuer(), "aud": "https://mcp.example.com/mcp", "sub": "kc-user-1",
        "name": "Kim", "preferred_username": "kim@example.org",
        "exp": now() + 600, "iat": now(), "scope": "openid mcp:tools",
    }));
    let result = call_hello(&app, &user).await;
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(result["structuredContent"]["email"], "kim@example.org");
    assert!(!graph.passthrough_seen());
}

/// The real binary on Container Apps' managed identity: a fake identity endpoint whose
/// tokens the issuer trusts as a federated credential, a fake Graph checking its tokens.
async fn managed_identity_world() -> (
    TestIssuer,
    FakeGraph,
    crate::support::fake_imds::FakeImds,
    crate::support::ServerProcess,
) {
    use crate::support::fake_imds::{FakeImds, IDENTITY_HEADER, MI_CLIENT_ID};
    let imds = FakeImds::start(EXCHANGE_AUDIENCE).await;
    let (issuer, graph) = entra_and_graph(imds.federated_credential(), &[CLIENT_ID]).await;
    let env = entra_env(&issuer);
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.extend([
        ("MCP_OBO__GRAPH__BASE_URL", graph.url.as_str()),
        ("IDENTITY_ENDPOINT", imds.endpoint.as_str()),
        ("IDENTITY_HEADER", IDENTITY_HEADER),
        ("OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID", MI_CLIENT_ID),
    ]);
    let server = crate::support::ServerProcess::start(crate::support::binary(), &env).await;
    server.wait_ready().await;
    (issuer, graph, imds, server)
}

#[tokio::test]
async fn an_absurd_managed_identity_expiry_fails_the_call_and_the_server_keeps_serving() {
    let (issuer, _graph, imds, server) = managed_identity_world().await;
    let call = |n: usize, method: &'static str| {
        let token = issuer.entra_token(json!({"oid": format!("mi-user-{n}")}));
        let url = server.mcp_url();
        async move {
            let body = request(1, method, json!({"name": "HelloTool"}));
            post_as(&url, &token, &body).await
        }
    };
    // The last one (year 9999) is representable; the identity library then caches it, so
    // it comes after the ones it refuses itself.
    for (n, expires_on) in [
        "18446744073709551615",
        "9223372036854775807",
        "253402300799",
    ]
    .into_iter()
    .enumerate()
    {
        imds.set_expires_on(Some(expires_on));
        let reply = call(n, "tools/call").await;
        assert_eq!(reply.status, 200, "{}\n{}", reply.text, server.stderr());
        let result = &reply.json.expect("json")["result"];
        let text = tool_error(result);
        assert!(
            text.contains("managed identity") && text.contains("operator"),
            "expires_on {expires_on}: {text}"
        );
    }
    imds.set_expires_on(None);
    assert_eq!(
        issuer.exchanges(),
        0,
        "no exchange with an absurd assertion"
    );
    let health = reqwest::get(format!("http://127.0.0.1:{}/healthz", server.port))
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200, "{}", server.stderr());
    let list = call(9, "tools/list").await;
    assert_eq!(list.status, 200, "{}\n{}", list.text, server.stderr());
    assert!(!server.stderr().contains("panicked"), "{}", server.stderr());
}

#[tokio::test]
async fn managed_identity_assertion_from_identity_endpoint_is_fetched_once_and_reused() {
    let (issuer, _graph, imds, server) = managed_identity_world().await;
    for n in 0..2 {
        let token = issuer.entra_token(json!({"oid": format!("mi-user-{n}"), "preferred_username": format!("mi{n}@contoso.com")}));
        let body = request(1, "tools/call", json!({"name": "HelloTool"}));
        let reply = post_as(&server.mcp_url(), &token, &body).await;
        let result = &reply.json.expect("json")["result"];
        assert_eq!(result["isError"], false, "{result}\n{}", server.stderr());
        assert_eq!(
            result["structuredContent"]["email"],
            format!("mi{n}@contoso.com")
        );
    }
    assert_eq!(issuer.exchanges(), 2);
    assert_eq!(
        imds.calls(),
        1,
        "the managed identity assertion is cached until shortly before expiry"
    );
}
