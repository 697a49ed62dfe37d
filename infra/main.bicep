// mcp-obo on Azure Container Apps, provisioned by `azd up`.
//
// Subscription scope (azd's default): one resource group holding the container registry,
// the storage account the Functions host needs, monitoring, the Container Apps environment
// and the function app; plus the Entra application (Microsoft Graph Bicep extension) that
// the MCP clients sign in to and that exchanges their tokens on-behalf-of the user.
//
// Identity: one user-assigned managed identity (UAMI) pulls the image, reaches storage and
// Application Insights, and is the federated credential of the Entra application (no
// secrets anywhere).

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; also names the resource group and seeds resource names.')
param environmentName string

@minLength(1)
@description('Azure region for every resource.')
param location string

@description('Object id of the user running azd (AZURE_PRINCIPAL_ID); made an owner of the Entra application. Optional.')
param principalId string = ''

@description('Comma-separated client ids allowed to call the server without a consent prompt for its scope (PRE_AUTHORIZED_CLIENT_IDS). VS Code is aebc6443-996d-45c2-90f0-388ff96faa56.')
param preAuthorizedClientIds string = 'aebc6443-996d-45c2-90f0-388ff96faa56'

@description('Service Tree id some tenants require on every application registration (SERVICE_MANAGEMENT_REFERENCE). Optional.')
param serviceManagementReference string = ''

@description('Overrides the audience of the managed identity token used as client assertion (TOKEN_EXCHANGE_AUDIENCE). Empty: the cloud\'s (api://AzureADTokenExchange, ...USGov, ...China).')
param tokenExchangeAudience string = ''

@description('Grant tenant-wide admin consent for the tools\' Microsoft Graph permissions (graph-permissions.json; and user_impersonation for adminConsentClientIds) while provisioning (GRANT_ADMIN_CONSENT). Needs a deploying user who may grant tenant-wide consent. Off: the consent step is printed after provisioning.')
param grantAdminConsent bool = false

@description('Comma-separated MCP client app ids to consent to user_impersonation tenant-wide when grantAdminConsent is true (ADMIN_CONSENT_CLIENT_IDS). Pre-authorized clients do not need it.')
param adminConsentClientIds string = ''

@description('Image of the mcp service, set by azd after the first deploy (SERVICE_MCP_IMAGE_NAME). Empty: a placeholder image until then.')
param mcpImageName string = ''

@description('Minimum replicas of the function app (0 allows scale to zero, at the cost of a cold start on the first MCP request).')
@minValue(0)
param mcpMinReplicas int = 1

@description('Maximum replicas of the function app.')
@minValue(1)
param mcpMaxReplicas int = 10

@description('Expose mcp-obo\'s /metrics port (9464) to other apps of the Container Apps environment (MCP_METRICS_IN_ENVIRONMENT). Never exposed publicly.')
param mcpExposeMetricsInEnvironment bool = false

@description('Provision an Azure Managed Redis as the shared token cache of every replica (SHARED_TOKEN_CACHE): one on-behalf-of exchange per user for the whole app instead of one per replica. Microsoft Entra authentication for the server\'s identity, TLS only. See docs/shared-cache.md for when it pays off and what it costs.')
param sharedTokenCache bool = false

@description('SKU of that Azure Managed Redis (SHARED_TOKEN_CACHE_SKU).')
@allowed([
  'Balanced_B0'
  'Balanced_B1'
  'Balanced_B3'
  'Balanced_B5'
  'Balanced_B10'
])
param sharedTokenCacheSku string = 'Balanced_B0'

var tags = {
  'azd-env-name': environmentName
}

// Sovereign clouds: every endpoint follows the cloud this deployment runs in, i.e. the cloud
// azd is configured for (`azd config set cloud.name AzureUSGovernment`): environment() gives
// its name, authority and storage suffix; Microsoft Graph and the federated credential
// audience are not in environment() and come from this table (tests/schemas/clouds.json,
// docs/deploy.md "Sovereign clouds").
var cloudEndpoints = {
  AzureCloud: {
    graph: 'https://graph.microsoft.com'
    tokenExchangeAudience: 'api://AzureADTokenExchange'
  }
  AzureUSGovernment: {
    graph: 'https://graph.microsoft.us'
    tokenExchangeAudience: 'api://AzureADTokenExchangeUSGov'
  }
  AzureChinaCloud: {
    graph: 'https://microsoftgraph.chinacloudapi.cn'
    tokenExchangeAudience: 'api://AzureADTokenExchangeChina'
  }
}
var cloud = cloudEndpoints[environment().name]
var exchangeAudience = empty(tokenExchangeAudience) ? cloud.tokenExchangeAudience : tokenExchangeAudience
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var mcpAppName = 'mcp-${resourceToken}'
var clientIdList = [for id in split(preAuthorizedClientIds, ','): trim(id)]
var preAuthorizedClientIdArray = filter(clientIdList, id => !empty(id))
var adminConsentClientIdList = [for id in split(adminConsentClientIds, ','): trim(id)]
var adminConsentClientIdArray = filter(adminConsentClientIdList, id => !empty(id))
// Visual Studio Code's public client id.
var vscodeClientId = 'aebc6443-996d-45c2-90f0-388ff96faa56'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-mcp-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
    publisherPrincipalId: identity.outputs.principalId
  }
}

// The operators' view in the portal: a workbook over Application Insights.
module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    displayName: 'mcp-obo (${environmentName})'
  }
}

module registry 'modules/registry.bicep' = {
  name: 'registry'
  scope: rg
  params: {
    name: 'cr${resourceToken}'
    location: location
    tags: tags
    pullPrincipalId: identity.outputs.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    hostPrincipalId: identity.outputs.principalId
  }
}

module appsEnvironment 'modules/containerapps-environment.bicep' = {
  name: 'containerapps-environment'
  scope: rg
  params: {
    name: 'cae-${resourceToken}'
    location: location
    tags: tags
    logAnalyticsWorkspaceName: monitoring.outputs.logAnalyticsWorkspaceName
    applicationInsightsConnectionString: monitoring.outputs.applicationInsightsConnectionString
  }
}

module redis 'modules/redis.bicep' = if (sharedTokenCache) {
  name: 'redis'
  scope: rg
  params: {
    name: 'redis-${resourceToken}'
    location: location
    tags: tags
    skuName: sharedTokenCacheSku
    principalId: identity.outputs.principalId
  }
}

var mcpFqdn = '${mcpAppName}.${appsEnvironment.outputs.defaultDomain}'

module entraApp 'modules/entra-app.bicep' = {
  name: 'entra-app'
  scope: rg
  params: {
    uniqueName: 'mcp-obo-${resourceToken}'
    displayName: 'mcp-obo (${environmentName})'
    ownerPrincipalId: principalId
    preAuthorizedClientIds: preAuthorizedClientIdArray
    serviceManagementReference: serviceManagementReference
    redirectUri: 'https://${mcpFqdn}/.auth/login/aad/callback'
    consentRedirectUri: 'https://${mcpFqdn}/consent/complete'
    federatedIdentityPrincipalId: identity.outputs.principalId
    tokenExchangeAudience: exchangeAudience
    grantAdminConsent: grantAdminConsent
    adminConsentClientAppIds: adminConsentClientIdArray
  }
}

module mcpApp 'modules/mcp-app.bicep' = {
  name: 'mcp-app'
  scope: rg
  params: {
    name: mcpAppName
    location: location
    tags: union(tags, { 'azd-service-name': 'mcp' })
    environmentId: appsEnvironment.outputs.id
    fqdn: mcpFqdn
    imageName: mcpImageName
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    registryLoginServer: registry.outputs.loginServer
    storageAccountName: storage.outputs.name
    applicationInsightsConnectionString: monitoring.outputs.applicationInsightsConnectionString
    entraClientId: entraApp.outputs.clientId
    entraIdentifierUri: entraApp.outputs.identifierUri
    preAuthorizedClientIds: preAuthorizedClientIdArray
    tokenExchangeAudience: exchangeAudience
    graphBaseUrl: cloud.graph
    authorityHost: environment().authentication.loginEndpoint
    storageSuffix: environment().suffixes.storage
    minReplicas: mcpMinReplicas
    maxReplicas: mcpMaxReplicas
    exposeMetricsInEnvironment: mcpExposeMetricsInEnvironment
    environmentName: environmentName
    sharedCacheUrl: sharedTokenCache ? redis.outputs.url : ''
    sharedCacheUsername: sharedTokenCache ? identity.outputs.principalId : ''
  }
}

// Names the sample's users rely on, plus what azd and the docs need.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
// The cloud the deployment runs in (environment().name) and its Microsoft Graph.
output MCP_AZURE_CLOUD string = environment().name
output MCP_GRAPH_BASE_URL string = cloud.graph
output MCP_AUTHORITY_HOST string = environment().authentication.loginEndpoint
output AZURE_RESOURCE_GROUP_NAME string = rg.name
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.outputs.loginServer
output AZURE_CONTAINER_REGISTRY_NAME string = registry.outputs.name
// The app registration's application (client) id. Not AZURE_CLIENT_ID: that name is the one
// the Azure SDKs and CI systems read for their OWN identity, so an azd environment exporting it
// would redirect them to this application.
output ENTRA_APPLICATION_ID string = entraApp.outputs.clientId
// Deprecated, kept for one release for scripts that read it: use ENTRA_APPLICATION_ID.
// Nothing in this repository reads it (scripts/lint_deploy.py checks).
output AZURE_CLIENT_ID string = entraApp.outputs.clientId
output AZURE_IDENTIFIER_URI string = entraApp.outputs.identifierUri
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output SERVICE_MCP_NAME string = mcpApp.outputs.name
output SERVICE_MCP_DEFAULT_HOSTNAME string = mcpFqdn
output SERVICE_MCP_ENDPOINT_URL string = 'https://${mcpFqdn}'
output MCP_URL string = 'https://${mcpFqdn}/mcp'
output MCP_CONSENT_URL string = 'https://${mcpFqdn}/.auth/login/aad'
// 'true' when VS Code's client id is pre-authorized for the server's scope (postdeploy says so).
output MCP_VSCODE_PREAUTHORIZED string = contains(preAuthorizedClientIdArray, vscodeClientId) ? 'true' : 'false'
// Consent without a portal visit: empty when grantAdminConsent granted it during provisioning;
// otherwise the admin consent page and the equivalent az command (printed by the
// postprovision hook of azure.yaml).
output MCP_ADMIN_CONSENT_URL string = entraApp.outputs.adminConsentGranted ? '' : entraApp.outputs.adminConsentUrl
output MCP_ADMIN_CONSENT_COMMAND string = entraApp.outputs.adminConsentGranted ? '' : 'az ad app permission admin-consent --id ${entraApp.outputs.clientId}'
// The shared token cache's endpoint, empty when SHARED_TOKEN_CACHE is off.
output MCP_SHARED_CACHE_URL string = sharedTokenCache ? redis.outputs.url : ''
