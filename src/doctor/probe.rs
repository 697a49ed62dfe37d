//! The HTTP requests doctor makes, timed: one reqwest client (rustls, no redirects as every
//! [`crate::outbound::builder`] client, the standard proxy variables), and answers read whole so a check can look at status, one
//! header and the JSON body.

use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use serde::de::DeserializeOwned;

use crate::config::Secret;

/// The largest answer doctor reads (discovery, keys and Graph objects are a few KB).
const MAX_BODY: usize = 4 * 1024 * 1024;

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
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| "the token has characters an HTTP header cannot carry".to_owned())?;
            // Kept out of every Debug rendering of the request.
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
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
        // Every answer doctor reads is a small JSON document; a larger one is refused rather
        // than buffered.
        let too_large = || format!("the answer is larger than {} MiB", MAX_BODY >> 20);
        if response.content_length().unwrap_or(0) > MAX_BODY as u64 {
            return Err(too_large());
        }
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| crate::outbound::failure(&e).to_owned())?
        {
            if chunk.len() > MAX_BODY - body.len() {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers,
            body,
            took: started.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A one-connection server answering `head` and then `body_len` bytes of `x`.
    async fn answering(head: String, body_len: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            let _ = stream.write_all(head.as_bytes()).await;
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = body_len;
            while left > 0 {
                let n = left.min(chunk.len());
                if stream.write_all(&chunk[..n]).await.is_err() {
                    return;
                }
                left -= n;
            }
        });
        format!("http://{addr}/big")
    }

    #[tokio::test]
    async fn an_answer_over_the_cap_is_refused_announced_or_not() {
        let probe = Probe::new(Duration::from_secs(5)).expect("probe");
        let over = MAX_BODY + 1;
        let announced = answering(
            format!("HTTP/1.1 200 OK\r\ncontent-length: {over}\r\nconnection: close\r\n\r\n"),
            0,
        )
        .await;
        let error = probe.get(&announced, None).await.err();
        assert_eq!(error.as_deref(), Some("the answer is larger than 4 MiB"));
        let streamed = answering(
            "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_owned(),
            over,
        )
        .await;
        let error = probe.get(&streamed, None).await.err();
        assert_eq!(error.as_deref(), Some("the answer is larger than 4 MiB"));
        let small = answering(
            "HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\n".to_owned(),
            3,
        )
        .await;
        let answer = probe
            .get(&small, None)
            .await
            .expect("a small answer is read");
        assert_eq!(answer.body, b"xxx");
    }
}
