//! UpcomingEvents end to end through `mcp-obo dev`: the real sign-in, the server's
//! per-tool on-behalf-of exchange (`Calendars.Read` only), the Graph emulator's
//! `calendarView` with its paging, and the typed surface's argument validation. A user who
//! has not consented to `Calendars.Read` gets the consent link for exactly it while
//! HelloTool keeps working.

use serde_json::{Value, json};

use crate::dev_mode::DevProcess;
use crate::support::dev_login;
use crate::support::mcp_http::{post_as, request};

/// `tools/call` of `name` with `arguments` as the signed-in `token`; the tool result.
async fn call(dev: &DevProcess, token: &str, name: &str, arguments: Value) -> Value {
    let reply = post_as(
        &dev.mcp_url(),
        token,
        &request(
            7,
            "tools/call",
            json!({"name": name, "arguments": arguments}),
        ),
    )
    .await;
    assert_eq!(reply.status, 200, "{}\n{}", reply.text, dev.logs());
    let body = reply.json.expect("JSON-RPC response");
    assert!(body["error"].is_null(), "{body}");
    body["result"].clone()
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn upcoming_events_lists_the_users_own_events_up_to_top_and_names_a_bad_argument() {
    let dev = DevProcess::start().await;
    let ada = dev_login::sign_in(&dev.mcp_url(), "ada@contoso.dev").await;
    let token = ada.access_token();

    let result = call(&dev, token, "UpcomingEvents", json!({"days": 7, "top": 3})).await;
    assert_eq!(result["isError"], false, "{result}\n{}", dev.logs());
    let events = result["structuredContent"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(events.len(), 3, "{result}");
    // The emulator's fixtures end each subject with the user's first name: Ada's only.
    for event in &events {
        let subject = event["subject"].as_str().unwrap_or_default();
        assert!(subject.contains("(Ada)"), "{subject}");
    }

    for (arguments, field) in [
        (json!({"days": 40}), "days"),
        (json!({"top": 0}), "top"),
        (json!({"days": "soon"}), "days"),
    ] {
        let result = call(&dev, token, "UpcomingEvents", arguments.clone()).await;
        assert_eq!(result["isError"], true, "{arguments}: {result}");
        assert!(
            text(&result).contains(field),
            "{arguments}: {}",
            text(&result)
        );
    }
}

#[tokio::test]
async fn without_consent_to_calendars_read_upcoming_events_links_to_exactly_it_and_hello_tool_works()
 {
    let dev = DevProcess::start_with(&[
        "--user",
        "Grace Hopper <grace@contoso.dev>",
        "--without-consent",
        "Calendars.Read",
    ])
    .await;
    let grace = dev_login::sign_in(&dev.mcp_url(), "grace@contoso.dev").await;
    let token = grace.access_token();

    let events = call(&dev, token, "UpcomingEvents", json!({})).await;
    assert_eq!(events["isError"], true, "{events}");
    let message = text(&events);
    assert!(message.contains("Calendars.Read"), "{message}");
    let link = message
        .split_whitespace()
        .find(|w| w.contains("/oauth2/v2.0/authorize?"))
        .unwrap_or_else(|| panic!("no consent link in {message}"));
    let link = url::Url::parse(link).expect("a URL");
    let scope = link
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned());
    assert_eq!(scope, Some(dev.graph_url("/Calendars.Read")), "{message}");
    assert!(
        link.query_pairs()
            .any(|(k, v)| k == "redirect_uri" && v.ends_with("/consent/complete")),
        "{message}"
    );

    let hello = call(&dev, token, "HelloTool", json!({})).await;
    assert_eq!(hello["isError"], false, "{hello}\n{}", dev.logs());
    assert!(text(&hello).contains("Grace Hopper"), "{hello}");

    // Following the link: the dev provider's consent page, accepted as Grace, returns to the
    // server's page; the tool then works.
    let dev_login::Authorize::Page(page) = dev_login::open_authorize(&link).await else {
        panic!("the consent link does not open the dev provider's consent page");
    };
    let landed = dev_login::choose_user(&page, "grace@contoso.dev").await;
    assert_eq!(landed.location.path(), "/consent/complete", "{landed:?}");
    assert!(landed.get("code").is_some(), "{landed:?}");
    let page = dev_login::http()
        .get(landed.location.as_str())
        .send()
        .await
        .expect("the consent page answers");
    assert_eq!(page.status(), 200);
    let events = call(&dev, token, "UpcomingEvents", json!({})).await;
    assert_eq!(events["isError"], false, "{events}\n{}", dev.logs());
}
