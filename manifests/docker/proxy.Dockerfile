# The proxy with TCP (p0f) fingerprinting: it reads the eBPF agent's pinned maps through libbpf.
# Build from the repository root:
#   docker build -f manifests/docker/proxy.Dockerfile -t huginn/proxy:0.1.0 .
# The wasm parsers are a committed artifact (wasm/huginn_fp.wasm): no build tools in the image.

# Deno comes from the npm registry, pinned as in scripts/setup.sh; only its binary is kept.
FROM node:22-bookworm-slim AS deno
RUN npm install --global --no-audit --no-fund deno@2.9.6

FROM debian:12-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends libbpf1 \
  && rm -rf /var/lib/apt/lists/*
COPY --from=deno /usr/local/lib/node_modules/deno/deno /usr/local/bin/deno
ENV DENO_DIR=/app/.deno DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1
WORKDIR /app
COPY deno.json deno.lock ./
COPY shared/ shared/
COPY proxy/ proxy/
COPY wasm/huginn_fp.wasm wasm/
# The demo echo backend runs from this image too (manifests/base/echo-backend.yaml).
COPY tools/echo_backend.ts tools/
# Every npm package is fetched now, so that the container starts offline with a read-only root.
RUN deno cache --frozen proxy/main.ts proxy/worker.ts tools/echo_backend.ts
# uid/gid 10001, as runAsUser/runAsGroup in manifests/base/proxy-deployment.yaml.
RUN groupadd --gid 10001 huginn \
  && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin huginn
USER 10001:10001
EXPOSE 443 9090
# The flags of `deno task proxy` (deno.json), offline and with the lockfile read-only.
ENTRYPOINT ["deno", "run", "--cached-only", "--frozen", "--unstable-net", "--allow-ffi", "--allow-read", "--allow-env", "--allow-net", "--allow-sys", "proxy/main.ts"]
CMD ["/etc/huginn/config/proxy.toml"]
