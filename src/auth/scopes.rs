//! Scope sufficiency, with hierarchies: a broader scope satisfies a narrower one.
//!
//! # Security
//! MCP authorization asks servers to account for scope hierarchies. Built in: the Microsoft
//! Graph convention that `X.ReadWrite[.All]` includes `X.Read[.All]`. Configured:
//! `auth.scope_implies` pairs (`parent:child`), applied transitively.

/// Whether `granted` satisfies `required`.
pub fn satisfies(granted: &[String], required: &str, implies: &[(String, String)]) -> bool {
    granted
        .iter()
        .any(|g| implies_scope(g, required, implies, 0))
}

/// Whether every scope in `required` is satisfied.
pub fn satisfies_all(
    granted: &[String],
    required: &[String],
    implies: &[(String, String)],
) -> bool {
    required.iter().all(|r| satisfies(granted, r, implies))
}

fn implies_scope(granted: &str, required: &str, implies: &[(String, String)], depth: u8) -> bool {
    if granted == required {
        return true;
    }
    if let Some(read) = readwrite_to_read(granted)
        && read == required
    {
        return true;
    }
    // Configured pairs, bounded depth so a cycle cannot loop.
    depth < 8
        && implies
            .iter()
            .filter(|(parent, _)| parent == granted)
            .any(|(_, child)| implies_scope(child, required, implies, depth + 1))
}

/// `Mail.ReadWrite` → `Mail.Read`, `Files.ReadWrite.All` → `Files.Read.All`.
fn readwrite_to_read(scope: &str) -> Option<String> {
    let (resource, rest) = scope.split_once(".ReadWrite")?;
    if rest.is_empty() || rest == ".All" {
        Some(format!("{resource}.Read{rest}"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn exact_and_graph_readwrite_hierarchy() {
        assert!(satisfies(
            &s(&["user_impersonation"]),
            "user_impersonation",
            &[]
        ));
        assert!(satisfies(&s(&["Mail.ReadWrite"]), "Mail.Read", &[]));
        assert!(satisfies(
            &s(&["Files.ReadWrite.All"]),
            "Files.Read.All",
            &[]
        ));
        assert!(!satisfies(&s(&["Mail.Read"]), "Mail.ReadWrite", &[]));
        assert!(!satisfies(&s(&["Files.ReadWrite.All"]), "Files.Read", &[]));
        assert!(!satisfies(&s(&[]), "x", &[]));
    }

    #[test]
    fn configured_implications_are_transitive_and_cycle_safe() {
        let implies = vec![
            ("admin".to_owned(), "write".to_owned()),
            ("write".to_owned(), "read".to_owned()),
            ("read".to_owned(), "admin".to_owned()),
        ];
        assert!(satisfies(&s(&["admin"]), "read", &implies));
        assert!(!satisfies(&s(&["admin"]), "other", &implies));
    }
}
