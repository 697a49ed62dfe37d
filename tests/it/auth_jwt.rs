//! Token validation as a resource server: a matrix of bad tokens and requests, each answered
//! with the right status and challenge; key rotation; issuer outage.

use crate::support::mcp_http::{ACCEPT_BOTH, Reply, initialize, post_raw, request};
use crate::support::tokens::{
    CLIENT_ID, OTHER_TENANT, TENANT, TestIssuer, USER_OID, VSCODE, easy_auth_principal, hs256_jwt,
    now, raw_jwt,
};
use crate::support::{StaticTokens, TestApp, entra_env, oidc_env, spawn_app_owned, wait_ready};
use serde_json::{Value, json};

const SCOPE: &str = "api://00000000-aaaa-bbbb-cccc-111111111111/user_impersonation";

async fn entra_app(issuer: &TestIssuer, extra: &[(&str, &str)]) -> TestApp {
    let mut env = entra_env(issuer);
    env.push(("MCP_OBO__AUTH__ALLOWED_CLIENT_APPS".into(), VSCODE.into()));
    ready_app(env, extra).await
}

/// The app for `env` plus `extra` settings, spawned and ready.
async fn ready_app(mut env: Vec<(String, String)>, extra: &[(&str, &str)]) -> TestApp {
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let app = spawn_app_owned(&env, StaticTokens::new("graph-token"));
    wait_ready(&app).await;
    app
}

/// A 2025-06-18 JSON-RPC request to `/mcp` with `authorization` (a full header value).
async fn rpc(app: &TestApp, authorization: &str, body: &Value) -> Reply {
    post_raw(
        &app.mcp_url(),
        serde_json::to_vec(body).expect("json"),
        &[
            ("content-type", "application/json"),
            ("accept", ACCEPT_BOTH),
            ("mcp-protocol-version", "2025-06-18"),
            ("authorization", authorization),
        ],
    )
    .await
}

async fn send(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![
        ("content-type", "application/json"),
        ("accept", ACCEPT_BOTH),
    ];
    all.extend_from_slice(headers);
    let body = serde_json::to_vec(&initialize("2025-06-18")).expect("json");
    post_raw(&app.url(path), body, &all).await
}

async fn with_token(app: &TestApp, token: &str) -> Reply {
    let value = format!("Bearer {token}");
    send(app, "/mcp", &[("authorization", value.as_str())]).await
}

/// Asserts a 401/403 challenge with `resource_metadata`, and the given `error` code.
fn assert_challenge(reply: &Reply, status: u16, error: Option<&str>) {
    assert_challenge_for(reply, status, error, "");
}

fn assert_challenge_for(reply: &Reply, status: u16, error: Option<&str>, case: &str) {
    assert_eq!(reply.status, status, "{case}: {}", reply.text);
    let header = reply
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("{case}: no WWW-Authenticate: {}", reply.text));
    assert!(header.starts_with("Bearer"), "{header}");
    assert!(
        header.contains(
            "resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
        ),
        "{case}: {header}"
    );
    match error {
        Some(code) => assert!(
            header.contains(&format!("error=\"{code}\"")),
            "{case}: {header}"
        ),
        None => assert!(!header.contains("error="), "{case}: {header}"),
    }
}

/// (case name, path, headers, expectation).
type RequestCase = (&'static str, String, Vec<(&'static str, String)>, Expect);
/// (case name, headers, expectation).
type HeaderCase = (&'static str, Vec<(&'static str, String)>, Expect);

#[derive(Debug, Clone, Copy)]
enum Expect {
    Ok,
    Unauthorized,      // 401, no error code
    InvalidToken,      // 401 invalid_token
    InsufficientScope, // 403 insufficient_scope
    BadRequest,        // 400 invalid_request
}

fn check(reply: &Reply, expect: Expect, case: &str) {
    match expect {
        Expect::Ok => assert_eq!(reply.status, 200, "{case}: {}", reply.text),
        Expect::Unauthorized => assert_challenge_for(reply, 401, None, case),
        Expect::InvalidToken => assert_challenge_for(reply, 401, Some("invalid_token"), case),
        Expect::InsufficientScope => {
            assert_challenge_for(reply, 403, Some("insufficient_scope"), case)
        }
        Expect::BadRequest => {
            assert_eq!(reply.status, 400, "{case}: {}", reply.text);
            let header = reply.header("www-authenticate").unwrap_or_default();
            assert!(
                header.contains("error=\"invalid_request\""),
                "{case}: {header}"
            );
        }
    }
}

/// Token cases: (name, claims overrides or a custom token builder, expectation).
fn token_cases(issuer: &TestIssuer) -> Vec<(&'static str, String, Expect)> {
    let t = |o: Value| issuer.entra_token(o);
    let now = now();
    let valid_claims = issuer.entra_claims(json!({}));
    let other_key = mcp_obo::jose::SigningKey::generate_rsa("key-1").expect("rsa");
    let stranger_key = mcp_obo::jose::SigningKey::generate_rsa("stranger").expect("rsa");
    let valid = t(json!({}));
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    let tampered_claims = issuer.entra_claims(json!({"oid": "someone-else"}));
    parts[1] = mcp_obo::jose::b64url(tampered_claims.to_string().as_bytes());
    let tampered = parts.join(".");
    let public_jwk = issuer.signer.lock().expect("lock").public_jwk().to_string();
    vec![
        ("valid v2 token", valid.clone(), Expect::Ok),
        (
            "audience as identifier URI",
            t(json!({"aud": format!("api://{CLIENT_ID}")})),
            Expect::Ok,
        ),
        (
            "valid v1 token",
            t(
                json!({"iss": format!("{}/{TENANT}/", issuer.base), "ver": "1.0", "azp": null, "appid": VSCODE}),
            ),
            Expect::Ok,
        ),
        (
            "expired within leeway",
            t(json!({"exp": now - 30})),
            Expect::Ok,
        ),
        (
            "expired",
            t(json!({"exp": now - 3600})),
            Expect::InvalidToken,
        ),
        (
            "not yet valid",
            t(json!({"nbf": now + 3600})),
            Expect::InvalidToken,
        ),
        (
            "wrong audience",
            t(json!({"aud": "api://someone-else"})),
            Expect::InvalidToken,
        ),
        (
            "audience list without us",
            t(json!({"aud": ["a", "b"]})),
            Expect::InvalidToken,
        ),
        (
            "wrong issuer",
            t(json!({"iss": "https://evil.example/v2.0"})),
            Expect::InvalidToken,
        ),
        (
            "issuer of another tenant",
            t(json!({"iss": issuer.entra_issuer(OTHER_TENANT)})),
            Expect::InvalidToken,
        ),
        (
            "wrong tenant",
            t(json!({"tid": OTHER_TENANT, "iss": issuer.entra_issuer(OTHER_TENANT)})),
            Expect::InvalidToken,
        ),
        ("missing tid", t(json!({"tid": null})), Expect::InvalidToken),
        ("missing exp", t(json!({"exp": null})), Expect::InvalidToken),
        (
            "missing oid and sub",
            t(json!({"oid": null, "sub": null})),
            Expect::InvalidToken,
        ),
        ("tampered payload", tampered, Expect::InvalidToken),
        (
            "alg none",
            raw_jwt(
                &json!({"alg": "none", "typ": "JWT", "kid": "key-1"}),
                &valid_claims,
                b"",
            ),
            Expect::InvalidToken,
        ),
        (
            "HS256 signed with the public key",
            hs256_jwt(
                &json!({"alg": "HS256", "typ": "JWT", "kid": "key-1"}),
                &valid_claims,
                public_jwk.as_bytes(),
            ),
            Expect::InvalidToken,
        ),
        (
            "unknown kid",
            stranger_key
                .sign("JWT", json!({}), &valid_claims)
                .expect("sign"),
            Expect::InvalidToken,
        ),
        (
            "right kid, wrong key",
            other_key
                .sign("JWT", json!({}), &valid_claims)
                .expect("sign"),
            Expect::InvalidToken,
        ),
        (
            "missing kid",
            {
                let signed = valid.clone();
                let claims_part = signed.split('.').nth(1).unwrap_or_default().to_owned();
                let sig = signed.split('.').nth(2).unwrap_or_default().to_owned();
                format!(
                    "{}.{claims_part}.{sig}",
                    mcp_obo::jose::b64url(br#"{"alg":"RS256","typ":"JWT"}"#)
                )
            },
            Expect::InvalidToken,
        ),
        (
            "header alg differs from the key's",
            {
                let claims_part = valid.split('.').nth(1).unwrap_or_default().to_owned();
                let sig = valid.split('.').nth(2).unwrap_or_default().to_owned();
                format!(
                    "{}.{claims_part}.{sig}",
                    mcp_obo::jose::b64url(br#"{"alg":"RS512","typ":"JWT","kid":"key-1"}"#)
                )
            },
            Expect::InvalidToken,
        ),
        (
            "crit header, empty list",
            sign_with_header(issuer, json!({"crit": []}), &valid_claims),
            Expect::InvalidToken,
        ),
        (
            "crit header, null",
            sign_with_header(issuer, json!({"crit": null}), &valid_claims),
            Expect::InvalidToken,
        ),
        (
            "crit header naming an extension",
            sign_with_header(issuer, json!({"crit": ["b64"], "b64": true}), &valid_claims),
            Expect::InvalidToken,
        ),
        (
            "crit header naming a registered claim",
            sign_with_header(issuer, json!({"crit": ["exp"]}), &valid_claims),
            Expect::InvalidToken,
        ),
        (
            "v2 issuer with a trailing slash",
            t(json!({"iss": format!("{}/", issuer.entra_issuer(TENANT))})),
            Expect::InvalidToken,
        ),
        (
            "v2 issuer with two trailing slashes",
            t(json!({"iss": format!("{}//", issuer.entra_issuer(TENANT))})),
            Expect::InvalidToken,
        ),
        (
            "v1 issuer without its trailing slash",
            t(
                json!({"iss": format!("{}/{TENANT}", issuer.base), "ver": "1.0", "azp": null, "appid": VSCODE}),
            ),
            Expect::InvalidToken,
        ),
        (
            "v1 issuer with two trailing slashes",
            t(
                json!({"iss": format!("{}/{TENANT}//", issuer.base), "ver": "1.0", "azp": null, "appid": VSCODE}),
            ),
            Expect::InvalidToken,
        ),
        ("not a JWT", "abc.def".to_owned(), Expect::InvalidToken),
        ("garbage segments", "a.b.c".to_owned(), Expect::InvalidToken),
        (
            "oversized token",
            format!("{}.{}", valid, "A".repeat(20_000)),
            Expect::InvalidToken,
        ),
        (
            "wrong client app",
            t(json!({"azp": "11111111-0000-0000-0000-000000000000"})),
            Expect::InvalidToken,
        ),
        (
            "missing scope",
            t(json!({"scp": "something_else"})),
            Expect::InsufficientScope,
        ),
        (
            "app-only token",
            t(json!({"scp": null, "roles": ["Tasks.Read"], "idtyp": "app"})),
            Expect::InsufficientScope,
        ),
        (
            "ID token: nonce, aud = client id, no scp",
            t(json!({"scp": null, "nonce": "n-0S6_WzA2Mj"})),
            Expect::InvalidToken,
        ),
        (
            "ID token without nonce, carrying the user's app roles",
            t(json!({"scp": null, "roles": ["Tasks.Read"]})),
            Expect::InvalidToken,
        ),
        (
            "a token with at_hash",
            t(json!({"at_hash": "77QmUPtjPfzWtF2AnpK9RQ"})),
            Expect::InvalidToken,
        ),
        (
            "a token with c_hash",
            t(json!({"c_hash": "LDktKdoQak3Pk0cnXxCltA"})),
            Expect::InvalidToken,
        ),
        (
            "idtyp user without delegated scopes",
            t(json!({"scp": null, "roles": ["Tasks.Read"], "idtyp": "user"})),
            Expect::InvalidToken,
        ),
    ]
}

/// `claims` signed with the issuer's current key, with `extra` header fields.
fn sign_with_header(issuer: &TestIssuer, extra: Value, claims: &Value) -> String {
    let key = issuer.signer.lock().expect("lock").clone();
    key.sign("JWT", extra, claims).expect("sign")
}

#[tokio::test]
async fn bad_tokens_are_refused_with_the_right_status_and_challenge() {
    let issuer = TestIssuer::start().await;
    let app = entra_app(&issuer, &[]).await;
    let cases = token_cases(&issuer);
    assert!(cases.len() >= 25);
    for (name, token, expect) in cases {
        let reply = with_token(&app, &token).await;
        check(&reply, expect, name);
    }
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_right_status_and_challenge() {
    let issuer = TestIssuer::start().await;
    let app = entra_app(&issuer, &[]).await;
    let token = issuer.entra_token(json!({}));
    let bearer = format!("Bearer {token}");
    let principal = easy_auth_principal(USER_OID, TENANT);
    let cases: Vec<RequestCase> = vec![
        ("no token", "/mcp".into(), vec![], Expect::Unauthorized),
        (
            "lowercase scheme",
            "/mcp".into(),
            vec![("authorization", format!("bearer {token}"))],
            Expect::Ok,
        ),
        (
            "webhook path",
            "/runtime/webhooks/mcp".into(),
            vec![("authorization", bearer.clone())],
            Expect::Ok,
        ),
        (
            "basic scheme",
            "/mcp".into(),
            vec![("authorization", "Basic dXNlcjpwYXNz".into())],
            Expect::Unauthorized,
        ),
        (
            "bearer without token",
            "/mcp".into(),
            vec![("authorization", "Bearer ".into())],
            Expect::BadRequest,
        ),
        (
            "bearer with spaces inside",
            "/mcp".into(),
            vec![("authorization", "Bearer a b".into())],
            Expect::BadRequest,
        ),
        (
            "token in the query string",
            format!("/mcp?access_token={token}"),
            vec![],
            Expect::BadRequest,
        ),
        (
            "token in the query string and header",
            format!("/mcp?access_token={token}"),
            vec![("authorization", bearer.clone())],
            Expect::BadRequest,
        ),
        (
            "forged Easy Auth headers outside easyauth mode",
            "/mcp".into(),
            vec![
                ("x-ms-client-principal", principal.clone()),
                ("x-ms-token-aad-access-token", token.clone()),
            ],
            Expect::Unauthorized,
        ),
    ];
    for (name, path, headers, expect) in cases {
        let borrowed: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = send(&app, &path, &borrowed).await;
        check(&reply, expect, name);
    }
    // Two Authorization headers cannot be sent through reqwest's header map merge, so send raw.
    let raw = raw_http(
        app.addr,
        &format!("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: {ACCEPT_BOTH}\r\nAuthorization: {bearer}\r\nAuthorization: {bearer}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"),
    )
    .await;
    assert!(
        raw.starts_with("HTTP/1.1 400"),
        "two Authorization headers: {raw}"
    );
}

#[tokio::test]
async fn es256_tokens_are_accepted_when_the_issuer_publishes_an_ec_key() {
    let issuer = TestIssuer::start().await;
    let ec = mcp_obo::jose::SigningKey::generate_ec("ec-1").expect("ec key");
    issuer.publish(&ec);
    let app = entra_app(&issuer, &[]).await;
    let token = ec
        .sign("JWT", json!({}), &issuer.entra_claims(json!({})))
        .expect("sign");
    assert_eq!(with_token(&app, &token).await.status, 200);
}

#[tokio::test]
async fn rotated_keys_are_fetched_when_an_unknown_kid_arrives() {
    let issuer = TestIssuer::start().await;
    let app = entra_app(
        &issuer,
        &[("MCP_OBO__AUTH__JWKS_MIN_REFRESH_INTERVAL", "0s")],
    )
    .await;
    assert_eq!(
        with_token(&app, &issuer.entra_token(json!({})))
            .await
            .status,
        200
    );
    let before = issuer.jwks_fetches();
    issuer.rotate("key-2");
    let reply = with_token(&app, &issuer.entra_token(json!({}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(issuer.jwks_fetches(), before + 1);
}

#[tokio::test]
async fn unknown_kid_refreshes_are_rate_limited() {
    let issuer = TestIssuer::start().await;
    let app = entra_app(
        &issuer,
        &[("MCP_OBO__AUTH__JWKS_MIN_REFRESH_INTERVAL", "1h")],
    )
    .await;
    let stranger = mcp_obo::jose::SigningKey::generate_rsa("stranger").expect("rsa");
    let claims = issuer.entra_claims(json!({}));
    let before = issuer.jwks_fetches();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let token = stranger.sign("JWT", json!({}), &claims).expect("sign");
        let url = app.mcp_url();
        tasks.push(tokio::spawn(async move {
            let auth = format!("Bearer {token}");
            let body = serde_json::to_vec(&initialize("2025-06-18")).expect("json");
            post_raw(
                &url,
                body,
                &[
                    ("content-type", "application/json"),
                    ("accept", ACCEPT_BOTH),
                    ("authorization", &auth),
                ],
            )
            .await
            .status
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("join"), 401);
    }
    assert!(
        issuer.jwks_fetches() <= before,
        "an unknown kid within the minimum interval must not refetch"
    );
}

#[tokio::test]
async fn cached_keys_keep_working_while_the_issuer_is_down() {
    let issuer = TestIssuer::start().await;
    let app = entra_app(
        &issuer,
        &[("MCP_OBO__AUTH__JWKS_MIN_REFRESH_INTERVAL", "0s")],
    )
    .await;
    issuer.set_down(true);
    // An unknown kid forces a refresh attempt, which fails...
    let stranger = mcp_obo::jose::SigningKey::generate_rsa("stranger").expect("rsa");
    let forged = stranger
        .sign("JWT", json!({}), &issuer.entra_claims(json!({})))
        .expect("sign");
    assert_eq!(with_token(&app, &forged).await.status, 401);
    // ...and the last good keys still validate real tokens.
    assert_eq!(
        with_token(&app, &issuer.entra_token(json!({})))
            .await
            .status,
        200
    );
    let ready = reqwest::get(app.url("/readyz")).await.expect("readyz");
    assert_eq!(ready.status().as_u16(), 200);
}

#[tokio::test]
async fn start_up_survives_an_issuer_outage_and_readiness_reports_it() {
    let issuer = TestIssuer::start().await;
    issuer.set_down(true);
    let mut env = entra_env(&issuer);
    env.push(("MCP_OBO__AUTH__ALLOWED_CLIENT_APPS".into(), VSCODE.into()));
    let app = spawn_app_owned(&env, StaticTokens::new("graph-token"));
    let ready = reqwest::get(app.url("/readyz")).await.expect("readyz");
    assert_eq!(ready.status().as_u16(), 503);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["checks"]["issuer_keys"], "failing");
    let reply = with_token(&app, &issuer.entra_token(json!({}))).await;
    assert_eq!(
        reply.status, 503,
        "no keys yet: retry later, not sign in again: {}",
        reply.text
    );
    issuer.set_down(false);
    wait_ready(&app).await;
    assert_eq!(
        with_token(&app, &issuer.entra_token(json!({})))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_discovery_document_behind_a_redirect_is_not_followed_and_no_keys_load() {
    use crate::support::redirector::Redirector;
    let issuer = TestIssuer::start().await;
    // The authority redirects to the real (fake Entra) discovery document, whose keys a
    // client that followed it would load.
    let redirector = Redirector::start(
        302,
        &format!(
            "{}/{TENANT}/v2.0/.well-known/openid-configuration",
            issuer.base
        ),
    )
    .await;
    let mut env = entra_env(&issuer);
    env.retain(|(k, _)| k != "MCP_OBO__ENTRA__AUTHORITY_HOST");
    env.push((
        "MCP_OBO__ENTRA__AUTHORITY_HOST".into(),
        redirector.url.clone(),
    ));
    env.push(("MCP_OBO__AUTH__ALLOWED_CLIENT_APPS".into(), VSCODE.into()));
    let app = spawn_app_owned(&env, StaticTokens::new("graph-token"));
    // Until the refresh has failed once and retried (its second request), or keys loaded.
    let ready = || async {
        let reply = reqwest::get(app.url("/readyz")).await.expect("readyz");
        reply.status().as_u16()
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while redirector.requests() < 2 && ready().await != 200 {
        assert!(tokio::time::Instant::now() < deadline, "no second attempt");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(ready().await, 503, "keys were loaded through the redirect");
    assert_eq!(issuer.jwks_fetches(), 0);
}

#[tokio::test]
async fn scope_hierarchy_counts_broader_scopes() {
    let issuer = TestIssuer::start().await;
    let app = entra_app(
        &issuer,
        &[
            ("MCP_OBO__AUTH__REQUIRED_SCOPES", "Tasks.Read"),
            (
                "MCP_OBO__AUTH__SCOPE_IMPLIES",
                "user_impersonation:Tasks.Read",
            ),
        ],
    )
    .await;
    assert_eq!(
        with_token(&app, &issuer.entra_token(json!({"scp": "Tasks.ReadWrite"})))
            .await
            .status,
        200
    );
    assert_eq!(
        with_token(
            &app,
            &issuer.entra_token(json!({"scp": "user_impersonation"}))
        )
        .await
        .status,
        200
    );
    let reply = with_token(&app, &issuer.entra_token(json!({"scp": "Other.Read"}))).await;
    assert_challenge(&reply, 403, Some("insufficient_scope"));
    let header = reply.header("www-authenticate").unwrap_or_default();
    assert!(
        header.contains("scope=\"api://00000000-aaaa-bbbb-cccc-111111111111/Tasks.Read\""),
        "{header}"
    );
}

#[tokio::test]
async fn a_tool_needing_another_scope_is_hidden_and_its_call_gets_403_naming_the_scopes() {
    let issuer = TestIssuer::start().await;
    let app = entra_app(
        &issuer,
        &[("MCP_OBO__AUTH__TOOL_SCOPES", "HelloTool:Profile.Read")],
    )
    .await;
    let basic = format!("Bearer {}", issuer.entra_token(json!({})));
    let list = rpc(&app, &basic, &request(2, "tools/list", json!({}))).await;
    assert_eq!(list.status, 200);
    let listed = list.json.expect("json")["result"]["tools"].clone();
    let names: Vec<&str> = listed
        .as_array()
        .map(|tools| tools.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        ["UpcomingEvents"],
        "HelloTool must be hidden: {listed}"
    );
    let call = rpc(
        &app,
        &basic,
        &request(3, "tools/call", json!({"name": "HelloTool"})),
    )
    .await;
    assert_challenge(&call, 403, Some("insufficient_scope"));
    let header = call.header("www-authenticate").unwrap_or_default();
    assert!(
        header.contains(&format!(
            "scope=\"{SCOPE} api://00000000-aaaa-bbbb-cccc-111111111111/Profile.Read\""
        )),
        "{header}"
    );
    // With the scope, the tool is listed and callable.
    let stepped_up = format!(
        "Bearer {}",
        issuer.entra_token(json!({"scp": "user_impersonation Profile.Read"}))
    );
    let list = rpc(&app, &stepped_up, &request(4, "tools/list", json!({}))).await;
    assert_eq!(
        list.json.expect("json")["result"]["tools"][0]["name"],
        "HelloTool"
    );
}

#[tokio::test]
async fn app_only_callers_admitted_by_role_cannot_use_user_tools() {
    let issuer = TestIssuer::start().await;
    let app = entra_app(&issuer, &[("MCP_OBO__AUTH__ACCEPTED_ROLES", "Tasks.Read")]).await;
    let token = issuer.entra_token(json!({"scp": null, "roles": ["Tasks.Read"], "idtyp": "app"}));
    let auth = format!("Bearer {token}");
    let call = rpc(
        &app,
        &auth,
        &request(3, "tools/call", json!({"name": "HelloTool"})),
    )
    .await;
    assert_eq!(call.status, 200, "{}", call.text);
    let result = &call.json.expect("json")["result"];
    assert_eq!(result["isError"], true);
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("signed-in user"),
        "{result}"
    );
}

#[tokio::test]
async fn multi_tenant_apps_accept_only_allowed_tenants() {
    let issuer = TestIssuer::start().await;
    let app = entra_app(
        &issuer,
        &[
            ("MCP_OBO__ENTRA__TENANT_ID", "organizations"),
            ("MCP_OBO__AUTH__ALLOWED_TENANTS", TENANT),
        ],
    )
    .await;
    assert_eq!(
        with_token(&app, &issuer.entra_token(json!({})))
            .await
            .status,
        200
    );
    let other =
        issuer.entra_token(json!({"tid": OTHER_TENANT, "iss": issuer.entra_issuer(OTHER_TENANT)}));
    assert_challenge(&with_token(&app, &other).await, 401, Some("invalid_token"));
}

#[tokio::test]
async fn oidc_mode_validates_against_any_issuer() {
    let issuer = TestIssuer::start().await;
    let env = oidc_env(&issuer);
    let app = spawn_app_owned(&env, StaticTokens::new("graph-token"));
    wait_ready(&app).await;
    let claims = json!({
        "iss": issuer.oidc_issuer(), "aud": "https://mcp.example.com/mcp", "sub": "user-1",
        "exp": now() + 600, "iat": now(), "scope": "openid mcp:tools", "client_id": "some-client"
    });
    assert_eq!(with_token(&app, &issuer.sign(&claims)).await.status, 200);
    let mut wrong = claims.clone();
    wrong["aud"] = json!("https://other.example/mcp");
    assert_challenge(
        &with_token(&app, &issuer.sign(&wrong)).await,
        401,
        Some("invalid_token"),
    );
    let mut no_scope = claims.clone();
    no_scope["scope"] = json!("openid");
    let reply = with_token(&app, &issuer.sign(&no_scope)).await;
    assert_challenge(&reply, 403, Some("insufficient_scope"));
    assert!(
        reply
            .header("www-authenticate")
            .unwrap_or_default()
            .contains("scope=\"mcp:tools\"")
    );
}

#[tokio::test]
async fn oidc_mode_compares_the_issuer_exactly() {
    let issuer = TestIssuer::start().await;
    let env = oidc_env(&issuer);
    let app = spawn_app_owned(&env, StaticTokens::new("graph-token"));
    wait_ready(&app).await;
    let claims = |iss: String| {
        json!({
            "iss": iss, "aud": "https://mcp.example.com/mcp", "sub": "user-1",
            "exp": now() + 600, "iat": now(), "scope": "openid mcp:tools",
        })
    };
    let exact = issuer.sign(&claims(issuer.oidc_issuer()));
    assert_eq!(with_token(&app, &exact).await.status, 200);
    for iss in [
        format!("{}/", issuer.oidc_issuer()),
        format!("{}//", issuer.oidc_issuer()),
        issuer.oidc_issuer().to_uppercase(),
        issuer.base.clone(),
    ] {
        let reply = with_token(&app, &issuer.sign(&claims(iss.clone()))).await;
        assert_challenge_for(&reply, 401, Some("invalid_token"), &iss);
    }
}

#[tokio::test]
async fn oidc_discovery_naming_another_issuer_keeps_the_server_not_ready() {
    let issuer = TestIssuer::start().await;
    let mut env = oidc_env(&issuer);
    // Configured with a trailing slash; the discovery document says `{base}/oidc`.
    for (k, v) in &mut env {
        if k == "MCP_OBO__AUTH__ISSUER" {
            *v = format!("{}/oidc/", issuer.base);
        }
    }
    let app = spawn_app_owned(&env, StaticTokens::new("graph-token"));
    let token = issuer.sign(&json!({
        "iss": format!("{}/oidc/", issuer.base), "aud": "https://mcp.example.com/mcp",
        "sub": "user-1", "exp": now() + 600, "iat": now(), "scope": "openid mcp:tools",
    }));
    // Give the first refresh (and a retry) time to run.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(1500);
    while tokio::time::Instant::now() < deadline {
        let ready = reqwest::get(app.url("/readyz")).await.expect("readyz");
        assert_eq!(
            ready.status().as_u16(),
            503,
            "a discovery document naming another issuer must not be trusted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(issuer.jwks_fetches() == 0, "the JWKS must not be fetched");
    let reply = with_token(&app, &token).await;
    assert_eq!(reply.status, 503, "{}", reply.text);
}

#[tokio::test]
async fn absurd_expiry_times_are_refused_and_the_server_keeps_serving() {
    let issuer = TestIssuer::start().await;
    let app = entra_app(&issuer, &[]).await;
    let cases = [
        json!({"exp": u64::MAX}),
        json!({"exp": i64::MAX}),
        json!({"exp": 1u64 << 63}),
        json!({"exp": 1u64 << 53}),
        json!({"exp": 253_402_300_800u64}),
        json!({"exp": 1.8e19}),
        json!({"nbf": u64::MAX}),
        json!({"nbf": i64::MAX, "exp": i64::MAX}),
    ];
    for overrides in cases {
        let token = issuer.entra_token(overrides.clone());
        // Twice: the second request would be answered from the validated-token cache.
        for attempt in 0..2 {
            let reply = with_token(&app, &token).await;
            assert_challenge_for(
                &reply,
                401,
                Some("invalid_token"),
                &format!("{overrides} (attempt {attempt})"),
            );
        }
        let good = with_token(&app, &issuer.entra_token(json!({}))).await;
        assert_eq!(good.status, 200, "after {overrides}: {}", good.text);
    }
}

#[tokio::test]
async fn a_cached_token_stops_working_once_its_key_is_withdrawn() {
    let issuer = TestIssuer::start().await;
    let app = entra_app(
        &issuer,
        &[
            ("MCP_OBO__AUTH__JWKS_REFRESH_INTERVAL", "1s"),
            ("MCP_OBO__AUTH__JWKS_MIN_REFRESH_INTERVAL", "1h"),
        ],
    )
    .await;
    let token = issuer.entra_token(json!({}));
    assert_eq!(with_token(&app, &token).await.status, 200);
    assert_eq!(with_token(&app, &token).await.status, 200, "cached");
    let before = issuer.jwks_fetches();
    issuer.rotate("key-2");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    // Two fetches: the first may have started before the rotation.
    while issuer.jwks_fetches() < before + 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the periodic refresh never ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Let the refresh that was just served be installed.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let reply = with_token(&app, &token).await;
    assert_challenge_for(&reply, 401, Some("invalid_token"), "withdrawn key");
    // Tokens signed with the new key work.
    assert_eq!(
        with_token(&app, &issuer.entra_token(json!({})))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn easyauth_mode_requires_the_principal_and_matches_it_to_the_token() {
    let issuer = TestIssuer::start().await;
    let app = entra_app(&issuer, &[("MCP_OBO__AUTH__MODE", "easyauth")]).await;
    let token = issuer.entra_token(json!({}));
    let bearer = format!("Bearer {token}");
    let good = easy_auth_principal(USER_OID, TENANT);
    let someone_else = easy_auth_principal("another-oid", TENANT);
    let cases: Vec<HeaderCase> = vec![
        (
            "token without principal",
            vec![("authorization", bearer.clone())],
            Expect::Unauthorized,
        ),
        (
            "principal and bearer",
            vec![
                ("authorization", bearer.clone()),
                ("x-ms-client-principal", good.clone()),
            ],
            Expect::Ok,
        ),
        (
            "principal and platform token header",
            vec![
                ("x-ms-client-principal", good.clone()),
                ("x-ms-token-aad-access-token", token.clone()),
            ],
            Expect::Ok,
        ),
        (
            "principal naming another user",
            vec![
                ("authorization", bearer.clone()),
                ("x-ms-client-principal", someone_else),
            ],
            Expect::InvalidToken,
        ),
        (
            "principal that is not base64 JSON",
            vec![
                ("authorization", bearer.clone()),
                ("x-ms-client-principal", "%%%".into()),
            ],
            Expect::InvalidToken,
        ),
        (
            "principal without any token",
            vec![("x-ms-client-principal", good.clone())],
            Expect::Unauthorized,
        ),
        (
            "principal with an invalid token",
            vec![
                ("x-ms-client-principal", good),
                (
                    "x-ms-token-aad-access-token",
                    issuer.entra_token(json!({"exp": now() - 3600})),
                ),
            ],
            Expect::InvalidToken,
        ),
    ];
    for (name, headers, expect) in cases {
        let borrowed: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        check(&send(&app, "/mcp", &borrowed).await, expect, name);
    }
}

#[tokio::test]
async fn easyauth_mode_accepts_the_documented_principal_headers_and_matches_the_user_by_what_is_present()
 {
    // Container Apps documents X-MS-CLIENT-PRINCIPAL-ID and -NAME; App Service (the same
    // module) also X-MS-CLIENT-PRINCIPAL and -IDP. The user is matched by whichever is present.
    let issuer = TestIssuer::start().await;
    let app = entra_app(&issuer, &[("MCP_OBO__AUTH__MODE", "easyauth")]).await;
    let bearer = format!("Bearer {}", issuer.entra_token(json!({})));
    let good = easy_auth_principal(USER_OID, TENANT);
    let with = |extra: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        let mut headers = vec![("authorization", bearer.clone())];
        headers.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        headers
    };
    let cases: Vec<HeaderCase> = vec![
        (
            "principal id only (Container Apps)",
            with(&[
                ("x-ms-client-principal-id", USER_OID),
                ("x-ms-client-principal-name", "ada@contoso.com"),
            ]),
            Expect::Ok,
        ),
        (
            "principal id of another user",
            with(&[("x-ms-client-principal-id", "another-oid")]),
            Expect::InvalidToken,
        ),
        (
            "principal id and claims that agree",
            with(&[
                ("x-ms-client-principal-id", USER_OID),
                ("x-ms-client-principal", good.as_str()),
            ]),
            Expect::Ok,
        ),
        (
            "principal id and claims that disagree",
            with(&[
                ("x-ms-client-principal-id", "another-oid"),
                ("x-ms-client-principal", good.as_str()),
            ]),
            Expect::InvalidToken,
        ),
        (
            "Entra as the identity provider",
            with(&[
                ("x-ms-client-principal-idp", "aad"),
                ("x-ms-client-principal-id", USER_OID),
            ]),
            Expect::Ok,
        ),
        (
            "another identity provider",
            with(&[
                ("x-ms-client-principal-idp", "github"),
                ("x-ms-client-principal-id", USER_OID),
            ]),
            Expect::InvalidToken,
        ),
        (
            "an empty principal id",
            with(&[("x-ms-client-principal-id", "")]),
            Expect::InvalidToken,
        ),
        (
            "only a display name",
            with(&[("x-ms-client-principal-name", "ada@contoso.com")]),
            Expect::Unauthorized,
        ),
    ];
    for (name, headers, expect) in cases {
        let borrowed: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        check(&send(&app, "/mcp", &borrowed).await, expect, name);
    }
}

async fn raw_http(addr: std::net::SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn in_session_mode_a_session_id_works_only_for_its_owner() {
    let issuer = TestIssuer::start().await;
    let app = entra_app(&issuer, &[("MCP_OBO__SERVER__SESSIONS", "true")]).await;
    let ada = format!("Bearer {}", issuer.entra_token(json!({})));
    let eve = format!(
        "Bearer {}",
        issuer.entra_token(json!({"oid": "eve-oid", "sub": "eve"}))
    );
    let init = with_token(&app, issuer.entra_token(json!({})).as_str()).await;
    assert_eq!(init.status, 200);
    let sid = init
        .header("mcp-session-id")
        .expect("session id minted")
        .to_owned();
    let ping = serde_json::to_vec(&request(2, "ping", json!({}))).expect("json");
    for (who, auth, expected) in [("eve", eve.as_str(), 404), ("ada", ada.as_str(), 200)] {
        let reply = post_raw(
            &app.mcp_url(),
            ping.clone(),
            &[
                ("content-type", "application/json"),
                ("accept", ACCEPT_BOTH),
                ("mcp-protocol-version", "2025-06-18"),
                ("mcp-session-id", sid.as_str()),
                ("authorization", auth),
            ],
        )
        .await;
        assert_eq!(reply.status, expected, "{who}: {}", reply.text);
    }
}

#[tokio::test]
async fn id_tokens_are_never_admitted_as_app_only_callers() {
    let issuer = TestIssuer::start().await;
    // No client-application allow-list (the default): only the token's claims decide.
    let roles = [("MCP_OBO__AUTH__ACCEPTED_ROLES", "Tasks.Read")];
    let app = ready_app(entra_env(&issuer), &roles).await;
    // What Entra puts in an ID token for this app: aud = its client id, no scp, no azp;
    // `roles` when the user is assigned an app role, `nonce` when the client asked.
    let id_token = json!({"scp": null, "azp": null, "roles": ["Tasks.Read"]});
    let mut with_nonce = id_token.clone();
    with_nonce["nonce"] = json!("n-0S6_WzA2Mj");
    let v1 = json!({
        "scp": null, "azp": null, "roles": ["Tasks.Read"], "ver": "1.0",
        "iss": format!("{}/{TENANT}/", issuer.base),
    });
    // A client-credentials token without the optional `idtyp`: the service principal is
    // both `sub` and `oid`.
    let service_principal =
        json!({"scp": null, "azp": VSCODE, "roles": ["Tasks.Read"], "sub": USER_OID});
    let app_token = json!({"scp": null, "azp": VSCODE, "roles": ["Tasks.Read"], "idtyp": "app"});
    for (case, overrides, expect) in [
        ("v2 ID token with nonce", with_nonce, Expect::InvalidToken),
        ("v2 ID token without nonce", id_token, Expect::InvalidToken),
        ("v1 ID token", v1, Expect::InvalidToken),
        ("app token, sub = oid", service_principal, Expect::Ok),
        ("app token, idtyp app", app_token, Expect::Ok),
    ] {
        let reply = with_token(&app, &issuer.entra_token(overrides)).await;
        check(&reply, expect, case);
    }
}

#[tokio::test]
async fn oidc_mode_tells_client_from_user_tokens_by_rfc_9068() {
    let issuer = TestIssuer::start().await;
    let roles = [("MCP_OBO__AUTH__ACCEPTED_ROLES", "Tasks.Read")];
    let app = ready_app(oidc_env(&issuer), &roles).await;
    let claims = |overrides: Value| {
        let mut claims = json!({
            "iss": issuer.oidc_issuer(), "aud": "https://mcp.example.com/mcp", "sub": "user-1",
            "exp": now() + 600, "iat": now(), "client_id": "some-client",
        });
        crate::support::tokens::merge(&mut claims, overrides);
        claims
    };
    let client = json!({"sub": "some-client"});
    let cases = [
        // Client credentials with a scope: app-only, whatever its scope says.
        (
            "at+jwt",
            json!({"sub": "some-client", "scope": "mcp:tools"}),
            Expect::InsufficientScope,
        ),
        (
            "at+jwt",
            json!({"sub": "some-client", "roles": ["Tasks.Read"]}),
            Expect::Ok,
        ),
        (
            "application/at+jwt",
            client.clone(),
            Expect::InsufficientScope,
        ),
        // A user with no `scope` claim is still a user, whose roles admit nothing.
        (
            "at+jwt",
            json!({"roles": ["Tasks.Read"]}),
            Expect::InsufficientScope,
        ),
        ("AT+JWT", json!({"scope": "mcp:tools"}), Expect::Ok),
        (
            "at+jwt",
            json!({"scope": "mcp:tools", "client_id": null}),
            Expect::InvalidToken,
        ),
        // Issuers that do not follow RFC 9068: an ID token is refused, sub = client_id
        // is still a client.
        (
            "JWT",
            json!({"scope": "mcp:tools", "nonce": "n-0S6"}),
            Expect::InvalidToken,
        ),
        (
            "JWT",
            json!({"sub": "some-client", "scope": "mcp:tools"}),
            Expect::InsufficientScope,
        ),
        ("JWT", json!({"scope": "mcp:tools"}), Expect::Ok),
    ];
    for (typ, overrides, expect) in cases {
        let case = format!("typ {typ}, {overrides}");
        let is_client = overrides["sub"] == "some-client";
        let reply = with_token(&app, &issuer.sign_typed(typ, &claims(overrides))).await;
        check(&reply, expect, &case);
        if matches!(expect, Expect::InsufficientScope) {
            let header = reply.header("www-authenticate").unwrap_or_default();
            let app_only = header.contains("app-only");
            assert_eq!(app_only, is_client, "{case}: {header}");
        }
    }
}

#[tokio::test]
async fn a_key_declaring_another_tenants_issuer_verifies_none_of_this_tenants_tokens() {
    let issuer = TestIssuer::start().await;
    let tenant_b_key = mcp_obo::jose::SigningKey::generate_rsa("tenant-b").expect("rsa");
    issuer.publish_with_issuer(&tenant_b_key, &issuer.entra_issuer(OTHER_TENANT));
    let app = entra_app(
        &issuer,
        &[
            ("MCP_OBO__ENTRA__TENANT_ID", "organizations"),
            (
                "MCP_OBO__AUTH__ALLOWED_TENANTS",
                &format!("{TENANT},{OTHER_TENANT}"),
            ),
        ],
    )
    .await;
    let sign = |claims: &Value| tenant_b_key.sign("JWT", json!({}), claims).expect("sign");
    let tenant_b =
        issuer.entra_claims(json!({"tid": OTHER_TENANT, "iss": issuer.entra_issuer(OTHER_TENANT)}));
    assert_eq!(with_token(&app, &sign(&tenant_b)).await.status, 200);
    let tenant_a = issuer.entra_claims(json!({}));
    let reply = with_token(&app, &sign(&tenant_a)).await;
    assert_challenge(&reply, 401, Some("invalid_token"));
    // The key set's other key declares no issuer and signs for either tenant.
    assert_eq!(with_token(&app, &issuer.sign(&tenant_a)).await.status, 200);
}

#[tokio::test]
async fn a_key_with_the_tenant_template_verifies_only_tokens_whose_issuer_names_their_tid() {
    let issuer = TestIssuer::start().await;
    let common = mcp_obo::jose::SigningKey::generate_rsa("common").expect("rsa");
    issuer.publish_with_issuer(&common, &format!("{}/{{tenantid}}/v2.0", issuer.base));
    let sign = |claims: &Value| common.sign("JWT", json!({}), claims).expect("sign");
    // Entra mode: the tenant's v2 token, and its v1 token (the same keys sign both).
    let entra = entra_app(&issuer, &[]).await;
    assert_eq!(
        with_token(&entra, &sign(&issuer.entra_claims(json!({}))))
            .await
            .status,
        200
    );
    let v1 = issuer.entra_claims(json!({
        "iss": format!("{}/{TENANT}/", issuer.base), "ver": "1.0", "azp": null, "appid": VSCODE,
    }));
    assert_eq!(with_token(&entra, &sign(&v1)).await.status, 200);
    // OIDC mode on the tenant's issuer checks no `tid` of its own: the key's template does.
    let mut env = oidc_env(&issuer);
    for (k, v) in &mut env {
        if k == "MCP_OBO__AUTH__ISSUER" {
            *v = issuer.entra_issuer(TENANT);
        }
    }
    let oidc = ready_app(env, &[]).await;
    let claims = |tid: Value| {
        json!({
            "iss": issuer.entra_issuer(TENANT), "aud": "https://mcp.example.com/mcp",
            "sub": "user-1", "exp": now() + 600, "iat": now(), "scope": "mcp:tools", "tid": tid,
        })
    };
    assert_eq!(
        with_token(&oidc, &sign(&claims(json!(TENANT))))
            .await
            .status,
        200
    );
    for tid in [json!(OTHER_TENANT), Value::Null] {
        let reply = with_token(&oidc, &sign(&claims(tid.clone()))).await;
        assert_challenge_for(&reply, 401, Some("invalid_token"), &tid.to_string());
    }
}
