"""The bucket role against a real S3 server: versitygw from tests/harness/s3-up.

Every check asks the server itself through boto3 (the client django-storages uses):
the bucket takes and gives back an object, --check makes nothing, absent keeps a
bucket with objects unless told otherwise, and bad input stops before any change.
"""

from __future__ import annotations

import re
import socket
import uuid

import botocore.exceptions
import pytest

from ansible_run import PlaybookResult, playbook

PLAYBOOK = "tests/integration/playbooks/bucket.yml"


@pytest.fixture
def name(client):
    """A bucket name of this test alone; the bucket and its objects are removed afterwards."""
    bucket = f"djangoops-test-{uuid.uuid4().hex[:12]}"
    yield bucket
    if exists(client, bucket):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=item["Key"])
        client.delete_bucket(Bucket=bucket)


@pytest.fixture
def run(s3):
    """run("--check", bucket_name=...) -> the test playbook with the server's endpoint and keys."""

    def _run(*flags: str, **extra_vars) -> PlaybookResult:
        return playbook(*flags, PLAYBOOK, extra_vars=extra_vars, env=s3, timeout=300)

    return _run


def exists(client, bucket: str) -> bool:
    try:
        client.head_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchBucket"):
            return False
        raise
    return True


def buckets(client) -> set[str]:
    return {b["Name"] for b in client.list_buckets()["Buckets"]}


def with_an_object(client, bucket: str) -> str:
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="media/photo.txt", Body=b"kept")
    return "media/photo.txt"


def assert_no_secret(result: PlaybookResult, s3: dict) -> None:
    assert s3["DJANGOOPS_S3_SECRET_KEY"] not in result.output


def test_makes_the_bucket_that_takes_and_gives_back_an_object(run, client, s3, name):
    result = run(bucket_name=name)
    assert result.rc == 0, result.output[-3000:]
    assert result.changed == 1, result.recap
    assert_no_secret(result, s3)
    client.put_object(Bucket=name, Key="media/hello.txt", Body=b"hello from the bucket role")
    body = client.get_object(Bucket=name, Key="media/hello.txt")["Body"].read()
    assert body == b"hello from the bucket role"


def test_a_second_run_changes_nothing(run, client, name):
    assert run(bucket_name=name).rc == 0
    again = run(bucket_name=name)
    assert again.rc == 0, again.output[-3000:]
    assert again.changed == 0, again.recap
    assert exists(client, name)


def test_check_mode_reports_the_bucket_and_makes_nothing(run, client, name):
    before = buckets(client)
    result = run("--check", bucket_name=name)
    assert result.rc == 0, result.output[-3000:]
    assert result.changed == 1, result.recap  # reported, as a real run would make it
    assert f"bucket {name} does not exist" in result.output
    assert not exists(client, name)
    assert buckets(client) == before


def test_absent_refuses_a_bucket_that_holds_objects(run, client, name):
    key = with_an_object(client, name)
    result = run(bucket_name=name, bucket_state="absent")
    assert result.rc != 0
    assert "still holds objects" in result.output and "bucket_remove_objects" in result.output, result.output[-3000:]
    assert result.changed == 0, result.recap
    assert client.get_object(Bucket=name, Key=key)["Body"].read() == b"kept"


def test_absent_with_remove_objects_removes_the_bucket_and_its_objects(run, client, name):
    with_an_object(client, name)
    check = run("--check", bucket_name=name, bucket_state="absent", bucket_remove_objects=True)
    assert check.rc == 0 and check.changed == 1, check.output[-3000:]
    assert exists(client, name), "--check removed the bucket"

    result = run(bucket_name=name, bucket_state="absent", bucket_remove_objects=True)
    assert result.rc == 0, result.output[-3000:]
    assert result.changed == 1, result.recap
    assert not exists(client, name)

    again = run(bucket_name=name, bucket_state="absent")
    assert again.rc == 0 and again.changed == 0, again.output[-3000:]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


WRONG_SECRET = "not-the-secret-" + uuid.uuid4().hex
BAD_INPUTS = {
    "unreachable endpoint": (lambda: {"bucket_endpoint_url": f"http://127.0.0.1:{_closed_port()}"},
                             "bucket_endpoint_url"),
    "endpoint not http": (lambda: {"bucket_endpoint_url": "s3.example.com"}, "bucket_endpoint_url"),
    "empty secret key": (lambda: {"bucket_secret_key": ""}, "bucket_secret_key"),
    "empty access key": (lambda: {"bucket_access_key": ""}, "bucket_access_key"),
    "wrong secret key": (lambda: {"bucket_secret_key": WRONG_SECRET}, "bucket_secret_key"),
    "unknown access key": (lambda: {"bucket_access_key": "NOSUCHKEY0123456789"}, "bucket_access_key"),
    "upper case name": (lambda: {"bucket_name": "Media_Files"}, "bucket_name"),
    "name too short": (lambda: {"bucket_name": "ab"}, "bucket_name"),
}


@pytest.mark.parametrize(("bad", "variable"), list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
@pytest.mark.parametrize("state", ["present", "absent"])
def test_bad_input_stops_before_any_change(bad, variable, state, run, client, s3, name):
    if state == "absent":
        with_an_object(client, name)  # removal must not start either
    before = buckets(client)
    result = run(**{"bucket_name": name, "bucket_state": state, "bucket_remove_objects": True, **bad()})
    assert result.rc != 0
    assert variable in result.output, result.output[-3000:]
    assert result.changed == 0, result.recap
    assert not re.search(r"^changed: \[", result.output, re.MULTILINE)
    assert buckets(client) == before
    assert_no_secret(result, s3)
    assert WRONG_SECRET not in result.output
