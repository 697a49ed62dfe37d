"""Checks of scripts/lint_deploy.py for the shared token cache and the dashboards:
the chart's sharedCache and dashboards values as rendered, infra/modules/redis.bicep against
what the Microsoft.Cache API accepts (tests/schemas/redis-enterprise.json), and its wiring
into main.bicep and the container app. Each function returns the problems it found, one
line each, and lint_deploy.py reports them with its own."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

DASHBOARD_LABEL = "grafana_dashboard"
DASHBOARD_FILE = "dashboards/mcp-obo.json"
PASSWORD_FILE = "/var/run/secrets/mcp-obo/shared-cache/password"


def is_dashboard(obj: dict[str, Any]) -> bool:
    return obj.get("kind") == "ConfigMap" and DASHBOARD_LABEL in (obj.get("metadata", {}).get("labels") or {})


def check_chart(name: str, values: dict[str, Any], objects: list[dict[str, Any]], chart_dir: Path) -> list[str]:
    """sharedCache: the env the server reads, the password as a mounted file, the Redis
    egress; dashboards: one sidecar-labelled ConfigMap holding dashboards/mcp-obo.json as is."""
    out: list[str] = []
    cache = values.get("sharedCache") or {}
    config = [o for o in objects if o.get("kind") == "ConfigMap" and not is_dashboard(o)]
    data = (config[0].get("data") or {}) if config else {}
    shared = {k: v for k, v in data.items() if k.startswith("MCP_OBO__OBO__SHARED_CACHE__")}
    deployment = next((o for o in objects if o.get("kind") == "Deployment"), {})
    spec = deployment.get("spec", {}).get("template", {}).get("spec", {})
    container = (spec.get("containers") or [{}])[0]
    env_names = [e.get("name", "") for e in container.get("env") or []]
    if any(n.startswith("MCP_OBO__OBO__SHARED_CACHE__PASSWORD") for n in env_names):
        out.append(f"{name}: the shared cache's password is an environment variable, not a mounted file")
    if not cache.get("enabled", False):
        if shared:
            out.append(f"{name}: sharedCache is off but the ConfigMap sets {sorted(shared)}")
    else:
        auth = cache.get("auth", "none")
        want = {
            "MCP_OBO__OBO__SHARED_CACHE__URL": cache["url"],
            "MCP_OBO__OBO__SHARED_CACHE__CLUSTER": "true" if cache.get("cluster", False) else "false",
            "MCP_OBO__OBO__SHARED_CACHE__AUTH": auth,
        }
        if cache.get("username"):
            want["MCP_OBO__OBO__SHARED_CACHE__USERNAME"] = cache["username"]
        if cache.get("timeout"):
            want["MCP_OBO__OBO__SHARED_CACHE__TIMEOUT"] = cache["timeout"]
        if auth == "password":
            want["MCP_OBO__OBO__SHARED_CACHE__PASSWORD_FILE"] = PASSWORD_FILE
        if shared != want:
            out.append(f"{name}: shared cache settings are {json.dumps(shared)}, expected {json.dumps(want)}")
        out += check_password_mount(name, cache, auth, spec, container)
        if auth == "entra" and not values.get("workloadIdentity", {}).get("enabled", True):
            out.append(f"{name}: sharedCache.auth=entra rendered without the workload identity")
        out += check_egress(name, values, cache, objects)
    dashboards = [o for o in objects if is_dashboard(o)]
    enabled = (values.get("dashboards") or {}).get("enabled", False)
    if len(dashboards) != (1 if enabled else 0):
        out.append(f"{name}: {len(dashboards)} dashboard ConfigMaps, expected one iff dashboards.enabled")
    for cm in dashboards:
        if cm["metadata"]["labels"].get(DASHBOARD_LABEL) != "1":
            out.append(f"{name}: the dashboard ConfigMap's {DASHBOARD_LABEL} label is not \"1\"")
        shipped = (chart_dir / DASHBOARD_FILE).read_text()
        got = (cm.get("data") or {}).get("mcp-obo.json")
        if got is None or json.loads(got) != json.loads(shipped):
            out.append(f"{name}: the dashboard ConfigMap does not hold {DASHBOARD_FILE}")
    return out


def check_password_mount(name: str, cache: dict[str, Any], auth: str, spec: dict[str, Any], container: dict[str, Any]) -> list[str]:
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    volume = volumes.get("shared-cache-password")
    mounted = [m for m in container.get("volumeMounts") or [] if m.get("name") == "shared-cache-password"]
    if auth != "password":
        return [f"{name}: a shared-cache password volume with auth={auth}"] if volume or mounted else []
    out = []
    secret = (volume or {}).get("secret") or {}
    expected_items = [{"key": cache["passwordSecret"]["key"], "path": "password"}]
    if secret.get("secretName") != cache["passwordSecret"]["name"] or secret.get("items") != expected_items:
        out.append(f"{name}: the password volume is {json.dumps(secret)}, expected Secret {cache['passwordSecret']['name']} key {cache['passwordSecret']['key']}")
    if len(mounted) != 1 or mounted[0].get("readOnly") is not True or f"{mounted[0].get('mountPath')}/password" != PASSWORD_FILE:
        out.append(f"{name}: the password volume is not mounted read-only where MCP_OBO__OBO__SHARED_CACHE__PASSWORD_FILE points")
    return out


def check_egress(name: str, values: dict[str, Any], cache: dict[str, Any], objects: list[dict[str, Any]]) -> list[str]:
    if not values.get("networkPolicy", {}).get("enabled", True):
        return []
    egress = cache.get("egress") or {"ports": [6379, 6380, 10000], "to": []}
    want_ports = sorted(egress["ports"])
    for np in (o for o in objects if o.get("kind") == "NetworkPolicy"):
        rules = np["spec"].get("egress", [])
        matching = [
            r for r in rules
            if sorted(p.get("port") for p in r.get("ports", [])) == want_ports
            and all(p.get("protocol") == "TCP" for p in r.get("ports", []))
        ]
        if len(matching) != 1:
            return [f"{name}: no NetworkPolicy egress rule for the shared cache's ports {want_ports}"]
        if (matching[0].get("to") or []) != egress["to"]:
            return [f"{name}: the shared cache egress goes to {json.dumps(matching[0].get('to'))}, expected {json.dumps(egress['to'])}"]
    return []


def schema_reject_cases(base: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Values the chart's schema must refuse (sharedCache, dashboards)."""
    import copy

    def with_cache(**cache: Any) -> dict[str, Any]:
        values = copy.deepcopy(base)
        values["sharedCache"] = {"enabled": True, "url": "redis://redis:6379", **cache}
        return values

    no_wi = with_cache(auth="entra")
    no_wi["workloadIdentity"] = {"enabled": False}
    dashboards = copy.deepcopy(base)
    dashboards["dashboards"] = {"enabled": True, "configMap": "x"}
    return [
        ("a shared cache without a URL", with_cache(url="")),
        ("a shared cache URL that is not redis:// or rediss://", with_cache(url="https://redis:6379")),
        ("an unknown shared cache auth", with_cache(auth="kerberos")),
        ("shared cache password auth without a Secret", with_cache(auth="password", passwordSecret={"name": "", "key": "password"})),
        ("shared cache entra auth without the workload identity", no_wi),
        ("a shared cache password in the values", with_cache(password="hunter2")),
        ("an unknown dashboards key", dashboards),
    ]


# --- Bicep ------------------------------------------------------------------------------------


def dig(tree: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def check_against_api(file: str, parsed: dict[str, Any], facts: dict[str, Any]) -> list[str]:
    """Every resource of `parsed` against the facts: type, API version, names, property names
    and, where the API has a fixed set, values (literals, or each @allowed of a parameter)."""
    out = []
    allowed = {
        p: next((d.get("argument") for d in spec.get("decorators") or [] if d.get("type") == "allowed"), None)
        for p, spec in (parsed.get("parameters") or {}).items()
    }
    for res_name, res in (parsed.get("resources") or {}).items():
        kind = res.get("type")
        api = facts["resources"].get(kind)
        label = f"{file}: resource {res_name} ({kind})"
        if api is None:
            out.append(f"{label}: not a type tests/schemas/redis-enterprise.json describes")
            continue
        if res.get("api_version") != facts["apiVersion"]:
            out.append(f"{label}: API version {res.get('api_version')}, the checked one is {facts['apiVersion']}")
        config = res.get("config") or {}
        for key in config:
            if key not in api["top"]:
                out.append(f"{label}: {key} is not a property of the resource")
        literal_name = config.get("name")
        if isinstance(literal_name, str) and literal_name not in (parsed.get("parameters") or {}) and not re.match(api["namePattern"], literal_name):
            out.append(f"{label}: name {literal_name!r} does not match {api['namePattern']}")
        for section in ("sku", "properties"):
            if section in api or section == "properties":
                out += check_properties(f"{label} {section}", config.get(section) or {}, api.get(section) or {}, allowed)
    return out


def check_properties(label: str, got: dict[str, Any], known: dict[str, Any], allowed: dict[str, Any]) -> list[str]:
    out = []
    for key, value in got.items():
        if key not in known:
            out.append(f"{label}: {key} is not a property the API accepts")
            continue
        rule = known[key]
        if isinstance(rule, dict) and isinstance(value, dict):
            out += check_properties(f"{label}.{key}", value, rule, allowed)
        elif isinstance(rule, list):
            values = allowed.get(value) if isinstance(value, str) and allowed.get(value) else [value]
            for v in values:
                if v not in rule:
                    out.append(f"{label}.{key}: {v!r} is not one of {rule}")
    return out


# (path into redis.bicep, expected): what the shared cache's security rests on.
REDIS_INVARIANTS: list[tuple[tuple[str, ...], Any]] = [
    (("resources", "cluster", "config", "properties", "minimumTlsVersion"), "1.2"),
    (("resources", "database", "config", "name"), "default"),
    (("resources", "database", "config", "properties", "clientProtocol"), "Encrypted"),
    (("resources", "database", "config", "properties", "clusteringPolicy"), "OSSCluster"),
    (("resources", "database", "config", "properties", "accessKeysAuthentication"), "Disabled"),
    (("resources", "database", "config", "properties", "port"), "port"),
    (("variables", "port", "value"), 10000),
    (("resources", "serverAccess", "config", "parent"), "database"),
    (("resources", "serverAccess", "config", "properties", "accessPolicyName"), "default"),
    (("resources", "serverAccess", "config", "properties", "user", "objectId"), "principalId"),
    (("outputs", "url", "value"), "rediss://${cluster.properties.hostName}:${port}"),
]

APP_SHARED_ENV = {
    "MCP_OBO__OBO__SHARED_CACHE__URL": "sharedCacheUrl",
    "MCP_OBO__OBO__SHARED_CACHE__CLUSTER": "true",
    "MCP_OBO__OBO__SHARED_CACHE__AUTH": "entra",
    "MCP_OBO__OBO__SHARED_CACHE__USERNAME": "sharedCacheUsername",
}


def check_infra(parsed: dict[str, Any], infra: Path, facts_file: Path) -> list[str]:
    """redis.bicep against the API and its invariants; main.bicep's switch (off by default,
    from the azd env SHARED_TOKEN_CACHE) and the container app's shared cache settings."""
    redis = parsed.get("modules/redis.bicep")
    main = parsed.get("main.bicep") or {}
    app = parsed.get("modules/mcp-app.bicep") or {}
    if redis is None:
        return ["modules/redis.bicep: missing or unparsed"]
    out = check_against_api("modules/redis.bicep", redis, json.loads(facts_file.read_text()))
    for path, want in REDIS_INVARIANTS:
        got = dig(redis, path)
        if got != want:
            out.append(f"modules/redis.bicep: {'.'.join(path)} is {json.dumps(got)}, expected {json.dumps(want)}")
    if dig(main, ("parameters", "sharedTokenCache", "default")) is not False:
        out.append("main.bicep: parameter sharedTokenCache is not off by default")
    module = dig(main, ("modules", "redis")) or {}
    if module.get("detail", {}).get("path") != "modules/redis.bicep" or dig(module, ("config", "condition")) != "sharedTokenCache":
        out.append("main.bicep: module redis is not modules/redis.bicep deployed if (sharedTokenCache)")
    principal = json.dumps(dig(module, ("config", "config", "params", "principalId")))
    if '"identity"' not in principal or '"principalId"' not in principal:
        out.append("main.bicep: the Redis access policy is not for the server's managed identity (identity.outputs.principalId)")
    params = json.loads((infra / "main.parameters.json").read_text()).get("parameters", {})
    if params.get("sharedTokenCache", {}).get("value") != "${SHARED_TOKEN_CACHE=false}":
        out.append("main.parameters.json: sharedTokenCache is not fed by the azd env SHARED_TOKEN_CACHE (default false)")
    out += check_workbook(parsed.get("modules/workbook.bicep") or {}, main, infra / "modules")
    entries = dig(app, ("variables", "sharedCacheEnv", "value", "operator", "operands"))
    on = {e.get("name"): e.get("value") for e in (entries or {}).get("false_value") or [] if isinstance(e, dict)}
    if on != APP_SHARED_ENV or (entries or {}).get("true_value") != []:
        out.append(f"modules/mcp-app.bicep: sharedCacheEnv is {json.dumps(on)}, expected {json.dumps(APP_SHARED_ENV)} (and [] when off)")
    return out


def check_compose(services: dict[str, Any]) -> list[str]:
    """docker-compose.yml: a Redis service from the official image with a healthcheck, and
    every mcp-obo service using it (its URL, started after it is healthy)."""
    out = []
    redis = services.get("redis") or {}
    if not str(redis.get("image", "")).startswith("redis:"):
        out.append(f"docker-compose.yml: service redis is {redis.get('image')!r}, not the official redis image")
    if "redis-cli" not in json.dumps((redis.get("healthcheck") or {}).get("test")):
        out.append("docker-compose.yml: service redis has no redis-cli healthcheck")
    servers = [n for n, s in services.items() if (s.get("build") or {}).get("target") in ("functions", "standalone")]
    for name in servers:
        service = services[name]
        env = service.get("environment") or {}
        if env.get("MCP_OBO__OBO__SHARED_CACHE__URL") != "redis://redis:6379":
            out.append(f"docker-compose.yml: {name} does not use the redis service (MCP_OBO__OBO__SHARED_CACHE__URL)")
        if ((service.get("depends_on") or {}).get("redis") or {}).get("condition") != "service_healthy":
            out.append(f"docker-compose.yml: {name} does not wait for redis to be healthy")
    return out


def check_workbook(workbook: dict[str, Any], main: dict[str, Any], modules: Path) -> list[str]:
    """The workbook: over the deployment's Application Insights, its content the repository's
    infra/workbooks/mcp-obo.workbook.json (loaded, not inlined), a Notebook/1.0 document."""
    out = []
    res = dig(workbook, ("resources", "workbook")) or {}
    props = dig(res, ("config", "properties")) or {}
    if res.get("type") != "Microsoft.Insights/workbooks" or props.get("sourceId") != "applicationInsightsId" or props.get("category") != "workbook":
        out.append("modules/workbook.bicep: not a Microsoft.Insights/workbooks (category workbook) over applicationInsightsId")
    load = dig(props, ("serializedData", "function")) or {}
    path = (load.get("parameters") or {}).get("file_path")
    if load.get("type") != "load_text_content" or not isinstance(path, str):
        return out + ["modules/workbook.bicep: serializedData is not loadTextContent('<the workbook file>')"]
    try:
        content = json.loads((modules / path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        return out + [f"modules/workbook.bicep: {path}: {e}"]
    if content.get("version") != "Notebook/1.0" or not any(i.get("type") == 3 for i in content.get("items", [])):
        out.append(f"{path}: not a Notebook/1.0 workbook with queries")
    wired = json.dumps(dig(main, ("modules", "workbook", "config", "params", "applicationInsightsId")))
    if '"monitoring"' not in wired or '"applicationInsightsId"' not in wired:
        out.append("main.bicep: the workbook does not query the deployment's Application Insights (monitoring.outputs.applicationInsightsId)")
    return out
