//! A body trickled past `server.body_timeout` gets 408 and its connection closed; one that
//! arrives in parts within the deadline is served. Each through every reader of the body.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{GRAPH_TOKEN, PATIENCE, head, limited};
use crate::support::fake_graph::FakeGraph;
use crate::support::{StaticTokens, spawn_app};

/// Which part of the server reads the body first.
#[derive(Debug, Clone, Copy)]
enum Reader {
    /// The rate limit's peek (`mcp/tool_access.rs`), on by default.
    Peek,
    /// The stateless fast path (`mcp/direct.rs`), with the rate limit off.
    FastPath,
    /// rmcp's transport, with the rate limit and the fast path off.
    Rmcp,
}

impl Reader {
    fn env(self) -> Vec<(&'static str, &'static str)> {
        match self {
            Self::Peek => vec![],
            Self::FastPath => vec![("MCP_OBO__SERVER__RATE_LIMIT", "off")],
            Self::Rmcp => vec![
                ("MCP_OBO__SERVER__RATE_LIMIT", "off"),
                ("MCP_OBO__SERVER__FAST_PATH", "false"),
            ],
        }
    }
}

/// The status, the lower-cased head and the JSON body of a raw HTTP/1.1 answer.
fn parse_answer(raw: &[u8]) -> (u16, String, Value) {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let head = head.to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (
        status,
        head,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    )
}

/// A chunked body's data.
fn dechunk(mut rest: &str) -> String {
    let mut data = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        data.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    data
}

#[rstest::rstest]
#[tokio::test]
async fn a_body_sent_too_slowly_gets_408_and_its_connection_is_closed(
    #[values(Reader::Peek, Reader::FastPath, Reader::Rmcp)] reader: Reader,
    #[values(false, true)] trickle: bool,
) {
    let mut env = reader.env();
    env.push(("MCP_OBO__SERVER__BODY_TIMEOUT", "200ms"));
    let app = spawn_app(&env, StaticTokens::new(GRAPH_TOKEN));
    let before = limited("body_timeout");
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"HelloTool"}}"#;
    let announced = body.len() + 1000;
    let stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(format!("{}{}", head(&app, announced, ""), &body[..20]).as_bytes())
        .await
        .expect("send the head and part of the body");
    // The client never completes the body; trickling, it keeps bytes coming (JSON whitespace,
    // one every 50 ms) as a slow-loris client does.
    let trickler = tokio::spawn(async move {
        for _ in 0..announced {
            if !trickle || write.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        write
    });
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, read.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes the connection instead of waiting for the body")
        .expect("read the answer");
    trickler.abort();
    let (status, head, body) = parse_answer(&answer);
    assert_eq!(status, 408, "{}", String::from_utf8_lossy(&answer));
    assert!(head.contains("connection: close"), "{head}");
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["error"]["code"], -32600, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("server.body_timeout")),
        "{body}"
    );
    assert!(limited("body_timeout") > before, "counted in /metrics");
}

#[rstest::rstest]
#[tokio::test]
async fn a_body_that_arrives_in_parts_within_the_deadline_is_served(
    #[values(Reader::Peek, Reader::FastPath, Reader::Rmcp)] reader: Reader,
) {
    let graph = FakeGraph::with_ada(GRAPH_TOKEN).await;
    let mut env = reader.env();
    env.extend([
        ("MCP_OBO__SERVER__BODY_TIMEOUT", "5s"),
        ("MCP_OBO__GRAPH__BASE_URL", graph.url.as_str()),
    ]);
    let app = spawn_app(&env, StaticTokens::new(GRAPH_TOKEN));
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"HelloTool"}}"#;
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    // The head alone, asking to continue: actix answers `100 Continue` once it has dispatched
    // the request, whose readers are then waiting for a body that has not been sent.
    let head = head(
        &app,
        body.len(),
        "Connection: close\r\nExpect: 100-continue\r\n",
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("send the head");
    let mut interim = [0u8; 25];
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut interim))
        .await
        .expect("the server answers the head")
        .expect("read the interim answer");
    assert_eq!(
        &interim,
        b"HTTP/1.1 100 Continue\r\n\r\n",
        "{}",
        String::from_utf8_lossy(&interim)
    );
    let (first, rest) = body.split_at(20);
    for part in [first, rest] {
        stream
            .write_all(part.as_bytes())
            .await
            .expect("send a part of the body");
    }
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("the server answers")
        .expect("read the answer");
    let (status, _, body) = parse_answer(&answer);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(body["id"], 7, "{body}");
    assert_eq!(body["result"]["isError"], false, "{body}");
}
