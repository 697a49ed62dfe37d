//! The fake Entra + Microsoft Graph every step's tests run doctor against: Entra's
//! discovery, keys and token endpoint and Graph's app registration documents on one loopback
//! listener, with [`Endpoint`] and [`Broken`] choosing the one thing it gets wrong. Its
//! bodies come from `shapes` (the test kit's re-export of the dev emulator's Graph and Entra
//! shapes); it is a fake of its own because its point is the broken variants, one at a time,
//! of a registration with Microsoft's real Graph ids, and Entra's endpoints on the same
//! listener, which neither the dev emulator nor the test kit's fake Graph serves.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::support::fake_imds::MI_PRINCIPAL_ID;
use crate::support::shapes;

pub(super) const TENANT: &str = "11111111-1111-4111-8111-111111111111";
pub(super) const APP: &str = "22222222-2222-4222-8222-222222222222";
const APP_SP: &str = "44444444-4444-4444-8444-444444444444";
const GRAPH_SP: &str = "55555555-5555-4555-8555-555555555555";
const SCOPE_ID: &str = "66666666-6666-4666-8666-666666666666";
pub(super) const VS_CODE: &str = "aebc6443-996d-45c2-90f0-388ff96faa56";
pub(super) const GRAPH_APP: &str = "00000003-0000-0000-c000-000000000000";
pub(super) const USER_READ: &str = "e1fe6dd8-ba31-4d61-89e7-88639da4683d";
pub(super) const CALENDARS_READ: &str = "465a38f9-76ea-45b9-9f34-9e8b0d4b0b42";
pub(super) const WI_ISSUER: &str =
    "https://oidc.prod-aks.azure.com/33333333-3333-4333-8333-333333333333/";
pub(super) const WI_SUBJECT: &str = "system:serviceaccount:mcp:mcp-obo";
pub(super) const EXCHANGE: &str = "api://AzureADTokenExchange";
/// The operator's Graph token; the fake Graph refuses any other, and no output may hold it.
pub(super) const OPERATOR_TOKEN: &str = "operator-graph-token-7c1f0e";

/// The managed identity's issuer (the fake identity endpoint's tokens).
pub(super) fn mi_issuer() -> String {
    format!(
        "https://login.microsoftonline.com/{}/v2.0",
        crate::support::tokens::TENANT
    )
}

/// One broken Entra endpoint at a time (step 2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Endpoint {
    Fine,
    /// The discovery document declares Entra's real issuer, not the configured authority's.
    OtherIssuer,
    /// The keys URL answers 200 with an HTML page.
    KeysNotJson,
    /// The discovery document names a keys URL nothing listens on.
    KeysUnreachable,
    /// The discovery document names a plain-http keys URL on a host that is not loopback.
    KeysOverPlainHttp,
    /// The discovery document names a token endpoint nothing listens on.
    TokenUnreachable,
    /// The token endpoint answers 503.
    TokenFailing,
}

/// One misconfiguration of the app registration at a time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Broken {
    Nothing,
    NoApplication,
    V1Tokens,
    TrailingSlash,
    NoScope,
    DisabledScope,
    NotPreAuthorized,
    NoUserRead,
    /// `requiredResourceAccess` lists User.Read but not Calendars.Read (UpcomingEvents').
    NoCalendarsRead,
    WrongSubject,
    NoServicePrincipal,
    NoAdminConsent,
    /// Admin consent for User.Read only, none for Calendars.Read.
    NoCalendarsConsent,
}

pub(super) struct Fake {
    pub(super) broken: Broken,
    pub(super) endpoint: Endpoint,
    pub(super) base: String,
    /// A loopback base URL where connections are refused.
    pub(super) closed: String,
    /// The MCP URL listed as an identifier URI.
    pub(super) mcp_url: String,
    pub(super) jwks: Value,
}

impl Fake {
    fn application(&self) -> Value {
        let mut uris = vec![format!("api://{APP}"), self.mcp_url.clone()];
        if self.broken == Broken::TrailingSlash {
            uris[0] = format!("api://{APP}/");
        }
        let mut app = shapes::application(&shapes::Application {
            object_id: "77777777-7777-4777-8777-777777777777",
            app_id: APP,
            display_name: "mcp-obo",
            identifier_uris: uris,
            scope_id: SCOPE_ID,
            pre_authorized: &[VS_CODE],
            graph_permission_ids: match self.broken {
                Broken::NoUserRead => vec![CALENDARS_READ],
                Broken::NoCalendarsRead => vec![USER_READ],
                _ => vec![USER_READ, CALENDARS_READ],
            },
        });
        match self.broken {
            Broken::V1Tokens => app["api"]["requestedAccessTokenVersion"] = Value::Null,
            Broken::NoScope => app["api"]["oauth2PermissionScopes"] = json!([]),
            Broken::DisabledScope => {
                app["api"]["oauth2PermissionScopes"][0]["isEnabled"] = json!(false);
            }
            Broken::NotPreAuthorized => app["api"]["preAuthorizedApplications"] = json!([]),
            _ => {}
        }
        app
    }

    fn graph(&self, path: &str, query: &str) -> Response {
        let not_found = |what: &str| {
            (StatusCode::NOT_FOUND, axum::Json(shapes::not_found(what))).into_response()
        };
        let app_path = format!("/v1.0/applications(appId='{APP}')");
        let ok = |v: Value| axum::Json(v).into_response();
        if path == app_path {
            if self.broken == Broken::NoApplication {
                return not_found(APP);
            }
            return ok(self.application());
        }
        if path == format!("{app_path}/federatedIdentityCredentials") {
            let subject = if self.broken == Broken::WrongSubject {
                "system:serviceaccount:default:default"
            } else {
                WI_SUBJECT
            };
            let issuer = mi_issuer();
            return ok(shapes::federated_credentials(&[
                shapes::FederatedCredential {
                    id: "f1",
                    name: "aks-mcp-obo",
                    issuer: WI_ISSUER,
                    subject,
                    audience: EXCHANGE,
                },
                shapes::FederatedCredential {
                    id: "f2",
                    name: "container-app-mi",
                    issuer: &issuer,
                    subject: MI_PRINCIPAL_ID,
                    audience: EXCHANGE,
                },
            ]));
        }
        if path == format!("/v1.0/servicePrincipals(appId='{APP}')") {
            if self.broken == Broken::NoServicePrincipal {
                return not_found(APP);
            }
            return ok(shapes::service_principal(APP_SP, APP, "mcp-obo"));
        }
        if path == format!("/v1.0/servicePrincipals(appId='{GRAPH_APP}')") {
            return ok(shapes::service_principal(
                GRAPH_SP,
                GRAPH_APP,
                "Microsoft Graph",
            ));
        }
        if path == "/v1.0/oauth2PermissionGrants" {
            let filter: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            let expected = vec![("$filter".to_owned(), format!("clientId eq '{APP_SP}'"))];
            if filter != expected {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("unexpected filter {filter:?}"),
                )
                    .into_response();
            }
            // Without admin consent, only one user consented.
            let principal = (self.broken == Broken::NoAdminConsent)
                .then_some("88888888-8888-4888-8888-888888888888");
            let scope = if self.broken == Broken::NoCalendarsConsent {
                "User.Read openid"
            } else {
                "User.Read Calendars.Read openid"
            };
            let grant = shapes::permission_grant(&shapes::PermissionGrant {
                id: "g1",
                client_id: APP_SP,
                resource_id: GRAPH_SP,
                principal,
                scope,
            });
            return ok(shapes::page(None, vec![grant], None));
        }
        not_found(path)
    }
}

/// Entra (discovery, keys, token endpoint) and Graph on one loopback listener.
pub(super) async fn serve(State(fake): State<Arc<Fake>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let tenant = format!("/{TENANT}");
    if path == format!("{tenant}/v2.0/.well-known/openid-configuration") {
        let base = &fake.base;
        let at = |endpoint: Endpoint| {
            if fake.endpoint == endpoint {
                &fake.closed
            } else {
                base
            }
        };
        let issuer = if fake.endpoint == Endpoint::OtherIssuer {
            format!("https://login.microsoftonline.com/{TENANT}/v2.0")
        } else {
            format!("{base}/{TENANT}/v2.0")
        };
        let keys = if fake.endpoint == Endpoint::KeysOverPlainHttp {
            format!("http://keys.contoso.test/{TENANT}/discovery/v2.0/keys")
        } else {
            format!(
                "{}/{TENANT}/discovery/v2.0/keys",
                at(Endpoint::KeysUnreachable)
            )
        };
        let mut document = shapes::openid_configuration(&format!("{base}/{TENANT}"));
        document["issuer"] = json!(issuer);
        document["jwks_uri"] = json!(keys);
        document["token_endpoint"] = json!(format!(
            "{}/{TENANT}/oauth2/v2.0/token",
            at(Endpoint::TokenUnreachable)
        ));
        return axum::Json(document).into_response();
    }
    if path == format!("{tenant}/discovery/v2.0/keys") {
        if fake.endpoint == Endpoint::KeysNotJson {
            return (
                [("content-type", "text/html")],
                "<html><body>Sign in to your network</body></html>",
            )
                .into_response();
        }
        return axum::Json(fake.jwks.clone()).into_response();
    }
    if path == format!("{tenant}/oauth2/v2.0/token") {
        if fake.endpoint == Endpoint::TokenFailing {
            return (StatusCode::SERVICE_UNAVAILABLE, "upstream unavailable").into_response();
        }
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(shapes::entra_error(
                "invalid_client",
                7000216,
                "client_assertion, client_secret or request is required.",
            )),
        )
            .into_response();
    }
    let bearer = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(OPERATOR_TOKEN) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(shapes::invalid_token()),
        )
            .into_response();
    }
    fake.graph(&path, &query)
}
