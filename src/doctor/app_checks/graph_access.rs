//! Microsoft Graph access: the app requests every registered tool's delegated Graph
//! permissions, and the tenant has consented to them; each message names the tools a
//! missing permission breaks.

use crate::doctor::Check;
use crate::doctor::expect::Expected;
use crate::doctor::graph_shapes::{Application, PermissionGrant};
use crate::tools::{GRAPH_APP_ID, GraphPermission, catalog, graph_permissions};

/// The tools whose calls need `permission`, by name, for messages saying why it matters.
fn needed_by(permission: &GraphPermission) -> Vec<&'static str> {
    catalog()
        .filter(|t| t.permissions.contains(permission))
        .map(|t| t.name)
        .collect()
}

/// `User.Read (HelloTool) Calendars.Read (UpcomingEvents)`: each permission with its tools.
fn with_tools(permissions: &[GraphPermission]) -> String {
    permissions
        .iter()
        .map(|p| format!("{} ({})", p.value, needed_by(p).join(", ")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `HelloTool answers` / `HelloTool and UpcomingEvents answer`: the tools `missing` breaks.
fn tools_answer(missing: &[GraphPermission]) -> String {
    let mut tools: Vec<&str> = Vec::new();
    for tool in missing.iter().flat_map(needed_by) {
        if !tools.contains(&tool) {
            tools.push(tool);
        }
    }
    match tools.split_last() {
        Some((last, [])) => format!("{last} answers"),
        Some((last, rest)) => format!("{} and {last} answer", rest.join(", ")),
        None => "the tools answer".to_owned(),
    }
}

/// The app requests every Graph delegated permission of every registered tool.
pub fn required_access(app: &Application, e: &Expected) -> Check {
    let id = "app.graph_permissions";
    let graph = app
        .required_resource_access
        .iter()
        .find(|r| r.resource_app_id == GRAPH_APP_ID);
    let missing: Vec<_> = graph_permissions()
        .into_iter()
        .filter(|p| {
            !graph.is_some_and(|g| {
                g.resource_access
                    .iter()
                    .any(|a| a.id == p.id && a.kind == "Scope")
            })
        })
        .collect();
    if missing.is_empty() {
        return Check::pass(
            id,
            format!(
                "requests Microsoft Graph {}",
                with_tools(&graph_permissions())
            ),
        );
    }
    let lacks: Vec<String> = missing
        .iter()
        .map(|p| {
            format!(
                "{} (delegated), needed by {}",
                p.value,
                needed_by(p).join(", ")
            )
        })
        .collect();
    let ids: Vec<String> = missing.iter().map(|p| format!("{}=Scope", p.id)).collect();
    Check::fail(
        id,
        format!(
            "requiredResourceAccess lacks Microsoft Graph {}: {} AADSTS65001 until {} added",
            lacks.join("; "),
            tools_answer(&missing),
            if missing.len() == 1 {
                "it is"
            } else {
                "they are"
            }
        ),
        format!(
            "az ad app permission add --id {} --api {GRAPH_APP_ID} --api-permissions {}   (Bicep: infra/graph-permissions.json, written by mcp-obo tools --permissions-json)",
            e.client_id,
            ids.join(" ")
        ),
    )
}

/// Tenant-wide consent to every registered tool's Graph permissions, or each user consents
/// once.
pub fn admin_consent(grants: &[PermissionGrant], graph_sp_id: &str, e: &Expected) -> Check {
    let id = "app.admin_consent";
    let granted: Vec<&str> = grants
        .iter()
        .filter(|g| g.consent_type == "AllPrincipals" && g.resource_id == graph_sp_id)
        .flat_map(|g| g.scope.split_whitespace())
        .collect();
    let missing: Vec<GraphPermission> = graph_permissions()
        .into_iter()
        .filter(|p| !granted.iter().any(|g| g.eq_ignore_ascii_case(p.value)))
        .collect();
    if missing.is_empty() {
        return Check::pass(
            id,
            format!(
                "admin consent for Microsoft Graph {}",
                with_tools(&graph_permissions())
            ),
        );
    }
    Check::warn(
        id,
        format!(
            "no admin consent for {}: each user must consent once (until then {} AADSTS65001), at {}",
            with_tools(&missing),
            tools_answer(&missing),
            e.consent_url
        ),
        format!(
            "az ad app permission admin-consent --id {}   (or an administrator opens {}; Bicep parameter grantAdminConsent=true)",
            e.client_id,
            e.admin_consent_url()
        ),
    )
}
