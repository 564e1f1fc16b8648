"""One run at a time on Kubernetes: the run lock, a coordination.k8s.io/v1 Lease in the app's
namespace (playbooks/tasks/lock.yml, lookup djangoops.stack.run_lock).

On the session's one deployment (conftest.e2e_site, shared with test_k8s_deploy and
test_k8s_backup, which run after this module): its deploy took the lease and gave it
back; two deploys started together (one takes the lease, the other is refused, naming the
winner's process, before any change, and the winner converges with no change); a lease
another holder left is refused and left as it is; -e force_unlock=true breaks it; an
expired one is taken over; and the lease of a run killed on this controller is taken over
at once. The refused and lease tests run scale.yml with the replicas the deploy set (no
change): a lock test must not wait for a rollout. (That --check takes no lease on a free run is test_k8s_deploy's check-mode test.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from k8s import E2E_NS, E2E_VARS, KubectlError, eventually, kubectl, kubectl_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from ansible_run import PlaybookResult, playbook  # noqa: E402
from concurrent_runs import ended, start_playbook  # noqa: E402

NS = E2E_NS
APP = "djangoops-blog"
LEASE = f"{APP}-run-lock"
# The image is in the registry already (the session's first deploy pushed it): the deploys
# here only apply it, so the winner of two converges with no change and a kill never lands
# in a build.
DEPLOY_VARS = {**E2E_VARS, "deploy_build_release": False}
SCALE_VARS = {"target": "kubernetes", "kubernetes_namespace": NS, "scale_replicas": 3}


def flat(output: str) -> str:
    """The output with its wrapped lines joined (the YAML callback folds long messages)."""
    return " ".join(output.split())


def deploy(*flags: str, **extra) -> PlaybookResult:
    return playbook(*flags, "deploy.yml", extra_vars={**DEPLOY_VARS, **extra}, timeout=1500)


def scale(**extra) -> PlaybookResult:
    return playbook("playbooks/scale.yml", extra_vars={**SCALE_VARS, **extra}, timeout=600)


def start(path: str, extra_vars: dict, log: Path) -> subprocess.Popen:
    """ansible-playbook in the background (its own process group), output to `log`."""
    return start_playbook([path, "-e", json.dumps(extra_vars)], log)


def lease() -> dict | None:
    try:
        return kubectl_json("-n", NS, "get", "lease", LEASE)
    except KubectlError:
        return None


def put_lease(holder: str, since: datetime, duration: int) -> dict:
    """A lease as another tool would leave it: holderIdentity, times and duration, no record of ours."""
    stamp = since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    kubectl("-n", NS, "delete", "lease", LEASE, "--ignore-not-found")
    kubectl("-n", NS, "create", "-f", "-", stdin=json.dumps({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": LEASE, "namespace": NS},
        "spec": {"holderIdentity": holder, "acquireTime": stamp, "renewTime": stamp,
                 "leaseDurationSeconds": duration}}))
    return kubectl_json("-n", NS, "get", "lease", LEASE)


def generation() -> int:
    return kubectl_json("-n", NS, "get", "deployment", APP)["metadata"]["generation"]


@pytest.fixture(scope="module")
def deployed(e2e_site):
    assert lease() is None, "a deploy left its lease behind"
    return e2e_site


def test_a_deploy_takes_the_lease_and_gives_it_back(deployed):
    out = flat(deployed["first"].output)
    assert f"Took the run lock (Lease {NS}/{LEASE}) for " in out, out[-3000:]
    assert lease() is None


def test_two_deploys_started_together_one_is_refused_naming_the_other(deployed, tmp_path):
    logs = [tmp_path / "deploy-a.log", tmp_path / "deploy-b.log"]
    began = time.monotonic()
    procs = [start("deploy.yml", DEPLOY_VARS, log) for log in logs]
    took = ended(procs, began)
    results = [PlaybookResult(p.returncode, log.read_text()) for p, log in zip(procs, logs)]
    refused = [i for i, r in enumerate(results) if r.rc != 0]
    assert len(refused) == 1, [(r.rc, r.output[-2000:]) for r in results]
    loser, winner = refused[0], 1 - refused[0]
    won, lost = results[winner], results[loser]
    assert won.rc == 0, won.output[-5000:]
    assert won.changed == 0, won.changed_tasks
    message = flat(lost.output)
    # the holder named is the other run: its user@host and its ansible-playbook process
    assert f"Another run holds the run lock (Lease {NS}/{LEASE}): " in message, message[-3000:]
    assert f"(pid {procs[winner].pid}) running deploy.yml" in message, message[-3000:]
    assert "-e force_unlock=true" in message
    # refused before any change: nothing changed, and long before the winner ended
    assert lost.changed == 0, lost.recap
    assert took[procs[loser].pid] < took[procs[winner].pid], took
    print(f"refused after {took[procs[loser].pid]:.1f} s, the winner ended after {took[procs[winner].pid]:.1f} s")
    assert lease() is None


def test_a_lease_someone_else_holds_is_refused_and_left_alone(deployed):
    before = put_lease("someone-else", datetime.now(timezone.utc), 600)
    gen = generation()
    began = time.monotonic()
    refused = scale()
    took = time.monotonic() - began
    assert refused.rc != 0, refused.output[-3000:]
    message = flat(refused.output)
    assert f"Another run holds the run lock (Lease {NS}/{LEASE}): someone-else, since " in message, message[-3000:]
    assert "stale after 600 s" in message and "-e force_unlock=true" in message
    after = lease()
    assert after is not None and after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert generation() == gen
    print(f"refused after {took:.1f} s")


def test_force_unlock_breaks_a_held_lease(deployed):
    put_lease("someone-else", datetime.now(timezone.utc), 600)
    forced = scale(force_unlock=True)
    assert forced.rc == 0, forced.output[-5000:]
    assert f"force_unlock: broke the run lock (Lease {NS}/{LEASE}), held by someone-else" in flat(forced.output)
    assert lease() is None  # taken, then released at the end


def test_an_expired_lease_is_taken_over(deployed):
    put_lease("someone-else", datetime.now(timezone.utc) - timedelta(seconds=120), 60)
    again = scale()
    assert again.rc == 0, again.output[-5000:]
    out = flat(again.output)
    assert f"The run lock (Lease {NS}/{LEASE}), held by someone-else, since " in out, out[-3000:]
    assert "is stale (older than its 60 s timeout" in out
    assert lease() is None


def test_a_bad_timeout_is_refused_by_name_before_any_change(deployed):
    bad = scale(deploy_lock_timeout="soon")
    assert bad.rc != 0
    assert "deploy_lock_timeout" in flat(bad.output), bad.output[-3000:]
    assert lease() is None


def test_check_mode_reads_the_lease_and_takes_none(deployed):
    put_lease("someone-else", datetime.now(timezone.utc), 600)
    refused = deploy("--check")
    assert refused.rc != 0 and "someone-else" in flat(refused.output), refused.output[-3000:]
    assert refused.changed == 0, refused.recap
    assert lease()["spec"]["holderIdentity"] == "someone-else"
    kubectl("-n", NS, "delete", "lease", LEASE)


def test_the_lease_of_a_killed_run_on_this_controller_is_taken_over_at_once(deployed):
    with tempfile.TemporaryDirectory() as tmp:
        # the image is built already: the kill must not land in a build
        proc = start("deploy.yml", DEPLOY_VARS, Path(tmp) / "killed.log")
        try:
            held = eventually(lambda: lease(), timeout=300, interval=0.5)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert f"pid {proc.pid}" in held["spec"]["holderIdentity"], held["spec"]
    again = scale()
    assert again.rc == 0, again.output[-5000:]
    out = flat(again.output)
    assert f"was left by {held['spec']['holderIdentity'].split(' pid ')[0]} (pid {proc.pid}) running deploy.yml" in out, \
        out[-3000:]
    assert "a run on this controller that has ended" in out
    assert lease() is None
