//! Session binding (session mode only): a session id works only for the caller it was
//! minted for.
//!
//! # Security
//! MCP security best practice: session ids are bound to the user (`<user id>:<session>`),
//! so another user presenting a stolen id gets "session not found" — the same answer as an
//! unknown id, revealing nothing. Sessions never authenticate: the token is validated on
//! every request before this runs.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};

use super::MCP_PATHS;
use crate::auth::Caller;

const SESSION_HEADER: &str = "mcp-session-id";
/// Oldest bindings are forgotten past this many (their sessions then answer 404).
const MAX_SESSIONS: usize = 100_000;

/// Which caller owns which session id.
#[derive(Default)]
pub struct SessionOwners {
    inner: Mutex<Owners>,
}

#[derive(Default)]
struct Owners {
    by_id: HashMap<String, String>,
    order: VecDeque<String>,
}

fn owner_key(caller: &Caller) -> String {
    format!(
        "{}:{}",
        caller.tenant_id.as_deref().unwrap_or("-"),
        caller.subject
    )
}

impl SessionOwners {
    fn owner(&self, id: &str) -> Option<String> {
        self.lock().by_id.get(id).cloned()
    }

    fn bind(&self, id: &str, owner: String) {
        let mut owners = self.lock();
        if owners.by_id.insert(id.to_owned(), owner).is_none() {
            owners.order.push_back(id.to_owned());
        }
        while owners.order.len() > MAX_SESSIONS {
            if let Some(old) = owners.order.pop_front() {
                owners.by_id.remove(&old);
            }
        }
    }

    fn forget(&self, id: &str) {
        let mut owners = self.lock();
        owners.by_id.remove(id);
        owners.order.retain(|x| x != id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Owners> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The middleware; does nothing unless `SessionOwners` is registered as app data.
    pub async fn bind_to_caller(
        req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
        // Stateless servers register no `SessionOwners`: nothing to compute per request.
        let owners = req.app_data::<web::Data<SessionOwners>>().cloned();
        let is_mcp = owners.is_some() && MCP_PATHS.contains(&req.path().trim_end_matches('/'));
        let caller = match is_mcp {
            true => req
                .extensions()
                .get::<std::sync::Arc<Caller>>()
                .map(|c| owner_key(c)),
            false => None,
        };
        let (Some(owners), Some(caller), true) = (owners, caller, is_mcp) else {
            return next
                .call(req)
                .await
                .map(ServiceResponse::map_into_left_body);
        };
        let presented = req
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some(id) = &presented
            && owners.owner(id).is_some_and(|owner| owner != caller)
        {
            tracing::warn!("session id presented by a caller other than its owner; refused");
            let response = HttpResponse::NotFound().json(serde_json::json!({
                "jsonrpc": "2.0", "id": null,
                "error": {"code": -32600, "message": "Not Found: Session not found"},
            }));
            return Ok(req.into_response(response).map_into_right_body());
        }
        let is_delete = req.method() == actix_web::http::Method::DELETE;
        let res = next.call(req).await?;
        match (
            &presented,
            res.headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok()),
        ) {
            (None, Some(minted)) => owners.bind(minted, caller),
            (Some(id), _) if is_delete && res.status().is_success() => owners.forget(id),
            _ => {}
        }
        Ok(res.map_into_left_body())
    }
}
