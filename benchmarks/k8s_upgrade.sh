#!/usr/bin/env bash
# Zero-downtime figures for the Kubernetes day-2 operations on the local cluster, under
# constant traffic (the Kubernetes counterpart of benchmarks/vm_upgrade.sh).
#
# For each repeat: playbooks/upgrade.yml -e target=kubernetes from orange to maroon, then
# playbooks/rollback.yml back to orange; then SELFHEAL_REPEATS times one app pod deleted.
# During each operation tests/integration/loadgen.py sends RATE requests/s, open loop,
# each on a new connection, from this machine through the Service's node port, REQUESTS
# requests in all: WARMUP s of steady state, the operation, steady state again until the
# count is reached. Endpoint /healthz (through kube-proxy and Gunicorn, with
# X-Release-Colour), as on VMs.
#
# Reported per run: failed requests (any non-2xx or socket error), colours (first, last,
# after the operation, switches), the operation's duration, p99 latency during the
# operation against steady state.
#
#   benchmarks/k8s_upgrade.sh                           # 3 repeats, 50,000 requests each, 250/s
#   REPEATS=1 REQUESTS=20000 SELFHEAL_REPEATS=0 benchmarks/k8s_upgrade.sh
#   SERVER_CPU_SHARES=1024 CONTROLLER_NICE=0 benchmarks/k8s_upgrade.sh   # every process at the default CPU weight
#
# Needs the cluster (eval "$(tests/cluster/up)"); deploys orange into NAMESPACE
# (default djangoops-bench) first and builds and pushes maroon (not measured). Outputs
# under /var/cache/djangoops/benchmarks/k8s_upgrade-<time>/.
# shellcheck source=benchmarks/vm_lib.sh disable=SC2119
. "$(dirname "$0")/vm_lib.sh"
servers_weigh_as_machines djangoops-k8s
: "${KUBECONFIG:?set KUBECONFIG (eval \"\$(tests/cluster/up)\")}"
kubectl=${KUBECTL:-/var/cache/djangoops/k3s/kube-v1.34.4/bin/kubectl}
ns=${NAMESPACE:-djangoops-bench}
repeats=${REPEATS:-3}
selfheal_repeats=${SELFHEAL_REPEATS:-3}
requests=${REQUESTS:-50000}
rate=${RATE:-250}
warmup=${WARMUP:-20}
run_dir="$out_dir/k8s_upgrade-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$run_dir"
k8s=(-e target=kubernetes -e kubernetes_namespace="$ns")

echo "== deploy orange and build maroon (not measured)"
deploy "${k8s[@]}" -e image_colour=orange >/dev/null
ansible-playbook playbooks/build.yml -e image_colour=maroon -e image_push=true \
  -e image_registry=127.0.0.1:5000/djangoops >"$run_dir/build.log" 2>&1
node=$("$kubectl" get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')
port=$("$kubectl" -n "$ns" get service djangoops-blog -o jsonpath='{.spec.ports[0].nodePort}')
url="http://$node:$port"
path_args=(--path /healthz)
echo "== load on $url/healthz, $rate/s, $requests requests per run; outputs in $run_dir"

selfheal() {
  local victim
  victim=$("$kubectl" -n "$ns" get pods -l app.kubernetes.io/component=web -o jsonpath='{.items[0].metadata.name}')
  "$kubectl" -n "$ns" delete pod "$victim" --wait=false
  # until as many pods as before are ready again, the deleted one not among them
  for _ in $(seq 240); do
    ready=$("$kubectl" -n "$ns" get deploy djangoops-blog -o jsonpath='{.status.readyReplicas}/{.spec.replicas}/{.status.replicas}')
    IFS=/ read -r r s t <<<"$ready"
    if [[ "$r" == "$s" && "$t" == "$s" ]] && ! "$kubectl" -n "$ns" get pod "$victim" >/dev/null 2>&1; then
      break
    fi
    sleep 0.5
  done
}

for r in $(seq "$repeats"); do
  measure "upgrade-$r" ansible-playbook playbooks/upgrade.yml "${k8s[@]}" -e image_colour=maroon
  measure "rollback-$r" ansible-playbook playbooks/rollback.yml "${k8s[@]}"
done
for r in $(seq "$selfheal_repeats"); do
  measure "selfheal-$r" selfheal
done
echo "outputs: $run_dir"
