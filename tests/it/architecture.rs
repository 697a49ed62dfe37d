//! Which way `src/`'s dependencies point: the `crate::…` paths each top-level module uses
//! (outside comments) form a graph with no cycle, and the low modules import nothing above
//! them. docs/architecture.md ("Which way dependencies point") explains the order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules its code names through `crate::`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut pending = vec![src.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&src).expect("under src/");
            let first = relative.components().next().expect("a first component");
            let module = first.as_os_str().to_string_lossy();
            let module = module.trim_end_matches(".rs").to_owned();
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            let used = graph.entry(module.clone()).or_default();
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (at, _) in line.match_indices("crate::") {
                    let rest = &line[at + "crate::".len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    // `mcp_obo_testkit::…`-style names end in `crate::` too; only a bare
                    // `crate::` starts a path of this crate.
                    let bare = at == 0
                        || !line[..at]
                            .chars()
                            .next_back()
                            .is_some_and(|c| c.is_alphanumeric() || c == '_');
                    if bare && !name.is_empty() && name != module {
                        used.insert(name);
                    }
                }
            }
        }
    }
    graph
}

/// A cycle through `from`, as the path of modules, if there is one.
fn cycle_through(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![(from.to_owned(), vec![from.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in graph.get(&at).into_iter().flatten() {
            if next == from {
                let mut found = path.clone();
                found.push(next.clone());
                return Some(found);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn the_modules_of_src_import_each_other_without_a_cycle() {
    let graph = imports();
    assert!(
        graph.contains_key("auth") && graph.contains_key("obo"),
        "{graph:?}"
    );
    let cycles: Vec<Vec<String>> = graph
        .keys()
        .filter_map(|m| cycle_through(&graph, m))
        .collect();
    assert!(cycles.is_empty(), "import cycles: {cycles:?}");
}

#[test]
fn low_modules_import_nothing_above_them() {
    let graph = imports();
    let allowed: [(&str, &[&str]); 4] = [
        ("config", &[]),
        ("jose", &["config"]),
        ("outbound", &["config", "jose"]),
        ("telemetry", &["config", "outbound", "jose"]),
    ];
    for (module, may_use) in allowed {
        let uses = graph.get(module).cloned().unwrap_or_default();
        let above: Vec<&String> = uses
            .iter()
            .filter(|u| !may_use.contains(&u.as_str()))
            .collect();
        assert!(above.is_empty(), "{module}/ imports {above:?}");
    }
    // The composition root is imported only by the commands above it.
    for (module, uses) in &graph {
        for root in ["settings", "server"] {
            if uses.contains(root) {
                assert!(
                    ["main", "lib", "doctor", "devidp", "server", "settings"]
                        .contains(&module.as_str()),
                    "{module}/ imports the composition root {root}/"
                );
            }
        }
    }
}

#[test]
fn a_cycle_is_found_when_there_is_one() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(m, u)| (m.to_owned(), u.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(
        cycle_through(&graph, "a"),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(cycle_through(&graph, "d"), None);
}
