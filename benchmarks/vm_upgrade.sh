#!/usr/bin/env bash
# Zero-downtime figures for the VM day-2 operations on the lab, under constant traffic.
#
# For each repeat: a rolling upgrade orange -> maroon (playbooks/upgrade.yml), then a
# rollback maroon -> orange (playbooks/rollback.yml); then SELFHEAL_REPEATS times (default 3) the
# self-healing case (Gunicorn killed with SIGKILL on app1, later on app2, then the app1
# host stopped for 15 s and started again). During each operation a load generator
# (tests/integration/loadgen.py) sends RATE requests/s, open loop, each on a new
# connection, from 127.0.0.1 through the lab's NGINX over HTTPS (https://127.0.0.1:8443,
# a full TLS handshake per request, since 2026-12-05; plain HTTP before), REQUESTS
# requests in all: WARMUP seconds of steady state first, then the operation, then steady
# state again until the count is reached.
#
# The requests cycle through PATHS: by default the list page / and one post's detail page
# (the script makes the post "Benchmark detail page" when it is missing), which go through
# NGINX, Gunicorn, Django's routing and host check, the templates and PostgreSQL; both
# carry X-Release-Colour. Before measuring, each path must answer 2xx with that header.
# PATHS=/healthz measures as the figures in docs/benchmarks.md were measured (NGINX and
# Gunicorn only). The list page with 20 posts topped out at about 154 requests/s on a
# loaded lab (docs/benchmarks.md): if the lab cannot serve RATE real pages, requests queue
# and fail as "slow" (over 5 s); lower RATE then.
#
# Reported per run: failed requests by reason (any non-2xx, socket error or answer over
# 5 s), the colour sequence (first and last colour, how many answers of each), the
# operation's duration (the ansible-playbook run), the rate really sent and whether the
# load covered the whole operation, p99 latency during the operation against steady
# state (outside it). Latency counts from the scheduled send time (no coordinated
# omission). An operation that fails (a playbook's exit code, a self-healing step that
# did not happen) stops the script with its log.
#
#   benchmarks/vm_upgrade.sh                          # 3 repeats, 50,000 requests each, 250/s
#   REPEATS=1 REQUESTS=20000 SELFHEAL_REPEATS=0 benchmarks/vm_upgrade.sh
#   PATHS=/healthz benchmarks/vm_upgrade.sh                 # as docs/benchmarks.md's figures
#   SERVER_CPU_SHARES=1024 CONTROLLER_NICE=0 benchmarks/vm_upgrade.sh   # every process at the default CPU weight
#
# Needs the lab deployed (lab/lab_up.yml, deploy.yml; this script runs both when the site does not answer)
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
url=https://127.0.0.1:8443
run_dir="$out_dir/vm_upgrade-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$run_dir"
# The image role's build context and archives for this run alone: the default folders
# are shared by every checkout on the machine.
dirs="{\"image_build_dir\": \"$run_dir/build\", \"image_release_dir\": \"$run_dir/releases\"}"

if ! curl -fsS -o /dev/null "$url/healthz"; then
  echo "== the lab and deploy (the site does not answer)"
  lab_up
  deploy -e "$dirs" >/dev/null
fi
echo "== build the maroon release (not measured)"
playbook "$run_dir/build.log" playbooks/build.yml -e image_colour=maroon -e image_push=false -e "$dirs"

if [[ -n "${PATHS:-}" ]]; then
  read -r -a paths <<<"$PATHS"
else
  echo "== a published post for the detail page"
  detail=$(detail_path_in "$(ansible app1 -m ansible.builtin.command \
    -a "djangoops-blog-manage shell -c \"$detail_post_code\"" 2>&1)")
  [[ -n "$detail" ]] || { echo "no post for the detail page (djangoops-blog-manage shell on app1 failed)" >&2; exit 1; }
  paths=(/ "$detail")
fi
check_pages "$url" "${paths[@]}"
path_args=()
for p in "${paths[@]}"; do path_args+=(--path "$p"); done
echo "== load on $url: ${paths[*]}, $rate/s, $requests requests per run; outputs in $run_dir"

# gunicorn_pid HOST: the main PID of the app's unit on a lab host (0 when not running).
gunicorn_pid() { docker exec "djangoops-lab-$1" systemctl show --property=MainPID --value djangoops-blog; }

# kill_gunicorn HOST: SIGKILL to every process of the app's unit, then wait until the old
# main process is gone and systemd runs a new one; fails when either did not happen.
kill_gunicorn() {
  local host=$1 before after=""
  before=$(gunicorn_pid "$host") || return 1
  if ! [[ "$before" =~ ^[1-9][0-9]*$ ]]; then
    echo "selfheal: no Gunicorn runs on $host (MainPID '$before'): nothing to kill"
    return 1
  fi
  docker exec "djangoops-lab-$host" systemctl kill --signal=KILL djangoops-blog || return 1
  echo "selfheal: $(date +%T.%N) SIGKILL sent to Gunicorn on $host (pid $before)"
  for _ in $(seq 60); do
    after=$(gunicorn_pid "$host") || after=""
    if [[ "$after" =~ ^[1-9][0-9]*$ && "$after" != "$before" ]] \
      && ! docker exec "djangoops-lab-$host" sh -c 'kill -0 "$1"' _ "$before" 2>/dev/null; then
      echo "selfheal: $(date +%T.%N) pid $before is gone, systemd runs Gunicorn again on $host (pid $after)"
      return 0
    fi
    sleep 0.5
  done
  echo "selfheal: Gunicorn on $host (pid $before) was not replaced within 30 s (MainPID now '$after')"
  return 1
}

# The self-healing run, on the clock of its start: Gunicorn killed on app1 at +5 s and on
# app2 at +35 s, the app1 host stopped at +65 s and started at +80 s, then until app1's
# /readyz answers. Each step is checked; any that did not happen fails the run.
selfheal() {
  local t0 ready=""
  t0=$(now)
  sleep_until "$t0" 5
  kill_gunicorn app1 || return 1
  sleep_until "$t0" 35
  kill_gunicorn app2 || return 1
  sleep_until "$t0" 65
  docker stop -t 1 djangoops-lab-app1 >/dev/null || return 1
  if [[ "$(docker inspect -f '{{.State.Running}}' djangoops-lab-app1)" != false ]]; then
    echo "selfheal: djangoops-lab-app1 still runs after docker stop"
    return 1
  fi
  echo "selfheal: $(date +%T.%N) app1 stopped"
  sleep_until "$t0" 80
  docker start djangoops-lab-app1 >/dev/null || return 1
  echo "selfheal: $(date +%T.%N) app1 started"
  for _ in $(seq 120); do
    if curl -fsS -o /dev/null "$url/healthz" && docker exec djangoops-lab-app1 \
      python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)" 2>/dev/null; then
      ready=yes
      break
    fi
    sleep 1
  done
  if [[ -z "$ready" ]]; then
    echo "selfheal: app1's /readyz did not answer within 120 s of its start"
    return 1
  fi
  echo "selfheal: $(date +%T.%N) app1 ready"
}

for r in $(seq "$repeats"); do
  measure "upgrade-$r" ansible-playbook playbooks/upgrade.yml -e image_colour=maroon -e "$dirs"
  measure "rollback-$r" ansible-playbook playbooks/rollback.yml
done
for r in $(seq "$selfheal_repeats"); do
  measure "selfheal-$r" selfheal
done
echo "outputs: $run_dir"
