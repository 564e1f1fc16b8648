# shellcheck shell=bash disable=SC2120
# Shared by the vm_* benchmarks and k8s_upgrade.sh; activates the tooling venv when none is active.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
export DJANGOOPS_BASE_IMAGE=${DJANGOOPS_BASE_IMAGE:-djangoops-test/python:3.11-bookworm}
if [[ -z "${VIRTUAL_ENV:-}" ]]; then
  # the tooling venv tests/run uses (keyed by the pinned requirements; made if missing)
  venv=$(tests/harness/venv | tail -n 1)
  # shellcheck disable=SC1091
  . "$venv/bin/activate"
fi
out_dir=${DJANGOOPS_CACHE:-/var/cache/djangoops}/benchmarks
# The lab serves https://127.0.0.1:8443 with a certificate from its own CA (lab/lab_up.yml):
# curl and the load generator trust it for these benchmarks only.
lab_ca=$HOME/.cache/djangoops/lab/tls/ca.crt
export CURL_CA_BUNDLE=$lab_ca

# servers_weigh_as_machines CGROUP: for the *_upgrade.sh benchmarks. On this machine the
# servers (the lab's containers under the cgroup "docker", the local cluster's pods under
# "djangoops-k8s") share 2 cores with the Ansible controller and the load generator. In
# cgroup v1 a child cgroup has the weight of one process (cpu.shares 1024), so the whole
# lab or the whole cluster weighs as much as one of the load generator's threads or one
# Ansible process, and loses the CPU to them just when it is busiest (a Gunicorn or a pod
# starting): measured on 2026-11-27, an upgrade on Kubernetes went from a p99 of 235 ms
# to 43 ms under the same load with the cluster's weight raised (and Ansible at nice
# 10; docs/benchmarks.md). Servers with machines of
# their own do not compete with their clients, so for the measurement the servers'
# cgroup gets SERVER_CPU_SHARES (default 8192); the old weight comes back on exit.
# SERVER_CPU_SHARES=1024 measures with the default. (cgroup v1's cpu controller, as on
# this machine; where it is missing nothing changes.)
servers_weigh_as_machines() {
  local file="/sys/fs/cgroup/cpu/$1/cpu.shares"
  [[ -w "$file" ]] || { echo "== no cgroup v1 $file: the servers keep their CPU weight"; return 0; }
  _servers_shares_file=$file
  _servers_shares_before=$(cat "$file")
  trap 'echo "$_servers_shares_before" >"$_servers_shares_file"' EXIT
  echo "${SERVER_CPU_SHARES:-8192}" >"$file"
  echo "== CPU weight of the cgroup $1: ${SERVER_CPU_SHARES:-8192} (was $_servers_shares_before) while this runs"
}
mkdir -p "$out_dir"

# lab_up: the lab of the default inventory (lab/lab_up.yml: makes what is missing, a few
# seconds when it runs), which deploy.yml deploys to; fails loudly.
lab_up() {
  local log
  log="$out_dir/lab_up-$(date +%s%N).log"
  if ! ansible-playbook lab/lab_up.yml >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "lab/lab_up.yml failed, log: $log" >&2
    return 1
  fi
}

# deploy [ARGS...]: ansible-playbook deploy.yml, log kept, fails loudly.
deploy() {
  local log
  log="$out_dir/deploy-$(date +%s%N).log"
  if ! ansible-playbook deploy.yml "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "deploy.yml failed, log: $log" >&2
    return 1
  fi
  echo "$log"
}

# changed_total LOG: sum of changed= in the PLAY RECAP.
changed_total() {
  sed -n '/PLAY RECAP/,$p' "$1" | grep -o 'changed=[0-9]*' | cut -d= -f2 | paste -sd+ | bc
}

now() { date +%s.%N; }

# sleep_until START OFFSET: sleep until START + OFFSET seconds (epoch, as from now).
sleep_until() {
  local left
  left=$(echo "$1 + $2 - $(now)" | bc)
  [[ "$left" == -* ]] || sleep "$left"
}

# playbook LOG ARGS...: ansible-playbook ARGS with its output in LOG; fails loudly.
playbook() {
  local log=$1
  shift
  if ! ansible-playbook "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "ansible-playbook $* failed, log: $log" >&2
    return 1
  fi
}

# The Django shell code (for the app's manage.py) that makes sure a published post
# exists for the *_upgrade.sh benchmarks' detail page and prints detail_path=/post/<pk>/.
# shellcheck disable=SC2034  # used by vm_upgrade.sh and k8s_upgrade.sh
detail_post_code="
from django.contrib.auth import get_user_model
from django.utils import timezone
from blog.models import Post
post = Post.objects.filter(title='Benchmark detail page', published_date__isnull=False).first()
if post is None:
    post = Post.objects.create(author=get_user_model().objects.order_by('pk').first(),
                               title='Benchmark detail page', text='Lorem ipsum ' * 50,
                               published_date=timezone.now())
print('detail_path=' + post.get_absolute_url())
"

# detail_path_in OUTPUT: the path detail_post_code printed (empty if none).
detail_path_in() { grep -o 'detail_path=/[^[:space:]]*' <<<"$1" | tail -n 1 | cut -d= -f2 || true; }

# check_pages URL PATH...: each URL+PATH answers 2xx with X-Release-Colour, else fails
# loudly (a benchmark on pages that do not answer measures nothing).
check_pages() {
  local base=$1 p headers
  shift
  for p in "$@"; do
    if ! headers=$(curl -fsS -o /dev/null -D - --max-time 10 "$base$p"); then
      echo "== $base$p does not answer 2xx: not measuring" >&2
      return 1
    fi
    if ! grep -qi '^x-release-colour:' <<<"$headers"; then
      echo "== $base$p answers without X-Release-Colour: not measuring" >&2
      return 1
    fi
  done
}

# measure NAME ACTION...: for the *_upgrade.sh benchmarks. The load generator runs in the
# background (RATE requests/s, REQUESTS requests, PATH_ARGS, against $url, open loop),
# ACTION starts WARMUP s after it, then the load is waited for and reported
# (benchmarks/load_report.py). Reads url, rate, requests, warmup, run_dir, path_args.
#
# ACTION (the Ansible controller) runs at the scheduling priority CONTROLLER_NICE
# (default 10): on this machine the controller shares 2 cores with the load balancer,
# the app servers and the load generator, where a real controller (a laptop, a CI runner,
# AWX) has its own; at nice 0 its Python processes take CPU from the app in the middle of
# the measurement. CONTROLLER_NICE=0 measures it at the same priority as everything else.
# A shell function as ACTION (the self-healing runs) runs at the normal priority; it
# must return non-zero itself when a step fails (set -e does not apply inside it here).
#
# ACTION's exit code is checked after the report: a failed operation stops the benchmark
# with its log's tail (its figures would not measure the operation).
# shellcheck disable=SC2154  # the caller sets url, rate, requests, warmup, run_dir, path_args
measure() {
  local name=$1
  shift
  local csv="$run_dir/$name.csv" times="$run_dir/$name.times" log="$run_dir/$name.log"
  python tests/integration/loadgen.py --url "$url" --cafile "$lab_ca" --rate "$rate" --requests "$requests" \
    --max-seconds $((requests / ${rate%.*} + 120)) "${path_args[@]}" --csv "$csv" >"$run_dir/$name.load" 2>&1 &
  local load_pid=$!
  local t0="" start end rc=0
  for _ in $(seq 300); do  # until the load generator says when it started (slow on a busy machine)
    t0=$(awk '/loadgen: started/ {print $3}' "$run_dir/$name.load")
    [[ -n "$t0" ]] && break
    sleep 0.1
  done
  [[ -n "$t0" ]] || { echo "measure: the load generator did not start, see $run_dir/$name.load" >&2; return 1; }
  sleep "$warmup"
  start=$(now)
  if declare -F "$1" >/dev/null; then
    "$@" >"$log" 2>&1 || rc=$?
  else
    # profile_tasks stamps each task with the wall clock, to line up with the load's CSV
    ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks nice -n "${CONTROLLER_NICE:-10}" "$@" >"$log" 2>&1 || rc=$?
  fi
  end=$(now)
  echo "$t0 $start $end $rc" >"$times"
  wait "$load_pid" || true
  python benchmarks/load_report.py "$csv" "$times" "$name" | tee -a "$run_dir/summary.txt"
  # The run as a chart (latency percentiles, colours, the plays marked): $run_dir/$name.png
  python benchmarks/load_chart.py "$csv" "$times" "$log" "$name" "$run_dir/$name.png" \
    || echo "measure: no chart for $name (benchmarks/load_chart.py failed)" >&2
  if [[ "$rc" != 0 ]]; then
    tail -n 30 "$log" >&2
    echo "measure: $name FAILED: '$*' exited with $rc (log: $log); stopping, its figures measure no completed operation" \
      | tee -a "$run_dir/summary.txt" >&2
    return 1
  fi
}
