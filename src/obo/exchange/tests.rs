//! The exchange's failure mapping, consent links and tenant checks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::config::Secret;

/// A token endpoint that counts connections and answers a valid token response.
async fn counting_endpoint() -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = vec![0u8; 65536];
            let _ = stream.read(&mut buf).await;
            let body = r#"{"access_token":"t","expires_in":3600}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes()).await;
        }
    });
    (base, connections)
}

fn exchanger(authority: String) -> Exchanger {
    Exchanger {
        http: reqwest::Client::new(),
        grant: OboGrant::EntraObo,
        client_id: "00000000-aaaa-bbbb-cccc-111111111111".into(),
        endpoint: TokenEndpoint::Entra {
            authority,
            tenant: "organizations".into(),
            per_caller_tenant: true,
        },
        assertion: AssertionSource::ClientSecret(Secret::new("secret")),
        max_retries: 0,
        consent_url: None,
        public_url: "https://mcp.example.com".into(),
        audience: None,
        client_capabilities: vec!["cp1".into()],
    }
}

fn caller(tid: &str) -> Caller {
    Caller {
        tenant_id: Some(tid.to_owned()),
        ..Caller::local_developer()
    }
}

#[test]
fn consent_missing_links_to_exactly_the_missing_permission_returning_to_the_servers_page() {
    let exchanger = exchanger("https://login.microsoftonline.com".into());
    let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let failure = exchanger.map_failure(
        Failure {
            error: Some("invalid_grant".into()),
            error_codes: vec![65001],
            ..Failure::default()
        },
        &caller(tid),
        &["https://graph.microsoft.com/Calendars.Read"],
    );
    let Error::ConsentRequired {
        permissions,
        consent_url,
        admin_consent_url,
    } = &failure
    else {
        panic!("{failure:?}");
    };
    assert_eq!(permissions, "Calendars.Read");
    let link = url::Url::parse(consent_url).expect("a URL");
    assert_eq!(link.path(), format!("/{tid}/oauth2/v2.0/authorize"));
    let query: std::collections::HashMap<_, _> = link.query_pairs().into_owned().collect();
    assert_eq!(query["scope"], "https://graph.microsoft.com/Calendars.Read");
    assert_eq!(
        query["redirect_uri"],
        "https://mcp.example.com/consent/complete"
    );
    assert_eq!(query["prompt"], "consent");
    assert_eq!(query["client_id"], exchanger.client_id);
    let admin = admin_consent_url.as_deref().expect("an admin link");
    assert!(admin.starts_with(&format!(
        "https://login.microsoftonline.com/{tid}/v2.0/adminconsent?"
    )));
    let text = failure.user_message();
    assert!(
        text.contains("Calendars.Read") && text.contains(consent_url.as_str()),
        "{text}"
    );
}

#[test]
fn an_error_the_endpoint_invents_reaches_neither_the_label_nor_the_text() {
    let exchanger = exchanger("https://login.example".into());
    let long = "x".repeat(400_000);
    for error in [long.as_str(), "bad\nline forged"] {
        let failure = exchanger.map_failure(
            Failure {
                error: Some(error.to_owned()),
                ..Failure::default()
            },
            &caller("72f988bf-86f1-41af-91ab-2d7cd011db47"),
            &["https://graph.microsoft.com/User.Read"],
        );
        assert_eq!(failure.code(), "protocol");
        let text = failure.to_string();
        assert!(text.len() < 300 && !text.contains("forged"), "{text}");
    }
}

#[tokio::test]
async fn a_caller_tenant_that_is_not_a_guid_never_reaches_the_token_endpoint() {
    let (base, connections) = counting_endpoint().await;
    let exchanger = exchanger(base);
    for tid in [
        "../../evil",
        "organizations",
        "common",
        "72f988bf-86f1-41af-91ab-2d7cd011db47/../x",
        "72f988bf-86f1-41af-91ab-2d7cd011db47?x=1",
        "contoso.onmicrosoft.com",
        "",
    ] {
        let result = exchanger
            .exchange(
                &caller(tid),
                "user-token",
                &["https://graph.microsoft.com/.default"],
            )
            .await;
        let Err(error) = result else {
            panic!("{tid:?}: the exchange must fail");
        };
        let message = error.to_string();
        assert!(message.contains("tenant"), "{tid:?}: {message}");
        if !tid.is_empty() {
            assert!(!message.contains(tid), "{tid:?} echoed: {message}");
        }
        assert_eq!(
            connections.load(Ordering::SeqCst),
            0,
            "{tid:?}: a request was sent"
        );
    }
    // A GUID tenant is used as is.
    let ok = exchanger
        .exchange(
            &caller("72f988bf-86f1-41af-91ab-2d7cd011db47"),
            "user-token",
            &["https://graph.microsoft.com/.default"],
        )
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}
