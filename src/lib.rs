//! mcp-obo: a remote MCP server whose tools call Microsoft Graph on behalf of the
//! signed-in user.
//!
//! Layout (one folder per concern):
//! - [`config`]: loads settings from defaults, file, `MCP_OBO__*` and the platform's
//!   variables, reporting every problem at once; each module owns its section's type.
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
pub mod telemetry;
pub mod tools;
pub mod tools_command;
