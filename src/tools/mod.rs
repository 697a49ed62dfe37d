//! The tools this server offers, one file each.
//!
//! - `hello.rs`: [`HelloTool`], greets the signed-in user from their Graph profile.
//!
//! A tool takes the [`crate::auth::Caller`] and its clients and turns every failure into
//! an `isError` result; it never touches HTTP requests or tokens.

mod hello;

pub use hello::{Greeting, HelloTool};

/// A Microsoft Graph delegated permission a tool's calls need: the app registration must
/// request it (`requiredResourceAccess`), and `mcp-obo doctor` checks that it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphPermission {
    /// As it appears in `scp` and in consent grants, e.g. `User.Read`.
    pub value: &'static str,
    /// Its id on Microsoft Graph's service principal (the same in every tenant and cloud).
    pub id: &'static str,
}

/// Every Graph delegated permission the tools need; a new tool adds its own here.
pub const GRAPH_PERMISSIONS: &[GraphPermission] = &[
    // HelloTool: GET /v1.0/me.
    GraphPermission {
        value: "User.Read",
        id: "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
    },
];

/// Microsoft Graph's application id, the same in every tenant and cloud.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
