"""kubectl helpers for the tests against the cluster from tests/cluster/up."""

from __future__ import annotations

import json
import os
import subprocess
import time

KUBECTL = os.environ.get("KUBECTL", "/var/cache/djangoops/k3s/kube-v1.34.4/bin/kubectl")


def kubectl(*args: str, stdin: str | None = None, check: bool = True, timeout: int = 180) -> str:
    proc = subprocess.run([KUBECTL, *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stdout}{proc.stderr}")
    return proc.stdout


def kubectl_json(*args: str) -> dict:
    return json.loads(kubectl(*args, "-o", "json"))


def eventually(check, timeout: float, interval: float = 2.0):
    """Call check() until it returns a truthy value or the time is up; return that value."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (AssertionError, OSError, subprocess.SubprocessError, ValueError) as exc:
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout} s; last error: {last_error}")
