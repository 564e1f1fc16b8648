#!/usr/bin/env bash
# Backups on the lab (VMs, djangoops.stack.backup): a base backup's time and size for a
# database of SIZE_MB (default 1024), the recovery point when the database host is lost
# under steady writes (goal: under 60 s of writes lost, backup_archive_timeout's default),
# and the time of playbooks/restore.yml to the end of the archive.
#   benchmarks/vm_backup.sh            # SIZE_MB=1024 WRITE_SECONDS=90
# It uses the test stack's S3 server (tests/harness/s3-up) through tests/harness/s3-forward,
# a bucket of its own that it removes, and leaves the lab with archiving off and without
# the benchmark's table. Figures: docs/benchmarks.md, "Backups".
# shellcheck source=benchmarks/vm_lib.sh disable=SC2119
. "$(dirname "$0")/vm_lib.sh"

size_mb=${SIZE_MB:-1024}
write_seconds=${WRITE_SECONDS:-90}
gateway=10.213.87.1
run_dir="$out_dir/backup-$(date +%Y%m%dT%H%M%S)"
mkdir -p "$run_dir"
creds=$(tests/harness/s3-up | tail -n 1)
# shellcheck disable=SC1090
. "$creds"
bucket="bench-backups-$(date +%s)"
vars="$run_dir/vars.json"
python3 - "$vars" "$bucket" "$gateway" <<'PY'
import json, os, sys
json.dump({"backup_bucket": sys.argv[2], "backup_endpoint_url": f"http://{sys.argv[3]}:7070",
           "backup_access_key": os.environ["DJANGOOPS_S3_ACCESS_KEY"],
           "backup_secret_key": os.environ["DJANGOOPS_S3_SECRET_KEY"]}, open(sys.argv[1], "w"))
PY
chmod 0600 "$vars"
export DJANGOOPS_S3_ACCESS_KEY DJANGOOPS_S3_SECRET_KEY DJANGOOPS_S3_ENDPOINT DJANGOOPS_S3_REGION

sql() { docker exec djangoops-lab-db runuser -u postgres -- psql -XtA blog -c "$1"; }

bucket_bytes() {  # bucket_bytes PREFIX: the size of what the bucket holds below PREFIX
  python3 - "$bucket" "$1" <<'PY'
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["DJANGOOPS_S3_ENDPOINT"], region_name=os.environ.get("DJANGOOPS_S3_REGION", "us-east-1"),
                  aws_access_key_id=os.environ["DJANGOOPS_S3_ACCESS_KEY"], aws_secret_access_key=os.environ["DJANGOOPS_S3_SECRET_KEY"])
pages = s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[1], Prefix=sys.argv[2])
print(sum(item["Size"] for page in pages for item in page.get("Contents", [])))
PY
}

cleanup() {
  set +e
  sql "drop table if exists bench_rows, bench_writes" >/dev/null
  docker exec djangoops-lab-db sh -c 'rm -rf /var/lib/postgresql/15/main.before-restore-*'
  ansible-playbook playbooks/backup.yml -e backup_state=absent -e "@$vars" >"$run_dir/off.log" 2>&1 ||
    echo "== backup_state=absent failed: $run_dir/off.log" >&2
  python3 - "$bucket" <<'PY'
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["DJANGOOPS_S3_ENDPOINT"], region_name=os.environ.get("DJANGOOPS_S3_REGION", "us-east-1"),
                  aws_access_key_id=os.environ["DJANGOOPS_S3_ACCESS_KEY"], aws_secret_access_key=os.environ["DJANGOOPS_S3_SECRET_KEY"])
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[1]):
    for item in page.get("Contents", []):
        s3.delete_object(Bucket=sys.argv[1], Key=item["Key"])
s3.delete_bucket(Bucket=sys.argv[1])
PY
  tests/harness/s3-forward "$gateway" stop >/dev/null
  rm -f "$vars"
}
trap cleanup EXIT

echo "== make sure the lab is up and deployed"
lab_up
deploy -e deploy_build_release=false >/dev/null
tests/harness/s3-forward "$gateway" >/dev/null

echo "== archiving on, a first backup (playbooks/backup.yml)"
playbook "$run_dir/setup.log" playbooks/backup.yml -e backup_now=false -e "@$vars"

echo "== a table of ${size_mb} MB"
rows=$((size_mb * 1024 * 1024 / 330))  # about 330 bytes a row on disk, with its 256-character payload
t0=$(now)
sql "create table bench_rows as select g as id, repeat(md5(g::text), 8) as payload from generate_series(1, $rows) g" >/dev/null
t1=$(now)
db_bytes=$(sql "select pg_database_size('blog')")
printf 'filled: %d rows, database %d MB, in %.1f s\n' "$rows" "$((db_bytes / 1048576))" "$(echo "$t1 - $t0" | bc)"

echo "== a base backup (the timer's service, run now)"
t0=$(now)
docker exec djangoops-lab-db systemctl start djangoops-backup-blog.service
t1=$(now)
backup_s=$(echo "$t1 - $t0" | bc)
base_bytes=$(bucket_bytes postgresql/blog/base/)
wal_bytes=$(bucket_bytes postgresql/blog/wals/)

echo "== writes every 0.2 s for ${write_seconds} s, then the database host is lost (PostgreSQL killed)"
sql "create table bench_writes (id bigserial primary key, at timestamptz not null default clock_timestamp())" >/dev/null
end=$(echo "$(now) + $write_seconds" | bc)
while (( $(echo "$(now) < $end" | bc) )); do
  sql "insert into bench_writes default values" >/dev/null
  sleep 0.2
done
last_written=$(sql "select extract(epoch from max(at)) from bench_writes")
written=$(sql "select count(*) from bench_writes")
docker exec djangoops-lab-db sh -c 'pkill -9 -x postgres || true'

echo "== playbooks/restore.yml to the end of the archive"
t0=$(now)
playbook "$run_dir/restore.log" playbooks/restore.yml -e backup_restore_confirm=blog -e "@$vars"
t1=$(now)
restore_s=$(echo "$t1 - $t0" | bc)
last_restored=$(sql "select coalesce(extract(epoch from max(at)), 0) from bench_writes")
restored=$(sql "select count(*) from bench_writes")
lost_s=$(echo "$last_written - $last_restored" | bc)

{
  printf 'database:            %d MB (pg_database_size)\n' "$((db_bytes / 1048576))"
  printf 'base backup:         %.1f s, %d MB in the bucket (gzip)\n' "$backup_s" "$((base_bytes / 1048576))"
  printf 'WAL in the bucket:   %d MB (gzip), after the fill and the backup\n' "$((wal_bytes / 1048576))"
  printf 'writes lost:         %s of %s rows, the last %.1f s before the host was lost (goal: under 60 s)\n' \
    "$((written - restored))" "$written" "$lost_s"
  printf 'restore.yml:         %.1f s (the app stopped and started, a new base backup included)\n' "$restore_s"
} | tee "$run_dir/figures.txt"
