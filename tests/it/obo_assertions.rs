//! The client assertion the exchange authenticates with, from each source a deployment uses:
//! a workload identity token file (read again after rotation; a missing one is the operator's
//! problem), a client secret (never printed), a certificate (`private_key_jwt` with its
//! thumbprint and a fresh `jti`), and Container Apps' managed identity endpoint (fetched once
//! and reused; an absurd expiry fails the call, not the server).

use crate::support::entra_env;
use crate::support::fake_graph::FakeGraph;
use crate::support::mcp_http::tool_error;
use crate::support::mcp_http::{post_as, request};
use crate::support::obo_world::{
    EXCHANGE_AUDIENCE, World, call_hello, entra_and_graph, write_sa_token,
};
use crate::support::tokens::{CLIENT_ID, TestIssuer};
use mcp_obo::jose::SigningKey;
use serde_json::{Value, json};

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
