//! Host and Origin allow-lists for the MCP endpoints: the DNS-rebinding defence the MCP
//! transport spec requires. Checked before authorization, so a hostile page learns nothing.
//!
//! - `Host` must name the public host (any port), a configured extra host, or, when the
//!   server listens on loopback, a loopback name. Missing `Host` → 400; other → 403.
//! - A request target in absolute form (`POST http://evil.example/mcp`) names the host
//!   itself, and RFC 9112 §3.2.2 has its authority win over `Host`: that authority must
//!   pass the same allow-list, and so must a `Host` sent with it. Either failing → 403.
//! - A present `Origin` must be the public origin, a configured extra origin, or (loopback
//!   listen) a loopback origin. Disallowed → 403. No `Origin` (non-browser clients) passes.

use std::net::IpAddr;
use std::rc::Rc;

use actix_web::HttpResponse;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use url::Url;

/// One allowed host: a name (any port) or a `name:port` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostRule {
    name: String,
    port: Option<u16>,
}

/// One allowed origin; `port: None` matches any port (used for loopback only).
#[derive(Debug, Clone, PartialEq, Eq)]
struct OriginRule {
    scheme: String,
    host: String,
    port: Option<u16>,
}

/// The effective allow-lists, computed once from settings.
#[derive(Debug, Clone)]
pub struct Origins {
    hosts: Vec<HostRule>,
    origins: Vec<OriginRule>,
}

const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

impl Origins {
    /// The allow-lists for a server reached at `public` (`server.public_url`), also under
    /// `allowed_hosts` and from `allowed_origins` (`server.allowed_hosts`,
    /// `server.allowed_origins`), and under loopback names when it listens on loopback.
    pub fn new(
        public: &Url,
        allowed_hosts: &[String],
        allowed_origins: &[String],
        loopback_listen: bool,
    ) -> Self {
        let mut hosts = Vec::new();
        let mut origins = Vec::new();
        if let Some(host) = public.host_str() {
            hosts.push(HostRule {
                name: host.to_ascii_lowercase(),
                port: None,
            });
            origins.push(OriginRule {
                scheme: public.scheme().to_owned(),
                host: host.to_ascii_lowercase(),
                port: public.port_or_known_default(),
            });
        }
        for entry in allowed_hosts {
            if let Some(rule) = parse_host(entry) {
                hosts.push(rule);
            }
        }
        for entry in allowed_origins {
            if let Ok(url) = Url::parse(entry)
                && let Some(host) = url.host_str()
            {
                origins.push(OriginRule {
                    scheme: url.scheme().to_owned(),
                    host: host.to_ascii_lowercase(),
                    port: url.port_or_known_default(),
                });
            }
        }
        if loopback_listen {
            for name in LOOPBACK_NAMES {
                hosts.push(HostRule {
                    name: name.to_owned(),
                    port: None,
                });
                for scheme in ["http", "https"] {
                    origins.push(OriginRule {
                        scheme: scheme.to_owned(),
                        host: name.to_owned(),
                        port: None,
                    });
                }
            }
        }
        Self { hosts, origins }
    }

    /// Whether a `Host` header value is allowed.
    pub fn host_allowed(&self, value: &str) -> bool {
        let Some(HostRule { name, port }) = parse_host(value) else {
            return false;
        };
        self.hosts
            .iter()
            .any(|rule| rule.name == name && (rule.port.is_none() || rule.port == port))
    }

    /// Whether an `Origin` header value is allowed.
    pub fn origin_allowed(&self, value: &str) -> bool {
        let Ok(url) = Url::parse(value) else {
            return false; // includes the opaque origin "null"
        };
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let port = url.port_or_known_default();
        self.origins.iter().any(|rule| {
            rule.scheme == url.scheme()
                && rule.host == host
                && (rule.port.is_none() || rule.port == port)
        })
    }
}

/// `name`, `name:port`, `[v6]` or `[v6]:port`, lowercased.
fn parse_host(value: &str) -> Option<HostRule> {
    let value = value.trim().to_ascii_lowercase();
    if value.is_empty() {
        return None;
    }
    if let Some(rest) = value.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        addr.parse::<IpAddr>().ok()?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some(HostRule {
            name: format!("[{addr}]"),
            port,
        });
    }
    let (name, port) = match value.rsplit_once(':') {
        Some((name, port)) => (name.to_owned(), Some(port.parse().ok()?)),
        None => (value, None),
    };
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    valid.then_some(HostRule { name, port })
}

impl Origins {
    /// The middleware, wrapped on the MCP route scopes: every request it sees is checked.
    pub async fn check(
        self: Rc<Self>,
        req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
        let origins = &*self;
        // Absolute form (HTTP/1.1) or `:authority` (HTTP/2): the host the target names.
        let target = req.uri().authority().map(|a| a.as_str().to_owned());
        let host = req.headers().get(header::HOST).map(|v| v.to_str().ok());
        if target.is_none() && host.is_none() {
            return Ok(reject(req, 400, "Bad Request: missing Host header"));
        }
        if let Some(target) = &target
            && !origins.host_allowed(target)
        {
            tracing::debug!(authority = %crate::telemetry::bounded(target), "rejected request: target authority not allowed");
            return Ok(reject(
                req,
                403,
                "Forbidden: the request target's host is not allowed",
            ));
        }
        if let Some(host) = host
            && !host.is_some_and(|h| origins.host_allowed(h))
        {
            tracing::debug!(host = %crate::telemetry::bounded(host.unwrap_or("(not text)")), "rejected request: Host not allowed");
            return Ok(reject(req, 403, "Forbidden: Host header is not allowed"));
        }
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let allowed = origin.to_str().is_ok_and(|o| origins.origin_allowed(o));
            if !allowed {
                tracing::debug!(origin = %crate::telemetry::bounded(&String::from_utf8_lossy(origin.as_bytes())), "rejected request: Origin not allowed");
                return Ok(reject(req, 403, "Forbidden: Origin is not allowed"));
            }
        }
        next.call(req)
            .await
            .map(ServiceResponse::map_into_left_body)
    }
}

fn reject<B>(req: ServiceRequest, status: u16, message: &str) -> ServiceResponse<EitherBody<B>> {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::FORBIDDEN);
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32600, "message": message},
    });
    let response = HttpResponse::build(status).json(body);
    req.into_response(response).map_into_right_body()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(listen: &str, public: &str) -> Origins {
        let listen: std::net::SocketAddr = listen.parse().expect("listen address");
        let public = Url::parse(public).expect("public URL");
        Origins::new(&public, &[], &[], listen.ip().is_loopback())
    }

    #[test]
    fn public_host_is_allowed_on_any_port_and_others_are_not() {
        let o = origins("127.0.0.1:7071", "https://mcp.example.com");
        assert!(o.host_allowed("mcp.example.com"));
        assert!(o.host_allowed("MCP.example.com:443"));
        assert!(o.host_allowed("localhost:7071"));
        assert!(o.host_allowed("[::1]:7071"));
        assert!(!o.host_allowed("evil.example"));
        assert!(!o.host_allowed("mcp.example.com.evil.example"));
        assert!(!o.host_allowed("bad host"));
    }

    #[test]
    fn origins_match_scheme_host_and_port() {
        let o = origins("127.0.0.1:7071", "https://mcp.example.com");
        assert!(o.origin_allowed("https://mcp.example.com"));
        assert!(!o.origin_allowed("http://mcp.example.com"));
        assert!(!o.origin_allowed("https://mcp.example.com:8443"));
        assert!(o.origin_allowed("http://localhost:6274"));
        assert!(!o.origin_allowed("null"));
        assert!(!o.origin_allowed("https://evil.example"));
    }
}
