//! The integration tests, one module per capability, built as one test binary so the support
//! code (the app spawner, the fakes) and the dependency graph are compiled and linked once.
//!
//! Two suites stay binaries of their own because they read process-global state that the
//! other tests' in-process servers would move: `tests/telemetry_spans.rs` (the global
//! tracing subscriber and tracer provider) and `tests/mcp_fast_path.rs` (the Prometheus
//! registry's fast-path counter).

mod support;

mod auth_jwt;
mod auth_metadata;
mod config;
mod deploy_artifacts;
mod dev_mode;
mod hello_tool;
mod mcp_boundary;
mod mcp_protocol;
mod mcp_sessions;
mod node_peers;
mod obo_exchange;
mod peers_oauth;
mod platform_smoke;
mod shutdown;
mod telemetry_otlp;
