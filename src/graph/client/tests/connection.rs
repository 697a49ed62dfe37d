//! Framing and connections: the request as sent, keep-alive and a closed idle connection,
//! answers that are no HTTP, redirects, nothing listening and an untrusted certificate.

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use super::*;

#[tokio::test]
async fn sends_the_token_as_a_get_and_reuses_the_connection() {
    let server = scripted(vec![Step::Answer(ok()), Step::Answer(ok())]).await;
    let graph = client(&settings(&server.url));
    let profile = me(&graph).await.expect("profile");
    assert_eq!(profile.display_name.as_deref(), Some("Ada"));
    me(&graph).await.expect("second profile");

    let requests = server.requests();
    let head = requests[0].1.to_ascii_lowercase();
    assert!(head.starts_with("get /v1.0/me http/1.1\r\n"), "{head}");
    assert!(
        head.contains("\r\nauthorization: bearer t0k.en\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\naccept: application/json\r\n"), "{head}");
    assert!(head.contains("\r\nuser-agent: mcp-obo/"), "{head}");
    assert_eq!(
        server.connections(),
        [1, 1],
        "the keep-alive connection is reused"
    );
}

#[tokio::test]
async fn an_idle_connection_the_server_closed_does_not_fail_the_next_call() {
    // Each answer keeps the connection alive as far as HTTP says; once the call has
    // returned (the connection is back in the pool), the server closes it, as load
    // balancers do with idle connections. The next call, made right away, must still
    // succeed on a new connection. (What makes it work: hyper's connection task reads
    // before it writes, sees the close and cancels the unwritten request, and
    // hyper-util's pool sends it again on a new connection, `retry_canceled_requests`;
    // or the pool has already dropped the closed connection.)
    const ROUNDS: usize = 20;
    let server = scripted(
        (0..ROUNDS)
            .map(|_| Step::AnswerThenCloseWhenTold(ok()))
            .collect(),
    )
    .await;
    let graph = client(&settings(&server.url));
    for round in 0..ROUNDS {
        me(&graph)
            .await
            .unwrap_or_else(|e| panic!("call {round}: {e}"));
        server.close_now.notify_one();
        server.closed.notified().await;
    }
    let expected: Vec<usize> = (1..=ROUNDS).collect();
    assert_eq!(
        server.connections(),
        expected,
        "each request sent once, each on a new connection"
    );
}

#[tokio::test]
async fn a_new_connection_closed_without_an_answer_is_unreachable_and_not_resent() {
    let server = scripted(vec![Step::Close, Step::Answer(ok())]).await;
    let err = me(&client(&settings(&server.url)))
        .await
        .expect_err("no answer");
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert_eq!(server.requests().len(), 1, "the GET is not sent again");
}

#[tokio::test]
async fn an_answer_that_is_not_http_is_malformed() {
    let server = scripted(vec![Step::Answer(b"HTTP/1.1 2OO OK\r\n\r\n".to_vec())]).await;
    let err = me(&client(&settings(&server.url)))
        .await
        .expect_err("refused");
    assert!(
        err.to_string().contains("could not be read as HTTP"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_redirect_is_an_error_and_the_token_goes_nowhere_else() {
    let elsewhere = scripted(vec![Step::Answer(ok())]).await;
    let redirect = format!(
        "HTTP/1.1 302 Found\r\nLocation: {}v1.0/me\r\nContent-Length: 0\r\n\r\n",
        elsewhere.url
    );
    let server = scripted(vec![Step::Answer(redirect.into_bytes())]).await;
    let err = me(&client(&settings(&server.url)))
        .await
        .expect_err("not followed");
    assert!(
        matches!(err, Error::Unexpected { status: 302, .. }),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 1);
    assert!(elsewhere.requests().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    // A port nothing listens on: bind, note it, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let url = Url::parse(&format!("http://127.0.0.1:{port}")).expect("url");
    let err = me(&client(&settings(&url))).await.expect_err("refused");
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
}

#[tokio::test]
async fn https_refuses_a_certificate_the_platform_does_not_trust() {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .expect("params")
        .self_signed(&key)
        .expect("self-signed");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let mut tls = acceptor.accept(stream).await?;
        // Only reached if the client trusted the certificate: whatever it sent.
        let mut request = Vec::new();
        tls.read_to_end(&mut request).await?;
        Ok::<_, std::io::Error>(request)
    });
    let url = Url::parse(&format!("https://localhost:{port}")).expect("url");
    let err = me(&client(&settings(&url)))
        .await
        .expect_err("an untrusted certificate");
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    let handshake = server.await.expect("server task");
    assert!(
        handshake.is_err(),
        "the client completed the handshake and sent {handshake:?}"
    );
}
