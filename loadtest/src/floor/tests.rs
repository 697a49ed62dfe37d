//! The Rust floor against the fake Graph, through a relay that counts the upstream
//! connections: one GET per POST, the caller's token on each, over kept-alive connections;
//! 502 without an upstream; the child's arguments.
//!
//! The floor runs in this process, its [`server`] on a thread of its own: the child process
//! is this tool's binary in [`MODE`], and a test binary has no such mode.

use std::ffi::OsString;
use std::thread::JoinHandle;

use super::{MODE, child_args, server};
use crate::proxy_check::Upstream;

const WORKERS: usize = 2;

/// The floor's server on its own thread (an actix system), stopped on drop.
struct InProcess {
    url: String,
    handle: actix_web::dev::ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl InProcess {
    fn start(upstream_url: &str) -> Self {
        let upstream = upstream_url
            .strip_prefix("http://")
            .expect("a plain HTTP upstream")
            .to_owned();
        // Bound here, so connections queue in its backlog until the workers accept them.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the floor");
        let url = format!(
            "http://{}/mcp",
            listener.local_addr().expect("floor address")
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = server(listener, &upstream, WORKERS).expect("the floor builds");
                tx.send(server.handle())
                    .expect("the test waits for the handle");
                server.await.expect("the floor serves");
            });
        });
        let handle = rx.recv().expect("the floor's server handle");
        Self {
            url,
            handle,
            thread: Some(thread),
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        // The stop command is sent when `stop` is called; the thread ends with the server.
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn each_post_becomes_one_upstream_get_with_its_token_over_kept_alive_connections() {
    let upstream = Upstream::start();
    let floor = InProcess::start(&upstream.url);
    upstream.post_each(&floor.url);
    upstream.assert_one_kept_alive_get_per_post(WORKERS);
}

#[test]
fn a_failed_upstream_is_a_502_and_the_floor_keeps_serving() {
    // A port that was free a moment ago: nothing listens there.
    let nowhere = format!("http://127.0.0.1:{}", mcp_obo_testkit::free_port());
    let floor = InProcess::start(&nowhere);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::new();
        for _ in 0..2 {
            let response = client
                .post(&floor.url)
                .header("authorization", "Bearer t")
                .body("{}")
                .send()
                .await
                .expect("the floor answers");
            let status = response.status();
            let body = response.text().await.expect("a body");
            assert_eq!(status, 502, "{body}");
            assert!(body.contains("GET /v1.0/me"), "{body}");
        }
    });
}

#[test]
fn the_child_reads_its_port_upstream_and_workers_and_names_a_bad_one() {
    let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>().into_iter();
    assert_eq!(
        child_args(args(&["8080", "127.0.0.1:9000", "2"])).expect("good arguments"),
        (8080, "127.0.0.1:9000".to_owned(), 2)
    );
    for (bad, named) in [
        (&["x", "127.0.0.1:9000", "2"][..], "port `x`"),
        (&["8080", "127.0.0.1:9000", "0"][..], "workers `0`"),
        (&["8080", "127.0.0.1:9000"][..], "expected <port>"),
    ] {
        let e = format!("{:#}", child_args(args(bad)).expect_err("refused"));
        assert!(e.contains(MODE) && e.contains(named), "{e}");
    }
}
