//! Checks across sections that involve where the server runs, so they belong to the loader
//! (which alone sees the environment). Checks between two sections whose owner is clear
//! live in the owning module's `validate`, with the other value passed in:
//! `auth::Settings::validate(&entra)` (the Entra modes need `[entra]`),
//! and `telemetry::Settings::validate(listen)` (the metrics listener
//! is not the main one). Per-value rules (plain-http URLs only for loopback hosts, e.g.
//! `graph.base_url`) are in the deserializers (`de::https_url`).

use super::ServerSettings;
use super::platform;
use crate::auth::AuthMode;
use crate::config::{Env, Problem, is_loopback_authority, is_loopback_url, trim_slash};
use crate::obo::{OboGrant, Settings as OboSettings};

/// `auth.mode = oidc` with the Entra grant needs `obo.token_endpoint`: without it the Entra
/// endpoint is built per caller from the token's tenant claim, which a non-Entra issuer's
/// tokens can set to anything.
pub(super) fn oidc_entra_grant(mode: AuthMode, obo: &OboSettings) -> Option<Problem> {
    (mode == AuthMode::Oidc
        && obo.grant == OboGrant::EntraObo
        && obo.client_assertion.is_some()
        && obo.token_endpoint.is_none())
    .then(|| Problem::new(
        "obo.token_endpoint",
        "required with auth.mode = oidc and obo.grant = entra_obo: set MCP_OBO__OBO__TOKEN_ENDPOINT (obo.token_endpoint) to the Entra token endpoint to exchange at, e.g. https://login.microsoftonline.com/<tenant id>/oauth2/v2.0/token, or use obo.grant = token_exchange with the issuer's own token endpoint",
    ))
}

/// `auth.mode = none` (no inbound authorization: every request runs tools as the local
/// developer) is for local use only: refused on a public listen address, when the server is
/// told it is reached under a name or through a peer that is not loopback (a tunnel), on a
/// hosting platform, where the public reaches even a loopback address (the Functions host
/// forwards to a handler on 127.0.0.1), and in a development environment whose port
/// forwarding can publish a loopback port.
pub(super) fn auth_none(mode: AuthMode, server: &ServerSettings, env: &Env) -> Vec<Problem> {
    let mut problems = Vec::new();
    if mode != AuthMode::None {
        return problems;
    }
    let listen = server.listen;
    if !listen.ip().is_loopback() {
        problems.push(Problem::new(
            "auth.mode",
            format!(
                "\"none\" (no inbound authorization) is allowed only on a loopback listen address, but server.listen is {listen}; listen on 127.0.0.1 or configure authorization"
            ),
        ));
    }
    let public = [
        (
            "server.public_url",
            (!is_loopback_url(&server.public_url))
                .then(|| format!("{:?}", trim_slash(&server.public_url))),
        ),
        (
            "server.allowed_hosts",
            non_loopback(&server.allowed_hosts, |h| is_loopback_authority(h)),
        ),
        (
            "server.allowed_origins",
            non_loopback(&server.allowed_origins, |o| {
                url::Url::parse(o).is_ok_and(|u| is_loopback_url(&u))
            }),
        ),
        (
            "server.trusted_proxies",
            non_loopback(&server.trusted_proxies, |ip| ip.is_loopback()),
        ),
    ];
    for (key, found) in public {
        if let Some(found) = found {
            problems.push(Problem::new(
                key,
                format!(
                    "names {found}, which is not loopback, but auth.mode is \"none\" (every request runs tools as the local developer): a tunnel or proxy would let anyone reach it; keep {key} to localhost, 127.0.0.1 or [::1], or set auth.mode (MCP_OBO__AUTH__MODE) to entra, easyauth or oidc"
                ),
            ));
        }
    }
    for (found, kind) in [
        (
            platform::hosting_platform(env),
            "a hosting platform, where the public can reach the server even on a loopback address",
        ),
        (
            platform::port_forwarder(env),
            "a development environment whose port forwarding can publish a loopback port to the internet",
        ),
    ] {
        if !found.is_empty() {
            problems.push(Problem::new(
                "auth.mode",
                format!(
                    "\"none\" (no inbound authorization) is refused on {kind} ({}); set auth.mode (MCP_OBO__AUTH__MODE) to entra, easyauth or oidc",
                    found.join(", ")
                ),
            ));
        }
    }
    problems
}

/// The entries that are not loopback, joined for a message; `None` when all are.
fn non_loopback<T: std::fmt::Display>(
    entries: &[T],
    is_loopback: impl Fn(&T) -> bool,
) -> Option<String> {
    let found: Vec<String> = entries
        .iter()
        .filter(|e| !is_loopback(e))
        .map(|e| format!("{:?}", e.to_string()))
        .collect();
    (!found.is_empty()).then(|| found.join(", "))
}
