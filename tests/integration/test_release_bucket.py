"""Release archives in a bucket (djangoops.stack.image, entry points publish and fetch)
against the test stack's real S3 server: what a build publishes, a job with no file from an
earlier job (an AWX job, another controller) fetches, checked against the sha256 its
manifest records; a second run changes nothing; a damaged or missing release stops the job,
naming what to do, and leaves nothing behind.

The archives are small stand-ins of the image role's layout (a manifest beside the archive),
so no image is built here; test_vm_day2 publishes real builds and upgrades the lab from
them with an empty release folder.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import uuid
from pathlib import Path

import pytest

from ansible_run import PlaybookResult, playbook

PLAYBOOK = "tests/integration/playbooks/release_bucket.yml"
NAME, VERSION, COLOUR = "gallery", "2.0", "teal"
ARCHIVE = f"{NAME}-{VERSION}-{COLOUR}.tar.gz"
KEY = f"releases/{ARCHIVE}"


def write_release(folder: Path, content: str) -> Path:
    """A release archive and its manifest, as djangoops.stack.image writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / "staging"
    staging.mkdir(exist_ok=True)
    (staging / "release.json").write_text(json.dumps({"name": NAME, "version": VERSION, "colour": COLOUR}))
    (staging / "code.py").write_text(content)
    archive = folder / ARCHIVE
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(staging, arcname=".")
    manifest = {"name": NAME, "version": VERSION, "colour": COLOUR, "python_version": "3.11",
                "fingerprint": hashlib.sha256(content.encode()).hexdigest()}
    (folder / f"{ARCHIVE}.json").write_text(json.dumps(manifest))
    return archive


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def bucket(remove_bucket):
    name = f"djangoops-releases-{uuid.uuid4().hex[:10]}"
    yield name
    remove_bucket(name)


@pytest.fixture
def run(s3, bucket):
    """run("publish" or "fetch", folder, *flags, **extra) -> the playbook's result."""

    def _run(step: str, folder: Path, *flags: str, **extra) -> PlaybookResult:
        return playbook(*flags, PLAYBOOK, env=s3, timeout=300, extra_vars={
            "release_step": step, "image_release_bucket": bucket, "image_release_dir": str(folder),
            "image_name": NAME, "image_version": VERSION, "image_colour": COLOUR, **extra})

    return _run


def test_a_published_release_is_fetched_by_a_job_with_no_files_and_reruns_change_nothing(run, client, s3, bucket,
                                                                                           tmp_path):
    archive = write_release(tmp_path / "build", "print('one')")
    published = run("publish", tmp_path / "build")
    assert published.rc == 0, published.output[-4000:]
    manifest = json.loads(client.get_object(Bucket=bucket, Key=f"{KEY}.json")["Body"].read())
    assert manifest["sha256"] == sha256(archive) and manifest["fingerprint"] == hashlib.sha256(b"print('one')").hexdigest()
    assert client.get_object(Bucket=bucket, Key=KEY)["Body"].read() == archive.read_bytes()
    again = run("publish", tmp_path / "build")
    assert again.rc == 0 and again.changed == 0, again.changed_tasks

    job = tmp_path / "job"  # an AWX job's empty cache
    fetched = run("fetch", job)
    assert fetched.rc == 0 and fetched.changed > 0, fetched.output[-4000:]
    assert (job / ARCHIVE).read_bytes() == archive.read_bytes()
    assert json.loads((job / f"{ARCHIVE}.json").read_text())["fingerprint"] == manifest["fingerprint"]
    assert sorted(p.name for p in job.iterdir()) == [ARCHIVE, f"{ARCHIVE}.json"]
    fetched_again = run("fetch", job)
    assert fetched_again.rc == 0 and fetched_again.changed == 0, fetched_again.changed_tasks
    checked = run("fetch", job, "--check")
    assert checked.rc == 0 and checked.changed == 0, checked.output[-4000:]

    # The same version and colour built again from other code (a rebuilt tag): published over
    # the old one, and a job holding the old copy takes the new one.
    rebuilt = write_release(tmp_path / "build", "print('two')")
    assert run("publish", tmp_path / "build").changed > 0
    refreshed = run("fetch", job)
    assert refreshed.rc == 0 and refreshed.changed > 0, refreshed.output[-4000:]
    assert (job / ARCHIVE).read_bytes() == rebuilt.read_bytes()
    outputs = published.output + again.output + fetched.output + refreshed.output
    assert s3["DJANGOOPS_S3_SECRET_KEY"] not in outputs


def test_a_damaged_archive_in_the_bucket_is_refused_not_kept_and_published_again(run, client, bucket, tmp_path):
    write_release(tmp_path / "build", "print('one')")
    assert run("publish", tmp_path / "build").rc == 0
    client.put_object(Bucket=bucket, Key=KEY, Body=b"not the archive the manifest names")
    job = tmp_path / "job"
    result = run("fetch", job)
    message = " ".join(result.output.split())
    assert result.rc != 0, result.output[-4000:]
    assert "image_release_bucket" in message and "damaged or being published" in message, message[-3000:]
    assert list(job.iterdir()) == [], "neither the download nor a manifest is kept"
    # publishing again replaces the damaged archive (its checksum in the bucket is not its own)
    again = run("publish", tmp_path / "build")
    assert again.rc == 0 and again.changed > 0, again.output[-4000:]
    assert client.get_object(Bucket=bucket, Key=KEY)["Body"].read() == (tmp_path / "build" / ARCHIVE).read_bytes()
    assert run("fetch", job).rc == 0


def test_a_release_not_in_the_bucket_stops_naming_the_bucket_and_what_to_run(run, client, bucket, tmp_path):
    client.create_bucket(Bucket=bucket)
    result = run("fetch", tmp_path / "job")
    message = " ".join(result.output.split())
    assert result.rc != 0, result.output[-4000:]
    assert f"image_release_bucket: no release {NAME} {VERSION} {COLOUR} in s3://{bucket}/{KEY}" in message, message[-3000:]
    assert "playbooks/build.yml" in message and "Nothing was changed" in message
    assert not (tmp_path / "job").exists()


@pytest.mark.parametrize("extra, needle", [
    ({"image_release_bucket_prefix": "/releases"}, "image_release_bucket_prefix '/releases' must be a folder path"),
    ({"image_release_bucket": ""}, "image_release_bucket is empty"),
    ({"image_colour": "Teal Blue"}, "image_colour 'Teal Blue' must be one lowercase word"),
    ({"image_release_bucket": "Not_A_Bucket"}, "bucket_name 'Not_A_Bucket' is not a valid S3 bucket name"),
], ids=["prefix", "no bucket", "colour", "bucket name"])
def test_bad_input_stops_before_any_change(run, client, bucket, tmp_path, extra, needle):
    write_release(tmp_path / "build", "print('one')")
    before = {b["Name"] for b in client.list_buckets()["Buckets"]}
    result = run("publish", tmp_path / "build", **extra)
    assert result.rc != 0 and needle in " ".join(result.output.split()), result.output[-3000:]
    assert {b["Name"] for b in client.list_buckets()["Buckets"]} == before, "no bucket was made"


def test_check_mode_on_a_new_bucket_publishes_nothing_and_fails_nothing(run, client, bucket, tmp_path):
    write_release(tmp_path / "build", "print('one')")
    checked = run("publish", tmp_path / "build", "--check")
    assert checked.rc == 0 and checked.changed > 0, checked.output[-4000:]
    assert bucket not in {b["Name"] for b in client.list_buckets()["Buckets"]}
