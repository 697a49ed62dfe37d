"""Helpers of scripts/lint-deploy.sh that need Python libraries from .tools/venv.

Subcommands (each exits non-zero with a one-line reason per problem):

  helm CHART OUTDIR KUBE_VERSION
      For every values file in CHART/ci/: `helm lint --strict` (Helm 4 through the
      helm-python-sdk library, which embeds Helm; there is no helm binary), values.schema.json
      validation, offline render (release and namespace "mcp-obo"), checks on what the
      rendered objects must contain (workload identity, security context, probes, NOTES).
      Also proves the schema is strict by feeding it values it must reject.
      Writes OUTDIR/<values>/builtin.yaml (core Kubernetes kinds, for kubernetes-validate)
      and OUTDIR/<values>/all.yaml (every object, for checkov); validates the
      ServiceMonitor (a CRD kubernetes-validate has no schema for) against the subset of the
      Prometheus Operator CRD schema the chart uses.

  render CHART OUTDIR
      Only the render step (for the checkov check), no assertions.

  bicep INFRA_DIR COPY_DIR
      Copies INFRA_DIR to COPY_DIR with each `extension <name>` statement blanked (the line
      stays, so line numbers match), then parses every .bicep file with pycep-parser, the
      parser checkov uses. pycep-parser 0.5.1 (pinned by checkov 3.3.30) predates the
      `extension` statement, which is the only construct removed. Also checks that files
      using Microsoft.Graph resources declare the Graph extension and that bicepconfig.json
      defines it, and the security and wiring properties the artifacts promise on the parsed
      templates (INVARIANTS below: what checkov has no check for), and that entra-app.bicep requests and
      consents to exactly infra/graph-permissions.json's Graph permissions (evaluated). checkov's
      bicep scan reads COPY_DIR.

  hostjson HOST_JSON DOCKERFILE
      Structural checks of host.json (the Functions MCP custom-handler shape, with the
      profile's routing stated explicitly) and that the Dockerfile's functions stage ships it
      and the binary under /home/site/wwwroot (and no function.json).

  azure-yaml REPO_ROOT FACTS_JSON
      azure.yaml against what azd itself does, beyond its schema (FACTS_JSON:
      tests/schemas/azd-facts.json, derived from azd's source): a remote-built service's
      docker.platform is the one value azd's remote build accepts; every hook (and the script
      it runs) compiles nothing and does not read the deprecated AZURE_CLIENT_ID output.

  functions-image REPO_ROOT FACTS_JSON
      The Dockerfile against tests/schemas/functions-host.json (derived from the Functions
      host's and its images' sources): the functions stage is FROM the exact pinned host
      release (no floating tag, not older than the profile's floor), every stage is on a
      Debian release with security support, host.json names the profile, and the stage
      starts through scripts/functions-start.sh (the custom handler start check).

  compose REPO_ROOT FACTS_JSON
      docker-compose.yml on any laptop: the functions service declares the one platform the
      Functions images exist for (FACTS_JSON: tests/schemas/functions-host.json), a
      `standalone` profile runs the native image with the same configuration and URL.

  claims REPO_ROOT
      The docs and the artifacts agree on /runtime/webhooks/mcp: no Functions-host artifact
      (infra/, host.json, azure.yaml, docker-compose.yml, Dockerfile) and no Container Apps /
      compose section of docs/deploy.md names it, and every paragraph of README.md,
      CONTRIBUTING.md, docs/deploy.md, docs/architecture.md, docs/security.md and
      docs/configuration.md that names it says the Functions host does not pass it on.

  app-env BICEP_FILE PARAMS_JSON
      Prints, as one JSON object name -> value, the environment the Bicep file gives the
      container app's first container (resources.app ... template.containers[0].env), for the
      platform smoke tests (tests/it/platform_smoke.rs). PARAMS_JSON is a flat JSON object: the
      module's parameter values by name, plus `tenantId` (what tenant() gives). Evaluated:
      literals, parameter and variable references (pycep gives them as plain strings: a string
      equal to a declared parameter or variable name is a reference; a parameter missing from
      PARAMS_JSON takes its default), `${name}` interpolations of parameters and variables,
      join(array, delimiter), tenant().tenantId, loadJsonContent('<path relative to the file>')
      and `[for item in array: {...}]`. Anything else (another function, an
      operator, a secretRef, a non-string result) fails naming the entry, so an expression
      nobody evaluates breaks the smoke tests instead of being passed on verbatim.

  eval BICEP_FILE PARAMS_JSON PATH...
      Prints one JSON object path -> value: each dotted PATH into the parsed file (e.g.
      modules.mcpApp.config.params.graphBaseUrl, outputs.X.value), evaluated as app-env does,
      plus environment() (PARAMS_JSON's `environment`, a cloud of tests/schemas/clouds.json),
      empty(), conditionals and property/index access. A path that does not evaluate gives
      {"unevaluated": "<why>"}.

  chart-env CHART_DIR VALUES_FILE
      Renders the chart with VALUES_FILE (as `helm`, release and namespace "mcp-obo") and
      prints one JSON object: "env", the Deployment's container environment as Kubernetes
      builds it (envFrom configMapRef data from the rendered ConfigMap, then env `value`s and
      valueFrom.configMapKeyRef, later entries winning); "podLabels"; "serviceAccount" (name,
      namespace, annotations: what the workload identity webhook reads); "ports" (container
      port name -> number); "ingressHosts" (the rendered Ingress rules' hosts). Anything it cannot resolve offline (secretRef, fieldRef, a
      missing ConfigMap or key, a $(VAR) reference) fails naming the entry.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

import lint_deploy_cache

RELEASE = "mcp-obo"
NAMESPACE = "mcp-obo"
# Kinds that are not part of Kubernetes itself (validated here, not by kubernetes-validate).
CRD_KINDS = {"ServiceMonitor", "RequestAuthentication", "SecurityPolicy", "HTTPRoute"}
SCHEMAS = Path(__file__).resolve().parent.parent / "tests" / "schemas"
# Published CRD schemas (openAPIV3Schema, vendored verbatim; tests/schemas/README.md).
PUBLISHED_CRDS = {
    "SecurityPolicy": ("gateway.envoyproxy.io/v1alpha1", "crds/gateway.envoyproxy.io_securitypolicy_v1alpha1.json"),
    "HTTPRoute": ("gateway.networking.k8s.io/v1", "crds/gateway.networking.k8s.io_httproute_v1.json"),
}


def strict_crd_schema(schema: Any) -> Any:
    """A CRD's openAPIV3Schema as the API server applies it to unknown fields: every object
    with `properties` and no `additionalProperties` / x-kubernetes-preserve-unknown-fields
    rejects other keys (the server would prune them silently; here they are errors)."""
    if isinstance(schema, list):
        return [strict_crd_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_crd_schema(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def published_crd_validator(kind: str) -> Any:
    import jsonschema

    api_version, file = PUBLISHED_CRDS[kind]
    schema = strict_crd_schema(json.loads((SCHEMAS / file).read_text()))
    # metadata is typed `object` only in a CRD; the API server fills it in.
    schema.setdefault("properties", {})["metadata"] = {"type": "object"}
    schema["properties"]["apiVersion"] = {"const": api_version}
    schema["properties"]["kind"] = {"const": kind}
    return jsonschema.Draft7Validator(schema)


def clouds() -> dict[str, Any]:
    return {k: v for k, v in json.loads((SCHEMAS / "clouds.json").read_text()).items() if not k.startswith("_")}

problems: list[str] = []


def problem(message: str) -> None:
    problems.append(message)
    print(f"  FAIL {message}", flush=True)


def info(message: str) -> None:
    print(f"  {message}", flush=True)


def finish() -> int:
    if problems:
        print(f"  {len(problems)} problem(s)", flush=True)
        return 1
    return 0


# --- helm -----------------------------------------------------------------------------------

# A Prometheus Operator duration (ServiceMonitor interval, scrapeTimeout).
DURATION = "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"


def crd_schema(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The schema of a namespaced custom resource object: the envelope both CRDs below share
    (apiVersion, kind, metadata; unknown top-level fields rejected) around `spec`."""
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": {
                "type": "object",
                "required": ["name", "namespace"],
                "properties": {
                    "name": {"type": "string"},
                    "namespace": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
            "spec": spec,
        },
    }


# The subset of the monitoring.coreos.com/v1 ServiceMonitor CRD schema this chart renders
# (field names and formats as in the Prometheus Operator CRD; unknown fields rejected).
SERVICE_MONITOR_SCHEMA = crd_schema(
    "monitoring.coreos.com/v1",
    "ServiceMonitor",
    {
        "type": "object",
        "required": ["selector", "endpoints"],
        "additionalProperties": False,
        "properties": {
            "selector": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}
                },
            },
            "namespaceSelector": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "any": {"type": "boolean"},
                    "matchNames": {"type": "array", "items": {"type": "string"}},
                },
            },
            "endpoints": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "port": {"type": "string"},
                        "path": {"type": "string"},
                        "interval": {"type": "string", "pattern": DURATION},
                        "scrapeTimeout": {"type": "string", "pattern": DURATION},
                    },
                },
            },
        },
    },
)


# The subset of Istio's security.istio.io/v1 RequestAuthentication schema this chart renders
# (field names as in istio/api security/v1/request_authentication.proto; unknown fields
# rejected, since Istio's CRD would drop them silently).
REQUEST_AUTHENTICATION_SCHEMA = crd_schema(
    "security.istio.io/v1",
    "RequestAuthentication",
    {
        "type": "object",
        "required": ["selector", "jwtRules"],
        "additionalProperties": False,
        "properties": {
            "selector": {
                "type": "object",
                "additionalProperties": False,
                "required": ["matchLabels"],
                "properties": {"matchLabels": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}}},
            },
            "jwtRules": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["issuer", "jwksUri", "audiences"],
                    "properties": {
                        "issuer": {"type": "string", "minLength": 1},
                        "jwksUri": {"type": "string", "pattern": "^https://"},
                        "audiences": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
                        "forwardOriginalToken": {"type": "boolean"},
                    },
                },
            },
        },
    },
)
CRD_SCHEMAS = {"ServiceMonitor": SERVICE_MONITOR_SCHEMA, "RequestAuthentication": REQUEST_AUTHENTICATION_SCHEMA}


def load_yaml(path: Path) -> Any:
    import yaml

    with path.open() as f:
        return yaml.safe_load(f) or {}


def render(chart_dir: Path, values: dict[str, Any]) -> dict[str, str]:
    import helm_python as helm

    with helm.Chart.load(chart_dir) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def split_objects(rendered: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
    import yaml

    objects: list[dict[str, Any]] = []
    notes = ""
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            notes = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects.append(doc)
    return objects, notes


def write_objects(path: Path, objects: list[dict[str, Any]]) -> None:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def config_maps(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The server's configuration ConfigMap(s): every ConfigMap but the Grafana dashboard's."""
    return [o for o in by_kind(objects, "ConfigMap") if not lint_deploy_cache.is_dashboard(o)]


def expect(condition: bool, message: str) -> None:
    if not condition:
        problem(message)


def check_rendered(name: str, values: dict[str, Any], objects: list[dict[str, Any]], notes: str) -> None:
    """What every install must look like, whatever the values."""
    deployments = by_kind(objects, "Deployment")
    expect(len(deployments) == 1, f"{name}: expected one Deployment, got {len(deployments)}")
    if not deployments:
        return
    deployment = deployments[0]
    for obj in objects:
        expect(
            obj.get("metadata", {}).get("namespace") == NAMESPACE,
            f"{name}: {obj.get('kind')} {obj.get('metadata', {}).get('name')} has no explicit namespace",
        )
    pod = deployment["spec"]["template"]
    spec = pod["spec"]
    wi = values.get("workloadIdentity", {}).get("enabled", True)
    labels = pod["metadata"].get("labels", {})
    if wi:
        expect(
            labels.get("azure.workload.identity/use") == "true",
            f"{name}: pod lacks label azure.workload.identity/use: \"true\"",
        )
        accounts = by_kind(objects, "ServiceAccount")
        expect(len(accounts) == 1, f"{name}: expected one ServiceAccount")
        for sa in accounts:
            annotations = sa["metadata"].get("annotations", {})
            expect(
                annotations.get("azure.workload.identity/client-id")
                == values["workloadIdentity"]["clientId"],
                f"{name}: ServiceAccount lacks azure.workload.identity/client-id",
            )
            expect(
                sa["metadata"]["name"] == spec.get("serviceAccountName"),
                f"{name}: the pod does not use the chart's ServiceAccount",
            )
    else:
        expect("azure.workload.identity/use" not in labels, f"{name}: workload identity label without workload identity")
    psc = spec.get("securityContext", {})
    expect(psc.get("runAsNonRoot") is True, f"{name}: pod securityContext.runAsNonRoot is not true")
    expect(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{name}: pod seccomp is not RuntimeDefault")
    expect(spec.get("automountServiceAccountToken") is False, f"{name}: the API token is automounted")
    containers = spec.get("containers", [])
    expect(len(containers) == 1, f"{name}: expected one container")
    for c in containers:
        sc = c.get("securityContext", {})
        expect(sc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation is not false")
        expect(sc.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem is not true")
        expect(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}: capabilities are not drop [ALL]")
        expect(sc.get("runAsNonRoot") is True, f"{name}: container runAsNonRoot is not true")
        expect(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", f"{name}: liveness probe is not /healthz")
        expect(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", f"{name}: readiness probe is not /readyz")
        for kind in ("requests", "limits"):
            res = c.get("resources", {}).get(kind, {})
            expect("cpu" in res and "memory" in res, f"{name}: resources.{kind} lacks cpu or memory")
    configmaps = config_maps(objects)
    expect(len(configmaps) == 1, f"{name}: expected one ConfigMap (besides the dashboards')")
    for cm in configmaps:
        data = cm.get("data", {})
        expect(data.get("MCP_OBO__AUTH__MODE") == "entra", f"{name}: auth mode is not entra")
        expect(data.get("MCP_OBO__SERVER__LISTEN", "").startswith("0.0.0.0:"), f"{name}: the server does not listen on all interfaces")
        public = data.get("MCP_OBO__SERVER__PUBLIC_URL", "")
        expect(bool(public) and not public.endswith("/"), f"{name}: public URL missing or ends with '/'")
        expect(f"{public}/mcp" in notes, f"{name}: NOTES.txt does not print the MCP URL {public}/mcp")
        if wi:
            for var in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_AUTHORITY_HOST"):
                expect(var not in data, f"{name}: {var} set while the workload identity webhook sets it")
    expect('"type": "http"' in notes and '"servers"' in notes, f"{name}: NOTES.txt has no VS Code mcp.json entry")
    ingress_on = values.get("ingress", {}).get("enabled", False)
    expect(len(by_kind(objects, "Ingress")) == (1 if ingress_on else 0), f"{name}: Ingress rendered iff ingress.enabled")
    hpa_on = values.get("autoscaling", {}).get("enabled", False)
    expect(len(by_kind(objects, "HorizontalPodAutoscaler")) == (1 if hpa_on else 0), f"{name}: HPA rendered iff autoscaling.enabled")
    if hpa_on:
        expect("replicas" not in deployment["spec"], f"{name}: Deployment sets replicas while the HPA owns them")
    sm_on = values.get("serviceMonitor", {}).get("enabled", False)
    expect(len(by_kind(objects, "ServiceMonitor")) == (1 if sm_on else 0), f"{name}: ServiceMonitor rendered iff serviceMonitor.enabled")
    check_metrics_and_edge(name, values, objects, deployment)
    if ingress_on and values.get("ingress", {}).get("tls", {}).get("enabled", False):
        ing = by_kind(objects, "Ingress")[0]
        expect(bool(ing["spec"].get("tls")), f"{name}: Ingress has no tls section")


def check_metrics_and_edge(name: str, values: dict[str, Any], objects: list[dict[str, Any]], deployment: dict[str, Any]) -> None:
    """/metrics on its own port everywhere it is reached; edge token validation iff edgeAuth.enabled."""
    http_port = values.get("containerPort", 8080)
    metrics_port = values.get("metrics", {}).get("port", 9464)
    pod = deployment["spec"]["template"]
    container = (pod["spec"].get("containers") or [{}])[0]
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
    expect(ports.get("http") == http_port, f"{name}: container port http is not {http_port}")
    expect(ports.get("metrics") == metrics_port, f"{name}: container port metrics is not {metrics_port}")
    expect(http_port != metrics_port, f"{name}: metrics share the HTTP port")
    for cm in config_maps(objects):
        expect(
            cm.get("data", {}).get("MCP_OBO__TELEMETRY__METRICS_LISTEN") == f"0.0.0.0:{metrics_port}",
            f"{name}: MCP_OBO__TELEMETRY__METRICS_LISTEN is not 0.0.0.0:{metrics_port}",
        )
    for svc in by_kind(objects, "Service"):
        svc_ports = {p.get("name"): p for p in svc["spec"].get("ports", [])}
        expect(svc_ports.get("http", {}).get("targetPort") == "http", f"{name}: Service port http does not target the http container port")
        expect(svc_ports.get("metrics", {}).get("targetPort") == "metrics", f"{name}: Service has no metrics port targeting the metrics container port")
    for sm in by_kind(objects, "ServiceMonitor"):
        endpoint_ports = [e.get("port") for e in sm["spec"].get("endpoints", [])]
        expect(endpoint_ports == ["metrics"], f"{name}: ServiceMonitor scrapes {endpoint_ports}, not the metrics port")
    for ing in by_kind(objects, "Ingress"):
        for rule in ing["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                port = path.get("backend", {}).get("service", {}).get("port", {})
                expect(port == {"name": "http"}, f"{name}: Ingress backend port is {port}, not http (metrics must stay unrouted)")
    annotations = pod["metadata"].get("annotations", {})
    if "prometheus.io/port" in annotations or values.get("metrics", {}).get("podAnnotations", False):
        expect(annotations.get("prometheus.io/port") == str(metrics_port), f"{name}: prometheus.io/port is not the metrics port {metrics_port}")
        expect(annotations.get("prometheus.io/path") == "/metrics", f"{name}: prometheus.io/path is not /metrics")
    for np in by_kind(objects, "NetworkPolicy"):
        opened = [p.get("port") for rule in np["spec"].get("ingress", []) for p in rule.get("ports", [])]
        expect(sorted(opened) == ["http", "metrics"], f"{name}: NetworkPolicy opens {opened}, expected http and metrics")
    check_edge(name, values, objects, pod)
    check_cloud(name, values, objects)


def check_cloud(name: str, values: dict[str, Any], objects: list[dict[str, Any]]) -> None:
    """Every endpoint the pod gets is config.cloud's published one (tests/schemas/clouds.json)."""
    config = values.get("config", {})
    cloud = clouds()[config.get("cloud") or "AzureCloud"]
    for cm in config_maps(objects):
        data = cm.get("data", {})
        expect(data.get("MCP_OBO__GRAPH__BASE_URL") == cloud["graph"], f"{name}: Graph is {data.get('MCP_OBO__GRAPH__BASE_URL')}, the cloud's is {cloud['graph']}")
        audience = config.get("tokenExchangeAudience") or cloud["tokenExchangeAudience"]
        expect(data.get("TOKEN_EXCHANGE_AUDIENCE") == audience, f"{name}: token exchange audience {data.get('TOKEN_EXCHANGE_AUDIENCE')}, expected {audience}")
        if not values.get("workloadIdentity", {}).get("enabled", True):
            authority = (config.get("authorityHost") or cloud["authorityHost"]).rstrip("/")
            expect(data.get("AZURE_AUTHORITY_HOST") == authority, f"{name}: authority {data.get('AZURE_AUTHORITY_HOST')}, expected {authority}")
        consent = data.get("MCP_OBO__OBO__CONSENT_URL", "")
        if consent and not config.get("consentUrl"):
            expect(consent.startswith((config.get("authorityHost") or cloud["authorityHost"]).rstrip("/") + "/"), f"{name}: consent URL {consent} is not on the cloud's authority")


def expected_edge(values: dict[str, Any]) -> dict[str, Any]:
    """The issuers, keys and audiences the edge must use, from tests/schemas/clouds.json."""
    config = values.get("config", {})
    cloud = clouds()[config.get("cloud") or "AzureCloud"]
    wi = values.get("workloadIdentity", {})
    tenant = values["edgeAuth"].get("tenantId") or (wi.get("tenantId") if wi.get("enabled", True) else config.get("tenantId"))
    client_id = wi.get("clientId") if wi.get("enabled", True) else config.get("clientId")
    authority = (config.get("authorityHost") or cloud["authorityHost"]).rstrip("/")
    v2 = (config.get("authorityHost") or cloud["issuerV2Host"]).rstrip("/")
    audiences = values["edgeAuth"].get("audiences") or [client_id, *(config.get("identifierUris") or [f"api://{client_id}"])]
    return {
        "issuers": {f"{v2}/{tenant}/v2.0", f"{cloud['issuerV1Host']}/{tenant}/"},
        "jwksUri": f"{authority}/{tenant}/discovery/v2.0/keys",
        "audiences": list(dict.fromkeys(audiences)),
    }


def check_edge(name: str, values: dict[str, Any], objects: list[dict[str, Any]], pod: dict[str, Any]) -> None:
    """The edge token check iff edgeAuth.enabled, on the chosen provider, for the chosen cloud;
    the routes stream; the NetworkPolicy opens what that edge needs."""
    edge = values.get("edgeAuth", {})
    edge_on = edge.get("enabled", False)
    provider = edge.get("provider", "istio")
    ras = by_kind(objects, "RequestAuthentication")
    sps = by_kind(objects, "SecurityPolicy")
    expect(len(ras) == (1 if edge_on and provider == "istio" else 0), f"{name}: RequestAuthentication rendered iff edgeAuth (istio)")
    expect(len(sps) == (1 if edge_on and provider == "envoyGateway" else 0), f"{name}: SecurityPolicy rendered iff edgeAuth (envoyGateway)")
    # Never an AuthorizationPolicy: one requiring a principal would answer token-less requests
    # with a bare 403 instead of letting the pod's 401 + resource_metadata through (discovery).
    expect(not by_kind(objects, "AuthorizationPolicy"), f"{name}: an AuthorizationPolicy is rendered (it would break MCP discovery)")
    routes = by_kind(objects, "HTTPRoute")
    expect(len(routes) == (1 if values.get("httpRoute", {}).get("enabled", False) else 0), f"{name}: HTTPRoute rendered iff httpRoute.enabled")
    service_port = values.get("service", {}).get("port", 80)
    for route in routes:
        for rule in route["spec"].get("rules", []):
            refs = [(b.get("name"), b.get("port")) for b in rule.get("backendRefs", [])]
            expect(refs == [(pod_service_name(objects), service_port)], f"{name}: HTTPRoute backends {refs}, not the Service's http port {service_port}")
            timeout = (rule.get("timeouts") or {}).get("request")
            expect(timeout == values.get("httpRoute", {}).get("requestTimeout", "0s"), f"{name}: HTTPRoute request timeout {timeout!r} (SSE streams need it off, \"0s\")")
    for ing in by_kind(objects, "Ingress"):
        annotations = ing["metadata"].get("annotations") or {}
        if values.get("ingress", {}).get("streaming", True):
            expect(annotations.get("nginx.ingress.kubernetes.io/proxy-buffering") == "off", f"{name}: the Ingress lets ingress-nginx buffer streamed (SSE) answers")
    egress_ports = [p.get("port") for np in by_kind(objects, "NetworkPolicy") for rule in np["spec"].get("egress", []) for p in rule.get("ports", [])]
    if by_kind(objects, "NetworkPolicy"):
        want_istiod = edge_on and provider == "istio"
        expect((15012 in egress_ports) == want_istiod, f"{name}: NetworkPolicy egress to istiod (15012) {'missing' if want_istiod else 'open without the Istio edge'}: {egress_ports}")
    if not edge_on:
        return
    want = expected_edge(values)
    if ras:
        ra = ras[0]
        selector = ra["spec"].get("selector", {}).get("matchLabels", {})
        pod_labels = pod["metadata"].get("labels", {})
        expect(bool(selector) and all(pod_labels.get(k) == v for k, v in selector.items()), f"{name}: RequestAuthentication does not select the pod")
        rules = {r.get("issuer"): r for r in ra["spec"].get("jwtRules", [])}
        expect(set(rules) == want["issuers"], f"{name}: RequestAuthentication issuers {sorted(rules)}, expected {sorted(want['issuers'])}")
        for issuer, rule in rules.items():
            expect(rule.get("jwksUri") == want["jwksUri"], f"{name}: {issuer}: jwksUri is {rule.get('jwksUri')}, expected {want['jwksUri']}")
            expect(rule.get("forwardOriginalToken") is True, f"{name}: {issuer}: forwardOriginalToken is not true (the pod must see the token)")
            expect(rule.get("audiences") == want["audiences"], f"{name}: {issuer}: audiences {rule.get('audiences')}, expected {want['audiences']}")
    for sp in sps:
        jwt = sp["spec"].get("jwt", {})
        expect(jwt.get("optional") is True, f"{name}: SecurityPolicy jwt.optional is not true (token-less requests must reach the pod's 401)")
        expect("failOpen" not in jwt, f"{name}: SecurityPolicy jwt.failOpen would let invalid tokens through")
        expect(not any(k in sp["spec"] for k in ("authorization", "extAuth", "oidc", "basicAuth", "apiKeyAuth")), f"{name}: SecurityPolicy adds another check (would break MCP discovery)")
        targets = [(t.get("kind"), t.get("name")) for t in sp["spec"].get("targetRefs", [])]
        expect(targets == [("HTTPRoute", r["metadata"]["name"]) for r in routes], f"{name}: SecurityPolicy targets {targets}, not the chart's HTTPRoute")
        providers = {p.get("issuer"): p for p in jwt.get("providers", [])}
        expect(set(providers) == want["issuers"], f"{name}: SecurityPolicy issuers {sorted(providers)}, expected {sorted(want['issuers'])}")
        headers = edge.get("claimHeaders", {"oid": "x-ms-client-principal-id", "tid": "x-ms-client-principal-tenant-id"})
        for issuer, provider_spec in providers.items():
            expect(provider_spec.get("remoteJWKS", {}).get("uri") == want["jwksUri"], f"{name}: {issuer}: remoteJWKS is {provider_spec.get('remoteJWKS')}")
            expect(provider_spec.get("audiences") == want["audiences"], f"{name}: {issuer}: audiences {provider_spec.get('audiences')}, expected {want['audiences']}")
            extract = provider_spec.get("extractFrom", {})
            expect(extract == {"headers": [{"name": "Authorization", "valuePrefix": "Bearer "}]}, f"{name}: {issuer}: the token is read from {extract} (only the Authorization header; never a query parameter)")
            mapped = {c.get("claim"): c.get("header") for c in provider_spec.get("claimToHeaders", [])}
            expect(mapped == {"oid": headers["oid"], "tid": headers["tid"]}, f"{name}: {issuer}: claimToHeaders {mapped}")


def pod_service_name(objects: list[dict[str, Any]]) -> str:
    services = by_kind(objects, "Service")
    return services[0]["metadata"]["name"] if services else ""


def check_schema_rejects(chart_dir: Path, base: dict[str, Any]) -> None:
    """values.schema.json must refuse these (strictness is part of the chart's contract)."""
    import copy

    import helm_python as helm

    def with_change(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        values = copy.deepcopy(base)
        change(values)
        return values

    cases: list[tuple[str, dict[str, Any]]] = [
        ("an unknown top-level key", with_change(lambda v: v.__setitem__("replicas", 3))),
        ("an unknown nested key", with_change(lambda v: v.setdefault("ingress", {}).__setitem__("tlsSecret", "x"))),
        ("workload identity without a client id", with_change(lambda v: v["workloadIdentity"].__setitem__("clientId", ""))),
        ("a public URL that is not a URL", with_change(lambda v: v["config"].__setitem__("publicUrl", "mcp.example.com"))),
        ("an unknown client assertion", with_change(lambda v: v["config"].__setitem__("clientAssertion", "password"))),
        ("an unknown edgeAuth key", with_change(lambda v: v.setdefault("edgeAuth", {"enabled": True}).__setitem__("requirePrincipal", True))),
        ("an unknown edge provider", with_change(lambda v: v.setdefault("edgeAuth", {"enabled": True}).__setitem__("provider", "nginx"))),
        ("an unknown cloud", with_change(lambda v: v["config"].__setitem__("cloud", "AzureGermanCloud"))),
        ("an HTTPRoute timeout that is not a Gateway API duration", with_change(lambda v: v.setdefault("httpRoute", {"enabled": False}).__setitem__("requestTimeout", "forever"))),
        ("a metrics port below 1024", with_change(lambda v: v.setdefault("metrics", {}).__setitem__("port", 80))),
        *lint_deploy_cache.schema_reject_cases(base),
    ]
    with helm.Chart.load(chart_dir) as chart:
        merged_ok = chart.merge_values(base)
        try:
            chart.validate_schema(merged_ok)
        except helm.HelmError as e:
            problem(f"schema rejects the minimal values: {e}")
        for label, values in cases:
            try:
                chart.validate_schema(chart.merge_values(values))
            except helm.HelmError:
                info(f"schema rejects {label}: ok")
            else:
                problem(f"values.schema.json accepts {label}")


def cmd_render(chart: str, outdir: str) -> int:
    chart_dir = Path(chart)
    out = Path(outdir)
    for values_file in sorted((chart_dir / "ci").glob("*.yaml")):
        values = load_yaml(values_file)
        objects, _ = split_objects(render(chart_dir, values))
        write_objects(out / values_file.stem / "all.yaml", objects)
    return finish()


def cmd_helm(chart: str, outdir: str, kube_version: str) -> int:
    import helm_python as helm
    import jsonschema

    chart_dir = Path(chart)
    out = Path(outdir)
    info(f"Helm SDK {helm.helm_sdk_version()} (helm-python-sdk {helm.__version__}), Kubernetes {kube_version}")
    values_files = sorted((chart_dir / "ci").glob("*.yaml"))
    if not values_files:
        problem(f"no values files in {chart_dir / 'ci'}")
        return finish()
    for values_file in values_files:
        name = values_file.name
        values = load_yaml(values_file)
        report = helm.lint(chart_dir, values, strict=True, namespace=NAMESPACE, kube_version=f"v{kube_version}")
        findings = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
        for m in findings:
            problem(f"helm lint {name}: {m.get('path')}: {m.get('error')}")
        for err in report.get("errors", []):
            problem(f"helm lint {name}: {err}")
        try:
            with helm.Chart.load(chart_dir) as loaded:
                loaded.validate_schema(loaded.merge_values(values))
            rendered = render(chart_dir, values)
        except helm.HelmError as e:
            problem(f"helm template {name}: {e}")
            continue
        objects, notes = split_objects(rendered)
        check_rendered(name, values, objects, notes)
        for found in lint_deploy_cache.check_chart(name, values, objects, chart_dir):
            problem(found)
        cloud = clouds()[values.get("config", {}).get("cloud") or "AzureCloud"]
        if values.get("workloadIdentity", {}).get("enabled", True):
            audience = values.get("config", {}).get("tokenExchangeAudience") or cloud["tokenExchangeAudience"]
            expect(f"audience: {audience}" in notes, f"{name}: NOTES.txt does not name the federated credential audience {audience}")
        if values.get("edgeAuth", {}).get("enabled", False):
            for issuer in expected_edge(values)["issuers"]:
                expect(issuer in notes, f"{name}: NOTES.txt does not name the edge issuer {issuer}")
        builtin = [o for o in objects if o.get("kind") not in CRD_KINDS]
        for crd_obj in (o for o in objects if o.get("kind") in CRD_SCHEMAS or o.get("kind") in PUBLISHED_CRDS):
            kind = crd_obj["kind"]
            validator = published_crd_validator(kind) if kind in PUBLISHED_CRDS else jsonschema.Draft7Validator(CRD_SCHEMAS[kind])
            errors = sorted(validator.iter_errors(crd_obj), key=str)
            for error in errors:
                problem(f"{name}: {kind} {'.'.join(map(str, error.absolute_path))}: {error.message}")
            if kind in PUBLISHED_CRDS and not errors:
                info(f"{name}: {kind} valid against the published CRD schema ({PUBLISHED_CRDS[kind][1]})")
        write_objects(out / values_file.stem / "builtin.yaml", builtin)
        write_objects(out / values_file.stem / "all.yaml", objects)
        kinds = ", ".join(sorted(o["kind"] for o in objects))
        info(f"{name}: lint ok, rendered {len(objects)} objects ({kinds})")
    check_schema_rejects(chart_dir, load_yaml(chart_dir / "ci" / "minimal-values.yaml"))
    return finish()


# --- bicep ----------------------------------------------------------------------------------

EXTENSION_LINE = re.compile(r"^extension\s+(\S+).*$", re.MULTILINE)

# (file, path into pycep's JSON, expected value): properties the deployment relies on.
INVARIANTS: list[tuple[str, tuple[str, ...], Any]] = [
    ("modules/storage.bicep", ("resources", "storage", "config", "properties", "allowSharedKeyAccess"), False),
    ("modules/storage.bicep", ("resources", "storage", "config", "properties", "allowBlobPublicAccess"), False),
    ("modules/storage.bicep", ("resources", "storage", "config", "properties", "minimumTlsVersion"), "TLS1_2"),
    ("modules/storage.bicep", ("resources", "storage", "config", "properties", "supportsHttpsTrafficOnly"), True),
    ("modules/registry.bicep", ("resources", "registry", "config", "properties", "adminUserEnabled"), False),
    ("modules/registry.bicep", ("resources", "registry", "config", "properties", "anonymousPullEnabled"), False),
    ("modules/mcp-app.bicep", ("resources", "app", "config", "kind"), "functionapp"),
    ("modules/mcp-app.bicep", ("resources", "app", "config", "identity", "type"), "UserAssigned"),
    ("modules/mcp-app.bicep", ("resources", "app", "config", "properties", "configuration", "ingress", "allowInsecure"), False),
    ("modules/mcp-app.bicep", ("resources", "app", "config", "properties", "configuration", "ingress", "targetPort"), 80),
    ("modules/mcp-app.bicep", ("resources", "auth", "config", "properties", "platform", "enabled"), True),
    ("modules/mcp-app.bicep", ("resources", "auth", "config", "properties", "globalValidation", "excludedPaths"), "unauthenticatedPaths"),
    (
        "modules/mcp-app.bicep",
        ("variables", "unauthenticatedPaths", "value"),
        [
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
            "/healthz",
            "/readyz",
        ],
    ),
    # Probes on every revision, the placeholder's included: no revision is provisioned without them.
    ("modules/mcp-app.bicep", ("resources", "app", "config", "properties", "template", "containers", "0", "probes"), "probes"),
    ("modules/mcp-app.bicep", ("variables", "metricsPort", "value"), 9464),
    ("modules/entra-app.bicep", ("resources", "application", "config", "api", "requestedAccessTokenVersion"), 2),
    ("modules/entra-app.bicep", ("resources", "application", "config", "signInAudience"), "AzureADMyOrg"),
    # The Graph permissions come from the file the binary writes, never literals:
    # check_graph_permissions evaluates what the Bicep makes of it.
    ("modules/entra-app.bicep", ("variables", "graphPermissions", "value", "function", "type"), "load_json_content"),
    ("modules/entra-app.bicep", ("variables", "graphPermissions", "value", "function", "parameters", "file_path"), "../graph-permissions.json"),
    # Optional tenant-wide consent: off by default, the tools' Graph permissions for
    # the server's service principal, user_impersonation for the listed MCP clients.
    ("modules/entra-app.bicep", ("parameters", "grantAdminConsent", "default"), False),
    ("main.bicep", ("parameters", "grantAdminConsent", "default"), False),
    ("modules/entra-app.bicep", ("resources", "graphConsent", "type"), "Microsoft.Graph/oauth2PermissionGrants"),
    ("modules/entra-app.bicep", ("resources", "graphConsent", "config", "condition"), "grantAdminConsent"),
    ("modules/entra-app.bicep", ("resources", "graphConsent", "config", "config", "consentType"), "AllPrincipals"),
    ("modules/entra-app.bicep", ("resources", "graphConsent", "config", "config", "clientId", "operator", "operands", "operand_1"), "servicePrincipal"),
    ("modules/entra-app.bicep", ("resources", "graphServicePrincipal", "config", "config", "appId"), "graphAppId"),
    ("modules/entra-app.bicep", ("resources", "federatedCredential", "config", "audiences"), ["tokenExchangeAudience"]),
    ("modules/entra-app.bicep", ("resources", "federatedCredential", "config", "subject"), "federatedIdentityPrincipalId"),
]
# azd outputs the docs and the sample's users rely on.
REQUIRED_OUTPUTS = [
    "SERVICE_MCP_DEFAULT_HOSTNAME",
    "SERVICE_MCP_NAME",
    "AZURE_RESOURCE_GROUP_NAME",
    "MCP_URL",
    "ENTRA_APPLICATION_ID",
    # Deprecated name of ENTRA_APPLICATION_ID, kept for one release (nothing here reads it).
    "AZURE_CLIENT_ID",
    "MCP_VSCODE_PREAUTHORIZED",
    "MCP_CONSENT_URL",
    "MCP_AZURE_CLOUD",
    "MCP_GRAPH_BASE_URL",
    "MCP_AUTHORITY_HOST",
    "AZURE_TENANT_ID",
    "AZURE_CONTAINER_REGISTRY_ENDPOINT",
    "MCP_ADMIN_CONSENT_URL",
    "MCP_ADMIN_CONSENT_COMMAND",
]


def dig(tree: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if isinstance(tree, list) and key.isdigit() and int(key) < len(tree):
            tree = tree[int(key)]
            continue
        if not isinstance(tree, dict) or key not in tree:
            return KeyError
        tree = tree[key]
    return tree


GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


def check_graph_permissions(entra: dict[str, Any], base: Path) -> None:
    """entra-app.bicep requests, and consents to, exactly infra/graph-permissions.json's
    permissions (the file `mcp-obo tools --permissions-json` writes; a cargo test compares it
    with the binary): requiredResourceAccess and the admin consent grant's scope, evaluated."""
    name = "modules/entra-app.bicep"
    evaluator = BicepEvaluator(entra, {}, base)
    try:
        wanted = evaluator.reference("graphPermissions")
        access = evaluator.evaluate(dig(entra, ("resources", "application", "config", "requiredResourceAccess")))
        scope = evaluator.evaluate(dig(entra, ("resources", "graphConsent", "config", "config", "scope")))
    except Unevaluated as e:
        problem(f"{name}: the Graph permissions do not evaluate: {e}")
        return
    permissions = wanted.get("permissions") if isinstance(wanted, dict) else None
    if not isinstance(permissions, list) or not permissions or wanted.get("resourceAppId") != GRAPH_APP_ID:
        problem(f"{name}: graph-permissions.json is not the file `mcp-obo tools --permissions-json` writes")
        return
    expected_access = [{"resourceAppId": GRAPH_APP_ID, "resourceAccess": [{"id": p["id"], "type": "Scope"} for p in permissions]}]
    expect(access == expected_access, f"{name}: requiredResourceAccess is {json.dumps(access)}, expected {json.dumps(expected_access)} (from graph-permissions.json)")
    values = " ".join(p["value"] for p in permissions)
    expect(scope == values, f"{name}: graphConsent scope is {json.dumps(scope)}, expected {json.dumps(values)} (from graph-permissions.json)")
    info(f"{name}: requests and consents to Microsoft Graph {values} (graph-permissions.json)")


def env_parts(env: Any) -> tuple[list[Any], list[Any]]:
    """The container's env as (the literal entries, the expressions appended to them):
    `env: [...]` or `env: concat([...], expression, ...)` (optional settings, e.g. the
    shared token cache's, are a variable that is empty when off)."""
    if isinstance(env, list):
        return env, []
    function = env.get("function") if isinstance(env, dict) else None
    if isinstance(function, dict) and function.get("type") == "concat":
        args = list((function.get("parameters") or {}).values())
        if args and isinstance(args[0], list):
            return args[0], args[1:]
    return [], [env]


def check_app_probes_and_metrics(app: dict[str, Any]) -> None:
    """mcp-app.bicep: startup probe sized for a cold Functions host, /metrics off the ingress port."""
    probes = dig(app, ("variables", "probes", "value"))
    if not isinstance(probes, list):
        problem("modules/mcp-app.bicep: variable probes is not a list")
        return
    by_type = {p.get("type"): p for p in probes if isinstance(p, dict)}
    startup = by_type.get("Startup", {})
    expect(
        startup.get("periodSeconds") == 5 and startup.get("failureThreshold") == 30,
        f"modules/mcp-app.bicep: the startup probe is not 5 s x 30 (got {startup.get('periodSeconds')} x {startup.get('failureThreshold')})",
    )
    for kind, path in (("Startup", "/healthz"), ("Liveness", "/healthz"), ("Readiness", "/readyz")):
        got = dig(by_type.get(kind, {}), ("httpGet", "path"))
        expect(got == path, f"modules/mcp-app.bicep: {kind} probe path is {got}, expected {path}")
        port = dig(by_type.get(kind, {}), ("httpGet", "port"))
        expect(port == 80, f"modules/mcp-app.bicep: {kind} probe port is {port}, expected the host's 80")
    container = dig(app, ("resources", "app", "config", "properties", "template", "containers", "0"))
    literal, _ = env_parts((container or {}).get("env", []))
    env = {e.get("name"): e.get("value") for e in literal if isinstance(e, dict)}
    expect(
        env.get("MCP_OBO__TELEMETRY__METRICS_LISTEN") == "0.0.0.0:${metricsPort}",
        "modules/mcp-app.bicep: MCP_OBO__TELEMETRY__METRICS_LISTEN is not 0.0.0.0:${metricsPort}",
    )
    ingress = dig(app, ("resources", "app", "config", "properties", "configuration", "ingress"))
    extra = dig(ingress, ("additionalPortMappings", "operator", "operands", "true_value"))
    mappings = extra if isinstance(extra, list) else dig(ingress, ("additionalPortMappings",))
    if isinstance(mappings, list):
        for m in mappings:
            expect(m.get("external") is False, f"modules/mcp-app.bicep: additional port mapping {m} is external")
    expect(dig(ingress, ("targetPort",)) == 80, "modules/mcp-app.bicep: ingress does not target the host's port 80 only")


def cmd_bicep(infra: str, copy_dir: str) -> int:
    from pycep import BicepParser

    import importlib.metadata as md

    src = Path(infra)
    dst = Path(copy_dir)
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    config_path = src / "bicepconfig.json"
    declared: dict[str, str] = {}
    if config_path.exists():
        declared = json.loads(config_path.read_text()).get("extensions", {})
    parser = BicepParser()
    parsed: dict[str, Any] = {}
    files = sorted(dst.rglob("*.bicep"))
    if not files:
        problem(f"no .bicep files under {src}")
    info(f"pycep-parser {md.version('pycep-parser')}")
    for path in files:
        rel = path.relative_to(dst)
        text = path.read_text()
        extensions = EXTENSION_LINE.findall(text)
        for ext in extensions:
            if ext not in declared:
                problem(f"{rel}: extension {ext} is not declared in {config_path}")
        if "'Microsoft.Graph/" in text and "microsoftGraphV1" not in extensions:
            problem(f"{rel}: uses Microsoft.Graph resources without `extension microsoftGraphV1`")
        blanked = EXTENSION_LINE.sub("", text)
        path.write_text(blanked)
        try:
            parsed[str(rel)] = parser.parse(text=blanked)
        except Exception as e:  # lark raises several exception types; all mean "does not parse"
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            problem(f"{rel}: does not parse: {type(e).__name__}: {first}")
            continue
        note = f" (extension statement blanked: {', '.join(extensions)})" if extensions else ""
        info(f"{rel}: parses{note}")
    before = len(problems)
    for file, path, want in INVARIANTS:
        if file not in parsed:
            problem(f"{file}: missing or unparsed, cannot check {'.'.join(path)}")
            continue
        got = dig(parsed[file], path)
        if got != want:
            shown = "absent" if got is KeyError else json.dumps(got)
            problem(f"{file}: {'.'.join(path)} is {shown}, expected {json.dumps(want)}")
    if "modules/mcp-app.bicep" in parsed:
        check_app_probes_and_metrics(parsed["modules/mcp-app.bicep"])
    if "modules/entra-app.bicep" in parsed:
        check_graph_permissions(parsed["modules/entra-app.bicep"], dst / "modules")
    # The shared token cache: Azure Managed Redis as the API accepts it, Entra only, TLS only.
    cache_problems = lint_deploy_cache.check_infra(parsed, src, SCHEMAS / "redis-enterprise.json")
    for found in cache_problems:
        problem(found)
    if not cache_problems:
        info("modules/redis.bicep: Microsoft.Cache properties as the API accepts them (tests/schemas/redis-enterprise.json), TLS only, Entra only, wired into the app behind SHARED_TOKEN_CACHE: ok")
    # azd deploys with azure.yaml's apiVersion; it must be the one the app is declared with,
    # or a deploy round-trips the app through a model without `kind`.
    azure_yaml = src.parent / "azure.yaml"
    app_api = dig(parsed.get("modules/mcp-app.bicep", {}), ("resources", "app", "api_version"))
    if azure_yaml.exists():
        service = (load_yaml(azure_yaml).get("services") or {}).get("mcp") or {}
        if str(service.get("apiVersion")) != str(app_api):
            problem(f"azure.yaml services.mcp.apiVersion {service.get('apiVersion')!r} differs from the container app's {app_api!r}")
    outputs = dig(parsed.get("main.bicep", {}), ("outputs",))
    for name in REQUIRED_OUTPUTS:
        if not isinstance(outputs, dict) or name not in outputs:
            problem(f"main.bicep: output {name} is missing")
    if len(problems) == before:
        info(f"{len(INVARIANTS)} property invariants and {len(REQUIRED_OUTPUTS)} required outputs: ok")
    graph = declared.get("microsoftGraphV1", "")
    if not graph.startswith("br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:"):
        problem(f"{config_path}: extensions.microsoftGraphV1 is not the Microsoft Graph v1.0 extension")
    return finish()


# --- host.json ------------------------------------------------------------------------------


def cmd_hostjson(host_json: str, dockerfile: str) -> int:
    try:
        host = json.loads(Path(host_json).read_text())
    except (OSError, json.JSONDecodeError) as e:
        problem(f"{host_json}: {e}")
        return finish()
    expect(host.get("version") == "2.0", f"{host_json}: version is not \"2.0\"")
    expect(host.get("configurationProfile") == "mcp-custom-handler", f"{host_json}: configurationProfile is not mcp-custom-handler")
    handler = host.get("customHandler", {})
    expect(handler.get("description", {}).get("defaultExecutablePath") == "mcp-obo", f"{host_json}: defaultExecutablePath is not the mcp-obo binary")
    level = handler.get("http", {}).get("DefaultAuthorizationLevel") or handler.get("http", {}).get("defaultAuthorizationLevel")
    expect(level == "anonymous", f"{host_json}: customHandler.http.DefaultAuthorizationLevel is not anonymous")
    expect("port" not in handler, f"{host_json}: a fixed customHandler.port; mcp-obo follows FUNCTIONS_CUSTOMHANDLER_PORT")
    # What the mcp-custom-handler profile implies (Azure/azure-functions-host,
    # HostConfigurationProfile), stated explicitly so that the routing does not depend on the
    # profile alone: proxying, one catch-all route, no route prefix.
    expect(handler.get("enableProxyingHttpRequest") is True, f"{host_json}: customHandler.enableProxyingHttpRequest is not true")
    expect(
        "enableForwardingHttpRequest" not in handler,
        f"{host_json}: customHandler.enableForwardingHttpRequest is set; the MCP profile proxies (enableProxyingHttpRequest), forwarding is the function.json-era mode",
    )
    routes = handler.get("http", {}).get("routes")
    expect(
        isinstance(routes, list) and len(routes) == 1 and isinstance(routes[0], dict) and routes[0].get("route") == "{*route}",
        f"{host_json}: customHandler.http.routes is not exactly one catch-all route {{*route}}",
    )
    if isinstance(routes, list):
        for route in routes:
            level = (route or {}).get("authorizationLevel", level) if isinstance(route, dict) else None
            expect(str(level).lower() == "anonymous", f"{host_json}: route {route} is not anonymous")
    expect(
        host.get("extensions", {}).get("http", {}).get("routePrefix") == "",
        f"{host_json}: extensions.http.routePrefix is not \"\" (the host would serve /api/mcp)",
    )
    text = Path(dockerfile).read_text()
    stage = text.split(" AS functions", 1)[-1] if " AS functions" in text else ""
    expect(bool(stage), f"{dockerfile}: no `functions` stage")
    expect("COPY host.json /home/site/wwwroot/host.json" in stage, f"{dockerfile}: functions stage does not copy host.json to /home/site/wwwroot")
    expect("/home/site/wwwroot/mcp-obo" in stage, f"{dockerfile}: functions stage does not put the binary in /home/site/wwwroot")
    expect("AzureWebJobsScriptRoot=/home/site/wwwroot" in stage, f"{dockerfile}: AzureWebJobsScriptRoot is not /home/site/wwwroot")
    expect("AzureFunctionsJobHost__Logging__Console__IsEnabled=true" in stage, f"{dockerfile}: console logging of the host is not enabled")
    # The host refuses to start when function.json files and customHandler.http.routes are
    # both present (HttpWorkerFunctionProvider): the routes in host.json are the only source.
    expect("function.json" not in stage, f"{dockerfile}: the functions stage ships a function.json next to customHandler.http.routes")
    last_from = [line for line in text.splitlines() if line.startswith("FROM ")][-1:]
    expect(bool(last_from) and last_from[0].endswith(" AS functions"), f"{dockerfile}: functions is not the last stage (azd builds the last stage)")
    if not problems:
        info(f"{host_json} and the functions stage of {dockerfile}: ok")
    return finish()


# --- azure-yaml: what azd itself accepts, and hooks that take seconds -----------------------

# A hook command that compiles (minutes of fat-LTO build inside `azd up`).
COMPILES = re.compile(r"\bcargo\s+(run|build)\b")
# Reading azd's deprecated AZURE_CLIENT_ID output (sh or pwsh).
READS_AZURE_CLIENT_ID = re.compile(r"\$\{?AZURE_CLIENT_ID\b|\$env:AZURE_CLIENT_ID\b")


def hook_commands(hooks: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, run) for every hook of azure.yaml, per platform when it has posix/windows."""
    out: list[tuple[str, str]] = []
    for name, hook in (hooks or {}).items():
        for os_name in ("posix", "windows"):
            if isinstance(hook.get(os_name), dict):
                out.append((f"{name}.{os_name}", str(hook[os_name].get("run", ""))))
        if "run" in hook:
            out.append((name, str(hook["run"])))
    return out


def cmd_azure_yaml(root: str, facts_json: str) -> int:
    base = Path(root)
    facts = json.loads(Path(facts_json).read_text())
    platform = facts["remoteBuild"]["platform"]
    doc = load_yaml(base / "azure.yaml")
    for name, service in (doc.get("services") or {}).items():
        docker = service.get("docker") or {}
        if docker.get("remoteBuild"):
            got = docker.get("platform")
            expect(
                got == platform,
                f"azure.yaml: services.{name}.docker.platform is {got!r}; azd's remote build accepts only {platform!r} (\"{facts['remoteBuild']['error']}\")",
            )
    hooks = hook_commands(doc.get("hooks") or {})
    expect(any(label.startswith("postdeploy") for label, _ in hooks), "azure.yaml: no postdeploy hook (the end of azd up says what to do next)")
    for label, run in hooks:
        texts = [(f"azure.yaml hooks.{label}", run)]
        script = run.strip().split()[0] if run.strip() else ""
        if script.startswith("./"):
            path = base / script
            expect(path.is_file(), f"azure.yaml hooks.{label}: {script} does not exist")
            if path.is_file():
                texts.append((script, path.read_text()))
        for where, text in texts:
            expect(not COMPILES.search(text), f"{where}: compiles (cargo run/build) inside azd; run the installed or deployed doctor instead")
            expect(not READS_AZURE_CLIENT_ID.search(text), f"{where}: reads the deprecated AZURE_CLIENT_ID output; use ENTRA_APPLICATION_ID")
    if not problems:
        info(f"azure.yaml: remote build platform {platform}, {len(hooks)} hook command(s) that compile nothing")
    return finish()


# --- functions-image: the Functions base image and its start check -------------------------

FROM_LINE = re.compile(r"^FROM\s+(\S+?)(?:@sha256:[0-9a-f]{64})?(?:\s+AS\s+(\S+))?\s*$", re.MULTILINE)
# Debian release names in image tags; distroless names the release by number.
DEBIAN_IN_TAG = re.compile(r"(bullseye|bookworm|trixie|buster|debian(\d+))")
DEBIAN_NUMBERS = {"10": "buster", "11": "bullseye", "12": "bookworm", "13": "trixie"}


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def cmd_functions_image(root: str, facts_json: str) -> int:
    base = Path(root)
    facts = json.loads(Path(facts_json).read_text())
    image = facts["image"]
    dockerfile = (base / "Dockerfile").read_text()
    stages = {(m.group(2) or ""): m.group(1) for m in FROM_LINE.finditer(dockerfile)}
    functions = stages.get("functions", "")
    want = f"{image['repository']}:{image['tag']}"
    expect(functions == want, f"Dockerfile: the functions stage is FROM {functions!r}, expected the pinned {want!r} (tests/schemas/functions-host.json)")
    tag = functions.rsplit(":", 1)[-1] if ":" in functions else ""
    pinned = re.match(r"^(\d+\.\d+\.\d+)-", tag)
    expect(bool(pinned), f"Dockerfile: the functions base tag {tag!r} names no exact host release (a floating tag moves to whatever host is current)")
    if pinned:
        expect(
            version_tuple(pinned.group(1)) >= version_tuple(facts["minimumHostVersion"]),
            f"Dockerfile: host {pinned.group(1)} predates {facts['minimumHostVersion']}, the floor for the {facts['configurationProfile']} profile with proxying",
        )
    for stage, ref in stages.items():
        if stage == "functions":
            release = image["debian"]
        else:
            m = DEBIAN_IN_TAG.search(ref)
            release = (DEBIAN_NUMBERS.get(m.group(2), m.group(2)) if m and m.group(2) else m.group(1)) if m else ""
        expect(release in facts["supportedDebian"], f"Dockerfile: stage {stage or '(unnamed)'} ({ref}) is on Debian {release or '?'}, not one with security support ({', '.join(facts['supportedDebian'])})")
    host = json.loads((base / "host.json").read_text())
    expect(host.get("configurationProfile") == facts["configurationProfile"], f"host.json: configurationProfile is not {facts['configurationProfile']}")
    stage_text = dockerfile.split(" AS functions", 1)[-1]
    expect('CMD ["/opt/mcp-obo/functions-start.sh"]' in stage_text, "Dockerfile: the functions stage does not start through scripts/functions-start.sh (the custom handler start check)")
    expect("COPY scripts/functions-start.sh /opt/mcp-obo/functions-start.sh" in stage_text, "Dockerfile: the functions stage does not ship scripts/functions-start.sh")
    expect("!scripts/functions-start.sh" in (base / ".dockerignore").read_text(), ".dockerignore: scripts/functions-start.sh is not in the build context")
    start = (base / "scripts/functions-start.sh").read_text()
    expect(f":-{image['start']}}}" in start, f"scripts/functions-start.sh: the default host start is not the base image's {image['start']}")
    if not problems:
        info(f"Dockerfile: functions on {want} (host >= {facts['minimumHostVersion']}, Debian {image['debian']}), start check wired")
    return finish()


# --- compose: both local ways to run, on any laptop --------------------------------------

# Settings only the Functions host reads (the standalone service has no host).
FUNCTIONS_HOST_ONLY = {"AzureWebJobsStorage", "AzureWebJobsSecretStorageType"}


def cmd_compose(root: str, facts_json: str) -> int:
    base = Path(root)
    facts = json.loads(Path(facts_json).read_text())
    services = load_yaml(base / "docker-compose.yml").get("services") or {}
    functions = [n for n, s in services.items() if (s.get("build") or {}).get("target") == "functions"]
    standalone = [n for n, s in services.items() if (s.get("build") or {}).get("target") == "standalone"]
    expect(len(functions) == 1 and len(standalone) == 1, f"docker-compose.yml: expected one functions and one standalone service, got {functions} and {standalone}")
    if problems:
        return finish()
    fn, sa = services[functions[0]], services[standalone[0]]
    for found in lint_deploy_cache.check_compose(services):
        problem(found)
    expect(fn.get("platform") in facts["platforms"], f"docker-compose.yml: {functions[0]} declares platform {fn.get('platform')!r}; the Functions images exist only for {facts['platforms']}")
    expect("platform" not in sa, f"docker-compose.yml: {standalone[0]} pins a platform; it must build for the machine's own CPU")
    expect(sa.get("profiles") == ["standalone"], f"docker-compose.yml: {standalone[0]} is not in the `standalone` profile (docker compose --profile standalone up)")
    expect(bool(fn.get("profiles")) and "standalone" not in fn["profiles"], f"docker-compose.yml: {functions[0]} would start with --profile standalone too (give it its own profile)")
    fn_env, sa_env = fn.get("environment") or {}, sa.get("environment") or {}
    for key in sorted(set(fn_env) - FUNCTIONS_HOST_ONLY):
        expect(sa_env.get(key) == fn_env[key], f"docker-compose.yml: {standalone[0]} sets {key}={sa_env.get(key)!r}, the functions service {fn_env[key]!r} (same configuration)")
    for key in sorted(set(fn_env) & FUNCTIONS_HOST_ONLY):
        expect(key not in sa_env, f"docker-compose.yml: {standalone[0]} sets the Functions host's {key}")
    listen = sa_env.get("MCP_OBO__SERVER__LISTEN", "")
    sa_ports = [str(p) for p in sa.get("ports") or []]
    fn_ports = [str(p) for p in fn.get("ports") or []]
    expect(
        bool(listen) and any(p.endswith(":" + listen.rsplit(":", 1)[-1]) for p in sa_ports),
        f"docker-compose.yml: {standalone[0]} publishes {sa_ports}, not its listener {listen!r}",
    )
    expect(
        [p.rsplit(":", 1)[0] for p in sa_ports] == [p.rsplit(":", 1)[0] for p in fn_ports],
        f"docker-compose.yml: the two services publish different host ports ({fn_ports} and {sa_ports}): the MCP URL would differ",
    )
    expect(sa.get("read_only") is True and str(sa.get("user")) == "65532:65532", f"docker-compose.yml: {standalone[0]} is not read-only as uid 65532 (the image's user)")
    if not problems:
        info(f"docker-compose.yml: {functions[0]} on {fn.get('platform')}, {standalone[0]} native in profile standalone, same configuration and URL")
    return finish()


# --- claims: docs and artifacts agree ------------------------------------------------------

# The Functions host reserves /runtime/* for itself (webhooks, admin), so the server's alias
# /runtime/webhooks/mcp never reaches the custom handler behind it; only the standalone image
# (AKS, any plain container host) serves it.
RUNTIME_ALIAS = "/runtime/webhooks"
# Artifacts of the Functions-host deployments (Container Apps, compose): none may name it.
FUNCTIONS_ARTIFACTS = ["host.json", "azure.yaml", "docker-compose.yml", "Dockerfile", "infra"]
# Sections of docs/deploy.md about a Functions-host deployment (by heading words).
FUNCTIONS_SECTION_WORDS = ("Container Apps", "Docker Compose", "Functions host")
# Documents whose every paragraph naming the alias must also say it is not served behind the
# Functions host.
ALIAS_DOCS = [
    "README.md",
    "docs/deploy.md",
    "docs/architecture.md",
    "docs/security.md",
    "docs/configuration.md",
    "CONTRIBUTING.md",
]


def markdown_sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) for each `#`-heading of a Markdown document (code fences respected)."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and re.match(r"^#{1,6} ", line):
            sections.append((line, []))
        else:
            sections[-1][1].append(line)
    return [(h, "\n".join(body)) for h, body in sections]


def cmd_claims(root: str) -> int:
    base = Path(root)
    for entry in FUNCTIONS_ARTIFACTS:
        path = base / entry
        files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
        for f in files:
            if RUNTIME_ALIAS in f.read_text(errors="replace"):
                problem(f"{f.relative_to(base)}: names {RUNTIME_ALIAS}/mcp, which the Functions host reserves (never reaches mcp-obo)")
    deploy = base / "docs/deploy.md"
    for heading, body in markdown_sections(deploy.read_text()):
        if any(word in heading for word in FUNCTIONS_SECTION_WORDS) and RUNTIME_ALIAS in body:
            problem(f"docs/deploy.md: section {heading.strip()!r} names {RUNTIME_ALIAS}/mcp (a Functions-host deployment)")
    for doc in ALIAS_DOCS:
        text = (base / doc).read_text()
        for paragraph in re.split(r"\n\s*\n", text):
            if f"{RUNTIME_ALIAS}/mcp" in paragraph and "Functions host" not in paragraph:
                first = paragraph.strip().splitlines()[0][:80]
                problem(f"{doc}: a paragraph names {RUNTIME_ALIAS}/mcp without saying the Functions host does not pass it on: {first!r}")
    # docs/deploy.md: compose publishes mcp-obo's own /metrics listener on 9464.
    compose = (load_yaml(base / "docker-compose.yml").get("services") or {}).get("mcp") or {}
    listen = (compose.get("environment") or {}).get("MCP_OBO__TELEMETRY__METRICS_LISTEN")
    expect(listen == "0.0.0.0:9464", f"docker-compose.yml: mcp sets MCP_OBO__TELEMETRY__METRICS_LISTEN={listen!r}, expected 0.0.0.0:9464")
    expect(
        any(str(port).endswith(":9464:9464") for port in compose.get("ports") or []),
        "docker-compose.yml: mcp does not publish the metrics listener 9464",
    )
    if not problems:
        info(f"{RUNTIME_ALIAS}/mcp: not claimed by any Functions-host artifact or section; every mention carries the caveat")
    return finish()


# --- app-env / chart-env: the environment each platform gives the container ------------------


class Unevaluated(Exception):
    """An artifact's value the offline evaluation does not (and must not guess how to) compute."""


INTERPOLATION = re.compile(r"\$\{([^}]*)\}")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# pycep-parser 0.5.1 gives `tenant().tenantId` as a tenant function whose property_name is
# the lark token's repr, e.g. "[Token('STRING', 'tenantId')]".
TENANT_ID_PROPERTY = re.compile(r"^(\[Token\('[A-Z_]+', 'tenantId'\)\]|tenantId)$")


class BicepEvaluator:
    """Evaluates the small subset of Bicep expressions described under `app-env`."""

    def __init__(self, parsed: dict[str, Any], params: dict[str, Any], base: Path | None = None) -> None:
        self.declared = parsed.get("parameters") or {}
        self.variables = parsed.get("variables") or {}
        self.params = params
        # The directory loadJsonContent's paths are relative to (the Bicep file's).
        self.base = base
        # Loop variables in scope (`for item in array: {...}`), innermost last.
        self.locals: list[dict[str, Any]] = []
        self.resolving: list[str] = []

    def is_reference(self, name: str) -> bool:
        return any(name in scope for scope in self.locals) or name in self.declared or name in self.variables

    def loop(self, spec: dict[str, Any]) -> list[Any]:
        """`[for item in array: body]` (no index, no condition)."""
        loop_type = spec.get("loop_type") or {}
        detail = loop_type.get("detail") or {}
        if loop_type.get("type") != "array" or spec.get("condition") is not None or not isinstance(detail.get("item_name"), str):
            raise Unevaluated(f"loop {json.dumps(loop_type)[:80]} is not evaluated (only `for item in array` without a condition)")
        items = self.evaluate(detail.get("array_name"))
        if not isinstance(items, list):
            raise Unevaluated(f"loop over {json.dumps(items)[:80]}, not an array")
        out = []
        for item in items:
            self.locals.append({detail["item_name"]: item})
            try:
                out.append(self.evaluate(spec.get("config")))
            finally:
                self.locals.pop()
        return out

    def reference(self, name: str) -> Any:
        for scope in reversed(self.locals):
            if name in scope:
                return scope[name]
        if name in self.resolving:
            raise Unevaluated(f"{name} refers to itself ({' -> '.join(self.resolving + [name])})")
        self.resolving.append(name)
        try:
            if name in self.declared:
                if name in self.params:
                    return self.params[name]
                default = self.declared[name].get("default")
                if default is None:
                    raise Unevaluated(f"parameter {name} has no value in PARAMS_JSON and no default")
                return self.evaluate(default)
            return self.evaluate(self.variables[name].get("value"))
        finally:
            self.resolving.pop()

    def interpolate(self, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            inner = match.group(1).strip()
            value = self.path(inner)
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise Unevaluated(f"interpolation ${{{inner}}} is {json.dumps(value)}, not a string or integer")
            return str(value)

        return INTERPOLATION.sub(one, text)

    def path(self, text: str) -> Any:
        """`name`, `name.a.b`, `environment().a.b` or `tenant().tenantId` inside `${...}`."""
        head, *rest = text.split(".")
        if head == "environment()":
            value: Any = self.environment()
        elif head == "tenant()" and rest == ["tenantId"]:
            return self.function({"type": "tenant", "property_name": "tenantId"})
        elif IDENTIFIER.match(head) and self.is_reference(head):
            value = self.reference(head)
        else:
            raise Unevaluated(f"interpolation ${{{text}}} is not a parameter, variable, environment() or tenant().tenantId")
        for key in rest:
            if not isinstance(value, dict) or key not in value:
                raise Unevaluated(f"interpolation ${{{text}}}: no property {key}")
            value = value[key]
        return value

    def environment(self) -> dict[str, Any]:
        if "environment" not in self.params:
            raise Unevaluated("environment() needs `environment` in PARAMS_JSON (tests/schemas/clouds.json)")
        return self.params["environment"]

    def operator(self, spec: dict[str, Any]) -> Any:
        kind = spec.get("type")
        ops = spec.get("operands") or {}
        if kind == "conditional":
            return self.evaluate(ops["true_value"] if self.evaluate(ops["condition"]) else ops["false_value"])
        if kind == "index_accessor":
            obj, key = self.evaluate(ops["operand_1"]), self.evaluate(ops["operand_2"])
            if not isinstance(obj, dict) or key not in obj:
                raise Unevaluated(f"index {key!r} not in {json.dumps(obj)[:80]}")
            return obj[key]
        if kind == "property_accessor":
            value = self.evaluate(ops["operand_1"])
            names: list[str] = []
            second = ops["operand_2"]
            # pycep nests `a.b.c` to the right: operand_2 is itself an accessor of plain names.
            while isinstance(second, dict) and "operator" in second and second["operator"].get("type") == "property_accessor":
                names.append(second["operator"]["operands"]["operand_1"])
                second = second["operator"]["operands"]["operand_2"]
            names.append(second)
            for name in names:
                if not isinstance(name, str) or not isinstance(value, dict) or name not in value:
                    raise Unevaluated(f"property {name!r} not in {json.dumps(value)[:80]}")
                value = value[name]
            return value
        raise Unevaluated(f"expression {kind!r} is not evaluated by app-env")

    def function(self, spec: dict[str, Any]) -> Any:
        kind = spec.get("type")
        if kind == "join":
            args = spec.get("parameters") or {}
            items = self.evaluate(args.get("input_array"))
            delimiter = self.evaluate(args.get("delimiter"))
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise Unevaluated(f"join() of {json.dumps(items)}, not an array of strings")
            if not isinstance(delimiter, str):
                raise Unevaluated(f"join() with delimiter {json.dumps(delimiter)}")
            return delimiter.join(items)
        if kind == "environment":
            env = self.environment()
            prop = str(spec.get("property_name", ""))
            if prop not in env:
                raise Unevaluated(f"environment().{prop} is not in PARAMS_JSON's environment")
            return env[prop]
        if kind == "empty":
            item = self.evaluate((spec.get("parameters") or {}).get("item_to_test"))
            return not item
        if kind == "load_json_content":
            args = spec.get("parameters") or {}
            file_path = args.get("file_path")
            if self.base is None or not isinstance(file_path, str) or args.get("json_path") is not None:
                raise Unevaluated(f"loadJsonContent({json.dumps(file_path)}) is not evaluated (a literal path, no jsonPath, a file evaluated from disk)")
            try:
                return json.loads((self.base / file_path).read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise Unevaluated(f"loadJsonContent('{file_path}'): {e}") from e
        if kind == "tenant":
            prop = str(spec.get("property_name", ""))
            if not TENANT_ID_PROPERTY.match(prop):
                raise Unevaluated(f"tenant() property {prop!r} is not evaluated (only tenant().tenantId)")
            if "tenantId" not in self.params:
                raise Unevaluated("tenant().tenantId needs `tenantId` in PARAMS_JSON")
            return self.params["tenantId"]
        raise Unevaluated(f"function {kind}() is not evaluated by app-env")

    def evaluate(self, value: Any) -> Any:
        if isinstance(value, str):
            if self.is_reference(value):
                return self.reference(value)
            return self.interpolate(value)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, list):
            return [self.evaluate(v) for v in value]
        if isinstance(value, dict):
            if set(value) == {"function"}:
                return self.function(value["function"])
            if set(value) == {"operator"} and isinstance(value["operator"], dict):
                return self.operator(value["operator"])
            if set(value) == {"loop_type", "condition", "config"}:
                return self.loop(value)
            if "operator" in value or "function" in value:
                what = value.get("operator", value.get("function"))
                kind = what.get("type") if isinstance(what, dict) else what
                raise Unevaluated(f"expression {kind!r} is not evaluated by app-env")
            return {k: self.evaluate(v) for k, v in value.items()}
        raise Unevaluated(f"value {value!r} of unexpected type {type(value).__name__}")


def cmd_app_env(bicep_file: str, params_json: str) -> int:
    from pycep import BicepParser

    text = EXTENSION_LINE.sub("", Path(bicep_file).read_text())
    try:
        parsed = BicepParser().parse(text=text)
    except Exception as e:  # lark raises several exception types; all mean "does not parse"
        problem(f"{bicep_file}: does not parse: {type(e).__name__}: {str(e).strip()[:200]}")
        return finish()
    params = json.loads(Path(params_json).read_text())
    if not isinstance(params, dict):
        problem(f"{params_json}: not a JSON object of parameter values")
        return finish()
    unknown = sorted(set(params) - set(parsed.get("parameters") or {}) - {"tenantId", "environment"})
    for name in unknown:
        problem(f"{params_json}: {name} is not a parameter of {bicep_file}")
    literal, appended = env_parts(dig(parsed, ("resources", "app", "config", "properties", "template", "containers", "0", "env")))
    if not literal:
        problem(f"{bicep_file}: resources.app has no properties.template.containers[0].env list (or concat([...], ...))")
        return finish()
    evaluator = BicepEvaluator(parsed, params, Path(bicep_file).parent)
    env_list = list(literal)
    for expression in appended:
        try:
            extra = evaluator.evaluate(expression)
        except Unevaluated as e:
            problem(f"{bicep_file}: env entries appended by {json.dumps(expression)[:80]}: {e}")
            continue
        if not isinstance(extra, list):
            problem(f"{bicep_file}: env entries appended by {json.dumps(expression)[:80]} are {json.dumps(extra)[:80]}, not a list")
            continue
        # Already evaluated: wrapped so the loop below evaluates the values as literals.
        env_list.extend({"name": e.get("name"), "value": e.get("value")} if isinstance(e, dict) else e for e in extra)
    env: dict[str, str] = {}
    for index, entry in enumerate(env_list):
        name = entry.get("name") if isinstance(entry, dict) else None
        label = f"{bicep_file}: env[{index}] {name or '(no name)'}"
        if not isinstance(name, str) or not name:
            problem(f"{label}: no literal name")
            continue
        if set(entry) != {"name", "value"}:
            problem(f"{label}: has {sorted(set(entry) - {'name'})}; only a plain value is evaluated")
            continue
        try:
            value = evaluator.evaluate(entry["value"])
        except Unevaluated as e:
            problem(f"{label}: {e}")
            continue
        if not isinstance(value, str):
            problem(f"{label}: evaluates to {json.dumps(value)}, not a string")
            continue
        if name in env:
            problem(f"{label}: set twice")
        env[name] = value
    if problems:
        return finish()
    print(json.dumps(env, indent=2, sort_keys=True))
    return 0


def cmd_eval(bicep_file: str, params_json: str, *paths: str) -> int:
    """Prints {path: value} for each dotted path into the parsed Bicep file, evaluated (module
    params, resource properties, outputs, variables); a path that does not evaluate prints
    {"unevaluated": reason} instead, so the caller states which values it relies on."""
    from pycep import BicepParser

    parsed = BicepParser().parse(text=EXTENSION_LINE.sub("", Path(bicep_file).read_text()))
    params = json.loads(Path(params_json).read_text())
    evaluator = BicepEvaluator(parsed, params, Path(bicep_file).parent)
    out: dict[str, Any] = {}
    for path in paths:
        node = dig(parsed, tuple(path.split(".")))
        if node is KeyError:
            problem(f"{bicep_file}: no {path}")
            continue
        try:
            out[path] = evaluator.evaluate(node)
        except Unevaluated as e:
            out[path] = {"unevaluated": str(e)}
    if problems:
        return finish()
    print(json.dumps(out, indent=2, sort_keys=True))
    return 0


ENV_REFERENCE = re.compile(r"\$\([A-Za-z_][A-Za-z0-9_]*\)")


def cmd_chart_env(chart: str, values_file: str) -> int:
    import helm_python as helm

    chart_dir = Path(chart)
    values = load_yaml(Path(values_file))
    try:
        objects, _ = split_objects(render(chart_dir, values))
    except helm.HelmError as e:
        problem(f"helm template {values_file}: {e}")
        return finish()
    deployments = by_kind(objects, "Deployment")
    if len(deployments) != 1:
        problem(f"{values_file}: expected one Deployment, got {len(deployments)}")
        return finish()
    pod = deployments[0]["spec"]["template"]
    containers = pod["spec"].get("containers") or []
    if len(containers) != 1:
        problem(f"{values_file}: expected one container (the server), got {len(containers)}")
        return finish()
    container = containers[0]
    configmaps = {cm["metadata"]["name"]: cm.get("data") or {} for cm in by_kind(objects, "ConfigMap")}
    env: dict[str, str] = {}
    for index, source in enumerate(container.get("envFrom") or []):
        label = f"{values_file}: envFrom[{index}]"
        ref = source.get("configMapRef")
        if set(source) - {"configMapRef", "prefix"} or not isinstance(ref, dict):
            problem(f"{label}: {sorted(source)} is not resolved offline (only configMapRef)")
            continue
        data = configmaps.get(ref.get("name"))
        if data is None:
            if not ref.get("optional", False):
                problem(f"{label}: ConfigMap {ref.get('name')} is not rendered")
            continue
        prefix = source.get("prefix", "")
        for key, value in data.items():
            env[f"{prefix}{key}"] = str(value)
    for index, entry in enumerate(container.get("env") or []):
        name = entry.get("name")
        label = f"{values_file}: env[{index}] {name}"
        if "value" in entry and set(entry) == {"name", "value"}:
            value = str(entry["value"])
        elif set(entry) == {"name", "valueFrom"} and set(entry["valueFrom"]) == {"configMapKeyRef"}:
            ref = entry["valueFrom"]["configMapKeyRef"]
            data = configmaps.get(ref.get("name"))
            if data is None or ref.get("key") not in data:
                problem(f"{label}: ConfigMap key {ref.get('name')}/{ref.get('key')} is not rendered")
                continue
            value = str(data[ref["key"]])
        else:
            problem(f"{label}: {sorted(set(entry) - {'name'})} is not resolved offline (only value and valueFrom.configMapKeyRef)")
            continue
        if ENV_REFERENCE.search(value):
            problem(f"{label}: {value!r} has a $(VAR) reference, which is not expanded offline")
            continue
        env[name] = value
    accounts = {sa["metadata"]["name"]: sa for sa in by_kind(objects, "ServiceAccount")}
    sa_name = pod["spec"].get("serviceAccountName", "default")
    sa = accounts.get(sa_name, {"metadata": {"name": sa_name, "namespace": NAMESPACE}})
    if problems:
        return finish()
    out = {
        "env": env,
        "podLabels": pod["metadata"].get("labels") or {},
        "serviceAccount": {
            "name": sa_name,
            "namespace": sa["metadata"].get("namespace", NAMESPACE),
            "annotations": sa["metadata"].get("annotations") or {},
        },
        "ports": {p.get("name"): p.get("containerPort") for p in container.get("ports") or []},
        "ingressHosts": [r.get("host") for ing in by_kind(objects, "Ingress") for r in ing["spec"].get("rules") or []],
    }
    print(json.dumps(out, indent=2, sort_keys=True))
    return 0


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    command, args = argv[0], argv[1:]
    if command == "helm" and len(args) == 3:
        return cmd_helm(*args)
    if command == "render" and len(args) == 2:
        return cmd_render(*args)
    if command == "bicep" and len(args) == 2:
        return cmd_bicep(*args)
    if command == "hostjson" and len(args) == 2:
        return cmd_hostjson(*args)
    if command == "functions-image" and len(args) == 2:
        return cmd_functions_image(*args)
    if command == "compose" and len(args) == 2:
        return cmd_compose(*args)
    if command == "azure-yaml" and len(args) == 2:
        return cmd_azure_yaml(*args)
    if command == "claims" and len(args) == 1:
        return cmd_claims(*args)
    if command == "app-env" and len(args) == 2:
        return cmd_app_env(*args)
    if command == "eval" and len(args) >= 3:
        return cmd_eval(*args)
    if command == "chart-env" and len(args) == 2:
        return cmd_chart_env(*args)
    print(f"usage error: {' '.join(argv)}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
