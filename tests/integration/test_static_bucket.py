"""Static files in a bucket (djangoops.stack.static_assets, entry point bucket) against the
test stack's real S3 server: releases are added next to each other, read without keys
where browsers fetch them, cached by name, and pruned to the kept releases.

The releases are small archives of the layout djangoops.stack.image writes (static/ with
hashed names and staticfiles.json), so no image is built; the Kubernetes gallery test
publishes a real one.
"""

from __future__ import annotations

import json
import re
import tarfile
import uuid
from pathlib import Path

import pytest
import requests

from ansible_run import PlaybookResult, playbook

PLAYBOOK = "tests/integration/playbooks/static_bucket.yml"
SHARED = "admin/css/base.0a1b2c3d4e5f.css"  # the same in every release, as Django's admin files are


def hashed(release: int) -> str:
    return f"css/site.{release:012x}.css"


def release_archive(folder: Path, release: int) -> Path:
    """What the image role writes for release N: its hashed CSS, the shared admin file, the
    unhashed copy (the newest content) and the manifest."""
    files = {
        hashed(release): f"body {{ --release: {release}; }}",
        "css/site.css": f"body {{ --release: {release}; }}",
        SHARED: "nav { display: block; }",
        "staticfiles.json": json.dumps({"paths": {"css/site.css": hashed(release), "admin/css/base.css": SHARED},
                                        "version": "1.1"}),
    }
    staging = folder / f"r{release}"
    for name, text in files.items():
        path = staging / "static" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    archive = folder / f"gallery-{release}.0-orange.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(staging / "static", arcname="static")
    return archive


@pytest.fixture
def bucket(remove_bucket):
    name = f"djangoops-static-{uuid.uuid4().hex[:10]}"
    yield name
    remove_bucket(name)


@pytest.fixture
def publish(s3, bucket, tmp_path):
    """publish(N) -> the playbook's result for release N (built once), keeping 2 releases."""

    def _publish(release: int, *flags: str, **extra) -> PlaybookResult:
        archive = tmp_path / f"gallery-{release}.0-orange.tar.gz"
        if not archive.exists():
            release_archive(tmp_path, release)
        return playbook(*flags, PLAYBOOK, env=s3, timeout=300, extra_vars={
            "static_assets_bucket": bucket,
            "static_assets_bucket_url": f"{s3['DJANGOOPS_S3_ENDPOINT']}/{bucket}/static/",
            "static_assets_release_archive": str(archive),
            "static_assets_release_version": f"{release}.0",
            "static_assets_release_colour": "orange",
            "static_assets_bucket_keep_releases": 2,
            "static_assets_bucket_staging_dir": str(tmp_path / "unpacked"),
            **extra,
        })

    return _publish


def keys(client, bucket: str) -> set[str]:
    found = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="static/"):
        found |= {item["Key"].removeprefix("static/") for item in page.get("Contents", [])}
    return found


def anonymous(s3: dict, bucket: str, name: str) -> requests.Response:
    return requests.get(f"{s3['DJANGOOPS_S3_ENDPOINT']}/{bucket}/static/{name}", timeout=10)


def test_a_release_is_read_without_keys_cached_by_name_and_a_rerun_changes_nothing(publish, client, s3, bucket):
    first = publish(1)
    assert first.rc == 0, first.output[-4000:]
    assert keys(client, bucket) == {hashed(1), "css/site.css", SHARED, "staticfiles.json"}
    answer = anonymous(s3, bucket, hashed(1))
    assert answer.status_code == 200 and answer.text == "body { --release: 1; }"
    assert answer.headers["Content-Type"].startswith("text/css")
    assert "immutable" in answer.headers["Cache-Control"]
    # the unhashed copy changes with every release: cached briefly, never immutable
    assert "immutable" not in anonymous(s3, bucket, "css/site.css").headers["Cache-Control"]
    # only the static files' prefix is public: the index beside them is not
    assert requests.get(f"{s3['DJANGOOPS_S3_ENDPOINT']}/{bucket}/.djangoops/static-releases.json",
                        timeout=10).status_code == 403
    again = publish(1)
    assert again.rc == 0, again.output[-4000:]
    assert again.changed == 0, again.changed_tasks
    checked = publish(1, "--check")
    assert checked.rc == 0 and checked.changed == 0, checked.output[-4000:]
    assert s3["DJANGOOPS_S3_SECRET_KEY"] not in first.output + again.output


def test_releases_are_added_next_to_each_other_then_pruned_to_the_kept_ones(publish, client, s3, bucket):
    for release in (1, 2):
        result = publish(release)
        assert result.rc == 0, result.output[-4000:]
    # both releases' pages find their files during a rollout from 1 to 2
    assert anonymous(s3, bucket, hashed(1)).status_code == 200
    assert anonymous(s3, bucket, hashed(2)).status_code == 200

    # --check says a change is due and makes none
    before = keys(client, bucket)
    checked = publish(3, "--check")
    assert checked.rc == 0 and checked.changed > 0, checked.output[-4000:]
    assert keys(client, bucket) == before

    third = publish(3)
    assert third.rc == 0, third.output[-4000:]
    assert "pruned 1.0-orange (1 files)" in " ".join(third.output.split())
    assert keys(client, bucket) == {hashed(2), hashed(3), "css/site.css", SHARED, "staticfiles.json"}
    assert anonymous(s3, bucket, hashed(1)).status_code in (403, 404)
    assert anonymous(s3, bucket, SHARED).status_code == 200

    # Release 2 deployed again (a rollback by deploy): it becomes the newest, so the next
    # release prunes 3, not 2, which was serving.
    back = publish(2)
    assert back.rc == 0 and back.changed > 0, back.output[-4000:]
    assert keys(client, bucket) >= {hashed(2), hashed(3)}
    fourth = publish(4)
    assert fourth.rc == 0, fourth.output[-4000:]
    assert keys(client, bucket) == {hashed(2), hashed(4), "css/site.css", SHARED, "staticfiles.json"}
    index = json.loads(client.get_object(Bucket=bucket, Key=".djangoops/static-releases.json")["Body"].read())
    assert [entry["release"] for entry in index["releases"]] == ["2.0-orange", "4.0-orange"]


def test_a_url_that_is_not_where_the_files_are_fails_naming_it(publish, s3, bucket):
    result = publish(1, static_assets_bucket_url=f"{s3['DJANGOOPS_S3_ENDPOINT']}/{bucket}/elsewhere/")
    assert result.rc != 0
    flat = " ".join(result.output.split())
    assert "static_assets_bucket_url (app_static_url) must be where browsers fetch" in flat, flat[-3000:]
    assert re.search(r"/elsewhere/\S+[.][0-9a-f]{12}[.]css answered 40[34]", flat), flat[-3000:]


@pytest.mark.parametrize(("bad", "variable"), [
    ({"static_assets_bucket_url": "/static/"}, "static_assets_bucket_url"),
    ({"static_assets_bucket_keep_releases": 1}, "static_assets_bucket_keep_releases"),
    ({"static_assets_bucket_prefix": "/static/"}, "static_assets_bucket_prefix"),
    ({"static_assets_bucket": "Static_Files"}, "static_assets_bucket"),
], ids=["relative url", "keep one", "prefix with slashes", "bucket name"])
def test_bad_input_stops_before_any_change(bad, variable, publish, client, bucket):
    before = {b["Name"] for b in client.list_buckets()["Buckets"]}
    result = publish(1, **bad)
    assert result.rc != 0
    assert variable in result.output, result.output[-3000:]
    assert result.changed == 0
    assert {b["Name"] for b in client.list_buckets()["Buckets"]} == before
    client.create_bucket(Bucket=bucket)  # for the fixture's removal
