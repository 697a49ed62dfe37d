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
//! response body.
//!
//! Measures, in this order: cold start (exec → first successful authenticated tools/call,
//! median of 5), RSS idle and after 10,000 distinct users, the OBO cache warm-up of the load
//! users, the fake Graph's own ceiling, the wrk runs (healthz, tools/list with auth off and
//! on, HelloTool) at each connection count, three comparison runs at 64 connections (fast
//! path off for tools/list and HelloTool, `log.requests=all` for HelloTool), and token
//! exchanges for 10,000 calls from 100 users. Prints a Markdown report and writes it into
//! `BENCHMARKS.md` between the `<!-- load:begin -->` / `<!-- load:end -->` markers.
//!
//! Run with `scripts/bench.sh` (`cargo build --profile dist --bin mcp-obo`, then `cargo run
//! --profile dist -p mcp-obo-loadtest -- --binary target/dist/mcp-obo`). The binary comes from
//! `--binary` or `MCP_OBO_BIN` (default `target/dist/mcp-obo`); the knobs are the
//! `MCP_OBO_BENCH_*` variables (`--help`, `options.rs`).
//!
//! Modules: `options` (knobs), `fakes` (issuer, Graph, tokens), `server` (the child
//! process), `calls` (single reqwest calls, cold start), `wrk` (driving wrk), `procfs`
//! (/proc sampling), `scenarios` (the wrk runs), `report` (Markdown, BENCHMARKS.md).

mod calls;
mod fakes;
mod options;
mod procfs;
mod report;
mod scenarios;
mod server;
mod shared;
mod wrk;

use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::calls::{ColdStart, Tool, call_each, call_each_with, cold_start};
use crate::fakes::Fakes;
use crate::options::Options;
use crate::procfs::clock_ticks_per_sec;
use crate::report::{Results, mb, median, ms, report, write_report};
use crate::scenarios::Targets;
use crate::server::Server;
use crate::wrk::Wrk;

const COLD_RUNS: usize = 5;
const MEMORY_USERS: usize = 10_000;
const EXCHANGE_USERS: usize = 100;
const EXCHANGE_CALLS: usize = 10_000;
const CLIENT_CONCURRENCY: usize = 16;

fn main() -> ExitCode {
    match Options::parse().and_then(|opts| run(&opts)) {
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

fn run(opts: &Options) -> Result<()> {
    let t0 = Instant::now();
    if !opts.binary.exists() {
        bail!(
            "{} not found: cargo build --profile dist --bin mcp-obo, or pass --binary / set MCP_OBO_BIN",
            opts.binary.display()
        );
    }
    if Command::new("wrk").arg("-v").output().is_err() {
        bail!("wrk not found: apt-get install -y wrk (scripts/bench.sh does)");
    }
    let binary_note = format!(
        "`{}` ({:.1} MB)",
        opts.binary.display(),
        std::fs::metadata(&opts.binary).map_or(0.0, |m| m.len() as f64 / 1e6)
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let fakes = rt.block_on(Fakes::start())?;
    let auth_env = fakes.auth_env();
    let dir = tempfile::tempdir().context("temp dir")?;
    let wrk = Wrk {
        opts,
        ticks: clock_ticks_per_sec(),
    };

    step(t0, "minting user tokens");
    let load_users = fakes.mint("load", opts.users);
    let exchange_users = fakes.mint("xchg", EXCHANGE_USERS);
    let memory_users = fakes.mint("mem", MEMORY_USERS);
    let cold_user = fakes.mint("cold", 1).remove(0);
    let users_file = dir.path().join("users.txt");
    write_lines(&users_file, &load_users)?;
    for n in 0..opts.users {
        fakes
            .graph
            .set_events(&format!("load-{n}"), fakes::calendar(10));
    }
    let mut failures = FirstFailure::default();

    // 1. Cold start.
    step(t0, "cold start");
    let cold: Vec<ColdStart> = (0..COLD_RUNS)
        .map(|_| cold_start(&rt, &opts.binary, &auth_env, &cold_user))
        .collect::<Result<_>>()?;

    // 2. Memory: a fresh server, idle, then 10,000 distinct users once each.
    step(t0, "memory: idle, then 10,000 users");
    // VmRSS counts the binary's mapped pages too (shared, reclaimable page cache); RssAnon is
    // the process's own memory (heap, stacks), so both are reported.
    let (idle_kb, after_kb, hwm_10k_kb, memory_exchanges, memory_failures, memory_log) = {
        let mut server = Server::spawn(&opts.binary, mcp_obo_testkit::free_port(), &auth_env)?;
        rt.block_on(server.wait_ready())?;
        std::thread::sleep(Duration::from_millis(300));
        let idle = (server.status_kb("VmRSS:"), server.status_kb("RssAnon:"));
        let before = fakes.issuer.exchanges();
        let tokens: Vec<&str> = memory_users.iter().map(String::as_str).collect();
        let (failed, first) =
            rt.block_on(call_each(&server.url("/mcp"), &tokens, CLIENT_CONCURRENCY));
        failures.note(first);
        std::thread::sleep(Duration::from_millis(300));
        (
            idle,
            (server.status_kb("VmRSS:"), server.status_kb("RssAnon:")),
            server.status_kb("VmHWM:"),
            fakes.issuer.exchanges() - before,
            failed,
            server.log.clone(),
        )
    };

    // Printed as they are measured, so an A/B run (`MCP_OBO_BENCH_HELLO_ONLY`, no report)
    // shows them too.
    step(
        t0,
        &format!(
            "cold start median {}; RSS idle {} (anonymous {}), after 10,000 users {} (anonymous {})",
            ms(median(cold.iter().map(|c| c.total).collect())),
            mb(idle_kb.0),
            mb(idle_kb.1),
            mb(after_kb.0),
            mb(after_kb.1),
        ),
    );

    // 3. The load servers: auth on (warmed), auth off.
    step(t0, "load servers: start, warm the OBO cache");
    let mut auth = Server::spawn(&opts.binary, mcp_obo_testkit::free_port(), &auth_env)?;
    let mut none = Server::spawn(&opts.binary, mcp_obo_testkit::free_port(), &[])?;
    rt.block_on(auth.wait_ready())?;
    rt.block_on(none.wait_ready())?;
    let before = fakes.issuer.exchanges();
    let issued_before = fakes.issuer.issued_tokens().len();
    let tokens: Vec<&str> = load_users.iter().map(String::as_str).collect();
    let (warm_failures, first) =
        rt.block_on(call_each(&auth.url("/mcp"), &tokens, CLIENT_CONCURRENCY));
    failures.note(first);
    // UpcomingEvents has its own token per user (Calendars.Read): warm those too.
    let (events_failures, first) = rt.block_on(call_each_with(
        Tool::Events,
        &auth.url("/mcp"),
        &tokens,
        CLIENT_CONCURRENCY,
    ));
    failures.note(first);
    let warm_failures = warm_failures + events_failures;
    let warm_exchanges = fakes.issuer.exchanges() - before;

    // 4. The fake Graph's own ceiling, with the downstream tokens just issued.
    step(t0, "fake Graph ceiling");
    let graph_file = dir.path().join("graph-tokens.txt");
    write_lines(&graph_file, &fakes.issuer.issued_tokens()[issued_before..])?;
    let graph_ceiling_conns = 64;
    let graph_ceiling = wrk.run(
        graph_ceiling_conns,
        opts.duration.min(5),
        &format!("{}/v1.0/me", fakes.graph.url),
        &["graph", &graph_file.display().to_string()],
        None,
    )?;

    // 5. The wrk runs (or only the A/B pairs, and no report).
    let users_arg = users_file.display().to_string();
    let targets = Targets {
        auth: &auth,
        none: &none,
        users_file: &users_arg,
    };
    if let Some(n) = opts.hello_only {
        return scenarios::hello_only(&wrk, n, &targets);
    }
    if let Some(n) = opts.shared_cache {
        return shared::compare(&rt, &wrk, n, &targets, &auth_env, &fakes);
    }
    let before = fakes.issuer.exchanges();
    let load = scenarios::rounds(&wrk, t0, &targets, &mut failures)?;
    let load_exchanges = fakes.issuer.exchanges() - before;

    // 5b. Comparisons at 64 connections: fast path off, access log on.
    step(t0, "comparisons: fast path off, access log on");
    let comparisons =
        scenarios::comparisons(&rt, &wrk, &auth_env, &tokens, &users_arg, &mut failures)?;

    // 6. 10,000 calls from 100 new users: exactly 100 exchanges.
    step(t0, "token exchanges: 10,000 calls from 100 users");
    let before = fakes.issuer.exchanges();
    let calls: Vec<&str> = (0..EXCHANGE_CALLS)
        .map(|i| exchange_users[i % EXCHANGE_USERS].as_str())
        .collect();
    let (exchange_calls_failures, first) =
        rt.block_on(call_each(&auth.url("/mcp"), &calls, CLIENT_CONCURRENCY));
    failures.note(first);
    let exchanges_for_100 = fakes.issuer.exchanges() - before;
    let rss_after_load_kb = auth.status_kb("VmRSS:");
    let hwm_after_load_kb = auth.status_kb("VmHWM:");

    // 7. Optional profile (not part of the table).
    if let Some(perf_out) = &opts.perf {
        step(t0, "perf record of HelloTool at 64 connections");
        scenarios::perf_run(&wrk, perf_out, &targets)?;
    }

    let mut taps = vec![&memory_log, &auth.log, &none.log];
    taps.extend(comparisons.logs.iter());
    let server_log_problems: u64 = taps
        .iter()
        .map(|t| t.problems.load(Ordering::Relaxed))
        .sum();
    let server_log_sample = taps.iter().find_map(|t| t.first_problem());
    drop(auth);
    drop(none);

    let results = Results {
        cold,
        rss_idle_kb: idle_kb.0,
        anon_idle_kb: idle_kb.1,
        rss_10k_kb: after_kb.0,
        anon_10k_kb: after_kb.1,
        hwm_10k_kb,
        memory_exchanges,
        memory_failures,
        warm_exchanges,
        warm_failures,
        graph_ceiling,
        graph_ceiling_conns,
        load,
        extras: comparisons.runs,
        load_exchanges,
        exchange_calls_failures,
        exchanges_for_100,
        rss_after_load_kb,
        hwm_after_load_kb,
        server_log_problems,
        server_log_sample,
        first_failure: failures.0,
    };
    let md = report(opts, &results, &wrk, &binary_note);
    println!("\n{md}");
    if let Some(out) = &opts.out {
        write_report(out, &md)?;
        eprintln!("written to {}", out.display());
    }
    step(t0, "done");
    Ok(())
}
