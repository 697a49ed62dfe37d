//! `[graph]`: the Microsoft Graph client.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::config::de;

/// Microsoft Graph client settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `https://graph.microsoft.com`, `https://graph.microsoft.us`,
    /// `https://microsoftgraph.chinacloudapi.cn`, or a test double. Plain http is accepted
    /// for loopback hosts only (tokens travel to it).
    #[serde(deserialize_with = "de::https_url")]
    pub base_url: Url,
    #[serde(deserialize_with = "de::duration")]
    pub connect_timeout: Duration,
    /// Total time allowed for one Graph request, body included.
    #[serde(deserialize_with = "de::duration")]
    pub timeout: Duration,
    /// What a Graph token is requested for: each tool's own permissions, or `.default`.
    pub scopes: ScopeMode,
}

/// `graph.scopes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeMode {
    /// Exactly the calling tool's permissions (`https://graph.microsoft.com/Calendars.Read`),
    /// so users consent incrementally.
    PerTool,
    /// `{graph origin}/.default`: every permission granted to the app (admin consent).
    Default,
}
