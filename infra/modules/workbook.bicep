// The mcp-obo Azure Monitor workbook over Application Insights, i.e. over what this deployment
// sends to Azure: the server's OpenTelemetry spans (the Container Apps managed agent forwards
// traces and logs, not metrics). Tool calls, latency, exchanges, the in-process cache's hit
// ratio, auth failures, refusals by limit and Graph 401s; the panels match the Grafana
// dashboard's where the spans carry the same facts (docs/observability.md).

@description('Azure region.')
param location string

@description('Tags for the resource.')
param tags object

@description('Resource id of the Application Insights component the workbook queries.')
param applicationInsightsId string

@description('Name shown in the portal.')
param displayName string = 'mcp-obo'

// Workbook names are GUIDs; this one is stable per Application Insights component.
resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(applicationInsightsId, 'mcp-obo-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: applicationInsightsId
    version: 'Notebook/1.0'
    serializedData: loadTextContent('../workbooks/mcp-obo.workbook.json')
  }
}

output id string = workbook.id
