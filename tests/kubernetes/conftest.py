"""The cluster from tests/cluster/up: KUBECONFIG must point at it (tests/run exports it)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from k8s import kubectl  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def cluster() -> None:
    if not os.environ.get("KUBECONFIG"):
        pytest.fail("KUBECONFIG is not set: run `eval \"$(tests/cluster/up)\"` first (tests/run does)")
    kubectl("get", "--raw", "/readyz")
