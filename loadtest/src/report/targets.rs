//! The targets table: each target, what was measured, PASS or FAIL.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Results, mb, median, ms, ratio, us};
use crate::options::Options;
use crate::scenarios::Scenario;
use crate::wrk::Load;
use crate::{EXCHANGE_CALLS, EXCHANGE_USERS, MEMORY_USERS};

fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "**FAIL**" }
}

/// `a / b` at every connection count, and whether each is at least `min`.
fn ratio_target(opts: &Options, r: &Results, a: Scenario, b: Scenario, min: f64) -> (String, bool) {
    let mut ok = true;
    let mut parts = Vec::new();
    for &c in &opts.connections {
        if let Some(v) = ratio(r, c, a, b) {
            ok &= v >= min;
            parts.push(format!("{:.0}% @{c}", v * 100.0));
        } else {
            ok = false;
        }
    }
    (parts.join(", "), ok)
}

pub(super) fn targets(md: &mut String, opts: &Options, r: &Results) {
    let _ = writeln!(md, "\n### Targets (issue 8)\n");
    let _ = writeln!(md, "| target | measured | result |");
    let _ = writeln!(md, "|---|---|---|");
    let (m, ok) = ratio_target(opts, r, Scenario::ListOn, Scenario::ListOff, 0.75);
    let _ = writeln!(
        md,
        "| authenticated `tools/list` ≥ 75% of unauthenticated (every conns level) | {m} | {} |",
        pass(ok)
    );
    let (m, ok) = ratio_target(opts, r, Scenario::Hello, Scenario::ListOff, 0.50);
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
    let cold_median = median(r.cold.iter().map(|c| c.total).collect());
    let _ = writeln!(
        md,
        "| cold start < 50 ms | {} | {} |",
        ms(cold_median),
        pass(cold_median < Duration::from_millis(50))
    );
    let _ = writeln!(
        md,
        "| RSS < 20 MB idle | {} | {} |",
        mb(r.memory.rss_idle_kb),
        pass(r.memory.rss_idle_kb < 20 * 1024)
    );
    let _ = writeln!(
        md,
        "| RSS < 80 MB after {MEMORY_USERS} users | {} | {} |",
        mb(r.memory.rss_10k_kb),
        pass(r.memory.rss_10k_kb < 80 * 1024)
    );
    let run_errors: u64 = r.load.values().map(Load::errors).sum::<u64>()
        + r.extras.iter().map(|(_, l)| l.errors()).sum::<u64>()
        + r.graph_ceiling.errors();
    let call_errors = r.memory.failures + r.warm_failures + r.exchange_calls_failures;
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
}
