//! mcp-obo: a remote MCP server whose tools call Microsoft Graph on behalf of the
//! signed-in user.
//!
//! Layout (one folder per concern):
//! - [`config`]: the configuration machinery: layers (defaults, file, prefixed variables, the
//!   platform's), sources, reading sections with every problem at once, shared value types.
//!   It depends on no other module; each module owns its section's type.
//! - [`settings`]: the server's settings: every section loaded and checked together, the
//!   platform's variables and Entra's defaults resolved. With [`server`], the composition root.
//! - [`server`]: the actix-web app (the MCP route scope and its order: `server/mcp_scope.rs`),
//!   graceful shutdown.
//! - [`mcp`]: MCP protocol wiring (rmcp), the tool registry, Host/Origin guard.
//! - [`auth`]: inbound authorization; produces the [`auth::Caller`] tools receive.
//! - [`obo`]: outbound tokens for downstream APIs ([`obo::DownstreamTokens`]).
//! - [`graph`]: the Microsoft Graph client.
//! - [`tools`]: one file per tool.
//! - [`tools_command`]: `mcp-obo tools`, the tools' Graph permissions for people and for
//!   the Bicep (`infra/graph-permissions.json`).
//! - [`telemetry`]: logs, traces and metrics.
//! - [`devidp`]: `mcp-obo dev`: a development identity provider and Graph emulator, and the
//!   command that wires them to the production server (`devidp/command.rs`).
//! - [`doctor`]: `mcp-obo doctor`, the configuration, Entra app registration and
//!   deployment checks.
//! - [`outbound`]: where outgoing HTTP clients are built (one TLS set-up per process).
//! - [`jose`]: signing keys, encodings and token expiry arithmetic shared by the above.
//!
//! Data flow of one tool call: HTTP POST `/mcp` → Host/Origin guard → authorization
//! (`Caller`) → rmcp dispatch → tool → `DownstreamTokens` → Graph → tool result.

pub mod auth;
pub mod config;
pub mod devidp;
pub mod doctor;
pub mod graph;
pub mod jose;
pub mod mcp;
pub mod obo;
pub mod outbound;
pub mod server;
pub mod settings;
pub mod telemetry;
pub mod tools;
pub mod tools_command;
