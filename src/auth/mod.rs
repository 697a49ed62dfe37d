//! Inbound authorization: who is calling.
//!
//! - `caller.rs`: [`Caller`], the validated identity every tool receives, and
//!   [`UserAssertion`], the caller's own token, which only `obo/` may open.
//! - `middleware.rs`: [`Authorizer`], the actix middleware that establishes the caller.
//!
//! With `auth.mode = none` (loopback only) every request is the local developer
//! ([`Caller::local_developer`]). Token validation, protected resource metadata and
//! challenges slot in here as middleware that inserts a [`Caller`] into the request.

mod caller;
mod middleware;

pub use caller::{Caller, UserAssertion};
pub use middleware::Authorizer;
