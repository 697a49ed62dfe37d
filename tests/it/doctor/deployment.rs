//! Step 5 and whole set-ups: a running server (correct, and with the wrong public_url), and
//! `mcp-obo dev` with every check passing.

use super::*;

/// A running `serve` configured against the fake, at `public_url` (maybe not its own).
async fn server(world: &World, port: u16, public_url: &str) -> ServerProcess {
    let env = world.server_env(public_url);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    ServerProcess::start_on(binary(), port, &env).await
}

#[tokio::test]
async fn against_a_correctly_configured_running_server_everything_passes() {
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let world = World::start(Broken::Nothing, &format!("{public}/mcp")).await;
    let server = server(&world, port, &public).await;
    let output = world.doctor_deployment(&public, &server).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(lines_with(&text, "WARN ").is_empty(), "{text}");
    let base = &world.base;
    for line in [
        format!(
            "PASS deployment.challenge: 401 with resource_metadata {public}/.well-known/oauth-protected-resource/mcp ("
        ),
        format!("PASS deployment.metadata: resource {public}/mcp ("),
        format!(
            "PASS deployment.authorization_server: {base}/{TENANT}/v2.0/.well-known/openid-configuration answers ("
        ),
        format!(
            "PASS deployment.scopes: advertises api://{APP}/user_impersonation, all defined by the app registration"
        ),
    ] {
        assert!(text.contains(&line), "missing {line:?}:\n{text}");
    }
}

#[tokio::test]
async fn a_server_with_the_wrong_public_url_fails_the_metadata_check_with_the_url_to_set() {
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let world = World::start(Broken::Nothing, &format!("{public}/mcp")).await;
    // Deployed with another host's URL (as when a custom domain is added but the app still
    // says its default one).
    let server = server(&world, port, "https://mcp-old.contoso.example").await;
    let output = world.doctor_deployment(&public, &server).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_eq!(
        lines_with(&text, "FAIL "),
        vec![format!(
            "FAIL deployment.metadata: the challenge names https://mcp-old.contoso.example/.well-known/oauth-protected-resource/mcp, but the metadata of {public}/mcp is at {public}/.well-known/oauth-protected-resource/mcp: server.public_url is not the URL clients use\n    fix: set server.public_url (MCP_OBO__SERVER__PUBLIC_URL) to {public}"
        )],
        "{text}"
    );
}

#[tokio::test]
async fn against_mcp_obo_dev_every_check_passes() {
    let dev = crate::dev_mode::DevProcess::start().await;
    let state = dev.state_dir();
    let mut cmd = Command::new(binary());
    cmd.arg("--config")
        .arg(state.join("doctor.toml"))
        .arg("doctor")
        .arg("--graph-token-file")
        .arg(state.join("graph-token"))
        .args(["--url", &dev.mcp_url()])
        .env_clear()
        .env("PATH", "/nonexistent")
        .env("HOME", state);
    let output = run(cmd).await;
    let text = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        lines_with(&text, "WARN ").is_empty() && lines_with(&text, "FAIL ").is_empty(),
        "{text}"
    );
    assert!(
        text.ends_with("23 passed, 0 warnings, 0 failed\n"),
        "{text}"
    );
    assert!(
        dev.banner().await.contains("doctor --graph-token-file"),
        "the banner shows the doctor command"
    );
    let token = std::fs::read_to_string(state.join("graph-token")).expect("token");
    assert!(!text.contains(token.trim()));
}

/// A deployment that challenges as it should but whose metadata's `resource` carries terminal
/// control sequences (erase the line, return to its start, print a PASS); its base URL.
async fn deployment_answering_control_characters() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let challenge =
        format!("Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\"");
    let app = axum::Router::new()
        .route(
            "/mcp",
            axum::routing::post(move || {
                let challenge = challenge.clone();
                async move { (StatusCode::UNAUTHORIZED, [("www-authenticate", challenge)]) }
            }),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            axum::routing::get(|| async {
                axum::Json(json!({
                    "resource": "x\u{1b}[2K\rPASS deployment.metadata: resource fine",
                    "authorization_servers": [],
                }))
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

#[tokio::test]
async fn control_characters_from_a_deployment_are_escaped_and_url_passwords_are_hidden() {
    let world = World::start(Broken::Nothing, &mcp_url()).await;
    let base = deployment_answering_control_characters().await;
    let origin = base.clone();
    let url = format!("{}/mcp", base.replacen("http://", "http://ops:hunter2@", 1));
    let output = world.doctor(PUBLIC, &["--url", &url]).await;
    let text = stdout(&output);
    assert!(!text.contains(['\u{1b}', '\r']), "{text:?}");
    assert!(!text.contains("hunter2"), "{text}");
    let shown = url.replace("hunter2", "***");
    assert_eq!(
        lines_with(&mask_latency(&text), "FAIL deployment.metadata"),
        failure(
            &format!(
                "FAIL deployment.metadata: the metadata says resource x\\x1b[2K\\rPASS deployment.metadata: resource fine, not {shown}: clients refuse it (RFC 9728 §3.3) (N ms)"
            ),
            &format!("set server.public_url (MCP_OBO__SERVER__PUBLIC_URL) to {origin}")
        ),
        "{text}"
    );
    assert!(
        text.lines()
            .all(|l| !l.starts_with("PASS deployment.metadata")),
        "{text}"
    );
}
