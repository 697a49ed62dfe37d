// The storage account the Functions host requires (AzureWebJobsStorage), reached with the
// function app's managed identity: shared keys are disabled, so no connection string exists.

@description('Name of the storage account (3-24 lowercase alphanumerics, globally unique).')
param name string

@description('Azure region.')
param location string

@description('Tags for the resource.')
param tags object

@description('Principal of the Functions host (the function app identity).')
param hostPrincipalId string

// Least privilege for an HTTP-only function app with identity-based AzureWebJobsStorage:
// - Storage Blob Data Owner: the host's leases, host id lock and state blobs (the role the
//   Functions docs require for AzureWebJobsStorage; Contributor is not enough for leases).
// - Storage Table Data Contributor: the host's diagnostic events table.
// No queue role: only queue and blob triggers use queues, and this app has neither.
var blobDataOwnerRoleId = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var tableDataContributorRoleId = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35:The Functions host on a Consumption Container Apps environment without a VNet reaches storage over its public endpoint; shared keys are disabled, so only Entra principals with a data role get in
  // checkov:skip=CKV_AZURE_59:Same as CKV_AZURE_35: public network access is required without a VNet; blob public access is off and shared keys are disabled
  // checkov:skip=CKV_AZURE_206:Holds only the Functions host's leases and diagnostics, rebuilt on start; LRS is available in every region, ZRS is not
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, hostPrincipalId, blobDataOwnerRoleId)
  scope: storage
  properties: {
    principalId: hostPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataOwnerRoleId)
  }
}

resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, hostPrincipalId, tableDataContributorRoleId)
  scope: storage
  properties: {
    principalId: hostPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', tableDataContributorRoleId)
  }
}

output name string = storage.name
output id string = storage.id
