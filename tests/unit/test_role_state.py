"""Teardown and scaling are role state: each role that makes something declares
<role>_state and an `absent` entry point that needs no secret, and the day-2 playbooks
compose those entry points instead of naming what the roles wrote.

Static checks of the specs and playbooks; what the removal does on hosts and on a
cluster is tested by tests/integration/test_vm_day2.py and tests/kubernetes/test_k8s_day2.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
STATEFUL = ["database", "app", "service", "static_assets", "namespace"]


def specs(role: str) -> dict:
    return yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]


@pytest.mark.parametrize("role", STATEFUL)
def test_main_declares_the_state_and_the_default_is_present(role):
    option = specs(role)["main"]["options"][f"{role}_state"]
    assert option["choices"] == ["present", "absent"] and option["default"] == "present"
    defaults = yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text())
    assert defaults[f"{role}_state"] == "present"


@pytest.mark.parametrize("role", STATEFUL)
def test_the_absent_entry_point_needs_no_secret(role):
    entry = specs(role)["absent"]
    assert (REPO / "roles" / role / "tasks" / "absent.yml").is_file()
    for name, option in entry["options"].items():
        assert not option.get("required", False), f"{role} absent requires {name}"
        assert not option.get("no_log", False), f"{role} absent reads the secret {name}"
    # main has no option a removal could be refused for
    assert not [n for n, o in specs(role)["main"]["options"].items() if o.get("required")], role


# What the roles write, which only they may name.
ROLE_OWNED = ["/etc/nginx", "/etc/systemd", "/etc/postgresql", "pg_hba.conf", "conf.d", "/var/www", "/opt/",
              "/usr/local/bin", "-manage", "-postgres", "kubernetes.core.", "api_version",
              "label_selectors", "app_name", "database_k8s_name", "service_name"]


@pytest.mark.parametrize("playbook", ["teardown_vms.yml", "teardown_kubernetes.yml", "scale_kubernetes.yml"])
def test_the_day2_playbooks_name_nothing_a_role_wrote(playbook):
    text = (REPO / "playbooks" / playbook).read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert [word for word in ROLE_OWNED if word in code] == [], playbook


@pytest.mark.parametrize("role", sorted(p.parent.parent.name for p in (REPO / "roles").glob("*/meta/argument_specs.yml")))
def test_the_validate_entry_point_checks_the_options_of_main(role):
    """The deploy playbooks validate each role's inputs once, with its validate entry point,
    then import the role with rolespec_validate false: that is only safe while validate
    declares exactly main's options."""
    declared = specs(role)
    assert declared["validate"]["options"] == declared["main"]["options"]
