//! The validated caller of one MCP request: the user the server acts for.
//!
//! A [`Caller`] is what tools see of the user: ids, names, scopes. Inbound authorization
//! (`auth/`) establishes it and re-exports it as `auth::Caller`; it is defined here, beside
//! [`UserAssertion`], so that the dependency runs one way (auth uses `obo/`, never the
//! reverse) while the caller's token stays readable in `obo/` alone. It never prints that
//! token: `UserAssertion`'s `Debug` is redacted.

use super::UserAssertion;

/// Who is calling, as established by inbound authorization.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Stable user id (`oid` for Entra); `local` for the local developer.
    pub subject: String,
    /// Tenant id (`tid`), when the issuer has tenants.
    pub tenant_id: Option<String>,
    /// Display name, when the token carries one.
    pub name: Option<String>,
    /// Sign-in name (`preferred_username` / `upn`).
    pub username: Option<String>,
    /// Delegated scopes granted to the client (`scp`).
    pub scopes: Vec<String>,
    /// App roles (`roles`).
    pub roles: Vec<String>,
    /// The client application the user signed in with (`azp` / `appid`).
    pub client_app: Option<String>,
    /// The agent acting for the user, where the token says so (Entra agent identity:
    /// `xms_par_app_azp`, the agent's parent application). Recorded in the audit event only,
    /// never used to authorize.
    pub agent_app: Option<String>,
    /// The token's actor facet (`xms_act_fct`), where present. Recorded only, as `agent_app`.
    pub agent_facet: Option<String>,
    /// An application acting for itself (client credentials), not for a user.
    pub app_only: bool,
    /// The caller's own token, for the on-behalf-of exchange; `None` locally.
    pub assertion: Option<UserAssertion>,
}

impl Caller {
    /// The developer on this machine, when inbound authorization is off (`auth.mode = none`).
    /// Tools then act with the developer's own credentials (Azure CLI).
    pub fn local_developer() -> Self {
        Self {
            subject: "local".into(),
            tenant_id: None,
            name: None,
            username: None,
            scopes: Vec::new(),
            roles: Vec::new(),
            client_app: None,
            agent_app: None,
            agent_facet: None,
            app_only: false,
            assertion: None,
        }
    }

    /// Whether this caller is the unauthenticated local developer.
    pub fn is_local_developer(&self) -> bool {
        self.assertion.is_none() && self.subject == "local"
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    #[test]
    fn user_assertion_debug_is_redacted() {
        let caller = Caller {
            assertion: Some(UserAssertion::new("eyJ.secret.token", SystemTime::now())),
            ..Caller::local_developer()
        };
        let printed = format!("{caller:?}");
        assert!(!printed.contains("eyJ.secret.token"), "{printed}");
        assert!(printed.contains("<redacted>"));
    }
}
