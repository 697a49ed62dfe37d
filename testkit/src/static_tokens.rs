//! [`StaticTokens`]: a downstream token source for the in-process app that hands out one
//! fixed token (or none) and counts what it is asked.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use mcp_obo::auth::Caller;
use mcp_obo::obo::{AccessToken, DownstreamTokens, Error as OboError};

/// A downstream token source that hands out one fixed token, or fails like a missing
/// developer sign-in; counts what it is asked.
pub struct StaticTokens {
    token: Option<String>,
    pub issued: AtomicUsize,
    pub invalidated: AtomicUsize,
}

impl StaticTokens {
    pub fn new(token: &str) -> Arc<Self> {
        Arc::new(Self {
            token: Some(token.to_owned()),
            issued: AtomicUsize::new(0),
            invalidated: AtomicUsize::new(0),
        })
    }

    pub fn unavailable() -> Arc<Self> {
        Arc::new(Self {
            token: None,
            issued: AtomicUsize::new(0),
            invalidated: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl DownstreamTokens for StaticTokens {
    async fn token(&self, _caller: &Caller, _scopes: &[&str]) -> Result<AccessToken, OboError> {
        match &self.token {
            Some(t) => {
                self.issued.fetch_add(1, Ordering::SeqCst);
                Ok(AccessToken::new(
                    t.as_str(),
                    SystemTime::now() + Duration::from_secs(3600),
                ))
            }
            None => Err(OboError::DeveloperCredentialUnavailable {
                detail: "az not found on PATH".into(),
            }),
        }
    }

    async fn invalidate(&self, _caller: &Caller, _scopes: &[&str]) {
        self.invalidated.fetch_add(1, Ordering::SeqCst);
    }
}
