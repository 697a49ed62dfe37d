//! The Microsoft Graph cloud origins, in one place: where a Graph token may be sent.
//!
//! A Graph token (the operator's, in `mcp-obo doctor`; a user's, downstream of the
//! exchange) is a bearer credential for the whole directory it was issued in: sent to any
//! other origin it can be replayed against Graph. Only Microsoft's Graph clouds, and
//! loopback (the development emulator and tests), may receive one.

use url::Url;

/// The origins of Microsoft Graph: global, US Government L4, US Government L5 (DoD), and
/// China (21Vianet).
pub const GRAPH_CLOUDS: [&str; 4] = [
    "https://graph.microsoft.com",
    "https://graph.microsoft.us",
    "https://dod-graph.microsoft.us",
    "https://microsoftgraph.chinacloudapi.cn",
];

/// Whether `url`'s origin is one of [`GRAPH_CLOUDS`] (https, the default port).
pub fn is_graph_cloud(url: &Url) -> bool {
    url.scheme() == "https"
        && url.port().is_none()
        && url.host_str().is_some_and(|host| {
            GRAPH_CLOUDS
                .iter()
                .any(|cloud| cloud.strip_prefix("https://") == Some(host))
        })
}

/// Whether a Graph token may be sent to `url`: a Microsoft Graph cloud, or a loopback
/// host over http or https (127.0.0.0/8, `::1`, `localhost`).
pub fn may_receive_graph_token(url: &Url) -> bool {
    is_graph_cloud(url)
        || (matches!(url.scheme(), "http" | "https") && crate::config::is_loopback_url(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn may_receive(url: &str) -> bool {
        may_receive_graph_token(&Url::parse(url).expect("url"))
    }

    #[test]
    fn microsoft_graph_clouds_and_loopback_may_receive_a_graph_token() {
        for url in GRAPH_CLOUDS
            .iter()
            .map(|c| (*c).to_owned())
            .chain(["https://GRAPH.microsoft.com/".to_owned()])
            .chain(["https://graph.microsoft.com:443/v1.0".to_owned()])
            .chain([
                "http://127.0.0.1:8080".to_owned(),
                "http://127.9.9.9".to_owned(),
            ])
            .chain([
                "https://[::1]:8443".to_owned(),
                "http://localhost:3000".to_owned(),
            ])
        {
            assert!(may_receive(&url), "{url}");
        }
    }

    #[test]
    fn any_other_origin_may_not_receive_a_graph_token() {
        for url in [
            "https://graph.example.invalid",
            "http://graph.microsoft.com",
            "https://graph.microsoft.com:8443",
            "https://graph.microsoft.com.evil.example",
            "https://evilgraph.microsoft.com",
            "https://graph.microsoft.co",
            "https://10.0.0.1",
            "https://localhost.evil.example",
            "ftp://127.0.0.1",
        ] {
            assert!(!may_receive(url), "{url}");
        }
    }
}
