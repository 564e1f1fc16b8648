"""kubectl helpers for the tests against the cluster from tests/cluster/up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from waiting import eventually  # noqa: E402,F401  (the one wait helper, re-exported for the tests here)

KUBECTL = os.environ.get("KUBECTL", "/var/cache/djangoops/k3s/kube-v1.34.4/bin/kubectl")


class KubectlError(subprocess.SubprocessError):
    """kubectl failed (eventually() takes it as "not yet": the object may not exist yet)."""


def kubectl(*args: str, stdin: str | None = None, check: bool = True, timeout: int = 180) -> str:
    proc = subprocess.run([KUBECTL, *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise KubectlError(f"kubectl {' '.join(args)} failed: {proc.stdout}{proc.stderr}")
    return proc.stdout


def kubectl_json(*args: str) -> dict:
    return json.loads(kubectl(*args, "-o", "json"))
