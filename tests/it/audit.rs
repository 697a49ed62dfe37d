//! The audit event: one JSON line per tool call from the real binary (`log_format = json`),
//! with who called (user, tenant, client app, the acting agent the token names), which
//! tool, the Graph permissions it used, the outcome, the duration and the trace id, and
//! never a token, an argument or anything Graph answered.

use serde_json::{Value, json};

use crate::support::fake_graph::calendar;
use crate::support::mcp_http::{post_as, request};
use crate::support::obo_world::Federation;
use crate::support::tokens::{TENANT, VSCODE};
use crate::support::{ServerProcess, binary};

const ADA: &str = "0c5a6f10-0000-4000-8000-0000000a0d1e";
const AGENT: &str = "5d2c9e77-0000-4000-8000-00000000a9e7";

async fn call(server: &ServerProcess, token: &str, name: &str, arguments: Value) -> Value {
    let body = request(
        1,
        "tools/call",
        json!({"name": name, "arguments": arguments}),
    );
    let reply = post_as(&server.mcp_url(), token, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json.expect("json")["result"].clone()
}

/// The audit lines the server has written so far, parsed.
fn audit_events(server: &ServerProcess) -> Vec<Value> {
    server
        .stderr()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["audit"] == true)
        .collect()
}

/// The fake Entra and Graph, and the real binary (workload identity, JSON logs, `extra`).
struct World {
    issuer: crate::support::tokens::TestIssuer,
    graph: crate::support::fake_graph::FakeGraph,
    server: ServerProcess,
    _dir: tempfile::TempDir,
}

async fn start(extra: &[(&str, &str)]) -> World {
    let Federation {
        issuer,
        graph,
        dir,
        mut env,
        ..
    } = Federation::start().await;
    env.push(("MCP_OBO__LOG__FORMAT".to_owned(), "json".to_owned()));
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let borrowed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = ServerProcess::start(binary(), &borrowed).await;
    server.wait_ready().await;
    World {
        issuer,
        graph,
        server,
        _dir: dir,
    }
}

#[tokio::test]
async fn audit_events_are_off_with_mcp_obo_audit_off_in_the_log_level() {
    let w = start(&[("MCP_OBO__LOG__LEVEL", "info,mcp_obo::audit=off")]).await;
    let token = w
        .issuer
        .entra_token(json!({"oid": ADA, "name": "Ada Lovelace"}));
    let hello = call(&w.server, &token, "HelloTool", json!({})).await;
    assert_eq!(hello["isError"], false, "{hello}");
    let stopped = w.server.terminate().await;
    assert!(audit_events(&stopped).is_empty(), "{}", stopped.stderr());
}

#[tokio::test]
async fn each_tool_call_writes_one_audit_event_with_who_what_and_outcome_and_no_token() {
    let World {
        issuer,
        graph,
        server,
        _dir,
    } = start(&[]).await;
    let secret_subject = "Board meeting: acquisition of Fabrikam";
    graph.set_events(ADA, calendar(secret_subject, 1, None));
    let token = issuer.entra_token(json!({
        "oid": ADA,
        "name": "Ada Lovelace",
        "preferred_username": "ada@contoso.com",
        "azp": VSCODE,
        "xms_par_app_azp": AGENT,
        "xms_act_fct": "3",
    }));

    let hello = call(&server, &token, "HelloTool", json!({})).await;
    assert_eq!(hello["isError"], false, "{hello}");
    let events = call(&server, &token, "UpcomingEvents", json!({"days": 2})).await;
    assert_eq!(events["isError"], false, "{events}");
    let bad = call(&server, &token, "UpcomingEvents", json!({"days": 99})).await;
    assert_eq!(bad["isError"], true, "{bad}");

    // Audit lines are written in batches (telemetry/writer.rs): wait for them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut audit = audit_events(&server);
    while audit.len() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        audit = audit_events(&server);
    }
    assert_eq!(audit.len(), 3, "one event per call: {audit:#?}");
    for (event, (tool, permission, outcome)) in audit.iter().zip([
        ("HelloTool", "User.Read", "ok"),
        ("UpcomingEvents", "Calendars.Read", "ok"),
        ("UpcomingEvents", "Calendars.Read", "tool_error"),
    ]) {
        assert_eq!(event["target"], "mcp_obo::audit", "{event}");
        assert_eq!(event["gen_ai.tool.name"], tool, "{event}");
        assert_eq!(event["graph.permissions"], permission, "{event}");
        assert_eq!(event["outcome"], outcome, "{event}");
        assert_eq!(event["user.oid"], ADA, "{event}");
        assert_eq!(event["user.tid"], TENANT, "{event}");
        assert_eq!(event["client.app"], VSCODE, "{event}");
        assert_eq!(event["agent.app"], AGENT, "{event}");
        assert_eq!(event["agent.facet"], "3", "{event}");
        assert!(event["duration_ms"].as_f64().is_some(), "{event}");
        assert!(event.get("trace_id").is_some(), "{event}");
    }

    // No token (the user's, or any Graph token issued for it), no argument, no Graph data.
    let logs = server.stderr();
    let mut secrets = graph.seen_tokens();
    secrets.push(token.clone());
    assert!(secrets.len() >= 3);
    for secret in &secrets {
        let signature = secret.rsplit('.').next().unwrap_or(secret);
        assert!(
            !logs.contains(signature),
            "a token's signature is in the log"
        );
    }
    for line in audit.iter().map(Value::to_string) {
        assert!(!line.contains("eyJ"), "{line}");
        assert!(!line.contains(secret_subject), "{line}");
        assert!(!line.contains("Ada Lovelace"), "{line}");
        assert!(!line.contains("\"99\"") && !line.contains(":99"), "{line}");
    }

    // The line of a call just before the server stops is not lost.
    let last = call(&server, &token, "HelloTool", json!({})).await;
    assert_eq!(last["isError"], false, "{last}");
    let stopped = server.terminate().await;
    assert_eq!(audit_events(&stopped).len(), 4, "{}", stopped.stderr());
}
