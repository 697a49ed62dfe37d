//! Logs, traces and metrics.
//!
//! - [`init`]: the tracing subscriber: human-readable or JSON logs on stderr, plus — when an
//!   OTLP endpoint is configured — the OpenTelemetry layer exporting this crate's spans.
//! - `otel.rs`: exporter, sampler, resource, W3C propagation in and out.
//! - `settings.rs`: [`Settings`] (`[telemetry]` and the `OTEL_*` variables) and
//!   [`LogSettings`] (`[log]`).
//! - `metrics.rs`: Prometheus metrics and `/metrics`.
//! - [`QueryRedaction`]: keeps the query string (a client may put a token there) out of the
//!   HTTP server span.
//! - [`RequestLog`]: an info line per HTTP request (`log.requests = all`) or per failed one
//!   (the default), with the trace and span ids.
//! - `sanitize.rs`: [`bounded`] (request-derived values cut to 128 bytes before they are
//!   recorded) and [`escape`] (control characters made visible); `fields.rs`: the text log
//!   format's field formatter, which escapes them in every value and message.
//!
//! # Security
//! Nothing here records header values or bodies (tokens travel in both), and dependency
//! crates that can log request data at debug/trace (hyper, h2, reqwest, rustls, azure_core)
//! are capped at info whatever the configured level. A value a request chose (an id, a
//! method, a tool name, a claim) is [`bounded`] before it is recorded, and no text log line
//! can be split or restyled by a value in it: rmcp is capped at error (its warnings echo
//! request ids) and every field is escaped.

mod fields;
pub mod metrics;
pub mod otel;
mod query;
mod sanitize;
mod settings;
mod writer;

pub use query::QueryRedaction;
pub use sanitize::{MAX_VALUE_BYTES, TRUNCATED, bounded, escape, strip};
pub use settings::{LogFormat, LogSettings, OtlpProtocol, RequestLogging, Sampler, Settings};
pub use writer::write_audit;

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Dependencies that may log request/response data below info, and rmcp, whose warnings
/// (`response error`, `rejected peer request`) echo the request id and error message: what
/// this server's MCP layer logs itself is bounded (`mcp/handler.rs`).
const CAPPED: &str = "rmcp=error,hyper=info,hyper_util=info,h2=info,reqwest=info,rustls=info,azure_core=info,azure_identity=info,tower=info,actix_http=info,opentelemetry=info,opentelemetry_sdk=info,opentelemetry_otlp=info";

/// The log target of audit events (`mcp/audit.rs`): their JSON lines name it, and
/// `mcp_obo::audit=off` in the log level turns them off.
pub const AUDIT_TARGET: &str = "mcp_obo::audit";

/// Keeps the trace export alive; flushes pending spans when dropped.
#[must_use = "dropping the guard flushes and stops trace export"]
pub struct Telemetry {
    export: Option<otel::Export>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn tracing_enabled(&self) -> bool {
        self.export.is_some()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        writer::flush();
        if let Some(export) = self.export.take() {
            export.shutdown();
        }
    }
}

fn filter(settings: &LogSettings) -> EnvFilter {
    let base = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| settings.level.clone());
    EnvFilter::try_new(format!("{base},{CAPPED}"))
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{CAPPED}")))
}

/// Installs the global subscriber (logs, and traces when configured).
///
/// Telemetry never stops the server: a trace export this binary cannot set up (a gRPC
/// endpoint in a build without `otlp-grpc`, an exporter that fails to build) is logged as
/// one warning and export stays off; the MCP server serves regardless. Hosting platforms
/// inject `OTEL_*` settings of their own (the Container Apps agent: gRPC on 4317), so an
/// exit here would take the whole revision down for want of traces.
pub fn init(log: &LogSettings, telemetry: &Settings) -> Telemetry {
    let (export, failure) = match otel::provider(telemetry) {
        Ok(export) => (export, None),
        Err(e) => (None, Some(e)),
    };
    install(log, export.as_ref().map(|e| e.provider.clone()));
    for warning in &telemetry.warnings {
        tracing::warn!("telemetry setting not honoured: {warning}");
    }
    if let Some(e) = failure {
        tracing::warn!(error = %e, "trace export is off: {e}");
    }
    Telemetry { export }
}

/// Installs the subscriber with a given tracer provider (tests use an in-memory exporter).
pub fn init_with_provider(log: &LogSettings, provider: SdkTracerProvider) -> Telemetry {
    install(log, Some(provider.clone()));
    Telemetry {
        export: Some(otel::Export::from_provider(provider)),
    }
}

/// Log lines on stderr, text or JSON.
///
/// Written directly (audit events, one per call, are batched apart: `writer.rs`): a writer
/// thread for every line (tried) added context switches and a 4 MB channel and made the
/// latency tail worse under load (BENCHMARKS.md). Colours only on a terminal. Text
/// fields are escaped (`fields.rs`); JSON needs no help (serde escapes every string).
fn fmt_layer<S>(log: &LogSettings) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use std::io::IsTerminal;
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    match log.format {
        LogFormat::Text => fmt.fmt_fields(fields::EscapedFields).boxed(),
        // JSON lines name their target, so a collector can route audit events apart.
        LogFormat::Json => fmt.with_target(true).json().flatten_event(true).boxed(),
    }
}

fn install(log: &LogSettings, provider: Option<SdkTracerProvider>) {
    use tracing_subscriber::filter::{FilterExt, filter_fn};
    // Only this crate's spans (and its info+ events) are exported: one span per hop, not
    // per dependency poll.
    let Some(provider) = provider else {
        // No exporter: logs are events only, and the filters are global so a span's
        // callsite is disabled outright — no span is created on the hot path (a per-layer
        // filter would still register each one).
        let _ = tracing_subscriber::registry()
            .with(filter(log))
            .with(filter_fn(|meta| meta.is_event()))
            .with(fmt_layer(log))
            .try_init();
        return;
    };
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    opentelemetry::global::set_tracer_provider(provider.clone());
    let otel = tracing_opentelemetry::layer()
        .with_tracer(otel::tracer(&provider))
        .with_filter(filter_fn(|meta| {
            meta.target().starts_with("mcp_obo")
                && (meta.is_span() || *meta.level() <= tracing::Level::INFO)
        }));
    // Logs are events only: spans exist for the exporter.
    let fmt = fmt_layer(log).with_filter(filter(log).and(filter_fn(|meta| meta.is_event())));
    // Err only means a subscriber is already installed (tests, repeated init): keep it.
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
}

/// The request-log middleware's setting, in the app data.
#[derive(Clone, Copy)]
pub struct RequestLog {
    all: bool,
}

impl RequestLog {
    pub fn new(requests: RequestLogging) -> Self {
        Self {
            all: requests == RequestLogging::All,
        }
    }

    /// Logs a line for each request (or each failed one) once the response is ready.
    pub async fn log(
        req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
        let all = req
            .app_data::<actix_web::web::Data<RequestLog>>()
            .is_none_or(|r| r.all);
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.path().to_owned();
        let (trace_id, span_id) = otel::current_ids().unzip();
        let result = next.call(req).await;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match &result {
            Ok(res) if all || res.status().is_client_error() || res.status().is_server_error() => {
                tracing::info!(
                    http.request.method = %bounded(method.as_str()),
                    url.path = %bounded(&path),
                    http.response.status_code = res.status().as_u16(),
                    duration_us = micros,
                    trace_id = trace_id.as_deref().unwrap_or(""),
                    span_id = span_id.as_deref().unwrap_or(""),
                    "request"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(
                http.request.method = %bounded(method.as_str()),
                url.path = %bounded(&path),
                error = %e,
                duration_us = micros,
                trace_id = trace_id.as_deref().unwrap_or(""),
                span_id = span_id.as_deref().unwrap_or(""),
                "request failed"
            ),
        }
        result
    }
}
