// The Entra application of the MCP server, through the Microsoft Graph Bicep extension:
//   - the resource MCP clients request tokens for: identifier URI, the delegated scope
//     `user_impersonation`, v2 access tokens, clients pre-authorized for that scope;
//   - the confidential client of the on-behalf-of exchange: it requests the Microsoft Graph
//     delegated permissions of the registered tools (../graph-permissions.json, written by
//     `mcp-obo tools --permissions-json`) for the signed-in user and proves its identity with the managed identity's
//     token (federated identity credential), never a secret;
//   - the client of Container Apps' built-in sign-in (/.auth/login/aad) and of the consent
//     link a tool answers with when its permission lacks consent, which returns to the
//     server's own /consent/complete page (redirect URIs; ID token issuance for the former).
// Deploying it needs permission to create applications in the tenant (e.g. Application
// Developer); the deploying user becomes an owner.

extension microsoftGraphV1

@description('Immutable unique name of the application (the Graph extension\'s key for updates).')
param uniqueName string

@description('Display name in the Entra admin center.')
param displayName string

@description('Object id of a user to add as owner (azd\'s AZURE_PRINCIPAL_ID). Empty: none added.')
param ownerPrincipalId string = ''

@description('Client ids pre-authorized for the user_impersonation scope (no consent prompt for it).')
param preAuthorizedClientIds array

@description('Service Tree id some tenants require on application registrations. Empty: not set.')
param serviceManagementReference string = ''

@description('Redirect URI of the built-in sign-in: https://<app host>/.auth/login/aad/callback.')
param redirectUri string

@description('Redirect URI of the server\'s own consent page, where the consent link of a tool\'s answer returns (it never redeems the code): https://<app host>/consent/complete.')
param consentRedirectUri string

@description('Principal (object) id of the managed identity trusted as federated credential.')
param federatedIdentityPrincipalId string

@description('Audience of the managed identity token presented as client assertion.')
param tokenExchangeAudience string = 'api://AzureADTokenExchange'

@description('Grant tenant-wide admin consent: the tools\' Microsoft Graph permissions (graph-permissions.json) for this application, and user_impersonation on it for adminConsentClientAppIds. Needs a deploying user who may grant tenant-wide consent (e.g. Cloud Application Administrator).')
param grantAdminConsent bool = false

@description('MCP client applications (appIds) to consent to user_impersonation for every user when grantAdminConsent is true. Their service principals must already exist in the tenant. Pre-authorized clients need no consent for it.')
param adminConsentClientAppIds array = []

// The Microsoft Graph delegated permissions of the registered tools, derived from the tool
// registry: regenerate with `mcp-obo tools --permissions-json > infra/graph-permissions.json`
// (a test fails when it disagrees with the binary).
var graphPermissions = loadJsonContent('../graph-permissions.json')
var graphAppId = graphPermissions.resourceAppId
// Stable across deployments, so redeploying updates the scope instead of replacing it.
var userImpersonationScopeId = guid(subscription().id, uniqueName, 'user_impersonation')
// api://<tenant id>/<unique name>: one of Entra's secure identifier URI patterns (accepted
// by the default policy that blocks URIs without a unique tenant identifier), and known
// before the application exists; Bicep cannot refer to the application's own appId.
// The server advertises scopes under it (MCP_OBO__AUTH__IDENTIFIER_URIS in mcp-app.bicep).
var identifierUri = 'api://${tenant().tenantId}/${uniqueName}'

resource application 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: 'AzureADMyOrg'
  serviceManagementReference: empty(serviceManagementReference) ? null : serviceManagementReference
  owners: {
    relationships: empty(ownerPrincipalId) ? [] : [
      ownerPrincipalId
    ]
  }
  identifierUris: [
    identifierUri
  ]
  api: {
    requestedAccessTokenVersion: 2
    oauth2PermissionScopes: [
      {
        id: userImpersonationScopeId
        value: 'user_impersonation'
        type: 'User'
        isEnabled: true
        adminConsentDisplayName: 'Access the MCP server as the signed-in user'
        adminConsentDescription: 'Allows the app to call the MCP server, and the server to call Microsoft Graph, on behalf of the signed-in user.'
        userConsentDisplayName: 'Access the MCP server as you'
        userConsentDescription: 'Allows the app to call the MCP server, and the server to call Microsoft Graph, on your behalf.'
      }
    ]
    preAuthorizedApplications: [for clientId in preAuthorizedClientIds: {
      appId: clientId
      delegatedPermissionIds: [
        userImpersonationScopeId
      ]
    }]
  }
  requiredResourceAccess: [
    {
      resourceAppId: graphAppId
      resourceAccess: [for permission in graphPermissions.permissions: {
        id: permission.id
        type: 'Scope'
      }]
    }
  ]
  web: {
    redirectUris: [
      redirectUri
      consentRedirectUri
    ]
    // The built-in sign-in has no client secret (Container Apps cannot use the managed
    // identity for it), so it signs in with the ID token flow.
    implicitGrantSettings: {
      enableIdTokenIssuance: true
      enableAccessTokenIssuance: false
    }
  }
}

resource servicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: application.appId
}

// Tenant-wide ("admin") consent, optional: without it every user consents once at the app's
// sign-in page, or an administrator consents in the Entra admin center (see the outputs).
// Microsoft Graph's service principal exists in every tenant.
resource graphServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' existing = if (grantAdminConsent) {
  appId: graphAppId
}

// The server (this application) may call Graph as any user of the tenant: the tools'
// delegated permissions, which its on-behalf-of exchanges ask for.
resource graphConsent 'Microsoft.Graph/oauth2PermissionGrants@v1.0' = if (grantAdminConsent) {
  clientId: servicePrincipal.id
  consentType: 'AllPrincipals'
  resourceId: graphServicePrincipal!.id
  scope: graphPermissions.scope
}

resource consentClientServicePrincipals 'Microsoft.Graph/servicePrincipals@v1.0' existing = [for appId in adminConsentClientAppIds: if (grantAdminConsent) {
  appId: appId
}]

// The MCP clients may request user_impersonation on this server for any user of the tenant.
resource clientConsents 'Microsoft.Graph/oauth2PermissionGrants@v1.0' = [for (appId, i) in adminConsentClientAppIds: if (grantAdminConsent) {
  clientId: consentClientServicePrincipals[i]!.id
  consentType: 'AllPrincipals'
  resourceId: servicePrincipal.id
  scope: 'user_impersonation'
}]

// The managed identity's token (audience tokenExchangeAudience) is accepted as this
// application's client assertion. Graph child resources are named '<parent uniqueName>/<name>'.
resource federatedCredential 'Microsoft.Graph/applications/federatedIdentityCredentials@v1.0' = {
  name: '${application.uniqueName}/function-app-identity'
  description: 'Managed identity of the mcp-obo function app (client assertion of the on-behalf-of exchange).'
  issuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
  subject: federatedIdentityPrincipalId
  audiences: [
    tokenExchangeAudience
  ]
}

output clientId string = application.appId
output objectId string = application.id
output identifierUri string = identifierUri
output servicePrincipalId string = servicePrincipal.id
output scope string = '${identifierUri}/user_impersonation'
// Where an administrator grants the consent by hand when grantAdminConsent is false.
output adminConsentUrl string = '${environment().authentication.loginEndpoint}${tenant().tenantId}/adminconsent?client_id=${application.appId}'
output adminConsentGranted bool = grantAdminConsent
