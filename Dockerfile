# mcp-obo container images. One build stage, two runtime targets:
#
#   standalone  minimal, non-root, no shell (distroless); for AKS / Helm and any plain container
#               host.   docker build --target standalone -t mcp-obo:standalone .
#   functions   the Azure Functions host running mcp-obo as its custom handler (host.json
#               "mcp-custom-handler" profile); for Azure Container Apps (kind functionapp, azd)
#               and docker compose.   docker build -t mcp-obo:functions .
#
# `functions` is the LAST stage on purpose: azure.yaml's docker options have no "target", so
# azd builds the default (last) stage.
#
# Base images are pinned by tag in the FROM lines below; append @sha256:<digest> to a FROM
# line to pin it by content as well (resolve it with `docker buildx imagetools inspect`).
# The Functions image is pinned to an exact host release (4.1054.250) that has the
# `mcp-custom-handler` configuration profile and request proxying, on Debian 12 (bookworm);
# tests/schemas/functions-host.json says how that was established, and
# `scripts/lint-deploy.sh schemas` refuses a floating tag, an older host or a Debian release
# without security support. A pinned host gets no patches by itself: bump the tag with each
# host release you adopt (docs/deploy.md, "Which Functions host").

# --- build -------------------------------------------------------------------------------
# Built on Debian 12 (glibc 2.36), the release both runtime bases are on (distroless
# cc-debian12 and the bookworm Functions image): a binary linked against a newer glibc than
# the runtime's fails to start. The build image never ships.
FROM rust:1.95.0-bookworm AS build
WORKDIR /src

# Dependency layer: compile every dependency against placeholder sources, so that editing
# src/ only rebuilds the crate itself. Re-run only when a manifest or Cargo.lock changes.
# Cargo refuses a manifest whose declared targets have no file even when it does not build
# them, so each [[bench]] / [[test]] / [[example]] of Cargo.toml gets a placeholder too; those
# stay for the real build below (only src/ is in the build context, see .dockerignore).
# The workspace's other members (testkit/, loadtest/: test support and the load tool, never
# in the image) must be present for cargo to read the workspace and check Cargo.lock: their
# manifests are copied and their sources are placeholders; `-p mcp-obo` builds only the server.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY Cargo.toml Cargo.lock ./
COPY testkit/Cargo.toml testkit/
COPY loadtest/Cargo.toml loadtest/
RUN mkdir -p testkit/src loadtest/src \
    && touch testkit/src/lib.rs \
    && echo 'fn main() {}' > loadtest/src/main.rs \
    && awk -F'"' ' \
        function flush() { if (kind != "" && name != "") print (path != "" ? path : (kind == "bench" ? "benches" : kind "s") "/" name ".rs"); kind = ""; name = ""; path = "" } \
        /^\[/ { flush() } \
        /^\[\[(bench|test|example)\]\]/ { kind = substr($0, 3, length($0) - 4) } \
        kind != "" && /^name *=/ { name = $2 } \
        kind != "" && /^path *=/ { path = $2 } \
        END { flush() }' Cargo.toml \
    | while read -r target; do mkdir -p "$(dirname "$target")" && echo 'fn main() {}' > "$target"; done \
    && mkdir -p src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --profile dist --locked -p mcp-obo \
    && rm -rf src \
        target/dist/mcp-obo target/dist/mcp-obo.d \
        target/dist/deps/mcp_obo-* target/dist/deps/libmcp_obo-* \
        target/dist/.fingerprint/mcp-obo-*

# The real sources. COPY keeps the context's modification times, which can be older than
# the placeholder build above; the fingerprints of the crate itself were removed, so cargo
# rebuilds it regardless.
COPY src ./src
RUN cargo build --profile dist --locked -p mcp-obo \
    && install -D -m 0755 target/dist/mcp-obo /out/mcp-obo

# --- standalone --------------------------------------------------------------------------
# distroless/cc: glibc, libgcc and CA certificates, no shell, no package manager; runs as
# uid/gid 65532 (nonroot). The server writes nothing to disk, so the root filesystem can be
# mounted read-only.
FROM gcr.io/distroless/cc-debian12:nonroot AS standalone
COPY --from=build /out/mcp-obo /usr/local/bin/mcp-obo
ENV MCP_OBO__SERVER__LISTEN=0.0.0.0:8080 \
    MCP_OBO__LOG__FORMAT=json
USER 65532:65532
EXPOSE 8080
# No shell and no HTTP client in the image: liveness and readiness are the orchestrator's
# probes on /healthz and /readyz (Helm chart, Container Apps).
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/mcp-obo"]
CMD ["serve"]

# --- functions (default target) ----------------------------------------------------------
# The Functions host starts mcp-obo from host.json (customHandler.description) and proxies
# every route to it (customHandler.http.routes catch-all; no function.json, which the host
# refuses next to those routes) except its own /runtime/* and /admin/*; mcp-obo listens on
# 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT, a port the host picks and passes in the
# environment. The host listens on port 80; /metrics has its own listener, on loopback
# unless MCP_OBO__TELEMETRY__METRICS_LISTEN says otherwise (infra/ and docker-compose.yml set
# 0.0.0.0:9464 for their scrapers). The start command runs the host as the base image does
# (/opt/startup/start_nonappservice.sh) and stops the container with the reason in the log if
# the host does not set mcp-obo up as its custom handler (scripts/functions-start.sh).
FROM mcr.microsoft.com/azure-functions/node:4.1054.250-4-node22 AS functions
ENV AzureWebJobsScriptRoot=/home/site/wwwroot \
    AzureFunctionsJobHost__Logging__Console__IsEnabled=true \
    FUNCTIONS_WORKER_RUNTIME=custom \
    AzureWebJobsFeatureFlags=EnableMcpCustomHandlerPreview \
    MCP_OBO__LOG__FORMAT=json
COPY host.json /home/site/wwwroot/host.json
COPY --from=build /out/mcp-obo /home/site/wwwroot/mcp-obo
COPY scripts/functions-start.sh /opt/mcp-obo/functions-start.sh
# Fail the build, not the first request, if the binary cannot load on this base image
# (e.g. a glibc older than the build stage's).
RUN ["/home/site/wwwroot/mcp-obo", "--version"]
# The Functions host image starts its own process as root and keeps its state under
# /azure-functions-host and /home; the platform (Container Apps kind functionapp) runs it as
# published. mcp-obo itself drops nothing and writes nothing.
# The host answers health on its own routes; the platform probes the app through ingress.
HEALTHCHECK NONE
EXPOSE 80
CMD ["/opt/mcp-obo/functions-start.sh"]
