//! Step 5 (`--url`): a running deployment, seen as an MCP client sees it. A POST without a
//! token must get 401 naming the protected resource metadata (RFC 9728); the metadata's
//! `resource` must be the URL itself; its authorization server's metadata must be
//! reachable; and the scopes it advertises must be ones the app registration defines.

use serde::Deserialize;
use url::Url;

use super::Check;
use super::graph_shapes::Application;
use super::probe::Probe;

#[derive(Deserialize)]
struct Metadata {
    resource: Option<String>,
    #[serde(default)]
    authorization_servers: Vec<String>,
    #[serde(default)]
    scopes_supported: Vec<String>,
}

const FIX_PUBLIC_URL: &str = "set server.public_url (MCP_OBO__SERVER__PUBLIC_URL) to";

/// The `resource_metadata` parameter of a `Bearer` challenge. Its value is a URL, which
/// holds no quote, so the quoted-string needs no unescaping.
fn resource_metadata(challenge: &str) -> Option<&str> {
    let start = challenge.find("resource_metadata=\"")? + "resource_metadata=\"".len();
    let rest = &challenge[start..];
    Some(&rest[..rest.find('"')?])
}

/// Where RFC 9728 §3.1 puts the metadata of `url`: the well-known path inserted before its
/// path.
fn well_known_for(url: &Url) -> String {
    let path = url.path().trim_end_matches('/');
    format!(
        "{}/.well-known/oauth-protected-resource{path}",
        url.origin().ascii_serialization()
    )
}

/// The challenge, the metadata it names, then the authorization server and scopes that
/// metadata advertises; a failure ends the step with its line.
pub async fn check(probe: &Probe, url: &Url, app: Option<&Application>) -> Vec<Check> {
    let mcp = Mcp {
        url,
        origin: url.origin().ascii_serialization(),
        trimmed: url.as_str().trim_end_matches('/'),
    };
    let mut checks = Vec::new();
    let metadata_url = match challenge(probe, &mcp).await {
        Ok((passed, metadata_url)) => {
            checks.push(passed);
            metadata_url
        }
        Err(failed) => return vec![failed],
    };
    let metadata = match metadata(probe, &mcp, &metadata_url).await {
        Ok((passed, metadata)) => {
            checks.push(passed);
            metadata
        }
        Err(failed) => {
            checks.push(failed);
            return checks;
        }
    };
    checks.push(authorization_server(probe, metadata.authorization_servers.first()).await);
    checks.push(scopes(&metadata.scopes_supported, app));
    checks
}

/// The deployment's MCP URL, as given and as compared and shown.
struct Mcp<'a> {
    url: &'a Url,
    origin: String,
    /// Without a trailing slash.
    trimmed: &'a str,
}

/// An unauthenticated `initialize` must get 401 naming its resource metadata (the URL).
async fn challenge(probe: &Probe, mcp: &Mcp<'_>) -> Result<(Check, String), Check> {
    let mcp_url = mcp.trimmed;
    let request = probe
        .client()
        .post(mcp.url.clone())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"mcp-obo-doctor","version":"1"}}}"#);
    let answer = probe.send(request).await.map_err(|e| {
        Check::fail(
            "deployment.challenge",
            format!("cannot reach {mcp_url}: {e}"),
            "check the URL (azd env get-value MCP_URL) and that the app is running (`az containerapp show -n <app> -g <group> --query properties.runningStatus`)",
        )
    })?;
    let metadata_url = answer
        .www_authenticate()
        .and_then(resource_metadata)
        .map(str::to_owned);
    let Some(metadata_url) = metadata_url.filter(|_| answer.status == 401) else {
        return Err(Check::fail(
            "deployment.challenge",
            format!("an unauthenticated POST to {mcp_url} got HTTP {} without a resource_metadata challenge: MCP clients cannot discover where to sign in", answer.status),
            "set auth.mode (MCP_OBO__AUTH__MODE) to entra; with Container Apps authentication in front, let unauthenticated requests through (unauthenticatedClientAction: AllowAnonymous) so the server answers the challenge",
        ).took(answer.took));
    };
    let passed = Check::pass(
        "deployment.challenge",
        format!("401 with resource_metadata {metadata_url}"),
    )
    .took(answer.took);
    Ok((passed, metadata_url))
}

/// The metadata must be where RFC 9728 puts the URL's, and name the URL as its resource.
async fn metadata(
    probe: &Probe,
    mcp: &Mcp<'_>,
    metadata_url: &str,
) -> Result<(Check, Metadata), Check> {
    let (mcp_url, origin) = (mcp.trimmed, &mcp.origin);
    let expected_metadata = well_known_for(mcp.url);
    if metadata_url != expected_metadata {
        return Err(Check::fail(
            "deployment.metadata",
            format!(
                "the challenge names {metadata_url}, but the metadata of {mcp_url} is at {expected_metadata}: server.public_url is not the URL clients use"
            ),
            format!("{FIX_PUBLIC_URL} {origin}"),
        ));
    }
    let answer = probe.get(metadata_url, None).await.map_err(|e| {
        Check::fail(
            "deployment.metadata",
            format!("cannot reach {metadata_url}: {e}"),
            format!("{FIX_PUBLIC_URL} {origin}"),
        )
    })?;
    let (metadata, took) = match (answer.status, answer.json::<Metadata>()) {
        (200, Some(metadata)) => (metadata, answer.took),
        (status, _) => {
            return Err(Check::fail(
                "deployment.metadata",
                format!("{metadata_url} answered HTTP {status} without protected resource metadata"),
                "the server serves it itself; check that nothing in front of it (ingress, Container Apps authentication) intercepts /.well-known/",
            ).took(answer.took));
        }
    };
    match metadata.resource.as_deref() {
        Some(resource) if resource == mcp_url => {
            let passed = Check::pass("deployment.metadata", format!("resource {resource}"));
            Ok((passed.took(took), metadata))
        }
        other => Err(Check::fail(
            "deployment.metadata",
            format!(
                "the metadata says resource {}, not {mcp_url}: clients refuse it (RFC 9728 §3.3)",
                other.unwrap_or("(none)")
            ),
            format!("{FIX_PUBLIC_URL} {origin}"),
        )
        .took(took)),
    }
}

/// OpenID Connect discovery (what Entra serves), else RFC 8414's path-inserted form.
async fn authorization_server(probe: &Probe, server: Option<&String>) -> Check {
    let id = "deployment.authorization_server";
    let Some(server) = server else {
        return Check::fail(
            id,
            "the metadata names no authorization server",
            "set auth.authorization_servers (MCP_OBO__AUTH__AUTHORIZATION_SERVERS) or entra.tenant_id",
        );
    };
    let issuer = server.trim_end_matches('/');
    let mut candidates = vec![format!("{issuer}/.well-known/openid-configuration")];
    if let Ok(parsed) = Url::parse(issuer) {
        candidates.push(format!(
            "{}/.well-known/oauth-authorization-server{}",
            parsed.origin().ascii_serialization(),
            parsed.path().trim_end_matches('/')
        ));
    }
    for candidate in &candidates {
        if let Ok(answer) = probe.get(candidate, None).await
            && answer.status == 200
            && answer
                .json::<serde_json::Value>()
                .is_some_and(|d| d["issuer"].is_string())
        {
            return Check::pass(id, format!("{candidate} answers")).took(answer.took);
        }
    }
    Check::fail(
        id,
        format!(
            "no metadata for the authorization server {issuer} (tried {})",
            candidates.join(", ")
        ),
        "check entra.tenant_id (AZURE_TENANT_ID) and entra.authority_host, or auth.authorization_servers",
    )
}

/// Each advertised scope is `{identifier URI}/{scope}` for an enabled scope of the app.
fn scopes(advertised: &[String], app: Option<&Application>) -> Check {
    let id = "deployment.scopes";
    let Some(app) = app else {
        return Check::warn(
            id,
            format!(
                "advertises {}; not compared: the app registration was not read (see app.read)",
                advertised.join(" ")
            ),
            "give doctor a Graph token (az login, or --graph-token-file) to compare them",
        );
    };
    let defined = |scope: &str| {
        app.identifier_uris.iter().any(|uri| {
            scope
                .strip_prefix(uri.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|value| {
                    app.api
                        .oauth2_permission_scopes
                        .iter()
                        .any(|s| s.is_enabled && s.value == value)
                })
        })
    };
    match advertised.iter().find(|s| !defined(s)) {
        None => Check::pass(
            id,
            format!(
                "advertises {}, all defined by the app registration",
                advertised.join(" ")
            ),
        ),
        Some(scope) => Check::fail(
            id,
            format!(
                "advertises {scope}, which the app registration does not define: sign-in fails with AADSTS65005 / AADSTS500011"
            ),
            "set auth.identifier_uris (MCP_OBO__AUTH__IDENTIFIER_URIS) to the app's identifier URI and auth.required_scopes to a scope it exposes, then redeploy",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_names_its_metadata() {
        assert_eq!(
            resource_metadata(
                r#"Bearer resource_metadata="https://h/.well-known/oauth-protected-resource/mcp", scope="api://x/s""#
            ),
            Some("https://h/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(resource_metadata("Bearer realm=\"x\""), None);
    }

    #[test]
    fn the_metadata_of_a_path_is_path_inserted() {
        let url = Url::parse("https://h.example/mcp").expect("url");
        assert_eq!(
            well_known_for(&url),
            "https://h.example/.well-known/oauth-protected-resource/mcp"
        );
    }
}
