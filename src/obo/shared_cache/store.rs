//! The Redis side of the shared cache: one connection (redis-rs's reconnecting
//! `ConnectionManager`, or its cluster client), opened lazily so the server starts with Redis
//! down, and the few commands the cache uses, each under the configured deadline.
//!
//! Nothing here knows what a value means: keys and values arrive as digests and sealed bytes
//! (`seal.rs`).

use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, FromRedisValue, IntoConnectionInfo, RedisError};

use super::entra::EntraCredentials;
use super::settings::Settings;

/// How long one connection attempt may take (TCP, TLS, AUTH), independent of the per-command
/// deadline: reconnection runs in the background, not in a call.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Deletes the lock only if it still holds this replica's value, so a winner whose lock
/// expired never releases the next winner's.
const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// A failed operation: which, why (`timeout` or `error`) and the library's words (no key,
/// no value: those are never in redis-rs's errors for the commands used here).
#[derive(Debug)]
pub(super) struct OpError {
    pub op: &'static str,
    pub reason: &'static str,
    pub detail: String,
}

/// What a connection is made from, kept to make a new one.
enum Source {
    Single(redis::Client, ConnectionManagerConfig),
    Cluster(ClusterClient),
}

impl Source {
    /// A lazily connecting connection; no I/O here.
    fn connect(&self) -> redis::RedisResult<Connection> {
        Ok(match self {
            Self::Single(client, config) => Connection::Single(
                ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?,
            ),
            Self::Cluster(client) => Connection::Cluster(
                client.get_pending_async_connection_with_config(ClusterConfig::default()),
            ),
        })
    }
}

/// The connection and the per-command deadline.
pub(super) struct Store {
    connection: RwLock<Connection>,
    source: Source,
    timeout: Duration,
}

impl Store {
    /// A lazily connecting store; no I/O happens here.
    ///
    /// # Errors
    /// When redis-rs refuses the URL or the settings (the message names no secret).
    pub fn new(settings: &Settings, entra: Option<EntraCredentials>) -> Result<Self, String> {
        let Some(url) = &settings.url else {
            return Err("obo.shared_cache.url is not set".into());
        };
        let mut info = url
            .as_str()
            .into_connection_info()
            .map_err(|e| format!("the URL is not usable: {:?}", e.kind()))?;
        let password = settings.password.as_ref().map(|p| p.expose().to_owned());
        if entra.is_none() {
            let mut redis = info.redis_settings().clone();
            if let Some(user) = &settings.username {
                redis = redis.set_username(user);
            }
            if let Some(password) = &password {
                redis = redis.set_password(password);
            }
            info = info.set_redis_settings(redis);
        }
        let source = if settings.cluster {
            let mut builder = ClusterClientBuilder::new(vec![info])
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(settings.timeout.max(Duration::from_millis(500)))
                .retries(1);
            if let Some(entra) = entra {
                builder = builder.set_credentials_provider(entra);
            }
            Source::Cluster(builder.build().map_err(|e| describe(&e))?)
        } else {
            let mut config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_number_of_retries(2)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_secs(1));
            if let Some(entra) = entra {
                config = config.set_credentials_provider(entra);
            }
            let client = redis::Client::open(info).map_err(|e| describe(&e))?;
            Source::Single(client, config)
        };
        let connection = source.connect().map_err(|e| describe(&e))?;
        Ok(Self {
            connection: RwLock::new(connection),
            source,
            timeout: settings.timeout,
        })
    }

    /// Replaces the connection with a new one (made on its first use). redis-rs's connection
    /// manager reconnects by itself after I/O errors only: a connection whose login failed
    /// (an Entra role assignment not yet effective, a rotated password) stays failed.
    pub fn reconnect(&self) {
        if let Ok(fresh) = self.source.connect() {
            *self
                .connection
                .write()
                .unwrap_or_else(PoisonError::into_inner) = fresh;
        }
    }

    /// The per-command deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The sealed value at `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, OpError> {
        self.run("get", redis::cmd("GET").arg(key), self.timeout)
            .await
    }

    /// Stores `value` at `key` for `ttl` (the entry's own expiry).
    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), OpError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value).arg("PX").arg(millis(ttl));
        self.run::<()>("set", &cmd, self.timeout).await
    }

    /// Takes the lock at `key` with `value` for `ttl` if nobody holds it.
    pub async fn lock(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, OpError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value).arg("NX").arg("PX").arg(millis(ttl));
        let set: Option<String> = self.run("lock", &cmd, self.timeout).await?;
        Ok(set.is_some())
    }

    /// Releases the lock at `key` if it still holds `value`.
    pub async fn unlock(&self, key: &str, value: &str) -> Result<(), OpError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(RELEASE).arg(1).arg(key).arg(value);
        self.run::<i64>("lock", &cmd, self.timeout).await.map(drop)
    }

    pub async fn delete(&self, key: &str) -> Result<(), OpError> {
        self.run::<i64>("delete", redis::cmd("DEL").arg(key), self.timeout)
            .await
            .map(drop)
    }

    /// Whether Redis answers within `within`; a first call also drives the initial
    /// connection (TCP, TLS, authentication), which may take longer than one command.
    pub async fn ping(&self, within: Duration) -> Result<(), OpError> {
        self.run::<String>("connect", &redis::cmd("PING"), within)
            .await
            .map(drop)
    }

    async fn run<T: FromRedisValue>(
        &self,
        op: &'static str,
        cmd: &Cmd,
        within: Duration,
    ) -> Result<T, OpError> {
        let connection = self
            .connection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let query = async {
            match connection {
                Connection::Single(mut c) => query(cmd, &mut c).await,
                Connection::Cluster(mut c) => query(cmd, &mut c).await,
            }
        };
        match tokio::time::timeout(within, query).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(OpError {
                op: classify(op, &error),
                reason: "error",
                detail: describe(&error),
            }),
            Err(_) => Err(OpError {
                op,
                reason: "timeout",
                detail: format!("no answer within {within:?}"),
            }),
        }
    }
}

async fn query<T: FromRedisValue>(cmd: &Cmd, c: &mut impl ConnectionLike) -> redis::RedisResult<T> {
    cmd.query_async(c).await
}

/// A refused login is `auth`, an unreachable server `connect`, anything else the operation's.
fn classify(op: &'static str, error: &RedisError) -> &'static str {
    if error.kind() == ErrorKind::AuthenticationFailed
        || error
            .code()
            .is_some_and(|c| matches!(c, "NOAUTH" | "WRONGPASS" | "NOPERM"))
    {
        "auth"
    } else if error.is_io_error() || error.is_connection_refusal() || error.is_connection_dropped()
    {
        "connect"
    } else {
        op
    }
}

/// redis-rs's message, capped; it names the kind of failure and the server's reply code.
fn describe(error: &RedisError) -> String {
    crate::obo::first_line(&error.to_string())
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}
