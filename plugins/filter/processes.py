# Copyright: djangoops.stack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The app's process types besides Gunicorn (Celery workers, a beat scheduler, any program
of the release's environment), read once for systemd units on VMs and Deployments on
Kubernetes. djangoops.stack.app_processes."""

from __future__ import annotations

import re

from ansible_collections.djangoops.stack.plugins.filter.schedule import command_words, named_items, systemd_exec_words

# Names the app's other objects use (the Gunicorn pods' component, the migration Job, the
# database's and the broker's StatefulSets, the scheduled commands' prefix on VMs).
RESERVED = ("web", "migrate", "postgres", "redis", "scheduled", "config", "env")
_KEYS = ("name", "command", "count", "singleton", "group", "stop_timeout", "resources")


def _whole(value, least: int):
    """An int of at least `least` from an int or a string of digits (inventories give either);
    None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        value = int(value)
    return value if isinstance(value, int) and value >= least else None


def app_processes(items=None, bin_dir: str = ""):
    """The app role's app_processes, checked: {processes, problems}; never raises.

    Each item: name, command (a string split with shlex or a list of words: a program of the
    release's environment, such as celery, or an absolute path), and optionally count
    (processes on each host of its group on VMs, replicas on Kubernetes; default 1, 0 stops
    it), singleton (runs exactly once: count 1, one host), group (the VM hosts' inventory
    group, empty for the app hosts), stop_timeout (seconds a stopping process has to finish
    its current work, default 30) and resources (the Kubernetes container's, empty for the
    app's). Each process returned gains argv and exec_words (for a unit's ExecStart=, a
    program without a '/' taken from bin_dir when given).
    """
    problems: list[str] = []
    processes: list[dict] = []
    for label, name, item in named_items(items, _KEYS, problems, RESERVED):
        if "command" not in item or item["command"] in (None, "", []):
            problems.append(f"{label} has no command: name the program to run, such as 'celery -A proj worker'")
            continue
        argv = command_words(item, label, problems)
        if argv is None:
            continue
        singleton = item.get("singleton", False)
        if not isinstance(singleton, bool):
            problems.append(f"{label}: singleton must be true or false, not {singleton!r}")
            continue
        count = _whole(item.get("count", 1), 0)
        if count is None:
            problems.append(f"{label}: count must be a whole number, 0 or more, not {item.get('count')!r}")
            continue
        if singleton and count > 1:
            problems.append(f"{label}: a singleton runs exactly once: count must be 0 or 1, not {count}")
            continue
        stop_timeout = _whole(item.get("stop_timeout", 30), 1)
        if stop_timeout is None:
            problems.append(f"{label}: stop_timeout must be a whole number of seconds, 1 or more, not {item.get('stop_timeout')!r}")
            continue
        group = item.get("group", "")
        if not isinstance(group, str):
            problems.append(f"{label}: group must be an inventory group's name, not {group!r}")
            continue
        resources = item.get("resources", {})
        if not isinstance(resources, dict) or set(resources) - {"requests", "limits"}:
            problems.append(f"{label}: resources must be a mapping with requests and limits, as a container's")
            continue
        program = argv[0] if "/" in argv[0] or not bin_dir else f"{bin_dir.rstrip('/')}/{argv[0]}"
        processes.append({"name": name, "argv": argv, "exec_words": systemd_exec_words([program, *argv[1:]]), "count": count,
                          "singleton": singleton, "group": group, "stop_timeout": stop_timeout, "resources": resources})
    return {"processes": processes, "problems": problems}


class FilterModule:
    """djangoops.stack process type filters."""

    def filters(self):
        return {"app_processes": app_processes}
