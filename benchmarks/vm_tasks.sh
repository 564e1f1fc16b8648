#!/usr/bin/env bash
# Background work on the VMs: tasks per second through Redis, and the task latency (from the
# web request that queues it to its end) steady and during an upgrade, on the gallery's lab
# (benchmarks/vm_tasks.py says how). Makes the lab and deploys the gallery with the team's
# own site playbook first (as tests/integration/test_vm_gallery.py does), leaves it running.
#   benchmarks/vm_tasks.sh
#   QUEUED=1000 RATE=8 SECONDS_STEADY=60 benchmarks/vm_tasks.sh
# shellcheck source=benchmarks/vm_lib.sh
. "$(dirname "$0")/vm_lib.sh"
export DJANGOOPS_BASE_IMAGE_TRIXIE=${DJANGOOPS_BASE_IMAGE_TRIXIE:-djangoops-test/python:3.13-trixie}
inventory=examples/gallery-ops/vms
if [[ -f "${DJANGOOPS_CACHE:-/var/cache/djangoops}/s3/credentials.env" ]]; then
  set -a
  # shellcheck disable=SC1091
  . "${DJANGOOPS_CACHE:-/var/cache/djangoops}/s3/credentials.env"
  set +a
fi

echo "== the gallery's lab, the S3 server forwarded to it, and the site playbook"
ansible-playbook -i "$inventory" lab/lab_up.yml >/dev/null
tests/harness/s3-forward 10.213.89.1
ansible-playbook -i "$inventory" examples/gallery-ops/site.yml >/dev/null

echo "== tasks: throughput, latency steady and through an upgrade"
python benchmarks/vm_tasks.py
