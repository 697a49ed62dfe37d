//! Step 1: the configuration `serve` would run with. What the loader refuses (every
//! problem `mcp-obo config` reports) is one failing line each; on a valid configuration,
//! the cross-checks no single value shows.

use crate::auth::AuthMode;
use crate::config::{Problem, is_loopback_url, trim_slash};
use crate::settings::Loaded;

use super::Check;
use super::expect::Expected;

/// `server.public_url` → `MCP_OBO__SERVER__PUBLIC_URL`.
pub fn env_name(key: &str) -> String {
    format!("MCP_OBO__{}", key.replace('.', "__").to_ascii_uppercase())
}

/// One failing line per problem the loader found.
pub fn problems(problems: &[Problem]) -> Vec<Check> {
    problems
        .iter()
        .map(|p| {
            let fix = if p.key.contains('.') {
                format!(
                    "set {} ({}) in the configuration file or environment; `mcp-obo config` shows each value and where it came from",
                    p.key,
                    env_name(&p.key)
                )
            } else {
                "fix the configuration file named by --config / MCP_OBO_CONFIG".to_owned()
            };
            Check::fail("config.valid", p.to_string(), fix)
        })
        .collect()
}

/// The checks on a configuration that loaded.
pub fn checks(loaded: &Loaded, expected: &Expected) -> Vec<Check> {
    let s = &loaded.settings;
    let mut checks = vec![Check::pass(
        "config.valid",
        "the configuration loads (as `mcp-obo config` shows it)",
    )];
    checks.push(match s.auth.mode {
        AuthMode::Entra | AuthMode::EasyAuth => Check::pass(
            "config.auth_mode",
            format!(
                "auth.mode = {}: tenant {}, application {}",
                s.auth.mode.as_str(),
                s.entra.tenancy.path(),
                expected.client_id
            ),
        ),
        AuthMode::Oidc => Check::pass(
            "config.auth_mode",
            "auth.mode = oidc: the Entra app registration checks do not apply",
        ),
        AuthMode::None => Check::warn(
            "config.auth_mode",
            "auth.mode = none: local mode with your own sign-in; the Entra checks are skipped",
            "to check a deployment's configuration, run doctor with its settings: MCP_OBO__AUTH__MODE=entra, AZURE_TENANT_ID, AZURE_CLIENT_ID (azd env get-values shows them)",
        ),
    });
    checks.push(public_url(loaded));
    if matches!(s.auth.mode, AuthMode::Entra | AuthMode::EasyAuth) {
        checks.push(scopes(expected));
    }
    checks.push(client_assertion(loaded));
    checks
}

fn public_url(loaded: &Loaded) -> Check {
    let url = &loaded.settings.server.public_url;
    let shown = trim_slash(url);
    let source = loaded
        .effective
        .get("server.public_url")
        .map(|(_, source)| source.to_string())
        .unwrap_or_default();
    if url.scheme() == "https" {
        Check::pass(
            "config.public_url",
            format!("server.public_url = {shown} ({source})"),
        )
    } else if is_loopback_url(url) {
        Check::pass(
            "config.public_url",
            format!("server.public_url = {shown} ({source}; plain http, loopback only)"),
        )
    } else {
        Check::fail(
            "config.public_url",
            format!(
                "server.public_url = {shown} is plain http on a host that is not loopback: MCP clients refuse it and tokens would cross the network in the clear"
            ),
            "set server.public_url (MCP_OBO__SERVER__PUBLIC_URL) to the https URL clients use, e.g. https://<app>.azurecontainerapps.io",
        )
    }
}

/// The advertised scopes must sit under an identifier URI the server accepts as audience,
/// spelled as Entra compares it (exactly: no trailing slash).
fn scopes(expected: &Expected) -> Check {
    if let Some(uri) = expected.identifier_uris.iter().find(|u| u.ends_with('/')) {
        return Check::fail(
            "config.scopes",
            format!(
                "auth.identifier_uris has {uri:?} with a trailing slash: Entra compares identifier URIs exactly, so a client asking for the scope without it gets AADSTS9010010 / AADSTS500011"
            ),
            format!(
                "set auth.identifier_uris (MCP_OBO__AUTH__IDENTIFIER_URIS) to {:?}, the identifier URI exactly as the app registration lists it",
                uri.trim_end_matches('/')
            ),
        );
    }
    // Each advertised scope is `{resource}/{name}`: a scope configured with its resource
    // spelled out is advertised as written, so its resource may be one the server refuses
    // (the prefix itself is always accepted: it is the first identifier URI).
    let foreign = expected.advertised_scopes.iter().find_map(|scope| {
        let (resource, name) = scope.rsplit_once('/')?;
        (!expected.accepted_audiences.iter().any(|a| a == resource))
            .then_some((scope, resource, name))
    });
    if let Some((scope, resource, name)) = foreign {
        return Check::fail(
            "config.scopes",
            format!(
                "clients are told to request {scope}, a scope of {resource}, which is not an audience the server accepts: the tokens they get are refused"
            ),
            format!(
                "write the scope as its bare name ({name}) in auth.required_scopes / auth.tool_scopes (MCP_OBO__AUTH__REQUIRED_SCOPES, MCP_OBO__AUTH__TOOL_SCOPES) so it is advertised under {}, or, if {resource} is this app's identifier URI, list it in auth.identifier_uris (MCP_OBO__AUTH__IDENTIFIER_URIS)",
                expected.scope_prefix.trim_end_matches('/')
            ),
        );
    }
    Check::pass(
        "config.scopes",
        format!(
            "clients are told to request {}; tokens for {} are accepted",
            expected.advertised_scopes.join(" "),
            expected.scope_prefix
        ),
    )
}

fn client_assertion(loaded: &Loaded) -> Check {
    let s = &loaded.settings;
    if s.auth.mode == AuthMode::None {
        return Check::pass(
            "config.client_assertion",
            "local mode: tools use your developer sign-in (az login / azd auth login), no exchange",
        );
    }
    match s.obo.client_assertion {
        Some(kind) => {
            let source = loaded
                .effective
                .get("obo.client_assertion")
                .map(|(_, source)| source.to_string())
                .unwrap_or_default();
            Check::pass(
                "config.client_assertion",
                format!("obo.client_assertion = {} ({source})", kind.as_str()),
            )
        }
        None => Check::warn(
            "config.client_assertion",
            "no client assertion on this machine (no IDENTITY_ENDPOINT, AZURE_FEDERATED_TOKEN_FILE or obo.client_assertion): tools that call Graph would answer \"not configured\"",
            "run doctor where the server runs (a managed identity or workload identity is detected there), or set obo.client_assertion (MCP_OBO__OBO__CLIENT_ASSERTION) = certificate with obo.certificate_file",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_follow_the_double_underscore_convention() {
        assert_eq!(env_name("server.public_url"), "MCP_OBO__SERVER__PUBLIC_URL");
    }

    #[test]
    fn a_loader_problem_is_a_failing_line_naming_its_variable() {
        let checks = problems(&[Problem::new("entra.client_id", "required")]);
        assert_eq!(
            checks[0].line(),
            "FAIL config.valid: entra.client_id: required"
        );
        assert!(
            checks[0]
                .fix
                .as_deref()
                .is_some_and(|f| f.contains("MCP_OBO__ENTRA__CLIENT_ID"))
        );
    }

    fn expected(identifier_uris: &[&str]) -> Expected {
        let uris: Vec<String> = identifier_uris.iter().map(|s| (*s).to_owned()).collect();
        let prefix = uris.first().cloned().unwrap_or_else(|| "api://app".into());
        Expected {
            client_id: "app".into(),
            accepted_audiences: vec!["app".into(), prefix.clone()],
            identifier_uris: uris,
            advertised_scopes: vec![format!(
                "{}/user_impersonation",
                prefix.trim_end_matches('/')
            )],
            scope_prefix: prefix,
            ..Expected::default()
        }
    }

    #[test]
    fn a_trailing_slash_on_an_identifier_uri_fails_with_the_spelling_to_use() {
        let check = scopes(&expected(&["api://app/"]));
        assert_eq!(check.status, super::super::Status::Fail);
        assert!(
            check
                .fix
                .as_deref()
                .is_some_and(|f| f.contains("\"api://app\""))
        );
        assert_eq!(
            scopes(&expected(&["api://app"])).status,
            super::super::Status::Pass
        );
    }

    #[test]
    fn a_scope_advertised_under_a_resource_the_server_refuses_fails_with_its_bare_name() {
        let mut e = expected(&["api://app"]);
        e.advertised_scopes
            .push("api://other-app/Files.Read".to_owned());
        let check = scopes(&e);
        assert_eq!(
            check.line(),
            "FAIL config.scopes: clients are told to request api://other-app/Files.Read, a scope of api://other-app, which is not an audience the server accepts: the tokens they get are refused"
        );
        assert!(
            check.fix.as_deref().is_some_and(|f| f
                .starts_with("write the scope as its bare name (Files.Read)")
                && f.contains("advertised under api://app,")),
            "{check:?}"
        );
        // Listed as an audience, the same scope passes.
        e.accepted_audiences.push("api://other-app".to_owned());
        assert_eq!(scopes(&e).status, super::super::Status::Pass);
    }
}
