//! The start-up, memory and token-exchange table.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Results, mb, median, ms};
use crate::options::Options;
use crate::{CLIENT_CONCURRENCY, COLD_RUNS, EXCHANGE_CALLS, EXCHANGE_USERS, MEMORY_USERS};

pub(super) fn startup_memory(md: &mut String, opts: &Options, r: &Results) {
    let cold: Vec<Duration> = r.cold.iter().map(|c| c.total).collect();
    let accept_median = median(r.cold.iter().map(|c| c.accept).collect());
    let _ = writeln!(md, "\n### Start-up, memory, token exchanges\n");
    let _ = writeln!(md, "| measurement | value |");
    let _ = writeln!(md, "|---|---|");
    let _ = writeln!(
        md,
        "| cold start: exec → first successful authenticated `tools/call HelloTool` (includes JWKS fetch, token exchange, Graph), median of {COLD_RUNS} | {} (runs: {}) |",
        ms(median(cold.clone())),
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
        "| RSS idle (fresh auth server, ready, VmRSS; of it anonymous, RssAnon) | {} (anonymous {}) |",
        mb(r.memory.rss_idle_kb),
        mb(r.memory.anon_idle_kb)
    );
    let _ = writeln!(
        md,
        "| RSS after {MEMORY_USERS} distinct users each called HelloTool once (VmRSS / VmHWM; anonymous) | {} / {} (anonymous {}; {} exchanges, {} failed calls) |",
        mb(r.memory.rss_10k_kb),
        mb(r.memory.hwm_10k_kb),
        mb(r.memory.anon_10k_kb),
        r.memory.exchanges,
        r.memory.failures
    );
    let _ = writeln!(
        md,
        "| RSS of the load server after all runs (VmRSS / VmHWM) | {} / {} |",
        mb(r.rss_after_load_kb),
        mb(r.hwm_after_load_kb)
    );
    let _ = writeln!(
        md,
        "| OBO cache warm-up: {} users, one HelloTool and one UpcomingEvents call each (two tokens per user) | {} exchanges, {} failed calls |",
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
}
