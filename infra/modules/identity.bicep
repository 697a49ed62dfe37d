// The user-assigned managed identity of the function app: pulls the image from the
// registry, reaches the Functions host's storage and Application Insights, and is trusted by
// the Entra application as its federated credential (the client assertion of the
// on-behalf-of exchange).

@description('Name of the managed identity.')
param name string

@description('Azure region.')
param location string

@description('Tags for the resource.')
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
