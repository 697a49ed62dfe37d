//! The HTTP requests doctor makes, timed: one reqwest client (rustls, no redirects, the
//! standard proxy variables), and answers read whole so a check can look at status, one
//! header and the JSON body.

use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, HeaderMap, WWW_AUTHENTICATE};
use serde::de::DeserializeOwned;

use crate::config::Secret;

/// An HTTP answer and how long it took.
pub struct Answer {
    pub status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
    pub took: Duration,
}

impl Answer {
    pub fn json<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn www_authenticate(&self) -> Option<&str> {
        self.headers
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
    }
}

/// Doctor's HTTP client.
pub struct Probe {
    http: reqwest::Client,
}

impl Probe {
    /// # Errors
    /// When the system's trust store cannot be read or the client cannot be built.
    pub fn new(timeout: Duration) -> Result<Self, String> {
        let http = crate::outbound::builder()
            .map_err(|e| e.to_string())?
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mcp-obo-doctor/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { http })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }

    /// GET `url`, with `token` as bearer when given.
    ///
    /// # Errors
    /// Why no answer came (never containing the token).
    pub async fn get(&self, url: &str, token: Option<&Secret>) -> Result<Answer, String> {
        let mut request = self.http.get(url);
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {}", token.expose()));
        }
        self.send(request).await
    }

    /// Sends `request` and reads the whole answer.
    ///
    /// # Errors
    /// Why no answer came: timed out, connection failed, or the request failed.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, String> {
        let started = Instant::now();
        let response = request
            .send()
            .await
            .map_err(|e| crate::outbound::failure(&e).to_owned())?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| crate::outbound::failure(&e).to_owned())?
            .to_vec();
        Ok(Answer {
            status,
            headers,
            body,
            took: started.elapsed(),
        })
    }
}
