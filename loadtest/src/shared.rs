//! `MCP_OBO_BENCH_SHARED_CACHE`: what the shared (Redis) token cache costs and saves.
//!
//! 1. HelloTool with every token in the in-process cache, shared cache off (the auth load
//!    server) against on (a server using a redis-server on loopback): a hit never leaves the
//!    process, so the two should match.
//! 2. A fresh replica's first call for users another replica cached in Redis (a shared-cache
//!    hit: one Redis read and an AES-GCM open) against its first call for new users (a full
//!    exchange with the fake token endpoint, plus the Redis lock and write).

use anyhow::{Context as _, Result};

use crate::CLIENT_CONCURRENCY;
use crate::calls::{call_each, time_each};
use crate::fakes::Fakes;
use crate::report::{median, ms, us};
use crate::scenarios::Targets;
use crate::server::Server;
use crate::wrk::Wrk;

/// Users for the first-call timings (each timed once).
const FIRST_CALL_USERS: usize = 50;

pub fn compare(
    rt: &tokio::runtime::Runtime,
    wrk: &Wrk<'_>,
    pairs: u32,
    t: &Targets<'_>,
    auth_env: &[(String, String)],
    fakes: &Fakes,
) -> Result<()> {
    let redis = rt.block_on(mcp_obo_testkit::redis_server::RedisServer::start());
    let mut env = auth_env.to_vec();
    env.push(("MCP_OBO__OBO__SHARED_CACHE__URL".into(), redis.url()));
    let spawn = || -> Result<Server> {
        let mut server = Server::spawn(&wrk.opts.binary, mcp_obo_testkit::free_port(), &env)?;
        rt.block_on(server.wait_ready())?;
        Ok(server)
    };
    let on = spawn()?;
    let users: Vec<String> = std::fs::read_to_string(t.users_file)
        .context("read the users file")?
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let tokens: Vec<&str> = users.iter().map(String::as_str).collect();
    let (failed, first) = rt.block_on(call_each(&on.url("/mcp"), &tokens, CLIENT_CONCURRENCY));
    if failed > 0 {
        anyhow::bail!("warming the shared-cache server: {failed} failed calls, first {first:?}");
    }
    for _ in 0..pairs {
        for (what, server) in [("shared cache off", t.auth), ("shared cache on", &on)] {
            let r = wrk.run(
                64,
                wrk.opts.duration,
                &server.url("/mcp"),
                &["hello", t.users_file],
                &[server.pid()],
            )?;
            eprintln!(
                "hello@64, {what}: {:.0} req/s, p50 {}, p99 {}, errors {}, server {:.0} µs/req",
                r.rps(),
                us(r.p50_us),
                us(r.p99_us),
                r.errors(),
                r.server_cores * 1e6 / r.rps()
            );
        }
    }

    // First calls on a fresh replica: users the first server put in Redis, then new ones.
    let cached: Vec<&str> = tokens.iter().take(FIRST_CALL_USERS).copied().collect();
    let new_users = fakes.mint("fresh", FIRST_CALL_USERS);
    let new_tokens: Vec<&str> = new_users.iter().map(String::as_str).collect();
    let fresh = spawn()?;
    let before = fakes.issuer.exchanges();
    let from_redis = rt.block_on(time_each(&fresh.url("/mcp"), &cached))?;
    let exchanges_for_cached = fakes.issuer.exchanges() - before;
    let exchanged = rt.block_on(time_each(&fresh.url("/mcp"), &new_tokens))?;
    let warm = rt.block_on(time_each(&fresh.url("/mcp"), &cached))?;
    eprintln!(
        "fresh replica, first call of {FIRST_CALL_USERS} users cached in Redis: median {} (max {}), {exchanges_for_cached} exchanges",
        ms(median(from_redis.clone())),
        ms(from_redis.iter().max().copied().unwrap_or_default()),
    );
    eprintln!(
        "fresh replica, first call of {FIRST_CALL_USERS} new users (full exchange with the in-process fake token endpoint): median {} (max {})",
        ms(median(exchanged.clone())),
        ms(exchanged.iter().max().copied().unwrap_or_default()),
    );
    eprintln!(
        "fresh replica, second call of the cached users (in-process hit): median {}",
        ms(median(warm)),
    );
    Ok(())
}
