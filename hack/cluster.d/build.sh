#!/usr/bin/env bash
# Builds upstream Kubernetes v1.20.2 (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet)
# from Debian bookworm's `kubernetes` source package and, only with KUBELET=backport, a second
# kubelet carrying the kubernetes/kubernetes#112597 backport (dial unix sockets with authority
# "localhost").
# Everything goes to $NETPLUMB_K8S_CACHE (default /var/cache/netplumb-k8s):
#   bin/                 -> bin-<source sha>-<hash of this script>: the four stock binaries
#   kubelet-backport/    -> kubelet-backport-<source sha>-<hash of this script and patches>/kubelet
#   src/, gopath/        the extracted, fixed source (kept: a later backport request builds just that)
#   gocache/             Go's build cache
# A second run returns in a second; a backport request after a stock build takes about a minute.
# Built with the upstream `providerless` tag (KEP-1179: no in-tree cloud providers, i.e. no AWS,
# Azure, GCE, OpenStack or vSphere SDKs and cloud volume plugins) and `dockerless` (KEP-1985: no
# dockershim; the kubelet runs --container-runtime=remote on containerd): both leave out only code
# this cluster never runs, and the cloud SDKs were the largest part of a cold build.
# Debian's apt is used through a private deb-src list; /etc/apt is not touched.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${NETPLUMB_K8S_CACHE:-/var/cache/netplumb-k8s}
orig_sha=b83c0780efb182d928dc63d46488a847f161f04e40a94b96bf5247dd671ecdfc
version=v1.20.2
tags=selinux,notest,providerless,dockerless
stock_key=$(sha256sum <"$here/build.sh" | cut -c1-16)
backport_key=$(cat "$here/build.sh" "$here"/patches/*.patch | sha256sum | cut -c1-16)
out="$cache/bin-${orig_sha:0:12}-$stock_key"
out_backport="$cache/kubelet-backport-${orig_sha:0:12}-$backport_key"
src="$cache/src/kubernetes-1.20.2"
stock_bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
log() { echo "[cluster build $(date +%T)] $*" >&2; }

want_backport=0
[ "${KUBELET:-stock}" = backport ] && want_backport=1

have_stock() {
  local b
  for b in "${stock_bins[@]}"; do [ -x "$out/$b" ] || return 1; done
}

if have_stock && { [ $want_backport = 0 ] || [ -x "$out_backport/kubelet" ]; }; then
  log "cached: $out$([ $want_backport = 1 ] && echo " and $out_backport")"
  ln -sfn "$out" "$cache/bin"
  [ $want_backport = 0 ] || ln -sfn "$out_backport" "$cache/kubelet-backport"
  exit 0
fi

mkdir -p "$cache"
# One build at a time per cache (the backport patches the shared source tree while it builds).
exec 9>"$cache/.build.lock"
flock 9

need_pkgs() {
  local missing=()
  for p in golang-go etcd-server etcd-client containerd runc golang-github-modern-go-reflect2-dev busybox-static gcc libc6-dev jq; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    flock /tmp/netplumb-apt.lock sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${missing[*]}" >/dev/null
  fi
}

get_source() {
  local d="$cache/debsrc" tarball
  tarball="$d/kubernetes_1.20.5+really1.20.2.orig.tar.gz"
  if [ -f "$tarball" ] && echo "$orig_sha  $tarball" | sha256sum -c --quiet; then return; fi
  mkdir -p "$d/lists/partial" "$d/etc"
  # one deb-src line on the mirror and keyring the machine's apt already uses
  local uri keyring
  uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  keyring=$(awk '/^Signed-By:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  uri=${uri:-http://deb.debian.org/debian}
  keyring=${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}
  echo "deb-src [signed-by=$keyring] $uri bookworm main" >"$d/etc/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$d/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$d/lists" -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" update -qq
  (cd "$d" && apt-get "${opts[@]}" source --download-only kubernetes >/dev/null)
  echo "$orig_sha  $tarball" | sha256sum -c --quiet
}

extract_and_fix() {
  rm -rf "$cache/src" && mkdir -p "$cache/src"
  tar -xzf "$cache/debsrc/kubernetes_1.20.5+really1.20.2.orig.tar.gz" -C "$cache/src"
  [ -d "$src" ] || mv "$cache/src"/kubernetes-* "$src" 2>/dev/null || true
  # fix 3: reflect2 1.0.1 crashes on Go >= 1.18; Debian's 1.0.2 is upstream's fix
  rm -f "$src"/vendor/github.com/modern-go/reflect2/*.go "$src"/vendor/github.com/modern-go/reflect2/*.s
  cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go /usr/share/gocode/src/github.com/modern-go/reflect2/*.s \
    "$src/vendor/github.com/modern-go/reflect2/"
  # fix 1: GOPATH mode, as upstream 1.20 built
  mkdir -p "$cache/gopath/src/k8s.io"
  ln -sfn "$src" "$cache/gopath/src/k8s.io/kubernetes"
}

goenv() {
  export GOPATH="$cache/gopath" GOCACHE="$cache/gocache" GO111MODULE=off CGO_ENABLED=0 GOFLAGS= GOPROXY=off
}

ldflags() {
  local f=""
  for p in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
    f="$f -X $p.gitVersion=$version -X $p.gitMajor=1 -X $p.gitMinor=20 -X $p.gitTreeState=clean"
    f="$f -X $p.buildDate=2021-01-13T13:20:00Z -X $p.gitCommit=faecb196815e248d3ecfb03c680a4507229c2a56"
  done
  echo "-s -w $f"
}

gen_openapi() {
  # fix 2: zz_generated.openapi.go is not in the tarball; same package selection as Makefile.generated_files
  goenv
  cd "$cache/gopath/src/k8s.io/kubernetes"
  go build -o "$cache/tools/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
  local pkgs
  pkgs=$(find . \( -path './_*' -o -path './.*' -o -path ./vendor \) -prune -o -type f -name '*.go' -print |
    xargs grep -l '^// *+k8s:openapi-gen=' | sed -e 's|^\./||' -e 's|^staging/src|vendor|' |
    grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' |
    xargs -n1 dirname | LC_ALL=C sort -u | sed 's|^|k8s.io/kubernetes/|' | paste -sd, -)
  "$cache/tools/openapi-gen" -i "$pkgs" -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
    -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt -r "$cache/openapi-violations.report" \
    --output-base "$cache/gopath/src" >"$cache/openapi-gen.log" 2>&1
  [ -s pkg/generated/openapi/zz_generated.openapi.go ]
  diff -q "$cache/openapi-violations.report" api/api-rules/violation_exceptions.list >/dev/null ||
    log "warning: openapi API-rule report differs from api/api-rules/violation_exceptions.list"
}

# The source tree is ready (extracted, fixed, openapi generated) when its stamp names the tarball
# and the two functions that made it; anything else is made again from the tarball.
source_id() { echo "$orig_sha $(declare -f extract_and_fix gen_openapi | sha256sum | cut -c1-16)"; }
source_ready() { [ "$(cat "$cache/src/.ready" 2>/dev/null)" = "$(source_id)" ]; }

go_build() { # out-dir packages...: one `go build` for them all (Go overlaps their compiles and links)
  local dir=$1
  shift
  (goenv && cd "$cache/gopath/src/k8s.io/kubernetes" && go build -tags "$tags" -ldflags "$(ldflags)" -o "$dir/" "$@")
}

# The source tree, extracted and fixed, with the generated openapi. Only kube-apiserver needs that
# openapi: while openapi-gen (mostly one core) runs, `first` (other binaries, may be empty) build.
prepare_source() { # [out-dir packages...]
  rm -f "$cache/src/.ready"
  log "source"
  get_source
  log "extract + fixes"
  extract_and_fix
  local bg=""
  if [ $# -gt 1 ]; then
    log "go build ${*:2}, and openapi-gen meanwhile"
    go_build "$@" >"$cache/build-first.log" 2>&1 &
    bg=$!
  else
    log "openapi-gen"
  fi
  gen_openapi &
  local gen=$!
  if [ -n "$bg" ] && ! wait "$bg"; then log "go build failed: $(tail -c 3000 "$cache/build-first.log")"; exit 1; fi
  wait "$gen" || { log "openapi-gen failed (see $cache/openapi-gen.log)"; exit 1; }
  source_id >"$cache/src/.ready"
}

build_stock() {
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  if source_ready; then
    log "go build ${stock_bins[*]}"
    go_build "$out.tmp" "${stock_bins[@]/#/./cmd/}"
  else
    prepare_source "$out.tmp" ./cmd/kubelet ./cmd/kube-scheduler ./cmd/kube-controller-manager
    log "go build kube-apiserver"
    go_build "$out.tmp" ./cmd/kube-apiserver
  fi
  rm -rf "$out" && mv "$out.tmp" "$out"
}

# The #112597 kubelet: the patches applied to the shared tree for one build, then reverted (the
# tree counts as not ready meanwhile, so an interrupted build is made again from the tarball).
build_backport() {
  source_ready || prepare_source
  log "go build kubelet with the kubernetes/kubernetes#112597 backport"
  rm -f "$cache/src/.ready"
  local p rc=0
  for p in "$here"/patches/*.patch; do patch -d "$src" -p1 --forward <"$p" >/dev/null; done
  rm -rf "$out_backport.tmp" && mkdir -p "$out_backport.tmp"
  go_build "$out_backport.tmp" ./cmd/kubelet || rc=$?
  for p in $(ls -r "$here"/patches/*.patch); do patch -d "$src" -p1 -R <"$p" >/dev/null; done
  [ $rc = 0 ] || exit $rc
  source_id >"$cache/src/.ready"
  rm -rf "$out_backport" && mv "$out_backport.tmp" "$out_backport"
}

need_pkgs
have_stock || build_stock
ln -sfn "$out" "$cache/bin"
if [ $want_backport = 1 ]; then
  [ -x "$out_backport/kubelet" ] || build_backport
  ln -sfn "$out_backport" "$cache/kubelet-backport"
fi
log "done: $(cd "$cache/bin/" && ls | xargs)$([ $want_backport = 1 ] && echo " + kubelet-backport/kubelet")"
