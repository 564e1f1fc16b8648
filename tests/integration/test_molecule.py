"""Molecule scenarios in extensions/molecule: converge, idempotence, verify, destroy."""

from __future__ import annotations

import re
import subprocess

import pytest

from ansible_run import REPO

LAB_IMAGE = "djangoops-lab:bookworm"


@pytest.fixture(scope="module")
def lab_image() -> str:
    """The VM stand-in image the lab role builds; built the same way when missing."""
    have = subprocess.run(["docker", "image", "inspect", LAB_IMAGE], capture_output=True, check=False)
    if have.returncode != 0:
        subprocess.run(["docker", "build", "-q", "-t", LAB_IMAGE, str(REPO / "lab/roles/lab/files")],
                       check=True, capture_output=True)
    return LAB_IMAGE


@pytest.mark.parametrize("scenario", ["database"])
def test_molecule_scenario(scenario, lab_image):
    proc = subprocess.run(["molecule", "test", "-s", scenario], cwd=REPO / "extensions",
                          capture_output=True, text=True, timeout=1200, check=False)
    out = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    assert proc.returncode == 0, out[-5000:]
    for action in ("converge", "idempotence", "verify"):
        assert re.search(rf"{scenario} \S+ {action}: Executed: Successful", out), action
