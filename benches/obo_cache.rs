//! The on-behalf-of cache hit: what every warm tool call pays to find its Graph token.
//! Target: well under a microsecond.

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_obo::obo::AccessToken;
use mcp_obo::obo::cache::{CacheKey, OboCache};

fn cache_hit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cache = OboCache::new(10_000, Duration::from_secs(120));
    let later = SystemTime::now() + Duration::from_secs(3600);
    // A realistic population: 10,000 users cached, then look one up.
    for i in 0..10_000u32 {
        let mut digest = [0u8; 32];
        digest[..4].copy_from_slice(&i.to_le_bytes());
        let key = CacheKey::new(&digest, &["https://graph.microsoft.com/.default"]);
        let token = AccessToken::new(&format!("token-{i}"), later);
        let _ =
            runtime.block_on(cache.get_or_exchange(key, later, move || async move { Ok(token) }));
    }
    runtime.block_on(cache.run_pending_tasks());
    let mut digest = [0u8; 32];
    digest[..4].copy_from_slice(&4242u32.to_le_bytes());
    let key = CacheKey::new(&digest, &["https://graph.microsoft.com/.default"]);
    assert!(runtime.block_on(cache.get(&key)).is_some());
    // The lookups are async (moka's future cache): one `block_on` per batch of iterations,
    // as criterion's own async support does, so it is not part of the time per lookup.
    c.bench_function("obo_cache_hit", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(cache.get(black_box(&key)).await);
                }
                start.elapsed()
            })
        })
    });
    c.bench_function("obo_cache_key_and_hit", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let key = CacheKey::new(
                        black_box(&digest),
                        &["https://graph.microsoft.com/.default"],
                    );
                    black_box(cache.get(&key).await);
                }
                start.elapsed()
            })
        })
    });
}

criterion_group!(benches, cache_hit);
criterion_main!(benches);
