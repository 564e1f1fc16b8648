# shellcheck shell=bash disable=SC2120
# Shared by the vm_* benchmarks: run from the repo root with the tooling venv active.
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
mkdir -p "$out_dir"

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
