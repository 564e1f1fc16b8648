"""Backups and restore on Kubernetes (issue 12): playbooks/backup.yml and restore.yml with
-e target=kubernetes. The backup role's CronJob dumps the blog's PostgreSQL with pg_dump
(the database image's own) into a bucket of the test stack's S3 server (versitygw), which
the pods reach at the cluster's gateway, through the AWS CLI's image (a local stand-in for
amazon/aws-cli, seeded into the registry by tests/harness/registry-seed). On the session's
one deployment (conftest.e2e_site), after the other modules that share it; one bucket for
the module; the last test tears the site down with its final backup.

Asserted: a scheduled and an on-demand dump land in the bucket and a second run changes
nothing; a restore without its confirmation or with a dump that is not there stops before
any change; a restore brings back exactly the rows of the dump (a post a bad DELETE removed
comes back, a post written after the dump is gone), with the app stopped meanwhile and back
at its count after, and the old database kept aside; a restore that fails leaves the
database, the app and the schedule as they were; an upgrade takes a dump before it
migrates; a teardown with teardown_remove_data takes a final one.
"""

from __future__ import annotations

import base64
import os
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
import requests

from k8s import E2E_NS, E2E_VARS, database_sql, eventually, kubectl, kubectl_json
from test_k8s_deploy import TLS, Browser, create_post  # noqa: F401  (Browser used by create_post)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from ansible_run import playbook  # noqa: E402

NS = E2E_NS
APP = "djangoops-blog"
DB_POD = f"{APP}-postgres-0"
BUCKET = f"k8s-backups-{uuid.uuid4().hex[:8]}"
DUMPS = "postgresql/blog/dumps/"
# The pods reach the S3 server at the cluster network's gateway (as the gallery's do).
ENDPOINT = os.environ.get("DJANGOOPS_S3_CLUSTER_ENDPOINT") or "http://10.213.99.1:7070"
BASE = {**E2E_VARS,
        "backup_bucket": BUCKET, "backup_endpoint_url": ENDPOINT,
        "backup_access_key": os.environ.get("DJANGOOPS_S3_ACCESS_KEY", ""),
        "backup_secret_key": os.environ.get("DJANGOOPS_S3_SECRET_KEY", "")}


def run(pb: str, timeout: int = 1500, **extra):
    return playbook(pb, extra_vars={**BASE, **extra}, timeout=timeout)


def s3():
    return boto3.client("s3", endpoint_url=os.environ["DJANGOOPS_S3_ENDPOINT"],
                        aws_access_key_id=os.environ["DJANGOOPS_S3_ACCESS_KEY"],
                        aws_secret_access_key=os.environ["DJANGOOPS_S3_SECRET_KEY"],
                        region_name=os.environ.get("DJANGOOPS_S3_REGION", "us-east-1"))


def dumps() -> dict[str, int]:
    """The dumps in the bucket: name -> size."""
    pages = s3().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=DUMPS)
    return {item["Key"][len(DUMPS):]: item["Size"] for page in pages for item in page.get("Contents", [])}


def sql(query: str, database: str = "blog", user: str = "postgres") -> str:
    return database_sql(NS, query, app=APP, user=user, database=database)


def titles() -> set[str]:
    return set(sql("SELECT title FROM blog_post").splitlines())


def replicas() -> dict[str, int]:
    return {d["metadata"]["name"]: d["spec"]["replicas"]
            for d in kubectl_json("-n", NS, "get", "deployments", "-l", f"app.kubernetes.io/part-of={APP}")["items"]}


def dump_named(output: str) -> str:
    """The dump a play said it wrote: ... is in s3://<bucket>/postgresql/blog/dumps/<name>;"""
    marker = f"is in s3://{BUCKET}/{DUMPS}"
    assert marker in output, output[-4000:]
    return output.split(marker, 1)[1].split(";", 1)[0].split()[0]


@pytest.fixture(scope="module")
def site(e2e_site):
    try:
        yield {"url": e2e_site["url"].rstrip("/")}
    finally:
        client = s3()
        try:
            for key in dumps():
                client.delete_object(Bucket=BUCKET, Key=DUMPS + key)
            client.delete_bucket(Bucket=BUCKET)
        except client.exceptions.NoSuchBucket:
            pass  # a run that stopped before making it


def test_a_schedule_that_is_not_cron_stops_before_any_change(site):
    result = run("playbooks/backup.yml", backup_k8s_schedule="every night")
    assert result.rc != 0 and "backup_k8s_schedule" in result.output, result.output[-3000:]
    assert result.changed == 0, result.recap
    # the backups' CronJob (the app's scheduled commands have theirs: E2E_VARS)
    assert kubectl("-n", NS, "get", "cronjobs", "-l", "app.kubernetes.io/component=backup", "-o", "name").strip() == ""


def test_a_scheduled_and_an_on_demand_dump_land_in_the_bucket_and_a_second_run_changes_nothing(site):
    kept = f"kept {uuid.uuid4().hex[:8]}"
    create_post(site["url"], kept)
    site["kept"], site["rows"] = kept, titles()
    result = run("playbooks/backup.yml", backup_k8s_schedule="* * * * *")
    assert result.rc == 0, result.output[-5000:]
    name = dump_named(result.output)
    assert dumps().get(name, 0) > 1000, dumps()
    site["dump"] = name.removesuffix(".dump")

    # The CronJob's own Job, on the next minute: a second dump lands.
    def scheduled() -> bool:
        jobs = kubectl_json("-n", NS, "get", "jobs", "-l", "app.kubernetes.io/component=backup")["items"]
        return any(j["status"].get("succeeded") for j in jobs
                   if any(o["kind"] == "CronJob" for o in j["metadata"].get("ownerReferences", [])))

    eventually(scheduled, timeout=150, interval=5)
    assert len(dumps()) >= 2, dumps()

    daily = run("playbooks/backup.yml", backup_now=False)
    assert daily.rc == 0, daily.output[-4000:]
    again = run("playbooks/backup.yml", backup_now=False)
    assert again.rc == 0 and again.changed == 0, again.recap
    assert kubectl_json("-n", NS, "get", "cronjob", "blog-backup")["spec"]["schedule"] == "0 3 * * *"


def test_a_restore_without_confirmation_or_with_a_missing_dump_stops_before_any_change(site):
    before = replicas()
    unconfirmed = run("playbooks/restore.yml")
    assert unconfirmed.rc != 0 and "backup_restore_confirm must be 'blog'" in unconfirmed.output, \
        unconfirmed.output[-3000:]
    missing = run("playbooks/restore.yml", backup_restore_confirm="blog", backup_restore_backup_id="20200101T000000Z")
    assert missing.rc != 0 and "backup_restore_backup_id '20200101T000000Z'" in missing.output, missing.output[-3000:]
    for result in (unconfirmed, missing):
        assert result.changed == 0, result.recap
    assert replicas() == before


def test_a_restore_brings_back_exactly_the_rows_of_the_dump(site):
    later = f"after the dump {uuid.uuid4().hex[:8]}"
    create_post(site["url"], later)
    sql(f"DELETE FROM blog_post WHERE title = '{site['kept']}'")  # the bad change
    assert site["kept"] not in titles()
    before = replicas()
    assert before and all(n > 0 for n in before.values()), before

    result = run("playbooks/restore.yml", backup_restore_confirm="blog", backup_restore_backup_id=site["dump"])
    assert result.rc == 0, result.output[-5000:]
    assert f"Restored dump {site['dump']}" in result.output, result.output[-3000:]
    assert "Scale the app's Deployments to none" in result.output

    assert titles() == site["rows"]
    assert replicas() == before
    for deployment in kubectl_json("-n", NS, "get", "deployments")["items"]:
        assert "djangoops-replicas-before-restore" not in deployment["metadata"].get("annotations", {})
    assert kubectl_json("-n", NS, "get", "cronjob", "blog-backup")["spec"].get("suspend") is False
    aside = sql("SELECT datname FROM pg_database WHERE datname LIKE 'blog_before_restore_%'", "postgres")
    assert aside, "the database as it was is not kept"
    assert later in sql(f"SELECT title FROM blog_post WHERE title = '{later}'", aside.splitlines()[0])

    def served() -> bool:
        page = requests.get(site["url"] + "/", headers=TLS, timeout=10)
        return page.status_code == 200 and site["kept"] in page.text and later not in page.text

    eventually(served, timeout=120)


def test_a_restore_that_fails_names_the_database_back_and_starts_the_app_again(site):
    """A dump pg_restore cannot finish (a GRANT to a role that is gone since), put in the
    bucket as the newest: the restore fails, and the database, the app's counts and the
    CronJob are as they were."""
    rows, before = titles(), replicas()
    dump = kubectl("-n", NS, "exec", DB_POD, "-c", "postgresql", "--", "bash", "-ec",
                   "psql -U postgres -d blog -Xqc 'CREATE ROLE gone; GRANT SELECT ON blog_post TO gone'; "
                   "pg_dump -U blog -d blog -Fc | base64 -w0; "
                   "psql -U postgres -d blog -Xqc 'REVOKE SELECT ON blog_post FROM gone; DROP ROLE gone'")
    name = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    s3().put_object(Bucket=BUCKET, Key=f"{DUMPS}{name}.dump", Body=base64.b64decode(dump))

    result = run("playbooks/restore.yml", backup_restore_confirm="blog")
    assert result.rc != 0, result.output[-3000:]
    assert "role \"gone\" does not exist" in result.output and "blog is back as it was" in result.output, \
        result.output[-3000:]
    assert titles() == rows
    assert replicas() == before
    assert kubectl_json("-n", NS, "get", "cronjob", "blog-backup")["spec"].get("suspend") is False
    s3().delete_object(Bucket=BUCKET, Key=f"{DUMPS}{name}.dump")


def test_an_upgrade_takes_a_dump_before_it_migrates(site):
    before = set(dumps())
    result = run("playbooks/upgrade.yml", deploy_build_release=False)
    assert result.rc == 0, result.output[-5000:]
    name = dump_named(result.output)
    assert name in set(dumps()) - before
    assert result.output.index(name) < result.output.index("PLAY [Roll the app to the new release]")


def test_a_teardown_that_removes_the_data_takes_a_final_dump(site):
    before = set(dumps())
    time.sleep(1)  # dumps are named by the second
    result = run("playbooks/teardown.yml", teardown_remove_data=True)
    assert result.rc == 0, result.output[-5000:]
    assert dump_named(result.output) in set(dumps()) - before
    assert kubectl("-n", NS, "get", "pvc,cronjobs,statefulsets,deployments", "-o", "name").strip() == ""
