//! `[obo.shared_cache]`: where the shared (second-level) token cache is, and how this server
//! authenticates to it. Off unless `url` is set.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use url::Url;

use crate::config::{Problem, Secret, de};
use crate::obo::AssertionKind;

/// The shared cache's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `redis://` or `rediss://`; `None`: no shared cache (each replica has only its own).
    #[serde(deserialize_with = "redis_url")]
    pub url: Option<Url>,
    /// Speak the Redis Cluster protocol (Azure Managed Redis's default "OSS cluster" policy
    /// hands out slots per node, which only a cluster-aware client follows).
    #[serde(deserialize_with = "de::flag")]
    pub cluster: bool,
    pub auth: RedisAuth,
    /// The ACL user; with `entra`, defaults to the identity's object id (the `oid` of the
    /// token obtained for Redis).
    #[serde(deserialize_with = "de::optional")]
    pub username: Option<String>,
    /// From `MCP_OBO__OBO__SHARED_CACHE__PASSWORD` (never a file), or read from
    /// `password_file`.
    #[serde(deserialize_with = "de::optional")]
    pub password: Option<Secret>,
    #[serde(deserialize_with = "de::optional")]
    pub password_file: Option<PathBuf>,
    /// The deadline of every Redis operation: past it the call goes on without the cache.
    #[serde(deserialize_with = "de::duration")]
    pub timeout: Duration,
    /// Put before every key, so several deployments can share one Redis.
    #[serde(deserialize_with = "de::string")]
    pub key_prefix: String,
}

/// How this server authenticates to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisAuth {
    None,
    Password,
    /// A Microsoft Entra token for `https://redis.azure.com/.default` from the server's own
    /// managed or workload identity.
    Entra,
}

de::words!(RedisAuth {
    None => "none",
    Password => "password",
    Entra => "entra",
});

impl Default for Settings {
    /// Off, as the built-in defaults have it.
    fn default() -> Self {
        Self {
            url: None,
            cluster: false,
            auth: RedisAuth::None,
            username: None,
            password: None,
            password_file: None,
            timeout: Duration::from_millis(50),
            key_prefix: "mcp-obo:".into(),
        }
    }
}

/// Where the password goes instead of the URL.
const PASSWORD_HINT: &str = "set obo.shared_cache.auth = password and the password in MCP_OBO__OBO__SHARED_CACHE__PASSWORD or a file named by obo.shared_cache.password_file, and the ACL user in obo.shared_cache.username";

impl Settings {
    /// Reads `password_file` into `password` when no password is set directly.
    pub fn read_password_file(&mut self) -> Option<Problem> {
        let path = self.password_file.as_ref()?;
        if self.password.is_some() {
            return None;
        }
        match std::fs::read_to_string(path) {
            Ok(s) if !s.trim().is_empty() => {
                self.password = Some(Secret::new(s.trim()));
                None
            }
            _ => Some(Problem::new(
                "obo.shared_cache.password_file",
                format!("cannot read a password from {path:?}"),
            )),
        }
    }

    /// Problems no single value shows; `assertion` is `obo.client_assertion`, the identity
    /// an `entra` authentication borrows.
    pub fn validate(&self, assertion: Option<AssertionKind>) -> Vec<Problem> {
        let mut problems = Vec::new();
        let Some(url) = &self.url else {
            return problems;
        };
        let problem = |key: &str, message: &str| Problem::new(key, message);
        match self.auth {
            RedisAuth::Password if self.password.is_none() => problems.push(problem(
                "obo.shared_cache.password",
                "required with obo.shared_cache.auth = password: set MCP_OBO__OBO__SHARED_CACHE__PASSWORD or obo.shared_cache.password_file",
            )),
            RedisAuth::None | RedisAuth::Entra if self.password.is_some() => {
                problems.push(problem(
                    "obo.shared_cache.password",
                    "a password is set but obo.shared_cache.auth is not password: set obo.shared_cache.auth = password to use it, or remove it",
                ));
            }
            _ => {}
        }
        if self.auth == RedisAuth::Entra {
            if !matches!(
                assertion,
                Some(AssertionKind::ManagedIdentity | AssertionKind::WorkloadIdentity)
            ) {
                problems.push(problem(
                    "obo.shared_cache.auth",
                    "entra needs the server's managed or workload identity (obo.client_assertion = managed_identity or workload_identity), whose token it presents to Redis; use auth = password otherwise",
                ));
            }
            if url.scheme() == "redis" && !is_loopback(url) {
                problems.push(problem(
                    "obo.shared_cache.url",
                    "entra authentication sends a bearer token to Redis: use rediss:// (TLS; Azure Managed Redis listens on port 10000 with TLS only)",
                ));
            }
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(2) {
            problems.push(problem(
                "obo.shared_cache.timeout",
                "must be between 1ms and 2s: every Redis operation waits at most this long before the call goes on without the shared cache (50ms is the default)",
            ));
        }
        let prefix_ok =
            self.key_prefix.len() <= 64 && self.key_prefix.chars().all(|c| c.is_ascii_graphic());
        if !prefix_ok {
            problems.push(problem(
                "obo.shared_cache.key_prefix",
                "must be at most 64 printable ASCII characters without spaces, such as mcp-obo:",
            ));
        }
        problems
    }
}

/// Whether the URL names a loopback host. A `redis://` URL's host is opaque to the URL
/// parser (not a special scheme), so an address in it is parsed here.
fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A `redis://` or `rediss://` URL with no credentials in it; the empty string: off.
fn redis_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Url>, D::Error> {
    de::optional_with(d, parse_redis_url)
}

fn parse_redis_url(raw: &str) -> Result<Url, String> {
    let quoted = crate::config::redact_credentials(raw);
    let url = Url::parse(raw).map_err(|_| {
        format!("{quoted:?} is not valid; expected a URL such as rediss://host:10000 or redis://127.0.0.1:6379")
    })?;
    if !matches!(url.scheme(), "redis" | "rediss") {
        return Err(format!(
            "{quoted:?} has scheme {:?}; expected redis:// or rediss:// (TLS)",
            url.scheme()
        ));
    }
    if url.password().is_some() || !url.username().is_empty() {
        return Err(format!(
            "the URL holds credentials, which do not go in it (it is printed and logged): {PASSWORD_HINT}"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{quoted:?} names no host"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_with_a_password_is_refused_and_says_where_the_password_goes() {
        let error = parse_redis_url("redis://:hunter2@cache:6379").expect_err("refused");
        assert!(!error.contains("hunter2"), "{error}");
        assert!(
            error.contains("MCP_OBO__OBO__SHARED_CACHE__PASSWORD"),
            "{error}"
        );
        assert!(parse_redis_url("redis://user@cache:6379").is_err());
    }

    #[test]
    fn only_redis_and_rediss_urls_with_a_host_are_accepted() {
        assert!(parse_redis_url("rediss://cache.example:10000").is_ok());
        assert!(parse_redis_url("redis://127.0.0.1:6379/0").is_ok());
        assert!(parse_redis_url("https://cache.example").is_err());
        assert!(parse_redis_url("cache:6379").is_err());
    }

    fn on(url: &str, auth: RedisAuth) -> Settings {
        Settings {
            url: Some(Url::parse(url).expect("url")),
            auth,
            ..Settings::default()
        }
    }

    fn keys(problems: Vec<Problem>) -> Vec<String> {
        problems.into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn entra_needs_a_managed_or_workload_identity_and_tls() {
        let entra = on("rediss://cache.example:10000", RedisAuth::Entra);
        assert!(
            entra
                .validate(Some(AssertionKind::ManagedIdentity))
                .is_empty()
        );
        assert!(
            entra
                .validate(Some(AssertionKind::WorkloadIdentity))
                .is_empty()
        );
        assert_eq!(
            keys(entra.validate(Some(AssertionKind::ClientSecret))),
            ["obo.shared_cache.auth"]
        );
        let plain = on("redis://cache.example:6379", RedisAuth::Entra);
        assert_eq!(
            keys(plain.validate(Some(AssertionKind::ManagedIdentity))),
            ["obo.shared_cache.url"]
        );
        for loopback in [
            "redis://127.0.0.1:6379",
            "redis://[::1]:6379",
            "redis://localhost",
        ] {
            let local = on(loopback, RedisAuth::Entra);
            assert!(
                local
                    .validate(Some(AssertionKind::ManagedIdentity))
                    .is_empty()
            );
        }
    }

    #[test]
    fn password_auth_needs_a_password_and_a_stray_password_is_reported() {
        let password = on("rediss://cache.example", RedisAuth::Password);
        assert_eq!(keys(password.validate(None)), ["obo.shared_cache.password"]);
        let stray = Settings {
            password: Some(Secret::new("p")),
            ..on("redis://127.0.0.1", RedisAuth::None)
        };
        assert_eq!(keys(stray.validate(None)), ["obo.shared_cache.password"]);
    }

    #[test]
    fn off_is_never_a_problem() {
        let off = Settings {
            timeout: Duration::ZERO,
            ..Settings::default()
        };
        assert!(off.validate(None).is_empty());
    }
}
