//! Microsoft Graph's and Entra's JSON shapes, written once for everything in this repository
//! that stands in for them: the `mcp-obo dev` Graph emulator (`graph.rs`, `registration.rs`,
//! `fixtures.rs`) and provider, the test kit's fake Graph and fake Entra (which re-export this
//! module), and the doctor tests' fake app registration. Each fake decides *what* it answers
//! (whose profile, which registration, which failure); the bodies are built here, in the
//! shapes and with the messages Graph and Entra send, so a field added to one is in all.
//!
//! What the server and `mcp-obo doctor` read of these shapes is theirs (`graph/`,
//! `doctor/graph_shapes.rs`): this module only writes them.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::tools::{CALENDARS_READ, GraphPermission, USER_READ};

/// Each Graph path the tools call and the delegated permission its token's `scp` must hold
/// (as Graph answers 403 `ErrorAccessDenied` without it). A new tool's endpoint is one entry.
pub const PATHS: &[(&str, GraphPermission)] = &[
    ("/v1.0/me", USER_READ),
    ("/v1.0/me/calendarView", CALENDARS_READ),
];

/// The permission Graph requires for `path`.
pub fn permission_for(path: &str) -> Option<GraphPermission> {
    PATHS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, perm)| *perm)
}

// --- Graph's errors ------------------------------------------------------------------------

/// Graph's error body: `{"error": {"code", "message", "innerError"}}`.
pub fn error(code: &str, message: &str) -> Value {
    let date = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    json!({"error": {
        "code": code,
        "message": message,
        "innerError": {
            "date": date.trim_end_matches('Z'),
            "request-id": "00000000-0000-4000-8000-000000000001",
            "client-request-id": "00000000-0000-4000-8000-000000000001",
        },
    }})
}

/// 401: a token Graph does not accept (another audience, a bad signature, none at all).
pub fn invalid_token() -> Value {
    error(
        "InvalidAuthenticationToken",
        "Access token validation failure. Invalid audience.",
    )
}

/// 403: a valid token whose `scp` lacks the path's permission.
pub fn access_denied() -> Value {
    error(
        "ErrorAccessDenied",
        "Access is denied. Check credentials and try again.",
    )
}

/// 404: no object `what` (an application, a service principal, a path).
pub fn not_found(what: &str) -> Value {
    error(
        "Request_ResourceNotFound",
        &format!(
            "Resource '{what}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

/// 400: a query parameter Graph refuses.
pub fn invalid_parameter(message: &str) -> Value {
    error("ErrorInvalidParameter", message)
}

// --- /me and calendarView ------------------------------------------------------------------

/// A user as `GET /v1.0/me` describes them.
pub struct Profile<'a> {
    pub id: &'a str,
    pub display_name: &'a str,
    /// `null` for a user without a mailbox (the server falls back to the UPN).
    pub mail: Option<&'a str>,
    pub user_principal_name: &'a str,
}

/// `GET /v1.0/me`, `graph_base` naming the service in `@odata.context`.
pub fn me(graph_base: &str, profile: &Profile<'_>) -> Value {
    json!({
        "@odata.context": format!("{graph_base}/v1.0/$metadata#users/$entity"),
        "id": profile.id,
        "displayName": profile.display_name,
        "mail": profile.mail,
        "userPrincipalName": profile.user_principal_name,
    })
}

/// One calendar event as `calendarView` returns it with `Prefer: outlook.timezone="UTC"`.
pub struct Event<'a> {
    pub id: &'a str,
    pub subject: &'a str,
    pub start: SystemTime,
    pub end: SystemTime,
    pub location: &'a str,
    /// (display name, address).
    pub organizer: (&'a str, &'a str),
    /// The Teams join URL of an online meeting.
    pub join_url: Option<&'a str>,
    pub web_link: &'a str,
}

/// The event's JSON.
pub fn event(e: &Event<'_>) -> Value {
    json!({
        "id": e.id,
        "subject": e.subject,
        "start": {"dateTime": date_time(e.start), "timeZone": "UTC"},
        "end": {"dateTime": date_time(e.end), "timeZone": "UTC"},
        "location": {"displayName": e.location},
        "organizer": {"emailAddress": {"name": e.organizer.0, "address": e.organizer.1}},
        "isOnlineMeeting": e.join_url.is_some(),
        "onlineMeeting": e.join_url.map(|url| json!({"joinUrl": url})),
        "webLink": e.web_link,
    })
}

/// Graph's `dateTime` with `timeZone: "UTC"`: `2026-01-02T10:00:00.0000000`.
pub fn date_time(at: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(at).to_string();
    format!("{}.0000000", text.trim_end_matches('Z'))
}

/// One page of a collection: `value`, with `@odata.context` when given and
/// `@odata.nextLink` while more remain.
pub fn page(context: Option<&str>, value: Vec<Value>, next_link: Option<&str>) -> Value {
    let mut body = json!({ "value": value });
    if let Some(context) = context {
        body["@odata.context"] = json!(context);
    }
    if let Some(next) = next_link {
        body["@odata.nextLink"] = json!(next);
    }
    body
}

// --- The app registration, as `mcp-obo doctor` reads it --------------------------------------

/// An application object (`GET /v1.0/applications(appId='…')`) exposing one delegated scope,
/// `user_impersonation`, and asking for Graph permissions.
pub struct Application<'a> {
    pub object_id: &'a str,
    pub app_id: &'a str,
    pub display_name: &'a str,
    pub identifier_uris: Vec<String>,
    /// The `user_impersonation` scope's id.
    pub scope_id: &'a str,
    /// Client apps pre-authorized for that scope (VS Code's, typically).
    pub pre_authorized: &'a [&'a str],
    /// Ids of the Graph delegated permissions in `requiredResourceAccess`.
    pub graph_permission_ids: Vec<&'a str>,
}

/// The application's JSON, with v2 access tokens.
pub fn application(a: &Application<'_>) -> Value {
    json!({
        "id": a.object_id,
        "appId": a.app_id,
        "displayName": a.display_name,
        "signInAudience": "AzureADMyOrg",
        "identifierUris": a.identifier_uris,
        "api": {
            "acceptMappedClaims": null,
            "knownClientApplications": [],
            "requestedAccessTokenVersion": 2,
            "oauth2PermissionScopes": [{
                "adminConsentDescription": "Access the MCP server as the signed-in user",
                "adminConsentDisplayName": "Access the MCP server as the signed-in user",
                "id": a.scope_id,
                "isEnabled": true,
                "type": "User",
                "userConsentDescription": null,
                "userConsentDisplayName": null,
                "value": "user_impersonation",
            }],
            "preAuthorizedApplications": a.pre_authorized.iter()
                .map(|id| json!({"appId": id, "delegatedPermissionIds": [a.scope_id]}))
                .collect::<Vec<_>>(),
        },
        "requiredResourceAccess": [{
            "resourceAppId": crate::tools::GRAPH_APP_ID,
            "resourceAccess": a.graph_permission_ids.iter()
                .map(|id| json!({"id": id, "type": "Scope"}))
                .collect::<Vec<_>>(),
        }],
    })
}

/// A federated identity credential of an application.
pub struct FederatedCredential<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub issuer: &'a str,
    pub subject: &'a str,
    pub audience: &'a str,
}

/// `GET /v1.0/applications(appId='…')/federatedIdentityCredentials`.
pub fn federated_credentials(credentials: &[FederatedCredential<'_>]) -> Value {
    let value = credentials
        .iter()
        .map(|c| {
            json!({"id": c.id, "name": c.name, "issuer": c.issuer, "subject": c.subject,
                   "description": null, "audiences": [c.audience]})
        })
        .collect();
    page(None, value, None)
}

/// `GET /v1.0/servicePrincipals(appId='…')`.
pub fn service_principal(object_id: &str, app_id: &str, display_name: &str) -> Value {
    json!({"id": object_id, "appId": app_id, "displayName": display_name,
           "servicePrincipalType": "Application"})
}

/// One delegated permission grant (`oauth2PermissionGrants`): `scope` granted by the client's
/// service principal on the resource's, for every user (admin consent) or for `principal`.
pub struct PermissionGrant<'a> {
    pub id: &'a str,
    pub client_id: &'a str,
    pub resource_id: &'a str,
    /// `None`: admin consent (`AllPrincipals`); else one user's consent.
    pub principal: Option<&'a str>,
    pub scope: &'a str,
}

/// The grant's JSON.
pub fn permission_grant(g: &PermissionGrant<'_>) -> Value {
    json!({
        "id": g.id,
        "clientId": g.client_id,
        "consentType": if g.principal.is_some() { "Principal" } else { "AllPrincipals" },
        "principalId": g.principal,
        "resourceId": g.resource_id,
        "scope": g.scope,
    })
}

// --- Entra ---------------------------------------------------------------------------------

/// Entra's OpenID configuration for the tenant authority `tenant_base`
/// (`{authority host}/{tenant}`): its v2 issuer, keys, token and authorization endpoints.
pub fn openid_configuration(tenant_base: &str) -> Value {
    json!({
        "issuer": format!("{tenant_base}/v2.0"),
        "jwks_uri": format!("{tenant_base}/discovery/v2.0/keys"),
        "token_endpoint": format!("{tenant_base}/oauth2/v2.0/token"),
        "authorization_endpoint": format!("{tenant_base}/oauth2/v2.0/authorize"),
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
    })
}

/// Entra's token endpoint error: the OAuth `error`, and `AADSTS{code}` in front of
/// `description`, with the trace fields Entra adds.
pub fn entra_error(error: &str, code: u64, description: &str) -> Value {
    json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {description} Trace ID: 00000000-0000-4000-8000-000000000002 Correlation ID: 00000000-0000-4000-8000-000000000003"
        ),
        "error_codes": [code],
        "timestamp": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        "trace_id": "00000000-0000-4000-8000-000000000002",
        "correlation_id": "00000000-0000-4000-8000-000000000003",
    })
}
