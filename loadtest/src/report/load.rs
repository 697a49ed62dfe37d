//! The throughput and latency table (every scenario at every connection count, the fake
//! Graph's ceiling, the comparison runs) and the ratios of scenarios in the same run, HelloTool
//! against the reference proxies among them.

use std::fmt::Write as _;

use super::{Results, ratio, us};
use crate::options::Options;
use crate::scenarios::{Scenario, against_references};
use crate::wrk::Load;

pub(super) fn error_cell(l: &Load) -> String {
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

pub(super) fn throughput(md: &mut String, opts: &Options, r: &Results) {
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
}

pub(super) fn ratios(md: &mut String, opts: &Options, r: &Results) {
    let _ = writeln!(md, "### Ratios (same run)\n");
    let _ = writeln!(
        md,
        "| conns | list auth on / off | HelloTool / list auth off | list auth off / healthz |"
    );
    let _ = writeln!(md, "|---:|---:|---:|---:|");
    let pct = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.0}%", v * 100.0));
    for &c in &opts.connections {
        let _ = writeln!(
            md,
            "| {c} | {} | {} | {} |",
            pct(ratio(r, c, Scenario::ListOn, Scenario::ListOff)),
            pct(ratio(r, c, Scenario::Hello, Scenario::ListOff)),
            pct(ratio(r, c, Scenario::ListOff, Scenario::Healthz)),
        );
    }
    let against: Vec<String> = opts
        .connections
        .iter()
        .flat_map(|&c| {
            against_references(|s| r.load.get(&(c, s)))
                .into_iter()
                .map(move |line| format!("- {line} at {c} connections"))
        })
        .collect();
    if !against.is_empty() {
        let _ = writeln!(
            md,
            "\nAgainst the reference proxies (the same rounds): HelloTool / Rust floor is what mcp-obo does, Rust floor / nginx what its HTTP stack costs.\n"
        );
        for line in against {
            let _ = writeln!(md, "{line}");
        }
    }
}
