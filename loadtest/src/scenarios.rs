//! The wrk runs: the table's scenarios (the reference proxies among them) in interleaved
//! rounds, the comparison runs at 64 connections, the A/B mode (`MCP_OBO_BENCH_HELLO_ONLY`)
//! and the optional perf profile.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::calls::call_each;
use crate::floor::Floor;
use crate::nginx::Nginx;
use crate::report::us;
use crate::server::{LogTap, Server};
use crate::wrk::{Load, Wrk};
use crate::{CLIENT_CONCURRENCY, FirstFailure, step};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    Healthz,
    ListOff,
    ListOn,
    Hello,
    /// The Rust floor: HelloTool's POST, one upstream GET, on actix-web and hyper-util.
    Floor,
    /// The nginx reference proxy: HelloTool's POST, one upstream GET.
    Nginx,
    Events,
}

impl Scenario {
    /// In the table's order (the reference proxies next to HelloTool, which is measured
    /// against them).
    pub const ALL: [Scenario; 7] = [
        Self::Healthz,
        Self::ListOff,
        Self::ListOn,
        Self::Hello,
        Self::Floor,
        Self::Nginx,
        Self::Events,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Healthz => "`GET /healthz` (auth server)",
            Self::ListOff => "`tools/list`, auth off",
            Self::ListOn => "`tools/list`, auth on",
            Self::Hello => "`tools/call HelloTool`, auth on, cache warm",
            Self::Floor => {
                "Rust floor: actix-web + hyper-util proxying the same POST as one keep-alive `GET /v1.0/me` (no JSON, no token work)"
            }
            Self::Nginx => {
                "nginx reference: the same POST proxied as one keep-alive `GET /v1.0/me` (no JSON, no token work)"
            }
            Self::Events => {
                "`tools/call UpcomingEvents` (10 events, one page), auth on, cache warm"
            }
        }
    }
}

/// The two load servers, the reference proxies (when they run) and the token files the wrk
/// runs rotate through.
pub struct Targets<'a> {
    /// `auth.mode = oidc`, OBO cache warm.
    pub auth: &'a Server,
    /// `auth.mode = none`.
    pub none: &'a Server,
    pub floor: Option<&'a Floor>,
    pub nginx: Option<&'a Nginx>,
    pub users_file: &'a str,
    /// Downstream tokens the fake Graph accepts, for the reference proxies.
    pub graph_tokens: &'a str,
}

impl Targets<'_> {
    /// Where scenario `s` is sent, the pids whose CPU it costs, and load.lua's arguments;
    /// `None` for a reference proxy that does not run.
    fn target(&self, s: Scenario) -> Option<(String, Vec<u32>, Vec<&str>)> {
        let (server, path, args) = match s {
            Scenario::Healthz => (self.auth, "/healthz", vec!["healthz"]),
            Scenario::ListOff => (self.none, "/mcp", vec!["list"]),
            Scenario::ListOn => (self.auth, "/mcp", vec!["list", self.users_file]),
            Scenario::Hello => (self.auth, "/mcp", vec!["hello", self.users_file]),
            Scenario::Events => (self.auth, "/mcp", vec!["events", self.users_file]),
            Scenario::Floor => {
                let f = self.floor?;
                return Some((f.url("/mcp"), f.pids(), vec!["proxy", self.graph_tokens]));
            }
            Scenario::Nginx => {
                let n = self.nginx?;
                return Some((n.url("/mcp"), n.pids(), vec!["proxy", self.graph_tokens]));
            }
        };
        Some((server.url(path), vec![server.pid()], args))
    }
}

/// `HelloTool / nginx: 0.55 of the throughput, p99 1.8×`: `a` against `b`, named `what`.
pub fn versus(what: &str, a: &Load, b: &Load) -> String {
    format!(
        "{what}: {:.2} of the throughput, p99 {:.1}×",
        a.rps() / b.rps(),
        a.p99_us as f64 / b.p99_us.max(1) as f64
    )
}

/// The comparisons with the reference proxies at one connection count, of the runs `get`
/// has: HelloTool / Rust floor (what mcp-obo does), Rust floor / nginx (what the framework
/// costs), HelloTool / nginx (both).
pub fn against_references<'a>(get: impl Fn(Scenario) -> Option<&'a Load>) -> Vec<String> {
    [
        ("HelloTool / Rust floor", Scenario::Hello, Scenario::Floor),
        ("Rust floor / nginx", Scenario::Floor, Scenario::Nginx),
        ("HelloTool / nginx", Scenario::Hello, Scenario::Nginx),
    ]
    .into_iter()
    .filter_map(|(what, a, b)| Some(versus(what, get(a)?, get(b)?)))
    .collect()
}

/// A/B comparisons: unauthenticated tools/list and HelloTool (and, with
/// `MCP_OBO_BENCH_NGINX`, the reference proxies) at each connection count, `n` times,
/// alternating, printed with their ratios: run-to-run spread on this VM is 10-20%, so the
/// ratio of neighbouring runs says more.
pub fn hello_only(wrk: &Wrk<'_>, n: u32, t: &Targets<'_>) -> Result<()> {
    let opts = wrk.opts;
    for _ in 0..n {
        for &c in &opts.connections {
            let mut runs = Vec::new();
            for (what, s) in [
                ("list (auth off)", Scenario::ListOff),
                ("hello", Scenario::Hello),
                ("Rust floor", Scenario::Floor),
                ("nginx", Scenario::Nginx),
            ] {
                if let Some((url, pids, args)) = t.target(s) {
                    runs.push((s, what, wrk.run(c, opts.duration, &url, &args, &pids)?));
                }
            }
            for (_, what, r) in &runs {
                eprintln!(
                    "{what}@{c}: {:.0} req/s, p50 {}, p99 {}, errors {}, server {:.0} µs/req, fakes {:.2} cores",
                    r.rps(),
                    us(r.p50_us),
                    us(r.p99_us),
                    r.errors(),
                    r.server_cores * 1e6 / r.rps(),
                    r.harness_cores,
                );
            }
            let get = |s: Scenario| runs.iter().find(|(r, ..)| *r == s).map(|(.., l)| l);
            if let (Some(list), Some(hello)) = (get(Scenario::ListOff), get(Scenario::Hello)) {
                eprintln!(
                    "hello / list @{c}: {:.0}%",
                    100.0 * hello.rps() / list.rps()
                );
            }
            for line in against_references(get) {
                eprintln!("{line} @{c}");
            }
        }
    }
    Ok(())
}

/// Every (connections, scenario) run, `opts.rounds` times. Rounds interleave the runs, so a
/// slow spell of this shared VM hits all of them alike; each cell is the median round.
pub fn rounds(
    wrk: &Wrk<'_>,
    t0: Instant,
    t: &Targets<'_>,
    failures: &mut FirstFailure,
) -> Result<BTreeMap<(u32, Scenario), Load>> {
    let opts = wrk.opts;
    let mut rounds: BTreeMap<(u32, Scenario), Vec<Load>> = BTreeMap::new();
    for round in 1..=opts.rounds {
        for &c in &opts.connections {
            for s in Scenario::ALL {
                let Some((url, pids, args)) = t.target(s) else {
                    continue;
                };
                step(
                    t0,
                    &format!(
                        "round {round}/{}: wrk {} at {c} connections",
                        opts.rounds,
                        s.label()
                    ),
                );
                let result = wrk.run(c, opts.duration, &url, &args, &pids)?;
                eprintln!(
                    "         {:.0} req/s, p50 {}, p99 {}, errors {}, server {:.2} cores, harness {:.2} cores",
                    result.rps(),
                    us(result.p50_us),
                    us(result.p99_us),
                    result.errors(),
                    result.server_cores,
                    result.harness_cores
                );
                if result.errors() > 0 || result.unchecked > c as u64 {
                    eprintln!(
                        "         errors: {:?}, unchecked {}",
                        result.sample, result.unchecked
                    );
                    failures.note(result.sample.clone());
                }
                rounds.entry((c, s)).or_default().push(result);
                std::thread::sleep(Duration::from_millis(300));
            }
        }
    }
    Ok(rounds
        .into_iter()
        .filter_map(|(k, v)| Some((k, Load::median_of(v)?)))
        .collect())
}

/// The comparison runs: (label, result), and each comparison server's log tap.
pub struct Comparisons {
    pub runs: Vec<(String, Load)>,
    pub logs: Vec<Arc<LogTap>>,
}

/// Comparisons at 64 connections (not targets): what the stateless fast path and the default
/// request logging are worth, each against the default server.
pub fn comparisons(
    rt: &tokio::runtime::Runtime,
    wrk: &Wrk<'_>,
    auth_env: &[(String, String)],
    tokens: &[&str],
    users_file: &str,
    failures: &mut FirstFailure,
) -> Result<Comparisons> {
    let opts = wrk.opts;
    let with = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut env = auth_env.to_vec();
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        env
    };
    let variants = [
        (
            "`tools/list`, auth off, `server.fast_path=false` (every request through rmcp's transport)",
            vec![("MCP_OBO__SERVER__FAST_PATH".into(), "false".into())],
            "list",
        ),
        (
            "`tools/call HelloTool`, auth on, `server.fast_path=false`",
            with(&[("MCP_OBO__SERVER__FAST_PATH", "false")]),
            "hello",
        ),
        (
            "`tools/call HelloTool`, auth on, `log.requests=all` (a line per request)",
            with(&[("MCP_OBO__LOG__REQUESTS", "all")]),
            "hello",
        ),
    ];
    let mut extras = Vec::new();
    let mut logs = Vec::new();
    for (label, env, mode) in variants {
        let mut server = Server::spawn(&opts.binary, mcp_obo_testkit::free_port(), &env)?;
        rt.block_on(server.wait_ready())?;
        let mut args = vec![mode];
        if mode == "hello" {
            let (failed, first) =
                rt.block_on(call_each(&server.url("/mcp"), tokens, CLIENT_CONCURRENCY));
            failures.note(first);
            if failed > 0 {
                bail!("{label}: {failed} warm-up calls failed");
            }
            args.push(users_file);
        }
        let result = wrk.run(
            64,
            opts.duration,
            &server.url("/mcp"),
            &args,
            &[server.pid()],
        )?;
        eprintln!(
            "         {label}: {:.0} req/s, p99 {}, errors {}",
            result.rps(),
            us(result.p99_us),
            result.errors()
        );
        if result.errors() > 0 {
            failures.note(result.sample.clone());
        }
        extras.push((label.to_owned(), result));
        logs.push(server.log.clone());
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(Comparisons { runs: extras, logs })
}

/// One extra HelloTool run at 64 connections under `perf record` (not part of the table).
pub fn perf_run(wrk: &Wrk<'_>, perf_out: &std::path::Path, t: &Targets<'_>) -> Result<()> {
    let opts = wrk.opts;
    let mut perf = Command::new("perf")
        .args(["record", "-F", "499", "--call-graph", "dwarf,16384", "-o"])
        .arg(perf_out)
        .args(["-p", &t.auth.pid().to_string(), "--", "sleep"])
        .arg((opts.duration + 1).to_string())
        .stdout(Stdio::null())
        .spawn()
        .context("start perf (MCP_OBO_BENCH_PERF is set)")?;
    std::thread::sleep(Duration::from_millis(500));
    let profiled = wrk.run(
        64,
        opts.duration,
        &t.auth.url("/mcp"),
        &["hello", t.users_file],
        &[t.auth.pid()],
    );
    let _ = perf.wait();
    let profiled = profiled?;
    eprintln!(
        "         profiled run: {:.0} req/s, p99 {}",
        profiled.rps(),
        us(profiled.p99_us)
    );
    Ok(())
}
