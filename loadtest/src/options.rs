//! What to measure and where to write it: `--binary` / `MCP_OBO_BIN` and the
//! `MCP_OBO_BENCH_*` knobs (environment, as `scripts/bench.sh` passes them).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Parser;

/// The environment knobs, shown by `--help`.
const KNOBS: &str = "\
Knobs (environment):
  MCP_OBO_BENCH_DURATION     seconds per wrk run (5)
  MCP_OBO_BENCH_ROUNDS       interleaved rounds of the wrk runs; each cell is the median round (3)
  MCP_OBO_BENCH_CONNECTIONS  connection counts, comma-separated (16,64,256)
  MCP_OBO_BENCH_THREADS      wrk threads (2)
  MCP_OBO_BENCH_USERS        load users rotated per request (1000)
  MCP_OBO_BENCH_OUT          report file (BENCHMARKS.md at the repository root; `-` for none)
  MCP_OBO_BENCH_PERF         a perf.data path: one extra HelloTool run at 64 connections under
                             `perf record`, not part of the table
  MCP_OBO_BENCH_HELLO_ONLY   N: for A/B runs, after the warm-up N pairs of unauthenticated
                             tools/list and HelloTool runs at each connection count, printed with
                             their ratio, no report
  MCP_OBO_BENCH_NGINX        1: with MCP_OBO_BENCH_HELLO_ONLY, also the reference runs after
                             each HelloTool run: the Rust floor (actix-web + hyper-util) and,
                             when installed, nginx, each proxying the same POST to one
                             GET /v1.0/me on the fake Graph, printed with HelloTool / Rust floor,
                             Rust floor / nginx and HelloTool / nginx (the full run always has
                             the reference rows, nginx's when it is installed)
  MCP_OBO_BENCH_SHARED_CACHE N: after the warm-up N pairs of HelloTool runs with the shared
                             cache (a redis-server on loopback) off and on, then first calls on
                             a fresh replica for users cached in Redis against new users; no
                             report
  MCP_OBO__*                 server settings (e.g. MCP_OBO__SERVER__WORKERS=1) reach every
                             server it starts";

/// Load, start-up and memory measurements of the mcp-obo `dist` binary (scripts/bench.sh).
#[derive(Parser)]
#[command(name = "mcp-obo-loadtest", after_help = KNOBS)]
struct Cli {
    /// The mcp-obo binary to measure [default: target/dist/mcp-obo in the repository]
    #[arg(long, env = "MCP_OBO_BIN", value_name = "PATH")]
    binary: Option<PathBuf>,
}

pub struct Options {
    pub binary: PathBuf,
    pub duration: u64,
    /// Interleaved rounds of the wrk runs; each cell is the median round.
    pub rounds: u32,
    pub connections: Vec<u32>,
    pub threads: u32,
    pub users: usize,
    pub out: Option<PathBuf>,
    pub perf: Option<PathBuf>,
    /// `MCP_OBO_BENCH_HELLO_ONLY`: A/B pairs instead of the full run.
    pub hello_only: Option<u32>,
    /// `MCP_OBO_BENCH_NGINX`: the A/B mode runs the reference proxies too.
    pub references: bool,
    /// `MCP_OBO_BENCH_SHARED_CACHE`: shared cache off/on pairs and fresh-replica first calls
    /// instead of the full run.
    pub shared_cache: Option<u32>,
    /// The repository (the workspace root): BENCHMARKS.md, the commit in the report.
    pub root: PathBuf,
}

impl Options {
    /// The command line and the environment; a knob that does not parse is an error naming it.
    pub fn parse() -> Result<Self> {
        let cli = Cli::parse();
        Self::from_env(cli.binary, |k| std::env::var(k).ok())
    }

    fn from_env(binary: Option<PathBuf>, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        // This crate sits one level below the workspace root.
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let binary = binary
            .filter(|b| !b.as_os_str().is_empty())
            .unwrap_or_else(|| root.join("target/dist/mcp-obo"));
        let connections = var("MCP_OBO_BENCH_CONNECTIONS")
            .unwrap_or_else(|| "16,64,256".into())
            .split(',')
            .map(|c| {
                c.trim()
                    .parse()
                    .with_context(|| format!("MCP_OBO_BENCH_CONNECTIONS: `{c}` is not a number"))
            })
            .collect::<Result<Vec<u32>>>()?;
        if connections.contains(&0) {
            bail!("MCP_OBO_BENCH_CONNECTIONS: every count must be at least 1");
        }
        let out = match var("MCP_OBO_BENCH_OUT").as_deref() {
            Some("-") => None,
            Some(p) => Some(PathBuf::from(p)),
            None => Some(root.join("BENCHMARKS.md")),
        };
        let number = |k: &str, default: u64| -> Result<u64> {
            var(k).map_or(Ok(default), |v| {
                v.trim()
                    .parse()
                    .with_context(|| format!("{k}: `{v}` is not a whole number"))
            })
        };
        let rounds = number("MCP_OBO_BENCH_ROUNDS", 3)?;
        if rounds == 0 {
            bail!("MCP_OBO_BENCH_ROUNDS: at least 1");
        }
        Ok(Self {
            binary,
            duration: number("MCP_OBO_BENCH_DURATION", 5)?,
            rounds: u32::try_from(rounds).context("MCP_OBO_BENCH_ROUNDS: too large")?,
            connections,
            threads: u32::try_from(number("MCP_OBO_BENCH_THREADS", 2)?)
                .context("MCP_OBO_BENCH_THREADS: too large")?,
            users: usize::try_from(number("MCP_OBO_BENCH_USERS", 1000)?)
                .context("MCP_OBO_BENCH_USERS: too large")?,
            out,
            perf: var("MCP_OBO_BENCH_PERF").map(PathBuf::from),
            hello_only: var("MCP_OBO_BENCH_HELLO_ONLY")
                .map(|n| {
                    n.trim()
                        .parse()
                        .with_context(|| format!("MCP_OBO_BENCH_HELLO_ONLY: `{n}` is not a number"))
                })
                .transpose()?,
            references: match var("MCP_OBO_BENCH_NGINX").as_deref().map(str::trim) {
                None | Some("0") => false,
                Some("1") => true,
                Some(v) => bail!("MCP_OBO_BENCH_NGINX: `{v}` is neither 1 nor 0"),
            },
            shared_cache: var("MCP_OBO_BENCH_SHARED_CACHE")
                .map(|n| {
                    n.trim().parse().with_context(|| {
                        format!("MCP_OBO_BENCH_SHARED_CACHE: `{n}` is not a number")
                    })
                })
                .transpose()?,
            root,
        })
    }

    /// Whether this run has the reference proxies (the Rust floor, nginx): the full run
    /// always, the A/B mode with `MCP_OBO_BENCH_NGINX`, the shared cache comparison never. As
    /// main.rs picks the mode: the A/B mode first, then the shared cache comparison.
    pub fn reference_runs(&self) -> bool {
        match (self.hello_only, self.shared_cache) {
            (Some(_), _) => self.references,
            (None, Some(_)) => false,
            (None, None) => true,
        }
    }

    /// The wrk script, beside this crate's manifest.
    pub fn script(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("load.lua")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<Options> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Options::from_env(None, move |k| {
            vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let o = with(&[]).unwrap();
        assert_eq!((o.duration, o.rounds, o.threads, o.users), (5, 3, 2, 1000));
        assert_eq!(o.connections, [16, 64, 256]);
        assert!(!o.references);
        assert!(o.reference_runs(), "the full run has the reference proxies");
        assert!(o.binary.ends_with("target/dist/mcp-obo"));
        assert!(o.out.as_ref().unwrap().ends_with("BENCHMARKS.md"));
        assert!(o.script().is_file(), "{}", o.script().display());
        assert!(o.root.join("Cargo.toml").is_file());
    }

    #[test]
    fn knobs_are_read_and_bad_ones_are_named() {
        let o = with(&[
            ("MCP_OBO_BENCH_CONNECTIONS", "8, 32"),
            ("MCP_OBO_BENCH_DURATION", "1"),
            ("MCP_OBO_BENCH_OUT", "-"),
            ("MCP_OBO_BENCH_HELLO_ONLY", "2"),
            ("MCP_OBO_BENCH_NGINX", "1"),
            ("MCP_OBO_BENCH_USERS", " "),
        ])
        .unwrap();
        assert_eq!(o.connections, [8, 32]);
        assert_eq!((o.duration, o.users, o.hello_only), (1, 1000, Some(2)));
        assert!(o.references && o.reference_runs());
        assert!(o.out.is_none());
        for (k, v) in [
            ("MCP_OBO_BENCH_CONNECTIONS", "16,x"),
            ("MCP_OBO_BENCH_DURATION", "5s"),
            ("MCP_OBO_BENCH_ROUNDS", "0"),
            ("MCP_OBO_BENCH_NGINX", "yes"),
        ] {
            let e = format!("{:#}", with(&[(k, v)]).err().unwrap());
            assert!(e.contains(k), "{e}");
        }
    }

    #[test]
    fn reference_runs_are_in_the_full_run_and_in_the_ab_mode_when_asked_for() {
        let runs = |vars: &[(&str, &str)]| with(vars).unwrap().reference_runs();
        assert!(runs(&[]));
        assert!(!runs(&[("MCP_OBO_BENCH_HELLO_ONLY", "2")]));
        assert!(runs(&[
            ("MCP_OBO_BENCH_HELLO_ONLY", "2"),
            ("MCP_OBO_BENCH_NGINX", "1")
        ]));
        assert!(!runs(&[("MCP_OBO_BENCH_SHARED_CACHE", "2")]));
    }
}
