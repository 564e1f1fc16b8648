"""AWX offers a project's file as a job template's playbook only when it looks like one: a
.yml or .yaml file outside roles/, tasks/, group_vars/, host_vars/ and dot folders, one of
whose lines starts (after spaces and a dash) with hosts:, include: or import_playbook:, the
last two also with the ansible.builtin. prefix (awx/main/utils/ansible.py, could_be_playbook
and skip_directory, since AWX 21; Tower 3.8 and older knew only the short forms). This test
reads the repository that way and checks that every playbook a user runs is offered, and
that every playbook playbooks/ holds matches the older rule too (their plays name hosts)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
AWX = re.compile(r"^\s*?-?\s*?(?:hosts|(ansible\.builtin\.)?include|(ansible\.builtin\.)?import_playbook):\s*?.*?$")
TOWER_3_8 = re.compile(r"^\s*?-?\s*?(?:hosts|include|import_playbook):\s*?.*?$")
SKIPPED_FOLDERS = {"roles", "tasks", "group_vars", "host_vars"}

# What the README, docs/vms.md and docs/kubernetes.md tell a user to run.
USER_FACING = {
    "deploy.yml",
    *(f"playbooks/{name}{suffix}.yml"
      for name in ("deploy", "upgrade", "rollback", "scale", "teardown", "backup", "restore")
      for suffix in ("", "_vms", "_kubernetes")),
    "playbooks/build.yml", "playbooks/check.yml", "playbooks/migrate_to_kubernetes.yml",
    "lab/lab_up.yml", "lab/lab_down.yml", "lab/scale.yml",
}


def offered(pattern: re.Pattern) -> set[str]:
    found = set()
    for path in REPO.rglob("*"):
        relative = path.relative_to(REPO)
        folders = relative.parts[:-1]
        if path.suffix not in (".yml", ".yaml") or not path.is_file():
            continue
        if SKIPPED_FOLDERS & set(folders) or any(part.startswith(".") for part in folders):
            continue
        if folders[:1] in (("collections",), ("tests",), ("examples",), ("changelogs",), ("meta",)):
            continue  # not the collection's playbooks (AWX would offer some; none is a playbook of ours)
        lines = path.read_text(encoding="utf-8", errors="ignore").splitlines()
        if any(pattern.match(line) for line in lines) or lines[:1] == ["$ANSIBLE_VAULT;"]:
            found.add(relative.as_posix())
    return found


def test_every_playbook_a_user_runs_is_offered_by_awx():
    assert all((REPO / name).is_file() for name in USER_FACING), sorted(n for n in USER_FACING if not (REPO / n).is_file())
    assert USER_FACING - offered(AWX) == set()


def test_the_playbooks_folder_is_offered_by_older_towers_too():
    playbooks = {name for name in USER_FACING if name.startswith("playbooks/")}
    assert playbooks - offered(TOWER_3_8) == set()


def test_the_rule_is_awxs():
    """The rule itself, on the lines AWX's own change (ansible/awx#12102) was about."""
    assert AWX.match("- ansible.builtin.import_playbook: playbooks/deploy.yml")
    assert AWX.match("  ansible.builtin.import_playbook: playbooks/deploy.yml")
    assert AWX.match("  hosts: localhost")
    assert not TOWER_3_8.match("  ansible.builtin.import_playbook: playbooks/deploy.yml")
    assert not AWX.match("# hosts: all")
    assert not AWX.match("  ansible.builtin.import_tasks: tasks/lock.yml")


def test_a_site_repository_pins_the_collection_at_its_version():
    """The gallery team's site repository (examples/gallery-ops) as an AWX project: AWX
    installs djangoops.stack from its collections/requirements.yml, pinned at the version
    this repository is (galaxy.yml), and offers its site playbook."""
    site = REPO / "examples" / "gallery-ops"
    (entry,) = yaml.safe_load((site / "collections" / "requirements.yml").read_text())["collections"]
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    assert entry == {"name": "djangoops.stack", "version": f"=={version}"}
    assert any(AWX.match(line) for line in (site / "site.yml").read_text().splitlines())
