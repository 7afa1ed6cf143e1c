#!/usr/bin/env bash
# npm run test:cluster: build (cached) and image (cached per HEAD) at the same time, cluster up, the
# suite in test/cluster, cluster down. Extra arguments go to vitest (e.g. a file). KUBELET picks the
# kubelet (default stock; backport also builds that kubelet); the vitest JSON report goes to
# $CLUSTER_REPORT (default dist/cluster-report.json). The build's and the image's logs are kept apart
# in dist/cluster-stage/{build,image}.log and printed when each is done; the cluster's own logs are
# copied to dist/cluster-stage/cluster-logs/ before down.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
report=${CLUSTER_REPORT:-$root/dist/cluster-report.json}
logs=$root/dist/cluster-stage
mkdir -p "$(dirname "$report")" "$logs"
export KUBELET=${KUBELET:-stock}
t0=$(date +%s)

# The Kubernetes build is CPU bound and the longer of the two; the image (mmdebstrap: downloads and
# dpkg, then tsc/SEA and umoci) runs beside it at a lower priority, in the gaps the Go build leaves.
# Each runs in its own session, so a failure of one (or an interrupt) stops the other's whole tree.
pids=()
stop_all() {
  local p
  for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
}
trap stop_all EXIT
setsid hack/cluster.d/build.sh >"$logs/build.log" 2>&1 &
pids+=($!)
setsid nice -n 10 hack/build-image >"$logs/image.log" 2>&1 &
pids+=($!)
declare -A name_of=([${pids[0]}]=build [${pids[1]}]=image) took
left=("${pids[@]}")
rc=0
# whichever ends first is reported first (its log, its time)
while [ ${#left[@]} -gt 0 ]; do
  set +e
  wait -n -p done_pid "${left[@]}"
  st=$?
  set -e
  name=${name_of[$done_pid]}
  rest=()
  for p in "${left[@]}"; do [ "$p" = "$done_pid" ] || rest+=("$p"); done
  left=("${rest[@]}")
  took[$name]=$(($(date +%s) - t0))
  sed "s/^/[$name] /" "$logs/$name.log"
  if [ $st != 0 ]; then
    echo "cluster stage: $name failed (exit $st) after ${took[$name]}s; log: $logs/$name.log" >&2
    rc=$st
    break
  fi
done
[ $rc = 0 ] || exit $rc
t_built=$(date +%s)

# The cluster's logs (components, pods) are kept in dist/cluster-stage/cluster-logs after down.
cluster_logs=${NETPLUMB_CLUSTER_DIR:-/var/lib/netplumb-cluster}/logs
trap 'rm -rf "$logs/cluster-logs"; cp -a "$cluster_logs" "$logs/cluster-logs" 2>/dev/null || true; hack/cluster down' EXIT
hack/cluster down >/dev/null 2>&1 || true
hack/cluster up
t_up=$(date +%s)
rc=0
NO_COLOR=1 npx vitest run --config test/cluster/vitest.config.ts --reporter=default --reporter=json \
  --outputFile.json="$report" "$@" || rc=$?
echo "cluster stage: build ${took[build]}s and image ${took[image]}s side by side, up $((t_up - t_built))s, tests $(($(date +%s) - t_up))s, total $(($(date +%s) - t0))s (kubelet $KUBELET)"
exit $rc
