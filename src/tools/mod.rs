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

/// `User.Read`: the signed-in user's profile.
pub const USER_READ: GraphPermission = GraphPermission {
    value: "User.Read",
    id: "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
};

/// `Calendars.Read`: the signed-in user's calendars and events.
pub const CALENDARS_READ: GraphPermission = GraphPermission {
    value: "Calendars.Read",
    id: "465a38f9-76ea-45b9-9f34-9e8b0d4b0b42",
};

/// What the code outside the MCP server (doctor, the dev emulator, the permissions file for
/// the Bicep) knows of a registered tool, without building it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolInfo {
    /// The tool's MCP name.
    pub name: &'static str,
    /// The Graph delegated permissions its calls need (its on-behalf-of exchange asks for
    /// exactly these).
    pub permissions: &'static [GraphPermission],
}

/// Every registered tool, in registration order.
pub fn catalog() -> &'static [ToolInfo] {
    const CATALOG: &[ToolInfo] = &[
        ToolInfo {
            name: hello::NAME,
            permissions: &[USER_READ],
        },
        ToolInfo {
            name: "UpcomingEvents",
            permissions: &[CALENDARS_READ],
        },
    ];
    CATALOG
}

/// Every Graph delegated permission some registered tool needs, each once, in the order the
/// tools declare them.
pub fn graph_permissions() -> Vec<GraphPermission> {
    let mut all: Vec<GraphPermission> = Vec::new();
    for permission in catalog().iter().flat_map(|t| t.permissions) {
        if !all.contains(permission) {
            all.push(*permission);
        }
    }
    all
}

/// Microsoft Graph's application id, the same in every tenant and cloud.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
