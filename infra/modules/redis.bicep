// The shared token cache (optional, SHARED_TOKEN_CACHE): an Azure Managed Redis cluster with
// one database, TLS only, no access keys, and the server's managed identity as its only user
// (Microsoft Entra authentication, the `default` access policy). Every replica reads and
// writes the same encrypted entries, so a user is exchanged once for the whole app
// (docs/shared-cache.md).
//
// Resource types and properties: Microsoft.Cache 2025-04-01 (tests/schemas/redis-enterprise.json
// lists what is used here and what the API accepts; scripts/lint_deploy.py checks both).

@description('Name of the Azure Managed Redis cluster (1-60 letters, digits and single hyphens).')
@minLength(1)
@maxLength(60)
param name string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object

@description('Azure Managed Redis SKU. Balanced_B0 (0.5 GB) holds far more tokens than a tenant has users.')
@allowed([
  'Balanced_B0'
  'Balanced_B1'
  'Balanced_B3'
  'Balanced_B5'
  'Balanced_B10'
])
param skuName string = 'Balanced_B0'

@description('Object id (principal id) of the managed identity the server runs as: the database\'s only user.')
param principalId string

// The database port of Azure Managed Redis (TLS).
var port = 10000

resource cluster 'Microsoft.Cache/redisEnterprise@2025-04-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
  }
  properties: {
    minimumTlsVersion: '1.2'
    // A replica per shard: a node restart loses no entries (losing them costs one exchange
    // per user, never a failed call, but there is no reason to).
    highAvailability: 'Enabled'
  }
}

// Azure Managed Redis has exactly one database, named `default`.
resource database 'Microsoft.Cache/redisEnterprise/databases@2025-04-01' = {
  parent: cluster
  name: 'default'
  properties: {
    // TLS only; the server connects with rediss:// and checks the certificate.
    clientProtocol: 'Encrypted'
    port: port
    // The default policy: the server's client is cluster-aware (shared_cache.cluster = true).
    clusteringPolicy: 'OSSCluster'
    // Every entry carries its TTL (the token's own expiry): under memory pressure Redis
    // drops the entries closest to expiry first, never refuses a write.
    evictionPolicy: 'VolatileLRU'
    // Entries are worth one exchange each: nothing to persist.
    persistence: {
      aofEnabled: false
      rdbEnabled: false
    }
    // Microsoft Entra only: no key exists that could leak.
    accessKeysAuthentication: 'Disabled'
  }
}

// The server's managed identity as a database user (its object id is the user name it sends
// with AUTH), with the `default` policy, the only one Azure Managed Redis offers.
resource serverAccess 'Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments@2025-04-01' = {
  parent: database
  // Letters and digits only (the API's pattern).
  name: 'mcpobo'
  properties: {
    accessPolicyName: 'default'
    user: {
      objectId: principalId
    }
  }
}

output hostName string = cluster.properties.hostName
output port int = port
// What the server connects to (MCP_OBO__OBO__SHARED_CACHE__URL).
output url string = 'rediss://${cluster.properties.hostName}:${port}'
