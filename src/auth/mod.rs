//! Inbound authorization: the server as an OAuth 2.1 protected resource.
//!
//! - [`Caller`]: the validated identity every tool receives, established here. The type
//!   is `obo/`'s (re-exported here): it carries the caller's own token as `obo/`'s sealed
//!   [`crate::obo::UserAssertion`], and `obo/` never imports `auth/`.
//! - `middleware.rs`: [`Authorizer`], the actix middleware that establishes the caller or
//!   answers with a challenge; the order of checks is documented there.
//! - `policy.rs`: the [`Authorizer`]'s policy from settings (issuer, tenants, audiences).
//! - `validated.rs`: the validated-token cache; `bearer.rs`: the request's bearer token.
//! - `metadata.rs`: RFC 9728 protected resource metadata ([`ResourceMetadata`]).
//! - `challenge.rs`: 401/403 answers with `WWW-Authenticate` (RFC 6750, MCP step-up).
//! - `jwt.rs`: token validation; `jwks.rs`: the issuer's keys ([`JwksCache`]).
//! - `easyauth.rs`: App Service / Container Apps built-in auth headers (easyauth mode only).
//! - `settings.rs`: [`Settings`] (`[auth]`) and [`EntraSettings`] (`[entra]`), as configured.
//! - `entra.rs`: [`Entra`], the tenant and application with Entra's defaults applied, which
//!   auth, `obo/` and `doctor/` read.
//! - `scopes.rs`: scope sufficiency with hierarchies.
//! - `error.rs`: [`Error`] and the refusal [`Reason`]s.
//!
//! Output: a [`Caller`] in the request extensions. Why a token failed goes to `debug!`,
//! never to the client.

mod bearer;
mod challenge;
mod easyauth;
mod entra;
mod error;
mod jwks;
mod jwt;
mod metadata;
mod middleware;
mod policy;
pub mod scopes;
mod settings;
mod validated;

pub use crate::obo::Caller;
pub use entra::{Entra, MultiTenant, Tenancy, default_identifier_uri};
pub use error::{Error, Reason};
pub use jwks::{JwksCache, keys_url_is_secure};
pub use jwt::{IssuerPolicy, TenantPolicy, TokenValidator, Validated};
pub use metadata::ResourceMetadata;
pub use middleware::Authorizer;
pub use policy::accepted_audiences;
pub use settings::{AuthMode, EntraSettings, Settings, discovery_url};
