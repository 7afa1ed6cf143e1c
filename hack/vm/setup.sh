#!/usr/bin/env bash
# Builds the guest pieces for hack/vm-e2e from Debian's packages only, into $VM_DIR (default
# <repo>/.vm): the kernel's module tree (image .deb unpacked, plus netdevsim.ko built from the
# same version's linux-source), the uncompressed vmlinux (PVH boot: twice as fast under TCG as
# the bzImage) and a small initramfs (static busybox + virtio/9p/overlay modules + hack/vm/init).
# Idempotent: does nothing when $VM_DIR/stamp matches the inputs. Needs root (apt-get).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
V=${VM_DIR:-$ROOT/.vm}
# .debs go to apt's own archive cache so another clone on the same machine does not fetch them again.
DEBS=${VM_DEBS:-/var/cache/apt/archives}
export DEBIAN_FRONTEND=noninteractive
log() { echo "vm-setup: $*" >&2; }

# Host tools: QEMU, busybox for the initramfs, kmod (depmod), and what a kernel module build needs.
PKGS=(qemu-system-x86 busybox-static cpio kmod xz-utils binutils libelf1 libssl3 make gcc-12 gzip)
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
updated=0
apt_update() { [ $updated = 1 ] || { apt-get update -qq; updated=1; }; }
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt_update
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

inputs_hash() { cat "$HERE/setup.sh" "$HERE/init" "$HERE/init2" /bin/busybox | sha256sum | cut -c1-16; }
HASH=$(inputs_hash)
if [ -f "$V/stamp" ] && [ "$(cat "$V/stamp")" = "$HASH" ] && [ -f "$V/KV" ]; then
  KV=$(cat "$V/KV")
  if [ -f "$V/vmlinux-$KV" ] && [ -f "$V/initramfs.cpio.gz" ] && [ -f "$V/kernel/lib/modules/$KV/extra/netdevsim.ko" ]; then
    exit 0
  fi
fi
mkdir -p "$V" "$DEBS"
cd "$V"

# The guest kernel is the image that linux-image-amd64 points to, as long as linux-source has the
# same version (netdevsim must be built from the very source of that image); otherwise the image
# whose version matches linux-source.
pkg_ver() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/{print $2; exit}'; }
IMG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
if [ -z "$IMG" ]; then apt_update; IMG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}'); fi
[ -n "$IMG" ] || { log "no linux-image-amd64 in the apt lists"; exit 1; }
KV=${IMG#linux-image-}            # 6.1.0-56-amd64
SER=$(echo "$KV" | cut -d. -f1-2) # 6.1
VER=$(pkg_ver "$IMG")
SVER=$(pkg_ver "linux-source-$SER")
if [ "$VER" != "$SVER" ]; then
  log "linux-image-amd64 -> $IMG $VER but linux-source-$SER is $SVER; looking for the image of $SVER"
  IMG=
  for cand in $(apt-cache pkgnames "linux-image-$SER." | grep -E '^linux-image-[0-9.]+-[0-9]+-amd64$' | sort -rV); do
    if [ "$(pkg_ver "$cand")" = "$SVER" ]; then IMG=$cand; break; fi
  done
  [ -n "$IMG" ] || { log "no linux-image-*-amd64 with version $SVER (linux-source-$SER)"; exit 1; }
  KV=${IMG#linux-image-}; VER=$SVER
fi
ABI=${KV%-amd64}
log "guest kernel $KV ($VER)"

deb_of() { # path of the cached .deb of package $1 at version $VER, downloading it when absent
  local f; f=$(ls "$DEBS/$1_"*"_"*.deb 2>/dev/null | while read -r d; do
    [ "$(dpkg-deb -f "$d" Version)" = "$VER" ] && echo "$d"; done | head -1)
  if [ -z "$f" ]; then
    (cd "$DEBS" && apt-get download -q "$1=$VER" 2>&1 | grep -v 'unsandboxed' >&2 || true)
    f=$(ls "$DEBS/$1_"*.deb 2>/dev/null | while read -r d; do
      [ "$(dpkg-deb -f "$d" Version)" = "$VER" ] && echo "$d"; done | head -1)
  fi
  [ -n "$f" ] || { log "could not download $1=$VER"; exit 1; }
  echo "$f"
}

rm -rf kernel hdr src nsim irfs
mkdir -p kernel hdr src nsim
dpkg -x "$(deb_of "$IMG")" kernel
for p in "linux-headers-$KV" "linux-headers-$ABI-common" "linux-kbuild-$SER"; do dpkg -x "$(deb_of "$p")" hdr; done
dpkg -x "$(deb_of "linux-source-$SER")" src
H=$V/hdr/usr/src/linux-headers-$KV
# The headers were unpacked, not installed: point the flavour Makefile at the unpacked common tree.
sed -i "s#^include /usr/src/#include $V/hdr/usr/src/#" "$H/Makefile"
tar -xJf "src/usr/src/linux-source-$SER.tar.xz" -C src \
  "linux-source-$SER/drivers/net/netdevsim" "linux-source-$SER/scripts/extract-vmlinux"
cp "src/linux-source-$SER/drivers/net/netdevsim/"* nsim/
log "building netdevsim.ko"
make -s -C "$H" M="$V/nsim" CONFIG_NETDEVSIM=m modules >&2
M=kernel/lib/modules/$KV
mkdir -p "$M/extra" && cp nsim/netdevsim.ko "$M/extra/"
depmod -b "$V/kernel" "$KV"
sh "src/linux-source-$SER/scripts/extract-vmlinux" "kernel/boot/vmlinuz-$KV" > "vmlinux-$KV.tmp"
mv "vmlinux-$KV.tmp" "vmlinux-$KV"

# initramfs: busybox + the modules stage 1 needs to reach the host's root (in load order).
mkdir -p irfs/bin irfs/dev irfs/proc irfs/sys "irfs/lib/modules/$KV"
cp /bin/busybox irfs/bin/busybox
cp "$HERE/init" "$HERE/init2" irfs/ && chmod +x irfs/init
for f in drivers/virtio/virtio.ko drivers/virtio/virtio_ring.ko drivers/virtio/virtio_pci_legacy_dev.ko \
  drivers/virtio/virtio_pci_modern_dev.ko drivers/virtio/virtio_pci.ko net/9p/9pnet.ko \
  net/9p/9pnet_virtio.ko fs/netfs/netfs.ko fs/fscache/fscache.ko fs/9p/9p.ko fs/overlayfs/overlay.ko; do
  cp "$M/kernel/$f" "irfs/lib/modules/$KV/"
done
(cd irfs && find . | cpio -o -H newc --quiet | gzip -1) > initramfs.cpio.gz.tmp
mv initramfs.cpio.gz.tmp initramfs.cpio.gz
# Only the module tree, vmlinux and initramfs are needed from here on.
rm -rf hdr src nsim irfs kernel/boot kernel/usr
echo "$KV" > KV
echo "$HASH" > stamp
log "done: $(du -sh "$V" | cut -f1) in $V"
