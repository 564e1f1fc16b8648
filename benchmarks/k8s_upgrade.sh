#!/usr/bin/env bash
# Zero-downtime figures for the Kubernetes day-2 operations on the local cluster, under
# constant traffic (the Kubernetes counterpart of benchmarks/vm_upgrade.sh).
#
# For each repeat: playbooks/upgrade.yml -e target=kubernetes from orange to maroon, then
# playbooks/rollback.yml back to orange; then SELFHEAL_REPEATS times one app pod deleted.
# During each operation tests/integration/loadgen.py sends RATE requests/s, open loop,
# each on a new connection, from this machine through the Service's node port, REQUESTS
# requests in all: WARMUP s of steady state, the operation, steady state again until the
# count is reached. The requests cycle through PATHS: by default the list page / and one
# post's detail page (the script makes the post "Benchmark detail page" when it is
# missing), through kube-proxy, Gunicorn, Django's routing and host check, the templates
# and PostgreSQL, with X-Release-Colour; each must answer 2xx with that header before
# anything is measured. PATHS=/healthz measures as docs/benchmarks.md's figures were
# measured.
#
# Reported per run: failed requests by reason (any non-2xx, socket error or answer over
# 5 s), colours (first, last, after the operation, switches), the operation's duration,
# the rate really sent and whether the load covered the operation, p99 latency during
# the operation against steady state. An operation that fails (a playbook's exit code, a
# deleted pod not replaced) stops the script with its log.
#
#   benchmarks/k8s_upgrade.sh                           # 3 repeats, 50,000 requests each, 250/s
#   REPEATS=1 REQUESTS=20000 SELFHEAL_REPEATS=0 benchmarks/k8s_upgrade.sh
#   PATHS=/healthz benchmarks/k8s_upgrade.sh                 # as docs/benchmarks.md's figures
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
playbook "$run_dir/build.log" playbooks/build.yml -e image_colour=maroon -e image_push=true \
  -e image_registry=127.0.0.1:5000/djangoops
node=$("$kubectl" get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')
port=$("$kubectl" -n "$ns" get service djangoops-blog -o jsonpath='{.spec.ports[0].nodePort}')
url="http://$node:$port"
if [[ -n "${PATHS:-}" ]]; then
  read -r -a paths <<<"$PATHS"
else
  echo "== a published post for the detail page"
  detail=$(detail_path_in "$("$kubectl" -n "$ns" exec deploy/djangoops-blog -- \
    python manage.py shell -c "$detail_post_code" 2>&1)")
  [[ -n "$detail" ]] || { echo "no post for the detail page (manage.py shell in a pod failed)" >&2; exit 1; }
  paths=(/ "$detail")
fi
# the lab inventory's app_allowed_hosts is ["*"] with target=kubernetes: the node's
# address as Host (curl's and the load generator's default) is served
check_pages "$url" "${paths[@]}"
path_args=()
for p in "${paths[@]}"; do path_args+=(--path "$p"); done
echo "== load on $url: ${paths[*]}, $rate/s, $requests requests per run; outputs in $run_dir"

# One app pod deleted; then until as many pods as the Deployment wants are ready again,
# the deleted one gone. Fails when the pod was not deleted or the Deployment did not heal.
selfheal() {
  local victim state r s t healed=""
  victim=$("$kubectl" -n "$ns" get pods -l app.kubernetes.io/component=web \
    --field-selector=status.phase=Running -o jsonpath='{.items[0].metadata.name}') || return 1
  [[ -n "$victim" ]] || { echo "selfheal: no running app pod to delete"; return 1; }
  "$kubectl" -n "$ns" delete pod "$victim" --wait=false || return 1
  echo "selfheal: $(date +%T.%N) deleted $victim"
  for _ in $(seq 240); do
    state=$("$kubectl" -n "$ns" get deploy djangoops-blog -o jsonpath='{.status.readyReplicas}/{.spec.replicas}/{.status.replicas}') || state=""
    IFS=/ read -r r s t <<<"$state"
    if [[ -n "$s" && "$r" == "$s" && "$t" == "$s" ]] && ! "$kubectl" -n "$ns" get pod "$victim" >/dev/null 2>&1; then
      healed=yes
      break
    fi
    sleep 0.5
  done
  if [[ -z "$healed" ]]; then
    echo "selfheal: not healed within 120 s of deleting $victim (ready/wanted/current: $state)"
    return 1
  fi
  echo "selfheal: $(date +%T.%N) $s pods ready, $victim gone"
}

for r in $(seq "$repeats"); do
  measure "upgrade-$r" ansible-playbook playbooks/upgrade.yml "${k8s[@]}" -e image_colour=maroon
  measure "rollback-$r" ansible-playbook playbooks/rollback.yml "${k8s[@]}"
done
for r in $(seq "$selfheal_repeats"); do
  measure "selfheal-$r" selfheal
done
echo "outputs: $run_dir"
