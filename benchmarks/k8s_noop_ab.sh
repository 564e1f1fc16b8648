#!/usr/bin/env bash
# A no-op `deploy.yml` (either target) from two trees, alternately, on one converged
# site: how stops 30 and 31 compared the code before and after a change (docs/benchmarks.md).
#   benchmarks/k8s_noop_ab.sh DIR_A VENV_A DIR_B VENV_B VARS_JSON [repeats]
# DIR_*: checkouts (git worktree add /tmp/a <rev>), VENV_*: their tooling venvs
# (tests/harness/venv prints one), VARS_JSON: the deploy's extra variables as a JSON file
# (stop 30: tests/kubernetes/k8s.py's E2E_VARS). Deploy once first, so both runs are no-ops.
# Needs the cluster (eval "$(tests/cluster/up)"). Prints each run's seconds and changed count.
set -euo pipefail
dir_a=$1 venv_a=$2 dir_b=$3 venv_b=$4 vars=$5 repeats=${6:-3}
for i in $(seq 1 "$repeats"); do
  for side in A B; do
    if [ "$side" = A ]; then dir=$dir_a venv=$venv_a; else dir=$dir_b venv=$venv_b; fi
    start=$(date +%s.%N)
    out=$(cd "$dir" && PATH="$venv/bin:$PATH" ansible-playbook deploy.yml -e "@$vars" 2>&1)
    end=$(date +%s.%N)
    printf '%s run %d: %.1f s %s\n' "$side" "$i" "$(echo "$end - $start" | bc)" \
      "$(echo "$out" | grep -o 'changed=[0-9]*' | tail -1)"
  done
done
