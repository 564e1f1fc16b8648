"""Shared fixtures: the local registry and the base image the test machine builds."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).parent))

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
