//! The parts of Microsoft Graph's answers doctor reads. Extra fields are ignored, and a
//! `null` reads as empty, so Graph adding properties never breaks a check.

use serde::{Deserialize, Deserializer};

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `GET /v1.0/applications(appId='…')`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Application {
    #[serde(deserialize_with = "null_as_default")]
    pub app_id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub identifier_uris: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub api: Api,
    #[serde(deserialize_with = "null_as_default")]
    pub required_resource_access: Vec<RequiredResourceAccess>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Api {
    /// `null` (the default of a new registration) means v1 tokens.
    pub requested_access_token_version: Option<i64>,
    #[serde(deserialize_with = "null_as_default")]
    pub oauth2_permission_scopes: Vec<PermissionScope>,
    #[serde(deserialize_with = "null_as_default")]
    pub pre_authorized_applications: Vec<PreAuthorizedApplication>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PermissionScope {
    #[serde(deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub value: String,
    #[serde(deserialize_with = "null_as_default")]
    pub is_enabled: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PreAuthorizedApplication {
    #[serde(deserialize_with = "null_as_default")]
    pub app_id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub delegated_permission_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequiredResourceAccess {
    #[serde(deserialize_with = "null_as_default")]
    pub resource_app_id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub resource_access: Vec<ResourceAccess>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ResourceAccess {
    #[serde(deserialize_with = "null_as_default")]
    pub id: String,
    /// `Scope` (delegated) or `Role` (application).
    #[serde(rename = "type", deserialize_with = "null_as_default")]
    pub kind: String,
}

/// `GET /v1.0/applications(appId='…')/federatedIdentityCredentials` (each of `value`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FederatedIdentityCredential {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub issuer: String,
    #[serde(deserialize_with = "null_as_default")]
    pub subject: String,
    #[serde(deserialize_with = "null_as_default")]
    pub audiences: Vec<String>,
}

/// `GET /v1.0/servicePrincipals(appId='…')`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServicePrincipal {
    #[serde(deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub app_id: String,
}

/// `GET /v1.0/oauth2PermissionGrants?$filter=…` (each of `value`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PermissionGrant {
    /// The client's service principal object id.
    #[serde(deserialize_with = "null_as_default")]
    pub client_id: String,
    /// `AllPrincipals` (admin consent) or `Principal` (one user's).
    #[serde(deserialize_with = "null_as_default")]
    pub consent_type: String,
    /// The resource's service principal object id (Graph's, here).
    #[serde(deserialize_with = "null_as_default")]
    pub resource_id: String,
    /// Space-separated scope values.
    #[serde(deserialize_with = "null_as_default")]
    pub scope: String,
}

/// A Graph collection.
#[derive(Debug, Clone, Deserialize)]
pub struct Collection<T> {
    pub value: Vec<T>,
}

/// Graph's error body: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ErrorDetail {
    #[serde(deserialize_with = "null_as_default")]
    pub code: String,
    #[serde(deserialize_with = "null_as_default")]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_registration_reads_with_nulls_and_extra_fields() {
        let app: Application = serde_json::from_value(serde_json::json!({
            "id": "object-id", "appId": "app", "displayName": "x",
            "identifierUris": [], "api": {"requestedAccessTokenVersion": null,
            "oauth2PermissionScopes": null, "knownClientApplications": []},
            "requiredResourceAccess": null
        }))
        .expect("application");
        assert_eq!(app.app_id, "app");
        assert_eq!(app.api.requested_access_token_version, None);
        assert!(app.api.oauth2_permission_scopes.is_empty());
        assert!(app.required_resource_access.is_empty());
    }
}
