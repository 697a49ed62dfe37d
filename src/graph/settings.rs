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
}
