//! RFC 9728 protected resource metadata: tells MCP clients which authorization server to
//! sign the user in with and which scopes to ask for.
//!
//! Served without authorization at `/.well-known/oauth-protected-resource` (resource = the
//! public origin) and at the path-inserted form of every MCP path (resource = that MCP URL).

use std::net::IpAddr;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::{AuthMode, Entra, Settings};
use crate::config::trim_slash;

/// The well-known prefix (RFC 9728 §3).
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// What the metadata says, computed once from settings.
#[derive(Debug, Clone)]
pub struct ResourceMetadata {
    /// Canonical public base URL: lowercase scheme and host, no trailing slash.
    base: String,
    /// Derive the base from forwarded headers of these peers when `public_url` was derived.
    trusted_proxies: Vec<IpAddr>,
    authorization_servers: Vec<String>,
    /// Scopes as clients must request them (Entra: `api://{app}/user_impersonation`).
    scopes_supported: Vec<String>,
    /// Prefix that turns a `scp` value into a requestable scope (`api://{app}`), Entra only.
    scope_prefix: Option<String>,
    resource_name: String,
}

impl ResourceMetadata {
    /// The metadata for `auth`'s mode. `public_url` is the canonical base; the forwarded
    /// headers of `trusted_proxies` may name another (empty when the URL is configured).
    pub fn from_settings(
        auth: &Settings,
        entra: &Entra,
        public_url: &url::Url,
        trusted_proxies: &[IpAddr],
        tool_scopes: &[String],
    ) -> Self {
        let (authorization_servers, scope_prefix) = match auth.mode {
            AuthMode::Entra | AuthMode::EasyAuth => (
                vec![entra.v2_endpoint()],
                entra.identifier_uris.first().cloned(),
            ),
            AuthMode::Oidc | AuthMode::None => (auth.issuer.iter().map(trim_slash).collect(), None),
        };
        let authorization_servers = if auth.authorization_servers.is_empty() {
            authorization_servers
        } else {
            auth.authorization_servers.iter().map(trim_slash).collect()
        };
        let mut meta = Self {
            base: canonical(&trim_slash(public_url)),
            trusted_proxies: trusted_proxies.to_vec(),
            authorization_servers,
            scopes_supported: Vec::new(),
            scope_prefix,
            resource_name: auth.resource_name.clone(),
        };
        let mut scopes: Vec<String> = auth
            .required_scopes
            .iter()
            .map(|s| meta.advertise(s))
            .collect();
        for s in tool_scopes {
            let advertised = meta.advertise(s);
            if !scopes.contains(&advertised) {
                scopes.push(advertised);
            }
        }
        meta.scopes_supported = scopes;
        meta
    }

    /// A `scp` value as clients must request it.
    pub fn advertise(&self, scope: &str) -> String {
        match &self.scope_prefix {
            Some(prefix) if !scope.contains("://") => {
                format!("{}/{scope}", prefix.trim_end_matches('/'))
            }
            _ => scope.to_owned(),
        }
    }

    /// The public base for this request: the configured URL, or — only when it was derived
    /// and the peer is a trusted proxy — the forwarded host and scheme.
    pub fn base_for(&self, req: &HttpRequest) -> String {
        let trusted = req
            .peer_addr()
            .is_some_and(|peer| self.trusted_proxies.contains(&peer.ip()));
        if trusted {
            // Each proxy appends to what it received: the last value (of the last header
            // line) is the trusted proxy's own, earlier ones are whatever the client sent.
            let header = |name: &str| {
                req.headers()
                    .get_all(name)
                    .last()
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.rsplit(',').next())
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
            };
            if let Some(host) = header("x-forwarded-host")
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
            {
                let proto = header("x-forwarded-proto").filter(|p| p == "http" || p == "https");
                return canonical(&format!("{}://{host}", proto.as_deref().unwrap_or("https")));
            }
        }
        self.base.clone()
    }

    /// Where the metadata for `mcp_path` lives (the challenge's `resource_metadata`).
    pub fn metadata_url(&self, base: &str, mcp_path: &str) -> String {
        format!("{base}{WELL_KNOWN}{mcp_path}")
    }

    pub fn scopes_supported(&self) -> &[String] {
        &self.scopes_supported
    }

    fn document(&self, base: &str, resource_path: &str) -> serde_json::Value {
        json!({
            "resource": format!("{base}{resource_path}"),
            "authorization_servers": self.authorization_servers,
            "scopes_supported": self.scopes_supported,
            "bearer_methods_supported": ["header"],
            "resource_name": self.resource_name,
        })
    }

    /// Registers the metadata routes: the root document and one per protected path (the
    /// MCP mount points, which the caller passes in).
    pub fn routes(cfg: &mut web::ServiceConfig, protected: &[&'static str]) {
        cfg.route(WELL_KNOWN, web::get().to(serve_root));
        for path in protected.iter().copied() {
            cfg.route(
                &format!("{WELL_KNOWN}{path}"),
                web::get().to(move |req: HttpRequest, meta: web::Data<ResourceMetadata>| {
                    serve_path(req, meta, path)
                }),
            );
        }
    }
}

/// Lowercase scheme and host; path untouched.
fn canonical(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            format!(
                "{}://{}{}",
                scheme.to_ascii_lowercase(),
                host.to_ascii_lowercase(),
                path
            )
        }
        None => url.to_owned(),
    }
}

async fn serve_root(req: HttpRequest, meta: web::Data<ResourceMetadata>) -> HttpResponse {
    let base = meta.base_for(&req);
    respond(meta.document(&base, ""), !meta.trusted_proxies.is_empty())
}

/// The document for one protected path, named as mounted whatever spelling was requested.
async fn serve_path(
    req: HttpRequest,
    meta: web::Data<ResourceMetadata>,
    path: &'static str,
) -> HttpResponse {
    let base = meta.base_for(&req);
    respond(meta.document(&base, path), !meta.trusted_proxies.is_empty())
}

/// `forwarded`: the document may depend on `X-Forwarded-Host`/`-Proto` (trusted proxies are
/// configured), so a shared cache must neither keep it nor serve it for other values.
fn respond(doc: serde_json::Value, forwarded: bool) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if forwarded {
        response
            .insert_header(("cache-control", "private, max-age=3600"))
            .insert_header(("vary", "X-Forwarded-Host, X-Forwarded-Proto"));
    } else {
        response.insert_header(("cache-control", "public, max-age=3600"));
    }
    response
        .insert_header(("access-control-allow-origin", "*"))
        .json(doc)
}
