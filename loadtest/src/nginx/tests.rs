//! The reference proxy against the fake Graph, through a relay that counts the upstream
//! connections: one GET per POST, the caller's token on each, over kept-alive connections.

use super::{Nginx, installed};
use crate::proxy_check::Upstream;

const WORKERS: usize = 2;

#[test]
fn each_post_becomes_one_upstream_get_with_its_token_over_kept_alive_connections() {
    if !installed() {
        if std::env::var_os("MCP_OBO_TEST_NO_NGINX").is_some() {
            eprintln!("skipped: nginx is not installed and MCP_OBO_TEST_NO_NGINX is set");
            return;
        }
        panic!(
            "nginx is not installed: run scripts/setup-test-tools.sh (it installs Debian's \
             nginx-light), or set MCP_OBO_TEST_NO_NGINX=1 to skip this test"
        );
    }
    let upstream = Upstream::start();
    let nginx = Nginx::start(&upstream.url, WORKERS, 64).expect("nginx starts");
    assert_eq!(nginx.workers(), WORKERS);
    assert_eq!(
        nginx.pids().len(),
        WORKERS + 1,
        "the master and its workers"
    );
    upstream.post_each(&nginx.url("/mcp"));
    upstream.assert_one_kept_alive_get_per_post(WORKERS);
}
