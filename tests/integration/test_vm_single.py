"""The article's one-server start: the same deploy.yml with one lab host in every group."""

from __future__ import annotations

import uuid

import pytest
import requests

import vm_helpers as vm

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
