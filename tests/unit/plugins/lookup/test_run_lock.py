"""djangoops.stack.run_lock: this run's record and the verdict on a lock found, with real
processes (this one, and a child that has ended) standing for runs. The lock itself (a file
on a VM, a Lease) is tested end to end: tests/kubernetes/test_k8s_lock.py and
tests/integration/test_vm_lock.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import pytest
from ansible.errors import AnsibleLookupError

from ansible_collections.djangoops.stack.plugins.lookup import run_lock as lk

NOW = 1_800_000_000.0


class _Lookup(lk.LookupModule):
    """The plugin with its documented defaults (outside Ansible's plugin loader)."""

    DEFAULTS = {"force": False, "where": "the run lock", "found_mtime": 0, "now": NOW}

    def set_options(self, task_keys=None, var_options=None, direct=None):
        self._given = {**self.DEFAULTS, **(direct or {})}

    def get_option(self, option, hostvars=None):
        return self._given[option]


def _lookup(*found, **options):
    return _Lookup().run(list(found), variables={}, **{"playbook": "deploy.yml", "timeout": 3600, **options})[0]


def _ended_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _record(**fields) -> dict:
    return {"holder": "ops@ctl2", "host": "ctl2", "pid": 4242, "started": "x", "run": "ops@ctl2:4242:x",
            "playbook": "upgrade.yml", "since": NOW - 10, "timeout": 600, **fields}


def test_this_run_is_named_by_its_process():
    got = _lookup()
    me = got["record"]
    # outside a worker the run is this process
    assert me["pid"] == os.getpid()
    assert me["host"] == socket.gethostname() and me["holder"].endswith("@" + socket.gethostname())
    assert me["started"] and me["started"] == lk.process_started(os.getpid())
    assert me["since"] == int(NOW) and me["since_iso"] == "2027-01-15T08:00:00.000000Z" and me["timeout"] == 3600
    assert (got["verdict"], got["reason"], got["found"]) == ("take", "free", None)


def test_no_lock_in_any_shape_is_free():
    for nothing in ("", {}, []):
        assert _lookup(nothing)["reason"] == "free"


def test_a_live_run_elsewhere_holds_it_and_is_named():
    got = _lookup(json.dumps(_record()), where="the run lock /var/lib/djangoops/blog.lock on db1")
    assert (got["verdict"], got["reason"]) == ("held", "held")
    assert got["message"].startswith("Another run holds the run lock /var/lib/djangoops/blog.lock on db1: "
                                     "ops@ctl2 (pid 4242) running upgrade.yml, since ")
    assert "10 s ago" in got["message"] and "stale after 600 s" in got["message"]
    assert "-e force_unlock=true" in got["message"]


def test_a_live_run_on_this_controller_holds_it():
    me = _lookup()["record"]
    other = {**me, "run": "another", "playbook": "scale.yml"}  # this process stands for the other run
    assert _lookup(other)["verdict"] == "held"


def test_the_lock_of_an_ended_run_on_this_controller_is_taken_at_once():
    pid = _ended_pid()
    got = _lookup(_record(host=socket.gethostname(), pid=pid, started="", run="gone"))
    assert (got["verdict"], got["reason"]) == ("take", "gone")
    assert f"(pid {pid})" in got["message"] and "has ended" in got["message"]


def test_a_reused_process_id_is_not_the_run():
    # this process's id with another start time: a later process got the id of the run that held it
    got = _lookup(_record(host=socket.gethostname(), pid=os.getpid(), started="Thu Jan  1 00:00:00 1970"))
    assert got["reason"] == "gone"


def test_a_stale_lock_is_taken_over_and_force_takes_any():
    stale = _lookup(_record(since=NOW - 601))
    assert (stale["verdict"], stale["reason"]) == ("take", "stale")
    assert stale["message"].startswith("The run lock, held by ops@ctl2 (pid 4242) running upgrade.yml")
    assert "older than its 600 s timeout" in stale["message"]
    assert _lookup(_record(since=NOW - 599))["verdict"] == "held"
    forced = _lookup(_record(), force=True)
    assert (forced["verdict"], forced["reason"]) == ("take", "forced")
    assert forced["message"].startswith("force_unlock: broke the run lock, held by ops@ctl2")


def test_this_runs_own_lock_is_ours():
    me = _lookup()["record"]
    assert _lookup(json.dumps(me))["reason"] == "ours"


def test_a_lease_made_elsewhere_is_read_from_its_spec():
    lease = {"kind": "Lease", "metadata": {"name": "x", "creationTimestamp": "2027-01-15T07:00:00Z"},
             "spec": {"holderIdentity": "someone-else", "renewTime": "2027-01-15T07:59:00.000000Z",
                      "leaseDurationSeconds": 30}}
    got = _lookup(lease)
    assert got["found"]["holder"] == "someone-else" and got["found"]["since"] == NOW - 60
    assert got["reason"] == "stale"
    lease["spec"]["leaseDurationSeconds"] = 120
    got = _lookup(lease)
    assert got["verdict"] == "held" and "someone-else, since 2027-01-15T07:59:00" in got["message"]


def test_a_lease_of_ours_keeps_its_record_and_follows_its_spec():
    record = _record()
    lease = {"kind": "Lease", "metadata": {"annotations": {lk.LEASE_ANNOTATION: json.dumps(record)}},
             "spec": {"holderIdentity": "ops@ctl2 pid 4242 upgrade.yml",
                      "renewTime": lk.iso(NOW - 5000), "leaseDurationSeconds": 600}}
    got = _lookup(lease)
    assert got["found"]["pid"] == 4242 and got["reason"] == "stale"


def test_a_lock_file_without_a_record_is_held_since_its_time():
    got = _lookup("garbage", found_mtime=NOW - 30)
    assert got["verdict"] == "held" and got["found"]["since"] == NOW - 30
    assert "an unknown holder" in got["message"]
    assert _lookup("garbage", found_mtime=NOW - 3601)["reason"] == "stale"


@pytest.mark.parametrize("timeout", [0, -5])
def test_a_timeout_below_one_second_is_refused(timeout):
    with pytest.raises(AnsibleLookupError, match="timeout"):
        _lookup(timeout=timeout)


def test_times_are_read_as_utc():
    assert lk.parse_time("2027-01-15T08:00:00Z") == NOW
    assert lk.parse_time("2027-01-15T08:00:00.000000Z") == NOW
    assert lk.parse_time("") is None and lk.parse_time("soon") is None
    assert abs(lk.parse_time(lk.iso(time.time())) - time.time()) < 2
