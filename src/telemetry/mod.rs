//! Logs (and, later, traces and metrics).
//!
//! - [`init`]: the tracing subscriber on stderr, human-readable or JSON.
//! - [`RequestLog`]: one info line per HTTP request (method, path, status, duration).
//!
//! # Security
//! Nothing here records header values or bodies: tokens travel in both.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `log.level`.
/// Safe to call more than once (later calls do nothing).
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match settings.format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Err only means a subscriber is already installed (tests, repeated init): keep it.
    let _ = result;
}

/// Marker for the request-log middleware.
pub struct RequestLog;

impl RequestLog {
    /// Logs one line per request once the response is ready.
    pub async fn log(
        req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.path().to_owned();
        let result = next.call(req).await;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match &result {
            Ok(res) => tracing::info!(
                http.request.method = %method,
                url.path = %path,
                http.response.status_code = res.status().as_u16(),
                duration_us = micros,
                "request"
            ),
            Err(e) => tracing::warn!(
                http.request.method = %method,
                url.path = %path,
                error = %e,
                duration_us = micros,
                "request failed"
            ),
        }
        result
    }
}
