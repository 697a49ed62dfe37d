// The Container Apps environment: Consumption workload profile, console and system logs to
// Log Analytics, and the managed OpenTelemetry agent forwarding the apps' OTLP traces and
// logs to Application Insights (the agent sets OTEL_EXPORTER_OTLP_ENDPOINT in each app).

@description('Name of the environment.')
param name string

@description('Azure region.')
param location string

@description('Tags for the resource.')
param tags object

@description('Name of the Log Analytics workspace in this resource group.')
param logAnalyticsWorkspaceName string

@secure()
@description('Connection string of Application Insights, for the managed OpenTelemetry agent.')
param applicationInsightsConnectionString string

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsWorkspaceName
}

resource appsEnvironment 'Microsoft.App/managedEnvironments@2025-02-02-preview' = {
  name: name
  location: location
  tags: tags
  properties: {
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
    ]
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logAnalytics.properties.customerId
        sharedKey: logAnalytics.listKeys().primarySharedKey
      }
    }
    appInsightsConfiguration: {
      connectionString: applicationInsightsConnectionString
    }
    openTelemetryConfiguration: {
      tracesConfiguration: {
        destinations: [
          'appInsights'
        ]
      }
      logsConfiguration: {
        destinations: [
          'appInsights'
        ]
      }
    }
    zoneRedundant: false
  }
}

output id string = appsEnvironment.id
output name string = appsEnvironment.name
output defaultDomain string = appsEnvironment.properties.defaultDomain
