//! How a Microsoft Graph call failed, phrased so the person using the tool can act on it.

use std::time::Duration;

/// A failed Graph call. `Display` is safe to log: it never contains a token (it may name
/// the configured Graph URL and a parser's message, which [`Error::user_message`] leaves
/// out).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Token(#[from] crate::obo::Error),
    #[error("Microsoft Graph rejected the token (HTTP 401{})", graph_code(.code))]
    Unauthorized { code: Option<String> },
    #[error("Microsoft Graph denied access (HTTP 403{})", graph_code(.code))]
    Forbidden {
        code: Option<String>,
        message: Option<String>,
        /// The Graph permissions the failing tool declared, e.g. `Calendars.Read`.
        permissions: String,
    },
    #[error("Microsoft Graph found nothing at {path} (HTTP 404)")]
    NotFound { path: String },
    #[error("Microsoft Graph is throttling requests (HTTP 429)")]
    Throttled { retry_after: Option<Duration> },
    #[error("Microsoft Graph is unavailable (HTTP {status})")]
    Unavailable { status: u16 },
    #[error("Microsoft Graph answered HTTP {status}{}", graph_code(.code))]
    Unexpected { status: u16, code: Option<String> },
    #[error("Microsoft Graph did not answer within {timeout:?}")]
    Timeout { timeout: Duration },
    #[error("cannot reach Microsoft Graph at {base_url}")]
    Unreachable { base_url: String },
    #[error("Microsoft Graph answered with a body that is not the expected JSON: {reason}")]
    Malformed { reason: String },
    #[error(
        "Microsoft Graph's next-page link for {path} points outside graph.base_url or the API version; not followed"
    )]
    NextLink { path: String },
}

fn graph_code(code: &Option<String>) -> String {
    code.as_ref().map(|c| format!(", {c}")).unwrap_or_default()
}

impl Error {
    /// What the user should do, for an `isError` tool result.
    pub fn user_message(&self) -> String {
        match self {
            Self::Token(e) => e.user_message(),
            Self::Unauthorized { .. } => format!(
                "{self}, even with a freshly acquired token. Sign in again; if it keeps happening, the token was issued for the wrong audience or tenant."
            ),
            Self::Forbidden {
                message,
                permissions,
                ..
            } => format!(
                "{self}{}. The signed-in user or the app lacks the Graph permission this tool needs ({permissions}); an administrator can grant consent.",
                message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
            Self::NotFound { .. } => format!("{self}."),
            Self::Throttled { retry_after } => format!(
                "{self} and kept throttling after retries. Try again{}.",
                retry_after
                    .map(|d| format!(" in {} seconds", d.as_secs().max(1)))
                    .unwrap_or_else(|| " shortly".into())
            ),
            Self::Unavailable { .. } => format!("{self}. Try again in a moment."),
            Self::Unexpected { .. } => format!("{self}."),
            Self::Timeout { .. } => format!(
                "{self}. Try again; if it persists, check the server's network path to Graph (graph.base_url)."
            ),
            Self::Unreachable { .. } => "This server cannot reach Microsoft Graph. Try again shortly; if it persists, ask the server's operator to check DNS, proxy and outbound network rules, and graph.base_url (the server's log names the URL).".to_owned(),
            Self::NextLink { .. } => "Microsoft Graph answered with a link to the next page on another host or API version, which this server does not follow (its token goes to graph.base_url only). Ask the server's operator (the server's log has the details).".to_owned(),
            Self::Malformed { .. } => "Microsoft Graph answered with a body that is not the expected JSON. Try again; if it persists, ask the server's operator (the server's log has the details).".to_owned(),
        }
    }
}
