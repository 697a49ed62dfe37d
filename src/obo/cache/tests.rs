//! The cache's unit tests: expiry, bounds, single flight and the failure memory.

use std::sync::atomic::AtomicUsize;

use futures_util::future::{join, join_all};
use tokio::sync::Notify;

use super::*;

fn token(secs: u64) -> AccessToken {
    AccessToken::new("t", SystemTime::now() + Duration::from_secs(secs))
}

fn in_secs(secs: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(secs)
}

#[tokio::test]
async fn a_user_token_in_its_last_minutes_costs_one_exchange() {
    // The user's token expires in 60 s, within the 2 min margin; the downstream token
    // is good for an hour, so it is served until the user's token expires.
    let cache = OboCache::new(10, Duration::from_secs(120));
    let key = CacheKey::new(&[1; 32], &["s"]);
    let exchanges = AtomicUsize::new(0);
    for _ in 0..10 {
        let (r, _) = cache
            .get_or_exchange(key, in_secs(60), || async {
                exchanges.fetch_add(1, Ordering::SeqCst);
                Ok(token(3600))
            })
            .await;
        assert!(r.is_ok());
    }
    assert_eq!(exchanges.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_downstream_token_within_the_margin_of_its_own_expiry_is_never_served() {
    let cache = OboCache::new(10, Duration::from_secs(60));
    let key = CacheKey::new(&[1; 32], &["s"]);
    let (r, l) = cache
        .get_or_exchange(key, in_secs(3600), || async { Ok(token(30)) })
        .await;
    assert!(r.is_ok(), "the exchange's own result is still returned");
    assert_eq!(l, Lookup::Miss);
    assert!(cache.get(&key).await.is_none());
    // Good for longer than the margin: kept.
    let _ = cache
        .get_or_exchange(key, in_secs(3600), || async { Ok(token(3600)) })
        .await;
    let (_, l) = cache
        .get_or_exchange(key, in_secs(3600), || async { Err(Error::NotConfigured) })
        .await;
    assert_eq!(l, Lookup::Hit);
}

#[tokio::test]
async fn an_entry_is_not_kept_past_the_user_tokens_expiry() {
    let cache = OboCache::new(10, Duration::from_secs(60));
    let key = CacheKey::new(&[5; 32], &["s"]);
    let expired = SystemTime::now() - Duration::from_secs(1);
    let (r, _) = cache
        .get_or_exchange(key, expired, || async { Ok(token(3600)) })
        .await;
    assert!(r.is_ok());
    assert!(cache.get(&key).await.is_none());
}

#[tokio::test]
async fn a_token_already_expired_is_never_served() {
    let cache = OboCache::new(10, Duration::ZERO);
    let key = CacheKey::new(&[2; 32], &["s"]);
    let expired = AccessToken::new("t", SystemTime::now() - Duration::from_secs(1));
    let (r, _) = cache
        .get_or_exchange(key, in_secs(3600), move || async move { Ok(expired) })
        .await;
    assert!(r.is_ok(), "the exchange's own result is still returned");
    assert!(cache.get(&key).await.is_none());
    let (_, l) = cache
        .get_or_exchange(key, in_secs(3600), || async { Ok(token(3600)) })
        .await;
    assert_eq!(l, Lookup::Miss, "a fresh exchange, not the expired token");
}

#[test]
fn keys_differ_by_token_and_by_scopes() {
    let key = CacheKey::new(&[1; 32], &["a", "b"]);
    assert_eq!(key, CacheKey::new(&[1; 32], &["a", "b"]));
    assert_ne!(key, CacheKey::new(&[2; 32], &["a", "b"]));
    assert_ne!(key, CacheKey::new(&[1; 32], &["a"]));
    assert_ne!(key, CacheKey::new(&[1; 32], &["b", "a"]));
    assert_ne!(key, CacheKey::new(&[1; 32], &["ab"]));
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let cache = OboCache::new(3, Duration::from_secs(1));
    for i in 0..10u8 {
        let key = CacheKey::new(&[i; 32], &["s"]);
        let _ = cache
            .get_or_exchange(key, in_secs(3600), || async { Ok(token(3600)) })
            .await;
    }
    // moka evicts in its maintenance: run it before counting.
    cache.run_pending_tasks().await;
    assert_eq!(cache.entry_count(), 3);
}

#[tokio::test]
async fn removed_tokens_are_exchanged_again() {
    let cache = OboCache::new(3, Duration::from_secs(1));
    let key = CacheKey::new(&[3; 32], &["s"]);
    let _ = cache
        .get_or_exchange(key, in_secs(3600), || async { Ok(token(3600)) })
        .await;
    cache.remove(&key).await;
    assert!(cache.get(&key).await.is_none());
    let (_, l) = cache
        .get_or_exchange(key, in_secs(3600), || async { Ok(token(3600)) })
        .await;
    assert_eq!(l, Lookup::Miss);
}

/// 200 lookups of one key, all started before the exchange (held at a gate until the
/// last of them has asked) may finish: `respond` is the exchange's answer.
async fn two_hundred_at_once(
    cache: &OboCache,
    key: &CacheKey,
    respond: fn() -> Result<AccessToken, Error>,
) -> (usize, Vec<(Result<AccessToken, Error>, Lookup)>) {
    const CALLS: usize = 200;
    let (asked, all_asked) = (AtomicUsize::new(0), Notify::new());
    let (exchanges, gate) = (AtomicUsize::new(0), Notify::new());
    let calls = join_all((0..CALLS).map(|_| async {
        if asked.fetch_add(1, Ordering::SeqCst) + 1 == CALLS {
            all_asked.notify_one();
        }
        // Polled at once: the first starts the exchange, the others wait for it.
        cache
            .get_or_exchange(*key, in_secs(3600), || async {
                exchanges.fetch_add(1, Ordering::SeqCst);
                gate.notified().await;
                respond()
            })
            .await
    }));
    let open = async {
        all_asked.notified().await;
        gate.notify_one();
    };
    let (results, ()) = join(calls, open).await;
    (exchanges.load(Ordering::SeqCst), results)
}

#[tokio::test]
async fn simultaneous_lookups_share_one_exchange() {
    let cache = OboCache::new(10, Duration::from_secs(1));
    let key = CacheKey::new(&[4; 32], &["s"]);
    let (exchanges, results) = two_hundred_at_once(&cache, &key, || Ok(token(3600))).await;
    assert_eq!(exchanges, 1);
    assert!(results.iter().all(|(r, _)| r.is_ok()));
    let count = |lookup| results.iter().filter(|(_, l)| *l == lookup).count();
    assert_eq!((count(Lookup::Miss), count(Lookup::Joined)), (1, 199));
}

#[tokio::test]
async fn failures_are_shared_with_those_waiting_but_not_cached() {
    let cache = OboCache::new(3, Duration::from_secs(1));
    let key = CacheKey::new(&[9; 32], &["s"]);
    let (exchanges, results) =
        two_hundred_at_once(&cache, &key, || Err(Error::NotConfigured)).await;
    assert_eq!(exchanges, 1);
    assert!(
        results
            .iter()
            .all(|(r, _)| r.as_ref().err() == Some(&Error::NotConfigured))
    );
    assert!(cache.get(&key).await.is_none());
    cache.run_pending_tasks().await;
    assert_eq!(cache.entry_count(), 0);
    let (r, l) = cache
        .get_or_exchange(key, in_secs(3600), || async { Ok(token(3600)) })
        .await;
    assert!(r.is_ok());
    assert_eq!(l, Lookup::Miss, "the next lookup exchanges again");
}

fn consent() -> Error {
    Error::ConsentRequired {
        permissions: "User.Read".into(),
        consent_url: "https://mcp.example.com/consent".into(),
        admin_consent_url: None,
    }
}

/// `calls` lookups of one key, one after the other, each answered `respond` if it
/// exchanges: how many exchanged, and each lookup's result.
async fn in_a_row(
    cache: &OboCache,
    calls: usize,
    respond: fn() -> Result<AccessToken, Error>,
) -> (usize, Vec<(Result<AccessToken, Error>, Lookup)>) {
    let key = CacheKey::new(&[7; 32], &["s"]);
    let exchanges = AtomicUsize::new(0);
    let mut results = Vec::new();
    for _ in 0..calls {
        results.push(
            cache
                .get_or_exchange(key, in_secs(3600), || async {
                    exchanges.fetch_add(1, Ordering::SeqCst);
                    respond()
                })
                .await,
        );
    }
    (exchanges.load(Ordering::SeqCst), results)
}

#[tokio::test]
async fn a_failure_of_the_callers_state_is_remembered_for_the_window() {
    let respond: [fn() -> Result<AccessToken, Error>; 4] = [
        || Err(consent()),
        || {
            Err(Error::InvalidGrant {
                code: "AADSTS50173".into(),
            })
        },
        || {
            Err(Error::ClaimsChallenge {
                claims: "{}".into(),
            })
        },
        || {
            Err(Error::AppOnly {
                code: "AADSTS7000114".into(),
            })
        },
    ];
    for respond in respond {
        let cache =
            OboCache::new(10, Duration::ZERO).remembering_failures_for(Duration::from_secs(60));
        let (exchanges, results) = in_a_row(&cache, 10, respond).await;
        let expected = respond().err();
        assert_eq!(exchanges, 1, "{expected:?}");
        assert!(
            results
                .iter()
                .all(|(r, _)| r.as_ref().err() == expected.as_ref())
        );
        let cached = results.iter().filter(|(_, l)| *l == Lookup::FailureCached);
        assert_eq!(cached.count(), 9);
    }
}

#[tokio::test]
async fn transient_and_configuration_failures_are_not_remembered() {
    let respond: [fn() -> Result<AccessToken, Error>; 4] = [
        || Err(Error::Transient { status: 503 }),
        || Err(Error::Transient { status: 429 }),
        || {
            Err(Error::Unreachable {
                dependency: "token endpoint",
                detail: "timed out".into(),
            })
        },
        || Err(Error::NotConfigured),
    ];
    for respond in respond {
        let cache =
            OboCache::new(10, Duration::ZERO).remembering_failures_for(Duration::from_secs(60));
        let (exchanges, _) = in_a_row(&cache, 3, respond).await;
        assert_eq!(exchanges, 3, "{:?}", respond().err());
    }
}

#[tokio::test]
async fn with_a_zero_failure_ttl_every_call_exchanges() {
    let cache = OboCache::new(10, Duration::ZERO).remembering_failures_for(Duration::ZERO);
    let (exchanges, _) = in_a_row(&cache, 3, || Err(consent())).await;
    assert_eq!(exchanges, 3);
}

#[tokio::test]
async fn a_remembered_failure_expires_and_the_next_call_exchanges_again() {
    // moka's expiry runs on its own clock, which tokio's paused time does not move and
    // moka offers no way to mock outside its own tests; so a short TTL, and the test
    // waits for the expiry itself (polling for it) rather than for a guessed duration.
    let cache =
        OboCache::new(10, Duration::ZERO).remembering_failures_for(Duration::from_millis(50));
    let key = CacheKey::new(&[7; 32], &["s"]);
    let (exchanges, _) = in_a_row(&cache, 1, || Err(consent())).await;
    assert_eq!(exchanges, 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cache.failure(&key).await.is_some() {
        assert!(std::time::Instant::now() < deadline, "never expired");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (exchanges, results) = in_a_row(&cache, 1, || Err(consent())).await;
    assert_eq!(exchanges, 1, "exchanged again");
    assert_eq!(results[0].1, Lookup::Miss);
}
