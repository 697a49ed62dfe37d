//! Which tools a valid caller may use: the required scopes with their hierarchy (a broader
//! scope counts), a tool needing a scope of its own (hidden from `tools/list`, its call a 403
//! naming the scopes to ask for), and app-only callers kept from tools that act for a user.

use crate::auth_requests::{assert_challenge, entra_app, rpc, with_token};
use crate::support::mcp_http::request;
use crate::support::tokens::TestIssuer;
use serde_json::json;

/// The server's own scope, which every token here carries.
const SCOPE: &str = "api://00000000-aaaa-bbbb-cccc-111111111111/user_impersonation";

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
