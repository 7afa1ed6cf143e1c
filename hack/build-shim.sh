#!/bin/sh
# Builds the CNI launcher netplumb-shim (static C) into dist/shim/ (npm run build:shim).
set -eu
cd "$(dirname "$0")/.."
mkdir -p dist/shim
cc=${CC:-cc}
if ! $cc -static -Os -s -Wall -Wextra -o dist/shim/netplumb-shim.tmp cni/daemon/shim/netplumb-shim.c 2>/dev/null; then
  echo "static link failed; building a dynamically linked shim" >&2
  $cc -Os -s -Wall -Wextra -o dist/shim/netplumb-shim.tmp cni/daemon/shim/netplumb-shim.c
fi
mv dist/shim/netplumb-shim.tmp dist/shim/netplumb-shim
