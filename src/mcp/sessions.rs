//! Session binding (session mode only): a session id works only for the caller it was
//! minted for.
//!
//! # Security
//! MCP security best practice: session ids are bound to the user, so another user
//! presenting a stolen id gets "session not found", the same answer as an unknown id,
//! revealing nothing. Sessions never authenticate: the token is validated on every request
//! before this runs, whatever the method (POST, GET, DELETE).
//!
//! - A presented id with no binding is refused (404), never passed to rmcp: the binding,
//!   not rmcp's session table, decides who may use a session.
//! - Each user holds at most [`MAX_SESSIONS_PER_USER`] sessions and the server at most
//!   [`MAX_SESSIONS`]; past either, the oldest binding is forgotten and its rmcp session
//!   closed (its client gets 404 and starts a new one, as the spec says).

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse};
use rmcp_actix_web::transport::SessionManager;

use super::RmcpSessions;
use crate::auth::Caller;

const SESSION_HEADER: &str = "mcp-session-id";
/// Bindings kept in all; the oldest are forgotten (and their sessions closed) past this.
pub const MAX_SESSIONS: usize = 100_000;
/// Open sessions one user may hold; a new one past this ends that user's oldest.
pub const MAX_SESSIONS_PER_USER: usize = 16;

/// Which caller owns which session id, and the rmcp sessions to close when a binding goes;
/// clones share the bindings.
#[derive(Clone)]
pub struct SessionOwners {
    inner: Arc<Mutex<Owners>>,
    sessions: RmcpSessions,
    per_user: usize,
    total: usize,
}

#[derive(Default)]
struct Owners {
    by_id: HashMap<Arc<str>, Arc<str>>,
    by_owner: HashMap<Arc<str>, VecDeque<Arc<str>>>,
    /// Every binding oldest first; ids forgotten since are skipped when popped.
    order: VecDeque<Arc<str>>,
}

impl Owners {
    fn remove(&mut self, id: &str) -> bool {
        let Some(owner) = self.by_id.remove(id) else {
            return false;
        };
        if let Some(ids) = self.by_owner.get_mut(&owner) {
            ids.retain(|x| &**x != id);
            if ids.is_empty() {
                self.by_owner.remove(&owner);
            }
        }
        // Keep the order list from growing without bound on stale entries.
        if self.order.len() > 2 * self.by_id.len() + 64 {
            let live = &self.by_id;
            self.order.retain(|x| live.contains_key(x));
        }
        true
    }

    /// Binds `id` to `owner`; returns the ids whose bindings had to go.
    fn bind(
        &mut self,
        id: Arc<str>,
        owner: Arc<str>,
        per_user: usize,
        total: usize,
    ) -> Vec<Arc<str>> {
        let mut evicted = Vec::new();
        if self.by_id.contains_key(&id) {
            return evicted;
        }
        self.by_id.insert(id.clone(), owner.clone());
        self.by_owner
            .entry(owner.clone())
            .or_default()
            .push_back(id.clone());
        self.order.push_back(id);
        while let Some(ids) = self.by_owner.get_mut(&owner)
            && ids.len() > per_user
        {
            if let Some(old) = ids.pop_front() {
                self.by_id.remove(&old);
                evicted.push(old);
            }
        }
        while self.by_id.len() > total {
            match self.order.pop_front() {
                Some(old) if self.remove(&old) => evicted.push(old),
                Some(_) => {}
                None => break,
            }
        }
        evicted
    }
}

/// The owner key: tenant and user, never a token.
fn owner_key(caller: &Caller) -> Arc<str> {
    Arc::from(format!(
        "{}:{}",
        caller.tenant_id.as_deref().unwrap_or("-"),
        caller.subject
    ))
}

impl SessionOwners {
    pub fn new(sessions: RmcpSessions) -> Self {
        Self::with_limits(sessions, MAX_SESSIONS_PER_USER, MAX_SESSIONS)
    }

    fn with_limits(sessions: RmcpSessions, per_user: usize, total: usize) -> Self {
        Self {
            inner: Arc::default(),
            sessions,
            per_user: per_user.max(1),
            total: total.max(1),
        }
    }

    fn owner(&self, id: &str) -> Option<Arc<str>> {
        self.lock().by_id.get(id).cloned()
    }

    async fn bind(&self, id: &str, owner: Arc<str>) {
        let evicted = self
            .lock()
            .bind(Arc::from(id), owner, self.per_user, self.total);
        for old in evicted {
            tracing::debug!("session binding evicted; closing its session");
            self.close(old).await;
        }
    }

    async fn forget(&self, id: &str) {
        if self.lock().remove(id) {
            self.close(Arc::from(id)).await;
        }
    }

    async fn close(&self, id: Arc<str>) {
        if let Err(e) = self.sessions.close_session(&id).await {
            tracing::warn!(error = %e, "could not close an evicted session");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Owners> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The middleware, wrapped on the MCP route scopes; does nothing without `owners`
    /// (stateless servers have no sessions to bind).
    pub async fn bind_to_caller(
        owners: Rc<Option<Self>>,
        req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
        let Some(owners) = &*owners else {
            return next
                .call(req)
                .await
                .map(ServiceResponse::map_into_left_body);
        };
        let Some(caller) = req.extensions().get::<Arc<Caller>>().map(|c| owner_key(c)) else {
            // The authorizer runs first; without a caller nothing may touch a session.
            return Ok(not_found(req));
        };
        let presented = req
            .headers()
            .get(SESSION_HEADER)
            .map(|v| v.to_str().map(str::to_owned));
        let presented = match presented {
            None => None,
            Some(Ok(id)) => match owners.owner(&id) {
                Some(owner) if owner == caller => Some(id),
                Some(_) => {
                    tracing::warn!(
                        "session id presented by a caller other than its owner; refused"
                    );
                    return Ok(not_found(req));
                }
                None => return Ok(not_found(req)),
            },
            Some(Err(_)) => return Ok(not_found(req)),
        };
        let is_delete = req.method() == Method::DELETE;
        let res = next.call(req).await?;
        let minted = res
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match (&presented, minted) {
            (None, Some(minted)) if res.status().is_success() => owners.bind(&minted, caller).await,
            (Some(id), _) if is_delete && res.status().is_success() => owners.forget(id).await,
            // rmcp no longer knows the session (it ended): the binding goes too.
            (Some(id), _) if res.status() == StatusCode::NOT_FOUND => owners.forget(id).await,
            _ => {}
        }
        Ok(res.map_into_left_body())
    }
}

fn not_found<B>(req: ServiceRequest) -> ServiceResponse<EitherBody<B>> {
    let response = HttpResponse::NotFound().json(serde_json::json!({
        "jsonrpc": "2.0", "id": null,
        "error": {"code": -32600, "message": "Not Found: Session not found"},
    }));
    req.into_response(response).map_into_right_body()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[Arc<str>]) -> Vec<&str> {
        v.iter().map(|s| &**s).collect()
    }

    #[test]
    fn a_user_past_the_cap_loses_their_oldest_session_only() {
        let mut owners = Owners::default();
        let (ada, alan) = (Arc::<str>::from("t:ada"), Arc::<str>::from("t:alan"));
        assert!(owners.bind("a1".into(), ada.clone(), 2, 100).is_empty());
        assert!(owners.bind("b1".into(), alan.clone(), 2, 100).is_empty());
        assert!(owners.bind("a2".into(), ada.clone(), 2, 100).is_empty());
        assert_eq!(ids(&owners.bind("a3".into(), ada.clone(), 2, 100)), ["a1"]);
        assert!(!owners.by_id.contains_key("a1"));
        assert_eq!(owners.by_id.get("b1"), Some(&alan));
        assert_eq!(owners.by_owner.get(&ada).map(VecDeque::len), Some(2));
    }

    #[test]
    fn the_server_past_its_total_forgets_the_oldest_binding() {
        let mut owners = Owners::default();
        for i in 0..5 {
            let owner = Arc::<str>::from(format!("t:user{i}"));
            let evicted = owners.bind(format!("s{i}").into(), owner, 16, 3);
            let expected: Vec<String> = if i >= 3 {
                vec![format!("s{}", i - 3)]
            } else {
                vec![]
            };
            assert_eq!(ids(&evicted), expected);
        }
        assert_eq!(owners.by_id.len(), 3);
        assert_eq!(owners.by_owner.len(), 3);
    }

    #[test]
    fn forgotten_ids_do_not_pile_up_in_the_order_list() {
        let mut owners = Owners::default();
        let ada = Arc::<str>::from("t:ada");
        for i in 0..10_000 {
            let id: Arc<str> = format!("s{i}").into();
            owners.bind(id.clone(), ada.clone(), 16, 100);
            owners.remove(&id);
        }
        assert!(owners.by_id.is_empty());
        assert!(owners.order.len() <= 64 + 1, "{}", owners.order.len());
    }
}
