//! Outbound tokens: how a tool gets a token for a downstream API (Microsoft Graph) that
//! acts for its caller.
//!
//! - `token.rs`: [`AccessToken`], a downstream token whose `Debug` is redacted.
//! - `error.rs`: [`Error`], each variant with text that tells the user what to do.
//! - `developer.rs`: [`DeveloperTokens`], the local mode (`auth.mode = none`): the developer's
//!   own Azure CLI / Azure Developer CLI sign-in, through azure_identity.
//!
//! Tools ask [`DownstreamTokens`] and never see how the token was obtained, so the
//! on-behalf-of exchange (client assertion + the caller's token → token endpoint) plugs in
//! behind the same trait.

mod developer;
mod error;
mod token;

use async_trait::async_trait;

use crate::auth::Caller;

pub use developer::DeveloperTokens;
pub use error::Error;
pub use token::AccessToken;

/// The token source when inbound authorization is on but no exchange is configured.
pub struct Unconfigured;

#[async_trait]
impl DownstreamTokens for Unconfigured {
    async fn token(&self, _caller: &Caller, _scopes: &[&str]) -> Result<AccessToken, Error> {
        Err(Error::NotConfigured)
    }

    async fn invalidate(&self, _caller: &Caller, _scopes: &[&str]) {}
}

/// The seam between tools and token acquisition.
#[async_trait]
pub trait DownstreamTokens: Send + Sync + 'static {
    /// A token for `scopes` (e.g. `https://graph.microsoft.com/.default`) acting for `caller`.
    ///
    /// # Errors
    /// An [`Error`] whose [`Error::user_message`] says what the user can do about it.
    async fn token(&self, caller: &Caller, scopes: &[&str]) -> Result<AccessToken, Error>;

    /// Forget a cached token the downstream API refused (401), so the next call gets a
    /// fresh one.
    async fn invalidate(&self, caller: &Caller, scopes: &[&str]);
}
