//! Per-user limits on the MCP route scopes, so a valid token buys bounded resources: requests
//! in flight (`server.max_in_flight_per_user`) and the `tools/call` rate (`server.rate_limit`),
//! each refused with 429, `Retry-After` and a JSON-RPC error body, and counted in
//! `mcp_obo_mcp_limited_requests_total`.
//!
//! A user is the validated caller's tenant and user id (an app-only caller: its client app;
//! `auth.mode = none`: the one local developer), hashed into a fixed-size [`UserKey`], so
//! neither map holds a personal value and the key costs no allocation.
//!
//! - [`InFlight`]: a count per user, taken right after authorization and before the body is
//!   read (a trickled body counts), released by a drop guard on every exit path: the answer,
//!   an error, or the client going away (actix then drops the request's future). A count that
//!   reaches zero removes its entry, so the map holds only users with requests in flight.
//! - [`ToolCallRate`]: governor's keyed token bucket (GCRA), asked by `tool_access.rs` once it
//!   has read the body's `tools/call`s; states of users idle for a bucket's refill time are
//!   pruned every minute ([`ToolCallRate::spawn_pruning`]).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::num::NonZeroU32;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rmcp_actix_web::transport::CancellationToken;

use super::jsonrpc_errors::{LIMITED, error_response};
use crate::auth::Caller;
use crate::telemetry::metrics;

/// How often idle users' rate-limit states are dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Whom a limit counts: SHA-256 of the caller's tenant and user (or client app) id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserKey([u8; 32]);

impl UserKey {
    /// The key of `caller`; each part is length-prefixed, so no two callers share one.
    pub fn of(caller: &Caller) -> Self {
        let (kind, id) = match (&caller.client_app, caller.app_only) {
            (Some(app), true) => (b'a', app.as_str()),
            _ => (b'u', caller.subject.as_str()),
        };
        let tenant = caller.tenant_id.as_deref().unwrap_or("");
        let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        digest.update(&[kind]);
        for part in [tenant, id] {
            digest.update(&(part.len() as u64).to_be_bytes());
            digest.update(part.as_bytes());
        }
        let mut key = [0; 32];
        key.copy_from_slice(digest.finish().as_ref());
        Self(key)
    }
}

/// Requests in flight per user; clones share the counts.
#[derive(Clone)]
pub struct InFlight {
    max: u32,
    counts: Arc<Mutex<HashMap<UserKey, u32>>>,
}

/// One admitted request; dropping it releases the slot.
struct Ticket<'a> {
    in_flight: &'a InFlight,
    key: UserKey,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut counts = self.in_flight.lock();
        if let Entry::Occupied(mut count) = counts.entry(self.key) {
            *count.get_mut() -= 1;
            if *count.get() == 0 {
                count.remove();
            }
        }
    }
}

impl InFlight {
    /// At most `max` requests in flight per user.
    pub fn new(max: u32) -> Self {
        Self {
            max,
            counts: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserKey, u32>> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for `key`, or `None` when the user already has `max` in flight.
    fn enter(&self, key: UserKey) -> Option<Ticket<'_>> {
        let mut counts = self.lock();
        let count = counts.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Ticket {
            in_flight: self,
            key,
        })
    }

    /// Users with requests in flight (the map's size).
    #[cfg(test)]
    fn users(&self) -> usize {
        self.lock().len()
    }

    /// The middleware, wrapped on the MCP route scopes right inside the authorizer: the
    /// request holds its user's slot until its answer is produced or it is dropped.
    pub async fn admit(
        self: Rc<Self>,
        req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
        let Some(key) = req
            .extensions()
            .get::<Arc<Caller>>()
            .map(|c| UserKey::of(c))
        else {
            // The authorizer runs first; without a caller nothing is admitted.
            return Ok(req
                .into_response(HttpResponse::InternalServerError().finish())
                .map_into_right_body());
        };
        let Some(ticket) = self.enter(key) else {
            metrics::limited_request("in_flight");
            let response = too_many_requests(
                None,
                Duration::from_secs(1),
                "Too Many Requests: this user already has server.max_in_flight_per_user \
                 requests in flight; retry when one of them has been answered",
            );
            return Ok(req.into_response(response).map_into_right_body());
        };
        let response = next.call(req).await;
        drop(ticket);
        Ok(response?.map_into_left_body())
    }
}

/// A token bucket of `tools/call`s per user (`server.rate_limit`), written
/// `<calls>/<period> burst <n>` (`10/s burst 60`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// One call's worth of the bucket comes back every `every` (the sustained rate).
    pub every: Duration,
    /// Calls a full bucket allows at once.
    pub burst: NonZeroU32,
}

impl std::str::FromStr for RateLimit {
    type Err = ();

    /// The `<calls>/<period>[ burst <n>]` form; `off` and a rate of 0 are the settings'
    /// (`server.rate_limit`), which also word the error.
    fn from_str(raw: &str) -> Result<Self, ()> {
        let mut words = raw.split_whitespace();
        let (calls, period) = words.next().and_then(|r| r.split_once('/')).ok_or(())?;
        let calls: NonZeroU32 = calls.parse().map_err(|_| ())?;
        let period = match period {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => humantime::parse_duration(other).map_err(|_| ())?,
        };
        let burst = match (words.next(), words.next(), words.next()) {
            (None, _, _) => calls,
            (Some("burst"), Some(n), None) => n.parse().map_err(|_| ())?,
            _ => return Err(()),
        };
        let every = period / calls.get();
        if every.is_zero() {
            return Err(());
        }
        Ok(Self { every, burst })
    }
}

/// The `tools/call` token bucket per user.
pub struct ToolCallRate {
    limiter: DefaultKeyedRateLimiter<UserKey>,
    every: Duration,
}

impl ToolCallRate {
    pub fn new(limit: RateLimit) -> Self {
        // `every` is never zero (the parser refuses it); were it, nothing would be limited.
        let quota = Quota::with_period(limit.every)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(limit.burst);
        Self {
            limiter: RateLimiter::dashmap(quota),
            every: limit.every,
        }
    }

    /// Takes `calls` from `key`'s bucket, or says how long until they would be there.
    pub fn check(&self, key: &UserKey, calls: NonZeroU32) -> Result<(), Duration> {
        match self.limiter.check_key_n(key, calls) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(self.limiter.clock().now())),
            // More calls at once than the burst: never; say when a full bucket would hold them.
            Err(_) => Err(self.every.saturating_mul(calls.get())),
        }
    }

    /// Users whose bucket is not full (the map's size after pruning).
    #[cfg(test)]
    fn users(&self) -> usize {
        self.limiter.retain_recent();
        self.limiter.len()
    }

    /// Drops the states of users whose bucket has refilled, every minute until `cancel`.
    pub fn spawn_pruning(self: &Arc<Self>, cancel: CancellationToken) {
        let this = Arc::clone(self);
        actix_web::rt::spawn(async move {
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(PRUNE_EVERY) => {}
                }
                this.limiter.retain_recent();
                this.limiter.shrink_to_fit();
            }
        });
    }
}

/// 429 with `Retry-After` (whole seconds, rounded up, at least 1) and a JSON-RPC error body.
pub(super) fn too_many_requests(
    id: Option<serde_json::Value>,
    wait: Duration,
    message: &str,
) -> HttpResponse {
    let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let mut response = HttpResponse::TooManyRequests();
    response.insert_header((header::RETRY_AFTER, seconds));
    error_response(response, id, LIMITED, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(tenant: Option<&str>, subject: &str) -> Caller {
        Caller {
            tenant_id: tenant.map(str::to_owned),
            subject: subject.to_owned(),
            ..Caller::local_developer()
        }
    }

    #[test]
    fn user_keys_tell_tenants_users_and_apps_apart() {
        let a = UserKey::of(&caller(Some("t1"), "u1"));
        assert!(a == UserKey::of(&caller(Some("t1"), "u1")));
        assert!(a != UserKey::of(&caller(Some("t2"), "u1")));
        assert!(a != UserKey::of(&caller(Some("t1"), "u2")));
        assert!(
            a != UserKey::of(&caller(Some("t1u"), "1")),
            "parts are delimited"
        );
        let app = Caller {
            app_only: true,
            client_app: Some("app-1".into()),
            ..caller(Some("t1"), "sp-object-id")
        };
        assert!(
            UserKey::of(&app)
                == UserKey::of(&Caller {
                    subject: "x".into(),
                    ..app.clone()
                })
        );
    }

    #[actix_web::test]
    async fn an_in_flight_slot_is_released_on_drop_and_its_entry_removed_at_zero() {
        let in_flight = InFlight::new(2);
        let key = UserKey::of(&caller(Some("t"), "u"));
        let first = in_flight.enter(key).expect("first");
        let second = in_flight.enter(key).expect("second");
        assert!(in_flight.enter(key).is_none(), "third is over the cap");
        let other = UserKey::of(&caller(Some("t"), "v"));
        assert!(in_flight.enter(other).is_some(), "another user is not");
        drop(first);
        let third = in_flight.enter(key).expect("a slot came back");
        drop((second, third));
        assert_eq!(
            in_flight.users(),
            0,
            "no entry is left for users with none in flight"
        );
    }

    #[test]
    fn the_rate_limit_allows_the_burst_then_says_how_long_to_wait() {
        let rate = ToolCallRate::new(RateLimit {
            every: Duration::from_secs(60),
            burst: NonZeroU32::new(2).expect("2"),
        });
        let one = NonZeroU32::MIN;
        let key = UserKey::of(&caller(None, "u"));
        assert_eq!(rate.check(&key, one), Ok(()));
        assert_eq!(rate.check(&key, one), Ok(()));
        let wait = rate.check(&key, one).expect_err("over the burst");
        assert!(
            wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert_eq!(rate.check(&UserKey::of(&caller(None, "v")), one), Ok(()));
        let three = NonZeroU32::new(3).expect("3");
        assert_eq!(
            rate.check(&UserKey::of(&caller(None, "w")), three),
            Err(Duration::from_secs(180))
        );
        assert_eq!(rate.users(), 2, "the untouched bucket of w is not kept");
    }
}
