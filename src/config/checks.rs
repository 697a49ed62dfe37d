//! Checks across sections that involve where the server runs, so they belong to the loader
//! (which alone sees the environment). Checks between two sections whose owner is clear
//! live in the owning module's `validate`, with the other value passed in:
//! `auth::Settings::validate(&entra)` (the Entra modes need `[entra]`) and
//! `obo::Settings::validate(auth.mode)` (oidc with the Entra grant needs
//! `obo.token_endpoint`). Per-value rules (plain-http URLs only for loopback hosts, e.g.
//! `graph.base_url`) are in the deserializers (`de::https_url`).

use std::net::SocketAddr;

use super::{Env, Problem, platform};
use crate::auth::AuthMode;

/// `auth.mode = none` (no inbound authorization) is for local use only: refused on a
/// public listen address and on a hosting platform, where the public reaches even a
/// loopback address (the Functions host forwards to a handler on 127.0.0.1).
pub(super) fn auth_none(mode: AuthMode, listen: SocketAddr, env: &Env) -> Vec<Problem> {
    let mut problems = Vec::new();
    if mode != AuthMode::None {
        return problems;
    }
    if !listen.ip().is_loopback() {
        problems.push(Problem::new(
            "auth.mode",
            format!(
                "\"none\" (no inbound authorization) is allowed only on a loopback listen address, but server.listen is {listen}; listen on 127.0.0.1 or configure authorization"
            ),
        ));
    }
    let platform = platform::hosting_platform(env);
    if !platform.is_empty() {
        problems.push(Problem::new(
            "auth.mode",
            format!(
                "\"none\" (no inbound authorization) is refused on a hosting platform, where the public can reach the server even on a loopback address ({}); set auth.mode (MCP_OBO__AUTH__MODE) to entra, easyauth or oidc",
                platform.join(", ")
            ),
        ));
    }
    problems
}
