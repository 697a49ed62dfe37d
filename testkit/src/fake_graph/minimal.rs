//! [`super::FakeGraph::start_minimal`]'s server: a bare HTTP/1.1 keep-alive loop, so a load
//! run charges as little of the fake's CPU as possible to the cores the server under test
//! shares.

use std::sync::Arc;

use axum::http::StatusCode;

use super::GraphState;
use super::answers::respond;

/// One connection of [`FakeGraph::start_minimal`]: HTTP/1.1 keep-alive, `GET /v1.0/me` only.
pub(super) async fn serve_minimal(mut stream: tokio::net::TcpStream, state: Arc<GraphState>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(4096);
    let mut out = Vec::with_capacity(1024);
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        let parsed = match request.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => Some(n),
            Ok(httparse::Status::Partial) => None,
            Err(_) => {
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                return;
            }
        };
        let Some(n) = parsed else {
            if matches!(stream.read_buf(&mut buf).await, Ok(0) | Err(_)) {
                return;
            }
            continue;
        };
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .and_then(|h| std::str::from_utf8(h.value).ok())
        };
        let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        // Graph's GETs carry no body; one here means the client is out of step.
        let has_body = header("content-length").is_some_and(|v| v.trim() != "0")
            || header("transfer-encoding").is_some();
        let (status, body) = if has_body {
            (StatusCode::BAD_REQUEST, axum::body::Bytes::new())
        } else if request.method != Some("GET") {
            (StatusCode::METHOD_NOT_ALLOWED, axum::body::Bytes::new())
        } else {
            let target = request.path.unwrap_or_default();
            let (path, query) = match target.split_once('?') {
                Some((path, query)) => (path, Some(query)),
                None => (target, None),
            };
            let token = header("authorization").and_then(|v| v.strip_prefix("Bearer "));
            respond(&state, path, query, token)
        };
        let status = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or_default()
        );
        buf.drain(..n);
        out.clear();
        out.extend_from_slice(
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&body);
        if stream.write_all(&out).await.is_err() || close || has_body {
            return;
        }
    }
}
