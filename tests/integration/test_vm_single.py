"""The article's one-server start: the same deploy.yml with one lab host in every group."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest
import requests

import vm_helpers as vm
from ansible_run import playbook
from loadgen import Load

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def single():
    vm.lab_down(vm.LAB_SINGLE)
    up = vm.lab_up(vm.LAB_SINGLE)
    assert up.rc == 0, up.output[-6000:]
    result = vm.deploy(vm.LAB_SINGLE)
    assert result.rc == 0, result.output[-6000:]
    yield result
    if not vm.keep_lab():
        vm.lab_down(vm.LAB_SINGLE)


def test_single_host_converges(single):
    assert "The app answers at http://127.0.0.1:8081/" in single.output
    assert set(single.recap) == {"single", "localhost"}


def test_single_host_second_run_changes_nothing(single):
    again = vm.deploy(vm.LAB_SINGLE)
    assert again.rc == 0, again.output[-6000:]
    assert again.changed == 0, again.recap


def test_single_host_serves_everything(single):
    host = vm.ssh_host(vm.SINGLE_HOSTS["single"][1])
    for service in ("postgresql", vm.APP_SERVICE, "nginx"):
        assert host.service(service).is_running, service
    r = requests.get(f"{vm.SINGLE_URL}/", timeout=10)
    assert r.status_code == 200 and r.headers["X-Served-By"] == "single"
    title = f"One server {uuid.uuid4().hex[:8]}"
    vm.admin_create_post(vm.SINGLE_URL, title, "The article's starting point.")
    assert title in requests.get(f"{vm.SINGLE_URL}/", timeout=10).text


# -- the article's journey: the one-server site moves to Kubernetes -----------------------
# Runs in the Kubernetes phase of tests/run (beside the cluster tests, with their cluster:
# KUBECONFIG set), on this module's one-server site.

MIGRATE_NS = "djangoops-migrate"


def _single_sql(query: str) -> str:
    out = subprocess.run(["docker", "exec", vm.SINGLE_HOSTS["single"][0], "runuser", "-u", "postgres", "--",
                          "psql", "-XtA", "blog", "-c", query], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _cluster_sql(query: str) -> str:
    return subprocess.run([os.environ.get("KUBECTL", "kubectl"), "-n", MIGRATE_NS, "exec", "djangoops-blog-postgres-0",
                           "-c", "postgresql", "--", "psql", "-U", "postgres", "-d", "blog", "-XtAc", query],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def migrate_vars(s3, remove_bucket):
    if not os.environ.get("KUBECONFIG"):
        pytest.skip("the cluster of the Kubernetes phase (tests/run) is not here")
    bucket = f"djangoops-migrate-{uuid.uuid4().hex[:8]}"
    # the cluster pulls from the registry of the test harness (the main lab inventory names it too)
    yield {"kubernetes_namespace": MIGRATE_NS, "migrate_confirm": "blog", "backup_bucket": bucket,
           "image_registry": "127.0.0.1:5000/djangoops",
           "backup_endpoint_url": os.environ.get("DJANGOOPS_S3_CLUSTER_ENDPOINT") or "http://10.213.99.1:7070",
           "backup_access_key": s3["DJANGOOPS_S3_ACCESS_KEY"], "backup_secret_key": s3["DJANGOOPS_S3_SECRET_KEY"]}
    remove_bucket(bucket)
    subprocess.run([os.environ.get("KUBECTL", "kubectl"), "delete", "namespace", MIGRATE_NS, "--ignore-not-found",
                    "--wait=false"], capture_output=True, check=False)


def test_the_one_server_site_moves_to_kubernetes_under_load_and_back(single, migrate_vars):
    """playbooks/migrate_to_kubernetes.yml under constant GETs of real pages at the site's
    address: none fails; every post written before is on the cluster, the tables equal; the
    same address then serves from the cluster's pods, and a post written through it lands in
    the cluster's database while the VM database is read-only; the way back serves from the
    server again, its database writable."""
    vm.admin_create_post(vm.SINGLE_URL, f"Before the move {uuid.uuid4().hex[:8]}", "Moves with the site.")
    before = _single_sql("select count(*) from blog_post")
    traffic = Load(vm.SINGLE_URL, rate=20, paths=["/"], max_requests=10**6, max_seconds=900).start()
    try:
        with traffic.operation():
            moved = playbook("-i", str(vm.LAB_SINGLE), "playbooks/migrate_to_kubernetes.yml", extra_vars=migrate_vars)
        time.sleep(2)
    finally:
        stats = traffic.stop()
    assert moved.rc == 0, moved.output[-6000:]
    assert stats.failed == 0 and stats.total > 200, stats.summary()
    stats.assert_clean()
    assert "tables and sequences equal on both sides" in moved.output
    assert _cluster_sql("select count(*) from blog_post") == before
    served = {requests.get(f"{vm.SINGLE_URL}/", timeout=10).headers["X-Served-By"] for _ in range(10)}
    assert "single" not in served and all(s.startswith("djangoops-blog-") for s in served), served
    assert _single_sql("show default_transaction_read_only") == "on"
    title = f"After the move {uuid.uuid4().hex[:8]}"
    vm.admin_create_post(vm.SINGLE_URL, title, "Written on the cluster.")
    assert _cluster_sql(f"select count(*) from blog_post where title = '{title}'") == "1"

    back = playbook("-i", str(vm.LAB_SINGLE), "playbooks/migrate_to_kubernetes.yml",
                    extra_vars={**migrate_vars, "migrate_back": True})
    assert back.rc == 0, back.output[-6000:]
    assert {requests.get(f"{vm.SINGLE_URL}/", timeout=10).headers["X-Served-By"] for _ in range(10)} == {"single"}
    assert _single_sql("show default_transaction_read_only") == "off"
