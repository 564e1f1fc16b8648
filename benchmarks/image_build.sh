#!/usr/bin/env bash
# Image figures for docs/benchmarks.md: image size and the app's own layers over the
# base, a cold build (fresh wheel cache, no layer cache) and a rebuild after a one-line
# code change, both timed end to end through the image role.
#   benchmarks/image_build.sh            (after tests/harness/all; uses the tooling venv)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
venv=$(tests/harness/venv | tail -n 1)
# shellcheck disable=SC1091
. "$venv/bin/activate"
base=${DJANGOOPS_BASE_IMAGE:-djangoops-test/python:3.11-bookworm}
work=$(mktemp -d)
trap 'rm -rf "$work"; docker rmi -f djangoops-bench:1.0-orange >/dev/null 2>&1 || true' EXIT
cp -r examples/blog "$work/blog"
rm -rf "$work/blog/staticfiles"
vars() {
  printf '{"image_name":"djangoops-bench","image_push":false,"image_colour":"orange",'
  printf '"image_base_image":"%s","image_source_dir":"%s","image_cache_dir":"%s","image_build_nocache":%s}' \
    "$base" "$work/blog" "$work/cache" "$1"
}
now() { date +%s.%N; }

t0=$(now)
ansible-playbook playbooks/build.yml -e "$(vars true)" >"$work/cold.log" 2>&1 || { tail -30 "$work/cold.log"; exit 1; }
t1=$(now)
echo "# a one-line code change" >>"$work/blog/blog/views.py"
ansible-playbook playbooks/build.yml -e "$(vars false)" >"$work/rebuild.log" 2>&1 || { tail -30 "$work/rebuild.log"; exit 1; }
t2=$(now)
ansible-playbook playbooks/build.yml -e "$(vars false)" >"$work/noop.log" 2>&1
t3=$(now)

# The same two builds with Docker alone on the role's rendered context: what the layer
# order buys, without Ansible's per-task overhead.
ctx="$work/cache/build/djangoops-bench"
args=(--build-arg RELEASE_VERSION=1.0 --build-arg RELEASE_COLOUR=orange -t djangoops-bench:docker-only)
t4=$(now)
docker build -q --no-cache "${args[@]}" "$ctx" >/dev/null 2>&1
t5=$(now)
echo "# another one-line code change" >>"$ctx/src/blog/views.py"
docker build -q "${args[@]}" "$ctx" >/dev/null 2>&1
t6=$(now)
docker rmi djangoops-bench:docker-only >/dev/null
dcold=$(echo "$t5 - $t4" | bc)
drebuild=$(echo "$t6 - $t5" | bc)

image_bytes=$(docker image inspect -f '{{.Size}}' djangoops-bench:1.0-orange)
base_bytes=$(docker image inspect -f '{{.Size}}' "$base")
cold=$(echo "$t1 - $t0" | bc)
rebuild=$(echo "$t2 - $t1" | bc)
noop=$(echo "$t3 - $t2" | bc)
printf 'image size:              %.1f MB (base %s: %.1f MB)\n' "$(echo "$image_bytes/1000000" | bc -l)" "$base" "$(echo "$base_bytes/1000000" | bc -l)"
printf "app's own layers:        %.1f MB\n" "$(echo "($image_bytes-$base_bytes)/1000000" | bc -l)"
printf 'cold build (role):       %.1f s\n' "$cold"
printf 'rebuild after 1 line:    %.1f s (%.0f%% of cold)\n' "$rebuild" "$(echo "100*$rebuild/$cold" | bc -l)"
printf 'no-op re-run (role):     %.1f s\n' "$noop"
printf 'docker build, cold:      %.1f s\n' "$dcold"
printf 'docker build, 1 line:    %.1f s (%.0f%% of cold)\n' "$drebuild" "$(echo "100*$drebuild/$dcold" | bc -l)"
docker history --format '{{.Size}}\t{{.CreatedBy}}' djangoops-bench:1.0-orange | awk -F'\t' '$1 != "0B"' | cut -c1-110
