// The function app: a Container Apps app of kind `functionapp` running the repository's
// `functions` image (the Functions host with mcp-obo as its MCP custom handler), with the
// user-assigned identity, external HTTPS ingress, HTTP scaling, health probes, and
// Container Apps' built-in authentication (authConfigs) in front.

@description('Name of the container app.')
param name string

@description('Azure region.')
param location string

@description('Tags; must include azd-service-name for azd deploy.')
param tags object

@description('Resource id of the Container Apps environment.')
param environmentId string

@description('Public host name of the app: <name>.<environment default domain>.')
param fqdn string

@description('Image to run; empty until azd has built and pushed one (a public placeholder runs meanwhile).')
param imageName string = ''

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

@description('Login server of the container registry.')
param registryLoginServer string

@description('Name of the Functions host storage account.')
param storageAccountName string

@description('The cloud\'s storage endpoint suffix (environment().suffixes.storage): core.windows.net, core.usgovcloudapi.net, core.chinacloudapi.cn.')
param storageSuffix string

@description('The cloud\'s Microsoft Graph base URL: https://graph.microsoft.com, https://graph.microsoft.us, https://microsoftgraph.chinacloudapi.cn.')
param graphBaseUrl string

@description('The cloud\'s Entra authority (environment().authentication.loginEndpoint), with its trailing slash.')
param authorityHost string

@secure()
@description('Application Insights connection string for the Functions host.')
param applicationInsightsConnectionString string

@description('Client id (appId) of the Entra application.')
param entraClientId string

@description('Identifier URI of the Entra application (api://...).')
param entraIdentifierUri string

@description('Client applications allowed to call the server.')
param preAuthorizedClientIds array

@description('Audience of the managed identity token used as client assertion.')
param tokenExchangeAudience string

@description('azd environment name, reported as deployment.environment in telemetry.')
param environmentName string

@minValue(0)
param minReplicas int = 1

@minValue(1)
param maxReplicas int = 10

@description('Concurrent HTTP requests per replica before scaling out.')
param concurrentRequestsPerReplica int = 50

@description('Also expose the /metrics listener (port 9464) inside the Container Apps environment (additionalPortMappings, never external), for a Prometheus scraper running as another app of the environment.')
param exposeMetricsInEnvironment bool = false

@description('URL of the shared token cache (rediss://host:10000, Azure Managed Redis with Entra authentication); empty: off.')
param sharedCacheUrl string = ''

@description('User name the server sends to the shared token cache: its managed identity\'s object id.')
param sharedCacheUsername string = ''

// The shared token cache (Azure Managed Redis, modules/redis.bicep): OSS cluster policy, TLS
// on 10000, Microsoft Entra authentication with the app's managed identity (the token for
// https://redis.azure.com comes from the same IDENTITY_ENDPOINT as the client assertion).
var sharedCacheEnv = empty(sharedCacheUrl) ? [] : [
  {
    name: 'MCP_OBO__OBO__SHARED_CACHE__URL'
    value: sharedCacheUrl
  }
  {
    name: 'MCP_OBO__OBO__SHARED_CACHE__CLUSTER'
    value: 'true'
  }
  {
    name: 'MCP_OBO__OBO__SHARED_CACHE__AUTH'
    value: 'entra'
  }
  {
    name: 'MCP_OBO__OBO__SHARED_CACHE__USERNAME'
    value: sharedCacheUsername
  }
]

// Until azd pushes the real image the app runs the public Functions base image. Every
// revision, that placeholder's included, carries the same probes: `azd deploy` only swaps the
// image of the latest revision and keeps its template, so probes that the first provision left
// out would stay missing until another provision. The placeholder serves no /healthz, so its
// revision stays unhealthy (and gets no traffic) until azd deploys the real image; Container
// Apps does not fail the provisioning for that (microsoft/azure-container-apps#1011).
var image = empty(imageName) ? 'mcr.microsoft.com/azure-functions/base:4' : imageName
// mcp-obo serves /metrics only on this listener (telemetry.metrics_listen), never on the
// ingress port: the public endpoint has no /metrics.
var metricsPort = 9464
// The server only accepts tokens from these client applications; the app itself is added so
// the browser sign-in at /.auth/login/aad (consent) is authorized too.
var allowedApplications = union(preAuthorizedClientIds, [
  entraClientId
])

// Paths the built-in authentication must never block: the server's RFC 9728 protected
// resource metadata (for /mcp, the only MCP path behind the Functions host, which keeps
// /runtime/* for itself) and the probes.
var unauthenticatedPaths = [
  '/.well-known/oauth-protected-resource'
  '/.well-known/oauth-protected-resource/mcp'
  '/healthz'
  '/readyz'
]

// The startup probe allows a cold Functions host 150 s (5 s x 30) to start, launch mcp-obo and
// proxy /healthz to it; liveness and readiness only start counting after it has passed.
var probes = [
  {
    type: 'Startup'
    httpGet: {
      path: '/healthz'
      port: 80
    }
    periodSeconds: 5
    failureThreshold: 30
    timeoutSeconds: 3
  }
  {
    type: 'Liveness'
    httpGet: {
      path: '/healthz'
      port: 80
    }
    periodSeconds: 10
    failureThreshold: 3
    timeoutSeconds: 2
  }
  {
    type: 'Readiness'
    httpGet: {
      path: '/readyz'
      port: 80
    }
    periodSeconds: 5
    failureThreshold: 3
    timeoutSeconds: 2
  }
]

resource app 'Microsoft.App/containerApps@2025-02-02-preview' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    environmentId: environmentId
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        // The Functions host listens on 80 and proxies to mcp-obo on loopback.
        targetPort: 80
        transport: 'auto'
        allowInsecure: false
        // Only the Functions host's port is routed from the public endpoint. The metrics port
        // is reachable from inside the environment only when asked for, and never externally.
        additionalPortMappings: exposeMetricsInEnvironment ? [
          {
            external: false
            targetPort: metricsPort
          }
        ] : null
      }
      registries: [
        {
          server: registryLoginServer
          identity: identityId
        }
      ]
    }
    template: {
      containers: [
        {
          name: 'mcp'
          image: image
          resources: {
            cpu: json('0.5')
            memory: '1Gi'
          }
          probes: probes
          env: concat([
            // Functions host: identity-based AzureWebJobsStorage (no keys exist), by service URI:
            // `__accountName` would assume the public cloud's core.windows.net.
            {
              name: 'AzureWebJobsStorage__blobServiceUri'
              value: 'https://${storageAccountName}.blob.${storageSuffix}'
            }
            {
              name: 'AzureWebJobsStorage__queueServiceUri'
              value: 'https://${storageAccountName}.queue.${storageSuffix}'
            }
            {
              name: 'AzureWebJobsStorage__tableServiceUri'
              value: 'https://${storageAccountName}.table.${storageSuffix}'
            }
            {
              name: 'AzureWebJobsStorage__credential'
              value: 'managedidentity'
            }
            {
              name: 'AzureWebJobsStorage__clientId'
              value: identityClientId
            }
            // Host keys are unused (anonymous functions) and stay in files, not in storage.
            {
              name: 'AzureWebJobsSecretStorageType'
              value: 'files'
            }
            {
              name: 'FUNCTIONS_WORKER_RUNTIME'
              value: 'custom'
            }
            {
              name: 'AzureWebJobsFeatureFlags'
              value: 'EnableMcpCustomHandlerPreview'
            }
            {
              name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
              value: applicationInsightsConnectionString
            }
            {
              name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
              value: 'ClientId=${identityClientId};Authorization=AAD'
            }
            // mcp-obo: behind the built-in authentication, with the server's own metadata,
            // challenge and token checks (easyauth mode).
            {
              name: 'MCP_OBO__SERVER__PUBLIC_URL'
              value: 'https://${fqdn}'
            }
            {
              name: 'MCP_OBO__AUTH__MODE'
              value: 'easyauth'
            }
            {
              name: 'MCP_OBO__AUTH__REQUIRED_SCOPES'
              value: 'user_impersonation'
            }
            // Scopes are advertised as <identifier URI>/user_impersonation.
            {
              name: 'MCP_OBO__AUTH__IDENTIFIER_URIS'
              value: entraIdentifierUri
            }
            {
              name: 'MCP_OBO__AUTH__ALLOWED_CLIENT_APPS'
              value: join(preAuthorizedClientIds, ',')
            }
            {
              name: 'MCP_OBO__OBO__CLIENT_ASSERTION'
              value: 'managed_identity'
            }
            {
              name: 'MCP_OBO__LOG__FORMAT'
              value: 'json'
            }
            // /metrics on its own listener, off the ingress port.
            {
              name: 'MCP_OBO__TELEMETRY__METRICS_LISTEN'
              value: '0.0.0.0:${metricsPort}'
            }
            // The cloud's authority and Microsoft Graph (the Graph scopes derive from it).
            {
              name: 'MCP_OBO__ENTRA__AUTHORITY_HOST'
              value: authorityHost
            }
            {
              name: 'MCP_OBO__GRAPH__BASE_URL'
              value: graphBaseUrl
            }
            {
              name: 'AZURE_TENANT_ID'
              value: tenant().tenantId
            }
            {
              name: 'AZURE_CLIENT_ID'
              value: entraClientId
            }
            {
              name: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'
              value: identityClientId
            }
            {
              name: 'TOKEN_EXCHANGE_AUDIENCE'
              value: tokenExchangeAudience
            }
            {
              name: 'OTEL_SERVICE_NAME'
              value: 'mcp-obo'
            }
            {
              name: 'OTEL_RESOURCE_ATTRIBUTES'
              value: 'deployment.environment=${environmentName}'
            }
          ], sharedCacheEnv)
        }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        rules: [
          {
            name: 'http-concurrency'
            http: {
              metadata: {
                concurrentRequests: string(concurrentRequestsPerReplica)
              }
            }
          }
        ]
      }
    }
  }
}

// Built-in authentication ("Easy Auth") in front of the app.
//
// Decision: unauthenticatedClientAction = AllowAnonymous, and the server (auth.mode easyauth)
// answers unauthenticated MCP requests itself.
// Why not Return401: Container Apps' authentication does not generate RFC 9728 protected
// resource metadata and its 401 carries no `WWW-Authenticate: Bearer resource_metadata=...`
// (microsoft/azure-container-apps#1736). MCP clients such as VS Code discover the
// authorization server from that header; a bare platform 401 on /mcp stops them before they
// ever read the server's metadata. With AllowAnonymous the platform still validates every
// token that is presented (issuer, audience, allowed applications; an invalid token is
// rejected at the edge) and strips any X-MS-CLIENT-PRINCIPAL* header a caller sends, while a
// request without a token reaches mcp-obo, which returns 401 with the resource_metadata
// challenge and serves /.well-known/oauth-protected-resource*. mcp-obo never serves a tool
// without a validated caller. The excluded paths keep the metadata and probes reachable if
// the action is ever switched to Return401.
resource auth 'Microsoft.App/containerApps/authConfigs@2025-02-02-preview' = {
  parent: app
  name: 'current'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      unauthenticatedClientAction: 'AllowAnonymous'
      excludedPaths: unauthenticatedPaths
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: entraClientId
          openIdIssuer: '${authorityHost}${tenant().tenantId}/v2.0'
        }
        validation: {
          // v2 access tokens carry the client id as audience; v1 tokens the identifier URI.
          allowedAudiences: [
            entraClientId
            entraIdentifierUri
          ]
          defaultAuthorizationPolicy: {
            allowedApplications: allowedApplications
          }
        }
        login: {
          // Signing in at /.auth/login/aad also asks the user to consent to the Graph
          // permission the server uses on their behalf.
          loginParameters: [
            'scope=openid profile email ${graphBaseUrl}/User.Read'
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

output name string = app.name
output id string = app.id
output fqdn string = fqdn
output metricsPort int = metricsPort
