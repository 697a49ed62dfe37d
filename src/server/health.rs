//! `/healthz` (the process answers) and `/readyz` (every dependency is initialised and the
//! server is not shutting down).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::{HttpResponse, web};

use crate::auth::JwksCache;

/// Readiness: ready once every dependency is initialised (the issuer's keys fetched), not
/// ready while shutting down.
#[derive(Default)]
pub struct Readiness {
    serving: AtomicBool,
    jwks: Option<Arc<JwksCache>>,
}

impl Readiness {
    /// Not yet serving; ready later once `jwks` (if any) has keys.
    pub(super) fn new(jwks: Option<Arc<JwksCache>>) -> Self {
        Self {
            serving: AtomicBool::new(false),
            jwks,
        }
    }

    /// Each check by name, and whether it passes.
    pub fn checks(&self) -> Vec<(&'static str, bool)> {
        let mut checks = vec![("serving", self.serving.load(Ordering::Acquire))];
        if let Some(jwks) = &self.jwks {
            checks.push(("issuer_keys", jwks.is_loaded()));
        }
        checks
    }

    pub fn is_ready(&self) -> bool {
        self.checks().iter().all(|(_, ok)| *ok)
    }

    pub(super) fn set_serving(&self, serving: bool) {
        self.serving.store(serving, Ordering::Release);
    }
}

pub(super) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

pub(super) async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    let checks: serde_json::Map<String, serde_json::Value> = readiness
        .checks()
        .into_iter()
        .map(|(name, ok)| {
            (
                name.to_owned(),
                serde_json::Value::from(if ok { "ok" } else { "failing" }),
            )
        })
        .collect();
    if readiness.is_ready() {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready", "checks": checks}))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "not ready", "checks": checks}))
    }
}
