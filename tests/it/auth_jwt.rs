//! Token validation as a resource server: a matrix of bad tokens and requests, each answered
//! with the right status and challenge, and expiry times no clock can reach. Which issuers are
//! trusted is in `auth_issuers`, ID tokens and client tokens told from user tokens in
//! `auth_callers`, the issuer's keys in `auth_keys`, Easy Auth in `auth_easyauth`, which tools
//! a valid caller may use in `tool_access`.

use crate::auth_requests::{Expect, assert_challenge_for, check, entra_app, send, with_token};
use crate::support::mcp_http::ACCEPT_BOTH;
use crate::support::tokens::{
    CLIENT_ID, OTHER_TENANT, TENANT, TestIssuer, USER_OID, VSCODE, easy_auth_principal, hs256_jwt,
    now, raw_jwt,
};
use serde_json::{Value, json};

/// (case name, path, headers, expectation).
type RequestCase = (&'static str, String, Vec<(&'static str, String)>, Expect);

/// Token cases: (name, claims overrides or a custom token builder, expectation). One table on
/// purpose: it is the specification, a row for each way a token can be wrong (or just right).
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

async fn raw_http(addr: std::net::SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}
