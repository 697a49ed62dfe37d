//! Who a valid token speaks for: ID tokens are never admitted (not even as app-only callers
//! by the user's app roles), and in `oidc` mode client tokens are told from user tokens by
//! RFC 9068 (`typ`, `sub` = `client_id`). Which tools each may use is in `tool_access`.

use crate::auth_requests::{Expect, check, ready_app, with_token};
use crate::support::tokens::{TENANT, TestIssuer, USER_OID, VSCODE, now};
use crate::support::{entra_env, oidc_env};
use serde_json::{Value, json};

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
