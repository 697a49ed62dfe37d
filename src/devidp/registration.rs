//! The dev app registration as Microsoft Graph describes it: what an administrator (or
//! `infra/modules/entra-app.bicep`) sets up in a real tenant for this server, here matching
//! the dev provider exactly, so `mcp-obo doctor` against `mcp-obo dev` passes every check.
//! The documents' shapes are `shapes.rs`'s; this file holds the dev values.

use serde_json::Value;

use super::shapes;
use super::{DEV_APP, DEV_MANAGED_IDENTITY, EXCHANGE_AUDIENCE};
use crate::tools::{GRAPH_APP_ID, graph_permissions};

/// The `user_impersonation` scope's id in the dev registration.
const SCOPE_ID: &str = "00000000-0000-4000-8000-00000000005c";
/// VS Code's well-known client id, pre-authorized as `entra-app.bicep` does by default.
const VS_CODE: &str = "aebc6443-996d-45c2-90f0-388ff96faa56";
/// Object ids of the dev app's and Graph's service principals in the dev tenant.
const APP_SP: &str = "00000000-0000-4000-8000-0000000005a1";
const GRAPH_SP: &str = "00000000-0000-4000-8000-000000000563";

/// The registration, for one run of `mcp-obo dev`.
pub struct Registration {
    /// The MCP URL (RFC 8707 resource) listed as an identifier URI.
    pub mcp_url: String,
    /// The issuer of the dev managed identity's assertions.
    pub identity_issuer: String,
}

impl Registration {
    pub fn application(&self, app_id: &str) -> Option<Value> {
        (app_id == DEV_APP).then(|| {
            let permissions = graph_permissions();
            shapes::application(&shapes::Application {
                object_id: "00000000-0000-4000-8000-0000000000b1",
                app_id: DEV_APP,
                display_name: "mcp-obo (dev)",
                identifier_uris: vec![format!("api://{DEV_APP}"), self.mcp_url.clone()],
                scope_id: SCOPE_ID,
                pre_authorized: &[VS_CODE],
                graph_permission_ids: permissions.iter().map(|p| p.id).collect(),
            })
        })
    }

    pub fn federated_credentials(&self, app_id: &str) -> Option<Value> {
        (app_id == DEV_APP).then(|| {
            shapes::federated_credentials(&[shapes::FederatedCredential {
                id: "00000000-0000-4000-8000-0000000000f2",
                name: "dev-managed-identity",
                issuer: &self.identity_issuer,
                subject: DEV_MANAGED_IDENTITY,
                audience: EXCHANGE_AUDIENCE,
            }])
        })
    }

    pub fn service_principal(&self, app_id: &str) -> Option<Value> {
        match app_id {
            DEV_APP => Some(shapes::service_principal(APP_SP, DEV_APP, "mcp-obo (dev)")),
            GRAPH_APP_ID => Some(shapes::service_principal(
                GRAPH_SP,
                GRAPH_APP_ID,
                "Microsoft Graph",
            )),
            _ => None,
        }
    }

    /// The one grant there is: admin consent for the dev app to Graph's permissions. A
    /// `$filter` naming another client gets none.
    pub fn grants(&self, filter: Option<&str>) -> Value {
        if filter.is_some_and(|f| f.contains("clientId") && !f.contains(APP_SP)) {
            return shapes::page(None, Vec::new(), None);
        }
        let scope: Vec<&str> = graph_permissions().iter().map(|p| p.value).collect();
        let grant = shapes::permission_grant(&shapes::PermissionGrant {
            id: "dev-grant",
            client_id: APP_SP,
            resource_id: GRAPH_SP,
            principal: None,
            scope: &scope.join(" "),
        });
        shapes::page(None, vec![grant], None)
    }
}
