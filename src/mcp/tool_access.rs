//! What a `tools/call` may do, judged at the HTTP layer from the body: a call of a tool whose
//! scopes the caller lacks gets 403 `insufficient_scope` naming them, so an MCP client can
//! step up (ask the user for the broader consent) instead of showing a failed call; a call
//! past the user's `server.rate_limit` gets 429 (`limits.rs`). Only `tools/call` counts
//! against the rate, one per call in a batch, after the scope check (a refused call costs
//! nothing).
//!
//! # Security
//! The 403 is the friendly answer, not the boundary: dispatch (`handler.rs`) refuses the same
//! call again from the parsed request rmcp (or the fast path) hands it. A body this layer
//! cannot parse, or one past the size limit, is passed on unjudged for scopes, never
//! admitted: the protocol layer rejects it (so it runs no tool) or dispatch refuses the call.
//! For the rate, a message it cannot parse counts as one call (it cannot tell that rmcp will
//! not run one); a body past the size limit runs nothing (rmcp answers 413).

use std::borrow::Cow;
use std::num::NonZeroU32;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use serde_json::value::RawValue;

use super::Registry;
use super::limits::{ToolCallRate, UserKey, too_many_requests};
use crate::auth::{Authorizer, Caller};
use crate::telemetry::metrics;

/// The tool registry as the step-up check needs it, and the rate limit, in the app data.
pub struct ToolAccess {
    registry: Arc<Registry>,
    max_body: usize,
    rate: Option<Arc<ToolCallRate>>,
}

impl ToolAccess {
    pub fn new(registry: Arc<Registry>, max_body: usize) -> Self {
        Self {
            registry,
            max_body,
            rate: None,
        }
    }

    /// `tools/call`s also count against `rate` (`None`: not limited).
    pub fn with_rate_limit(mut self, rate: Option<Arc<ToolCallRate>>) -> Self {
        self.rate = rate;
        self
    }

    /// The middleware, wrapped on the MCP route scopes inside the authorizer. The body of a
    /// POST is read when the caller lacks some tool's scopes or tool calls are rate limited.
    pub async fn check(
        mut req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
        let access = req.app_data::<web::Data<ToolAccess>>().cloned();
        let authorizer = req.app_data::<web::Data<Authorizer>>().cloned();
        let caller = req.extensions().get::<Arc<Caller>>().cloned();
        let (Some(access), Some(authorizer), Some(caller)) = (access, authorizer, caller) else {
            return Ok(next.call(req).await?.map_into_left_body());
        };
        let restricted = access.registry.restricts(&caller);
        if req.method() != Method::POST || !(restricted || access.rate.is_some()) {
            return Ok(next.call(req).await?.map_into_left_body());
        }
        let body = match super::direct::read_body(req.take_payload(), access.max_body).await {
            Ok(body) => body,
            Err(replay) => {
                req.set_payload(replay);
                return Ok(next.call(req).await?.map_into_left_body());
            }
        };
        let calls = tool_calls(&body);
        let refused = calls
            .iter()
            .filter_map(|c| c.name.as_deref())
            .find(|name| restricted && !access.registry.permits(&caller, name));
        if let Some(name) = refused {
            let needed = access.registry.scopes_of(name);
            let response = authorizer.step_up(&req, &needed);
            return Ok(req.into_response(response).map_into_right_body());
        }
        if let (Some(rate), Some(n)) = (&access.rate, count(calls.len()))
            && let Err(wait) = rate.check(&UserKey::of(&caller), n)
        {
            metrics::limited_request("rate");
            let id = calls
                .first()
                .and_then(|c| c.id)
                .and_then(|id| serde_json::from_str(id.get()).ok());
            let response = too_many_requests(
                id,
                wait,
                "Too Many Requests: this user's tool calls exceed server.rate_limit; \
                 retry after the time in Retry-After",
            );
            return Ok(req.into_response(response).map_into_right_body());
        }
        drop(calls);
        req.set_payload(Payload::from(body));
        Ok(next.call(req).await?.map_into_left_body())
    }
}

/// The number of calls as a count the rate limiter takes; `None` for none.
fn count(calls: usize) -> Option<NonZeroU32> {
    NonZeroU32::new(u32::try_from(calls).unwrap_or(u32::MAX))
}

/// One `tools/call` in a body: its JSON-RPC id and the tool's name, as sent; both `None` for
/// a message this layer cannot read, which counts as a call (what it cannot judge, rmcp
/// might still run).
#[derive(Default)]
struct Called<'a> {
    id: Option<&'a RawValue>,
    name: Option<Cow<'a, str>>,
}

/// The `tools/call`s of a JSON-RPC message or batch, each unreadable message counted as one.
fn tool_calls(body: &[u8]) -> Vec<Called<'_>> {
    let batch = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if !batch {
        return read_call(body).into_iter().collect();
    }
    match serde_json::from_slice::<Vec<&RawValue>>(body) {
        Ok(messages) => messages
            .into_iter()
            .filter_map(|m| read_call(m.get().as_bytes()))
            .collect(),
        Err(_) => vec![Called::default()],
    }
}

/// The call one message makes: `None` when it is another method.
fn read_call(message: &[u8]) -> Option<Called<'_>> {
    #[derive(serde::Deserialize)]
    struct Message<'a> {
        #[serde(borrow)]
        id: Option<&'a RawValue>,
        #[serde(borrow)]
        method: Option<Cow<'a, str>>,
        #[serde(borrow)]
        params: Option<&'a RawValue>,
    }
    #[derive(serde::Deserialize)]
    struct Params<'a> {
        #[serde(borrow)]
        name: Option<Cow<'a, str>>,
    }
    let Ok(m) = serde_json::from_slice::<Message>(message) else {
        return Some(Called::default());
    };
    if m.method.as_deref() != Some("tools/call") {
        return None;
    }
    let params = m.params.map(|p| serde_json::from_str::<Params>(p.get()));
    Some(Called {
        id: m.id,
        name: params.and_then(|p| p.ok()).and_then(|p| p.name),
    })
}
