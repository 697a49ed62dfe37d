//! Driving `wrk` with `load.lua` and reading its `WRK_RESULT` line, with the CPU time the
//! server (its processes, summed) and this process (the fakes) used during the run.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::options::Options;
use crate::procfs::proc_cpu_ticks;

#[derive(Clone, Default)]
pub struct Load {
    pub requests: u64,
    pub seconds: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub socket_errors: u64,
    pub non_2xx: u64,
    pub bad: u64,
    pub unchecked: u64,
    pub server_cores: f64,
    pub harness_cores: f64,
    pub sample: Option<String>,
    /// req/s of every round when this is the median of several.
    pub rounds_rps: Vec<f64>,
}

impl Load {
    /// The median round by req/s, carrying every round's errors and req/s. `None` for no
    /// rounds.
    pub fn median_of(mut rounds: Vec<Load>) -> Option<Load> {
        if rounds.is_empty() {
            return None;
        }
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
        Some(median)
    }

    /// `median (min–max)` over the rounds, or the single run's req/s.
    pub fn rps_cell(&self) -> String {
        match (self.rounds_rps.first(), self.rounds_rps.last()) {
            (Some(min), Some(max)) if self.rounds_rps.len() > 1 => {
                format!("{:.0} ({min:.0}–{max:.0})", self.rps())
            }
            _ => format!("{:.0}", self.rps()),
        }
    }

    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    /// Socket errors plus responses that were not a successful result (non-2xx included).
    pub fn errors(&self) -> u64 {
        self.socket_errors + self.bad.max(self.non_2xx)
    }
}

pub struct Wrk<'a> {
    pub opts: &'a Options,
    pub ticks: f64,
}

impl Wrk<'_> {
    pub fn command(&self, conns: u32, duration: u64, url: &str, args: &[&str]) -> Vec<String> {
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

    pub fn run(
        &self,
        conns: u32,
        duration: u64,
        url: &str,
        args: &[&str],
        server_pids: &[u32],
    ) -> Result<Load> {
        let cmd = self.command(conns, duration, url, args);
        let server_ticks = || -> u64 {
            server_pids
                .iter()
                .map(|p| proc_cpu_ticks(&p.to_string()))
                .sum()
        };
        let server_before = server_ticks();
        let self_before = proc_cpu_ticks("self");
        let started = Instant::now();
        let output = Command::new(&cmd[0])
            .args(&cmd[1..])
            .output()
            .context("run wrk (apt-get install -y wrk)")?;
        let wall = started.elapsed().as_secs_f64();
        let server_cores = server_ticks().saturating_sub(server_before) as f64 / self.ticks / wall;
        let harness_cores =
            proc_cpu_ticks("self").saturating_sub(self_before) as f64 / self.ticks / wall;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "wrk failed: {}\n{stdout}\n{}",
                cmd.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let Some(mut load) = parse_result(&stdout) else {
            bail!("no WRK_RESULT from wrk:\n{stdout}");
        };
        load.server_cores = server_cores;
        load.harness_cores = harness_cores;
        Ok(load)
    }
}

/// The `WRK_RESULT key=value …` and `WRK_BAD_SAMPLE …` lines `load.lua` prints in `done()`.
fn parse_result(stdout: &str) -> Option<Load> {
    let fields: BTreeMap<&str, u64> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("WRK_RESULT "))?
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k, v.parse().unwrap_or(0)))
        .collect();
    let f = |k: &str| fields.get(k).copied().unwrap_or(0);
    Some(Load {
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
        server_cores: 0.0,
        harness_cores: 0.0,
        sample: stdout
            .lines()
            .find_map(|l| l.strip_prefix("WRK_BAD_SAMPLE "))
            .map(str::to_owned),
        rounds_rps: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_lua_result_line_and_takes_the_median_round() {
        let out = "Running 1s test\nWRK_RESULT requests=1000 duration_us=2000000 p50_us=900 \
                   p99_us=4000 connect=1 timeout=2 status=3 bad=5 checked=990\n\
                   WRK_BAD_SAMPLE 500 oops\n";
        let l = parse_result(out).unwrap();
        assert_eq!((l.rps(), l.p50_us, l.p99_us), (500.0, 900, 4000));
        assert_eq!((l.socket_errors, l.errors(), l.unchecked), (3, 8, 10));
        assert_eq!(l.sample.as_deref(), Some("500 oops"));
        assert!(parse_result("no result").is_none());

        let round = |requests| Load {
            requests,
            seconds: 1.0,
            bad: 1,
            ..Load::default()
        };
        let m = Load::median_of(vec![round(30), round(10), round(20)]).unwrap();
        assert_eq!((m.requests, m.bad), (20, 3));
        assert_eq!(m.rps_cell(), "20 (10–30)");
        assert!(Load::median_of(Vec::new()).is_none());
    }
}
