//! Why a downstream token could not be had, phrased for the person using the tool.

/// A token acquisition failure.
///
/// `Display` is for logs (no secrets); [`Error::user_message`] is what a tool shows.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Local mode, and no developer tool (Azure CLI, Azure Developer CLI) gave a token.
    #[error("no developer credentials available: {detail}")]
    DeveloperCredentialUnavailable { detail: String },
    /// Inbound authorization is on but the on-behalf-of exchange is not configured.
    #[error("the on-behalf-of exchange is not configured")]
    NotConfigured,
}

impl Error {
    /// What the user should do, for an `isError` tool result.
    pub fn user_message(&self) -> String {
        match self {
            Self::DeveloperCredentialUnavailable { detail } => format!(
                "This server runs without sign-in (auth.mode = none), so it calls Microsoft Graph with your developer credentials, and none are available. Run `az login` (add `--tenant <tenant id>` if you have several tenants, or set AZURE_TENANT_ID), then call the tool again. Details: {detail}"
            ),
            Self::NotConfigured => "This server cannot call Microsoft Graph for you yet: its on-behalf-of exchange is not configured (obo.client_assertion). Ask the server's operator.".to_owned(),
        }
    }
}
