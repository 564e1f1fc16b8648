#!/usr/bin/env bash
# Kubernetes deploy time: `deploy.yml -e target=kubernetes` from start to all pods ready
# (the play waits for the rollout), cold (a fresh namespace, image already built) and as
# a no-op re-run. Needs the cluster (eval "$(tests/cluster/up)") and the tooling venv.
#   benchmarks/k8s_deploy.sh [namespace]     # default djangoops-bench
# shellcheck source=benchmarks/vm_lib.sh
. "$(dirname "$0")/vm_lib.sh"
ns=${1:-djangoops-bench}
kubectl=${KUBECTL:-/var/cache/djangoops/k3s/kube-v1.34.4/bin/kubectl}
: "${KUBECONFIG:?set KUBECONFIG (eval \"\$(tests/cluster/up)\")}"

"$kubectl" delete namespace "$ns" --ignore-not-found --wait=true --timeout=180s >/dev/null
echo "== build and push the image first, so the cold figure is the deploy's own"
ansible-playbook playbooks/build.yml -e image_colour=orange -e image_push=true \
  -e image_registry=127.0.0.1:5000/djangoops >/dev/null

t0=$(now); log=$(deploy -e target=kubernetes -e kubernetes_namespace="$ns"); t1=$(now)
cold=$(echo "$t1 - $t0" | bc)
ready=$("$kubectl" -n "$ns" get deploy djangoops-blog -o jsonpath='{.status.readyReplicas}')
t0=$(now); log2=$(deploy -e target=kubernetes -e kubernetes_namespace="$ns"); t1=$(now)
noop=$(echo "$t1 - $t0" | bc)
printf 'cold deploy (fresh namespace, image built): %6.1f s, changed=%s, ready pods %s\n' \
  "$cold" "$(changed_total "$log")" "$ready"
printf 'no-op re-run:                               %6.1f s, changed=%s\n' "$noop" "$(changed_total "$log2")"
echo "(left running: NAMESPACE=$ns benchmarks/k8s_upgrade.sh reuses it; remove it with kubectl delete namespace $ns)"
