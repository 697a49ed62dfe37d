//! `auth.mode = easyauth`, behind Container Apps' built-in authentication: the principal
//! headers are required, and must name the same user as the token beside them, in every
//! documented spelling.

use crate::auth_requests::{Expect, check, entra_app, send};
use crate::support::tokens::{TENANT, TestIssuer, USER_OID, easy_auth_principal, now};
use serde_json::json;

/// (case name, headers, expectation).
type HeaderCase = (&'static str, Vec<(&'static str, String)>, Expect);

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
