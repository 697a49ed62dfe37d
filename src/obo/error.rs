//! Why a downstream token could not be had, phrased for the person using the tool.
//!
//! AADSTS codes (Entra) map to variants; see `exchange.rs` for the mapping.

/// A token acquisition failure.
///
/// `Display` is for logs (no secrets, no tokens; it may name URLs, file paths and a
/// library's message); [`Error::user_message`] is what a tool shows, and names the
/// dependency and what to do, never those details. `Clone` so one failed exchange can answer every request that joined it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Local mode, and no developer tool (Azure CLI, Azure Developer CLI) gave a token.
    #[error("no developer credentials available: {detail}")]
    DeveloperCredentialUnavailable { detail: String },
    /// Inbound authorization is on but the on-behalf-of exchange is not configured.
    #[error("the on-behalf-of exchange is not configured")]
    NotConfigured,
    /// The request carried no user token to exchange.
    #[error("no user token to exchange")]
    NoUserToken,
    /// The caller is an application with no user (AADSTS7000114, or an app-only token).
    #[error("on-behalf-of needs a user; the caller is an application ({code})")]
    AppOnly { code: String },
    /// AADSTS65001: the user (or an admin) has not consented to the permissions the call
    /// asked for: `permissions` in short form (`Calendars.Read`), the link that asks for
    /// exactly those, and the admin-consent alternative where the authority is Entra's.
    #[error("consent required (AADSTS65001)")]
    ConsentRequired {
        permissions: String,
        consent_url: String,
        admin_consent_url: Option<String>,
    },
    /// Conditional Access / MFA: the user must sign in again satisfying `claims`.
    #[error("interaction required: claims challenge")]
    ClaimsChallenge { claims: String },
    /// AADSTS50013 / AADSTS700211 / AADSTS700213 / AADSTS70021: the federated credential
    /// does not (yet) trust the assertion; common right after deployment.
    #[error("federated credential not accepted ({code})")]
    FederationNotReady { code: String },
    /// A multi-tenant exchange would put the caller's `tid` in the token endpoint URL, and it
    /// is not a GUID. The value is not repeated: it came from the caller.
    #[error(
        "the caller's tenant id (tid) is not a GUID, so no token endpoint can be derived from it"
    )]
    InvalidCallerTenant,
    /// The user's token was refused for the exchange (expired, revoked, wrong audience).
    #[error("the token endpoint refused the user's token ({code})")]
    InvalidGrant { code: String },
    /// The server's own client credential was refused (misconfiguration).
    #[error("the token endpoint refused this server's client credential ({code})")]
    InvalidClient { code: String },
    /// 429/5xx that outlasted the retries.
    #[error("the token endpoint is unavailable (HTTP {status})")]
    Transient { status: u16 },
    /// A dependency could not be reached at all.
    #[error("cannot reach the {dependency}: {detail}")]
    Unreachable {
        dependency: &'static str,
        detail: String,
    },
    /// The client assertion could not be produced.
    #[error("cannot obtain the client assertion from {source_name}: {detail}")]
    AssertionUnavailable {
        source_name: &'static str,
        detail: String,
    },
    /// The token endpoint answered with a redirect, which is never followed (it would carry
    /// the user's token and the client assertion to the host it names).
    #[error(
        "the token endpoint at {host} answered with a redirect (HTTP {status}), which is not followed"
    )]
    Redirected { host: String, status: u16 },
    /// The token endpoint answered something unexpected.
    #[error("unexpected answer from the token endpoint: {detail}")]
    Protocol { detail: String },
}

impl Error {
    /// A stable, secret-free label for traces and metrics (the AADSTS code when there is one).
    pub fn code(&self) -> String {
        match self {
            Self::DeveloperCredentialUnavailable { .. } => {
                "developer_credential_unavailable".into()
            }
            Self::NotConfigured => "not_configured".into(),
            Self::NoUserToken => "no_user_token".into(),
            Self::InvalidCallerTenant => "invalid_caller_tenant".into(),
            Self::AppOnly { code }
            | Self::FederationNotReady { code }
            | Self::InvalidGrant { code }
            | Self::InvalidClient { code } => code.clone(),
            Self::ConsentRequired { .. } => "AADSTS65001".into(),
            Self::ClaimsChallenge { .. } => "interaction_required".into(),
            Self::Transient { status } => format!("http_{status}"),
            Self::Unreachable { .. } => "unreachable".into(),
            Self::Redirected { .. } => "redirect".into(),
            Self::AssertionUnavailable { .. } => "assertion_unavailable".into(),
            Self::Protocol { .. } => "protocol".into(),
        }
    }

    /// Whether the failure is the user's or tenant's own state (consent missing, the grant
    /// refused, a claims challenge, an application caller), which retrying within seconds
    /// cannot change, so it is remembered briefly (`obo.failure_cache_ttl`). Transient and
    /// configuration failures are not: the next call may well succeed.
    pub fn is_callers_state(&self) -> bool {
        matches!(
            self,
            Self::ConsentRequired { .. }
                | Self::InvalidGrant { .. }
                | Self::ClaimsChallenge { .. }
                | Self::AppOnly { .. }
        )
    }

    /// What the user should do, for an `isError` tool result.
    pub fn user_message(&self) -> String {
        match self {
            Self::DeveloperCredentialUnavailable { .. } => "This server runs without sign-in (auth.mode = none), so it calls Microsoft Graph with your developer credentials, and none are available. Run `az login` (add `--tenant <tenant id>` if you have several tenants, or set AZURE_TENANT_ID), then call the tool again. The server's log says what the developer tools answered.".to_owned(),
            Self::NotConfigured => "This server cannot call Microsoft Graph for you yet: its on-behalf-of exchange is not configured (obo.client_assertion). Ask the server's operator.".to_owned(),
            Self::NoUserToken => "This tool acts on your behalf, but the request carried no user token to act with. Sign in from your MCP client and try again.".to_owned(),
            Self::AppOnly { .. } => "This tool needs a signed-in user: it acts on behalf of a person, and the caller is an application without a user (app-only token). Call it from a client where a user signs in.".to_owned(),
            Self::InvalidCallerTenant => "Your sign-in names a tenant that is not a Microsoft Entra tenant id (a GUID), so this server cannot ask your organization for a token on your behalf. Sign in with a work or school account; if this persists, ask the server's operator.".to_owned(),
            Self::ConsentRequired {
                permissions,
                consent_url,
                admin_consent_url,
            } => {
                let admin = admin_consent_url.as_deref().map_or_else(
                    || "ask an administrator to grant consent for everyone".to_owned(),
                    |url| format!("an administrator can grant it for everyone at {url}"),
                );
                format!(
                    "This tool needs your consent to the Microsoft Graph permission {permissions}, which you have not given yet. Open {consent_url} in a browser, sign in and accept, then call the tool again in a few seconds. (If your organization does not let users consent, {admin}.)"
                )
            }
            Self::ClaimsChallenge { claims } => format!(
                "Your organization requires additional sign-in (Conditional Access or multi-factor authentication) before this server may act for you. Sign in again in your MCP client, satisfying this claims challenge: {claims}"
            ),
            Self::FederationNotReady { code } => format!(
                "The server's federated identity credential is not accepted yet ({code}). Right after deployment it takes a minute or two to propagate: retry in a minute. If it persists, check the federated credential's issuer, subject and audience (TOKEN_EXCHANGE_AUDIENCE)."
            ),
            Self::InvalidGrant { code } => format!(
                "Microsoft Entra ID refused to exchange your sign-in ({code}). Sign out and sign in again in your MCP client, then retry."
            ),
            Self::InvalidClient { code } => format!(
                "The server's own credential was refused by the identity provider ({code}). This is a server configuration problem: ask the server's operator to check obo.client_id and the client assertion source."
            ),
            Self::Transient { status } => format!(
                "The sign-in service is busy or unavailable (HTTP {status}) and did not recover after retries. Try again in a moment."
            ),
            Self::Unreachable { dependency, .. } => format!(
                "The server cannot reach the {dependency}. Try again shortly; if it persists, ask the server's operator to check the network path and configuration (the server's log names the cause)."
            ),
            Self::AssertionUnavailable { source_name, .. } => format!(
                "The server could not prove its own identity to the sign-in service: it cannot obtain its client assertion from the {source_name}. This is a server configuration problem; ask the server's operator (the server's log names the cause)."
            ),
            Self::Redirected { .. } => "The server's sign-in service answered with a redirect, which the server does not follow (it sends credentials only to the endpoint it is configured with). This is a server configuration problem; ask the server's operator to set obo.token_endpoint or entra.authority_host to the endpoint itself (the server's log names the host).".to_owned(),
            // The detail is this server's own description or the OAuth error code, never a
            // URL, path or library message.
            Self::Protocol { .. } => format!("The sign-in service answered unexpectedly: {self}. Try again."),
        }
    }
}

/// The first non-empty line of a credential library's error, capped: azure_identity's
/// messages can run to pages of per-source detail.
pub(crate) fn first_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect()
}
