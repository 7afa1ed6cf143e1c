# netplumb image: the device plugin, the CNI daemon and `netplumb install` (the static netplumb-shim
# launcher and the self-contained netplumb-cni for hosts without Node.js).
#   docker build -t ghcr.io/netplumb/netplumb:0.1.0 .
# hack/build-image builds the same image without a container engine (Debian's and npm's registries
# only) as an OCI archive; deployments/kustomization.yaml names it once (`images:`).

# --- build: Node 20 on Debian bookworm -----------------------------------------------------------
FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# tsc -> dist/, the static C launcher -> dist/shim/, the single executable -> dist/sea/
RUN rm -rf dist && npx tsc -p tsconfig.build.json \
  && sh hack/build-shim.sh \
  && node --import tsx hack/build-sea.ts \
  && rm -rf dist/sea/*.work \
  && find dist -name '*.map' -delete
RUN mkdir /app && cp -a dist package.json package-lock.json /app/ \
  && cd /app && npm ci --omit=dev --ignore-scripts --no-audit --no-fund && rm package-lock.json

# --- runtime: Debian bookworm slim + Node 20 -------------------------------------------------------
FROM debian:bookworm-slim
# iproute2: ip (links, netns, VF settings); kmod: modprobe (vfio-pci); pciutils: lspci for debugging.
RUN apt-get update \
  && apt-get install -y --no-install-recommends iproute2 kmod pciutils libstdc++6 ca-certificates \
  && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/node /usr/local/bin/node
COPY --from=build /app /app
WORKDIR /app
ENV NODE_ENV=production
ENTRYPOINT ["/usr/local/bin/node", "/app/dist/bin/netplumb.js"]
LABEL org.opencontainers.image.title=netplumb
