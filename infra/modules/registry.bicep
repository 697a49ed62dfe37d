// The container registry azd pushes the `functions` image to. No admin user and no
// anonymous pull: the function app pulls with its managed identity (AcrPull).

@description('Name of the registry (alphanumeric, globally unique).')
param name string

@description('Azure region.')
param location string

@description('Tags for the resource.')
param tags object

@description('Principal allowed to pull images (the function app identity).')
param pullPrincipalId string

var acrPullRoleId = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  // checkov:skip=CKV_AZURE_139:Public endpoint is needed: azd pushes from the developer's machine and Consumption Container Apps without a VNet pull over it; access is Entra-only (no admin user, no anonymous pull)
  // checkov:skip=CKV_AZURE_233:Zone redundancy is a Premium-SKU feature; the registry only holds images azd rebuilds from source
  // checkov:skip=CKV_AZURE_166:Quarantine and image verification are Premium-SKU features; the only image is this repository's own build
  // checkov:skip=CKV_AZURE_163:Vulnerability scanning is Microsoft Defender for Containers, a subscription-level plan, not a registry property
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Basic'
  }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: 'Enabled'
    zoneRedundancy: 'Disabled'
  }
}

resource acrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, pullPrincipalId, acrPullRoleId)
  scope: registry
  properties: {
    principalId: pullPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPullRoleId)
  }
}

output name string = registry.name
output id string = registry.id
output loginServer string = registry.properties.loginServer
