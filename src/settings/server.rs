//! `[server]`: the HTTP listener and the MCP transport. The composition root's own section:
//! `server/` builds the app from it and hands `mcp/` the values each layer needs.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use url::Url;

use crate::config::{Problem, de, https_url, trim_slash};
use crate::mcp::RateLimit;

/// HTTP listener and MCP transport settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where to listen. `FUNCTIONS_CUSTOMHANDLER_PORT` overrides it under the Functions host.
    #[serde(deserialize_with = "listen")]
    pub listen: SocketAddr,
    /// The canonical public base URL clients use; the MCP endpoint is `{public_url}/mcp`.
    /// Drives the Host/Origin allow-lists and the protected resource metadata. When it is
    /// not configured the loader fills it in before reading this section: the platform's
    /// host name, else `local_url` of the listen address.
    #[serde(deserialize_with = "public_url")]
    pub public_url: Url,
    /// Extra accepted `Host` values (`name` matches any port, `name:port` only that port).
    #[serde(deserialize_with = "de::list")]
    pub allowed_hosts: Vec<String>,
    /// Extra accepted browser origins (`scheme://host[:port]`).
    #[serde(deserialize_with = "allowed_origins")]
    pub allowed_origins: Vec<String>,
    /// Whether sessions (`Mcp-Session-Id`) are offered to pre-2026 clients. Off by default:
    /// Functions custom-handler hosting and scale-out without affinity need stateless.
    #[serde(deserialize_with = "de::flag")]
    pub sessions: bool,
    /// Stateless mode: answer sessions-era `tools/list` / `tools/call` without rmcp's
    /// per-request transport (`mcp/direct.rs`). Off sends every request through rmcp.
    #[serde(deserialize_with = "de::flag")]
    pub fast_path: bool,
    /// Largest accepted request body; larger bodies get 413.
    #[serde(deserialize_with = "max_body_bytes")]
    pub max_body_bytes: usize,
    /// How long a request's whole body may take to arrive, from the start of the request;
    /// later gets 408 and the connection closed (`mcp/body_deadline.rs`).
    #[serde(deserialize_with = "de::duration")]
    pub body_timeout: Duration,
    /// MCP requests one user (tenant and user id) may have in flight; more get 429.
    #[serde(deserialize_with = "max_in_flight")]
    pub max_in_flight_per_user: u32,
    /// `tools/call`s per user and tenant (a token bucket); `None` when `off`.
    #[serde(deserialize_with = "rate_limit")]
    pub rate_limit: Option<RateLimit>,
    /// How long in-flight requests may run after SIGTERM/SIGINT before being dropped.
    #[serde(deserialize_with = "de::duration")]
    pub shutdown_timeout: Duration,
    /// HTTP worker threads; 0 means one per core.
    #[serde(deserialize_with = "workers")]
    pub workers: usize,
    /// Whether `public_url` was configured (or given by the platform) rather than derived
    /// from the listen address. Set by the loader.
    #[serde(skip)]
    pub public_url_explicit: bool,
    /// Peers whose `X-Forwarded-Host`/`-Proto` are believed when `public_url` is derived.
    #[serde(deserialize_with = "trusted_proxies")]
    pub trusted_proxies: Vec<IpAddr>,
}

impl Settings {
    /// Problems no single value shows.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.public_url_explicit
            && let Err(message) = https_url(&trim_slash(&self.public_url))
        {
            problems.push(Problem::new("server.public_url", message));
        }
        if self.max_body_bytes < 1024 {
            problems.push(Problem::new(
                "server.max_body_bytes",
                "must be at least 1024",
            ));
        }
        if self.body_timeout.is_zero() {
            problems.push(Problem::new(
                "server.body_timeout",
                "must be more than 0, such as 10s",
            ));
        }
        if self.max_in_flight_per_user == 0 {
            problems.push(Problem::new(
                "server.max_in_flight_per_user",
                "must be at least 1",
            ));
        }
        problems
    }

    /// The proxies whose forwarded headers may say the public URL: none when the URL is
    /// configured (it is then the only truth).
    pub fn forwarding_proxies(&self) -> &[IpAddr] {
        if self.public_url_explicit {
            &[]
        } else {
            &self.trusted_proxies
        }
    }
}

/// `server.rate_limit` as configured: `None` for `off` (or a rate of 0 calls).
pub fn parse_rate_limit(raw: &str) -> Result<Option<RateLimit>, String> {
    let calls = raw.split('/').next().unwrap_or("").trim();
    if raw.eq_ignore_ascii_case("off") || calls.parse::<u32>() == Ok(0) {
        return Ok(None);
    }
    raw.parse().map(Some).map_err(|()| {
        format!(
            "{raw:?} is not valid; expected off or calls per period and a burst, such as \
             10/s burst 60 (period: s, min, h or a duration such as 10s)"
        )
    })
}

/// The URL a local client uses for `listen`: `localhost` for an unspecified address.
pub fn local_url(listen: SocketAddr) -> String {
    let host = if listen.ip().is_unspecified() {
        "localhost".to_owned()
    } else {
        match listen {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        }
    };
    format!("http://{host}:{}", listen.port())
}

/// The `server.listen` parser, shared with the loader (which derives `public_url` from it).
pub fn parse_listen(raw: &str) -> Result<SocketAddr, String> {
    de::expecting("an IP address and port such as 127.0.0.1:7071 or 0.0.0.0:8080")(raw)
}

fn listen<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    de::with(d, parse_listen)
}

fn public_url<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
    de::with(d, |raw| {
        Url::parse(raw).map_err(|_| {
            format!("{raw:?} is not valid; expected an absolute URL such as https://host")
        })
    })
}

fn allowed_origins<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    de::list_with(d, |origin| {
        if Url::parse(origin).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
            Ok(origin.to_owned())
        } else {
            Err(format!(
                "{origin:?} is not valid; expected an origin such as https://app.example.com"
            ))
        }
    })
}

fn max_body_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    de::with(d, de::expecting("a number of bytes"))
}

fn max_in_flight<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de::with(d, de::expecting("a number of requests"))
}

fn rate_limit<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RateLimit>, D::Error> {
    de::with(d, parse_rate_limit)
}

fn workers<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    de::with(d, de::expecting("a number of threads (0 = one per core)"))
}

fn trusted_proxies<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpAddr>, D::Error> {
    de::list_with(d, de::expecting("IP addresses such as 10.0.0.4"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_parse_as_calls_per_period_and_burst() {
        let secs = Duration::from_secs;
        for (raw, every, burst) in [
            ("10/s burst 60", Duration::from_millis(100), 60),
            ("120/min", Duration::from_millis(500), 120),
            ("1/h burst 3", secs(3600), 3),
            ("5/10s burst 5", secs(2), 5),
        ] {
            let limit = parse_rate_limit(raw).map(|r| r.map(|r| (r.every, r.burst.get())));
            assert_eq!(limit, Ok(Some((every, burst))), "{raw}");
        }
        assert_eq!(parse_rate_limit("off"), Ok(None));
        assert_eq!(parse_rate_limit("0/s"), Ok(None));
        for bad in [
            "10",
            "10/fortnight",
            "10/s burst",
            "10/s burst 0",
            "10/s 60",
            "x/s",
            "",
        ] {
            let message = parse_rate_limit(bad).expect_err(bad);
            assert!(message.contains("10/s burst 60"), "{message}");
        }
    }
}
