//! The HTTP layer of inbound authorization: establishes the [`Caller`] of each MCP request
//! and stores it in the request's extensions, where the MCP layer picks it up.

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use super::Caller;
use crate::config::AuthMode;
use crate::mcp::MCP_PATHS;

/// The configured authorization policy, shared by all workers.
#[derive(Debug, Clone)]
pub struct Authorizer {
    mode: AuthMode,
}

impl Authorizer {
    pub fn new(mode: AuthMode) -> Self {
        Self { mode }
    }

    /// The middleware: MCP paths get a `Caller`; other paths pass untouched.
    ///
    /// # Security
    /// `auth.mode = none` is only accepted by configuration on a loopback listen address;
    /// then every MCP request is the local developer.
    pub async fn authorize(
        req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
        let path = req.path().trim_end_matches('/');
        if MCP_PATHS.contains(&path)
            && let Some(authorizer) = req.app_data::<web::Data<Authorizer>>()
        {
            match authorizer.mode {
                AuthMode::None => {
                    req.extensions_mut().insert(Caller::local_developer());
                }
            }
        }
        next.call(req).await
    }
}
