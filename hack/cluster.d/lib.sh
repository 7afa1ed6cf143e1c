# shellcheck shell=bash
# hack/cluster's implementation (sourced). Pitfalls handled here are those of shared/REAL-K8S.md:
# restrict_oom_score_adj (no CAP_SYS_RESOURCE), fully qualified image names, the kubelet's
# DEPRECATION file and device-plugins wipe, apiserver->kubelet by hostname, lazy kubelet unmount.
S=${NETPLUMB_CLUSTER_DIR:-/var/lib/netplumb-cluster}
K8S_CACHE=${NETPLUMB_K8S_CACHE:-/var/cache/netplumb-k8s}
RUN=/run/netplumb-cluster
SOCK=$RUN/containerd.sock
NODE=${NETPLUMB_CLUSTER_NODE:-$(hostname)}
BRIDGE=np-cni0
POD_NET=netplumb-test-pod-net
POD_CONF=/etc/cni/net.d/10-netplumb-test-pod-net.conflist
# Host paths the product's manifests use; `up` records which it created so `down` removes those.
HOST_DIRS=(/var/lib/kubelet /etc/cni/net.d /opt/cni/bin)

log() { echo "[cluster $(date +%T)] $*" >&2; }
die() { echo "hack/cluster: $*" >&2; exit 1; }
kc() { kubectl --kubeconfig "$S/pki/admin.kubeconfig" "$@"; }

alive() { [ -f "$S/run/$1.pid" ] && kill -0 "$(cat "$S/run/$1.pid")" 2>/dev/null; }

start() { # name cmd...: background, logs/<name>.log, run/<name>.pid
  local name=$1
  shift
  "$@" >>"$S/logs/$name.log" 2>&1 &
  echo $! >"$S/run/$name.pid"
}

wait_for() { # seconds description cmd...
  local t=$1 what=$2 i
  shift 2
  for ((i = 0; i < t * 5; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  die "timed out after ${t}s waiting for $what (logs: $S/logs/)"
}

stop_pid() { # name [seconds]
  local name=$1 t=${2:-15} pid i
  [ -f "$S/run/$name.pid" ] || return 0
  pid=$(cat "$S/run/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < t * 5; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$S/run/$name.pid"
}

need_pkgs() {
  local missing=() p
  for p in etcd-server etcd-client containerd runc containernetworking-plugins openssl iproute2 umoci skopeo gcc libc6-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  log "installing ${missing[*]}"
  flock /tmp/netplumb-apt.lock sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${missing[*]}" >/dev/null
}

write_configs() {
  mkdir -p "$S/containerd" "$S/kubelet/manifests" "$S/etcd"
  cat >"$S/containerd/config.toml" <<EOF
version = 2
root = "$S/containerd/root"
state = "$RUN/containerd"
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$RUN/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "k8s.gcr.io/pause:3.2"
  # This VM drops CAP_SYS_RESOURCE: a negative oom_score_adj (the sandbox asks for -998) fails.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
EOF
  cat >"$S/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $S/pki/kubelet.crt
tlsPrivateKeyFile: $S/pki/kubelet.key
authentication:
  x509: {clientCAFile: $S/pki/ca.crt}
  anonymous: {enabled: false}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
staticPodPath: $S/kubelet/manifests
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
resolvConf: /etc/resolv.conf
EOF
  # The node's primary pod network: a bridge with host-local IPAM (netplumb wraps it as clusterNetwork).
  cat >"$S/pod-net.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$POD_NET",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "10.244.0.0/24" }]], "routes": [{ "dst": "0.0.0.0/0" }] }
    }
  ]
}
EOF
}

host_setup() {
  local d f
  : >"$S/created"
  # The last five are made by the kubelet for the DaemonSets' hostPath DirectoryOrCreate volumes.
  for d in "${HOST_DIRS[@]}" /etc/cni /opt/cni /etc/cni/multus /run/netplumb /var/lib/cni /var/run/k8s.cni.cncf.io /run/netns; do
    [ -e "$d" ] || echo "dir $d" >>"$S/created"
  done
  mkdir -p "${HOST_DIRS[@]}" "$RUN"
  # The reference plugins, copied (not linked): the CNI daemon runs delegates inside its container.
  for f in /usr/lib/cni/*; do
    [ -e "/opt/cni/bin/$(basename "$f")" ] && continue
    cp "$f" /opt/cni/bin/ && echo "file /opt/cni/bin/$(basename "$f")" >>"$S/created"
  done
  cp "$S/pod-net.conflist" "$POD_CONF" && echo "file $POD_CONF" >>"$S/created"
}

start_etcd() {
  start etcd etcd --name netplumb-test --data-dir "$S/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster netplumb-test=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381
  wait_for 20 etcd etcdctl --endpoints http://127.0.0.1:2379 endpoint health
}

start_apiserver() {
  local bin=$K8S_CACHE/bin p=$S/pki
  start kube-apiserver "$bin/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=127.0.0.1 --secure-port=6443 --advertise-address=127.0.0.1 --insecure-port=0 \
    --cert-dir="$S/apiserver-certs" --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
    --client-ca-file="$p/ca.crt" --token-auth-file="$p/tokens.csv" --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local --service-account-key-file="$p/sa.pub" \
    --service-account-signing-key-file="$p/sa.key" --api-audiences=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range=10.96.0.0/12 --allow-privileged=true --enable-aggregator-routing=true \
    --kubelet-client-certificate="$p/apiserver-kubelet-client.crt" --kubelet-client-key="$p/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$p/ca.crt" --kubelet-preferred-address-types=Hostname --profiling=false --v=1
  wait_for 60 "kube-apiserver /readyz" kc get --raw /readyz
}

start_controllers() {
  local bin=$K8S_CACHE/bin p=$S/pki
  start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig="$p/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$p/controller-manager.kubeconfig" --authorization-kubeconfig="$p/controller-manager.kubeconfig" \
    --service-account-private-key-file="$p/sa.key" --root-ca-file="$p/ca.crt" --use-service-account-credentials=true \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port=10257 --port=0 --allocate-node-cidrs=false \
    --cert-dir="$S/kcm-certs" --profiling=false --v=1
  start kube-scheduler "$bin/kube-scheduler" --kubeconfig="$p/scheduler.kubeconfig" \
    --authentication-kubeconfig="$p/scheduler.kubeconfig" --authorization-kubeconfig="$p/scheduler.kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port=10259 --port=0 --cert-dir="$S/sched-certs" --v=1
}

start_containerd() {
  start containerd containerd --config "$S/containerd/config.toml"
  wait_for 30 containerd ctr -a "$SOCK" version
  local img
  for img in "$S/images/"*.tar "$IMAGE"; do
    ctr -a "$SOCK" -n k8s.io images import --all-platforms "$img" >>"$S/logs/images.log" 2>&1 ||
      die "ctr images import $img failed (see $S/logs/images.log)"
  done
}

start_kubelet() {
  local bin=$K8S_CACHE/bin/kubelet
  [ "${KUBELET:-stock}" = backport ] && bin=$K8S_CACHE/kubelet-backport/kubelet
  echo "${KUBELET:-stock}" >"$S/kubelet-flavor"
  rm -f "$S/run/kubelet.stopped"
  start kubelet "$bin" --config="$S/kubelet/config.yaml" --kubeconfig="$S/pki/kubelet.kubeconfig" \
    --container-runtime=remote --container-runtime-endpoint="unix://$SOCK" --runtime-request-timeout=2m \
    --pod-infra-container-image=k8s.gcr.io/pause:3.2 --hostname-override="$NODE" --root-dir=/var/lib/kubelet \
    --cert-dir="$S/kubelet/pki" --v=2
  wait_for 60 "kubelet healthz" curl -sf http://127.0.0.1:10248/healthz
  wait_for 60 "node $NODE Ready" sh -c "kubectl --kubeconfig '$S/pki/admin.kubeconfig' get node '$NODE' -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
}

cluster_up() {
  IMAGE=$root/dist/image/netplumb.oci.tar
  while [ $# -gt 0 ]; do
    case "$1" in
      --image) IMAGE=$2; shift 2 ;;
      *) die "up: unknown argument $1" ;;
    esac
  done
  [ "$(id -u)" = 0 ] || die "needs root"
  getent hosts "$NODE" | grep -q '^127\.' || die "$NODE must resolve to 127.0.0.1 (/etc/hosts): the API server reaches the kubelet by hostname"
  if alive kube-apiserver || alive kubelet; then die "already up (hack/cluster down first)"; fi
  local t0=$SECONDS
  need_pkgs
  local b
  for b in bin/kube-apiserver bin/kube-controller-manager bin/kube-scheduler "$([ "${KUBELET:-stock}" = backport ] && echo kubelet-backport || echo bin)/kubelet"; do
    [ -x "$K8S_CACHE/$b" ] || { "$here/cluster.d/build.sh"; break; }
  done
  [ -f "$IMAGE" ] || "$root/hack/build-image" --out "$IMAGE"
  mkdir -p "$S/logs" "$S/run" "$S/images"
  "$here/cluster.d/pki.sh" "$S/pki" "$NODE"
  "$here/cluster.d/pause-image.sh" "$S/images/pause-3.2.oci.tar" "$K8S_CACHE/src/kubernetes-1.20.2"
  write_configs
  host_setup
  start_etcd
  start_apiserver
  start_controllers
  start_containerd
  start_kubelet
  wait_for 60 "the default service account" kc -n default get serviceaccount default
  cat >"$S/env.json" <<EOF
{"kubeconfig": "$S/pki/admin.kubeconfig", "node": "$NODE", "kubelet": "${KUBELET:-stock}", "dir": "$S", "containerdSocket": "$SOCK", "image": "$IMAGE"}
EOF
  log "up in $((SECONDS - t0))s (kubelet ${KUBELET:-stock}); export KUBECONFIG=$S/pki/admin.kubeconfig"
}

delete_pods() {
  alive kube-apiserver && alive kubelet || return 0
  kc delete daemonsets,deployments,replicasets,jobs --all --all-namespaces --wait=false >/dev/null 2>&1 || true
  kc delete pods --all --all-namespaces --grace-period=2 --timeout=60s >/dev/null 2>&1 || true
}

kill_containers() {
  [ -S "$SOCK" ] || return 0
  local id
  for id in $(ctr -a "$SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr -a "$SOCK" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
  sleep 0.5
  for id in $(ctr -a "$SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr -a "$SOCK" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1 || true
  done
  for id in $(ctr -a "$SOCK" -n k8s.io containers ls -q 2>/dev/null); do
    ctr -a "$SOCK" -n k8s.io containers delete "$id" >/dev/null 2>&1 || true
  done
}

kill_shims() { # containerd-shim-runc-v2 processes of this containerd, by PID
  local p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q "containerd-shim.*-address $SOCK" && kill -KILL "${p#/proc/}" 2>/dev/null || true
  done
}

unmount_under() { # lazy-unmount every mount below the given paths, deepest first
  local m
  for m in $(awk '{print $2}' /proc/mounts | sort -r); do
    for base in "$@"; do
      case "$m" in "$base" | "$base"/*) umount -l "$m" 2>/dev/null || true ;; esac
    done
  done
}

remove_created() {
  [ -f "$S/created" ] || return 0
  local kind path
  while read -r kind path; do if [ "$kind" = file ]; then rm -f "$path"; fi; done <"$S/created"
  # directories: deepest first, and only when netplumb's own uninstall left them empty
  while read -r kind path; do if [ "$kind" = dir ]; then echo "$path"; fi; done <"$S/created" | sort -r |
    while read -r path; do
      case "$path" in
        /var/lib/kubelet | /etc/cni/multus | /run/netplumb | /var/run/k8s.cni.cncf.io) rm -rf "$path" ;;
        # shared with other host-local users: only what this cluster's pods leave, then empty dirs
        /var/lib/cni)
          rm -rf /var/lib/cni/netplumb /var/lib/cni/sriov /var/lib/cni/results
          find /var/lib/cni/networks -name 'last_reserved_ip.*' -delete 2>/dev/null || true
          find /var/lib/cni/networks -name lock -delete 2>/dev/null || true
          find /var/lib/cni -depth -type d -empty -delete 2>/dev/null || true
          ;;
        *) rmdir "$path" 2>/dev/null || true ;;
      esac
    done
}

remove_cgroups() {
  local d
  for d in $(find /sys/fs/cgroup -maxdepth 3 -type d \( -name k8s.io -o -name kubepods \) 2>/dev/null); do
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

cluster_down() {
  [ -d "$S" ] || { log "nothing to stop"; return 0; }
  delete_pods
  stop_pid kubelet 20
  kill_containers
  stop_pid containerd 15
  kill_shims
  stop_pid kube-scheduler 5
  stop_pid kube-controller-manager 5
  stop_pid kube-apiserver 15
  stop_pid etcd 10
  unmount_under /var/lib/kubelet "$RUN" "$S"
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^cni-' || true); do ip netns delete "$ns" 2>/dev/null || true; done
  ip link delete "$BRIDGE" 2>/dev/null || true
  rm -rf "/var/lib/cni/networks/$POD_NET" "$RUN"
  remove_created
  remove_cgroups
  rm -rf "$S"
  log "down"
}

cluster_status() {
  local json=0 name out=() state
  [ "${1:-}" = --json ] && json=1
  for name in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet; do
    if alive "$name"; then state=running; else state=stopped; fi
    out+=("$name=$state")
  done
  local ready=false
  [ -f "$S/pki/admin.kubeconfig" ] && kc get node "$NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True && ready=true
  local flavor
  flavor=$(cat "$S/kubelet-flavor" 2>/dev/null || echo none)
  if [ $json = 1 ]; then
    printf '{'
    for name in "${out[@]}"; do printf '"%s":"%s",' "${name%%=*}" "${name#*=}"; done
    printf '"nodeReady":%s,"kubelet":"%s","kubeconfig":"%s"}\n' "$ready" "$flavor" "$S/pki/admin.kubeconfig"
  else
    printf '%s\n' "${out[@]}" "node $NODE ready=$ready" "kubelet=$flavor" "KUBECONFIG=$S/pki/admin.kubeconfig"
  fi
  [ "$ready" = true ]
}

# hack/cluster stop|start|restart <component>: for tests (kubelet restart, API server outage).
cluster_ctl() {
  local verb=$1 what=${2:-}
  case "$what" in kubelet | kube-apiserver | containerd) ;;
    *) die "$verb: component is one of kubelet, kube-apiserver, containerd" ;;
  esac
  [ -f "$S/env.json" ] || die "not up"
  IMAGE=$(sed -n 's/.*"image": "\([^"]*\)".*/\1/p' "$S/env.json")
  KUBELET=$(cat "$S/kubelet-flavor")
  if [ "$verb" != start ]; then stop_pid "$what" 20; fi
  [ "$verb" = stop ] && return 0
  alive "$what" && return 0
  case "$what" in
    kubelet) start_kubelet ;;
    kube-apiserver) start_apiserver ;;
    containerd) start containerd containerd --config "$S/containerd/config.toml"; wait_for 30 containerd ctr -a "$SOCK" version ;;
  esac
}
