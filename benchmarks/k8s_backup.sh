#!/usr/bin/env bash
# Backups on Kubernetes (djangoops.stack.backup): the on-demand dump's time and size for a
# database of SIZE_MB (default 1024), then the time of playbooks/restore.yml from that dump
# (the app scaled to none, the database renamed aside, the dump restored, the app back),
# with every row of the dump back and the site serving.
#   benchmarks/k8s_backup.sh [namespace]        # SIZE_MB=1024, namespace djangoops-bench-backup
# Needs the cluster (eval "$(tests/cluster/up)"), whose pods reach the test stack's S3 server
# (tests/harness/s3-up) at the cluster network's gateway (tests/cluster/lib.sh). It deploys
# a fresh namespace, uses a bucket of its own, and removes both at the end. Figures:
# docs/benchmarks.md, "Kubernetes: backups and restore".
# shellcheck source=benchmarks/vm_lib.sh
. "$(dirname "$0")/vm_lib.sh"

ns=${1:-djangoops-bench-backup}
size_mb=${SIZE_MB:-1024}
kubectl=${KUBECTL:-/var/cache/djangoops/k3s/kube-v1.34.4/bin/kubectl}
: "${KUBECONFIG:?set KUBECONFIG (eval \"\$(tests/cluster/up)\")}"
run_dir="$out_dir/k8s-backup-$(date +%Y%m%dT%H%M%S)"
mkdir -p "$run_dir"
creds=$(tests/harness/s3-up | tail -n 1)
# shellcheck disable=SC1090
. "$creds"
export DJANGOOPS_S3_ACCESS_KEY DJANGOOPS_S3_SECRET_KEY DJANGOOPS_S3_ENDPOINT DJANGOOPS_S3_REGION
bucket="bench-k8s-backups-$(date +%s)"
vars="$run_dir/vars.json"
python3 - "$vars" "$bucket" "$ns" "${DJANGOOPS_S3_CLUSTER_ENDPOINT:-http://10.213.99.1:7070}" <<'PY'
import json, os, sys
json.dump({"target": "kubernetes", "kubernetes_namespace": sys.argv[3], "database_storage_size": "4Gi",
           "backup_bucket": sys.argv[2], "backup_endpoint_url": sys.argv[4],
           "backup_access_key": os.environ["DJANGOOPS_S3_ACCESS_KEY"],
           "backup_secret_key": os.environ["DJANGOOPS_S3_SECRET_KEY"]}, open(sys.argv[1], "w"))
PY
chmod 0600 "$vars"

# sql QUERY: psql in the database pod as the app's user (its tables are the app's, as a
# restore run as that user expects), over the pod's local socket.
sql() { "$kubectl" -n "$ns" exec djangoops-blog-postgres-0 -c postgresql -- psql -U blog -d blog -XtAc "$1"; }

bucket_objects() {  # name and size of each dump in the bucket, one per line
  python3 - "$bucket" <<'PY'
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["DJANGOOPS_S3_ENDPOINT"], region_name=os.environ.get("DJANGOOPS_S3_REGION", "us-east-1"),
                  aws_access_key_id=os.environ["DJANGOOPS_S3_ACCESS_KEY"], aws_secret_access_key=os.environ["DJANGOOPS_S3_SECRET_KEY"])
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[1]):
    for item in page.get("Contents", []):
        print(item["Key"], item["Size"])
PY
}

cleanup() {
  set +e
  "$kubectl" delete namespace "$ns" --ignore-not-found --wait=true --timeout=300s >/dev/null
  python3 - "$bucket" <<'PY'
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["DJANGOOPS_S3_ENDPOINT"], region_name=os.environ.get("DJANGOOPS_S3_REGION", "us-east-1"),
                  aws_access_key_id=os.environ["DJANGOOPS_S3_ACCESS_KEY"], aws_secret_access_key=os.environ["DJANGOOPS_S3_SECRET_KEY"])
try:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[1]):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=sys.argv[1], Key=item["Key"])
    s3.delete_bucket(Bucket=sys.argv[1])
except s3.exceptions.NoSuchBucket:
    pass
PY
  rm -f "$vars"
}
trap cleanup EXIT

echo "== a fresh namespace $ns, the orange image built and pushed first"
"$kubectl" delete namespace "$ns" --ignore-not-found --wait=true --timeout=300s >/dev/null
playbook "$run_dir/build.log" playbooks/build.yml -e image_colour=orange -e image_push=true \
  -e image_registry=127.0.0.1:5000/djangoops
playbook "$run_dir/deploy.log" deploy.yml -e "@$vars"
url=$(grep -o 'The app answers at http://[^ "]*' "$run_dir/deploy.log" | tail -n 1 | cut -d' ' -f5)
check_pages "${url%/}" / >/dev/null

echo "== a table of ${size_mb} MB, owned by the app's user"
rows=$((size_mb * 1024 * 1024 / 300))  # about 300 bytes a row on disk, with its 256-character payload
t0=$(now)
sql "create table bench_rows as select g as id, repeat(md5(g::text), 8) as payload from generate_series(1, $rows) g" >/dev/null
t1=$(now)
db_bytes=$(sql "select pg_database_size('blog')")
sum_before=$(sql "select count(*) || ' ' || sum(id) || ' ' || md5(string_agg(payload, '' order by id) filter (where id % 1000 = 0)) from bench_rows")
printf 'filled: %d rows, database %d MB, in %.1f s\n' "$rows" "$((db_bytes / 1048576))" "$(echo "$t1 - $t0" | bc)"

echo "== an on-demand dump (playbooks/backup.yml: the CronJob, and a Job from it now)"
t0=$(now)
playbook "$run_dir/backup.log" playbooks/backup.yml -e "@$vars"
t1=$(now)
backup_s=$(echo "$t1 - $t0" | bc)
# the play says where: "... is in s3://<bucket>/postgresql/blog/dumps/<name>; ..."
dump_name=$(grep -o "s3://$bucket/postgresql/blog/dumps/[^;\" ]*" "$run_dir/backup.log" | tail -n 1 | sed 's|.*/dumps/||')
[[ -n "$dump_name" ]] || { echo "== backup.yml named no dump: $run_dir/backup.log" >&2; exit 1; }
dump_id=${dump_name%.dump}  # backup_restore_backup_id: the dump's name without .dump
dump_bytes=$(bucket_objects | awk -v k="postgresql/blog/dumps/$dump_name" '$1 == k {print $2}')

echo "== the rows changed after the dump (a restore must put them back), then playbooks/restore.yml"
sql "delete from bench_rows where id % 2 = 0" >/dev/null
t0=$(now)
playbook "$run_dir/restore.log" playbooks/restore.yml -e "@$vars" -e backup_restore_confirm=blog \
  -e "backup_restore_backup_id=$dump_id"
t1=$(now)
restore_s=$(echo "$t1 - $t0" | bc)
sum_after=$(sql "select count(*) || ' ' || sum(id) || ' ' || md5(string_agg(payload, '' order by id) filter (where id % 1000 = 0)) from bench_rows")
check_pages "${url%/}" / >/dev/null || echo "== the site does not answer after the restore" >&2
[[ "$sum_after" == "$sum_before" ]] && same=yes || same="NO (before: $sum_before; after: $sum_after)"

{
  printf 'database:            %d MB (pg_database_size)\n' "$((db_bytes / 1048576))"
  printf 'backup.yml:          %.1f s, the dump %d MB in the bucket (pg_dump -Fc)\n' "$backup_s" "$((dump_bytes / 1048576))"
  printf 'restore.yml:         %.1f s (the app scaled to none and back, the old database kept aside)\n' "$restore_s"
  printf 'rows as dumped:      %s (count, sum of ids, checksum of every 1000th payload)\n' "$same"
} | tee "$run_dir/figures.txt"
