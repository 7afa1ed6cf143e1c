#!/usr/bin/env bash
# npm run test:cluster: build (cached), image (cached per HEAD), cluster up, the suite in
# test/cluster, cluster down. Extra arguments go to vitest (e.g. a file). KUBELET picks the kubelet
# (default stock); the vitest JSON report goes to $CLUSTER_REPORT (default dist/cluster-report.json).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
report=${CLUSTER_REPORT:-$root/dist/cluster-report.json}
mkdir -p "$(dirname "$report")"
t0=$SECONDS
hack/cluster.d/build.sh
t_build=$SECONDS
hack/build-image
t_image=$SECONDS
export KUBELET=${KUBELET:-stock}
hack/cluster down >/dev/null 2>&1 || true
trap 'hack/cluster down' EXIT
hack/cluster up
t_up=$SECONDS
rc=0
NO_COLOR=1 npx vitest run --config test/cluster/vitest.config.ts --reporter=default --reporter=json \
  --outputFile.json="$report" "$@" || rc=$?
echo "cluster stage: build $((t_build - t0))s, image $((t_image - t_build))s, up $((t_up - t_image))s, tests $((SECONDS - t_up))s (kubelet $KUBELET)"
exit $rc
