"""Shared fixtures: the local registry, the base image the test machine builds, and the one
four-host lab deployment that the VM modules share (test_vm_lab checks it, then
test_vm_day2 upgrades, scales and tears it down)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import boto3
import requests

sys.path.insert(0, str(Path(__file__).parent))

from ansible_run import REPO, PlaybookResult, playbook  # noqa: E402
from module_order import last_in_order  # noqa: E402

REGISTRY = "127.0.0.1:5000"


@pytest.fixture(scope="session")
def registry() -> str:
    """The local registry started by tests/harness/registry-up."""
    try:
        requests.get(f"http://{REGISTRY}/v2/", timeout=5).raise_for_status()
    except requests.RequestException as exc:  # pragma: no cover - harness problem
        pytest.fail(f"local registry not answering on {REGISTRY}: {exc}; run tests/harness/all")
    return REGISTRY


@pytest.fixture(scope="session")
def base_image() -> str:
    """Stand-in for python:3.11-slim-bookworm, built locally (nothing can be pulled)."""
    return os.environ.get("DJANGOOPS_BASE_IMAGE", "djangoops-test/python:3.11-bookworm")


@pytest.fixture(scope="session")
def postgres_image() -> str:
    """Stand-in for the official postgres image, honouring its environment contract."""
    return os.environ.get("DJANGOOPS_POSTGRES_IMAGE", "djangoops-test/postgres:15")


# -- the one lab deployment ------------------------------------------------------------
# Its inventory is the directory inventories/lab (hosts.yml plus the scaled app hosts
# script); lab/lab_up.yml makes it, lab/lab_down.yml removes it; its state (the number of app hosts) lives in a temporary folder
# (DJANGOOPS_LAB_STATE_DIR). The image role's build context and release archives go to
# temporary folders too (image_build_dir, image_release_dir): the default ones are shared
# by every checkout on the machine, and a build elsewhere must not swap the code of the
# releases built here. The lab is removed at the end (DJANGOOPS_KEEP_LAB=1 keeps it).
LAB_DIR = REPO / "inventories" / "lab"

# The modules that share the lab run in this order, whatever their names: the checks of
# the fresh deployment first, then the day-2 operations that change it.
_LAB_ORDER = ("test_vm_lab", "test_vm_lock", "test_vm_day2")


def pytest_collection_modifyitems(items):
    last_in_order(items, _LAB_ORDER)


@pytest.fixture(scope="session")
def lab_env(tmp_path_factory) -> dict:
    return {
        "DJANGOOPS_LAB_STATE_DIR": str(tmp_path_factory.mktemp("lab-state")),
        "DJANGOOPS_BASE_IMAGE": os.environ.get("DJANGOOPS_BASE_IMAGE", "djangoops-test/python:3.11-bookworm"),
    }


@pytest.fixture(scope="session")
def lab_dirs(tmp_path_factory) -> dict:
    """The image role's build context and release archives, for this run alone."""
    root = tmp_path_factory.mktemp("image")
    return {"image_build_dir": str(root / "build"), "image_release_dir": str(root / "releases")}


@pytest.fixture(scope="session")
def lab_run(lab_env, lab_dirs):
    """lab_run("playbooks/upgrade.yml", image_colour="maroon") -> ansible-playbook on the lab;
    flags after the path go before it (lab_run("deploy.yml", "--check", "--diff"))."""

    def _run(path: str, *flags: str, **extra_vars) -> PlaybookResult:
        _run.converged = False  # until this run says otherwise (a timeout raises)
        result = playbook("-i", str(LAB_DIR), *flags, path, extra_vars={**lab_dirs, **extra_vars}, env=lab_env)
        # Whether this run converged the lab to its inventory (lab_put_back reads it).
        _run.converged = (path == "deploy.yml" and not flags and set(extra_vars) <= {"deploy_build_release"}
                          and result.rc == 0)
        return result

    _run.converged = False
    return _run


@pytest.fixture(scope="module")
def lab_put_back(lab_deployed, lab_run):
    """The session's lab as its inventory says (a module's first need): deploy.yml, unless the
    last run on the lab was that very deploy and it passed (test_vm_lock's last test ends
    with one, and test_vm_day2 follows it). Runs started otherwise (concurrent_runs) and
    changes by docker exec are not seen: a test that makes them ends with a lab_run."""
    if not lab_run.converged:
        back = lab_run("deploy.yml")
        assert back.rc == 0, back.output[-6000:]


@pytest.fixture(scope="session")
def lab_deployed(lab_run):
    """A fresh lab (`lab/lab_up.yml`), `deploy.yml` on it (timed), then `deploy.yml` again (timed)."""
    import time

    import vm_helpers as vm

    lab_run("lab/lab_down.yml")
    start = time.monotonic()
    up = lab_run("lab/lab_up.yml")
    vm.trust_lab_ca()  # the lab's CA exists now
    lab_up_s = time.monotonic() - start
    assert up.rc == 0, up.output[-6000:]
    start = time.monotonic()
    first = lab_run("deploy.yml")
    cold = time.monotonic() - start
    assert first.rc == 0, first.output[-6000:]
    start = time.monotonic()
    second = lab_run("deploy.yml")
    noop = time.monotonic() - start
    yield {"first": first, "second": second, "cold_s": cold, "noop_s": noop, "lab_up_s": lab_up_s}
    if not vm.keep_lab():
        lab_run("lab/lab_down.yml")


# -- AWX-style jobs ----------------------------------------------------------------------
@pytest.fixture(scope="session")
def ee_image() -> str:
    """The execution environment image (tests/ee/build.py: built from execution-environment.yml
    the first time, then found by the hash of its inputs)."""
    from awx_job import ee_image_tag

    return ee_image_tag()


# The S3 server of the test stack, for the bucket and static_assets roles' tests.
@pytest.fixture(scope="session")
def s3() -> dict:
    """The S3 server of tests/harness/s3-up (started, and built the first time, if it does not
    run): its credentials file as a dict, DJANGOOPS_S3_ENDPOINT, _ACCESS_KEY, _SECRET_KEY, _REGION."""
    proc = subprocess.run([str(REPO / "tests" / "harness" / "s3-up")], capture_output=True, text=True,
                          timeout=1800, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    env_file = proc.stdout.strip().splitlines()[-1]
    pairs = (line.split("=", 1) for line in open(env_file, encoding="utf-8").read().splitlines() if "=" in line)
    return dict(pairs)


@pytest.fixture(scope="session")
def client(s3):
    return boto3.client(
        "s3",
        endpoint_url=s3["DJANGOOPS_S3_ENDPOINT"],
        aws_access_key_id=s3["DJANGOOPS_S3_ACCESS_KEY"],
        aws_secret_access_key=s3["DJANGOOPS_S3_SECRET_KEY"],
        region_name=s3["DJANGOOPS_S3_REGION"],
    )


@pytest.fixture(scope="session")
def remove_bucket(client):
    """remove_bucket(name): a test's bucket and every object in it, when it exists."""

    def _remove(name: str) -> None:
        try:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
                for item in page.get("Contents", []):
                    client.delete_object(Bucket=name, Key=item["Key"])
            client.delete_bucket(Bucket=name)
        except client.exceptions.NoSuchBucket:
            pass

    return _remove
