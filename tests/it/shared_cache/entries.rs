//! What Redis holds: entries sealed per user, so a tampered one or one copied under another
//! user's key is refused and replaced, and neither a token, a JWT nor profile data in the
//! clear (nor a token in the replicas' logs).

use super::{HIT, REJECTED, assert_greeted};
use crate::support::binary;
use crate::support::fleet::Fleet;
use crate::support::redis_server::RedisServer;

#[tokio::test]
async fn a_tampered_entry_and_one_written_under_another_users_key_are_ignored_and_replaced() {
    let redis = RedisServer::start().await;
    let fleet = Fleet::start(binary(), 3, &redis.url(), &[]).await;
    let (a, b) = (fleet.user(1), fleet.user(2));
    assert_greeted(&fleet.hello(0, &a).await, 1);
    let a_key = only_key(&redis.dump().await);
    assert_greeted(&fleet.hello(0, &b).await, 2);
    let b_key = only_key(
        &redis
            .dump()
            .await
            .into_iter()
            .filter(|(k, _)| *k != a_key)
            .collect::<Vec<_>>(),
    );
    let mut con = redis.client().await;
    // B's entry replaced by A's (sealed under A's token, for A's key): foreign to B.
    let a_value: Vec<u8> = redis::cmd("GET")
        .arg(&a_key)
        .query_async(&mut con)
        .await
        .expect("GET");
    let () = redis::cmd("SET")
        .arg(&b_key)
        .arg(&a_value)
        .query_async(&mut con)
        .await
        .expect("SET");
    // A's entry with one byte flipped.
    let mut tampered = a_value.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let () = redis::cmd("SET")
        .arg(&a_key)
        .arg(&tampered)
        .query_async(&mut con)
        .await
        .expect("SET");

    // Replica 1 has neither user in process: both entries are read, refused, re-exchanged.
    assert_greeted(&fleet.hello(1, &a).await, 1);
    assert_greeted(&fleet.hello(1, &b).await, 2);
    assert_eq!(fleet.issuer.exchanges(), 4);
    assert_eq!(fleet.metric(1, REJECTED).await, 2.0);
    // The replacements are good entries: replica 2 reads them.
    assert_greeted(&fleet.hello(2, &a).await, 1);
    assert_greeted(&fleet.hello(2, &b).await, 2);
    assert_eq!(fleet.issuer.exchanges(), 4);
    assert_eq!(fleet.metric(2, HIT).await, 2.0);
}

/// The one entry key (`…:t`) among `entries`.
fn only_key(entries: &[(String, Vec<u8>)]) -> String {
    let keys: Vec<&String> = entries
        .iter()
        .map(|(k, _)| k)
        .filter(|k| k.ends_with(":t"))
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    keys[0].clone()
}

#[tokio::test]
async fn redis_holds_no_token_no_jwt_and_no_profile_data() {
    let redis = RedisServer::start().await;
    let fleet = Fleet::start(binary(), 3, &redis.url(), &[]).await;
    let users: Vec<String> = (0..10).map(|n| fleet.user(n)).collect();
    for (n, token) in users.iter().enumerate() {
        for k in 0..3 {
            assert_greeted(&fleet.hello(k, token).await, n);
        }
    }
    let entries = redis.dump().await;
    assert_eq!(
        entries.iter().filter(|(k, _)| k.ends_with(":t")).count(),
        10
    );
    let mut secrets: Vec<String> = users.clone();
    secrets.extend(fleet.issuer.issued_tokens());
    assert_eq!(secrets.len(), 20, "ten user tokens and ten Graph tokens");
    for n in 0..10 {
        secrets.push(format!("User {n}"));
        secrets.push(format!("user{n}@contoso.com"));
        secrets.push(format!("{}-{n}", crate::support::tokens::USER_OID));
    }
    for (key, value) in &entries {
        assert!(
            key.starts_with("mcp-obo:{") && !key.contains("eyJ"),
            "{key}"
        );
        for secret in &secrets {
            // Its first and last 16 characters (a JWT's header, and its signature, unique to
            // it): either would be as telling as the whole.
            let bytes = secret.as_bytes();
            let n = bytes.len().min(16);
            for probe in [&bytes[..n], &bytes[bytes.len() - n..]] {
                assert!(!contains(key.as_bytes(), probe), "{key} holds {secret}");
                assert!(!contains(value, probe), "the value at {key} holds {secret}");
            }
        }
        assert!(!holds_jwt(value), "the value at {key} holds a JWT");
    }
    // Nor do the replicas' logs.
    for replica in &fleet.replicas {
        let log = replica.process.stderr();
        for secret in &secrets[..20] {
            assert!(!log.contains(secret.as_str()), "a token in a replica's log");
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `eyJ` (a JSON object, base64url) followed by more base64url: what every JWT starts with.
fn holds_jwt(value: &[u8]) -> bool {
    value.windows(20).any(|w| {
        w.starts_with(b"eyJ")
            && w[3..]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    })
}
