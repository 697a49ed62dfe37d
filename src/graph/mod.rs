//! Microsoft Graph client.
//!
//! - `client.rs`: [`GraphClient`]: base URL per cloud, one shared reqwest client (keep-alive
//!   pool, connect and total timeouts, no redirects, the environment's proxy, a cap on the
//!   answer's size), a token from [`crate::obo::DownstreamTokens`] for each call, one retry
//!   with a fresh token on 401, bounded retries honouring `Retry-After` on 429/502/503/504.
//! - `settings.rs`: [`Settings`], the `[graph]` section.
//! - `error.rs`: [`Error`], one variant per way a Graph call fails, with user-facing text.
//!
//! Returns typed values ([`Me`]); knows nothing of MCP.

mod client;
mod error;
mod settings;

pub use client::{BuildError, GraphClient, Me};
pub use error::Error;
pub use settings::Settings;
