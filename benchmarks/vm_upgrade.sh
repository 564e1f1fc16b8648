#!/usr/bin/env bash
# Zero-downtime figures for the VM day-2 operations on the lab, under constant traffic.
#
# For each repeat: a rolling upgrade orange -> maroon (playbooks/upgrade.yml), then a
# rollback maroon -> orange (playbooks/rollback.yml); then SELFHEAL_REPEATS times (default 3) the
# self-healing case (Gunicorn killed with SIGKILL on app1, later on app2, then the app1
# host stopped for 15 s and started again). During each operation a load generator
# (tests/integration/loadgen.py) sends RATE requests/s, open loop, each on a new
# connection, from 127.0.0.1 through the lab's NGINX (http://127.0.0.1:8080), REQUESTS
# requests in all: WARMUP seconds of steady state first, then the operation, then steady
# state again until the count is reached.
#
# The endpoint is /healthz: it goes through NGINX and Gunicorn and carries
# X-Release-Colour, but not the database, because the lab's list page tops out at about
# 154 requests/s (docs/benchmarks.md), below the 200 requests/s this measurement needs on
# 2 shared cores. PATHS="/healthz /" mixes in the list page.
#
# Reported per run: failed requests (any non-2xx or socket error), the colour sequence
# (first and last colour, how many answers of each), the operation's duration (the
# ansible-playbook run), p99 latency during the operation against steady state (outside
# it). Latency counts from the scheduled send time (no coordinated omission).
#
#   benchmarks/vm_upgrade.sh                          # 3 repeats, 50,000 requests each, 250/s
#   REPEATS=1 REQUESTS=20000 SELFHEAL_REPEATS=0 benchmarks/vm_upgrade.sh
#   SERVER_CPU_SHARES=1024 CONTROLLER_NICE=0 benchmarks/vm_upgrade.sh   # every process at the default CPU weight
#
# Needs the lab deployed (deploy.yml; this script deploys when the site does not answer)
# and builds the maroon release first (not measured). Outputs under
# /var/cache/djangoops/benchmarks/vm_upgrade-<time>/.
# shellcheck source=benchmarks/vm_lib.sh disable=SC2119
. "$(dirname "$0")/vm_lib.sh"
servers_weigh_as_machines docker
repeats=${REPEATS:-3}
selfheal_repeats=${SELFHEAL_REPEATS:-3}
requests=${REQUESTS:-50000}
rate=${RATE:-250}
warmup=${WARMUP:-20}
read -r -a paths <<<"${PATHS:-/healthz}"
url=http://127.0.0.1:8080
run_dir="$out_dir/vm_upgrade-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$run_dir"
path_args=()
for p in "${paths[@]}"; do path_args+=(--path "$p"); done
# The image role's build context and archives for this run alone: the default folders
# are shared by every checkout on the machine.
dirs="{\"image_build_dir\": \"$run_dir/build\", \"image_release_dir\": \"$run_dir/releases\"}"

if ! curl -fsS -o /dev/null "$url/healthz"; then
  echo "== deploy (the site does not answer)"
  deploy -e "$dirs" >/dev/null
fi
echo "== build the maroon release (not measured)"
ansible-playbook playbooks/build.yml -e image_colour=maroon -e image_push=false -e "$dirs" >"$run_dir/build.log" 2>&1

selfheal() {
  sleep 5
  docker exec djangoops-lab-app1 systemctl kill --signal=KILL djangoops-blog
  sleep 30
  docker exec djangoops-lab-app2 systemctl kill --signal=KILL djangoops-blog
  sleep 30
  docker stop -t 1 djangoops-lab-app1 >/dev/null
  sleep 15
  docker start djangoops-lab-app1 >/dev/null
  for _ in $(seq 120); do
    curl -fsS -o /dev/null "http://127.0.0.1:8080/healthz" && docker exec djangoops-lab-app1 \
      python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)" 2>/dev/null && break
    sleep 1
  done
}

for r in $(seq "$repeats"); do
  measure "upgrade-$r" ansible-playbook playbooks/upgrade.yml -e image_colour=maroon -e "$dirs"
  measure "rollback-$r" ansible-playbook playbooks/rollback.yml
done
for r in $(seq "$selfheal_repeats"); do
  measure "selfheal-$r" selfheal
done
echo "outputs: $run_dir"
