#!/usr/bin/env bash
# Builds upstream Kubernetes v1.20.2 (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet)
# from Debian bookworm's `kubernetes` source package, plus a second kubelet carrying the
# kubernetes/kubernetes#112597 backport (dial unix sockets with authority "localhost").
# Everything goes to $NETPLUMB_K8S_CACHE (default /var/cache/netplumb-k8s), keyed by the source
# tarball's sha256 and the hash of this script and its patches: a second run returns in a second.
# Debian's apt is used through a private deb-src list; /etc/apt is not touched.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${NETPLUMB_K8S_CACHE:-/var/cache/netplumb-k8s}
orig_sha=b83c0780efb182d928dc63d46488a847f161f04e40a94b96bf5247dd671ecdfc
version=v1.20.2
key=$(cat "$here/build.sh" "$here"/patches/*.patch | sha256sum | cut -c1-16)
out="$cache/bin-${orig_sha:0:12}-$key"
log() { echo "[cluster build $(date +%T)] $*" >&2; }

if [ -x "$out/kubelet-backport" ]; then
  log "cached: $out"
  ln -sfn "$out" "$cache/bin"
  exit 0
fi

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
  local src="$cache/src/kubernetes-1.20.2"
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

build_bins() {
  goenv
  cd "$cache/gopath/src/k8s.io/kubernetes"
  local lf
  lf=$(ldflags)
  mkdir -p "$out.tmp"
  for c in kube-apiserver kubelet kube-scheduler kube-controller-manager; do
    log "go build $c"
    go build -tags selinux,notest -ldflags "$lf" -o "$out.tmp/$c" "./cmd/$c"
  done
  log "backport kubernetes/kubernetes#112597 into kubelet"
  for p in "$here"/patches/*.patch; do patch -p1 --forward <"$p" >/dev/null; done
  go build -tags selinux,notest -ldflags "$lf" -o "$out.tmp/kubelet-backport" ./cmd/kubelet
  for p in $(ls -r "$here"/patches/*.patch); do patch -p1 -R <"$p" >/dev/null; done
}

need_pkgs
log "source"
get_source
log "extract + fixes"
extract_and_fix
log "openapi-gen"
gen_openapi
build_bins
rm -rf "$out" && mv "$out.tmp" "$out"
ln -sfn "$out" "$cache/bin"
log "done: $(ls "$out" | xargs)"
