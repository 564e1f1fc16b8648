#!/usr/bin/env bash
# Throughput of the list page (20 posts) through NGINX on http://127.0.0.1:8080/,
# our configuration against the article's (one sync Gunicorn worker per app host,
# DB_CONN_MAX_AGE=0), in the same run on the same lab. Ends with our configuration
# deployed again.
#   benchmarks/vm_throughput.sh            # 20 s per run, 2 threads, 16 connections
#   DURATION=30s CONNECTIONS=32 benchmarks/vm_throughput.sh
# shellcheck source=benchmarks/vm_lib.sh disable=SC2119
. "$(dirname "$0")/vm_lib.sh"
duration=${DURATION:-20s}
connections=${CONNECTIONS:-16}
threads=${THREADS:-2}
url=http://127.0.0.1:8080/

command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 1; }

echo "== the lab, and deploy (our configuration)"
lab_up
deploy >/dev/null

echo "== 20 published posts"
ansible app1 -m ansible.builtin.command -a "djangoops-blog-manage shell -c \"
from django.contrib.auth import get_user_model
from django.utils import timezone
from blog.models import Post
author = get_user_model().objects.order_by('pk').first()
missing = 20 - Post.objects.filter(published_date__isnull=False).count()
for i in range(max(missing, 0)):
    Post.objects.create(author=author, title=f'Benchmark post {i}', text='Lorem ipsum ' * 50,
                        published_date=timezone.now())
print(Post.objects.filter(published_date__isnull=False).count())
\"" | tail -n 1

run_wrk() {  # label
  curl -fsS -o /dev/null "$url"
  wrk -t1 -c4 -d3s "$url" >/dev/null  # warm up workers and connections
  local result
  result=$(wrk -t"$threads" -c"$connections" -d"$duration" --latency "$url")
  echo "$result" >"$out_dir/wrk-$1.txt"
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$result")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$result")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$result")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$result" | tr '\n' ' ')
  printf '%-10s %10s req/s   p50 %8s   p99 %8s   %s\n' "$1" "$rps" "$p50" "$p99" "${errors:-no errors}"
  echo "$rps" >"$out_dir/rps-$1"
}

echo "== ours: 2 x cores + 1 workers, DB_CONN_MAX_AGE=60"
ours=$(run_wrk ours)

echo "== the article's: 1 sync worker, DB_CONN_MAX_AGE=0"
deploy -e '{"app_gunicorn_workers": 1, "app_gunicorn_threads": 1, "app_db_conn_max_age": 0}' >/dev/null
article=$(run_wrk article)

echo "== restore our configuration"
deploy >/dev/null

echo
echo "wrk -t$threads -c$connections -d$duration --latency $url"
echo "$ours"
echo "$article"
echo "ratio: $(echo "scale=2; $(cat "$out_dir/rps-ours") / $(cat "$out_dir/rps-article")" | bc) x"
