#!/bin/sh
# Builds the C programs (netplumb-shim, netplumb-spawner) into dist/ with the one C build
# (cni/daemon/c-build.ts: one set of compiler flags, static or fail). npm run build:shim.
set -eu
cd "$(dirname "$0")/.."
exec node --import tsx hack/build-c.ts
# netplumb-spawner: the daemon's delegate launcher (posix_spawn). Static only: no dynamic fallback.
mkdir -p dist/spawner
$cc -static -O2 -s -Wall -Wextra -Werror -o dist/spawner/netplumb-spawner.tmp cni/daemon/spawner/netplumb-spawner.c
mv dist/spawner/netplumb-spawner.tmp dist/spawner/netplumb-spawner
