# The end of `azd up` / `azd deploy` on Windows (azure.yaml, postdeploy hook): the same report
# as scripts/azd-postdeploy.sh (see there), from the same azd outputs. Never compiles and
# never fails the deployment.
$vscode = 'aebc6443-996d-45c2-90f0-388ff96faa56'
Write-Host ''
Write-Host 'mcp-obo is deployed.'
Write-Host ''
Write-Host "MCP endpoint: $env:MCP_URL"
Write-Host ''
Write-Host 'VS Code: add to .vscode/mcp.json (or your user mcp.json):'
Write-Host "  { `"servers`": { `"mcp-obo`": { `"type`": `"http`", `"url`": `"$env:MCP_URL`" } } }"
Write-Host ''
if ($env:MCP_VSCODE_PREAUTHORIZED -eq 'true') {
  Write-Host "VS Code ($vscode) is pre-authorized for the server's scope: no consent prompt for it."
} else {
  Write-Host "VS Code ($vscode) is NOT pre-authorized (PRE_AUTHORIZED_CLIENT_IDS): add it, then azd provision."
}
if (-not $env:MCP_ADMIN_CONSENT_URL) {
  Write-Host 'Tenant-wide consent to the tools'' Microsoft Graph permissions: granted by provisioning (GRANT_ADMIN_CONSENT=true).'
} else {
  Write-Host 'Tenant-wide consent to the tools'' Microsoft Graph permissions: not granted by provisioning. An administrator grants it once:'
  Write-Host "  $env:MCP_ADMIN_CONSENT_COMMAND"
  Write-Host "  or open $env:MCP_ADMIN_CONSENT_URL"
  $consentPage = ($env:MCP_URL -replace '/mcp$', '') + '/consent/complete'
  Write-Host '  Without it each user consents once: a tool whose permission lacks consent answers with a link'
  Write-Host "  asking for exactly that permission, which returns to $consentPage"
}
Write-Host ''
if (Get-Command mcp-obo -ErrorAction SilentlyContinue) {
  Write-Host 'mcp-obo doctor (the deployment as a client sees it, and the app registration):'
  # In a CI job AZURE_CLIENT_ID names the pipeline's own identity: not the app registration.
  Remove-Item Env:AZURE_CLIENT_ID -ErrorAction SilentlyContinue
  $env:MCP_OBO__AUTH__MODE = 'entra'
  $env:MCP_OBO__ENTRA__CLIENT_ID = $env:ENTRA_APPLICATION_ID
  $env:MCP_OBO__ENTRA__TENANT_ID = $env:AZURE_TENANT_ID
  if ($env:MCP_AUTHORITY_HOST) { $env:MCP_OBO__ENTRA__AUTHORITY_HOST = $env:MCP_AUTHORITY_HOST }
  if ($env:MCP_GRAPH_BASE_URL) { $env:MCP_OBO__GRAPH__BASE_URL = $env:MCP_GRAPH_BASE_URL }
  $env:MCP_OBO__AUTH__IDENTIFIER_URIS = $env:AZURE_IDENTIFIER_URI
  $env:MCP_OBO__SERVER__PUBLIC_URL = $env:SERVICE_MCP_ENDPOINT_URL
  mcp-obo doctor --url $env:MCP_URL
  if ($LASTEXITCODE -ne 0) { Write-Host 'mcp-obo doctor found problems (above, each with its fix); the deployment itself succeeded' }
} else {
  Write-Host 'Check the deployment with the doctor shipped in the deployed image (seconds):'
  Write-Host "  az containerapp exec -n $env:SERVICE_MCP_NAME -g $env:AZURE_RESOURCE_GROUP_NAME --command `"/home/site/wwwroot/mcp-obo doctor --url $env:MCP_URL`""
  Write-Host '  (or install it here once, cargo install --path ., and the next azd deploy runs it for you)'
}
exit 0
