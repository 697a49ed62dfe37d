//! The Markdown report: the tables, the targets (throughput ratios, p99, start-up, memory,
//! errors, exchanges), the wrk commands as run, and rewriting the generated block of
//! BENCHMARKS.md between its markers. Here: [`Results`], the number formats, [`report`] (the
//! sections in order) and [`write_report`]; the sections:
//!
//! - `header.rs`: the header (date, machine, commit, how the load was made) and the wrk
//!   commands as run
//! - `load.rs`: the throughput and latency table, the ratios
//! - `startup.rs`: start-up, memory, token exchanges
//! - `targets.rs`: the targets, PASS or FAIL

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::calls::ColdStart;
use crate::options::Options;
use crate::phases::Memory;
use crate::scenarios::Scenario;
use crate::wrk::{Load, Wrk};

mod header;
mod load;
mod startup;
mod targets;

pub fn us(v: u64) -> String {
    if v >= 10_000 {
        format!("{:.1} ms", v as f64 / 1000.0)
    } else {
        format!("{:.2} ms", v as f64 / 1000.0)
    }
}

pub fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

pub struct Results {
    pub cold: Vec<ColdStart>,
    pub memory: Memory,
    pub warm_exchanges: usize,
    pub warm_failures: usize,
    pub graph_ceiling: Load,
    pub graph_ceiling_conns: u32,
    pub load: BTreeMap<(u32, Scenario), Load>,
    /// Comparison runs at 64 connections: (label, result).
    pub extras: Vec<(String, Load)>,
    pub load_exchanges: usize,
    pub exchange_calls_failures: usize,
    pub exchanges_for_100: usize,
    pub rss_after_load_kb: u64,
    pub hwm_after_load_kb: u64,
    pub server_log_problems: u64,
    pub server_log_sample: Option<String>,
    /// The Rust floor's workers; `None` when it did not run.
    pub floor: Option<String>,
    /// The nginx reference proxy's version and workers; `None` when it did not run.
    pub nginx: Option<String>,
    pub first_failure: Option<String>,
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

pub fn report(opts: &Options, r: &Results, wrk: &Wrk<'_>, binary_note: &str) -> String {
    let mut md = String::new();
    header::header(&mut md, opts, r, binary_note);
    load::throughput(&mut md, opts, r);
    load::ratios(&mut md, opts, r);
    startup::startup_memory(&mut md, opts, r);
    targets::targets(&mut md, opts, r);
    header::commands(&mut md, opts, wrk);
    md
}

/// req/s of `a` over req/s of `b` at `c` connections, when both ran.
fn ratio(r: &Results, c: u32, a: Scenario, b: Scenario) -> Option<f64> {
    Some(r.load.get(&(c, a))?.rps() / r.load.get(&(c, b))?.rps())
}

pub fn write_report(path: &Path, generated: &str) -> Result<()> {
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
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_block_replaces_only_what_is_between_the_markers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("BENCHMARKS.md");
        write_report(&path, "one\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "# Benchmarks\n\n<!-- load:begin -->\none\n<!-- load:end -->\n"
        );
        std::fs::write(
            &path,
            "# B\n\nbefore\n<!-- load:begin -->\nold\n<!-- load:end -->\nafter\n",
        )
        .unwrap();
        write_report(&path, "new\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "# B\n\nbefore\n<!-- load:begin -->\nnew\n<!-- load:end -->\nafter\n"
        );
    }
}
