//! Continuous-access-evaluation tokens in the cache: a day-long token kept for its own life,
//! and an entry replaced by a claims challenge's re-exchange.

use super::*;

const HOUR: Duration = Duration::from_secs(3600);

fn at(from_now: Duration) -> SystemTime {
    SystemTime::now() + from_now
}

/// How long moka is told to keep `key`'s entry, as it asks when the entry is created.
async fn kept_for(cache: &OboCache, key: &CacheKey) -> Duration {
    let entry = cache.entries.get(key).await.expect("an entry");
    UntilUsable
        .expire_after_create(key, &entry, Instant::now())
        .expect("an expiry")
}

fn header(token: &AccessToken) -> &str {
    token
        .authorization()
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_28_hour_token_is_kept_for_its_own_life_bounded_by_the_user_tokens() {
    // moka's clock is its own (tokio's paused time does not move it), so the test reads the
    // expiry the cache hands moka instead of waiting 28 hours.
    let margin = Duration::from_secs(120);
    let cache = OboCache::new(10, margin);
    let key = CacheKey::new(&[9; 32], &["s"]);
    let (r, _) = cache
        .get_or_exchange(key, at(29 * HOUR), || async {
            Ok(AccessToken::new("cae", at(28 * HOUR)))
        })
        .await;
    assert!(r.is_ok());
    let kept = kept_for(&cache, &key).await;
    let expected = 28 * HOUR - margin;
    assert!(
        kept <= expected && kept > expected - Duration::from_secs(5),
        "{kept:?}"
    );
    let (_, lookup) = cache
        .get_or_exchange(key, at(29 * HOUR), || async { Err(Error::NotConfigured) })
        .await;
    assert_eq!(lookup, Lookup::Hit);
    // A user token that expires first bounds the entry, as for any token.
    let short = CacheKey::new(&[10; 32], &["s"]);
    let _ = cache
        .get_or_exchange(short, at(HOUR), || async {
            Ok(AccessToken::new("cae", at(28 * HOUR)))
        })
        .await;
    assert!(kept_for(&cache, &short).await <= HOUR);
}

#[tokio::test]
async fn a_re_exchanged_token_replaces_the_entry() {
    let cache = OboCache::new(10, Duration::ZERO);
    let key = CacheKey::new(&[11; 32], &["s"]);
    let _ = cache
        .get_or_exchange(key, at(2 * HOUR), || async {
            Ok(AccessToken::new("old", at(HOUR)))
        })
        .await;
    let fresh = Ok(AccessToken::new("new", at(28 * HOUR)));
    cache.replace(key, &fresh, at(29 * HOUR)).await;
    let served = cache.get(&key).await.expect("the new entry");
    assert_eq!(header(&served), "Bearer new");
    assert!(kept_for(&cache, &key).await > 27 * HOUR);
}

#[tokio::test]
async fn a_failed_re_exchange_empties_the_entry_and_remembers_only_the_callers_state() {
    let cache = OboCache::new(10, Duration::ZERO).remembering_failures_for(Duration::from_secs(60));
    let challenge = Error::ClaimsChallenge {
        claims: r#"{"access_token":{"nbf":{"essential":true}}}"#.into(),
    };
    for (n, error, remembered) in [
        (12u8, challenge, true),
        (13, Error::Transient { status: 503 }, false),
    ] {
        let key = CacheKey::new(&[n; 32], &["s"]);
        let _ = cache
            .get_or_exchange(key, at(2 * HOUR), || async {
                Ok(AccessToken::new("old", at(HOUR)))
            })
            .await;
        cache.replace(key, &Err(error.clone()), at(2 * HOUR)).await;
        assert!(cache.get(&key).await.is_none(), "{error:?}");
        assert_eq!(cache.failure(&key).await.is_some(), remembered, "{error:?}");
    }
}
