"""The cluster from tests/cluster/up: KUBECONFIG must point at it (tests/run exports it)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from k8s import E2E_NS, E2E_VARS, fresh_deployment, kubectl  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from ansible_run import playbook  # noqa: E402
from module_order import last_in_order  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def cluster() -> None:
    if not os.environ.get("KUBECONFIG"):
        pytest.fail("KUBECONFIG is not set: run `eval \"$(tests/cluster/up)\"` first (tests/run does)")
    kubectl("get", "--raw", "/readyz")


# The modules that share the session's deployment (e2e_site) run last, in this order,
# whatever their names: the run lock (its deploys only apply the image the first one
# pushed), the deploy's checks (one rebuilds that image's tag with other code), then
# backups and restores, whose last test tears the site down with its data.
_E2E_ORDER = ("test_k8s_lock", "test_k8s_deploy", "test_k8s_backup")


def pytest_collection_modifyitems(items):
    last_in_order(items, _E2E_ORDER)


@pytest.fixture(scope="session")
def e2e_site():
    """One deploy of the production settings (k8s.E2E_VARS) for the whole session: the tests
    of _E2E_ORDER's modules read and change it; each test leaves it converged to those
    settings (one that changes a setting puts it back), but test_k8s_backup's last, which
    tears it down."""
    with fresh_deployment(E2E_NS, lambda: playbook("deploy.yml", extra_vars=E2E_VARS, timeout=1500)) as (first, address):
        yield {"first": first, "url": address}


@pytest.fixture(scope="session")
def ee_image() -> str:
    """The execution environment image (tests/ee/build.py; tests/integration/awx_job.py)."""
    from awx_job import ee_image_tag

    return ee_image_tag()
