//! The Azure Monitor workbook (infra/workbooks/mcp-obo.workbook.json) queries only what the
//! server sends to Application Insights: the real binary exports its spans of an
//! on-behalf-of flow (two HelloTool calls, a refused token) to a real OTLP receiver, and every
//! span name the workbook filters on, every `customDimensions` key it reads and every value
//! it compares one with, is among the exported spans' names and attributes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;

use crate::telemetry_otlp::{Protocol, run_flow, spans};

/// Attributes the server records only on failure (the flow's calls succeed): the workbook may
/// read them without the flow producing them. Checked against the source instead.
const ONLY_ON_FAILURE: &[&str] = &["error.type"];

/// Attributes recorded only with the shared cache on or under a CAE challenge, which the flow
/// has neither of (their spans are tested in `shared_cache.rs` and `telemetry_spans.rs`):
/// each with the file that declares it on its span and the one that records it.
const ONLY_WITH_FEATURE: &[(&str, &str, &str)] = &[
    (
        "obo.shared_cache",
        "src/obo/on_behalf_of.rs",
        "src/obo/shared_cache/flow.rs",
    ),
    (
        "graph.cae_challenge",
        "src/graph/client.rs",
        "src/graph/client/challenge.rs",
    ),
];

fn queries() -> Vec<String> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("infra/workbooks/mcp-obo.workbook.json");
    let workbook: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("workbook file")).expect("JSON");
    workbook["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["content"]["query"].as_str().map(str::to_owned))
        .collect()
}

/// The quoted text after each occurrence of `prefix` in `query`, and what it is compared with
/// (`) == "x"` right after it), if anything.
fn quoted_after(query: &str, prefix: &str) -> Vec<(String, Option<String>)> {
    query
        .match_indices(prefix)
        .filter_map(|(at, _)| {
            let rest = &query[at + prefix.len()..];
            let end = rest.find('"')?;
            let compared = rest[end..]
                .strip_prefix("\"]) == \"")
                .and_then(|r| r.find('"').map(|e| r[..e].to_owned()));
            Some((rest[..end].to_owned(), compared))
        })
        .collect()
}

#[tokio::test]
async fn every_span_and_attribute_the_workbook_queries_is_exported_by_the_server() {
    let trace_id = "4c8efff798038103d269b633813fc60d";
    let run = run_flow(trace_id, Protocol::Http).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while spans(&run.received).is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let exported = spans(&run.received);
    let names: BTreeSet<&str> = exported.iter().map(|s| s.name.as_str()).collect();
    let mut attributes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for span in &exported {
        for kv in &span.attributes {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(s)) => s.clone(),
                other => format!("{other:?}"),
            };
            attributes.entry(kv.key.clone()).or_default().insert(value);
        }
    }
    let mut wrong = Vec::new();
    let mut read = BTreeSet::new();
    for query in queries() {
        for (name, _) in quoted_after(&query, "where name == \"") {
            if !names.contains(name.as_str()) {
                wrong.push(format!("span {name:?} is not exported"));
            }
        }
        for (key, compared) in quoted_after(&query, "customDimensions[\"") {
            read.insert(key.clone());
            match (attributes.get(&key), compared) {
                (None, _) if ONLY_ON_FAILURE.contains(&key.as_str()) => {}
                (None, _) if ONLY_WITH_FEATURE.iter().any(|(k, _, _)| *k == key) => {}
                (None, _) => wrong.push(format!("attribute {key:?} is not exported")),
                (Some(values), Some(v)) if !values.contains(&v) => wrong.push(format!(
                    "attribute {key:?} never is {v:?} (seen {values:?})"
                )),
                _ => {}
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{wrong:#?}\nspans: {names:?}\nattributes: {attributes:?}"
    );
    for key in [
        "mcp.method.name",
        "gen_ai.tool.name",
        "obo.cache",
        "auth.failure_reason",
    ] {
        assert!(read.contains(key), "the workbook no longer reads {key}");
    }
    // What the exemption covers is a real attribute of the MCP span, only set on failure.
    let handler = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/mcp/handler.rs"),
    )
    .expect("handler source");
    for key in ONLY_ON_FAILURE {
        assert!(
            handler.contains(&format!("{key} = tracing::field::Empty")),
            "{key}"
        );
        assert!(handler.contains(&format!("span.record(\"{key}\"")), "{key}");
    }
    let source = |path: &str| {
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path))
            .expect("source file")
    };
    for (key, declared, recorded) in ONLY_WITH_FEATURE {
        assert!(
            source(declared).contains(&format!("{key} = tracing::field::Empty")),
            "{key} is not declared in {declared}"
        );
        assert!(
            source(recorded).contains(&format!("record(\"{key}\"")),
            "{key} is not recorded in {recorded}"
        );
    }
}
