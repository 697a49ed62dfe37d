//! Per-tool scopes at the HTTP layer: a `tools/call` of a tool whose scopes the caller lacks
//! gets 403 `insufficient_scope` naming them, so an MCP client can step up (ask the user
//! for the broader consent) instead of showing a failed call.
//!
//! # Security
//! This is the friendly answer, not the boundary: dispatch (`handler.rs`) refuses the same
//! call again from the parsed request rmcp (or the fast path) hands it. A body this layer
//! cannot parse, or one past the size limit, is passed on unjudged, never admitted: the
//! protocol layer rejects it or dispatch refuses the call.

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use super::Registry;
use crate::auth::{Authorizer, Caller};

/// The tool registry as the step-up check needs it, in the app data.
pub struct ToolAccess {
    registry: Arc<Registry>,
    max_body: usize,
}

impl ToolAccess {
    pub fn new(registry: Arc<Registry>, max_body: usize) -> Self {
        Self { registry, max_body }
    }

    /// The middleware, wrapped on the MCP route scopes inside the authorizer. The body is
    /// read only when the caller lacks some tool's scopes.
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
        if req.method() != Method::POST || !access.registry.restricts(&caller) {
            return Ok(next.call(req).await?.map_into_left_body());
        }
        let body = match super::direct::read_body(req.take_payload(), access.max_body).await {
            Ok(body) => body,
            Err(replay) => {
                req.set_payload(replay);
                return Ok(next.call(req).await?.map_into_left_body());
            }
        };
        for name in called_tools(&body) {
            if !access.registry.permits(&caller, &name) {
                let needed = access.registry.scopes_of(&name);
                let response = authorizer.step_up(&req, &needed);
                return Ok(req.into_response(response).map_into_right_body());
            }
        }
        req.set_payload(Payload::from(body));
        Ok(next.call(req).await?.map_into_left_body())
    }
}

/// Names of the tools a JSON-RPC message (or batch) calls; empty when it does not parse.
fn called_tools(body: &[u8]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Message {
        method: Option<String>,
        params: Option<Params>,
    }
    #[derive(serde::Deserialize)]
    struct Params {
        name: Option<String>,
    }
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Body {
        One(Message),
        Batch(Vec<Message>),
    }
    let messages = match serde_json::from_slice::<Body>(body) {
        Ok(Body::One(m)) => vec![m],
        Ok(Body::Batch(b)) => b,
        Err(_) => return Vec::new(),
    };
    messages
        .into_iter()
        .filter(|m| m.method.as_deref() == Some("tools/call"))
        .filter_map(|m| m.params.and_then(|p| p.name))
        .collect()
}
