"""Playbook runs started together, for the run-lock tests of both targets: one owner for
starting a run in the background and waiting for several to end."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from ansible_run import REPO


def start_playbook(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    """ansible-playbook ARGS in the background (its own process group), output to `log`."""
    return subprocess.Popen(
        ["ansible-playbook", *args], cwd=REPO,
        env={**os.environ, **(env or {}), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def ended(procs: list[subprocess.Popen], began: float, timeout: float = 1500) -> dict[int, float]:
    """Wait for every process; the seconds from `began` to each one's end, by pid."""
    took: dict[int, float] = {}
    while len(took) < len(procs):
        assert time.monotonic() - began < timeout, "the runs did not end"
        for proc in procs:
            if proc.pid not in took and proc.poll() is not None:
                took[proc.pid] = time.monotonic() - began
        time.sleep(0.1)
    return took
