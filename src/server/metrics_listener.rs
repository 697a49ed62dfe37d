//! `/metrics` on a listener of its own (`telemetry.metrics_listen`), so it can stay off the
//! public port.

use std::net::{SocketAddr, TcpListener};

use actix_web::{App, HttpServer, web};

use super::StartError;

/// Serves `/metrics` alone on `addr` (spawned on the current actix system); the address
/// actually bound.
pub(super) fn spawn_metrics_listener(addr: SocketAddr) -> Result<SocketAddr, StartError> {
    let bind_error = |source| StartError::MetricsBind { addr, source };
    let listener = TcpListener::bind(addr).map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    let server = HttpServer::new(|| {
        App::new().route(
            "/metrics",
            web::get().to(crate::telemetry::metrics::handler),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(bind_error)?
    .run();
    actix_web::rt::spawn(server);
    Ok(bound)
}
