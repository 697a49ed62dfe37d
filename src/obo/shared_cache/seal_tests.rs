//! Sealing and opening shared-cache entries: only the same token, scopes and Redis key open
//! an entry, and any change to it makes it unreadable.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Entry, Keys};
use crate::obo::UserAssertion;
use crate::obo::{AccessToken, Error};

const GRAPH: &[&str] = &["https://graph.microsoft.com/User.Read"];

fn user(token: &str) -> UserAssertion {
    UserAssertion::new(token, SystemTime::now() + Duration::from_secs(3600))
}

fn keys(token: &str, scopes: &[&str]) -> Keys {
    Keys::new("mcp-obo:", &user(token), scopes).expect("keys")
}

fn token_entry() -> Entry {
    Entry::Token(AccessToken::new(
        "graph.token.value",
        UNIX_EPOCH + Duration::from_secs(2_000_000_000),
    ))
}

fn opened_token(entry: Option<Entry>) -> (String, SystemTime) {
    match entry {
        Some(Entry::Token(token)) => (
            token.bearer().expect("a token").to_owned(),
            token.expires_at(),
        ),
        other => panic!("expected a token, got {other:?}"),
    }
}

#[test]
fn an_entry_opens_with_the_same_token_and_scopes() {
    let sealed = keys("user-token-a", GRAPH)
        .seal(&token_entry())
        .expect("seal");
    let (token, expires_at) = opened_token(keys("user-token-a", GRAPH).open(&sealed));
    assert_eq!(token, "graph.token.value");
    assert_eq!(expires_at, UNIX_EPOCH + Duration::from_secs(2_000_000_000));
}

#[test]
fn another_users_token_cannot_open_an_entry_even_at_the_same_redis_key() {
    let a = keys("user-token-a", GRAPH);
    let b = keys("user-token-b", GRAPH);
    assert_ne!(a.entry, b.entry);
    let sealed = a.seal(&token_entry()).expect("seal");
    assert!(b.open(&sealed).is_none());
}

#[test]
fn other_scopes_cannot_open_an_entry() {
    let sealed = keys("user-token-a", GRAPH)
        .seal(&token_entry())
        .expect("seal");
    let calendars = keys(
        "user-token-a",
        &["https://graph.microsoft.com/Calendars.Read"],
    );
    assert!(calendars.open(&sealed).is_none());
    // Scope boundaries count: ["a", "b"] is not ["ab"].
    let split = keys("t", &["a", "b"]);
    let joined = keys("t", &["ab"]);
    assert_ne!(split.entry, joined.entry);
    assert!(
        joined
            .open(&split.seal(&token_entry()).expect("seal"))
            .is_none()
    );
}

#[test]
fn every_flipped_byte_makes_an_entry_unreadable() {
    let k = keys("user-token-a", GRAPH);
    let sealed = k.seal(&token_entry()).expect("seal");
    for i in 0..sealed.len() {
        let mut tampered = sealed.clone();
        tampered[i] ^= 0x01;
        assert!(k.open(&tampered).is_none(), "byte {i} flipped still opened");
    }
    assert!(k.open(&sealed[..sealed.len() - 1]).is_none());
    assert!(k.open(&[]).is_none());
}

#[test]
fn an_entry_moved_to_another_key_prefix_does_not_open() {
    let sealed = keys("user-token-a", GRAPH)
        .seal(&token_entry())
        .expect("seal");
    let other_prefix = Keys::new("other:", &user("user-token-a"), GRAPH).expect("keys");
    assert!(other_prefix.open(&sealed).is_none());
}

#[test]
fn sealing_twice_gives_different_values_and_neither_holds_the_token() {
    let k = keys("user-token-a", GRAPH);
    let (one, two) = (
        k.seal(&token_entry()).expect("seal"),
        k.seal(&token_entry()).expect("seal"),
    );
    assert_ne!(one, two, "a fresh nonce per seal");
    for value in [&one, &two] {
        assert!(!value.windows(5).any(|w| w == b"graph"));
    }
    assert!(!k.entry.contains("user-token-a") && !k.lock.contains("user-token-a"));
}

#[test]
fn a_remembered_failure_of_the_callers_state_round_trips() {
    let k = keys("user-token-a", GRAPH);
    let consent = Error::ConsentRequired {
        permissions: "Calendars.Read".into(),
        consent_url: "https://login.example/consent".into(),
        admin_consent_url: None,
    };
    let sealed = k.seal(&Entry::Failure(consent.clone())).expect("seal");
    match k.open(&sealed) {
        Some(Entry::Failure(error)) => assert_eq!(error, consent),
        other => panic!("expected the failure, got {other:?}"),
    }
    // A failure that is not the caller's state has no stored form.
    let transient = k.seal(&Entry::Failure(Error::Transient { status: 503 }));
    assert!(transient.is_ok_and(|v| k.open(&v).is_none()));
}
