"""playbooks/backup.yml and playbooks/restore.yml on the lab (VMs): barman-cloud archives
the lab's PostgreSQL into a bucket of the test stack's S3 server (versitygw), which the
lab's hosts reach through tests/harness/s3-forward. One bucket per run, removed at the
end, with archiving turned off again (backup_state absent), so the lab is left as found.

A backup lands in the bucket and a second run changes nothing; a restore without its
confirmation, to a time in the future or before the first backup, stops before any change;
a point-in-time restore brings back the rows a bad DELETE removed, both those of the base
backup and those only in the archived WAL, and the site serves them.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import boto3
import pytest
import requests

import vm_helpers as vm
from ansible_run import REPO
from waiting import eventually

pytestmark = pytest.mark.slow

GATEWAY = "10.213.87.1"  # the lab network's, where tests/harness/s3-forward puts the S3 server


def s3_forward(*args: str) -> None:
    subprocess.run([str(REPO / "tests" / "harness" / "s3-forward"), GATEWAY, *args], check=True, timeout=60)


def sql(query: str, database: str = "blog") -> str:
    out = subprocess.run(["docker", "exec", "djangoops-lab-db", "runuser", "-u", "postgres", "--",
                          "psql", "-XtA", database, "-c", query], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def postmaster_started() -> str:
    return sql("select pg_postmaster_start_time()")


def s3():
    return boto3.client("s3", endpoint_url=os.environ["DJANGOOPS_S3_ENDPOINT"],
                        aws_access_key_id=os.environ["DJANGOOPS_S3_ACCESS_KEY"],
                        aws_secret_access_key=os.environ["DJANGOOPS_S3_SECRET_KEY"],
                        region_name=os.environ.get("DJANGOOPS_S3_REGION", "us-east-1"))


def keys(bucket: str, prefix: str) -> list[str]:
    pages = s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.fixture(scope="module")
def backups(lab_deployed, lab_run):
    s3_forward("stop")  # one left by an interrupted run
    s3_forward()
    bucket = f"lab-backups-{uuid.uuid4().hex[:8]}"
    extra = {"backup_bucket": bucket, "backup_endpoint_url": f"http://{GATEWAY}:7070",
             "backup_access_key": os.environ["DJANGOOPS_S3_ACCESS_KEY"],
             "backup_secret_key": os.environ["DJANGOOPS_S3_SECRET_KEY"]}
    try:
        yield {"bucket": bucket, "vars": extra, "run": lambda path, **more: lab_run(path, **extra, **more)}
    finally:
        off = lab_run("playbooks/backup.yml", backup_state="absent", **extra)
        client = s3()
        for key in keys(bucket, ""):
            client.delete_object(Bucket=bucket, Key=key)
        client.delete_bucket(Bucket=bucket)
        s3_forward("stop")
        assert off.rc == 0, off.output[-4000:]
        assert sql("show archive_mode") == "off"


def test_a_backup_lands_in_the_bucket_and_a_second_run_changes_nothing(backups):
    result = backups["run"]("playbooks/backup.yml")
    assert result.rc == 0, result.output[-6000:]
    assert backups["vars"]["backup_secret_key"] not in result.output
    base = keys(backups["bucket"], "postgresql/blog/base/")
    assert any(key.endswith("/backup.info") for key in base), base
    assert keys(backups["bucket"], "postgresql/blog/wals/"), "no WAL segment archived"
    assert sql("show archive_mode") == "on"
    timer = subprocess.run(["docker", "exec", "djangoops-lab-db", "systemctl", "is-enabled", "djangoops-backup-blog.timer"],
                           capture_output=True, text=True)
    assert timer.stdout.strip() == "enabled"
    again = backups["run"]("playbooks/backup.yml", backup_now=False)
    assert again.rc == 0, again.output[-6000:]
    assert again.changed == 0, again.output[-6000:]


@pytest.mark.parametrize(("extra", "message"), [
    ({}, "backup_restore_confirm must be 'blog'"),
    ({"backup_restore_confirm": "blog", "backup_restore_target_time": "2099-01-01T00:00:00+00:00"}, "is in the future"),
    ({"backup_restore_confirm": "blog", "backup_restore_target_time": "2001-01-01T00:00:00+00:00"},
     "is before the oldest backup"),
    ({"backup_restore_confirm": "blog", "backup_restore_target_time": "yesterday"}, "is not an ISO 8601 time"),
])
def test_a_restore_that_cannot_be_done_changes_nothing(backups, extra, message):
    started = postmaster_started()
    result = backups["run"]("playbooks/restore.yml", **extra)
    assert result.rc != 0
    assert message in " ".join(result.output.split()), result.output[-4000:]
    assert result.changed == 0
    assert postmaster_started() == started
    assert requests.get(f"{vm.LAB_URL}/", timeout=10).status_code == 200


def test_a_point_in_time_restore_undoes_a_bad_delete(backups):
    run = uuid.uuid4().hex[:8]
    in_backup, in_wal = f"In the base backup {run}", f"Only in the WAL {run}"
    vm.admin_create_post(vm.LAB_URL, in_backup, "Written before the backup.")
    taken = backups["run"]("playbooks/backup.yml")
    assert taken.rc == 0, taken.output[-6000:]
    vm.admin_create_post(vm.LAB_URL, in_wal, "Written after the backup.")
    time.sleep(1)
    target = sql("select to_char(now() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')")
    time.sleep(1)
    assert sql(f"delete from blog_post where title like '%{run}'") == "DELETE 2"
    # The segment holding the DELETE goes to the bucket now, not after archive_timeout.
    segment = sql("select pg_walfile_name(pg_switch_wal())")
    eventually(lambda: sql("select last_archived_wal from pg_stat_archiver") >= segment, timeout=60,
               what=f"WAL segment {segment} archived")

    result = backups["run"]("playbooks/restore.yml", backup_restore_confirm="blog", backup_restore_target_time=target)
    assert result.rc == 0, result.output[-6000:]
    assert "Restored backup" in result.output
    rows = sql(f"select id, title from blog_post where title like '%{run}' order by id").splitlines()
    assert [row.split("|", 1)[1] for row in rows] == [in_backup, in_wal]
    for row in rows:
        page = requests.get(f"{vm.LAB_URL}/post/{row.split('|', 1)[0]}/", timeout=10)
        assert page.status_code == 200 and row.split("|", 1)[1] in page.text
    # The data as it was before is kept beside the new one, and the site writes again.
    kept = subprocess.run(["docker", "exec", "djangoops-lab-db", "sh", "-c", "ls -d /var/lib/postgresql/15/main.before-restore-*"],
                          capture_output=True, text=True)
    assert kept.returncode == 0 and kept.stdout.strip()
    vm.admin_create_post(vm.LAB_URL, f"Written after the restore {run}", "The restored database takes writes.")


def test_an_upgrade_takes_a_backup_before_it_migrates(backups):
    before = [key for key in keys(backups["bucket"], "postgresql/blog/base/") if key.endswith("/backup.info")]
    # the running release again (built by the deploy): the upgrade's steps, no new code
    result = backups["run"]("playbooks/upgrade.yml", upgrade_build_release=False)
    assert result.rc == 0, result.output[-6000:]
    text = " ".join(result.output.split())
    assert text.index("Back up the database before the migration") < text.index(
        "Install the new release beside the running one and migrate once")
    after = [key for key in keys(backups["bucket"], "postgresql/blog/base/") if key.endswith("/backup.info")]
    assert len(after) == len(before) + 1
    new_id = (set(after) - set(before)).pop().split("/")[-2]
    assert f"Backup {new_id} of blog" in text and f"s3://{backups['bucket']}/postgresql/blog/base/{new_id}" in text
    assert requests.get(f"{vm.LAB_URL}/", timeout=10).status_code == 200
