//! `mcp-obo dev` serves every registered tool's Graph endpoint and grants Graph permissions
//! the way Entra does: its on-behalf-of exchange mints a Graph token whose `scp`
//! is exactly what was asked, refuses a permission the user has not consented to
//! (`--without-consent`) with AADSTS65001, and its Graph emulator serves `calendarView` only
//! to a token holding `Calendars.Read`.

use serde_json::Value;

use crate::dev_mode::DevProcess;
use crate::support::dev_login::{self, SignIn};

const GRACE: &str = "Grace Hopper <grace@contoso.dev>";

/// The dev on-behalf-of exchange as the server makes it: `user`'s MCP token for `scope`.
async fn on_behalf_of(dev: &DevProcess, user: &SignIn, scope: &str) -> (u16, Value) {
    let assertion = std::fs::read_to_string(dev.state_dir().join("federated-token"))
        .expect("mcp-obo dev writes the federated token");
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("client_id", mcp_obo::devidp::DEV_APP),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion.trim()),
        ("assertion", user.access_token()),
        ("scope", scope),
        ("requested_token_use", "on_behalf_of"),
    ];
    let response = dev_login::http()
        .post(user.discovery.token_endpoint())
        .form(&form)
        .send()
        .await
        .expect("token endpoint answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

/// A Graph token for `user` with exactly `scp` (space-separated permission names).
async fn graph_token(dev: &DevProcess, user: &SignIn, scp: &str) -> String {
    let graph = dev.graph_url("");
    let scope: Vec<String> = scp.split(' ').map(|p| format!("{graph}/{p}")).collect();
    let (status, body) = on_behalf_of(dev, user, &scope.join(" ")).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    assert_eq!(dev_login::jwt_claims(&token)["scp"], scp, "{body}");
    token
}

async fn graph_get(dev: &DevProcess, path_and_query: &str, token: &str) -> (u16, Value) {
    let url = if path_and_query.starts_with("http") {
        path_and_query.to_owned()
    } else {
        dev.graph_url(path_and_query)
    };
    let response = dev_login::http()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("graph emulator answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

/// A window from now to `days` days ahead, as calendarView's query.
fn window(days: u64) -> String {
    let now = std::time::SystemTime::now();
    let end = now + std::time::Duration::from_secs(days * 86_400);
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "startDateTime",
            &humantime::format_rfc3339_seconds(now).to_string(),
        )
        .append_pair(
            "endDateTime",
            &humantime::format_rfc3339_seconds(end).to_string(),
        )
        .finish()
}

/// `GET /v1.0/me/calendarView` for the next `days` days, `$top` when given.
async fn calendar_view(dev: &DevProcess, days: u64, top: Option<u32>, token: &str) -> (u16, Value) {
    let top = top.map(|t| format!("&$top={t}")).unwrap_or_default();
    graph_get(
        dev,
        &format!("/v1.0/me/calendarView?{}{top}", window(days)),
        token,
    )
    .await
}

#[tokio::test]
async fn calendar_view_serves_the_users_upcoming_events_with_calendars_read_and_403_without() {
    let dev = DevProcess::start().await;
    let ada = dev_login::sign_in(&dev.mcp_url(), "ada@contoso.dev").await;
    let token = graph_token(&dev, &ada, "Calendars.Read").await;
    let (status, page) = calendar_view(&dev, 7, Some(2), &token).await;
    assert_eq!(status, 200, "{page}");
    let events = page["value"].as_array().expect("value");
    assert_eq!(events.len(), 2, "{page}");
    let first = &events[0];
    assert!(
        first["subject"]
            .as_str()
            .is_some_and(|s| s.ends_with("(Ada)")),
        "{first}"
    );
    assert_eq!(first["start"]["timeZone"], "UTC", "{first}");
    assert_eq!(
        first["organizer"]["emailAddress"]["address"],
        "ada@contoso.dev"
    );
    for key in [
        "end",
        "location",
        "isOnlineMeeting",
        "onlineMeeting",
        "webLink",
    ] {
        assert!(first.get(key).is_some(), "{key}: {first}");
    }
    // More remain within 7 days: the next page is on the emulator's own origin.
    let next = page["@odata.nextLink"]
        .as_str()
        .expect("nextLink")
        .to_owned();
    assert!(
        next.starts_with(&dev.graph_url("/v1.0/me/calendarView?")),
        "{next}"
    );
    let (status, rest) = graph_get(&dev, &next, &token).await;
    assert_eq!(status, 200, "{rest}");
    let rest = rest["value"].as_array().expect("value").clone();
    assert!(!rest.is_empty() && rest.iter().all(|e| !events.contains(e)));
    // The window filters: the event nine days out is only in a ten-day window.
    let (_, week) = calendar_view(&dev, 7, Some(50), &token).await;
    let (_, ten) = calendar_view(&dev, 10, Some(50), &token).await;
    assert_eq!(week["value"].as_array().map(Vec::len), Some(4), "{week}");
    assert_eq!(ten["value"].as_array().map(Vec::len), Some(5), "{ten}");
    assert!(week.get("@odata.nextLink").is_none(), "{week}");

    // A token with User.Read only: Graph's 403 for calendarView, /me still served.
    let profile_only = graph_token(&dev, &ada, "User.Read").await;
    let (status, denied) = calendar_view(&dev, 7, None, &profile_only).await;
    assert_eq!(status, 403, "{denied}");
    assert_eq!(denied["error"]["code"], "ErrorAccessDenied", "{denied}");
    let (status, me) = graph_get(&dev, "/v1.0/me", &profile_only).await;
    assert_eq!(
        (status, &me["mail"]),
        (200, &Value::from("ada@contoso.dev")),
        "{me}"
    );
}

#[tokio::test]
async fn each_dev_user_gets_their_own_calendar() {
    let dev = DevProcess::start().await;
    let alan = dev_login::sign_in(&dev.mcp_url(), "alan@contoso.dev").await;
    let token = graph_token(&dev, &alan, "Calendars.Read").await;
    let (_, page) = calendar_view(&dev, 31, Some(50), &token).await;
    let events = page["value"].as_array().expect("value");
    assert!(!events.is_empty(), "{page}");
    assert!(
        events.iter().all(
            |e| e["organizer"]["emailAddress"]["address"] == "alan@contoso.dev"
                && e["subject"].as_str().is_some_and(|s| s.ends_with("(Alan)"))
        ),
        "{page}"
    );
}

#[tokio::test]
async fn a_user_without_consent_to_calendars_read_gets_aadsts65001_while_user_read_works() {
    let dev =
        DevProcess::start_with(&["--user", GRACE, "--without-consent", "Calendars.Read"]).await;
    assert!(
        dev.banner()
            .await
            .contains(&format!("{GRACE} (not consented: Calendars.Read)")),
        "{}",
        dev.banner().await
    );
    let grace = dev_login::sign_in(&dev.mcp_url(), "grace@contoso.dev").await;
    let graph = dev.graph_url("");
    let (status, refused) = on_behalf_of(&dev, &grace, &format!("{graph}/Calendars.Read")).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "invalid_grant", "{refused}");
    assert_eq!(
        refused["error_codes"],
        serde_json::json!([65001]),
        "{refused}"
    );
    assert_eq!(refused["suberror"], "consent_required", "{refused}");
    assert!(
        refused["error_description"].as_str().is_some_and(
            |d| d.starts_with("AADSTS65001: The user or administrator has not consented")
        ),
        "{refused}"
    );
    let token = graph_token(&dev, &grace, "User.Read").await;
    let (status, me) = graph_get(&dev, "/v1.0/me", &token).await;
    assert_eq!(
        (status, &me["displayName"]),
        (200, &Value::from("Grace Hopper")),
        "{me}"
    );
    // `.default` is what she consented to: User.Read only.
    let (status, body) = on_behalf_of(&dev, &grace, &format!("{graph}/.default")).await;
    assert_eq!(status, 200, "{body}");
    let scp = dev_login::jwt_claims(body["access_token"].as_str().unwrap_or_default());
    assert_eq!(scp["scp"], "User.Read", "{body}");
}

#[tokio::test]
async fn without_consent_to_a_permission_no_tool_declares_is_refused_at_start() {
    let output = std::process::Command::new(crate::support::binary())
        .args(["dev", "--user", GRACE, "--without-consent", "Mail.Send"])
        .output()
        .expect("mcp-obo runs");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--without-consent \"Mail.Send\" is not a Graph permission of a registered tool; expected one of User.Read, Calendars.Read"),
        "{stderr}"
    );
}

/// The dev provider's consent URL for `scope`, as the server's consent message builds it.
fn consent_link(dev: &DevProcess, path: &str, scope: &str, redirect_uri: &str) -> url::Url {
    let mut link =
        url::Url::parse(&dev.idp_url(&format!("/{}{path}", mcp_obo::devidp::DEV_TENANT)))
            .expect("consent URL");
    link.query_pairs_mut()
        .append_pair("client_id", mcp_obo::devidp::DEV_APP)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", scope)
        .append_pair("prompt", "consent");
    link
}

#[tokio::test]
async fn admin_consent_grants_every_dev_user_and_returns_only_to_the_servers_own_page() {
    let dev =
        DevProcess::start_with(&["--user", GRACE, "--without-consent", "Calendars.Read"]).await;
    let scope = dev.graph_url("/Calendars.Read");
    let server_page = format!(
        "{}/consent/complete",
        dev.mcp_url().trim_end_matches("/mcp")
    );

    // Anywhere but the MCP server's /consent/complete is refused before any page is shown.
    for elsewhere in [
        "https://evil.example/consent/complete".to_owned(),
        format!("{}/other", dev.mcp_url().trim_end_matches("/mcp")),
    ] {
        let link = consent_link(&dev, "/oauth2/v2.0/authorize", &scope, &elsewhere);
        match dev_login::open_authorize(&link).await {
            dev_login::Authorize::Other { status, body } => {
                assert_eq!(status, 400, "{body}");
                assert!(body.contains("/consent/complete"), "{body}");
            }
            other => panic!("{elsewhere}: {other:?}"),
        }
    }

    let grace = dev_login::sign_in(&dev.mcp_url(), "grace@contoso.dev").await;
    let (status, _) = on_behalf_of(&dev, &grace, &scope).await;
    assert_eq!(status, 400);
    let link = consent_link(&dev, "/v2.0/adminconsent", &scope, &server_page);
    let dev_login::Authorize::Page(page) = dev_login::open_authorize(&link).await else {
        panic!("no admin consent page");
    };
    let landed = dev_login::choose_user(&page, "every dev user").await;
    assert!(
        landed.location.as_str().starts_with(&server_page),
        "{landed:?}"
    );
    assert_eq!(landed.get("admin_consent"), Some("True"), "{landed:?}");
    let (status, granted) = on_behalf_of(&dev, &grace, &scope).await;
    assert_eq!(status, 200, "{granted}");
}
