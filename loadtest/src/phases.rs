//! The measurements around the wrk runs: the users' tokens, memory (idle, then 10,000
//! users), starting and warming the two load servers, and the exact exchange count.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::calls::{Tool, call_each, call_each_with};
use crate::fakes::{self, Fakes};
use crate::options::Options;
use crate::server::{LogTap, Server};
use crate::{
    CLIENT_CONCURRENCY, EXCHANGE_CALLS, EXCHANGE_USERS, FirstFailure, MEMORY_USERS, write_lines,
};

/// The users' tokens, each set for its own measurement, and the load users' token file.
pub struct Users {
    /// Rotated by the wrk runs (`opts.users` of them, with 10 calendar events each).
    pub load: Vec<String>,
    pub exchange: Vec<String>,
    pub memory: Vec<String>,
    pub cold: String,
    pub file: PathBuf,
}

impl Users {
    pub fn mint(fakes: &Fakes, load_users: usize, dir: &Path) -> Result<Self> {
        let load = fakes.mint("load", load_users);
        let exchange = fakes.mint("xchg", EXCHANGE_USERS);
        let memory = fakes.mint("mem", MEMORY_USERS);
        let cold = fakes.mint("cold", 1).remove(0);
        let file = dir.join("users.txt");
        write_lines(&file, &load)?;
        for n in 0..load_users {
            fakes
                .graph
                .set_events(&format!("load-{n}"), fakes::calendar(10));
        }
        Ok(Self {
            load,
            exchange,
            memory,
            cold,
            file,
        })
    }
}

/// A fresh auth server's memory, idle and after [`MEMORY_USERS`] users called it once each.
/// VmRSS counts the binary's mapped pages too (shared, reclaimable page cache); RssAnon is
/// the process's own memory (heap, stacks), so both are reported.
pub struct Memory {
    pub rss_idle_kb: u64,
    /// RssAnon: the process's own pages, without the mapped binary.
    pub anon_idle_kb: u64,
    pub rss_10k_kb: u64,
    pub anon_10k_kb: u64,
    pub hwm_10k_kb: u64,
    pub exchanges: usize,
    pub failures: usize,
}

/// [`Memory`], and the server's log tap.
pub fn memory(
    rt: &tokio::runtime::Runtime,
    opts: &Options,
    fakes: &Fakes,
    auth_env: &[(String, String)],
    users: &[String],
    failures: &mut FirstFailure,
) -> Result<(Memory, Arc<LogTap>)> {
    let mut server = Server::spawn(&opts.binary, mcp_obo_testkit::free_port(), auth_env)?;
    rt.block_on(server.wait_ready())?;
    std::thread::sleep(Duration::from_millis(300));
    let idle = (server.status_kb("VmRSS:"), server.status_kb("RssAnon:"));
    let before = fakes.issuer.exchanges();
    let tokens: Vec<&str> = users.iter().map(String::as_str).collect();
    let (failed, first) = rt.block_on(call_each(&server.url("/mcp"), &tokens, CLIENT_CONCURRENCY));
    failures.note(first);
    std::thread::sleep(Duration::from_millis(300));
    let memory = Memory {
        rss_idle_kb: idle.0,
        anon_idle_kb: idle.1,
        rss_10k_kb: server.status_kb("VmRSS:"),
        anon_10k_kb: server.status_kb("RssAnon:"),
        hwm_10k_kb: server.status_kb("VmHWM:"),
        exchanges: fakes.issuer.exchanges() - before,
        failures: failed,
    };
    Ok((memory, server.log.clone()))
}

/// The two load servers, the auth one's OBO cache warm for every load user.
pub struct LoadServers {
    /// `auth.mode = oidc`.
    pub auth: Server,
    /// `auth.mode = none`.
    pub none: Server,
    pub warm_exchanges: usize,
    pub warm_failures: usize,
    /// The downstream tokens the HelloTool warm-up made the issuer mint: `/v1.0/me` accepts
    /// them.
    pub downstream: Vec<String>,
}

pub fn load_servers(
    rt: &tokio::runtime::Runtime,
    opts: &Options,
    fakes: &Fakes,
    auth_env: &[(String, String)],
    users: &[String],
    failures: &mut FirstFailure,
) -> Result<LoadServers> {
    let mut auth = Server::spawn(&opts.binary, mcp_obo_testkit::free_port(), auth_env)?;
    let mut none = Server::spawn(&opts.binary, mcp_obo_testkit::free_port(), &[])?;
    rt.block_on(auth.wait_ready())?;
    rt.block_on(none.wait_ready())?;
    let before = fakes.issuer.exchanges();
    let issued_before = fakes.issuer.issued_tokens().len();
    let tokens: Vec<&str> = users.iter().map(String::as_str).collect();
    let (hello_failures, first) =
        rt.block_on(call_each(&auth.url("/mcp"), &tokens, CLIENT_CONCURRENCY));
    failures.note(first);
    // HelloTool's tokens (User.Read) only: `/v1.0/me` answers an UpcomingEvents token
    // (Calendars.Read) with 403.
    let downstream = fakes
        .issuer
        .issued_tokens()
        .get(issued_before..)
        .context("the issuer forgot tokens it issued")?
        .to_vec();
    // UpcomingEvents has its own token per user (Calendars.Read): warm those too.
    let (events_failures, first) = rt.block_on(call_each_with(
        Tool::Events,
        &auth.url("/mcp"),
        &tokens,
        CLIENT_CONCURRENCY,
    ));
    failures.note(first);
    Ok(LoadServers {
        auth,
        none,
        warm_exchanges: fakes.issuer.exchanges() - before,
        warm_failures: hello_failures + events_failures,
        downstream,
    })
}

/// [`EXCHANGE_CALLS`] HelloTool calls from the [`EXCHANGE_USERS`] new users: (failed calls,
/// token exchanges), which must be exactly one per user.
pub fn exchange_count(
    rt: &tokio::runtime::Runtime,
    auth: &Server,
    fakes: &Fakes,
    users: &[String],
    failures: &mut FirstFailure,
) -> (usize, usize) {
    let before = fakes.issuer.exchanges();
    let calls: Vec<&str> = users
        .iter()
        .map(String::as_str)
        .cycle()
        .take(EXCHANGE_CALLS)
        .collect();
    let (failed, first) = rt.block_on(call_each(&auth.url("/mcp"), &calls, CLIENT_CONCURRENCY));
    failures.note(first);
    (failed, fakes.issuer.exchanges() - before)
}
