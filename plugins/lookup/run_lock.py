# Copyright: djangoops.stack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: run_lock
short_description: This run's lock record, and whether it may take a lock another run left
version_added: 0.1.0
author:
  - djangoops.stack developers (@djangoops)
description:
  - The decision half of the collection's run lock (C(playbooks/tasks/lock.yml)), on the controller.
    The tasks read the lock where it lives (a file on a VM, a C(coordination.k8s.io/v1) Lease on
    Kubernetes), pass what they found, and write or refuse as this lookup says.
  - Returns one dictionary. C(record) names this run (its holder C(user@host), the
    C(ansible-playbook) process's id and start time, the playbook, the time and the timeout), to be
    written as the lock. C(verdict) is C(take) or C(held); C(reason) says why (C(free), C(ours),
    C(forced), C(stale), C(gone), C(held)) and C(message) says it to the user.
  - A lock is stale once its holder's timeout has passed since it was taken (C(since) plus its
    C(timeout); for a Lease made elsewhere, C(renewTime) or C(acquireTime) plus
    C(leaseDurationSeconds)). A lock taken by a run on this controller whose C(ansible-playbook)
    process has ended (a run that failed before it could release its lock) is C(gone), and taken
    over at once. O(force) takes any lock.
options:
  _terms:
    description:
      - What was found where the lock lives, or nothing. A record this lookup made (a dictionary,
        or its JSON text as a lock file holds it), or a Lease as C(kubernetes.core.k8s_info) returns it.
    type: list
    elements: raw
    required: false
  playbook:
    description: The playbook this run is, as the lock names it (C(deploy.yml)).
    type: str
    required: true
  timeout:
    description: Seconds after which this run's lock is stale (the playbooks' C(deploy_lock_timeout)).
    type: int
    required: true
  force:
    description: Take the lock whatever holds it (C(-e force_unlock=true)).
    type: bool
    default: false
  where:
    description: Where the lock lives, for the messages.
    type: str
    default: the run lock
  found_mtime:
    description: Epoch seconds of the lock file, for a lock file whose text is no record.
    type: float
    default: 0
  now:
    description: The time to judge by, in epoch seconds (0, the default, is now).
    type: float
    default: 0
"""

EXAMPLES = r"""
- name: Judge the lock file found
  ansible.builtin.set_fact:
    _lock: "{{ lookup('djangoops.stack.run_lock', _found_text, playbook='deploy.yml', timeout=3600) }}"

- name: Refuse when another run holds it
  ansible.builtin.fail:
    msg: "{{ _lock.message }}"
  when: _lock.verdict == 'held'
"""

RETURN = r"""
_raw:
  description: One dictionary with C(record), C(verdict), C(reason), C(message) and C(found) (the lock found, as a record).
  type: list
  elements: dict
"""

import getpass
import json
import multiprocessing
import os
import socket
import subprocess
import time
from datetime import datetime, timezone

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

# Where a Lease made by this collection keeps the record (the spec's fields carry the rest).
LEASE_ANNOTATION = "djangoops.stack/run-lock"


def run_pid():
    """The ansible-playbook process: a task's lookups run in a worker forked from it."""
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None else os.getpid()


def process_started(pid):
    """A process's start time as ps prints it ('' when there is no such process or no ps):
    with the id, it tells a run apart from a later process that got the same id."""
    try:
        out = subprocess.run(["ps", "-o", "lstart=", "-p", str(int(pid))], capture_output=True, text=True,
                             env={**os.environ, "LC_ALL": "C", "TZ": "UTC"}, timeout=10, check=False)
    except (OSError, ValueError, subprocess.SubprocessError):
        return ""
    return " ".join(out.stdout.split())


def process_alive(pid, started):
    """True while the process `pid` that started at `started` runs (on this machine)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    except (TypeError, ValueError, OSError):
        return False
    return not started or process_started(pid) in ("", started)


def iso(epoch):
    return datetime.fromtimestamp(float(epoch), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text):
    """Epoch seconds of a Kubernetes time (RFC 3339, MicroTime or Time), None when absent."""
    if not text:
        return None
    text = str(text).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def controller_user():
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (a container's random uid)
        return f"uid{os.getuid()}"


def this_run(playbook, timeout, now):
    user = controller_user()
    host = socket.gethostname()
    pid = run_pid()
    started = process_started(pid)
    return {
        "holder": f"{user}@{host}",
        "host": host,
        "pid": pid,
        "started": started,
        # unique for the run: the same id and start time never come back on one machine
        "run": f"{user}@{host}:{pid}:{started}",
        "playbook": playbook,
        "since": int(now),
        "since_iso": iso(int(now)),
        "timeout": int(timeout),
    }


def from_lease(lease, default_timeout):
    metadata = lease.get("metadata") or {}
    annotated = (metadata.get("annotations") or {}).get(LEASE_ANNOTATION)
    spec = lease.get("spec") or {}
    if annotated:
        try:
            record = json.loads(annotated)
        except ValueError:
            record = None
        if isinstance(record, dict) and record.get("holder"):
            # the spec is the shared truth: a renewTime moved by hand counts
            since = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
            if since is not None:
                record["since"] = since
            if spec.get("leaseDurationSeconds"):
                record["timeout"] = int(spec["leaseDurationSeconds"])
            return record
    since = (parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
             or parse_time(metadata.get("creationTimestamp")) or 0)
    return {
        "holder": spec.get("holderIdentity") or "an unnamed holder",
        "playbook": "",
        "since": since,
        "timeout": int(spec.get("leaseDurationSeconds") or default_timeout),
    }


def found_record(found, default_timeout, mtime):
    """The lock found, as a record (None for no lock)."""
    if found is None or found == "" or found == {} or found == []:
        return None
    if isinstance(found, list):
        found = found[0] if len(found) == 1 else {"kind": "List"}
    if isinstance(found, dict) and found.get("kind") == "Lease":
        return from_lease(found, default_timeout)
    if isinstance(found, str):
        try:
            found = json.loads(found)
        except ValueError:
            found = None
    if isinstance(found, dict) and found.get("holder"):
        record = dict(found)
        record.setdefault("since", mtime)
        record.setdefault("timeout", default_timeout)
        return record
    return {"holder": "an unknown holder (the lock holds no record)", "playbook": "", "since": mtime,
            "timeout": default_timeout}


def describe(record, now):
    pid = f" (pid {record['pid']})" if record.get("pid") else ""
    playbook = f" running {record['playbook']}" if record.get("playbook") else ""
    since = float(record.get("since") or 0)
    return (f"{record['holder']}{pid}{playbook}, since {iso(since)} ({since:.0f}, {max(now - since, 0):.0f} s ago)")


def judge(found, me, force, where, now):
    """(verdict, reason, message) for this run `me` finding `found` (a record or None)."""
    if found is None:
        return "take", "free", f"Took {where} for {me['holder']} (pid {me['pid']}) running {me['playbook']}."
    if found.get("run") and found.get("run") == me["run"]:
        return "take", "ours", f"This run holds {where} already."
    who = describe(found, now)
    expires = float(found.get("since") or 0) + int(found.get("timeout") or 0)
    if force:
        return "take", "forced", f"force_unlock: broke {where}, held by {who}, and took it."
    if now >= expires:
        return "take", "stale", (f"{where[:1].upper()}{where[1:]}, held by {who}, is stale (older than its {int(found.get('timeout') or 0)} s "
                                 f"timeout, since {iso(expires)}): taking it over.")
    if (found.get("host") == me["host"] and found.get("pid")
            and not process_alive(found["pid"], found.get("started", ""))):
        return "take", "gone", (f"{where[:1].upper()}{where[1:]} was left by {who}, a run on this controller that has ended "
                                f"(it failed or was stopped before releasing it): taking it over.")
    return "held", "held", (
        f"Another run holds {where}: {who}. Nothing was changed. Wait for that run to end (its lock is stale "
        f"after {int(found.get('timeout') or 0)} s, at {iso(expires)}); if that run is gone, "
        f"break the lock with -e force_unlock=true.")


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        timeout = self.get_option("timeout")
        if timeout is None or int(timeout) < 1:
            raise AnsibleLookupError(f"run_lock: timeout must be 1 or more seconds, not {timeout!r}")
        now = float(self.get_option("now") or time.time())
        me = this_run(self.get_option("playbook"), timeout, now)
        if len(terms) > 1:
            raise AnsibleLookupError("run_lock: give at most one lock found")
        found = found_record(terms[0] if terms else None, int(timeout), float(self.get_option("found_mtime") or 0))
        verdict, reason, message = judge(found, me, self.get_option("force"), self.get_option("where"), now)
        return [{"record": me, "verdict": verdict, "reason": reason, "message": message, "found": found}]
