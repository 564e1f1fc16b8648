"""A deploy reports a change only when it changed something (djangoops.stack.k8s_changed).

kubernetes.core.k8s compares the object it read before an apply with the one it read
after its wait, status included, so a Deployment whose pods' readiness moved meanwhile
read as changed though nothing was: the likely cause of a second deploy reporting
changed=1 in CI (stop 24) right after the first, while the pods settled. The roles
apply with diff on and let the filter read what differed; this applies a Deployment
again, unchanged, right after one of its pods was deleted, so its status moves during the
wait (tests/kubernetes/playbooks/status_moves.yml)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from k8s import kubectl, kubectl_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from ansible_run import playbook  # noqa: E402

NS = "djangoops-status"
PLAYBOOK = "tests/kubernetes/playbooks/status_moves.yml"


def apply(note: str = "first"):
    result = playbook(PLAYBOOK, extra_vars={"status_moves_namespace": NS, "status_moves_note": note}, timeout=300)
    assert result.rc == 0, result.output[-3000:]
    differed = [line.split("status-moves differed in:", 1)[1].strip(" '\"") for line in result.output.splitlines()
                if "status-moves differed in:" in line]
    return result, differed[0] if differed else None


@pytest.fixture(scope="module")
def namespace():
    kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true", "--timeout=120s", timeout=150)
    kubectl("create", "namespace", NS)
    try:
        yield NS
    finally:
        kubectl("delete", "namespace", NS, "--wait=false", check=False)


def test_a_status_that_moves_during_the_wait_is_no_change(namespace):
    first, _ = apply()
    assert first.changed == 1, first.changed_tasks
    pod = kubectl_json("-n", NS, "get", "pods", "-l", "app=status-moves")["items"][0]["metadata"]["name"]
    kubectl("-n", NS, "delete", "pod", pod, "--wait=false")
    again, differed = apply()
    # kubernetes.core saw the status move (its own verdict: changed), and only the status
    assert differed and "status" in differed.split(","), again.output[-3000:]
    assert set(differed.split(",")) <= {"status", "metadata"}, differed
    assert again.changed == 0, again.changed_tasks
    assert kubectl_json("-n", NS, "get", "deployment", "status-moves")["status"].get("readyReplicas") == 1
    # and a change to the manifest still reads as one
    changed, differed = apply(note="second")
    assert changed.changed == 1 and "metadata" in differed.split(","), (differed, changed.changed_tasks)
