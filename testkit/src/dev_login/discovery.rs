//! Discovery as an MCP client does it: an unauthenticated request's 401 challenge, the
//! protected resource metadata (RFC 9728) it names, then the authorization server's
//! metadata (RFC 8414).

use std::collections::HashMap;

use serde_json::{Value, json};
use url::Url;

use super::http;

/// The parameters of a `WWW-Authenticate: Bearer k="v", k2=v2` challenge.
pub fn challenge_params(header: &str) -> HashMap<String, String> {
    let rest = header.trim();
    let rest = rest
        .strip_prefix("Bearer")
        .or_else(|| rest.strip_prefix("bearer"))
        .unwrap_or(rest);
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if name.is_empty() || chars.next() != Some('=') {
            return params;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value =
                std::iter::from_fn(|| chars.next_if(|c| *c != ',' && !c.is_whitespace())).collect();
        }
        params.insert(name.trim().to_owned(), value);
    }
}

/// RFC 8414 §3.1: the metadata URL of an issuer with a path is
/// `{origin}/.well-known/oauth-authorization-server{path}`.
pub fn rfc8414_metadata_url(issuer: &str) -> String {
    let url = Url::parse(issuer).expect("issuer is a URL");
    let path = url.path().trim_end_matches('/');
    format!(
        "{}/.well-known/oauth-authorization-server{path}",
        url.origin().ascii_serialization()
    )
}

/// What an unauthenticated MCP request leads to.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The 401's `WWW-Authenticate` header.
    pub www_authenticate: String,
    /// Its `resource_metadata` parameter.
    pub resource_metadata_url: String,
    /// Its `scope` parameter, when present.
    pub challenge_scope: Option<String>,
    /// The protected resource metadata document.
    pub protected_resource: Value,
    /// The RFC 8414 metadata URL derived from `authorization_servers[0]`.
    pub metadata_url: String,
    /// The authorization server metadata.
    pub metadata: Value,
}

impl Discovery {
    pub fn resource(&self) -> &str {
        self.protected_resource["resource"]
            .as_str()
            .expect("PRM resource")
    }
    pub fn authorization_server(&self) -> &str {
        self.protected_resource["authorization_servers"][0]
            .as_str()
            .expect("PRM authorization_servers[0]")
    }
    pub fn issuer(&self) -> &str {
        self.metadata["issuer"].as_str().expect("metadata issuer")
    }
    pub fn authorization_endpoint(&self) -> &str {
        self.metadata["authorization_endpoint"]
            .as_str()
            .expect("authorization_endpoint")
    }
    pub fn token_endpoint(&self) -> &str {
        self.metadata["token_endpoint"]
            .as_str()
            .expect("token_endpoint")
    }
    pub fn registration_endpoint(&self) -> &str {
        self.metadata["registration_endpoint"]
            .as_str()
            .expect("registration_endpoint")
    }
    /// The scope to request: the challenge's, else the PRM's `scopes_supported`.
    pub fn scope(&self) -> String {
        self.challenge_scope.clone().unwrap_or_else(|| {
            self.protected_resource["scopes_supported"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default()
        })
    }
}

/// POSTs an MCP `initialize` without a token and follows the 401 challenge to the
/// authorization server's metadata, checking each hop.
pub async fn discover(mcp_url: &str) -> Discovery {
    let http = http();
    let reply = http
        .post(mcp_url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "dev-login", "version": "1"}}})
            .to_string(),
        )
        .send()
        .await
        .expect("the MCP server answers");
    assert_eq!(reply.status(), 401, "an unauthenticated MCP request");
    let www_authenticate = reply
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .expect("a 401 carries WWW-Authenticate")
        .to_owned();
    assert!(
        www_authenticate.to_ascii_lowercase().starts_with("bearer"),
        "{www_authenticate}"
    );
    let params = challenge_params(&www_authenticate);
    let resource_metadata_url = params
        .get("resource_metadata")
        .unwrap_or_else(|| panic!("no resource_metadata in {www_authenticate}"))
        .clone();
    let protected_resource = get_json(&http, &resource_metadata_url).await;
    let issuer = protected_resource["authorization_servers"][0]
        .as_str()
        .unwrap_or_else(|| panic!("PRM without authorization_servers: {protected_resource}"))
        .to_owned();
    let metadata_url = rfc8414_metadata_url(&issuer);
    let metadata = get_json(&http, &metadata_url).await;
    Discovery {
        www_authenticate,
        resource_metadata_url,
        challenge_scope: params.get("scope").cloned(),
        protected_resource,
        metadata_url,
        metadata,
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let reply = http.get(url).send().await.expect("GET answers");
    assert_eq!(reply.status(), 200, "GET {url}");
    reply.json().await.unwrap_or_else(|e| panic!("{url}: {e}"))
}
