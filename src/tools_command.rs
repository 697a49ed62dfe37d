//! `mcp-obo tools`: the registered tools and the Microsoft Graph delegated permissions they
//! need, for people (a table) and for the Bicep (`--permissions-json`, committed as
//! `infra/graph-permissions.json` and read there with `loadJsonContent`). It only reads
//! [`crate::tools::catalog`], so it lives beside the tools rather than in them: the tool
//! surface stays the tools' own, and this file is the one consumer that turns it into text.

use serde::Serialize;

use crate::tools::{GRAPH_APP_ID, catalog, graph_permissions};

/// The arguments of `mcp-obo tools`.
#[derive(Debug, clap::Args)]
pub struct ToolsArgs {
    /// Print the Graph permissions as JSON, the file the Bicep reads:
    /// `mcp-obo tools --permissions-json > infra/graph-permissions.json`.
    #[arg(long)]
    pub permissions_json: bool,
}

/// The permissions file: `resourceAccess` is `[for p in permissions: {id: p.id, type:
/// 'Scope'}]`, the admin consent grant's `scope` is `scope` (the values, space-separated).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionsFile {
    /// Microsoft Graph's application id (`requiredResourceAccess[].resourceAppId`).
    pub resource_app_id: &'static str,
    /// Every permission once, in the order the tools declare them.
    pub permissions: Vec<Permission>,
    /// The values joined by spaces, as an `oauth2PermissionGrant`'s `scope` wants them
    /// (the Bicep parser the lint uses has no lambdas for `join(map(...))`).
    pub scope: String,
}

/// One delegated permission and the tools that need it.
#[derive(Debug, Serialize)]
pub struct Permission {
    /// As in `scp`, e.g. `User.Read`.
    pub value: &'static str,
    /// Its id on Microsoft Graph's service principal.
    pub id: &'static str,
    /// The registered tools whose calls need it.
    pub tools: Vec<&'static str>,
}

/// The permissions file's content, derived from the catalog.
pub fn permissions_file() -> PermissionsFile {
    let permissions: Vec<Permission> = graph_permissions()
        .into_iter()
        .map(|p| Permission {
            value: p.value,
            id: p.id,
            tools: catalog()
                .filter(|t| t.permissions.contains(&p))
                .map(|t| t.name)
                .collect(),
        })
        .collect();
    let scope = permissions
        .iter()
        .map(|p| p.value)
        .collect::<Vec<_>>()
        .join(" ");
    PermissionsFile {
        resource_app_id: GRAPH_APP_ID,
        permissions,
        scope,
    }
}

/// `--permissions-json`'s output: pretty JSON with a final newline, byte for byte the
/// committed file.
pub fn permissions_json() -> String {
    // Serializing a struct of strings cannot fail; an empty object would still be valid JSON.
    let mut text =
        serde_json::to_string_pretty(&permissions_file()).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}

/// The table for people: each tool and its permissions.
pub fn table() -> String {
    let width = catalog().map(|t| t.name.len()).max().unwrap_or(4).max(4);
    let mut out = format!("{:width$}  MICROSOFT GRAPH DELEGATED PERMISSIONS\n", "TOOL");
    for tool in catalog() {
        let values: Vec<&str> = tool.permissions.iter().map(|p| p.value).collect();
        out.push_str(&format!("{:width$}  {}\n", tool.name, values.join(" ")));
    }
    out
}

/// Runs `mcp-obo tools`: prints and succeeds (it needs no configuration).
pub fn run(args: &ToolsArgs) -> std::process::ExitCode {
    if args.permissions_json {
        print!("{}", permissions_json());
    } else {
        print!("{}", table());
    }
    std::process::ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_permission_is_in_the_file_with_the_tools_that_need_it() {
        let file = permissions_file();
        assert_eq!(file.permissions.len(), graph_permissions().len());
        for tool in catalog() {
            for p in tool.permissions {
                let entry = file.permissions.iter().find(|e| e.id == p.id);
                assert!(entry.is_some_and(|e| e.tools.contains(&tool.name)), "{p:?}");
            }
        }
        assert!(
            file.scope
                .split(' ')
                .eq(file.permissions.iter().map(|p| p.value))
        );
    }

    #[test]
    fn the_table_lists_each_tool_with_its_permissions() {
        let table = table();
        for tool in catalog() {
            let line = table.lines().find(|l| l.starts_with(tool.name));
            assert!(
                line.is_some_and(|l| tool.permissions.iter().all(|p| l.contains(p.value))),
                "{table}"
            );
        }
    }
}
