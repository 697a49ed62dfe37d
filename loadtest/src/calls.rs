//! Single MCP calls with reqwest, counted one by one: the warm-up, the cold start and the
//! exact-count runs (wrk only counts; these check and count each call).

use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::StreamExt;

use crate::server::Server;

pub const PROTOCOL: &str = "2025-06-18";
pub const ACCEPT: &str = "application/json, text/event-stream";
/// As `load.lua`'s `hello` (and `proxy`) mode.
pub const HELLO_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"HelloTool","arguments":{}}}"#;
/// As `load.lua`'s `events` mode.
const EVENTS_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"UpcomingEvents","arguments":{"top":10}}}"#;

/// The tool a counted call calls.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Hello,
    /// UpcomingEvents: its own token (`Calendars.Read`), one calendarView page.
    Events,
}

#[derive(Debug)]
#[allow(dead_code)] // the fields are for the Debug output in failure reports
pub enum CallError {
    Transport(String),
    Status(u16, String),
    NotSuccess(String),
}

pub async fn call_hello(client: &reqwest::Client, url: &str, token: &str) -> Result<(), CallError> {
    call_tool(client, url, token, Tool::Hello).await
}

/// A stateless MCP POST to `url` with `token`, as load.lua sends it; the body is the caller's.
pub fn mcp_post(client: &reqwest::Client, url: &str, token: &str) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT)
        .header("mcp-protocol-version", PROTOCOL)
        .header("authorization", format!("Bearer {token}"))
}

async fn call_tool(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    tool: Tool,
) -> Result<(), CallError> {
    let response = mcp_post(client, url, token)
        .body(match tool {
            Tool::Hello => HELLO_BODY,
            Tool::Events => EVENTS_BODY,
        })
        .send()
        .await
        .map_err(|e| CallError::Transport(e.to_string()))?;
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| CallError::Transport(e.to_string()))?;
    if status != 200 {
        return Err(CallError::Status(status, text));
    }
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|_| CallError::NotSuccess(text.clone()))?;
    let content = &value["result"]["structuredContent"];
    let answered = match tool {
        Tool::Hello => content["email"].is_string(),
        Tool::Events => content["events"].as_array().is_some_and(|e| !e.is_empty()),
    };
    if value["result"]["isError"] == false && answered {
        Ok(())
    } else {
        Err(CallError::NotSuccess(text))
    }
}

/// Calls HelloTool once per entry of `tokens` (in order, `concurrency` at a time).
/// Returns the failures (and the first one).
pub async fn call_each(url: &str, tokens: &[&str], concurrency: usize) -> (usize, Option<String>) {
    call_each_with(Tool::Hello, url, tokens, concurrency).await
}

/// [`call_each`] of `tool`.
pub async fn call_each_with(
    tool: Tool,
    url: &str,
    tokens: &[&str],
    concurrency: usize,
) -> (usize, Option<String>) {
    let client = reqwest::Client::new();
    let results: Vec<Result<(), CallError>> = futures_util::stream::iter(tokens.iter())
        .map(|t| {
            let client = &client;
            async move { call_tool(client, url, t, tool).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let failures: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| format!("{e:?}")))
        .collect();
    (failures.len(), failures.into_iter().next())
}

/// Each token's first HelloTool call, one after another on one connection: how long each
/// took.
pub async fn time_each(url: &str, tokens: &[&str]) -> Result<Vec<Duration>> {
    let client = reqwest::Client::new();
    let mut times = Vec::with_capacity(tokens.len());
    for token in tokens {
        let started = Instant::now();
        if let Err(e) = call_hello(&client, url, token).await {
            bail!("a timed call failed: {e:?}");
        }
        times.push(started.elapsed());
    }
    Ok(times)
}

pub struct ColdStart {
    pub total: Duration,
    pub accept: Duration,
    pub retries: u32,
}

/// exec → the port accepts → the first successful authenticated HelloTool call.
pub fn cold_start(
    rt: &tokio::runtime::Runtime,
    binary: &Path,
    env: &[(String, String)],
    token: &str,
) -> Result<ColdStart> {
    let port = mcp_obo_testkit::free_port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let client = reqwest::Client::new();
    let started = Instant::now();
    let server = Server::spawn(binary, port, env)?;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() >= Duration::from_secs(20) {
            bail!("cold start: port never accepted");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let accept = started.elapsed();
    let mut retries = 0;
    loop {
        match rt.block_on(call_hello(&client, &url, token)) {
            Ok(()) => break,
            // Keys not fetched yet (503) or the listener not yet serving: try again.
            Err(CallError::Status(503, _) | CallError::Transport(_))
                if started.elapsed() < Duration::from_secs(20) =>
            {
                retries += 1;
                std::thread::sleep(Duration::from_micros(500));
            }
            Err(e) => bail!("cold start: first call failed: {e:?}"),
        }
    }
    let total = started.elapsed();
    drop(server);
    Ok(ColdStart {
        total,
        accept,
        retries,
    })
}
