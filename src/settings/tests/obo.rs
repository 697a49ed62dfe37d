//! `[obo]` through the real loader: the failure memory and the declared client capabilities.

use std::time::Duration;

use super::super::load;
use crate::config::Error;

fn with_ttl(ttl: &str) -> Result<Duration, Vec<String>> {
    let env = vec![("MCP_OBO__OBO__FAILURE_CACHE_TTL".to_owned(), ttl.to_owned())];
    match load(None, &env) {
        Ok(loaded) => Ok(loaded.settings.obo.failure_cache_ttl),
        Err(Error::Invalid(problems)) => Err(problems.iter().map(|p| p.key.clone()).collect()),
        Err(e) => panic!("{e}"),
    }
}

fn with_capabilities(value: Option<&str>) -> Result<Vec<String>, Vec<String>> {
    let env: Vec<(String, String)> = value
        .map(|v| ("MCP_OBO__OBO__CLIENT_CAPABILITIES".to_owned(), v.to_owned()))
        .into_iter()
        .collect();
    match load(None, &env) {
        Ok(loaded) => Ok(loaded.settings.obo.client_capabilities),
        Err(Error::Invalid(problems)) => Err(problems.iter().map(|p| p.key.clone()).collect()),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn client_capabilities_default_to_cp1_and_an_empty_list_declares_none() {
    assert_eq!(with_capabilities(None), Ok(vec!["cp1".to_owned()]));
    assert_eq!(with_capabilities(Some("")), Ok(Vec::new()));
    assert_eq!(
        with_capabilities(Some("cp1, llt")),
        Ok(vec!["cp1".to_owned(), "llt".to_owned()])
    );
    assert_eq!(
        with_capabilities(Some("cp1\"}}")),
        Err(vec!["obo.client_capabilities".to_owned()])
    );
}

#[test]
fn the_failure_memory_defaults_to_15s_may_be_off_and_is_at_most_5m() {
    assert_eq!(with_ttl("15s"), Ok(Duration::from_secs(15)));
    assert_eq!(with_ttl("0s"), Ok(Duration::ZERO));
    assert_eq!(with_ttl("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(
        with_ttl("1h"),
        Err(vec!["obo.failure_cache_ttl".to_owned()])
    );
    let defaults = load(None, &Vec::new()).expect("defaults");
    assert_eq!(
        defaults.settings.obo.failure_cache_ttl,
        Duration::from_secs(15)
    );
}
