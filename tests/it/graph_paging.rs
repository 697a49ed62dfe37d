//! UpcomingEvents through the real on-behalf-of exchange against the testkit's fake Graph,
//! which checks each token's `scp` per path and pages `calendarView` as Graph does: the
//! paging bound, next links that leave the Graph origin or API version refused before any
//! request (so no token goes there), each user seeing only their own calendar, and a user
//! without `Calendars.Read` consent getting the consent message while HelloTool works.

use serde_json::{Value, json};

use crate::support::fake_graph::{FakeGraph, calendar};
use crate::support::mcp_http::{post_as, request};
use crate::support::obo_world::{World, call_hello};
use crate::support::tokens::USER_OID;

const CALENDAR_VIEW: &str = "/v1.0/me/calendarView";

/// `count` events of `who`'s, in Graph's shape, the n-th titled `"{who} {n}"`.
fn events(who: &str, count: usize) -> Vec<Value> {
    calendar(who, count, None)
}

fn oid(n: usize) -> String {
    format!("{USER_OID}-{n}")
}

async fn upcoming(w: &World, token: &str, arguments: Value) -> Value {
    let body = request(
        3,
        "tools/call",
        json!({"name": "UpcomingEvents", "arguments": arguments}),
    );
    let reply = post_as(&w.app.mcp_url(), token, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json.expect("json")["result"].clone()
}

fn subjects(result: &Value) -> Vec<String> {
    assert_eq!(result["isError"], false, "{result}");
    result["structuredContent"]["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| e["subject"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn pages_are_followed_until_top_events_and_no_further() {
    let w = World::start(&[]).await;
    w.graph.set_events(&oid(1), events("Ada", 15));
    w.graph.cap_pages_at(5);
    let token = w.user(1);

    // top = 7 over pages of 5: two pages, cut at 7.
    let got = subjects(&upcoming(&w, &token, json!({"top": 7})).await);
    assert_eq!(got, (0..7).map(|n| format!("Ada {n}")).collect::<Vec<_>>());
    assert_eq!(w.graph.requests(CALENDAR_VIEW), 2);

    // top = 50 over 15 events: all three pages, then the last page has no next link.
    let got = subjects(&upcoming(&w, &token, json!({"top": 50})).await);
    assert_eq!(got.len(), 15);
    assert_eq!(w.graph.requests(CALENDAR_VIEW), 2 + 3);
}

/// A next link that points anywhere but the configured Graph origin and API version is an
/// error, and nothing (so no token) is sent to it.
async fn next_link_is_refused(w: &World, elsewhere: &FakeGraph, link: &str, path: &str) {
    w.graph.set_events(&oid(2), events("Grace", 12));
    w.graph.cap_pages_at(5);
    w.graph.point_next_links_at(link);
    let token = w.user(2);
    let result = upcoming(w, &token, json!({"top": 10})).await;
    assert_eq!(result["isError"], true, "{link}: {result}");
    assert!(
        text(&result).contains("next page"),
        "{link}: {}",
        text(&result)
    );
    assert!(!text(&result).contains("Grace 0"), "{}", text(&result));
    assert_eq!(elsewhere.requests(path), 0, "{link} was requested");
}

#[tokio::test]
async fn a_next_link_to_another_origin_is_refused_without_sending_the_token() {
    let w = World::start(&[]).await;
    let other = FakeGraph::start().await;
    let link = format!("{}{CALENDAR_VIEW}?$skip=5", other.url);
    next_link_is_refused(&w, &other, &link, CALENDAR_VIEW).await;
    assert!(other.seen_tokens().is_empty(), "a token went to {link}");
    // Same host, another port is another origin too.
    let port = other.url.rsplit(':').next().unwrap_or_default();
    let link = format!("http://localhost:{port}{CALENDAR_VIEW}?$skip=5");
    next_link_is_refused(&w, &other, &link, CALENDAR_VIEW).await;
    assert!(other.seen_tokens().is_empty(), "a token went to {link}");
}

#[tokio::test]
async fn a_next_link_to_another_api_version_is_refused_without_a_request() {
    let w = World::start(&[]).await;
    let link = format!("{}/beta/me/calendarView?$skip=5", w.graph.url);
    next_link_is_refused(&w, &w.graph, &link, "/beta/me/calendarView").await;
    // Only the first page was asked for, and only the exchanged token was ever sent.
    assert_eq!(w.graph.requests(CALENDAR_VIEW), 1);
    assert_eq!(w.graph.seen_tokens().len(), 1);
}

#[tokio::test]
async fn each_user_sees_only_their_own_events() {
    let w = World::start(&[]).await;
    w.graph.set_events(&oid(3), events("Ada", 3));
    w.graph.set_events(&oid(4), events("Grace", 4));
    let (ada, grace) = (w.user(3), w.user(4));
    for _ in 0..2 {
        let got = subjects(&upcoming(&w, &ada, json!({})).await);
        assert_eq!(got, ["Ada 0", "Ada 1", "Ada 2"]);
        let got = subjects(&upcoming(&w, &grace, json!({})).await);
        assert_eq!(got, ["Grace 0", "Grace 1", "Grace 2", "Grace 3"]);
    }
    // One exchange per user for Calendars.Read, each served from the cache the second time.
    assert_eq!(w.issuer.exchanges(), 2);
}

#[tokio::test]
async fn without_calendar_consent_the_calendar_tool_asks_for_it_and_hello_tool_still_works() {
    let w = World::start(&[]).await;
    w.issuer.configure_token_endpoint(|p| {
        p.withheld = vec![(oid(5), "Calendars.Read".into())];
    });
    w.graph.set_events(&oid(5), events("Ada", 2));
    let token = w.user(5);

    let result = upcoming(&w, &token, json!({})).await;
    assert_eq!(result["isError"], true, "{result}");
    let message = text(&result);
    assert!(message.contains("Calendars.Read"), "{message}");
    assert!(!message.contains("User.Read"), "{message}");
    assert_eq!(w.graph.requests(CALENDAR_VIEW), 0);

    let hello = call_hello(&w.app, &token).await;
    assert_eq!(hello["isError"], false, "{hello}");
    assert_eq!(hello["structuredContent"]["displayName"], "User 5");
}
