//! Step 4's checks, each a pure function of what Graph answered and what the server
//! expects, so each misconfiguration has one line and one fix.
//!
//! - `app_checks/api.rs`: what the app exposes: [`identifier_uris`], [`token_version`],
//!   the delegated [`scopes`] and the clients [`pre_authorized`] for them.
//! - `app_checks/graph_access.rs`: the Graph permissions it requests ([`required_access`])
//!   and the tenant's [`admin_consent`] to them.
//! - `app_checks/identity.rs`: the [`federated`] credential trusting the server's identity,
//!   and the line for an app with no service principal ([`service_principal_missing`]).

mod api;
mod graph_access;
mod identity;
#[cfg(test)]
mod tests;

pub use api::{identifier_uris, pre_authorized, scopes, token_version};
pub use graph_access::{admin_consent, required_access};
pub use identity::{federated, service_principal_missing};
