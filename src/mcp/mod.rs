//! The MCP protocol side: rmcp wiring, the tool registry and request guards.
//!
//! - `registry.rs`: [`Tool`], the trait each tool implements, and [`Registry`].
//! - `handler.rs`: [`McpServer`], rmcp's `ServerHandler`: lists and dispatches tools with
//!   the request's [`crate::auth::Caller`].
//! - `audit.rs`: the audit event, one per tool call, on the `mcp_obo::audit` target.
//! - `guard.rs`: Host and Origin allow-lists (DNS-rebinding defence), checked before
//!   anything else in the MCP route scopes.
//! - `jsonrpc_errors.rs`: the transport's plain-text HTTP errors as JSON-RPC error bodies.
//! - `sessions.rs`: session mode only: a session id works only for the caller who got it.
//! - `body_deadline.rs`: a body not complete within `server.body_timeout` gets 408.
//! - `limits.rs`: per-user limits: requests in flight and the `tools/call` rate (429).
//! - `body.rs`: a POST's body read once and parsed once, for the two layers below.
//! - `tool_access.rs`: a `tools/call` of a tool whose scopes the caller lacks gets the HTTP
//!   403 step-up challenge, and `tools/call`s past the rate limit get 429; it hands the fast
//!   path its parsed request and the tool's verdict.
//! - `direct.rs`: stateless fast path: a sessions-era `tools/list` / `tools/call` answered
//!   without rmcp's per-request transport; everything else goes on to rmcp.
//! - `transport.rs`: mounts the Streamable HTTP service (rmcp-actix-web) at the MCP paths.
//!
//! Every middleware here is wrapped on the MCP route scopes, in the order
//! `server/mcp_scope.rs` states, so none of them looks at the request path; each carries its
//! own state. This module sees a `Caller`, never a token.

mod audit;
mod body;
mod body_deadline;
mod direct;
mod guard;
mod handler;
mod jsonrpc_errors;
mod limits;
mod registry;
mod sessions;
mod tool_access;
mod transport;

pub use audit::TARGET as AUDIT_TARGET;
pub use body_deadline::BodyDeadline;
pub use direct::Direct;
pub use guard::Origins;
pub use handler::McpServer;
pub use jsonrpc_errors::JsonRpcErrors;
pub use limits::{InFlight, RateLimit, ToolCallRate, UserKey};
pub use registry::{Registry, Resolved, Tool};
pub use sessions::SessionOwners;
pub use tool_access::ToolAccess;
pub use transport::{HttpTraceContext, MCP_PATHS, ProtocolVersionHeader, RmcpSessions, mount};
