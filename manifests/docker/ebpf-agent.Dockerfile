# The eBPF agent: loads the committed SYN capture program (bpf/capture.bpf.o) with libbpf, pins its maps
# and attaches it to the node's interface. No compiler in the image.
# Build from the repository root:
#   docker build -f manifests/docker/ebpf-agent.Dockerfile -t huginn/ebpf-agent:0.1.0 .

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
COPY agent/ agent/
COPY bpf/capture.bpf.o bpf/
# Every npm package is fetched now, so that the container starts offline with a read-only root.
RUN deno cache --frozen agent/main.ts
# Root with only BPF, NET_ADMIN and PERFMON: the manifests add those and drop everything else
# (manifests/overlays/ebpf/agent-daemonset.yaml, manifests/compose/compose.ebpf.yaml).
USER 0:0
EXPOSE 9091
# The flags of `deno task agent` (deno.json), offline and with the lockfile read-only.
ENTRYPOINT ["deno", "run", "--cached-only", "--frozen", "--allow-all", "agent/main.ts"]
