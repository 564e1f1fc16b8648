#!/usr/bin/env bash
# A cold deploy: remove the lab, then time `ansible-playbook deploy.yml` making it from
# nothing (containers, packages, release, database, app, NGINX). The app image and its
# release archive are reused when already built (their own benchmark is the image's).
#   benchmarks/vm_cold.sh
# shellcheck source=benchmarks/vm_lib.sh disable=SC2119
. "$(dirname "$0")/vm_lib.sh"

ansible-playbook playbooks/lab_down.yml >/dev/null
t0=$(now); log=$(deploy); t1=$(now)
printf 'cold deploy.yml on a fresh lab: %6.1f s (log %s)\n' "$(echo "$t1 - $t0" | bc)" "$log"
