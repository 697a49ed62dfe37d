//! The tools this server offers, one file each, and [`all`], the one list of them.
//!
//! - `surface.rs`: [`GraphTool`] (what a tool declares and does) and [`Typed`] (the MCP tool
//!   made of it: schemas, argument validation, error text).
//! - `hello.rs`: [`HelloTool`], greets the signed-in user from their Graph profile.
//! - `upcoming_events.rs`: [`UpcomingEvents`], the user's next calendar events.
//!
//! A tool takes the [`crate::auth::Caller`] and its clients and returns its result or a
//! Graph error; it never touches HTTP requests or tokens. Adding one: docs/adding-a-tool.md.

mod hello;
mod surface;
mod upcoming_events;

use std::sync::Arc;

pub use hello::{Greeting, HelloTool};
pub use surface::{GraphTool, Reply, Typed, permission_values};
pub use upcoming_events::{Event, Events, UpcomingEvents};

use crate::graph::{BuildError, GraphClient};
use crate::mcp::Tool;

/// The registered tools, in order: adding a tool is its file and one line here. The
/// server, `mcp-obo doctor`, `mcp-obo tools` (the Bicep's permissions file) and the dev
/// Graph emulator all read this list.
const TOOLS: &[Registration] = &[register::<HelloTool>(), register::<UpcomingEvents>()];

/// Every tool the server offers, built, in registration order.
///
/// # Errors
/// When a tool's Graph endpoint cannot be prepared.
pub fn all(graph: &GraphClient) -> Result<Vec<Arc<dyn Tool>>, BuildError> {
    TOOLS.iter().map(|r| (r.build)(graph)).collect()
}

/// One entry of [`TOOLS`]: what is known of the tool without building it, and how to build it.
struct Registration {
    info: ToolInfo,
    build: fn(&GraphClient) -> Result<Arc<dyn Tool>, BuildError>,
}

const fn register<T: GraphTool>() -> Registration {
    Registration {
        info: ToolInfo {
            name: T::NAME,
            permissions: T::PERMISSIONS,
        },
        build: tool::<T>,
    }
}

fn tool<T: GraphTool>(graph: &GraphClient) -> Result<Arc<dyn Tool>, BuildError> {
    Ok(Arc::new(Typed::<T>::new(graph)?))
}

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
pub fn catalog() -> impl Iterator<Item = &'static ToolInfo> + Clone {
    TOOLS.iter().map(|r| &r.info)
}

/// Every Graph delegated permission some registered tool needs, each once, in the order the
/// tools declare them.
pub fn graph_permissions() -> Vec<GraphPermission> {
    let mut all: Vec<GraphPermission> = Vec::new();
    for permission in catalog().flat_map(|t| t.permissions) {
        if !all.contains(permission) {
            all.push(*permission);
        }
    }
    all
}

/// Microsoft Graph's application id, the same in every tenant and cloud.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_lists_exactly_the_registered_tools_and_their_permissions() {
        let settings = crate::graph::Settings {
            base_url: url::Url::parse("https://graph.microsoft.com").expect("url"),
            connect_timeout: std::time::Duration::from_secs(1),
            timeout: std::time::Duration::from_secs(1),
            scopes: crate::graph::ScopeMode::PerTool,
        };
        let graph = GraphClient::new(&settings, Arc::new(crate::obo::Unconfigured)).expect("graph");
        let registered: Vec<(String, String)> = all(&graph)
            .expect("tools")
            .iter()
            .map(|t| (t.definition().name.to_string(), t.permissions().to_owned()))
            .collect();
        let catalogued: Vec<(String, String)> = catalog()
            .map(|t| {
                (
                    t.name.to_owned(),
                    permission_values(t.permissions).join(" "),
                )
            })
            .collect();
        assert_eq!(registered, catalogued);
    }
}
