#!/usr/bin/env bash
# A cold deploy: remove the lab, make it again (`lab/lab_up.yml`, timed: the containers),
# then time `ansible-playbook deploy.yml` on it from nothing (packages, release, database,
# app, NGINX). The app image and its release archive are reused when already built
# (their own benchmark is the image's).
#   benchmarks/vm_cold.sh
# shellcheck source=benchmarks/vm_lib.sh disable=SC2119
. "$(dirname "$0")/vm_lib.sh"

ansible-playbook lab/lab_down.yml >/dev/null
t0=$(now); lab_up; t1=$(now); log=$(deploy); t2=$(now)
printf 'lab/lab_up.yml (fresh lab):     %6.1f s\n' "$(echo "$t1 - $t0" | bc)"
printf 'cold deploy.yml on a fresh lab: %6.1f s (log %s)\n' "$(echo "$t2 - $t1" | bc)" "$log"
printf 'both:                           %6.1f s\n' "$(echo "$t2 - $t0" | bc)"
