//! The exchange itself: one form POST to the token endpoint, Entra's on-behalf-of grant or
//! RFC 8693 token exchange, with bounded retries on 429/5xx and broken connections honouring
//! `Retry-After` (`outbound::Retries`), and AADSTS codes mapped to [`Error`] variants.
//! No retry on 4xx grant errors.
//!
//! The Entra grant declares `obo.client_capabilities` (`cp1`: continuous access evaluation)
//! in `claims`, merged with a challenge's claims when one is being answered. The RFC 8693
//! grant sends no `claims`: it is Entra's extension, which other issuers do not define.
//!
//! `exchange/endpoint.rs`: where the token endpoint and the consent pages are for a caller.

use reqwest::StatusCode;
use serde::Deserialize;
use tracing::Instrument;

use super::OboGrant;
use super::assertion::{AssertionSource, ClientAuth};
use super::{AccessToken, Claims, Error};
use crate::obo::Caller;
use crate::outbound::{self, Retries, Step};

mod endpoint;

pub use endpoint::TokenEndpoint;
use endpoint::short_scope;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What one exchange did, for tracing and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attempts {
    pub retries: u32,
}

/// Performs exchanges for one configuration.
pub struct Exchanger {
    pub http: reqwest::Client,
    pub grant: OboGrant,
    pub client_id: String,
    pub endpoint: TokenEndpoint,
    pub assertion: AssertionSource,
    pub max_retries: u32,
    /// `obo.consent_url`: where users consent, instead of the link built per call.
    pub consent_url: Option<String>,
    /// The server's public URL (no trailing slash): consent returns to its
    /// `/consent/complete` page (`server/consent.rs`).
    pub public_url: String,
    pub audience: Option<String>,
    /// `obo.client_capabilities`, declared in the Entra grant's `claims`.
    pub client_capabilities: Vec<String>,
}

#[derive(Deserialize)]
struct Success {
    access_token: String,
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct Failure {
    error: Option<String>,
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u64>,
    claims: Option<String>,
}

impl Exchanger {
    /// The grant, for traces.
    pub fn grant_name(&self) -> &'static str {
        match self.grant {
            OboGrant::EntraObo => "entra_obo",
            OboGrant::TokenExchange => "token_exchange",
        }
    }

    /// Exchanges `caller`'s token for one with `scopes`, recording the outcome in metrics and
    /// the retries on the current (`obo.exchange`) span.
    ///
    /// # Errors
    /// As [`Self::exchange_inner`].
    pub async fn exchange(
        &self,
        caller: &Caller,
        user_token: &str,
        scopes: &[&str],
    ) -> Result<(AccessToken, Attempts), Error> {
        self.exchange_with_claims(caller, user_token, scopes, None)
            .await
    }

    /// [`Self::exchange`], asking also for the `challenge`'s claims (a downstream API's
    /// claims challenge being answered).
    ///
    /// # Errors
    /// As [`Self::exchange_inner`].
    pub async fn exchange_with_claims(
        &self,
        caller: &Caller,
        user_token: &str,
        scopes: &[&str],
        challenge: Option<&Claims>,
    ) -> Result<(AccessToken, Attempts), Error> {
        let started = std::time::Instant::now();
        let mut attempts = Attempts::default();
        let claims = match self.grant {
            OboGrant::EntraObo => {
                super::claims::request_parameter(&self.client_capabilities, challenge)
            }
            OboGrant::TokenExchange => None,
        };
        let result = self
            .exchange_inner(caller, user_token, scopes, claims.as_deref(), &mut attempts)
            .await;
        tracing::Span::current().record("obo.retries", attempts.retries);
        let outcome = match &result {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.code(),
        };
        crate::telemetry::metrics::obo_exchange(&outcome, started.elapsed());
        result.map(|t| (t, attempts))
    }

    /// Exchanges `caller`'s token for one with `scopes`, retrying busy answers and broken
    /// connections (`outbound::Retries`).
    ///
    /// # Errors
    /// An [`Error`] variant per failure kind (consent, claims, federation, transient, ...).
    async fn exchange_inner(
        &self,
        caller: &Caller,
        user_token: &str,
        scopes: &[&str],
        claims: Option<&str>,
        attempts: &mut Attempts,
    ) -> Result<AccessToken, Error> {
        let endpoint = self.endpoint.for_caller(caller)?;
        let host = url::Url::parse(&endpoint)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let target = Target {
            endpoint: &endpoint,
            host: &host,
        };
        let mut retries = Retries::new("token endpoint", self.max_retries);
        let result = loop {
            let step = match self.assertion.client_auth(&endpoint).await {
                Ok(auth) => {
                    let form = self.form(user_token, scopes, &auth, claims);
                    let resend = retries.resends();
                    self.attempt(&target, &form, resend, caller, scopes).await
                }
                Err(e) => Err(e),
            };
            if let Some(result) = retries.after(step).await {
                break result;
            }
        };
        attempts.retries = retries.retries();
        result
    }

    /// One POST of `form`, and what its answer means.
    async fn attempt(
        &self,
        target: &Target<'_>,
        form: &[(&'static str, String)],
        resend: u32,
        caller: &Caller,
        scopes: &[&str],
    ) -> Result<Step<AccessToken, Error>, Error> {
        let url = crate::config::redact_credentials(target.endpoint);
        let span = outbound::client_span!("mcp_obo::obo", "POST", target.host, url, resend);
        let headers = span.in_scope(crate::telemetry::otel::outgoing_headers);
        let sent = self
            .http
            .post(target.endpoint)
            .headers(headers)
            .form(form)
            .send()
            .instrument(span.clone())
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                outbound::record_failure(&span, "transport");
                return Ok(Step::Retry {
                    retry_after: None,
                    status: None,
                    error: unreachable(&url, &e),
                });
            }
        };
        let status = response.status();
        outbound::record_status(&span, status);
        // Never followed (outbound::builder): saying so beats "unexpected answer". The
        // configured host only: the Location could name anything.
        if status.is_redirection() {
            return Err(Error::Redirected {
                host: target.host.to_owned(),
                status: status.as_u16(),
            });
        }
        if status.is_success() {
            return read_token(response).await.map(Step::Done);
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Ok(Step::Retry {
                retry_after: outbound::retry_after(response.headers()),
                status: Some(status.as_u16()),
                error: Error::Transient {
                    status: status.as_u16(),
                },
            });
        }
        let failure: Failure = response.json().await.unwrap_or_default();
        Err(self.map_failure(failure, caller, scopes))
    }

    /// AADSTS65001 for `scopes`: what to consent to, and where.
    fn consent_required(&self, caller: &Caller, scopes: &[&str]) -> Error {
        let permissions = scopes
            .iter()
            .map(|s| match short_scope(s) {
                ".default" => "that this server requests (.default)",
                short => short,
            })
            .collect::<Vec<_>>()
            .join(", ");
        let return_to = format!("{}/consent/complete", self.public_url);
        let built = self
            .endpoint
            .consent_urls(caller, &self.client_id, scopes, &return_to);
        let (consent_url, admin_consent_url) = match (&self.consent_url, built) {
            (Some(fixed), built) => (fixed.clone(), built.map(|(_, admin)| admin)),
            (None, Some((user, admin))) => (user, Some(admin)),
            // No Entra authority to send the user to: Easy Auth's sign-in, where it runs.
            (None, None) => (format!("{}/.auth/login/aad", self.public_url), None),
        };
        Error::ConsentRequired {
            permissions,
            consent_url,
            admin_consent_url,
        }
    }

    fn form<'a>(
        &'a self,
        user_token: &'a str,
        scopes: &[&str],
        auth: &'a ClientAuth,
        claims: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        let mut form: Vec<(&'static str, String)> = vec![
            ("client_id", self.client_id.clone()),
            ("scope", scopes.join(" ")),
        ];
        match self.grant {
            OboGrant::EntraObo => {
                form.push(("grant_type", JWT_BEARER.into()));
                form.push(("assertion", user_token.into()));
                form.push(("requested_token_use", "on_behalf_of".into()));
                if let Some(claims) = claims {
                    form.push(("claims", claims.to_owned()));
                }
            }
            OboGrant::TokenExchange => {
                form.push(("grant_type", TOKEN_EXCHANGE.into()));
                form.push(("subject_token", user_token.into()));
                form.push(("subject_token_type", ACCESS_TOKEN_TYPE.into()));
                form.push(("requested_token_type", ACCESS_TOKEN_TYPE.into()));
                if let Some(audience) = &self.audience {
                    form.push(("audience", audience.clone()));
                }
            }
        }
        match auth {
            ClientAuth::Assertion(jwt) => {
                form.push(("client_assertion_type", ASSERTION_TYPE.into()));
                form.push(("client_assertion", jwt.clone()));
            }
            ClientAuth::Secret(secret) => form.push(("client_secret", secret.expose().to_owned())),
        }
        form
    }

    fn map_failure(&self, failure: Failure, caller: &Caller, scopes: &[&str]) -> Error {
        let code_num = failure.error_codes.first().copied().or_else(|| {
            failure
                .error_description
                .as_deref()
                .and_then(|d| d.strip_prefix("AADSTS"))
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|digits| digits.parse().ok())
        });
        let error = failure.error.clone().unwrap_or_default();
        let code = code_num
            .map(|c| format!("AADSTS{c}"))
            .unwrap_or_else(|| error.clone());
        tracing::debug!(error = %crate::telemetry::bounded(&error), code = %crate::telemetry::bounded(&code), "token exchange refused");
        match (code_num, error.as_str()) {
            (Some(65001), _) => self.consent_required(caller, scopes),
            (Some(7_000_114), _) => Error::AppOnly { code },
            (Some(50013 | 70021 | 700_211 | 700_212 | 700_213), _) => {
                Error::FederationNotReady { code }
            }
            (_, "interaction_required") => match failure.claims.filter(|c| !c.trim().is_empty()) {
                Some(claims) => Error::ClaimsChallenge { claims },
                None => Error::InvalidGrant { code },
            },
            (_, "invalid_client" | "unauthorized_client") => Error::InvalidClient { code },
            (_, "invalid_grant") => Error::InvalidGrant { code },
            // Whatever else the endpoint wrote is its own: only a numbered code (ours to
            // format) reaches the text, the span and the log; the rest stays at debug above.
            _ => Error::Protocol {
                detail: code_num.map_or_else(
                    || "an error this server does not know".to_owned(),
                    |c| format!("AADSTS{c}"),
                ),
            },
        }
    }
}

/// The token endpoint's URL (with any credentials in it) and host, for one exchange.
struct Target<'a> {
    endpoint: &'a str,
    host: &'a str,
}

/// No answer from the token endpoint at `url` (credentials redacted): a retryable failure.
fn unreachable(url: &str, e: &reqwest::Error) -> Error {
    let failure = if e.is_timeout() {
        "timed out"
    } else {
        "connection failed"
    };
    Error::Unreachable {
        dependency: "token endpoint",
        detail: format!("{url}: {failure}"),
    }
}

/// The access token of a success answer, with its lifetime (`expires_in`, 300 s if absent).
async fn read_token(response: reqwest::Response) -> Result<AccessToken, Error> {
    let body: Success = response.json().await.map_err(|_| Error::Protocol {
        detail: "the success response is not the expected JSON".into(),
    })?;
    let lifetime = body
        .expires_in
        .as_ref()
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(300);
    let expires_at = crate::jose::expiry_in(lifetime).ok_or_else(|| Error::Protocol {
        detail: format!(
            "expires_in of {lifetime} seconds is beyond any real token lifetime, so the token was not used"
        ),
    })?;
    Ok(AccessToken::new(&body.access_token, expires_at))
}

#[cfg(test)]
mod tests;
