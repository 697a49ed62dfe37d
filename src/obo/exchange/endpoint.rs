//! Where a caller's exchange goes: the token endpoint (per caller tenant for multi-tenant
//! apps, only ever a GUID in the URL), and where that caller consents.

use super::Error;
use crate::obo::Caller;

/// Where the token endpoint is.
pub enum TokenEndpoint {
    Fixed(String),
    /// `{authority}/{tenant}/oauth2/v2.0/token`; multi-tenant apps use the caller's `tid`.
    Entra {
        authority: String,
        tenant: String,
        per_caller_tenant: bool,
    },
}

impl TokenEndpoint {
    /// The token endpoint for `caller`.
    ///
    /// # Errors
    /// [`Error::InvalidCallerTenant`] when the caller's `tid` would go into the URL and is
    /// not a GUID (it is never put in a URL otherwise).
    pub(super) fn for_caller(&self, caller: &Caller) -> Result<String, Error> {
        match self {
            Self::Fixed(url) => Ok(url.clone()),
            Self::Entra {
                authority,
                tenant,
                per_caller_tenant,
            } => {
                let tenant = Self::tenant_of(caller, tenant, *per_caller_tenant)?;
                Ok(format!("{authority}/{tenant}/oauth2/v2.0/token"))
            }
        }
    }

    /// The tenant whose endpoints serve `caller`: its `tid` for multi-tenant apps (only a
    /// GUID ever goes into a URL), else the configured one.
    fn tenant_of<'a>(
        caller: &'a Caller,
        tenant: &'a str,
        per_caller: bool,
    ) -> Result<&'a str, Error> {
        match (&caller.tenant_id, per_caller) {
            (Some(tid), true) if crate::config::is_guid(tid) => Ok(tid.as_str()),
            (Some(_), true) => Err(Error::InvalidCallerTenant),
            _ => Ok(tenant),
        }
    }

    /// Where `caller` consents to `scopes`: Entra's authorize endpoint asking for exactly
    /// them (`prompt=consent`), returning to the server's own page, which never redeems the
    /// code; and the admin-consent endpoint for the same scopes. `None` for a fixed token
    /// endpoint, whose authority this server does not know.
    pub(super) fn consent_urls(
        &self,
        caller: &Caller,
        client_id: &str,
        scopes: &[&str],
        return_to: &str,
    ) -> Option<(String, String)> {
        let Self::Entra {
            authority,
            tenant,
            per_caller_tenant,
        } = self
        else {
            return None;
        };
        let tenant = Self::tenant_of(caller, tenant, *per_caller_tenant).ok()?;
        let scope = scopes.join(" ");
        let mut user =
            url::Url::parse(&format!("{authority}/{tenant}/oauth2/v2.0/authorize")).ok()?;
        user.query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", return_to)
            .append_pair("response_mode", "query")
            .append_pair("scope", &scope)
            .append_pair("prompt", "consent");
        let mut admin = url::Url::parse(&format!("{authority}/{tenant}/v2.0/adminconsent")).ok()?;
        admin
            .query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("scope", &scope)
            .append_pair("redirect_uri", return_to);
        Some((user.into(), admin.into()))
    }
}

/// `https://graph.microsoft.com/Calendars.Read` → `Calendars.Read`: a scope as users and
/// consent screens name it.
pub(super) fn short_scope(scope: &str) -> &str {
    if scope.starts_with("https://") || scope.starts_with("http://") || scope.starts_with("api://")
    {
        scope.rsplit('/').next().unwrap_or(scope)
    } else {
        scope
    }
}
