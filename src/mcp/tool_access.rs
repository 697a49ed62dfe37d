//! What a `tools/call` may do, judged at the HTTP layer from the body: a call of a tool whose
//! scopes the caller lacks gets 403 `insufficient_scope` naming them, so an MCP client can
//! step up (ask the user for the broader consent) instead of showing a failed call; a call
//! past the user's `server.rate_limit` gets 429 (`limits.rs`). Only `tools/call` counts
//! against the rate, one per call in a batch, after the scope check (a refused call costs
//! nothing).
//!
//! The body is read and parsed once here (`body.rs`). A request the stateless fast path may
//! answer is parsed in full, and its one tool looked up and judged once: the fast path
//! (`direct.rs`) gets that request and verdict in the request extensions.
//!
//! # Security
//! For requests rmcp answers, the 403 is the friendly answer, not the boundary: dispatch
//! (`handler.rs`) judges the call again from rmcp's own parse of the body. For the fast path
//! the verdict made here is the one dispatch obeys, as both read the same parse. A body this layer
//! cannot parse, or one past the size limit, is passed on unjudged for scopes, never
//! admitted: the protocol layer rejects it (so it runs no tool) or dispatch refuses the call.
//! For the rate, a message it cannot parse counts as one call (it cannot tell that rmcp will
//! not run one); a body past the size limit runs nothing (rmcp answers 413).

use std::num::NonZeroU32;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse};

use super::body::{self, Call, Parsed};
use super::direct::{self, DirectRequest};
use super::limits::{ToolCallRate, UserKey, too_many_requests};
use super::{Registry, Resolved};
use crate::auth::{Authorizer, Caller};
use crate::telemetry::metrics;

/// The layer's state: the tool registry, the step-up challenge, the rate limit, and whether
/// the fast path is on (then this layer reads and parses its requests for it).
#[derive(Clone)]
pub struct ToolAccess {
    registry: Arc<Registry>,
    authorizer: Authorizer,
    max_body: usize,
    rate: Option<Arc<ToolCallRate>>,
    fast_path: bool,
}

impl ToolAccess {
    pub fn new(registry: Arc<Registry>, authorizer: Authorizer, max_body: usize) -> Self {
        Self {
            registry,
            authorizer,
            max_body,
            rate: None,
            fast_path: false,
        }
    }

    /// `tools/call`s also count against `rate` (`None`: not limited).
    pub fn with_rate_limit(mut self, rate: Option<Arc<ToolCallRate>>) -> Self {
        self.rate = rate;
        self
    }

    /// Requests the fast path may answer are parsed for it (`direct.rs`).
    pub fn with_fast_path(mut self, on: bool) -> Self {
        self.fast_path = on;
        self
    }

    /// The middleware, wrapped on the MCP route scopes inside the authorizer. The body of a
    /// POST is read and parsed once, when the caller lacks some tool's scopes, tool calls are
    /// rate limited, or the fast path may answer it; the fast path gets the parsed request
    /// (with its tool's verdict) in the request extensions, rmcp the same bytes.
    pub async fn check(
        self: Rc<Self>,
        mut req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
        let Some(caller) = req.extensions().get::<Arc<Caller>>().cloned() else {
            // The authorizer runs first; without a caller nothing is judged or answered.
            let response = HttpResponse::InternalServerError().finish();
            return Ok(req.into_response(response).map_into_right_body());
        };
        if req.method() != Method::POST {
            return Ok(next.call(req).await?.map_into_left_body());
        }
        let version = self
            .fast_path
            .then(|| direct::eligible(&req, self.max_body))
            .flatten();
        if version.is_none() && self.rate.is_none() && !self.registry.restricts(&caller) {
            return Ok(next.call(req).await?.map_into_left_body());
        }
        let bytes = match body::read(req.take_payload(), self.max_body).await {
            Ok(bytes) => bytes,
            Err(replay) => {
                req.set_payload(replay);
                return Ok(next.call(req).await?.map_into_left_body());
            }
        };
        let parsed = body::parse(&bytes, version.is_some());
        // The fast path's one call is looked up and judged here once; dispatch obeys this.
        let direct_tool = match &parsed {
            Parsed::Direct {
                call: Call::Tool(params),
                ..
            } => Some(self.registry.resolve(&caller, &params.name)),
            _ => None,
        };
        if let Some(tool) = self.refused(&caller, &parsed, direct_tool) {
            let response = self.authorizer.step_up(&req, self.registry.scopes(tool));
            return Ok(req.into_response(response).map_into_right_body());
        }
        if let Some(response) = self.limit(&caller, &parsed) {
            return Ok(req.into_response(response).map_into_right_body());
        }
        if let (Some(version), Parsed::Direct { id, call }) = (version, parsed) {
            let request = DirectRequest {
                version,
                id,
                call,
                tool: direct_tool,
                caller,
            };
            req.extensions_mut().insert(request);
        }
        req.set_payload(Payload::from(bytes));
        Ok(next.call(req).await?.map_into_left_body())
    }

    /// The first call of a tool whose scopes the caller lacks (`direct_tool`: the fast
    /// path's call, already resolved).
    fn refused(
        &self,
        caller: &Caller,
        parsed: &Parsed<'_>,
        direct_tool: Option<Resolved>,
    ) -> Option<Resolved> {
        match parsed {
            Parsed::Direct { .. } => direct_tool.filter(|t| !t.permitted()),
            Parsed::Other(calls) => calls
                .iter()
                .filter_map(|c| c.name.as_deref())
                .map(|name| self.registry.resolve(caller, name))
                .find(|t| !t.permitted()),
        }
    }

    /// The 429 when the body's calls exceed the caller's rate, if they do.
    fn limit(&self, caller: &Caller, parsed: &Parsed<'_>) -> Option<HttpResponse> {
        let rate = self.rate.as_ref()?;
        let calls = match parsed {
            Parsed::Direct {
                call: Call::Tool(_),
                ..
            } => 1,
            Parsed::Direct { .. } => 0,
            Parsed::Other(calls) => calls.len(),
        };
        let wait = rate.check(&UserKey::of(caller), count(calls)?).err()?;
        metrics::limited_request("rate");
        // The first call's id, so the client can tell which request was refused.
        let id = match parsed {
            Parsed::Direct { id, .. } => serde_json::to_value(id).ok(),
            Parsed::Other(calls) => calls
                .first()
                .and_then(|c| c.id)
                .and_then(|id| serde_json::from_str(id.get()).ok()),
        };
        Some(too_many_requests(
            id,
            wait,
            "Too Many Requests: this user's tool calls exceed server.rate_limit; \
             retry after the time in Retry-After",
        ))
    }
}

/// The number of calls as a count the rate limiter takes; `None` for none.
fn count(calls: usize) -> Option<NonZeroU32> {
    NonZeroU32::new(u32::try_from(calls).unwrap_or(u32::MAX))
}
