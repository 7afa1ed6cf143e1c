#!/usr/bin/env bash
# The pod sandbox image k8s.gcr.io/pause:3.2 built offline: upstream's pause.c (from the same
# Kubernetes source tree) compiled statically, one layer, OCI archive at $1.
set -euo pipefail
out=$1 src=$2
[ -f "$out" ] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -Os -static -s -DVERSION=v3.2-netplumb -o "$work/pause" "$src/build/pause/linux/pause.c"
umoci init --layout "$work/oci"
umoci new --image "$work/oci:3.2"
umoci unpack --image "$work/oci:3.2" "$work/b" >/dev/null
install -m 0755 "$work/pause" "$work/b/rootfs/pause"
umoci repack --image "$work/oci:3.2" "$work/b"
umoci config --image "$work/oci:3.2" --config.entrypoint=/pause
skopeo copy --quiet "oci:$work/oci:3.2" "oci-archive:$out.tmp:k8s.gcr.io/pause:3.2"
mv "$out.tmp" "$out"
