//! The integration tests, one module per capability, built as one test binary so the
//! dependency graph is linked once. The support code (the app spawner, the fakes) is the
//! `mcp-obo-testkit` crate (`testkit/`), shared with the load tool.
//!
//! Two suites stay binaries of their own because they read process-global state that the
//! other tests' in-process servers would move: `tests/telemetry_spans.rs` (the global
//! tracing subscriber and tracer provider) and `tests/mcp_fast_path.rs` (the Prometheus
//! registry's fast-path counter).

/// The shared fakes and app spawner (the `mcp-obo-testkit` crate in `testkit/`), under the
/// name the test modules use, plus what only this package's own test targets know: where cargo
/// put the `mcp-obo` binary.
mod support {
    pub use mcp_obo_testkit::*;

    /// Path of the `mcp-obo` binary cargo built for these tests.
    pub fn binary() -> &'static str {
        env!("CARGO_BIN_EXE_mcp-obo")
    }
}

mod architecture;
mod audit;
mod auth_callers;
mod auth_easyauth;
mod auth_issuers;
mod auth_jwt;
mod auth_keys;
mod auth_metadata;
/// Requests and answer checks the inbound-authorization modules share.
mod auth_requests;
mod config;
mod consent;
mod dashboards;
mod deploy_artifacts;
mod dev_mode;
mod dev_mode_consent;
mod dev_mode_hardening;
mod doctor;
mod graph_paging;
mod graph_transport;
mod hello_tool;
mod limits;
mod mcp_boundary;
mod mcp_protocol;
mod mcp_sessions;
mod node_peers;
mod obo_assertions;
mod obo_cae;
mod obo_exchange;
mod peers_oauth;
mod platform_smoke;
mod shared_cache;
mod shared_cache_entra;
mod shutdown;
mod telemetry_logs;
mod telemetry_otlp;
mod tool_access;
mod untrusted_values;
mod upcoming_events;
mod workbook;
