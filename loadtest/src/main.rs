//! The load tool: load, start-up and memory measurements of the shipped (`dist`) binary
//! with authorization on. A workspace member rather than a `cargo bench` target because it
//! is a tool: it drives `wrk`, samples /proc and rewrites BENCHMARKS.md.
//!
//! In this process: the test issuer (OIDC discovery + JWKS + RFC 8693 token endpoint at
//! `/oidc/token`) and the fake Graph (on its own thread) verifying each downstream token's
//! signature once and then accepting it from its cache while unexpired, both from
//! `mcp-obo-testkit`. As child processes: `mcp-obo serve` twice (`auth.mode = oidc` with the
//! token exchange and a client secret, and `auth.mode = none`), and `wrk` driving them over
//! 127.0.0.1 with `loadtest/load.lua`, which rotates through users' tokens and checks every
//! response body; and the two reference proxies HelloTool is measured against: the Rust floor
//! (this binary re-executed as a bare actix-web + hyper-util proxy, `floor.rs`) and, when
//! installed, `nginx` (`nginx.rs`).
//!
//! Measures, in this order: cold start (exec → first successful authenticated tools/call,
//! median of 5), RSS idle and after 10,000 distinct users, the OBO cache warm-up of the load
//! users, the fake Graph's own ceiling, the wrk runs (healthz, tools/list with auth off and
//! on, HelloTool, the Rust floor, the nginx reference proxy, UpcomingEvents) at each
//! connection count, three comparison runs at 64 connections (fast path off for tools/list
//! and HelloTool, `log.requests=all` for HelloTool), and token exchanges for 10,000 calls
//! from 100 users.
//! Prints a Markdown report and writes it into `BENCHMARKS.md` between the
//! `<!-- load:begin -->` / `<!-- load:end -->` markers.
//!
//! Run with `scripts/bench.sh` (`cargo build --profile dist --bin mcp-obo`, then `cargo run
//! --profile dist -p mcp-obo-loadtest -- --binary target/dist/mcp-obo`). The binary comes from
//! `--binary` or `MCP_OBO_BIN` (default `target/dist/mcp-obo`); the knobs are the
//! `MCP_OBO_BENCH_*` variables (`--help`, `options.rs`).
//!
//! Modules: `options` (knobs), `fakes` (issuer, Graph, tokens), `server` (the child
//! process), `floor` and `nginx` (the reference proxies: actix-web + hyper-util, and nginx),
//! `calls` (single reqwest calls, cold start), `phases` (users, memory, the load servers'
//! warm-up, the exchange count), `wrk` (driving wrk), `procfs` (/proc sampling), `scenarios`
//! (the wrk runs), `shared` (the shared-cache comparison), `report` (Markdown,
//! BENCHMARKS.md); in tests, `proxy_check` (what both reference proxies' tests check).

mod calls;
mod fakes;
mod floor;
mod nginx;
mod options;
mod phases;
mod procfs;
#[cfg(test)]
mod proxy_check;
mod report;
mod scenarios;
mod server;
mod shared;
mod wrk;

use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::calls::{ColdStart, cold_start};
use crate::fakes::Fakes;
use crate::options::Options;
use crate::phases::{LoadServers, Memory, Users};
use crate::procfs::clock_ticks_per_sec;
use crate::report::{Results, mb, median, ms, report, write_report};
use crate::scenarios::Targets;
use crate::server::LogTap;
use crate::wrk::{Load, Wrk};

const COLD_RUNS: usize = 5;
const MEMORY_USERS: usize = 10_000;
const EXCHANGE_USERS: usize = 100;
const EXCHANGE_CALLS: usize = 10_000;
const CLIENT_CONCURRENCY: usize = 16;
/// The fake Graph's ceiling is measured at this many connections only.
const GRAPH_CEILING_CONNS: u32 = 64;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    // The Rust floor's child process (floor.rs re-executes this binary), before the options:
    // it has its own arguments.
    let result = if args.next().is_some_and(|a| a == floor::MODE) {
        floor::child_main(args)
    } else {
        Options::parse().and_then(|opts| run(&opts))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-obo-loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The first failure seen anywhere, quoted in the report.
#[derive(Default)]
pub struct FirstFailure(Option<String>);

impl FirstFailure {
    pub fn note(&mut self, failure: Option<String>) {
        if self.0.is_none() {
            self.0 = failure;
        }
    }
}

pub fn step(started: Instant, what: &str) {
    eprintln!("[{:6.1}s] {what}", started.elapsed().as_secs_f64());
}

fn write_lines(path: &Path, lines: &[String]) -> Result<()> {
    std::fs::write(path, lines.join("\n") + "\n")
        .with_context(|| format!("write token file {}", path.display()))
}

/// What the phases after the start-up share: the clock, the runtime, wrk and the fakes.
pub struct Harness<'a> {
    pub t0: Instant,
    pub rt: tokio::runtime::Runtime,
    pub wrk: Wrk<'a>,
    pub fakes: Fakes,
    pub auth_env: Vec<(String, String)>,
}

/// The binary and wrk are there; the binary's path and size for the report.
fn preflight(opts: &Options) -> Result<String> {
    if !opts.binary.exists() {
        bail!(
            "{} not found: cargo build --profile dist --bin mcp-obo, or pass --binary / set MCP_OBO_BIN",
            opts.binary.display()
        );
    }
    if Command::new("wrk").arg("-v").output().is_err() {
        bail!("wrk not found: apt-get install -y wrk (scripts/bench.sh does)");
    }
    Ok(format!(
        "`{}` ({:.1} MB)",
        opts.binary.display(),
        std::fs::metadata(&opts.binary).map_or(0.0, |m| m.len() as f64 / 1e6)
    ))
}

fn run(opts: &Options) -> Result<()> {
    let t0 = Instant::now();
    let binary_note = preflight(opts)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let fakes = rt.block_on(Fakes::start())?;
    let h = Harness {
        t0,
        auth_env: fakes.auth_env(),
        fakes,
        rt,
        wrk: Wrk {
            opts,
            ticks: clock_ticks_per_sec(),
        },
    };
    let dir = tempfile::tempdir().context("temp dir")?;
    step(t0, "minting user tokens");
    let users = Users::mint(&h.fakes, opts.users, dir.path())?;
    let mut failures = FirstFailure::default();
    let graph_file = dir.path().join("graph-tokens.txt");
    let (before, servers) = measure_before(&h, &users, &graph_file, &mut failures)?;

    let floor = floor::for_run(opts, &h.fakes.graph.url)?;
    if let Some(f) = &floor {
        step(
            t0,
            &format!("Rust floor reference: {} workers", f.workers()),
        );
    }
    let nginx = nginx::for_run(opts, &h.fakes.graph.url)?;
    if let Some(n) = &nginx {
        step(t0, &format!("nginx reference: {} workers", n.workers()));
    }

    // 5. The wrk runs (or only the A/B pairs, and no report).
    let users_arg = users.file.display().to_string();
    let graph_arg = graph_file.display().to_string();
    let targets = Targets {
        auth: &servers.auth,
        none: &servers.none,
        floor: floor.as_ref(),
        nginx: nginx.as_ref(),
        users_file: &users_arg,
        graph_tokens: &graph_arg,
    };
    if let Some(n) = opts.hello_only {
        return scenarios::hello_only(&h.wrk, n, &targets);
    }
    if let Some(n) = opts.shared_cache {
        return shared::compare(&h.rt, &h.wrk, n, &targets, &h.auth_env, &h.fakes);
    }
    let results = measure_load(&h, &targets, &users, before, failures)?;
    let md = report(opts, &results, &h.wrk, &binary_note);
    println!("\n{md}");
    if let Some(out) = &opts.out {
        write_report(out, &md)?;
        eprintln!("written to {}", out.display());
    }
    step(t0, "done");
    Ok(())
}

/// What was measured before the wrk runs, for the report.
struct Before {
    cold: Vec<ColdStart>,
    memory: Memory,
    memory_log: Arc<LogTap>,
    warm_exchanges: usize,
    warm_failures: usize,
    graph_ceiling: Load,
}

/// Steps 1 to 4, before the wrk runs: cold start, memory, the load servers' warm-up (their
/// downstream tokens written to `graph_file`) and the fake Graph's ceiling.
fn measure_before(
    h: &Harness<'_>,
    users: &Users,
    graph_file: &Path,
    failures: &mut FirstFailure,
) -> Result<(Before, LoadServers)> {
    let (t0, opts) = (h.t0, h.wrk.opts);
    // 1. Cold start.
    step(t0, "cold start");
    let cold: Vec<ColdStart> = (0..COLD_RUNS)
        .map(|_| cold_start(&h.rt, &opts.binary, &h.auth_env, &users.cold))
        .collect::<Result<_>>()?;

    // 2. Memory: a fresh server, idle, then 10,000 distinct users once each.
    step(t0, "memory: idle, then 10,000 users");
    let (memory, memory_log) =
        phases::memory(&h.rt, opts, &h.fakes, &h.auth_env, &users.memory, failures)?;
    // Printed as they are measured, so an A/B run (`MCP_OBO_BENCH_HELLO_ONLY`, no report)
    // shows them too.
    step(
        t0,
        &format!(
            "cold start median {}; RSS idle {} (anonymous {}), after 10,000 users {} (anonymous {})",
            ms(median(cold.iter().map(|c| c.total).collect())),
            mb(memory.rss_idle_kb),
            mb(memory.anon_idle_kb),
            mb(memory.rss_10k_kb),
            mb(memory.anon_10k_kb),
        ),
    );

    // 3. The load servers: auth on (warmed), auth off.
    step(t0, "load servers: start, warm the OBO cache");
    let servers = phases::load_servers(&h.rt, opts, &h.fakes, &h.auth_env, &users.load, failures)?;

    // 4. The fake Graph's own ceiling, with the downstream tokens just issued.
    step(t0, "fake Graph ceiling");
    write_lines(graph_file, &servers.downstream)?;
    let graph_ceiling = h.wrk.run(
        GRAPH_CEILING_CONNS,
        opts.duration.min(5),
        &format!("{}/v1.0/me", h.fakes.graph.url),
        &["graph", &graph_file.display().to_string()],
        &[],
    )?;

    let before = Before {
        cold,
        memory,
        memory_log,
        warm_exchanges: servers.warm_exchanges,
        warm_failures: servers.warm_failures,
        graph_ceiling,
    };
    Ok((before, servers))
}

/// The full run after the warm-up: the wrk rounds, the comparisons, the exchange count and
/// the optional profile, with everything measured before them.
fn measure_load(
    h: &Harness<'_>,
    targets: &Targets<'_>,
    users: &Users,
    before: Before,
    mut failures: FirstFailure,
) -> Result<Results> {
    let (t0, opts) = (h.t0, h.wrk.opts);
    let exchanges_before = h.fakes.issuer.exchanges();
    let load = scenarios::rounds(&h.wrk, t0, targets, &mut failures)?;
    let load_exchanges = h.fakes.issuer.exchanges() - exchanges_before;

    // 5b. Comparisons at 64 connections: fast path off, access log on.
    step(t0, "comparisons: fast path off, access log on");
    let tokens: Vec<&str> = users.load.iter().map(String::as_str).collect();
    let comparisons = scenarios::comparisons(
        &h.rt,
        &h.wrk,
        &h.auth_env,
        &tokens,
        targets.users_file,
        &mut failures,
    )?;

    // 6. 10,000 calls from 100 new users: exactly 100 exchanges.
    step(t0, "token exchanges: 10,000 calls from 100 users");
    let (exchange_calls_failures, exchanges_for_100) = phases::exchange_count(
        &h.rt,
        targets.auth,
        &h.fakes,
        &users.exchange,
        &mut failures,
    );

    // 7. Optional profile (not part of the table).
    if let Some(perf_out) = &opts.perf {
        step(t0, "perf record of HelloTool at 64 connections");
        scenarios::perf_run(&h.wrk, perf_out, targets)?;
    }

    let mut taps = vec![&before.memory_log, &targets.auth.log, &targets.none.log];
    taps.extend(comparisons.logs.iter());
    let server_log_problems: u64 = taps
        .iter()
        .map(|t| t.problems.load(Ordering::Relaxed))
        .sum();
    Ok(Results {
        cold: before.cold,
        memory: before.memory,
        warm_exchanges: before.warm_exchanges,
        warm_failures: before.warm_failures,
        graph_ceiling: before.graph_ceiling,
        graph_ceiling_conns: GRAPH_CEILING_CONNS,
        load,
        extras: comparisons.runs,
        load_exchanges,
        exchange_calls_failures,
        exchanges_for_100,
        rss_after_load_kb: targets.auth.status_kb("VmRSS:"),
        hwm_after_load_kb: targets.auth.status_kb("VmHWM:"),
        server_log_problems,
        server_log_sample: taps.iter().find_map(|t| t.first_problem()),
        floor: targets.floor.map(|f| {
            format!(
                "{} workers (the server's worker count), a child process, not pinned",
                f.workers()
            )
        }),
        nginx: targets.nginx.map(|n| {
            format!(
                "`{}`, {} worker processes (the server's worker count), not pinned (neither is the server)",
                nginx::version().unwrap_or_else(|| "nginx".into()),
                n.workers()
            )
        }),
        first_failure: failures.0,
    })
}
