#!/bin/sh
# The end of `azd up` / `azd deploy` (azure.yaml, postdeploy hook): what the user does next.
#
# Prints, from the azd environment's outputs (infra/main.bicep): the MCP URL, the VS Code
# mcp.json entry, whether VS Code's client id is pre-authorized, whether tenant-wide consent
# exists and the one command or URL that grants it, and the doctor's summary line. Never
# compiles anything and never fails the deployment: with `mcp-obo` on PATH it runs
# `mcp-obo doctor` (seconds; network calls only to Entra, Graph and the deployment); without
# it, it prints the one command that runs the doctor shipped in the deployed image.
#
# Reads: MCP_URL, ENTRA_APPLICATION_ID, AZURE_TENANT_ID, AZURE_IDENTIFIER_URI,
# SERVICE_MCP_ENDPOINT_URL, SERVICE_MCP_NAME, AZURE_RESOURCE_GROUP_NAME,
# MCP_VSCODE_PREAUTHORIZED, MCP_ADMIN_CONSENT_URL, MCP_ADMIN_CONSENT_COMMAND, MCP_CONSENT_URL,
# MCP_AUTHORITY_HOST, MCP_GRAPH_BASE_URL
# (all outputs of infra/main.bicep, which azd puts in the environment).
set -u

VSCODE_CLIENT_ID=aebc6443-996d-45c2-90f0-388ff96faa56

echo
echo "mcp-obo is deployed."
echo
echo "MCP endpoint: ${MCP_URL:-<MCP_URL missing: run azd provision>}"
echo
echo "VS Code: add to .vscode/mcp.json (or your user mcp.json):"
cat <<EOF
  {
    "servers": {
      "mcp-obo": {
        "type": "http",
        "url": "${MCP_URL:-}"
      }
    }
  }
EOF
echo
if [ "${MCP_VSCODE_PREAUTHORIZED:-}" = "true" ]; then
  echo "VS Code ($VSCODE_CLIENT_ID) is pre-authorized for the server's scope: no consent prompt for it."
else
  echo "VS Code ($VSCODE_CLIENT_ID) is NOT pre-authorized (PRE_AUTHORIZED_CLIENT_IDS): add it, then azd provision."
fi
mcp_url="${MCP_URL:-https://<host>/mcp}"
consent_page="${mcp_url%/mcp}/consent/complete"
if [ -z "${MCP_ADMIN_CONSENT_URL:-}" ]; then
  echo "Tenant-wide consent to the tools' Microsoft Graph permissions: granted by provisioning (GRANT_ADMIN_CONSENT=true)."
else
  echo "Tenant-wide consent to the tools' Microsoft Graph permissions: not granted by provisioning. An administrator grants it once:"
  echo "  ${MCP_ADMIN_CONSENT_COMMAND:-}"
  echo "  or open ${MCP_ADMIN_CONSENT_URL}"
  echo "  Without it each user consents once: a tool whose permission lacks consent answers with a link"
  echo "  asking for exactly that permission, which returns to ${consent_page}"
fi
echo

if command -v mcp-obo >/dev/null 2>&1; then
  echo "mcp-obo doctor (the deployment as a client sees it, and the app registration):"
  # AZURE_CLIENT_ID is unset: in a CI job it names the pipeline's own identity, which the
  # server's configuration would otherwise take for the app registration.
  env -u AZURE_CLIENT_ID MCP_OBO__AUTH__MODE=entra \
    MCP_OBO__ENTRA__CLIENT_ID="${ENTRA_APPLICATION_ID:-}" \
    MCP_OBO__ENTRA__TENANT_ID="${AZURE_TENANT_ID:-}" \
    MCP_OBO__ENTRA__AUTHORITY_HOST="${MCP_AUTHORITY_HOST:-https://login.microsoftonline.com/}" \
    MCP_OBO__GRAPH__BASE_URL="${MCP_GRAPH_BASE_URL:-https://graph.microsoft.com}" \
    MCP_OBO__AUTH__IDENTIFIER_URIS="${AZURE_IDENTIFIER_URI:-}" \
    MCP_OBO__SERVER__PUBLIC_URL="${SERVICE_MCP_ENDPOINT_URL:-}" \
    mcp-obo doctor --url "${MCP_URL:-}" \
    || echo "mcp-obo doctor found problems (above, each with its fix); the deployment itself succeeded"
else
  echo "Check the deployment with the doctor shipped in the deployed image (seconds):"
  echo "  az containerapp exec -n ${SERVICE_MCP_NAME:-<SERVICE_MCP_NAME>} -g ${AZURE_RESOURCE_GROUP_NAME:-<AZURE_RESOURCE_GROUP_NAME>} --command \"/home/site/wwwroot/mcp-obo doctor --url ${MCP_URL:-}\""
  echo "  (or install it here once, cargo install --path ., and the next azd deploy runs it for you)"
fi
exit 0
