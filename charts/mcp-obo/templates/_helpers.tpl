{{/*
Naming, labels and small computed values shared by the templates.
*/}}

{{- define "mcp-obo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: release-chart, or the release name alone when it already contains the chart name.
*/}}
{{- define "mcp-obo.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "mcp-obo.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mcp-obo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mcp-obo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mcp-obo.labels" -}}
helm.sh/chart: {{ include "mcp-obo.chart" . }}
{{ include "mcp-obo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: mcp-server
{{- end }}

{{- define "mcp-obo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mcp-obo.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository:tag, or repository@digest when a digest is given.
*/}}
{{- define "mcp-obo.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
config.publicUrl without a trailing slash (required).
*/}}
{{- define "mcp-obo.publicUrl" -}}
{{- required "config.publicUrl is required (the https URL clients use)" .Values.config.publicUrl | trimSuffix "/" }}
{{- end }}

{{/*
The ingress host: ingress.host, else the host of config.publicUrl.
*/}}
{{- define "mcp-obo.ingressHost" -}}
{{- if .Values.ingress.host }}
{{- .Values.ingress.host }}
{{- else }}
{{- (urlParse (include "mcp-obo.publicUrl" .)).host | splitList ":" | first }}
{{- end }}
{{- end }}

{{/*
Consent URL: config.consentUrl only. Unset, the server answers a missing consent with a link
asking for exactly the permissions the tool lacks, returning to {publicUrl}/consent/complete.
*/}}
{{- define "mcp-obo.consentUrl" -}}
{{- .Values.config.consentUrl }}
{{- end }}

{{/*
The metrics port, which must differ from the HTTP port.
*/}}
{{- define "mcp-obo.metricsPort" -}}
{{- if eq (int .Values.metrics.port) (int .Values.containerPort) }}
{{- fail "metrics.port must differ from containerPort: /metrics is served on its own listener" }}
{{- end }}
{{- .Values.metrics.port }}
{{- end }}

{{/*
Tenant of the edge token validation: edgeAuth.tenantId, else the workload identity's or
config's tenant (required).
*/}}
{{- define "mcp-obo.edgeAuthTenant" -}}
{{- $tenant := .Values.edgeAuth.tenantId | default (ternary .Values.workloadIdentity.tenantId .Values.config.tenantId .Values.workloadIdentity.enabled) }}
{{- required "edgeAuth.enabled needs a tenant: set edgeAuth.tenantId (or workloadIdentity.tenantId / config.tenantId)" $tenant }}
{{- end }}

{{/*
The Azure cloud's endpoints (config.cloud), as JSON: authorityHost (config.authorityHost
overrides it), the v2 and v1 token issuer hosts, the Microsoft Graph base URL and the
federated credential audience. Values: tests/schemas/clouds.json, which the lint checks every
rendering against.
*/}}
{{- define "mcp-obo.cloud" -}}
{{- $clouds := dict
  "AzureCloud" (dict "authorityHost" "https://login.microsoftonline.com" "issuerV2Host" "https://login.microsoftonline.com" "issuerV1Host" "https://sts.windows.net" "graph" "https://graph.microsoft.com" "tokenExchangeAudience" "api://AzureADTokenExchange")
  "AzureUSGovernment" (dict "authorityHost" "https://login.microsoftonline.us" "issuerV2Host" "https://login.microsoftonline.us" "issuerV1Host" "https://sts.windows.net" "graph" "https://graph.microsoft.us" "tokenExchangeAudience" "api://AzureADTokenExchangeUSGov")
  "AzureChinaCloud" (dict "authorityHost" "https://login.chinacloudapi.cn" "issuerV2Host" "https://login.partner.microsoftonline.cn" "issuerV1Host" "https://sts.chinacloudapi.cn" "graph" "https://microsoftgraph.chinacloudapi.cn" "tokenExchangeAudience" "api://AzureADTokenExchangeChina")
}}
{{- $cloud := deepCopy (get $clouds (.Values.config.cloud | default "AzureCloud")) }}
{{- with .Values.config.authorityHost }}
{{- $_ := set $cloud "authorityHost" (trimSuffix "/" .) }}
{{- $_ := set $cloud "issuerV2Host" (trimSuffix "/" .) }}
{{- end }}
{{- with .Values.config.tokenExchangeAudience }}
{{- $_ := set $cloud "tokenExchangeAudience" . }}
{{- end }}
{{- toJson $cloud }}
{{- end }}

{{/*
The edge token validation's settings, as JSON: tenant, the v2 and v1 issuers, the JWKS URI and
the accepted audiences.
*/}}
{{- define "mcp-obo.edge" -}}
{{- $tenant := include "mcp-obo.edgeAuthTenant" . }}
{{- $cloud := include "mcp-obo.cloud" . | fromJson }}
{{- $clientId := ternary .Values.workloadIdentity.clientId .Values.config.clientId .Values.workloadIdentity.enabled }}
{{- $audiences := .Values.edgeAuth.audiences }}
{{- if not $audiences }}
{{- $audiences = prepend (.Values.config.identifierUris | default (list (printf "api://%s" (required "edgeAuth.enabled needs the client id (workloadIdentity.clientId or config.clientId) or edgeAuth.audiences" $clientId)))) $clientId | compact | uniq }}
{{- end }}
{{- toJson (dict
  "tenant" $tenant
  "issuers" (list (printf "%s/%s/v2.0" $cloud.issuerV2Host $tenant) (printf "%s/%s/" $cloud.issuerV1Host $tenant))
  "jwksUri" (printf "%s/%s/discovery/v2.0/keys" $cloud.authorityHost $tenant)
  "audiences" $audiences) }}
{{- end }}

{{/*
"true" when the shared cache authenticates with a password from sharedCache.passwordSecret
(mounted as a file), else empty. entra needs the workload identity's token.
*/}}
{{- define "mcp-obo.sharedCachePassword" -}}
{{- $c := .Values.sharedCache -}}
{{- if and $c.enabled (eq $c.auth "entra") (not .Values.workloadIdentity.enabled) -}}
{{- fail "sharedCache.auth=entra needs workloadIdentity.enabled: the Redis token comes from the workload identity" -}}
{{- end -}}
{{- if and $c.enabled (eq $c.auth "password") -}}
{{- $_ := required "sharedCache.auth=password needs sharedCache.passwordSecret.name (a Secret in the release namespace)" $c.passwordSecret.name -}}
true
{{- end -}}
{{- end }}

{{/*
Where the shared cache's password file is mounted.
*/}}
{{- define "mcp-obo.sharedCachePasswordDir" -}}
/var/run/secrets/mcp-obo/shared-cache
{{- end }}
