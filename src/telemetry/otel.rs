//! OpenTelemetry traces: the OTLP exporter (configured from the standard `OTEL_*`
//! variables by `settings.rs`), W3C trace-context propagation in and out.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler as SdkSampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::settings::{OtlpProtocol, Sampler, Settings as TelemetrySettings};

/// Why tracing export could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs a build with the otlp-grpc feature (on by default); set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf (port 4318) or rebuild with default features"
    )]
    GrpcNotBuilt,
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
}

/// A configured trace export: the provider, and for gRPC the Tokio runtime its channel
/// lives on.
pub struct Export {
    pub provider: SdkTracerProvider,
    /// tonic's channel needs a Tokio reactor, and telemetry starts before (and outlives)
    /// the server's actix runtime; the batch processor exports from its own thread, so the
    /// channel gets one small runtime of its own.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Export {
    /// An export through a provider built elsewhere (tests: an in-memory exporter).
    pub fn from_provider(provider: SdkTracerProvider) -> Self {
        Self {
            provider,
            runtime: None,
        }
    }

    /// Flushes and stops the export (then the gRPC runtime, without blocking).
    pub fn shutdown(self) {
        let _ = self.provider.force_flush();
        let _ = self.provider.shutdown();
        if let Some(runtime) = self.runtime {
            runtime.shutdown_background();
        }
    }
}

/// The export for the configured OTLP endpoint, or `None` when export is off.
///
/// # Errors
/// [`Error`] when the exporter cannot be built.
pub fn provider(settings: &TelemetrySettings) -> Result<Option<Export>, Error> {
    let Some(endpoint) = &settings.otlp_traces_endpoint else {
        return Ok(None);
    };
    let (exporter, runtime) = if settings.otlp_protocol == OtlpProtocol::Grpc {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-grpc")
            .enable_all()
            .build()
            .map_err(|e| Error::Exporter(format!("no runtime for the gRPC exporter: {e}")))?;
        let exporter = {
            let _context = runtime.enter();
            grpc_exporter(settings, endpoint)?
        };
        (exporter, Some(runtime))
    } else {
        (http_exporter(settings, endpoint)?, None)
    };
    Ok(Some(Export {
        provider: SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(sampler(settings.sampler))
            .with_resource(resource(settings))
            .build(),
        runtime,
    }))
}

#[cfg(feature = "otlp-grpc")]
fn grpc_exporter(
    settings: &TelemetrySettings,
    endpoint: &url::Url,
) -> Result<opentelemetry_otlp::SpanExporter, Error> {
    use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
    let mut headers = reqwest::header::HeaderMap::new();
    for (k, v) in &settings.otlp_headers {
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(k.as_bytes()),
            reqwest::header::HeaderValue::from_str(v.expose()),
        ) {
            headers.insert(name, value);
        }
    }
    let metadata = opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(headers);
    opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.as_str())
        .with_metadata(metadata)
        .build()
        .map_err(|e| Error::Exporter(e.to_string()))
}

#[cfg(not(feature = "otlp-grpc"))]
fn grpc_exporter(
    _: &TelemetrySettings,
    _: &url::Url,
) -> Result<opentelemetry_otlp::SpanExporter, Error> {
    Err(Error::GrpcNotBuilt)
}

fn http_exporter(
    settings: &TelemetrySettings,
    endpoint: &url::Url,
) -> Result<opentelemetry_otlp::SpanExporter, Error> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    let headers = settings
        .otlp_headers
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().to_owned()))
        .collect();
    opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(export_client()?)
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(endpoint.as_str())
        .with_headers(headers)
        .build()
        .map_err(|e| Error::Exporter(e.to_string()))
}

/// How long one export request may take (the OTLP exporters' default).
const EXPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The OTLP/HTTP client: the exporter's own would follow up to ten redirects, and reqwest
/// drops `Authorization` on a cross-host redirect but keeps the `OTEL_EXPORTER_OTLP_HEADERS`
/// (API keys), so a redirecting collector could collect them. Like every outgoing client
/// here it follows none and shares the process's TLS configuration.
fn export_client() -> Result<reqwest::blocking::Client, Error> {
    let tls = crate::outbound::tls_config().map_err(|e| Error::Exporter(e.to_string()))?;
    // reqwest's blocking client runs a runtime of its own, which cannot be started on a
    // runtime's thread: build it on a plain one.
    std::thread::spawn(move || {
        reqwest::blocking::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(crate::outbound::USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(EXPORT_TIMEOUT)
            .build()
    })
    .join()
    .map_err(|_| Error::Exporter("building the HTTP client panicked".into()))?
    .map_err(|e| Error::Exporter(e.to_string()))
}

/// `service.name`, `service.version` and the configured/detected attributes.
pub fn resource(settings: &TelemetrySettings) -> Resource {
    let mut attributes = vec![KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))];
    attributes.extend(
        settings
            .resource_attributes
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
    );
    Resource::builder()
        .with_service_name(settings.service_name.clone())
        .with_attributes(attributes)
        .build()
}

fn sampler(s: Sampler) -> SdkSampler {
    match s {
        Sampler::AlwaysOn => SdkSampler::AlwaysOn,
        Sampler::AlwaysOff => SdkSampler::AlwaysOff,
        Sampler::TraceIdRatio(r) => SdkSampler::TraceIdRatioBased(r),
        Sampler::ParentBasedAlwaysOn => SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOn)),
        Sampler::ParentBasedAlwaysOff => SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOff)),
        Sampler::ParentBasedTraceIdRatio(r) => {
            SdkSampler::ParentBased(Box::new(SdkSampler::TraceIdRatioBased(r)))
        }
    }
}

/// The tracer the tracing layer exports through.
pub fn tracer(provider: &SdkTracerProvider) -> opentelemetry_sdk::trace::Tracer {
    provider.tracer("mcp-obo")
}

struct HeaderInjector<'a>(&'a mut reqwest::header::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(key.as_bytes()),
            reqwest::header::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Headers carrying the current span's `traceparent`/`tracestate`, for an outgoing call.
pub fn outgoing_headers() -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    let span = tracing::Span::current();
    if span.is_disabled() {
        // No exporter, so no span and nothing to propagate: skip the propagator's work.
        return headers;
    }
    let cx = span.context();
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(&mut headers));
    headers
}

struct PairExtractor<'a>(&'a [(&'a str, &'a str)]);

impl Extractor for PairExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| *v)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| *k).collect()
    }
}

/// The context named by a W3C `traceparent` (and `tracestate`), e.g. from
/// `params._meta`; `None` when absent or malformed.
pub fn context_from(traceparent: Option<&str>, tracestate: Option<&str>) -> Option<Context> {
    let traceparent = traceparent?;
    let mut pairs = vec![("traceparent", traceparent)];
    if let Some(state) = tracestate {
        pairs.push(("tracestate", state));
    }
    let cx = TraceContextPropagator::new().extract(&PairExtractor(&pairs));
    use opentelemetry::trace::TraceContextExt;
    cx.span().span_context().is_valid().then_some(cx)
}

/// The current trace and span ids as hex, for log lines; `None` outside a trace. The
/// current tracing span's (an MCP or tool span, on whatever task rmcp runs it) when there is
/// one, else the attached context's (the HTTP server span).
pub fn current_ids() -> Option<(String, String)> {
    use opentelemetry::trace::TraceContextExt;
    let ids = |cx: &Context| {
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid()
            .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
    };
    let current = tracing::Span::current();
    (!current.is_disabled())
        .then(|| ids(&current.context()))
        .flatten()
        .or_else(|| ids(&Context::current()))
}
