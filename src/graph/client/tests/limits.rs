//! Limits: the answer's size cap (announced or streamed) and the total and connect
//! timeouts.

use super::*;

#[tokio::test]
async fn an_announced_body_over_the_cap_is_refused_unread() {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY + 1
    );
    // The body never comes: refusing must not wait for it.
    let server = scripted(vec![Step::AnswerAndHang(head.into_bytes())]).await;
    let err = me(&client(&settings(&server.url)))
        .await
        .expect_err("too large");
    assert!(matches!(err, Error::Malformed { .. }), "{err:?}");
    assert!(err.to_string().contains("larger than 4 MiB"), "{err}");
}

#[tokio::test]
async fn a_streamed_body_over_the_cap_is_refused() {
    // Chunked, so no length is announced: 64 KiB chunks until past the cap.
    let chunk = vec![b' '; 64 * 1024];
    let mut answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..=(MAX_BODY / chunk.len()) {
        answer.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        answer.extend_from_slice(&chunk);
        answer.extend_from_slice(b"\r\n");
    }
    answer.extend_from_slice(b"0\r\n\r\n");
    let server = scripted(vec![Step::Answer(answer)]).await;
    let err = me(&client(&settings(&server.url)))
        .await
        .expect_err("too large");
    assert!(err.to_string().contains("larger than 4 MiB"), "{err}");
}

#[tokio::test]
async fn a_body_at_the_cap_is_read() {
    // The same framing, one chunk fewer: a body of exactly the cap (JSON after spaces).
    let mut body = vec![b' '; MAX_BODY - ME.len()];
    body.extend_from_slice(ME.as_bytes());
    let mut answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in body.chunks(64 * 1024) {
        answer.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        answer.extend_from_slice(part);
        answer.extend_from_slice(b"\r\n");
    }
    answer.extend_from_slice(b"0\r\n\r\n");
    let server = scripted(vec![Step::Answer(answer)]).await;
    let profile = me(&client(&settings(&server.url)))
        .await
        .expect("a body of exactly the cap");
    assert_eq!(profile.display_name.as_deref(), Some("Ada"));
}

#[tokio::test]
async fn gives_up_after_the_total_timeout_before_or_during_the_body() {
    for answered in [
        Vec::new(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"id\":".to_vec(),
    ] {
        let server = scripted(vec![Step::AnswerAndHang(answered)]).await;
        let mut s = settings(&server.url);
        s.timeout = Duration::from_millis(200);
        let err = me(&client(&s)).await.expect_err("timeout");
        assert!(
            matches!(err, Error::Timeout { timeout } if timeout == s.timeout),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn gives_up_after_the_connect_timeout() {
    // A listener with a full accept queue: Linux drops further SYNs (unless
    // net.ipv4.tcp_abort_on_overflow is set), so the next connect never completes.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let addr = socket.local_addr().expect("address");
    let _listener = socket.listen(0).expect("listen");
    let _fills_the_queue = tokio::net::TcpStream::connect(addr)
        .await
        .expect("first connect");
    let mut s = settings(&Url::parse(&format!("http://{addr}")).expect("url"));
    s.connect_timeout = Duration::from_millis(200);
    s.timeout = Duration::from_secs(30);
    let err = me(&client(&s)).await.expect_err("connect timeout");
    assert!(
        matches!(err, Error::Timeout { timeout } if timeout == s.connect_timeout),
        "{err:?}"
    );
}
