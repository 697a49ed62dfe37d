//! `[telemetry]` (metrics; traces from the standard `OTEL_*` variables) and `[log]`.

use std::net::SocketAddr;

use serde::{Deserialize, Deserializer};
use url::Url;

use crate::config::{Problem, Secret, de};

/// Traces (OpenTelemetry, configured by the standard `OTEL_*` variables) and metrics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `/metrics` in Prometheus text format.
    #[serde(deserialize_with = "de::flag")]
    pub metrics: bool,
    /// Where `/metrics` is served: its own listener, by default on loopback (127.0.0.1:9464)
    /// so the public listener never shows it; blank serves it on the main listener.
    #[serde(deserialize_with = "metrics_listen")]
    pub metrics_listen: Option<SocketAddr>,
    /// OTLP traces endpoint (full URL); `None` turns tracing export off.
    #[serde(skip)]
    pub otlp_traces_endpoint: Option<Url>,
    #[serde(skip)]
    pub otlp_protocol: OtlpProtocol,
    /// `OTEL_EXPORTER_OTLP_HEADERS` (e.g. an API key); values are secrets.
    #[serde(skip)]
    pub otlp_headers: Vec<(String, Secret)>,
    #[serde(skip)]
    pub service_name: String,
    /// `OTEL_RESOURCE_ATTRIBUTES` plus what the platform's variables reveal.
    #[serde(skip)]
    pub resource_attributes: Vec<(String, String)>,
    #[serde(skip)]
    pub sampler: Sampler,
    /// `OTEL_*` values this binary cannot honour, each with what was done instead. They are
    /// the platform's as often as the operator's (the Container Apps agent sets its own), so
    /// they turn the affected export off or fall back to the default, and are logged once at
    /// start-up; they never stop the server.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OtlpProtocol {
    #[default]
    HttpProtobuf,
    Grpc,
}

/// `OTEL_TRACES_SAMPLER` (+ `_ARG`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
    #[default]
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio(f64),
}

/// Log output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive such as `info` or `mcp_obo=debug,info`; `RUST_LOG` wins.
    #[serde(deserialize_with = "level")]
    pub level: String,
    /// Which HTTP requests get a log line.
    pub requests: RequestLogging,
}

/// Which HTTP requests get a log line (`log.requests`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestLogging {
    /// Every request (an access log).
    All,
    /// Requests answered 4xx/5xx or failed (successful ones are counted in `/metrics` and
    /// traced when OTLP is on): the default, since a line per call is most of a log bill
    /// and about a sixth of a tool call's CPU.
    Failures,
}

de::words!(RequestLogging {
    All => "all",
    Failures => "failures",
});

/// Log line format on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

de::words!(LogFormat {
    Text => "text",
    Json => "json",
});

impl Settings {
    /// Problems with the main listener's address `listen`: the metrics listener cannot be
    /// the same socket (it would fail to bind, or put `/metrics` on the public port).
    pub fn validate(&self, listen: SocketAddr) -> Vec<Problem> {
        let Some(metrics) = self.metrics_listen.filter(|_| self.metrics) else {
            return Vec::new();
        };
        let overlaps = metrics.port() == listen.port()
            && metrics.port() != 0
            && (metrics.ip() == listen.ip()
                || metrics.ip().is_unspecified()
                || listen.ip().is_unspecified());
        if overlaps {
            vec![Problem::new(
                "telemetry.metrics_listen",
                format!(
                    "{metrics} is the main listener's address (server.listen is {listen}); give /metrics its own port, e.g. 127.0.0.1:9464, or set telemetry.metrics = false"
                ),
            )]
        } else {
            Vec::new()
        }
    }

    /// Fills in the trace settings from the standard OpenTelemetry variables (and the
    /// platform's, as resource attributes); `get` returns a variable's non-blank value. What
    /// cannot be honoured goes to [`Settings::warnings`], never to the problems that stop
    /// start-up.
    pub fn apply_otel_env(&mut self, get: &dyn Fn(&str) -> Option<String>) {
        let mut problems: Vec<Problem> = Vec::new();
        let protocol = otlp_protocol(get, &mut problems);
        self.otlp_protocol = protocol.unwrap_or(OtlpProtocol::HttpProtobuf);
        self.otlp_traces_endpoint = traces_endpoint(get, self.otlp_protocol, &mut problems);
        if protocol.is_none() {
            self.otlp_traces_endpoint = None;
        }
        self.otlp_headers = pairs(get("OTEL_EXPORTER_OTLP_HEADERS"))
            .map(|(k, v)| (k, Secret::new(v)))
            .collect();
        self.resource_attributes = pairs(get("OTEL_RESOURCE_ATTRIBUTES")).collect();
        self.resource_attributes.extend(platform_attributes(get));
        self.sampler = sampler(get, &mut problems);
        self.service_name = get("OTEL_SERVICE_NAME").unwrap_or_else(|| "mcp-obo".into());
        self.warnings = problems.iter().map(ToString::to_string).collect();
    }
}

/// The OTLP transport the variables ask for; `None` (trace export off) when it is not one
/// this binary speaks.
fn otlp_protocol(
    get: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<OtlpProtocol> {
    let raw = get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|| "http/protobuf".into());
    match raw.as_str() {
        "http/protobuf" => Some(OtlpProtocol::HttpProtobuf),
        "grpc" => Some(OtlpProtocol::Grpc),
        other => {
            problems.push(Problem::new(
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                format!(
                    "{other:?} is not supported (expected http/protobuf or grpc); trace export is off"
                ),
            ));
            None
        }
    }
}

/// The traces endpoint: the signal's own variable, or the base endpoint (with the signal
/// path for HTTP); `None` when neither is set or the one set is not an http(s) URL.
fn traces_endpoint(
    get: &dyn Fn(&str) -> Option<String>,
    protocol: OtlpProtocol,
    problems: &mut Vec<Problem>,
) -> Option<Url> {
    let (name, raw) = match (
        get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        get("OTEL_EXPORTER_OTLP_ENDPOINT"),
    ) {
        (Some(full), _) => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", full),
        // The base endpoint gets the signal path appended for HTTP (OTLP spec).
        (None, Some(base)) if protocol == OtlpProtocol::HttpProtobuf => (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("{}/v1/traces", base.trim_end_matches('/')),
        ),
        (None, Some(base)) => ("OTEL_EXPORTER_OTLP_ENDPOINT", base),
        (None, None) => return None,
    };
    match Url::parse(&raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
        _ => {
            problems.push(Problem::new(
                name,
                format!("{raw:?} is not valid (expected a URL such as http://otel-collector:4318); trace export is off"),
            ));
            None
        }
    }
}

/// `OTEL_TRACES_SAMPLER` with its ratio `OTEL_TRACES_SAMPLER_ARG`; the default
/// (`parentbased_always_on`, ratio 1) for what is not supported.
fn sampler(get: &dyn Fn(&str) -> Option<String>, problems: &mut Vec<Problem>) -> Sampler {
    let ratio = match get("OTEL_TRACES_SAMPLER_ARG").map(|a| a.parse::<f64>()) {
        None => 1.0,
        Some(Ok(r)) if (0.0..=1.0).contains(&r) => r,
        Some(_) => {
            problems.push(Problem::new(
                "OTEL_TRACES_SAMPLER_ARG",
                "expected a ratio between 0 and 1; sampling every trace",
            ));
            1.0
        }
    };
    match get("OTEL_TRACES_SAMPLER")
        .as_deref()
        .unwrap_or("parentbased_always_on")
    {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatio(ratio),
        "parentbased_always_on" => Sampler::ParentBasedAlwaysOn,
        "parentbased_always_off" => Sampler::ParentBasedAlwaysOff,
        "parentbased_traceidratio" => Sampler::ParentBasedTraceIdRatio(ratio),
        other => {
            problems.push(Problem::new(
                "OTEL_TRACES_SAMPLER",
                format!("{other:?} is not supported (expected always_on, always_off, traceidratio or a parentbased_ variant); using parentbased_always_on"),
            ));
            Sampler::ParentBasedAlwaysOn
        }
    }
}

/// `k=v,k=v` as trimmed pairs.
fn pairs(raw: Option<String>) -> impl Iterator<Item = (String, String)> {
    let items: Vec<(String, String)> = raw
        .iter()
        .flat_map(|raw| raw.split(','))
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    items.into_iter()
}

/// Resource attributes the hosting platform's own variables reveal.
fn platform_attributes(get: &dyn Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut push = |k: &str, v: String| out.push((k.to_owned(), v));
    if let Some(app) = get("CONTAINER_APP_NAME") {
        push("cloud.provider", "azure".into());
        push("cloud.platform", "azure_container_apps".into());
        push("service.namespace", app);
        if let Some(rev) = get("CONTAINER_APP_REVISION") {
            push("service.version.revision", rev);
        }
        if let Some(replica) = get("CONTAINER_APP_REPLICA_NAME") {
            push("service.instance.id", replica);
        }
    } else if let Some(site) = get("WEBSITE_SITE_NAME") {
        push("cloud.provider", "azure".into());
        push("cloud.platform", "azure_functions".into());
        push("faas.name", site);
        if let Some(instance) = get("WEBSITE_INSTANCE_ID") {
            push("faas.instance", instance);
        }
    }
    if get("KUBERNETES_SERVICE_HOST").is_some() {
        if let Some(pod) = get("POD_NAME").or_else(|| get("HOSTNAME")) {
            push("k8s.pod.name", pod);
        }
        if let Some(ns) = get("POD_NAMESPACE") {
            push("k8s.namespace.name", ns);
        }
    }
    out
}

fn metrics_listen<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    de::optional_with(
        d,
        de::expecting("an IP address and port such as 0.0.0.0:9464"),
    )
}

fn level<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de::with(d, |level| {
        if tracing_subscriber::EnvFilter::try_new(level).is_ok() {
            Ok(level.to_owned())
        } else {
            Err(format!(
                "{level:?} is not valid; expected a level (error, warn, info, debug, trace) or directives such as mcp_obo=debug,info"
            ))
        }
    })
}
