//! Load benchmark of the release binary with authorization on (issue 8).
//!
//! In this process: the test issuer (OIDC discovery + JWKS + RFC 8693 token endpoint at
//! `/oidc/token`) and the fake Graph (on its own thread) verifying each downstream token's
//! signature once and then accepting it from its cache while unexpired, both from
//! `tests/it/support`. As child processes: `mcp-obo serve` twice (`auth.mode = oidc` with the
//! token exchange and a client secret, and `auth.mode = none`), and `wrk` driving them over
//! 127.0.0.1 with `benches/load.lua`, which rotates through users' tokens and checks every
//! response body.
//!
//! Measures, in this order: cold start (exec → first successful authenticated tools/call,
//! median of 5), RSS idle and after 10,000 distinct users, the OBO cache warm-up of the load
//! users, the fake Graph's own ceiling, the wrk runs (healthz, tools/list with auth off and
//! on, HelloTool) at each connection count, three comparison runs at 64 connections (fast
//! path off for tools/list and HelloTool, `log.requests=all` for HelloTool), and token
//! exchanges for 10,000 calls from 100 users. Prints a Markdown report and writes it into `BENCHMARKS.md` between the
//! `<!-- load:begin -->` / `<!-- load:end -->` markers.
//!
//! Run with `scripts/bench.sh` (release build, then `cargo bench --bench load`). Knobs
//! (environment): `MCP_OBO_BIN` (binary; default the one cargo built for this bench, i.e.
//! `target/release/mcp-obo`), `MCP_OBO_BENCH_DURATION` (seconds per wrk run, 10),
//! `MCP_OBO_BENCH_CONNECTIONS` (`16,64,256`), `MCP_OBO_BENCH_THREADS` (wrk threads, 2),
//! `MCP_OBO_BENCH_USERS` (1000), `MCP_OBO_BENCH_OUT` (report file, `-` for none),
//! `MCP_OBO_BENCH_PERF` (a perf.data path: one extra HelloTool run at 64 connections under
//! `perf record`, not part of the table), `MCP_OBO_BENCH_HELLO_ONLY=N` (for A/B runs: after
//! the warm-up, N pairs of unauthenticated tools/list and HelloTool runs at each connection
//! count, printed with their ratio, no report). `MCP_OBO__*` settings in its environment
//! (e.g. `MCP_OBO__SERVER__WORKERS=1`) reach every server it starts.

#[path = "../tests/it/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use support::fake_graph::FakeGraph;
use support::tokens::{TestIssuer, now};

const PUBLIC_URL: &str = "https://mcp.example.com";
const AUDIENCE: &str = "https://mcp.example.com/mcp";
const OBO_CLIENT: &str = "mcp-server";
const OBO_SECRET: &str = "bench-secret";
const SCOPE: &str = "mcp:tools";
const PROTOCOL: &str = "2025-06-18";
const ACCEPT: &str = "application/json, text/event-stream";
const HELLO_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"HelloTool","arguments":{}}}"#;

const COLD_RUNS: usize = 5;
const MEMORY_USERS: usize = 10_000;
const EXCHANGE_USERS: usize = 100;
const EXCHANGE_CALLS: usize = 10_000;
const CLIENT_CONCURRENCY: usize = 16;

// ---------------------------------------------------------------------------------------
// Options

struct Options {
    binary: PathBuf,
    duration: u64,
    /// Interleaved rounds of the wrk runs; each cell is the median round.
    rounds: u32,
    connections: Vec<u32>,
    threads: u32,
    users: usize,
    out: Option<PathBuf>,
    perf: Option<PathBuf>,
    root: PathBuf,
}

impl Options {
    fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let binary = var("MCP_OBO_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(support::binary()));
        let connections = var("MCP_OBO_BENCH_CONNECTIONS")
            .unwrap_or_else(|| "16,64,256".into())
            .split(',')
            .map(|c| {
                c.trim()
                    .parse()
                    .expect("MCP_OBO_BENCH_CONNECTIONS: numbers")
            })
            .collect();
        let out = match var("MCP_OBO_BENCH_OUT").as_deref() {
            Some("-") => None,
            Some(p) => Some(PathBuf::from(p)),
            None => Some(root.join("BENCHMARKS.md")),
        };
        Self {
            binary,
            duration: var("MCP_OBO_BENCH_DURATION").map_or(5, |d| d.parse().expect("seconds")),
            rounds: var("MCP_OBO_BENCH_ROUNDS").map_or(3, |r| r.parse().expect("rounds")),
            connections,
            threads: var("MCP_OBO_BENCH_THREADS").map_or(2, |t| t.parse().expect("threads")),
            users: var("MCP_OBO_BENCH_USERS").map_or(1000, |u| u.parse().expect("users")),
            out,
            perf: var("MCP_OBO_BENCH_PERF").map(PathBuf::from),
            root,
        }
    }

    fn script(&self) -> PathBuf {
        self.root.join("benches/load.lua")
    }
}

// ---------------------------------------------------------------------------------------
// The fakes

/// The fake Graph on one thread with a current-thread runtime, as a lean Graph stand-in:
/// on a shared multi-thread runtime its work-stealing wake-ups cost the 2 shared cores
/// more than its requests do.
fn graph_on_its_own_thread() -> FakeGraph {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("fake-graph".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("fake Graph runtime");
            rt.block_on(async move {
                let _ = tx.send(FakeGraph::start_minimal().await);
                std::future::pending::<()>().await;
            });
        })
        .expect("fake Graph thread");
    rx.recv().expect("fake Graph started")
}

struct Fakes {
    issuer: TestIssuer,
    graph: FakeGraph,
}

impl Fakes {
    async fn start() -> Self {
        let issuer = TestIssuer::start().await;
        let graph = graph_on_its_own_thread();
        // Graph accepts only downstream tokens the issuer signed for it (per request: the
        // OBO token differs per exchange, so there is no fixed token→profile map).
        graph.verify_tokens(issuer.keys_handle(), &graph.url, &[AUDIENCE]);
        graph.stop_recording();
        let resource = graph.url.clone();
        issuer.configure_token_endpoint(|p| {
            p.resource = resource;
            p.client_id = OBO_CLIENT.into();
            p.client_secret = Some(OBO_SECRET.into());
            p.user_audiences = vec![AUDIENCE.into()];
        });
        Self { issuer, graph }
    }

    /// `auth.mode = oidc` + RFC 8693 token exchange with a client secret, as
    /// `tests/it/obo_exchange.rs::rfc8693_token_exchange_works_for_non_entra_issuers`.
    fn auth_env(&self) -> Vec<(String, String)> {
        [
            ("MCP_OBO__AUTH__MODE", "oidc".to_owned()),
            ("MCP_OBO__AUTH__ISSUER", self.issuer.oidc_issuer()),
            ("MCP_OBO__AUTH__AUDIENCES", AUDIENCE.to_owned()),
            ("MCP_OBO__AUTH__REQUIRED_SCOPES", SCOPE.to_owned()),
            ("MCP_OBO__SERVER__PUBLIC_URL", PUBLIC_URL.to_owned()),
            ("MCP_OBO__GRAPH__BASE_URL", self.graph.url.clone()),
            ("MCP_OBO__OBO__GRANT", "token_exchange".to_owned()),
            ("MCP_OBO__OBO__CLIENT_ASSERTION", "client_secret".to_owned()),
            ("MCP_OBO__OBO__CLIENT_ID", OBO_CLIENT.to_owned()),
            ("MCP_OBO__OBO__CLIENT_SECRET", OBO_SECRET.to_owned()),
            (
                "MCP_OBO__OBO__TOKEN_ENDPOINT",
                format!("{}/token", self.issuer.oidc_issuer()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Valid user tokens (RS256, 2 h) for `count` distinct users named `{prefix}-{n}`.
    fn mint(&self, prefix: &str, count: usize) -> Vec<String> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let chunk = count.div_ceil(threads).max(1);
        let indices: Vec<usize> = (0..count).collect();
        std::thread::scope(|s| {
            let handles: Vec<_> = indices
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|n| {
                                self.issuer.sign(&json!({
                                    "iss": self.issuer.oidc_issuer(),
                                    "aud": AUDIENCE,
                                    "sub": format!("{prefix}-{n}"),
                                    "name": format!("Bench User {prefix}-{n}"),
                                    "preferred_username": format!("{prefix}-{n}@example.org"),
                                    "exp": now() + 7200,
                                    "iat": now(),
                                    "scope": format!("openid {SCOPE}"),
                                }))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("minting thread"))
                .collect()
        })
    }
}

// ---------------------------------------------------------------------------------------
// The server process

/// What the server wrote on stderr (drained through a pipe, as a container runtime does).
#[derive(Default)]
struct LogTap {
    /// Problems count only once armed (after start-up, whose warnings are expected).
    armed: std::sync::atomic::AtomicBool,
    lines: AtomicU64,
    problems: AtomicU64,
    first_problem: Mutex<Option<String>>,
}

struct Server {
    child: Child,
    port: u16,
    log: Arc<LogTap>,
}

impl Server {
    fn spawn(binary: &Path, port: u16, env: &[(String, String)]) -> Self {
        let mut cmd = Command::new(binary);
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            // Settings in the harness's environment (e.g. MCP_OBO__SERVER__WORKERS) reach
            // every server; the harness's own settings take precedence.
            .envs(std::env::vars().filter(|(k, _)| k.starts_with("MCP_OBO__")))
            .env("MCP_OBO__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let log = Arc::new(LogTap::default());
        let stderr = child.stderr.take().expect("piped stderr");
        let tap = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                tap.lines.fetch_add(1, Ordering::Relaxed);
                let problem =
                    line.contains("WARN") || line.contains("ERROR") || line.contains("panicked");
                if problem && tap.armed.load(Ordering::Acquire) {
                    tap.problems.fetch_add(1, Ordering::Relaxed);
                    let mut first = tap.first_problem.lock().expect("log tap");
                    if first.is_none() {
                        *first = Some(line);
                    }
                }
            }
        });
        Self { child, port, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn status_kb(&self, field: &str) -> u64 {
        proc_status_kb(self.pid(), field)
    }

    async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("mcp-obo exited early with {status}");
            }
            if client
                .get(self.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                // Let the drain thread read the start-up lines before arming it.
                tokio::time::sleep(Duration::from_millis(100)).await;
                self.log.armed.store(true, Ordering::Release);
                return;
            }
            assert!(Instant::now() < deadline, "mcp-obo never became ready");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proc_status_kb(pid: u32, field: &str) -> u64 {
    proc_kb(&format!("/proc/{pid}/status"), field)
}

/// A `Field:   1234 kB` value from a /proc file such as `status` or `meminfo` (0 if absent).
fn proc_kb(path: &str, field: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// utime + stime of a whole process (all threads), in clock ticks.
fn proc_cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`, which may contain spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime 15.
    let get = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    get(14).unwrap_or(0) + get(15).unwrap_or(0)
}

fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

// ---------------------------------------------------------------------------------------
// One MCP call with reqwest (warm-up, cold start, exact-count runs)

#[derive(Debug)]
#[allow(dead_code)] // the fields are for the Debug output in failure reports
enum CallError {
    Transport(String),
    Status(u16, String),
    NotSuccess(String),
}

async fn call_hello(client: &reqwest::Client, url: &str, token: &str) -> Result<(), CallError> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT)
        .header("mcp-protocol-version", PROTOCOL)
        .header("authorization", format!("Bearer {token}"))
        .body(HELLO_BODY)
        .send()
        .await
        .map_err(|e| CallError::Transport(e.to_string()))?;
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| CallError::Transport(e.to_string()))?;
    if status != 200 {
        return Err(CallError::Status(status, text));
    }
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|_| CallError::NotSuccess(text.clone()))?;
    if value["result"]["isError"] == false
        && value["result"]["structuredContent"]["email"].is_string()
    {
        Ok(())
    } else {
        Err(CallError::NotSuccess(text))
    }
}

/// Calls HelloTool once per entry of `tokens` (in order, `concurrency` at a time).
/// Returns the failures (and the first one).
async fn call_each(url: &str, tokens: &[&str], concurrency: usize) -> (usize, Option<String>) {
    let client = reqwest::Client::new();
    let results: Vec<Result<(), CallError>> = futures_util::stream::iter(tokens.iter())
        .map(|t| {
            let client = &client;
            async move { call_hello(client, url, t).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let failures: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| format!("{e:?}")))
        .collect();
    (failures.len(), failures.into_iter().next())
}

// ---------------------------------------------------------------------------------------
// Cold start

struct ColdStart {
    total: Duration,
    accept: Duration,
    retries: u32,
}

fn cold_start(
    rt: &tokio::runtime::Runtime,
    binary: &Path,
    env: &[(String, String)],
    token: &str,
) -> ColdStart {
    let port = support::free_port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let client = reqwest::Client::new();
    let started = Instant::now();
    let server = Server::spawn(binary, port, env);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "cold start: port never accepted"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    let accept = started.elapsed();
    let mut retries = 0;
    loop {
        match rt.block_on(call_hello(&client, &url, token)) {
            Ok(()) => break,
            // Keys not fetched yet (503) or the listener not yet serving: try again.
            Err(CallError::Status(503, _) | CallError::Transport(_))
                if started.elapsed() < Duration::from_secs(20) =>
            {
                retries += 1;
                std::thread::sleep(Duration::from_micros(500));
            }
            Err(e) => panic!("cold start: first call failed: {e:?}"),
        }
    }
    let total = started.elapsed();
    drop(server);
    ColdStart {
        total,
        accept,
        retries,
    }
}

// ---------------------------------------------------------------------------------------
// wrk

#[derive(Clone, Default)]
struct Load {
    requests: u64,
    seconds: f64,
    p50_us: u64,
    p90_us: u64,
    p99_us: u64,
    max_us: u64,
    socket_errors: u64,
    non_2xx: u64,
    bad: u64,
    unchecked: u64,
    server_cores: f64,
    harness_cores: f64,
    sample: Option<String>,
    /// req/s of every round when this is the median of several.
    rounds_rps: Vec<f64>,
}

impl Load {
    /// The median round by req/s, carrying every round's errors and req/s.
    fn median_of(mut rounds: Vec<Load>) -> Load {
        rounds.sort_by(|a, b| a.rps().total_cmp(&b.rps()));
        let rps: Vec<f64> = rounds.iter().map(Load::rps).collect();
        let (socket, non_2xx, bad) = rounds.iter().fold((0, 0, 0), |(s, n, b), l| {
            (s + l.socket_errors, n + l.non_2xx, b + l.bad)
        });
        let sample = rounds.iter().find_map(|l| l.sample.clone());
        let mut median = rounds.swap_remove(rps.len() / 2);
        median.socket_errors = socket;
        median.non_2xx = non_2xx;
        median.bad = bad;
        median.sample = sample;
        median.rounds_rps = rps;
        median
    }

    /// `median (min–max)` over the rounds, or the single run's req/s.
    fn rps_cell(&self) -> String {
        match (self.rounds_rps.first(), self.rounds_rps.last()) {
            (Some(min), Some(max)) if self.rounds_rps.len() > 1 => {
                format!("{:.0} ({min:.0}–{max:.0})", self.rps())
            }
            _ => format!("{:.0}", self.rps()),
        }
    }

    fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    /// Socket errors plus responses that were not a successful result (non-2xx included).
    fn errors(&self) -> u64 {
        self.socket_errors + self.bad.max(self.non_2xx)
    }
}

struct Wrk<'a> {
    opts: &'a Options,
    ticks: f64,
}

impl Wrk<'_> {
    fn command(&self, conns: u32, duration: u64, url: &str, args: &[&str]) -> Vec<String> {
        let mut cmd: Vec<String> = vec![
            "wrk".into(),
            format!("-t{}", self.opts.threads.min(conns)),
            format!("-c{conns}"),
            format!("-d{duration}s"),
            "--timeout".into(),
            "5s".into(),
            "--latency".into(),
            "-s".into(),
            self.opts.script().display().to_string(),
            url.into(),
            "--".into(),
        ];
        cmd.extend(args.iter().map(|a| (*a).to_owned()));
        cmd
    }

    fn run(
        &self,
        conns: u32,
        duration: u64,
        url: &str,
        args: &[&str],
        server_pid: Option<u32>,
    ) -> Load {
        let cmd = self.command(conns, duration, url, args);
        let server_before = server_pid.map(|p| proc_cpu_ticks(&p.to_string()));
        let self_before = proc_cpu_ticks("self");
        let started = Instant::now();
        let output = Command::new(&cmd[0])
            .args(&cmd[1..])
            .output()
            .expect("run wrk (apt-get install -y wrk)");
        let wall = started.elapsed().as_secs_f64();
        let server_cores = match (server_pid, server_before) {
            (Some(p), Some(b)) => (proc_cpu_ticks(&p.to_string()) - b) as f64 / self.ticks / wall,
            _ => 0.0,
        };
        let harness_cores = (proc_cpu_ticks("self") - self_before) as f64 / self.ticks / wall;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "wrk failed: {}\n{stdout}\n{}",
            cmd.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        let fields: BTreeMap<&str, u64> = stdout
            .lines()
            .find_map(|l| l.strip_prefix("WRK_RESULT "))
            .unwrap_or_else(|| panic!("no WRK_RESULT from wrk:\n{stdout}"))
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k, v.parse().unwrap_or(0)))
            .collect();
        let f = |k: &str| fields.get(k).copied().unwrap_or(0);
        Load {
            requests: f("requests"),
            seconds: f("duration_us") as f64 / 1e6,
            p50_us: f("p50_us"),
            p90_us: f("p90_us"),
            p99_us: f("p99_us"),
            max_us: f("max_us"),
            socket_errors: f("connect") + f("read") + f("write") + f("timeout"),
            non_2xx: f("status"),
            bad: f("bad"),
            unchecked: f("requests").saturating_sub(f("checked")),
            server_cores,
            harness_cores,
            sample: stdout
                .lines()
                .find_map(|l| l.strip_prefix("WRK_BAD_SAMPLE "))
                .map(str::to_owned),
            rounds_rps: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Report

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
    Healthz,
    ListOff,
    ListOn,
    Hello,
}

impl Scenario {
    const ALL: [Scenario; 4] = [Self::Healthz, Self::ListOff, Self::ListOn, Self::Hello];

    fn label(self) -> &'static str {
        match self {
            Self::Healthz => "`GET /healthz` (auth server)",
            Self::ListOff => "`tools/list`, auth off",
            Self::ListOn => "`tools/list`, auth on",
            Self::Hello => "`tools/call HelloTool`, auth on, cache warm",
        }
    }
}

fn us(v: u64) -> String {
    if v >= 10_000 {
        format!("{:.1} ms", v as f64 / 1000.0)
    } else {
        format!("{:.2} ms", v as f64 / 1000.0)
    }
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

fn error_cell(l: &Load) -> String {
    if l.errors() == 0 {
        "0".into()
    } else {
        format!(
            "**{}** (socket {}, non-2xx {}, not a result {})",
            l.errors(),
            l.socket_errors,
            l.non_2xx,
            l.bad
        )
    }
}

/// One row of the throughput table.
fn load_row(label: &str, conns: u32, l: &Load) -> String {
    format!(
        "| {label} | {conns} | {} | {} | {} | {} | {} | {} | {:.2} cores | {:.0} µs | {:.2} cores |",
        l.rps_cell(),
        us(l.p50_us),
        us(l.p90_us),
        us(l.p99_us),
        us(l.max_us),
        error_cell(l),
        l.server_cores,
        l.server_cores * 1e6 / l.rps(),
        l.harness_cores
    )
}

fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "**FAIL**" }
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, v)| v.trim())
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = proc_kb("/proc/meminfo", "MemTotal");
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    format!(
        "{model}, {cores} cores (nproc), {:.1} GiB memory, Linux {kernel}",
        mem as f64 / 1024.0 / 1024.0
    )
}

struct Results {
    cold: Vec<ColdStart>,
    rss_idle_kb: u64,
    rss_10k_kb: u64,
    hwm_10k_kb: u64,
    memory_exchanges: usize,
    memory_failures: usize,
    warm_exchanges: usize,
    warm_failures: usize,
    graph_ceiling: Load,
    graph_ceiling_conns: u32,
    load: BTreeMap<(u32, Scenario), Load>,
    /// Comparison runs at 64 connections: (label, result).
    extras: Vec<(String, Load)>,
    load_exchanges: usize,
    exchange_calls_failures: usize,
    exchanges_for_100: usize,
    rss_after_load_kb: u64,
    hwm_after_load_kb: u64,
    server_log_problems: u64,
    server_log_sample: Option<String>,
    first_failure: Option<String>,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn report(opts: &Options, r: &Results, wrk: &Wrk<'_>, binary_note: &str) -> String {
    let mut md = String::new();
    let commit = sh(
        "git",
        &["-C", &opts.root.display().to_string(), "rev-parse", "HEAD"],
    );
    let dirty = !sh(
        "git",
        &[
            "-C",
            &opts.root.display().to_string(),
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            ":!BENCHMARKS.md",
        ],
    )
    .is_empty();
    let _ = writeln!(md, "## Load, start-up and memory (generated)\n");
    let _ = writeln!(
        md,
        "Generated by `scripts/bench.sh` (`cargo build --release --bin mcp-obo && cargo bench --bench load`).\n"
    );
    let _ = writeln!(md, "- date: {}", sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]));
    let _ = writeln!(md, "- machine: {}", machine());
    let _ = writeln!(md, "- {}", sh("rustc", &["-V"]));
    let _ = writeln!(
        md,
        "- commit: `{commit}`{}",
        if dirty {
            " (with uncommitted changes)"
        } else {
            ""
        }
    );
    let _ = writeln!(md, "- binary: {binary_note}");
    let _ = writeln!(
        md,
        "- load tool: {} (`wrk -t{} -c<N> -d{}s --timeout 5s --latency -s benches/load.lua <url> -- <mode> [token file]`), keep-alive, 127.0.0.1; client, server and the fakes share the cores; {} interleaved rounds of every run, each cell the median round (req/s shows median (min–max) over the rounds; errors are summed over all rounds)",
        sh("sh", &["-c", "wrk -v 2>&1 | head -1 | cut -d' ' -f1-2"]),
        opts.threads,
        opts.duration,
        opts.rounds
    );
    let _ = writeln!(
        md,
        "- auth server: `auth.mode=oidc`, `obo.grant=token_exchange` (RFC 8693, client secret) against the in-process test issuer; Graph is the in-process fake (its own thread, a bare HTTP/1.1 keep-alive loop) verifying each downstream token's RS256 signature once and then, as Graph does, accepting it from its cache while unexpired; default workers (one per core), default logging (`info`, `log.requests=failures`: a line per failed request; stderr drained through a pipe and scanned); user tokens RS256, {} users rotated per request",
        opts.users
    );
    let _ = writeln!(
        md,
        "- auth-off server: `auth.mode=none` on loopback (tools/list only)\n"
    );

    let _ = writeln!(md, "### Throughput and latency\n");
    let _ = writeln!(
        md,
        "| run | conns | req/s | p50 | p90 | p99 | max | errors | server CPU | server CPU per request | harness CPU (fakes) |"
    );
    let _ = writeln!(
        md,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for s in Scenario::ALL {
        for &c in &opts.connections {
            if let Some(l) = r.load.get(&(c, s)) {
                let _ = writeln!(md, "{}", load_row(s.label(), c, l));
            }
        }
    }
    let g = &r.graph_ceiling;
    let _ = writeln!(
        md,
        "| fake Graph `/v1.0/me` alone (tokens verified once, then cached) | {} | {:.0} | {} | {} | {} | {} | {} | – | – | {:.2} cores |",
        r.graph_ceiling_conns,
        g.rps(),
        us(g.p50_us),
        us(g.p90_us),
        us(g.p99_us),
        us(g.max_us),
        error_cell(g),
        g.harness_cores
    );
    for (label, l) in &r.extras {
        let _ = writeln!(md, "{}", load_row(&format!("comparison: {label}"), 64, l));
    }
    let _ = writeln!(
        md,
        "\nCPU columns: CPU time (utime + stime from /proc) used during the run divided by its wall time (2 cores = the whole machine); `wrk` has the rest. Server CPU per request = server CPU time / requests: the cost independent of how the cores are shared.\n"
    );

    let _ = writeln!(md, "### Ratios (same run)\n");
    let _ = writeln!(
        md,
        "| conns | list auth on / off | HelloTool / list auth off | list auth off / healthz |"
    );
    let _ = writeln!(md, "|---:|---:|---:|---:|");
    let ratio = |c: u32, a: Scenario, b: Scenario| -> Option<f64> {
        Some(r.load.get(&(c, a))?.rps() / r.load.get(&(c, b))?.rps())
    };
    let pct = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.0}%", v * 100.0));
    for &c in &opts.connections {
        let _ = writeln!(
            md,
            "| {c} | {} | {} | {} |",
            pct(ratio(c, Scenario::ListOn, Scenario::ListOff)),
            pct(ratio(c, Scenario::Hello, Scenario::ListOff)),
            pct(ratio(c, Scenario::ListOff, Scenario::Healthz)),
        );
    }

    let cold: Vec<Duration> = r.cold.iter().map(|c| c.total).collect();
    let cold_median = median(cold.clone());
    let accept_median = median(r.cold.iter().map(|c| c.accept).collect());
    let _ = writeln!(md, "\n### Start-up, memory, token exchanges\n");
    let _ = writeln!(md, "| measurement | value |");
    let _ = writeln!(md, "|---|---|");
    let _ = writeln!(
        md,
        "| cold start: exec → first successful authenticated `tools/call HelloTool` (includes JWKS fetch, token exchange, Graph), median of {COLD_RUNS} | {} (runs: {}) |",
        ms(cold_median),
        cold.iter().map(|d| ms(*d)).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(
        md,
        "| cold start: exec → port accepts, median | {} (503 retries before keys loaded: {}) |",
        ms(accept_median),
        r.cold
            .iter()
            .map(|c| c.retries.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        md,
        "| RSS idle (fresh auth server, ready, VmRSS) | {} |",
        mb(r.rss_idle_kb)
    );
    let _ = writeln!(
        md,
        "| RSS after {MEMORY_USERS} distinct users each called HelloTool once (VmRSS / VmHWM) | {} / {} ({} exchanges, {} failed calls) |",
        mb(r.rss_10k_kb),
        mb(r.hwm_10k_kb),
        r.memory_exchanges,
        r.memory_failures
    );
    let _ = writeln!(
        md,
        "| RSS of the load server after all runs (VmRSS / VmHWM) | {} / {} |",
        mb(r.rss_after_load_kb),
        mb(r.hwm_after_load_kb)
    );
    let _ = writeln!(
        md,
        "| OBO cache warm-up: {} users, one call each | {} exchanges, {} failed calls |",
        opts.users, r.warm_exchanges, r.warm_failures
    );
    let _ = writeln!(
        md,
        "| token exchanges during all wrk runs (cache warm) | {} |",
        r.load_exchanges
    );
    let _ = writeln!(
        md,
        "| token exchanges for {EXCHANGE_CALLS} HelloTool calls from {EXCHANGE_USERS} new users ({CLIENT_CONCURRENCY} concurrent) | {} ({} failed calls) |",
        r.exchanges_for_100, r.exchange_calls_failures
    );
    let _ = writeln!(
        md,
        "| server log lines at WARN/ERROR during the measurements | {}{} |",
        r.server_log_problems,
        r.server_log_sample
            .as_deref()
            .map_or(String::new(), |s| format!(
                " (first: `{}`)",
                s.replace('`', "'")
            ))
    );

    // Targets.
    let _ = writeln!(md, "\n### Targets (issue 8)\n");
    let _ = writeln!(md, "| target | measured | result |");
    let _ = writeln!(md, "|---|---|---|");
    let ratio_target = |a: Scenario, b: Scenario, min: f64| -> (String, bool) {
        let mut ok = true;
        let mut parts = Vec::new();
        for &c in &opts.connections {
            if let Some(v) = ratio(c, a, b) {
                ok &= v >= min;
                parts.push(format!("{:.0}% @{c}", v * 100.0));
            } else {
                ok = false;
            }
        }
        (parts.join(", "), ok)
    };
    let (m, ok) = ratio_target(Scenario::ListOn, Scenario::ListOff, 0.75);
    let _ = writeln!(
        md,
        "| authenticated `tools/list` ≥ 75% of unauthenticated (every conns level) | {m} | {} |",
        pass(ok)
    );
    let (m, ok) = ratio_target(Scenario::Hello, Scenario::ListOff, 0.50);
    let _ = writeln!(
        md,
        "| HelloTool (cache warm) ≥ 50% of unauthenticated `tools/list` (every conns level) | {m} | {} |",
        pass(ok)
    );
    match r.load.get(&(64, Scenario::Hello)) {
        Some(l) => {
            let _ = writeln!(
                md,
                "| HelloTool p99 < 5 ms at 64 connections | {} | {} |",
                us(l.p99_us),
                pass(l.p99_us < 5000)
            );
        }
        None => {
            let _ = writeln!(
                md,
                "| HelloTool p99 < 5 ms at 64 connections | not run | – |"
            );
        }
    }
    let _ = writeln!(
        md,
        "| cold start < 50 ms | {} | {} |",
        ms(cold_median),
        pass(cold_median < Duration::from_millis(50))
    );
    let _ = writeln!(
        md,
        "| RSS < 20 MB idle | {} | {} |",
        mb(r.rss_idle_kb),
        pass(r.rss_idle_kb < 20 * 1024)
    );
    let _ = writeln!(
        md,
        "| RSS < 80 MB after {MEMORY_USERS} users | {} | {} |",
        mb(r.rss_10k_kb),
        pass(r.rss_10k_kb < 80 * 1024)
    );
    let run_errors: u64 = r.load.values().map(Load::errors).sum::<u64>()
        + r.extras.iter().map(|(_, l)| l.errors()).sum::<u64>()
        + r.graph_ceiling.errors();
    let call_errors = r.memory_failures + r.warm_failures + r.exchange_calls_failures;
    let _ = writeln!(
        md,
        "| zero errors in every run | {run_errors} in wrk runs, {call_errors} in counted calls, {} WARN/ERROR log lines | {} |",
        r.server_log_problems,
        pass(run_errors == 0 && call_errors == 0 && r.server_log_problems == 0)
    );
    let _ = writeln!(
        md,
        "| exchanges == {EXCHANGE_USERS} for {EXCHANGE_CALLS} calls from {EXCHANGE_USERS} users | {} | {} |",
        r.exchanges_for_100,
        pass(r.exchanges_for_100 == EXCHANGE_USERS && r.exchange_calls_failures == 0)
    );
    if let Some(f) = &r.first_failure {
        let _ = writeln!(md, "\nFirst failure seen: `{}`", f.replace('`', "'"));
    }
    let _ = writeln!(md, "\n#### wrk commands as run\n\n```sh");
    for line in wrk_commands(opts, wrk) {
        let _ = writeln!(md, "{line}");
    }
    let _ = writeln!(md, "```");
    md
}

fn wrk_commands(opts: &Options, wrk: &Wrk<'_>) -> Vec<String> {
    let mut lines = Vec::new();
    let c = opts.connections.first().copied().unwrap_or(64);
    for (what, url, args) in [
        ("healthz", "http://127.0.0.1:$AUTH_PORT/healthz", "healthz"),
        (
            "tools/list auth off",
            "http://127.0.0.1:$NONE_PORT/mcp",
            "list",
        ),
        (
            "tools/list auth on",
            "http://127.0.0.1:$AUTH_PORT/mcp",
            "list users.txt",
        ),
        (
            "HelloTool",
            "http://127.0.0.1:$AUTH_PORT/mcp",
            "hello users.txt",
        ),
        (
            "fake Graph",
            "http://127.0.0.1:$GRAPH_PORT/v1.0/me",
            "graph graph-tokens.txt",
        ),
    ] {
        let args: Vec<&str> = args.split(' ').collect();
        let graph = what == "fake Graph";
        let mut cmd = if graph {
            wrk.command(64, opts.duration.min(5), url, &args)
        } else {
            wrk.command(c, opts.duration, url, &args)
        };
        cmd[8] = "benches/load.lua".into();
        if graph {
            lines.push(format!("# {what} (64 connections only)"));
        } else {
            lines.push(format!(
                "# {what} (and -c for each of {:?})",
                opts.connections
            ));
        }
        lines.push(cmd.join(" "));
    }
    lines
}

fn write_report(path: &Path, generated: &str) {
    const BEGIN: &str = "<!-- load:begin -->";
    const END: &str = "<!-- load:end -->";
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{BEGIN}\n{generated}{END}");
    let text = match (existing.find(BEGIN), existing.find(END)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{block}{}", &existing[..b], &existing[e + END.len()..])
        }
        _ if existing.is_empty() => format!("# Benchmarks\n\n{block}\n"),
        _ => format!("{}\n{block}\n", existing.trim_end()),
    };
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

// ---------------------------------------------------------------------------------------

fn step(started: Instant, what: &str) {
    eprintln!("[{:6.1}s] {what}", started.elapsed().as_secs_f64());
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").expect("write token file");
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing useful:
    // only run when asked to benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("benches/load.rs: run with `cargo bench --bench load` (scripts/bench.sh)");
        return;
    }
    let opts = Options::from_env();
    let t0 = Instant::now();
    assert!(
        opts.binary.exists(),
        "{} not found: cargo build --release --bin mcp-obo, or set MCP_OBO_BIN",
        opts.binary.display()
    );
    assert!(
        Command::new("wrk").arg("-v").output().is_ok(),
        "wrk not found: apt-get install -y wrk (scripts/bench.sh does)"
    );
    let binary_note = format!(
        "`{}` ({:.1} MB)",
        opts.binary.display(),
        std::fs::metadata(&opts.binary).map_or(0.0, |m| m.len() as f64 / 1e6)
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let fakes = rt.block_on(Fakes::start());
    let auth_env = fakes.auth_env();
    let dir = tempfile::tempdir().expect("temp dir");
    let wrk = Wrk {
        opts: &opts,
        ticks: clock_ticks_per_sec(),
    };

    step(t0, "minting user tokens");
    let load_users = fakes.mint("load", opts.users);
    let exchange_users = fakes.mint("xchg", EXCHANGE_USERS);
    let memory_users = fakes.mint("mem", MEMORY_USERS);
    let cold_user = fakes.mint("cold", 1).remove(0);
    let users_file = dir.path().join("users.txt");
    write_lines(&users_file, &load_users);
    let mut first_failure: Option<String> = None;
    let mut note_failure = |f: Option<String>| {
        if first_failure.is_none() {
            first_failure = f;
        }
    };

    // 1. Cold start.
    step(t0, "cold start");
    let cold: Vec<ColdStart> = (0..COLD_RUNS)
        .map(|_| cold_start(&rt, &opts.binary, &auth_env, &cold_user))
        .collect();

    // 2. Memory: a fresh server, idle, then 10,000 distinct users once each.
    step(t0, "memory: idle, then 10,000 users");
    let (rss_idle_kb, rss_10k_kb, hwm_10k_kb, memory_exchanges, memory_failures, memory_log) = {
        let mut server = Server::spawn(&opts.binary, support::free_port(), &auth_env);
        rt.block_on(server.wait_ready());
        std::thread::sleep(Duration::from_millis(300));
        let idle = server.status_kb("VmRSS:");
        let before = fakes.issuer.exchanges();
        let tokens: Vec<&str> = memory_users.iter().map(String::as_str).collect();
        let (failures, first) =
            rt.block_on(call_each(&server.url("/mcp"), &tokens, CLIENT_CONCURRENCY));
        note_failure(first);
        std::thread::sleep(Duration::from_millis(300));
        (
            idle,
            server.status_kb("VmRSS:"),
            server.status_kb("VmHWM:"),
            fakes.issuer.exchanges() - before,
            failures,
            server.log.clone(),
        )
    };

    // 3. The load servers: auth on (warmed), auth off.
    step(t0, "load servers: start, warm the OBO cache");
    let mut auth = Server::spawn(&opts.binary, support::free_port(), &auth_env);
    let mut none = Server::spawn(&opts.binary, support::free_port(), &[]);
    rt.block_on(auth.wait_ready());
    rt.block_on(none.wait_ready());
    let before = fakes.issuer.exchanges();
    let issued_before = fakes.issuer.issued_tokens().len();
    let tokens: Vec<&str> = load_users.iter().map(String::as_str).collect();
    let (warm_failures, first) =
        rt.block_on(call_each(&auth.url("/mcp"), &tokens, CLIENT_CONCURRENCY));
    note_failure(first);
    let warm_exchanges = fakes.issuer.exchanges() - before;

    // 4. The fake Graph's own ceiling, with the downstream tokens just issued.
    step(t0, "fake Graph ceiling");
    let graph_file = dir.path().join("graph-tokens.txt");
    write_lines(&graph_file, &fakes.issuer.issued_tokens()[issued_before..]);
    let graph_ceiling_conns = 64;
    let graph_ceiling = wrk.run(
        graph_ceiling_conns,
        opts.duration.min(5),
        &format!("{}/v1.0/me", fakes.graph.url),
        &["graph", &graph_file.display().to_string()],
        None,
    );

    // 5. The wrk runs.
    let users_arg = users_file.display().to_string();
    // A/B comparisons: `MCP_OBO_BENCH_HELLO_ONLY=N` runs unauthenticated tools/list and
    // HelloTool at each connection count N times, alternating, and stops (no report):
    // run-to-run spread on this VM is 10-20%, so the ratio of neighbouring runs says more.
    if let Some(n) = std::env::var("MCP_OBO_BENCH_HELLO_ONLY")
        .ok()
        .and_then(|n| n.parse::<u32>().ok())
    {
        for _ in 0..n {
            for &c in &opts.connections {
                let list = wrk.run(
                    c,
                    opts.duration,
                    &none.url("/mcp"),
                    &["list"],
                    Some(none.pid()),
                );
                let hello = wrk.run(
                    c,
                    opts.duration,
                    &auth.url("/mcp"),
                    &["hello", &users_arg],
                    Some(auth.pid()),
                );
                for (what, r) in [("list (auth off)", &list), ("hello", &hello)] {
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
                eprintln!(
                    "hello / list @{c}: {:.0}%",
                    100.0 * hello.rps() / list.rps()
                );
            }
        }
        return;
    }
    let mut rounds: BTreeMap<(u32, Scenario), Vec<Load>> = BTreeMap::new();
    let before = fakes.issuer.exchanges();
    // Rounds interleave every (connections, scenario) run, so a slow spell of this shared VM
    // hits all of them alike; each cell reports the median round.
    for round in 1..=opts.rounds {
        for &c in &opts.connections {
            for s in Scenario::ALL {
                step(
                    t0,
                    &format!(
                        "round {round}/{}: wrk {} at {c} connections",
                        opts.rounds,
                        s.label()
                    ),
                );
                let (server, args): (&Server, Vec<&str>) = match s {
                    Scenario::Healthz => (&auth, vec!["healthz"]),
                    Scenario::ListOff => (&none, vec!["list"]),
                    Scenario::ListOn => (&auth, vec!["list", &users_arg]),
                    Scenario::Hello => (&auth, vec!["hello", &users_arg]),
                };
                let path = if s == Scenario::Healthz {
                    "/healthz"
                } else {
                    "/mcp"
                };
                let result = wrk.run(
                    c,
                    opts.duration,
                    &server.url(path),
                    &args,
                    Some(server.pid()),
                );
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
                    note_failure(result.sample.clone());
                }
                rounds.entry((c, s)).or_default().push(result);
                std::thread::sleep(Duration::from_millis(300));
            }
        }
    }
    let load: BTreeMap<(u32, Scenario), Load> = rounds
        .into_iter()
        .map(|(k, v)| (k, Load::median_of(v)))
        .collect();
    let load_exchanges = fakes.issuer.exchanges() - before;

    // 5b. Comparisons at 64 connections (not targets): what the stateless fast path and
    // the default request logging are worth, each against the default server above.
    step(t0, "comparisons: fast path off, access log on");
    let with = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut env = auth_env.clone();
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
    let mut extra_logs = Vec::new();
    for (label, env, mode) in variants {
        let mut server = Server::spawn(&opts.binary, support::free_port(), &env);
        rt.block_on(server.wait_ready());
        let mut args = vec![mode];
        if mode == "hello" {
            let (failures, first) =
                rt.block_on(call_each(&server.url("/mcp"), &tokens, CLIENT_CONCURRENCY));
            note_failure(first);
            assert_eq!(failures, 0, "{label}: warm-up calls failed");
            args.push(&users_arg);
        }
        let result = wrk.run(
            64,
            opts.duration,
            &server.url("/mcp"),
            &args,
            Some(server.pid()),
        );
        eprintln!(
            "         {label}: {:.0} req/s, p99 {}, errors {}",
            result.rps(),
            us(result.p99_us),
            result.errors()
        );
        if result.errors() > 0 {
            note_failure(result.sample.clone());
        }
        extras.push((label.to_owned(), result));
        extra_logs.push(server.log.clone());
        std::thread::sleep(Duration::from_millis(500));
    }

    // 6. 10,000 calls from 100 new users: exactly 100 exchanges.
    step(t0, "token exchanges: 10,000 calls from 100 users");
    let before = fakes.issuer.exchanges();
    let calls: Vec<&str> = (0..EXCHANGE_CALLS)
        .map(|i| exchange_users[i % EXCHANGE_USERS].as_str())
        .collect();
    let (exchange_calls_failures, first) =
        rt.block_on(call_each(&auth.url("/mcp"), &calls, CLIENT_CONCURRENCY));
    note_failure(first);
    let exchanges_for_100 = fakes.issuer.exchanges() - before;
    let rss_after_load_kb = auth.status_kb("VmRSS:");
    let hwm_after_load_kb = auth.status_kb("VmHWM:");

    // 7. Optional profile (not part of the table).
    if let Some(perf_out) = &opts.perf {
        step(t0, "perf record of HelloTool at 64 connections");
        let mut perf = Command::new("perf")
            .args(["record", "-F", "499", "--call-graph", "dwarf,16384", "-o"])
            .arg(perf_out)
            .args(["-p", &auth.pid().to_string(), "--", "sleep"])
            .arg((opts.duration + 1).to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("perf");
        std::thread::sleep(Duration::from_millis(500));
        let profiled = wrk.run(
            64,
            opts.duration,
            &auth.url("/mcp"),
            &["hello", &users_arg],
            Some(auth.pid()),
        );
        let _ = perf.wait();
        eprintln!(
            "         profiled run: {:.0} req/s, p99 {}",
            profiled.rps(),
            us(profiled.p99_us)
        );
    }

    let mut taps = vec![&memory_log, &auth.log, &none.log];
    taps.extend(extra_logs.iter());
    let server_log_problems: u64 = taps
        .iter()
        .map(|t| t.problems.load(Ordering::Relaxed))
        .sum();
    let server_log_sample = taps
        .iter()
        .find_map(|t| t.first_problem.lock().expect("log tap").clone());
    drop(auth);
    drop(none);

    let results = Results {
        cold,
        rss_idle_kb,
        rss_10k_kb,
        hwm_10k_kb,
        memory_exchanges,
        memory_failures,
        warm_exchanges,
        warm_failures,
        graph_ceiling,
        graph_ceiling_conns,
        load,
        extras,
        load_exchanges,
        exchange_calls_failures,
        exchanges_for_100,
        rss_after_load_kb,
        hwm_after_load_kb,
        server_log_problems,
        server_log_sample,
        first_failure,
    };
    let md = report(&opts, &results, &wrk, &binary_note);
    println!("\n{md}");
    if let Some(out) = &opts.out {
        write_report(out, &md);
        eprintln!("written to {}", out.display());
    }
    step(t0, "done");
}
