//! `mcp-obo dev`: the whole sign-in and on-behalf-of flow on one machine, with no cloud.
//!
//! - `provider/`: an Entra-like development identity provider: discovery (RFC 8414 and
//!   OIDC), JWKS, authorize with a sign-in page (code + PKCE S256), token (authorization
//!   code, refresh, on-behalf-of with a client assertion), dynamic client registration
//!   (RFC 7591) and client ID metadata documents, resource indicators (RFC 8707) and the
//!   `iss` authorization response parameter (RFC 9207).
//! - `consent.rs`: the consent and admin-consent pages a tool's consent link opens: they grant
//!   the asked Graph permissions to a dev user and return to the server's `/consent/complete`.
//! - `graph.rs`: a Microsoft Graph emulator (`/v1.0/me`, `/v1.0/me/calendarView`, the app
//!   registration) that checks the token's signature, audience and `scp`; `fixtures.rs` its
//!   per-user data.
//! - `registration.rs`: the dev app registration the Graph emulator serves (application,
//!   federated credential, service principals, admin consent), for `mcp-obo doctor`.
//! - `shapes.rs`: Graph's and Entra's JSON bodies, which the emulator serves and the test
//!   fakes re-use (public for them: the test kit re-exports it).
//! - `state/`: dev users, keys (persisted in the state folder), clients, pending sign-ins,
//!   codes and refresh tokens (bounded caches).
//! - `files.rs`: the state folder (0700) and its key and token files (created 0600).
//! - `loopback.rs`: the loopback `Host` check and the no-framing headers every answer
//!   goes through.
//! - `command.rs`: the `dev` command itself ([`DevArgs`], [`run`]): starts the two above and
//!   the production server, configured in Entra mode against them.
//!
//! # Security
//! Reachable only through `mcp-obo dev`, which binds loopback only; `serve` never imports
//! this module. Loopback is not a boundary for a browser, so the provider behaves as a real
//! authorization server there: requests must name a loopback host (DNS rebinding), the
//! sign-in form carries an anti-forgery token bound to its request, pages cannot be framed,
//! every in-memory store is bounded, client metadata fetches follow no redirects and tell
//! the browser nothing about what they found, and the keys are private files. The MCP server in dev runs the production code path (Entra mode, the same
//! validation, exchange and Graph client); only the endpoints differ.

mod command;
mod consent;
mod files;
mod fixtures;
mod graph;
mod loopback;
mod provider;
mod registration;
pub mod shapes;
mod state;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

pub use command::{DevArgs, run};
pub use state::{DevState, DevUser, default_users};

/// The dev tenant and the dev app registration of the MCP server.
pub const DEV_TENANT: &str = "00000000-0000-4000-8000-0000000000de";
pub const DEV_APP: &str = "00000000-0000-4000-8000-0000000000a1";
/// Subject of the development managed identity the app's federated credential trusts.
pub const DEV_MANAGED_IDENTITY: &str = "00000000-0000-4000-8000-0000000000f1";
/// Audience of federated client assertions.
pub const EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Why the dev environment could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("mcp-obo dev listens on loopback only; {0} is not a loopback address")]
    NotLoopback(IpAddr),
    #[error("cannot listen on {addr}: {source}; pass --port to choose other ports")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot use the state folder {path}: {source}")]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create signing keys: {0}")]
    Keys(String),
    #[error(
        "cannot build the HTTP client that fetches client metadata documents: {0}; check the platform's TLS trust store"
    )]
    Http(String),
}

/// The running identity provider and Graph emulator.
pub struct DevServices {
    pub idp_base: String,
    pub graph_base: String,
    pub federated_token_file: PathBuf,
    /// A Graph token for the operator (`mcp-obo doctor --graph-token-file`).
    pub graph_token_file: PathBuf,
    pub state: Arc<DevState>,
    servers: Vec<actix_web::dev::Server>,
}

impl DevServices {
    /// The identity provider's Entra-style authority host (`{authority}/{tenant}/v2.0`).
    pub fn authority(&self) -> &str {
        &self.idp_base
    }

    /// Runs the providers until stopped (spawned on the current actix system).
    pub fn spawn(&mut self) {
        for server in self.servers.drain(..) {
            actix_web::rt::spawn(server);
        }
    }
}

/// Starts the identity provider on `idp_port` and the Graph emulator on `graph_port` (0 =
/// any), both on 127.0.0.1, for an MCP server whose resource URLs are `mcp_resources`.
///
/// # Errors
/// [`Error`] when a port is taken or the state folder is unusable.
pub fn start(
    idp_port: u16,
    graph_port: u16,
    state_dir: &Path,
    mcp_resources: Vec<String>,
    users: Vec<DevUser>,
) -> Result<DevServices, Error> {
    let (idp_listener, idp_addr) = listen(idp_port)?;
    let (graph_listener, graph_addr) = listen(graph_port)?;
    let idp_base = format!("http://127.0.0.1:{}", idp_addr.port());
    let graph_base = format!("http://127.0.0.1:{}", graph_addr.port());

    files::private_dir(state_dir).map_err(|source| Error::State {
        path: state_dir.to_path_buf(),
        source,
    })?;
    let state = Arc::new(DevState::load(
        state_dir,
        &idp_base,
        &graph_base,
        mcp_resources,
        users,
    )?);
    let federated_token_file = state_dir.join("federated-token");
    state.write_federated_token(&federated_token_file)?;
    let graph_token_file = state_dir.join("graph-token");
    state.write_operator_graph_token(&graph_token_file)?;

    let idp = serve(idp_listener, idp_addr, &state, provider::routes)?;
    let graph = serve(graph_listener, graph_addr, &state, graph::routes)?;
    Ok(DevServices {
        idp_base,
        graph_base,
        federated_token_file,
        graph_token_file,
        state,
        servers: vec![idp, graph],
    })
}

/// A listener on 127.0.0.1:`port` (0 = any) and the address it got.
fn listen(port: u16) -> Result<(TcpListener, SocketAddr), Error> {
    let requested = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let listener = TcpListener::bind(requested).map_err(|source| Error::Bind {
        addr: requested,
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: requested,
        source,
    })?;
    Ok((listener, addr))
}

/// One of the two servers: `routes` behind the loopback `Host` check and the no-framing
/// headers, on one worker.
fn serve(
    listener: TcpListener,
    addr: SocketAddr,
    state: &Arc<DevState>,
    routes: fn(&mut web::ServiceConfig),
) -> Result<actix_web::dev::Server, Error> {
    let data = web::Data::from(state.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .configure(routes)
            .wrap(loopback::no_framing())
            .wrap(from_fn(loopback::only_loopback_host))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(|source| Error::Bind { addr, source })?
    .run();
    Ok(server)
}
