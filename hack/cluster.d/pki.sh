#!/usr/bin/env bash
# Test-cluster PKI and credentials into $1 (created once; idempotent): a CA, the API server's serving
# cert (SANs 127.0.0.1, localhost, the node name, kubernetes.default.svc…), the kubelet's serving cert,
# a client cert the API server uses towards the kubelet, service-account keys, a token file and
# kubeconfigs for admin, kubelet, controller-manager and scheduler. Test credentials only.
set -euo pipefail
d=$1 node=$2
[ -f "$d/done" ] && exit 0
mkdir -p "$d" && cd "$d"
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=netplumb-test-ca"
cert() { # name CN O sans
  local name=$1 cn=$2 o=$3 sans=$4 ext
  ext=$(mktemp)
  { echo "basicConstraints=CA:FALSE"; echo "keyUsage=digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"; [ -n "$sans" ] && echo "subjectAltName=$sans"; } >"$ext"
  ossl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "/CN=$cn${o:+/O=$o}"
  ossl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$name.crt" -days 3650 -extfile "$ext"
  rm -f "$name.csr" "$ext"
}
cert apiserver kube-apiserver "" "DNS:localhost,DNS:$node,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1"
cert kubelet "$node" "" "DNS:$node,DNS:localhost,IP:127.0.0.1"
cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters ""
ossl genrsa -out sa.key 2048
ossl rsa -in sa.key -pubout -out sa.pub
tok() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
admin=$(tok) kubelet=$(tok) kcm=$(tok) sched=$(tok)
cat >tokens.csv <<CSV
$admin,admin,admin,system:masters
$kubelet,system:node:$node,system:node:$node,system:nodes
$kcm,system:kube-controller-manager,system:kube-controller-manager
$sched,system:kube-scheduler,system:kube-scheduler
CSV
kubeconfig() { # file user token
  cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: netplumb-test
  cluster: {server: "https://127.0.0.1:6443", certificate-authority: "$d/ca.crt"}
users:
- name: $2
  user: {token: "$3"}
contexts:
- name: netplumb-test
  context: {cluster: netplumb-test, user: $2}
current-context: netplumb-test
KC
}
kubeconfig admin.kubeconfig admin "$admin"
kubeconfig kubelet.kubeconfig "system:node:$node" "$kubelet"
kubeconfig controller-manager.kubeconfig system:kube-controller-manager "$kcm"
kubeconfig scheduler.kubeconfig system:kube-scheduler "$sched"
chmod 600 ./*.key ./*.kubeconfig tokens.csv
touch done
