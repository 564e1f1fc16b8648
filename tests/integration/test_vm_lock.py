"""One run at a time on the VM lab: the run lock, a file on the first database host,
/var/lib/djangoops/djangoops-blog.lock (playbooks/tasks/lock.yml, lookup djangoops.stack.run_lock).

The module takes the session's lab as deployed (conftest.lab_deployed; it runs after
test_vm_lab and before test_vm_day2, conftest._LAB_ORDER). Two deploys started together:
one takes the lock, the other is refused naming the winner's process, before any change, and
the winner converges with no change. Then, with `deploy.yml --tags service` (the lock, the
checks and NGINX's site: a lock test need not redeploy the app): a lock file another holder
left is refused and left as it is, -e force_unlock=true breaks it, a stale one is taken
over, --check takes none, and the lock of a run killed on this controller is taken over at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from ansible_run import REPO, PlaybookResult
from concurrent_runs import ended, start_playbook
from waiting import eventually

pytestmark = pytest.mark.slow

LAB_DIR = REPO / "inventories" / "lab"
LOCK = "/var/lib/djangoops/djangoops-blog.lock"
WHERE = f"the run lock {LOCK} on db"


def flat(output: str) -> str:
    """The output with its wrapped lines joined (the YAML callback folds long messages)."""
    return " ".join(output.split())


def db(command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "exec", "djangoops-lab-db", "sh", "-c", command],
                          capture_output=True, text=True, check=check)


def lock_text() -> str | None:
    got = db(f"cat {LOCK}", check=False)
    return got.stdout if got.returncode == 0 else None


def put_lock(**record) -> str:
    text = json.dumps({"holder": "someone-else@ctl2", "host": "ctl2", "pid": 4242, "playbook": "upgrade.yml",
                       "since": int(time.time()), "timeout": 600, **record})
    db(f"mkdir -p /var/lib/djangoops && printf '%s\\n' '{text}' > {LOCK}")
    return lock_text()


@pytest.fixture(scope="module")
def lab(lab_deployed, lab_run):
    db(f"rm -f {LOCK}")
    back = lab_run("deploy.yml", deploy_build_release=False)
    assert back.rc == 0, back.output[-6000:]
    assert lock_text() is None, "the deploy left its lock behind"
    return lab_run


@pytest.fixture(scope="module")
def quick(lab):
    """deploy.yml --tags service on the lab: the checks, the lock and NGINX's site."""

    def _run(*flags: str, **extra_vars) -> PlaybookResult:
        return lab("deploy.yml", "--tags", "service", *flags, deploy_build_release=False, **extra_vars)

    return _run


def start(lab_env: dict, lab_dirs: dict, log, **extra_vars) -> subprocess.Popen:
    return start_playbook(["-i", str(LAB_DIR), "deploy.yml", "-e", json.dumps({**lab_dirs, **extra_vars})], log, lab_env)


def test_two_deploys_started_together_one_is_refused_naming_the_other(lab, lab_env, lab_dirs, tmp_path):
    logs = [tmp_path / "deploy-a.log", tmp_path / "deploy-b.log"]
    began = time.monotonic()
    procs = [start(lab_env, lab_dirs, log, deploy_build_release=False) for log in logs]
    took = ended(procs, began)
    results = [PlaybookResult(p.returncode, log.read_text()) for p, log in zip(procs, logs)]
    refused = [i for i, r in enumerate(results) if r.rc != 0]
    assert len(refused) == 1, [(r.rc, r.output[-2000:]) for r in results]
    loser, winner = refused[0], 1 - refused[0]
    won, lost = results[winner], results[loser]
    assert won.changed == 0, won.changed_tasks
    message = flat(lost.output)
    assert f"Another run holds {WHERE}: " in message, message[-3000:]
    assert f"(pid {procs[winner].pid}) running deploy.yml" in message, message[-3000:]
    assert "-e force_unlock=true" in message
    assert lost.changed == 0, lost.recap
    assert took[procs[loser].pid] < took[procs[winner].pid], took
    assert lock_text() is None


def test_a_lock_someone_else_holds_is_refused_and_left_alone(quick):
    before = put_lock()
    refused = quick()
    assert refused.rc != 0
    message = flat(refused.output)
    assert f"Another run holds {WHERE}: someone-else@ctl2 (pid 4242) running upgrade.yml, since " in message, \
        message[-3000:]
    assert lock_text() == before


def test_check_mode_reads_the_lock_and_takes_none(quick):
    put_lock()
    assert quick("--check").rc != 0
    db(f"rm -f {LOCK}")
    free = quick("--check")
    assert free.rc == 0, free.output[-5000:]
    assert "Check mode, nothing taken" in flat(free.output)
    assert lock_text() is None


def test_force_unlock_breaks_a_held_lock(quick):
    put_lock()
    forced = quick(force_unlock=True)
    assert forced.rc == 0, forced.output[-5000:]
    assert f"force_unlock: broke {WHERE}, held by someone-else@ctl2" in flat(forced.output)
    assert lock_text() is None


def test_a_stale_lock_is_taken_over(quick):
    put_lock(since=int(time.time()) - 120, timeout=60)
    again = quick()
    assert again.rc == 0, again.output[-5000:]
    assert "is stale (older than its 60 s timeout" in flat(again.output)
    assert lock_text() is None


def test_a_bad_timeout_is_refused_by_name_before_any_change(quick):
    bad = quick(deploy_lock_timeout="soon")
    assert bad.rc != 0 and "deploy_lock_timeout" in flat(bad.output)
    assert lock_text() is None


def test_the_lock_of_a_killed_run_on_this_controller_is_taken_over_at_once(lab, lab_env, lab_dirs, quick, tmp_path):
    proc = start(lab_env, lab_dirs, tmp_path / "killed.log", deploy_build_release=False)
    try:
        held = json.loads(eventually(lock_text, timeout=300, interval=0.5))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert held["pid"] == proc.pid
    again = quick()
    assert again.rc == 0, again.output[-5000:]
    out = flat(again.output)
    assert f"was left by {held['holder']} (pid {proc.pid}) running deploy.yml" in out, out[-3000:]
    assert lock_text() is None
    # what the killed run may have left half done, put right
    assert lab("deploy.yml", deploy_build_release=False).rc == 0
