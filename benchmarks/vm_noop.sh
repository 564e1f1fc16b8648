#!/usr/bin/env bash
# A no-op re-run of deploy.yml on the deployed lab against `ansible all -m ping` on the
# same hosts, in the same run (goal: at most 6 x the ping time).
#   benchmarks/vm_noop.sh
# shellcheck source=benchmarks/vm_lib.sh disable=SC2119
. "$(dirname "$0")/vm_lib.sh"

echo "== make sure the lab is up and deployed"
lab_up
deploy >/dev/null

ansible all -m ansible.builtin.ping >/dev/null  # open the SSH control connections
t0=$(now); ansible all -m ansible.builtin.ping >/dev/null; t1=$(now)
ping=$(echo "$t1 - $t0" | bc)

t0=$(now); log=$(deploy); t1=$(now)
noop=$(echo "$t1 - $t0" | bc)
changed=$(changed_total "$log")

# The same without the image role (the release is already built): the deploy's own share.
t0=$(now); log2=$(deploy -e deploy_build_release=false); t1=$(now)
nobuild=$(echo "$t1 - $t0" | bc)

printf 'ansible all -m ping:        %6.2f s\n' "$ping"
printf 'deploy.yml -e deploy_build_release=false no-op: %6.2f s (changed=%s, %.2f x ping)\n' \
  "$nobuild" "$(changed_total "$log2")" "$(echo "$nobuild / $ping" | bc -l)"
printf 'deploy.yml no-op re-run:    %6.2f s (changed=%s)\n' "$noop" "$changed"
printf 'ratio:                      %6.2f x\n' "$(echo "$noop / $ping" | bc -l)"
