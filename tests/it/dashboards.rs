//! The shipped Grafana dashboard (charts/mcp-obo/dashboards/mcp-obo.json) queries only what
//! the server exposes: the real binary (`mcp-obo dev`) is started and `/metrics` scraped
//! before any request, and every metric a panel names exists there, with every label value
//! a panel selects and every label it groups by. Series with fixed label sets are shown at
//! zero from start-up (`telemetry::metrics::init_known_labels`), so a fresh fleet's
//! dashboard has data, not "No data".

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;

use crate::dev_mode::DevProcess;

/// One scraped series: metric name and its labels.
type Series = (String, BTreeMap<String, String>);

fn dashboard() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("charts/mcp-obo/dashboards/mcp-obo.json");
    let text = std::fs::read_to_string(&path).expect("the dashboard JSON");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every `expr` of every panel (rows' nested panels included) and template variable query.
fn expressions(dashboard: &Value) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    out
}

/// The label pairs of a `{a="x",b="y"}` block (text without the braces).
fn labels(block: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = block;
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].trim_start_matches(',').trim().to_owned();
        let value_start = eq + 2;
        let end = rest[value_start..].find('"').expect("a closed label value") + value_start;
        out.insert(name, rest[value_start..end].to_owned());
        rest = &rest[end + 1..];
    }
    out
}

fn parse_scrape(text: &str) -> Vec<Series> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let name = line[..name_end].to_owned();
            let labels = match line[name_end..].strip_prefix('{') {
                Some(rest) => labels(&rest[..rest.rfind('}').expect("closed labels")]),
                None => BTreeMap::new(),
            };
            (name, labels)
        })
        .collect()
}

/// A metric selector of a query: the name, and its matchers as (label, op, value).
struct Selector {
    name: String,
    matchers: Vec<(String, String, String)>,
}

/// Every `mcp_…` metric selector in `expr`.
fn selectors(expr: &str) -> Vec<Selector> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(found) = expr[i..].find("mcp_") {
        let start = i + found;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        i = end;
        if !boundary {
            continue;
        }
        let mut matchers = Vec::new();
        if expr[end..].starts_with('{') {
            let close = expr[end..].find('}').expect("closed selector") + end;
            for part in split_matchers(&expr[end + 1..close]) {
                let op_at = part.find(['=', '!']).expect("a matcher operator");
                let op_len = if part[op_at + 1..].starts_with(['=', '~']) {
                    2
                } else {
                    1
                };
                let value = part[op_at + op_len..].trim().trim_matches('"').to_owned();
                matchers.push((
                    part[..op_at].trim().to_owned(),
                    part[op_at..op_at + op_len].to_owned(),
                    value,
                ));
            }
            i = close + 1;
        }
        out.push(Selector {
            name: expr[start..end].to_owned(),
            matchers,
        });
    }
    out
}

/// `a="x",b=~"y|z"` split on the commas outside quotes.
fn split_matchers(block: &str) -> Vec<String> {
    let (mut parts, mut current, mut quoted) = (Vec::new(), String::new(), false);
    for c in block.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if !current.trim().is_empty() {
        parts.push(current);
    }
    parts
}

/// The labels of every `by (…)` clause in `expr`.
fn grouped_by(expr: &str) -> BTreeSet<String> {
    expr.match_indices("by (")
        .filter_map(|(at, _)| {
            let rest = &expr[at + 4..];
            rest.find(')').map(|close| rest[..close].to_owned())
        })
        .flat_map(|list| {
            list.split(',')
                .map(|l| l.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// What is wrong with `expr` against the scraped `series` (empty: nothing).
fn problems(expr: &str, series: &[Series]) -> Vec<String> {
    let mut out = Vec::new();
    let used = selectors(expr);
    for selector in &used {
        let of_metric: Vec<&BTreeMap<String, String>> = series
            .iter()
            .filter(|(name, _)| *name == selector.name)
            .map(|(_, labels)| labels)
            .collect();
        if of_metric.is_empty() {
            out.push(format!("{}: not in /metrics", selector.name));
            continue;
        }
        for (label, op, value) in &selector.matchers {
            // `job` is the scraper's label, and a negative matcher needs no series of its own.
            if label == "job" || op.starts_with('!') {
                continue;
            }
            let wanted: Vec<&str> = if op == "=~" {
                value.split('|').collect()
            } else {
                vec![value.as_str()]
            };
            for want in wanted {
                if !of_metric
                    .iter()
                    .any(|l| l.get(label).map(String::as_str) == Some(want))
                {
                    out.push(format!(
                        "{}{{{label}=\"{want}\"}}: no such series",
                        selector.name
                    ));
                }
            }
        }
    }
    for label in grouped_by(expr) {
        let carried = used.iter().any(|s| {
            series
                .iter()
                .any(|(name, labels)| *name == s.name && labels.contains_key(&label))
        });
        if !carried {
            out.push(format!("by ({label}): no queried metric has that label"));
        }
    }
    out
}

#[tokio::test]
async fn every_metric_the_grafana_dashboard_queries_is_in_a_fresh_servers_metrics() {
    let dev = DevProcess::start().await;
    let text = reqwest::get(dev.metrics_url())
        .await
        .expect("metrics listener")
        .text()
        .await
        .expect("metrics text");
    let series = parse_scrape(&text);
    let exprs = expressions(&dashboard());
    let queried: BTreeSet<String> = exprs
        .iter()
        .flat_map(|e| selectors(e))
        .map(|s| s.name)
        .collect();
    // The panels the dashboard promises, each backed by its metric.
    for name in [
        "mcp_obo_mcp_requests_total",
        "mcp_server_operation_duration_seconds_bucket",
        "mcp_obo_obo_exchanges_total",
        "mcp_obo_obo_cache_lookups_total",
        "mcp_obo_obo_shared_cache_lookups_total",
        "mcp_obo_obo_shared_cache_errors_total",
        "mcp_obo_obo_shared_cache_locks_total",
        "mcp_obo_obo_shared_cache_up",
        "mcp_obo_auth_failures_total",
        "mcp_obo_mcp_limited_requests_total",
        "mcp_obo_graph_claims_challenges_total",
    ] {
        assert!(queried.contains(name), "no panel queries {name}");
    }
    let wrong: Vec<String> = exprs.iter().flat_map(|e| problems(e, &series)).collect();
    assert!(wrong.is_empty(), "{wrong:#?}\n/metrics:\n{text}");
}

#[test]
fn the_checker_finds_a_missing_metric_a_missing_label_value_and_a_missing_label() {
    let series =
        parse_scrape("# TYPE mcp_a_total counter\nmcp_a_total{result=\"hit\"} 0\nmcp_b 1\n");
    assert!(
        problems(
            r#"sum by (result) (rate(mcp_a_total{job=~"$job",result=~"hit"}[5m]))"#,
            &series
        )
        .is_empty()
    );
    let found = problems(
        r#"sum by (outcome) (rate(mcp_a_total{result=~"hit|miss"}[5m])) / mcp_c + mcp_b{x!="y"}"#,
        &series,
    );
    assert_eq!(
        found,
        [
            "mcp_a_total{result=\"miss\"}: no such series",
            "mcp_c: not in /metrics",
            "by (outcome): no queried metric has that label",
        ],
        "{found:#?}"
    );
}
