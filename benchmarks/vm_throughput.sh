#!/usr/bin/env bash
# Throughput of the list page (20 posts) through NGINX, in the same run on the same lab:
#   https  our configuration as the lab deploys it, over HTTPS (https://127.0.0.1:8443/)
#   http   the same over plain HTTP (service_tls_mode=disabled, app_https=false), on
#          http://127.0.0.1:8080/: what TLS costs (goal: https at least 0.8 x http)
#   article the article's configuration (one sync Gunicorn worker per app host,
#          DB_CONN_MAX_AGE=0) over plain HTTP: what our Gunicorn settings bring
# wrk keeps its connections open, so the TLS handshakes are few: this is the cost of
# encryption per request, not of a handshake per request (benchmarks/vm_upgrade.sh's
# load makes one per request). Ends with our configuration deployed again.
#   benchmarks/vm_throughput.sh            # 20 s per run, 2 threads, 16 connections
#   DURATION=30s CONNECTIONS=32 benchmarks/vm_throughput.sh
# shellcheck source=benchmarks/vm_lib.sh disable=SC2119
. "$(dirname "$0")/vm_lib.sh"
duration=${DURATION:-20s}
connections=${CONNECTIONS:-16}
threads=${THREADS:-2}
https_url=https://127.0.0.1:8443/
http_url=http://127.0.0.1:8080/
plain='{"service_tls_mode": "disabled", "app_https": false, "deploy_public_url": "http://127.0.0.1:8080/"}'

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

run_wrk() {  # label url
  local url=$2
  curl -fsS -o /dev/null "$url"  # answers 200 (a redirect would fail here), with the lab's CA
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

echo "== ours over HTTPS: 2 x cores + 1 workers, DB_CONN_MAX_AGE=60"
https=$(run_wrk https "$https_url")

echo "== ours over plain HTTP"
deploy -e "$plain" >/dev/null
http=$(run_wrk http "$http_url")

echo "== the article's over plain HTTP: 1 sync worker, DB_CONN_MAX_AGE=0"
deploy -e "$plain" -e '{"app_gunicorn_workers": 1, "app_gunicorn_threads": 1, "app_db_conn_max_age": 0}' >/dev/null
article=$(run_wrk article "$http_url")

echo "== restore our configuration"
deploy >/dev/null

ratio() { echo "scale=2; $(cat "$out_dir/rps-$1") / $(cat "$out_dir/rps-$2")" | bc; }
echo
echo "wrk -t$threads -c$connections -d$duration --latency <url>"
echo "$https"
echo "$http"
echo "$article"
echo "https / http: $(ratio https http) x (goal: at least 0.8)"
echo "ours / article (plain HTTP): $(ratio http article) x"
