"""Run ansible-playbook from tests and read its recap."""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_RECAP = re.compile(
    r"^(?P<host>\S+)\s+: ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


@dataclass
class PlaybookResult:
    rc: int
    output: str

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        tail = self.output.rsplit("PLAY RECAP", 1)[-1]
        return {
            m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
            for m in _RECAP.finditer(tail)
        }

    @property
    def said(self) -> str:
        """The output as one line, with the YAML callback's doubled quotes undone: where a
        message folded over lines, or quoted with 'it''s', reads as it was written."""
        return " ".join(self.output.split()).replace("''", "'")

    @property
    def changed(self) -> int:
        return sum(h["changed"] for h in self.recap.values())

    @property
    def changed_tasks(self) -> list[str]:
        """Each task that reported a change, as "TASK [its name] changed: [host]": what a
        failed "changes nothing" assertion prints (the bare "changed:" lines name no task)."""
        task, found = "", []
        for line in self.output.splitlines():
            if line.startswith("TASK ["):
                task = line.rstrip(" *")
            elif line.startswith("changed:"):
                found.append(f"{task} {line}")
        return found


def playbook(*args: str, extra_vars: dict | None = None, env: dict | None = None,
             timeout: int = 1800, cwd: Path = REPO) -> PlaybookResult:
    """ansible-playbook ARGS; extra_vars are passed as JSON so types survive."""
    import json

    cmd = ["ansible-playbook", *args]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    full_env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    full_env.update(env or {})
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        _log_timing(args, extra_vars, time.monotonic() - start, PlaybookResult(-1, "timed out"))
        raise
    result = PlaybookResult(proc.returncode, proc.stdout + proc.stderr)
    _log_timing(args, extra_vars, time.monotonic() - start, result)
    return result


def _log_timing(args: tuple[str, ...], extra_vars: dict | None, seconds: float, result: PlaybookResult) -> None:
    """One line per run in $DJANGOOPS_PLAYBOOK_LOG (tests/run names one beside the junit
    files): the test, the playbook, its seconds and recap, where a slow run's time went.
    Only variable names are written: values may be secrets."""
    path = os.environ.get("DJANGOOPS_PLAYBOOK_LOG")
    if not path:
        return
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    playbooks = " ".join(a for before, a in zip(("",) + args, args) if a.endswith(".yml") and before != "-i")
    line = (f"{seconds:7.1f}s rc={result.rc} changed={result.changed} {playbooks}"
            f" vars={','.join(sorted(extra_vars or {}))} test={test}\n")
    with open(path, "a", encoding="utf-8") as log:
        log.write(line)
    # Each run's whole output too, when asked (a profile: ANSIBLE_CALLBACKS_ENABLED=
    # ansible.posix.profile_tasks): DJANGOOPS_PLAYBOOK_OUTPUT names the file they go to.
    out = os.environ.get("DJANGOOPS_PLAYBOOK_OUTPUT")
    if out:
        with open(out, "a", encoding="utf-8") as log:
            log.write(f"\n##### {line}{result.output}\n")
