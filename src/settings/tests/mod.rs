//! The loader: layering, sources, every problem at once. Beside this file:
//! `cross_section.rs` (the checks across sections), `entra.rs` (Entra's defaults, resolved),
//! `obo.rs` and `shared_cache.rs` (`[obo]` and `[obo.shared_cache]`).

mod cross_section;
mod entra;
mod obo;
mod shared_cache;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `auth.mode = entra` with the app's tenant and client ids in the platform's variables.
const ENTRA: &[(&str, &str)] = &[
    ("MCP_OBO__AUTH__MODE", "entra"),
    ("AZURE_TENANT_ID", "11111111-2222-3333-4444-555555555555"),
    ("AZURE_CLIENT_ID", "66666666-7777-8888-9999-000000000000"),
];

/// [`ENTRA`] and `extra`.
fn entra_env(extra: &[(&str, &str)]) -> Env {
    env(&[ENTRA, extra].concat())
}

#[test]
fn defaults_load_and_listen_on_loopback() {
    let loaded = load(None, &env(&[])).expect("defaults are valid");
    assert_eq!(loaded.settings.server.listen.to_string(), "127.0.0.1:7071");
    assert_eq!(
        loaded.settings.server.public_url.as_str(),
        "http://127.0.0.1:7071/"
    );
    assert_eq!(loaded.effective["server.listen"].1, Source::Default);
}

#[test]
fn functions_port_wins_over_project_env() {
    // Authorized (entra): auth.mode = none is refused under the Functions host.
    let loaded = load(
        None,
        &entra_env(&[
            ("MCP_OBO__SERVER__LISTEN", "127.0.0.1:9000"),
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "8123"),
        ]),
    )
    .expect("valid");
    assert_eq!(loaded.settings.server.listen.port(), 8123);
    assert_eq!(
        loaded.effective["server.listen"].1,
        Source::Env("FUNCTIONS_CUSTOMHANDLER_PORT".into())
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let Err(Error::Invalid(problems)) = load(
        None,
        &env(&[
            ("MCP_OBO__SERVER__LISTEN", "nowhere"),
            ("MCP_OBO__GRAPH__TIMEOUT", "soon"),
            ("MCP_OBO__LOG__FORMAT", "xml"),
            ("MCP_OBO__LOG__REQUESTS", "some"),
            ("MCP_OBO__SERVER__NOPE", "1"),
        ]),
    ) else {
        panic!("bad values must be rejected");
    };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    for key in [
        "server.listen",
        "graph.timeout",
        "log.format",
        "log.requests",
        "server.nope",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
}

fn problems(pairs: &[(&str, &str)]) -> Vec<Problem> {
    match load(None, &env(pairs)) {
        Err(Error::Invalid(problems)) => problems,
        Err(e) => panic!("expected configuration problems, got {e}"),
        Ok(_) => panic!("expected configuration problems for {pairs:?}"),
    }
}

#[test]
fn defaults_put_metrics_on_their_own_loopback_listener() {
    let loaded = load(None, &env(&[])).expect("defaults are valid");
    let metrics = loaded.settings.telemetry.metrics_listen;
    assert_eq!(
        metrics.map(|a| a.to_string()).as_deref(),
        Some("127.0.0.1:9464")
    );
}

#[test]
fn the_metrics_listener_cannot_be_the_main_listener() {
    for (listen, metrics) in [
        ("127.0.0.1:7071", "127.0.0.1:7071"),
        ("127.0.0.1:7071", "0.0.0.0:7071"),
    ] {
        let found = problems(&[
            ("MCP_OBO__SERVER__LISTEN", listen),
            ("MCP_OBO__TELEMETRY__METRICS_LISTEN", metrics),
        ]);
        assert!(
            found
                .iter()
                .any(|p| p.key == "telemetry.metrics_listen" && p.message.contains(listen)),
            "{listen} / {metrics}: {found:?}"
        );
    }
    load(
        None,
        &env(&[("MCP_OBO__TELEMETRY__METRICS_LISTEN", "127.0.0.1:7072")]),
    )
    .expect("another port is fine");
}

#[test]
fn a_platform_variable_does_not_stop_authorized_modes() {
    load(None, &entra_env(&[("KUBERNETES_SERVICE_HOST", "10.0.0.1")]))
        .expect("entra on a platform is fine");
    // An empty variable is no platform.
    load(None, &env(&[("WEBSITE_HOSTNAME", " ")])).expect("empty is unset");
}

#[test]
fn plain_http_graph_is_only_for_loopback() {
    assert!(
        load(
            None,
            &env(&[("MCP_OBO__GRAPH__BASE_URL", "http://127.0.0.1:1")])
        )
        .is_ok()
    );
    assert!(
        load(
            None,
            &env(&[("MCP_OBO__GRAPH__BASE_URL", "http://graph.example")])
        )
        .is_err()
    );
}

#[test]
fn list_values_split_on_commas_from_env() {
    let loaded = load(
        None,
        &entra_env(&[(
            "MCP_OBO__SERVER__ALLOWED_HOSTS",
            "a.example, b.example:8443",
        )]),
    )
    .expect("valid");
    assert_eq!(
        loaded.settings.server.allowed_hosts,
        vec!["a.example".to_owned(), "b.example:8443".to_owned()]
    );
}

#[test]
fn several_bad_keys_in_one_section_are_all_reported_with_their_source() {
    let found = problems(&[
        ("MCP_OBO__GRAPH__TIMEOUT", "soon"),
        ("MCP_OBO__GRAPH__CONNECT_TIMEOUT", "later"),
        ("MCP_OBO__GRAPH__BASE_URL", "http://graph.example"),
    ]);
    for key in ["graph.timeout", "graph.connect_timeout", "graph.base_url"] {
        let problem = found
            .iter()
            .find(|p| p.key == key)
            .unwrap_or_else(|| panic!("{key} missing from {found:?}"));
        let var = format!(
            "env MCP_OBO__{}",
            key.to_ascii_uppercase().replace('.', "__")
        );
        assert!(problem.message.contains(&var), "{problem}");
    }
    assert_eq!(found.len(), 3, "{found:?}");
}

#[test]
fn checks_about_a_replaced_value_are_not_reported() {
    // A bad mode stands in as the default (none), which the platform check would refuse:
    // only the bad value itself is reported.
    let found = problems(&[
        ("MCP_OBO__AUTH__MODE", "sometimes"),
        ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
    ]);
    let about_mode: Vec<&Problem> = found.iter().filter(|p| p.key == "auth.mode").collect();
    assert_eq!(about_mode.len(), 1, "{found:?}");
    assert!(
        about_mode[0]
            .message
            .contains("none, entra, oidc or easyauth"),
        "{}",
        about_mode[0]
    );
}

#[test]
fn a_file_may_hold_typed_values_and_lists_as_strings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("mcp-obo.toml");
    std::fs::write(
        &file,
        "[server]\nmax_body_bytes = 2048\nsessions = true\nallowed_hosts = \"a.example, b.example\"\ntrusted_proxies = [\"10.0.0.1\"]\n[obo]\nmax_retries = 0\n",
    )
    .expect("write config");
    let loaded = load(Some(&file), &entra_env(&[])).expect("valid");
    let server = &loaded.settings.server;
    assert_eq!(server.max_body_bytes, 2048);
    assert!(server.sessions);
    assert_eq!(server.allowed_hosts, vec!["a.example", "b.example"]);
    assert_eq!(server.trusted_proxies.len(), 1);
    assert_eq!(loaded.settings.obo.max_retries, 0);
    assert_eq!(
        loaded.effective["server.sessions"].1,
        Source::File(file.clone())
    );
}

#[test]
fn the_platform_federation_is_detected_and_shown_as_derived() {
    let loaded = load(
        None,
        &entra_env(&[("IDENTITY_ENDPOINT", "http://127.0.0.1:42356/msi/token")]),
    )
    .expect("valid");
    assert_eq!(
        loaded.settings.obo.client_assertion,
        Some(crate::obo::AssertionKind::ManagedIdentity)
    );
    assert_eq!(
        loaded.effective["obo.client_assertion"],
        (
            "managed_identity".to_owned(),
            Source::Derived("IDENTITY_ENDPOINT")
        )
    );
    // Without inbound authorization nothing is detected.
    let local = load(
        None,
        &env(&[("IDENTITY_ENDPOINT", "http://127.0.0.1:42356/msi/token")]),
    )
    .expect("valid");
    assert_eq!(local.settings.obo.client_assertion, None);
}

#[test]
fn the_platform_host_name_is_the_public_url() {
    let loaded = load(
        None,
        &entra_env(&[
            ("CONTAINER_APP_HOSTNAME", "mcp.example.com"),
            ("MCP_OBO__SERVER__TRUSTED_PROXIES", "10.0.0.1"),
        ]),
    )
    .expect("valid");
    let server = &loaded.settings.server;
    assert_eq!(server.public_url.as_str(), "https://mcp.example.com/");
    assert!(server.public_url_explicit);
    assert!(server.forwarding_proxies().is_empty());
    // Derived from the listen address, the trusted proxies may say the public URL.
    let local = load(
        None,
        &entra_env(&[("MCP_OBO__SERVER__TRUSTED_PROXIES", "10.0.0.1")]),
    )
    .expect("valid");
    assert!(!local.settings.server.public_url_explicit);
    assert_eq!(local.settings.server.forwarding_proxies().len(), 1);
}

#[test]
fn a_configured_public_url_must_be_https_unless_loopback() {
    let found = problems(&[("MCP_OBO__SERVER__PUBLIC_URL", "http://mcp.example.com")]);
    assert!(
        found
            .iter()
            .any(|p| p.key == "server.public_url" && p.message.contains("plain http")),
        "{found:?}"
    );
}

#[test]
fn every_default_key_is_a_field_of_its_section() {
    // deny_unknown_fields on every section: a key in defaults.toml that no struct reads
    // (or a field missing from defaults.toml) fails here, before any user sees it.
    let loaded = load(None, &env(&[])).expect("defaults are valid");
    let keys: Vec<&String> = loaded.effective.keys().collect();
    for key in [
        "server.listen",
        "auth.mode",
        "entra.tenant_id",
        "obo.grant",
        "graph.timeout",
        "telemetry.metrics",
        "log.requests",
    ] {
        assert!(
            keys.iter().any(|k| *k == key),
            "{key} missing from {keys:?}"
        );
    }
}
