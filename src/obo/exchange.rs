//! The exchange itself: one form POST to the token endpoint, Entra's on-behalf-of grant or
//! RFC 8693 token exchange, with bounded retries on 429/5xx and broken connections honouring
//! `Retry-After` (`outbound::Retries`), and AADSTS codes mapped to [`Error`] variants.
//! No retry on 4xx grant errors.
//!
//! The Entra grant declares `obo.client_capabilities` (`cp1`: continuous access evaluation)
//! in `claims`, merged with a challenge's claims when one is being answered. The RFC 8693
//! grant sends no `claims`: it is Entra's extension, which other issuers do not define.

use reqwest::StatusCode;
use serde::Deserialize;
use tracing::Instrument;

use super::OboGrant;
use super::assertion::{AssertionSource, ClientAuth};
use super::{AccessToken, Claims, Error};
use crate::auth::Caller;
use crate::outbound::{self, Retries, Step};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Where the token endpoint is.
pub enum TokenEndpoint {
    Fixed(String),
    /// `{authority}/{tenant}/oauth2/v2.0/token`; multi-tenant apps use the caller's `tid`.
    Entra {
        authority: String,
        tenant: String,
        per_caller_tenant: bool,
    },
}

impl TokenEndpoint {
    /// The token endpoint for `caller`.
    ///
    /// # Errors
    /// [`Error::InvalidCallerTenant`] when the caller's `tid` would go into the URL and is
    /// not a GUID (it is never put in a URL otherwise).
    fn for_caller(&self, caller: &Caller) -> Result<String, Error> {
        match self {
            Self::Fixed(url) => Ok(url.clone()),
            Self::Entra {
                authority,
                tenant,
                per_caller_tenant,
            } => {
                let tenant = Self::tenant_of(caller, tenant, *per_caller_tenant)?;
                Ok(format!("{authority}/{tenant}/oauth2/v2.0/token"))
            }
        }
    }

    /// The tenant whose endpoints serve `caller`: its `tid` for multi-tenant apps (only a
    /// GUID ever goes into a URL), else the configured one.
    fn tenant_of<'a>(
        caller: &'a Caller,
        tenant: &'a str,
        per_caller: bool,
    ) -> Result<&'a str, Error> {
        match (&caller.tenant_id, per_caller) {
            (Some(tid), true) if crate::config::is_guid(tid) => Ok(tid.as_str()),
            (Some(_), true) => Err(Error::InvalidCallerTenant),
            _ => Ok(tenant),
        }
    }

    /// Where `caller` consents to `scopes`: Entra's authorize endpoint asking for exactly
    /// them (`prompt=consent`), returning to the server's own page, which never redeems the
    /// code; and the admin-consent endpoint for the same scopes. `None` for a fixed token
    /// endpoint, whose authority this server does not know.
    fn consent_urls(
        &self,
        caller: &Caller,
        client_id: &str,
        scopes: &[&str],
        return_to: &str,
    ) -> Option<(String, String)> {
        let Self::Entra {
            authority,
            tenant,
            per_caller_tenant,
        } = self
        else {
            return None;
        };
        let tenant = Self::tenant_of(caller, tenant, *per_caller_tenant).ok()?;
        let scope = scopes.join(" ");
        let mut user =
            url::Url::parse(&format!("{authority}/{tenant}/oauth2/v2.0/authorize")).ok()?;
        user.query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", return_to)
            .append_pair("response_mode", "query")
            .append_pair("scope", &scope)
            .append_pair("prompt", "consent");
        let mut admin = url::Url::parse(&format!("{authority}/{tenant}/v2.0/adminconsent")).ok()?;
        admin
            .query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("scope", &scope)
            .append_pair("redirect_uri", return_to);
        Some((user.into(), admin.into()))
    }
}

/// `https://graph.microsoft.com/Calendars.Read` → `Calendars.Read`: a scope as users and
/// consent screens name it.
fn short_scope(scope: &str) -> &str {
    if scope.starts_with("https://") || scope.starts_with("http://") || scope.starts_with("api://")
    {
        scope.rsplit('/').next().unwrap_or(scope)
    } else {
        scope
    }
}

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
                let failure = if e.is_timeout() {
                    "timed out"
                } else {
                    "connection failed"
                };
                return Ok(Step::Retry {
                    retry_after: None,
                    status: None,
                    error: Error::Unreachable {
                        dependency: "token endpoint",
                        detail: format!("{url}: {failure}"),
                    },
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
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::config::Secret;

    /// A token endpoint that counts connections and answers a valid token response.
    async fn counting_endpoint() -> (String, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = vec![0u8; 65536];
                let _ = stream.read(&mut buf).await;
                let body = r#"{"access_token":"t","expires_in":3600}"#;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
            }
        });
        (base, connections)
    }

    fn exchanger(authority: String) -> Exchanger {
        Exchanger {
            http: reqwest::Client::new(),
            grant: OboGrant::EntraObo,
            client_id: "00000000-aaaa-bbbb-cccc-111111111111".into(),
            endpoint: TokenEndpoint::Entra {
                authority,
                tenant: "organizations".into(),
                per_caller_tenant: true,
            },
            assertion: AssertionSource::ClientSecret(Secret::new("secret")),
            max_retries: 0,
            consent_url: None,
            public_url: "https://mcp.example.com".into(),
            audience: None,
            client_capabilities: vec!["cp1".into()],
        }
    }

    fn caller(tid: &str) -> Caller {
        Caller {
            tenant_id: Some(tid.to_owned()),
            ..Caller::local_developer()
        }
    }

    #[test]
    fn consent_missing_links_to_exactly_the_missing_permission_returning_to_the_servers_page() {
        let exchanger = exchanger("https://login.microsoftonline.com".into());
        let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        let failure = exchanger.map_failure(
            Failure {
                error: Some("invalid_grant".into()),
                error_codes: vec![65001],
                ..Failure::default()
            },
            &caller(tid),
            &["https://graph.microsoft.com/Calendars.Read"],
        );
        let Error::ConsentRequired {
            permissions,
            consent_url,
            admin_consent_url,
        } = &failure
        else {
            panic!("{failure:?}");
        };
        assert_eq!(permissions, "Calendars.Read");
        let link = url::Url::parse(consent_url).expect("a URL");
        assert_eq!(link.path(), format!("/{tid}/oauth2/v2.0/authorize"));
        let query: std::collections::HashMap<_, _> = link.query_pairs().into_owned().collect();
        assert_eq!(query["scope"], "https://graph.microsoft.com/Calendars.Read");
        assert_eq!(
            query["redirect_uri"],
            "https://mcp.example.com/consent/complete"
        );
        assert_eq!(query["prompt"], "consent");
        assert_eq!(query["client_id"], exchanger.client_id);
        let admin = admin_consent_url.as_deref().expect("an admin link");
        assert!(admin.starts_with(&format!(
            "https://login.microsoftonline.com/{tid}/v2.0/adminconsent?"
        )));
        let text = failure.user_message();
        assert!(
            text.contains("Calendars.Read") && text.contains(consent_url.as_str()),
            "{text}"
        );
    }

    #[test]
    fn an_error_the_endpoint_invents_reaches_neither_the_label_nor_the_text() {
        let exchanger = exchanger("https://login.example".into());
        let long = "x".repeat(400_000);
        for error in [long.as_str(), "bad\nline forged"] {
            let failure = exchanger.map_failure(
                Failure {
                    error: Some(error.to_owned()),
                    ..Failure::default()
                },
                &caller("72f988bf-86f1-41af-91ab-2d7cd011db47"),
                &["https://graph.microsoft.com/User.Read"],
            );
            assert_eq!(failure.code(), "protocol");
            let text = failure.to_string();
            assert!(text.len() < 300 && !text.contains("forged"), "{text}");
        }
    }

    #[tokio::test]
    async fn a_caller_tenant_that_is_not_a_guid_never_reaches_the_token_endpoint() {
        let (base, connections) = counting_endpoint().await;
        let exchanger = exchanger(base);
        for tid in [
            "../../evil",
            "organizations",
            "common",
            "72f988bf-86f1-41af-91ab-2d7cd011db47/../x",
            "72f988bf-86f1-41af-91ab-2d7cd011db47?x=1",
            "contoso.onmicrosoft.com",
            "",
        ] {
            let result = exchanger
                .exchange(
                    &caller(tid),
                    "user-token",
                    &["https://graph.microsoft.com/.default"],
                )
                .await;
            let Err(error) = result else {
                panic!("{tid:?}: the exchange must fail");
            };
            let message = error.to_string();
            assert!(message.contains("tenant"), "{tid:?}: {message}");
            if !tid.is_empty() {
                assert!(!message.contains(tid), "{tid:?} echoed: {message}");
            }
            assert_eq!(
                connections.load(Ordering::SeqCst),
                0,
                "{tid:?}: a request was sent"
            );
        }
        // A GUID tenant is used as is.
        let ok = exchanger
            .exchange(
                &caller("72f988bf-86f1-41af-91ab-2d7cd011db47"),
                "user-token",
                &["https://graph.microsoft.com/.default"],
            )
            .await;
        assert!(ok.is_ok(), "{ok:?}");
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }
}
