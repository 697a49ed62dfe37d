//! Microsoft Graph client.
//!
//! - `client.rs`: [`GraphClient`]: base URL per cloud, connect and total timeouts, a token
//!   from [`crate::obo::DownstreamTokens`] for each call, one retry with a fresh token on
//!   401, bounded retries honouring `Retry-After` on 429/502/503/504.
//! - `transport.rs`: the HTTP/1.1 GET itself: a lean per-worker keep-alive client, or
//!   reqwest when the environment names a proxy.
//! - `settings.rs`: [`Settings`], the `[graph]` section.
//! - `error.rs`: [`Error`], one variant per way a Graph call fails, with user-facing text.
//!
//! Returns typed values ([`Me`]); knows nothing of MCP.

mod client;
mod error;
mod settings;
mod transport;

pub use client::{GraphClient, Me};
pub use error::Error;
pub use settings::Settings;
pub use transport::BuildError;
