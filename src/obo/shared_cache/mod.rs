//! The shared (second-level) token cache on Redis, behind each replica's own moka cache, so
//! a user costs one on-behalf-of exchange across every replica rather than one per replica.
//!
//! - `settings.rs`: [`Settings`], the `[obo.shared_cache]` section.
//! - `seal.rs`: the keys (digests) and the sealed values (AES-256-GCM under a key derived
//!   from the user's own token), so Redis holds nothing usable.
//! - `store.rs`: the Redis connection (single node or cluster) and the commands, each under
//!   `obo.shared_cache.timeout`.
//! - `entra.rs`: Microsoft Entra authentication to Redis, renewed on live connections.
//! - `flow.rs`: what one in-process miss does: read, or lock, exchange and write, or wait
//!   for another replica's exchange.
//!
//! Redis is never a reason to fail a call: an operation that fails or times out marks the
//! cache unavailable, and calls then bypass it (their own exchange, as without it) until a
//! background probe gets an answer again; one warning per [`WARN_INTERVAL`].

mod entra;
mod flow;
mod seal;
mod settings;
mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use settings::{RedisAuth, Settings};

use super::{AssertionKind, Error, Settings as OboSettings};
use entra::{EntraCredentials, Identity};
use store::{OpError, Store};

/// At most one warning about the shared cache being unavailable per this interval.
const WARN_INTERVAL: Duration = Duration::from_secs(30);
/// How often an unavailable shared cache is asked whether it answers again.
const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// The first command also waits for the connection to be established (TCP, TLS, AUTH).
const FIRST_PING: Duration = Duration::from_secs(5);

/// The shared cache; cheap to clone.
#[derive(Clone)]
pub struct SharedCache {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    prefix: String,
    /// Tokens are served until this long before their own expiry (`obo.expiry_margin`).
    margin: Duration,
    /// How long a failure of the caller's state is remembered (`obo.failure_cache_ttl`).
    failure_ttl: Duration,
    /// How long a replica waits for another's exchange, and the lock's lifetime
    /// (`obo.timeout`, the longest one exchange may take).
    lock_wait: Duration,
    health: Health,
}

/// Whether the shared cache currently answers, and when that was last said in a warning.
struct Health {
    up: AtomicBool,
    probing: AtomicBool,
    warned_at: std::sync::Mutex<Option<Instant>>,
}

impl SharedCache {
    /// The shared cache `obo.shared_cache` configures, or `None` when it is off. Starts the
    /// first connection (and, with `entra`, the token renewal) in the background: a server
    /// starts whether Redis answers or not. Needs a tokio runtime.
    ///
    /// # Errors
    /// When the URL or the Entra credential cannot be set up.
    pub fn from_settings(
        obo: &OboSettings,
        client_id: &str,
        tenant: &str,
    ) -> Result<Option<Self>, Error> {
        let settings = &obo.shared_cache;
        if settings.url.is_none() {
            return Ok(None);
        }
        let unavailable = |detail: String| Error::Unreachable {
            dependency: "shared token cache (obo.shared_cache)",
            detail,
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(unavailable("it needs a tokio runtime".into()));
        }
        let entra = match settings.auth {
            RedisAuth::Entra => Some(
                EntraCredentials::start(
                    identity(obo, client_id, tenant),
                    settings.username.clone(),
                )
                .map_err(unavailable)?,
            ),
            RedisAuth::None | RedisAuth::Password => None,
        };
        let store = Store::new(settings, entra).map_err(unavailable)?;
        crate::telemetry::metrics::shared_cache_available(false);
        let cache = Self {
            inner: Arc::new(Inner {
                store,
                prefix: settings.key_prefix.clone(),
                margin: obo.expiry_margin,
                failure_ttl: obo.failure_cache_ttl,
                lock_wait: obo.timeout,
                health: Health {
                    up: AtomicBool::new(true),
                    probing: AtomicBool::new(false),
                    warned_at: std::sync::Mutex::new(None),
                },
            }),
        };
        let first = cache.clone();
        tokio::spawn(async move {
            match first.inner.store.ping(FIRST_PING).await {
                Ok(()) => first.answered(),
                Err(error) => first.failed(&error),
            }
        });
        Ok(Some(cache))
    }

    /// Whether calls use the shared cache now (not bypassing it).
    fn is_up(&self) -> bool {
        self.inner.health.up.load(Ordering::Acquire)
    }

    /// Redis answered: used again from the next call on.
    fn answered(&self) {
        crate::telemetry::metrics::shared_cache_available(true);
        if !self.inner.health.up.swap(true, Ordering::AcqRel) {
            tracing::info!(target: "mcp_obo::obo", "the shared token cache answers again and is used");
        }
    }

    /// An operation failed: counted, bypassed until a probe gets an answer, and said in a
    /// warning at most once per interval.
    fn failed(&self, error: &OpError) {
        crate::telemetry::metrics::shared_cache_error(error.op, error.reason);
        crate::telemetry::metrics::shared_cache_available(false);
        self.inner.health.up.store(false, Ordering::Release);
        if self.should_warn() {
            tracing::warn!(
                target: "mcp_obo::obo",
                op = error.op,
                reason = error.reason,
                error = %error.detail,
                "the shared token cache (Redis) is unavailable; calls go on without it (their own exchange) until it answers again"
            );
        }
        if !self.inner.health.probing.swap(true, Ordering::AcqRel) {
            let cache = self.clone();
            tokio::spawn(async move { cache.probe().await });
        }
    }

    fn should_warn(&self) -> bool {
        let Ok(mut warned_at) = self.inner.health.warned_at.lock() else {
            return true;
        };
        let now = Instant::now();
        let due = warned_at.is_none_or(|at| now.duration_since(at) >= WARN_INTERVAL);
        if due {
            *warned_at = Some(now);
        }
        due
    }

    /// Asks Redis until it answers within the operation deadline, then lets calls use it.
    async fn probe(self) {
        loop {
            tokio::time::sleep(PROBE_INTERVAL).await;
            match self.inner.store.ping(self.inner.store.timeout()).await {
                Ok(()) => {
                    self.inner.health.probing.store(false, Ordering::Release);
                    self.answered();
                    return;
                }
                // A refused login or a connection that gave up: start afresh.
                Err(error) if error.reason != "timeout" => self.inner.store.reconnect(),
                Err(_) => {}
            }
        }
    }
}

/// The identity an `entra` authentication borrows from the exchange's client assertion.
fn identity(obo: &OboSettings, client_id: &str, tenant: &str) -> Identity {
    match obo.client_assertion {
        Some(AssertionKind::WorkloadIdentity) => Identity::Workload {
            client_id: client_id.to_owned(),
            tenant_id: tenant.to_owned(),
            token_file: obo.federated_token_file.clone().unwrap_or_default(),
        },
        // Validation allows entra with managed or workload identity only.
        _ => Identity::Managed {
            client_id: obo.managed_identity_client_id.clone(),
        },
    }
}
