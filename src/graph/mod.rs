//! Microsoft Graph client.
//!
//! - `client.rs`: [`GraphClient`]: base URL per cloud, a token from
//!   [`crate::obo::DownstreamTokens`] for each call, one retry with a fresh token on 401
//!   (exchanged with the claims of a continuous-access-evaluation challenge, `challenge.rs`),
//!   bounded retries honouring `Retry-After` on 429/502/503/504, the spans and metrics.
//! - `http_client.rs`: the HTTP under it: hyper-util's pooled HTTP/1.1 client per calling
//!   thread (connect and total timeouts, no redirects, the environment's proxy rules, rustls
//!   with the platform verifier, a cap on the answer's size).
//! - `settings.rs`: [`Settings`], the `[graph]` section.
//! - `clouds.rs`: the Microsoft Graph cloud origins, the only ones (beside loopback) a Graph
//!   token may be sent to.
//! - `error.rs`: [`Error`], one variant per way a Graph call fails, with user-facing text.
//!
//! Returns the types its callers ask for ([`GraphClient::get`]); knows nothing of MCP.

mod client;
pub mod clouds;
mod error;
mod http_client;
mod settings;

pub use client::{BuildError, Endpoint, GraphClient};
pub use error::Error;
pub use settings::{ScopeMode, Settings};
