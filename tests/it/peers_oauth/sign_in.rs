//! The TypeScript SDK signs in from the 401 alone and calls HelloTool on behalf of the user;
//! the MCP Inspector CLI calls it with a token from the same provider.

use serde_json::Value;

use super::{USER_EMAIL, USER_NAME, USER_SUB, World, e2e, find_step, run_node};

#[tokio::test]
async fn typescript_sdk_signs_in_at_oidc_provider_from_the_401_and_hello_tool_calls_graph_on_behalf_of_the_user()
 {
    let w = World::start().await;
    let started = std::time::Instant::now();
    let (_run, out) = w.oauth_client(&[]).await;
    let elapsed = started.elapsed();
    let issuer = w.provider.issuer();

    assert_hello_answered_for_the_user(&w, &out);
    let user_token = assert_discovered_and_signed_in(&w, &out, &issuer);
    let steps = out["steps"].as_array().expect("steps").clone();
    assert_the_spec_order(&w, &steps, &issuer);
    assert_graph_saw_only_the_exchanged_token(&w, &user_token, &issuer);
    eprintln!("sign-in + tools/list + HelloTool took {elapsed:?}");
}

/// The tool works, for the user who signed in, with data Graph gave for the exchanged token.
fn assert_hello_answered_for_the_user(w: &World, out: &Value) {
    assert_eq!(out["tools"][0]["name"], "HelloTool", "{out}");
    let call = &out["call"];
    assert_eq!(call["isError"], false, "{call}\n{}", w.logs());
    assert_eq!(call["structuredContent"]["email"], USER_EMAIL, "{call}");
    assert_eq!(
        call["structuredContent"]["displayName"], USER_NAME,
        "{call}"
    );
    let text = call["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains(USER_NAME), "{text}");
}

/// Discovered, not configured: the AS is the one the server's metadata names; the user's
/// token is a JWT for the MCP resource, from the registered client. Gives that token back.
fn assert_discovered_and_signed_in(w: &World, out: &Value, issuer: &str) -> String {
    assert_eq!(out["authorizationServer"], issuer);
    assert_eq!(out["issuer"], issuer);
    assert_eq!(out["resource"], w.resource);

    let user_token = out["accessToken"].as_str().expect("accessToken").to_owned();
    let claims = &out["accessTokenClaims"];
    assert_eq!(claims["iss"], issuer);
    assert_eq!(claims["aud"], w.resource);
    assert_eq!(claims["sub"], USER_SUB);
    assert_eq!(claims["client_id"], out["clientId"]);
    assert!(
        claims["scope"]
            .as_str()
            .is_some_and(|s| s.split(' ').any(|s| s == "mcp:tools")),
        "{claims}"
    );
    user_token
}

/// The order of events the MCP authorization spec prescribes.
fn assert_the_spec_order(w: &World, steps: &[Value], issuer: &str) {
    let prm_url = format!("{}/.well-known/oauth-protected-resource/mcp", w.public_url);
    assert_eq!(steps[0]["step"], "mcp", "{steps:?}");
    assert_eq!(steps[0]["status"], 401, "{}", steps[0]);
    assert_eq!(
        steps[0]["resourceMetadata"],
        prm_url.as_str(),
        "{}",
        steps[0]
    );
    assert_eq!(steps[0]["scope"], "mcp:tools", "{}", steps[0]);
    let prm = find_step(steps, 1, "protected resource metadata", |s| {
        s["step"] == "protected-resource-metadata"
    });
    assert_eq!(
        steps[prm]["url"], steps[0]["resourceMetadata"],
        "discovery must start from the challenge's resource_metadata"
    );
    assert_eq!(steps[prm]["status"], 200);
    assert_eq!(steps[prm]["authorizationServers"][0], issuer);
    let asm = find_step(steps, prm, "authorization server metadata", |s| {
        s["step"] == "authorization-server-metadata" && s["status"] == 200
    });
    assert!(
        steps[asm]["url"]
            .as_str()
            .is_some_and(|u| u.starts_with(&format!("{issuer}/.well-known/"))),
        "{}",
        steps[asm]
    );
    assert_eq!(steps[asm]["issuer"], issuer);
    let reg = find_step(steps, asm, "registration", |s| s["step"] == "registration");
    assert_eq!(steps[reg]["status"], 201, "{}", steps[reg]);
    assert_eq!(steps[reg]["tokenEndpointAuthMethod"], "none");
    let authorize = find_step(steps, reg, "authorize", |s| s["step"] == "authorize");
    let callback = find_step(steps, authorize, "callback", |s| s["step"] == "callback");
    assert_eq!(steps[callback]["hasCode"], true);
    assert_eq!(steps[callback]["stateMatches"], true);
    assert_eq!(
        steps[callback]["iss"], issuer,
        "RFC 9207 iss in the redirect"
    );
    let token = find_step(steps, callback, "token", |s| s["step"] == "token");
    assert_eq!(steps[token]["status"], 200, "{}", steps[token]);
    assert_eq!(steps[token]["grantType"], "authorization_code");
    assert_eq!(steps[token]["pkce"], true);
    assert_eq!(steps[token]["resource"], w.resource, "RFC 8707 resource");
    let called = find_step(steps, token, "tools/call", |s| {
        s["step"] == "mcp" && s["rpcMethod"] == "tools/call"
    });
    assert_eq!(steps[called]["status"], 200);
}

/// Graph saw only the exchanged token: signed by the provider, for Graph, same user, issued
/// to the MCP server acting for the user.
fn assert_graph_saw_only_the_exchanged_token(w: &World, user_token: &str, issuer: &str) {
    assert!(
        !w.graph.passthrough_seen(),
        "the user's token reached Graph"
    );
    let seen = w.graph.seen_tokens();
    assert!(!seen.is_empty(), "Graph was never called");
    assert!(
        !seen.iter().any(|t| t == user_token),
        "the user's token reached Graph"
    );
    let keys = w.keys.lock().expect("keys").clone();
    let graph_claims =
        crate::support::tokens::verify(&seen[0], &keys, std::slice::from_ref(&w.graph.url))
            .expect("Graph's token verifies with the provider's keys and audience");
    assert_eq!(graph_claims["sub"], USER_SUB);
    assert_eq!(graph_claims["iss"], issuer);
    assert_eq!(graph_claims["client_id"], "mcp-server");
    assert_eq!(graph_claims["act"]["sub"], "mcp-server");
    assert_eq!(graph_claims["preferred_username"], USER_EMAIL);
    assert!(
        w.provider.stderr().contains("token exchange for kc-user-1"),
        "{}",
        w.logs()
    );
}

#[tokio::test]
async fn mcp_inspector_cli_calls_hello_tool_with_a_token_from_oidc_provider() {
    let w = World::start().await;
    // A token for the MCP resource, obtained headlessly (no tool call).
    let (_run, out) = w.oauth_client(&["--tool", ""]).await;
    let token = out["accessToken"].as_str().expect("accessToken").to_owned();
    assert!(w.graph.seen_tokens().is_empty());

    // The Inspector CLI reads its own package.json relative to the working directory, so it
    // runs from its build directory.
    let build = e2e().join("node_modules/@modelcontextprotocol/inspector-cli/build");
    let inspector = |header: Option<String>| {
        let mut args = vec![
            build.join("index.js").to_string_lossy().into_owned(),
            w.server.mcp_url(),
            "--transport".into(),
            "http".into(),
            "--method".into(),
            "tools/call".into(),
            "--tool-name".into(),
            "HelloTool".into(),
        ];
        if let Some(h) = header {
            args.extend(["--header".into(), h]);
        }
        run_node(args, build.clone())
    };

    let run = inspector(Some(format!("Authorization: Bearer {token}"))).await;
    assert!(run.ok, "inspector-cli failed: {}\n{}", run.raw(), w.logs());
    let result: Value = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("inspector output is not JSON ({e}): {}", run.raw()));
    assert_eq!(result["isError"], false, "{result}\n{}", w.logs());
    assert_eq!(result["structuredContent"]["email"], USER_EMAIL, "{result}");
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains(USER_NAME), "{text}");
    assert!(!w.graph.passthrough_seen());
    assert!(!w.graph.seen_tokens().contains(&token));

    // Without the token the same call is refused with the challenge.
    let run = inspector(None).await;
    assert!(
        !run.ok,
        "inspector-cli succeeded without a token: {}",
        run.raw()
    );
    assert!(
        run.raw().contains("authorization required"),
        "expected the 401 body: {}",
        run.raw()
    );
}
