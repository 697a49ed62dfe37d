//! `[obo.shared_cache]` through the real loader: nested keys from the environment and from a
//! file, the password only from the environment or a file, every problem named by its key.

use std::time::Duration;

use super::super::{Loaded, load};
use crate::config::{Error, Source};
use crate::obo::shared_cache::RedisAuth;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn problem_keys(result: Result<Loaded, Error>) -> Vec<String> {
    match result {
        Err(Error::Invalid(problems)) => problems.into_iter().map(|p| p.key).collect(),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("expected problems"),
    }
}

#[test]
fn it_is_off_by_default_with_a_50ms_deadline() {
    let loaded = load(None, &env(&[])).expect("defaults");
    let shared = &loaded.settings.obo.shared_cache;
    assert!(shared.url.is_none());
    assert_eq!(shared.timeout, Duration::from_millis(50));
    assert_eq!(shared.key_prefix, "mcp-obo:");
    assert_eq!(
        loaded.effective["obo.shared_cache.timeout"],
        ("50ms".to_owned(), Source::Default)
    );
}

#[test]
fn nested_keys_come_from_mcp_obo_obo_shared_cache_variables() {
    let loaded = load(
        None,
        &env(&[
            (
                "MCP_OBO__OBO__SHARED_CACHE__URL",
                "rediss://cache.example:10000",
            ),
            ("MCP_OBO__OBO__SHARED_CACHE__CLUSTER", "true"),
            ("MCP_OBO__OBO__SHARED_CACHE__AUTH", "password"),
            ("MCP_OBO__OBO__SHARED_CACHE__USERNAME", "mcp"),
            ("MCP_OBO__OBO__SHARED_CACHE__PASSWORD", "s3cret-value"),
            ("MCP_OBO__OBO__SHARED_CACHE__TIMEOUT", "20ms"),
        ]),
    )
    .expect("valid");
    let shared = &loaded.settings.obo.shared_cache;
    assert_eq!(
        shared.url.as_ref().map(url::Url::as_str),
        Some("rediss://cache.example:10000")
    );
    assert!(shared.cluster);
    assert_eq!(shared.auth, RedisAuth::Password);
    assert_eq!(shared.username.as_deref(), Some("mcp"));
    assert_eq!(
        shared.password.as_ref().map(|p| p.expose()),
        Some("s3cret-value")
    );
    assert_eq!(shared.timeout, Duration::from_millis(20));
    assert_eq!(
        loaded.effective["obo.shared_cache.url"],
        (
            "rediss://cache.example:10000".to_owned(),
            Source::Env("MCP_OBO__OBO__SHARED_CACHE__URL".into())
        )
    );
    assert_eq!(
        loaded.effective["obo.shared_cache.password"].0,
        "<redacted>"
    );
    assert!(!format!("{shared:?}").contains("s3cret-value"));
}

#[test]
fn a_file_may_hold_the_section_and_a_password_file_but_not_a_password() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("redis-password");
    std::fs::write(&secret, "from-a-file\n").expect("write");
    let file = dir.path().join("mcp-obo.toml");
    let section = format!(
        "[obo.shared_cache]\nurl = \"redis://127.0.0.1:6379\"\nauth = \"password\"\npassword_file = \"{}\"\n",
        secret.display()
    );
    std::fs::write(&file, &section).expect("write config");
    let loaded = load(Some(&file), &env(&[])).expect("valid");
    let shared = &loaded.settings.obo.shared_cache;
    assert_eq!(
        shared.password.as_ref().map(|p| p.expose()),
        Some("from-a-file")
    );
    assert_eq!(
        loaded.effective["obo.shared_cache.auth"].1,
        Source::File(file.clone())
    );

    std::fs::write(&file, format!("{section}password = \"in-the-file\"\n")).expect("write");
    assert_eq!(
        problem_keys(load(Some(&file), &env(&[]))),
        ["obo.shared_cache.password"]
    );
}

#[test]
fn bad_values_and_unknown_keys_are_each_named() {
    let keys = problem_keys(load(
        None,
        &env(&[
            ("MCP_OBO__OBO__SHARED_CACHE__URL", "redis://:pw@cache:6379"),
            ("MCP_OBO__OBO__SHARED_CACHE__AUTH", "kerberos"),
            ("MCP_OBO__OBO__SHARED_CACHE__TIMEOUT", "soon"),
            ("MCP_OBO__OBO__SHARED_CACHE__BOGUS", "1"),
        ]),
    ));
    for key in [
        "obo.shared_cache.url",
        "obo.shared_cache.auth",
        "obo.shared_cache.timeout",
        "obo.shared_cache.bogus",
    ] {
        assert!(keys.iter().any(|k| k == key), "{key} not in {keys:?}");
    }
}

#[test]
fn entra_without_a_platform_identity_is_refused() {
    let keys = problem_keys(load(
        None,
        &env(&[
            (
                "MCP_OBO__OBO__SHARED_CACHE__URL",
                "rediss://cache.example:10000",
            ),
            ("MCP_OBO__OBO__SHARED_CACHE__AUTH", "entra"),
        ]),
    ));
    assert_eq!(keys, ["obo.shared_cache.auth"]);
}
