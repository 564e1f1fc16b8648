"""`target` is decided once, wherever it is set: the dispatchers (deploy, scale, upgrade,
rollback, teardown) run only the chosen target's plays, whether target comes from -e or
from the inventory's group_vars/all.

Each case runs the real dispatcher with bad input that each target's playbook refuses
in its own words, before any change and before any host or cluster is reached.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_run import playbook


def inventory(tmp_path: Path, target: str | None) -> Path:
    inv = tmp_path / "inventory"
    (inv / "group_vars" / "all").mkdir(parents=True)
    # VM hosts that cannot be reached (nothing listens on port 1): a play that tried one
    # would report it unreachable
    groups = {"app": "app1", "database": "db", "loadbalancer": "lb"}
    (inv / "hosts.yml").write_text("all:\n  children:\n" + "".join(
        f"    {group}:\n      hosts:\n        {host}: {{ansible_host: 127.0.0.1, ansible_port: 1}}\n"
        for group, host in groups.items()))
    if target:
        (inv / "group_vars" / "all" / "main.yml").write_text(f"target: {target}\n")
    return inv


# The Kubernetes scale play names scale_replicas; the VM one names scale_app_hosts.
@pytest.mark.parametrize("where", ["inventory", "extra var"])
def test_the_inventorys_target_picks_the_kubernetes_playbook(tmp_path, where):
    inv = inventory(tmp_path, "kubernetes" if where == "inventory" else None)
    extra = {"scale_replicas": 0} | ({"target": "kubernetes"} if where == "extra var" else {})
    result = playbook("-i", str(inv), "playbooks/scale.yml", extra_vars=extra, timeout=300)
    assert result.rc != 0
    assert "scale_replicas is '0'" in result.output, result.output[-3000:]
    assert "scale_app_hosts" not in result.output, result.output[-3000:]
    assert "UNREACHABLE" not in result.output and result.changed == 0


def test_the_vm_playbook_runs_when_no_target_is_set(tmp_path):
    result = playbook("-i", str(inventory(tmp_path, None)), "playbooks/scale.yml",
                      extra_vars={"scale_app_hosts": "many"}, timeout=300)
    assert result.rc != 0
    assert "scale_app_hosts" in result.output, result.output[-3000:]
    assert "UNREACHABLE" not in result.output and result.changed == 0


def test_an_unknown_target_in_the_inventory_is_refused(tmp_path):
    result = playbook("-i", str(inventory(tmp_path, "openstack")), "playbooks/teardown.yml", timeout=300)
    assert result.rc != 0
    assert "value of target must be one of: vms, kubernetes, got: openstack" in result.output, result.output[-3000:]
    assert "UNREACHABLE" not in result.output and result.changed == 0


def test_the_controllers_tasks_never_become_another_user(tmp_path):
    """As AWX runs a job with its privilege escalation toggle (--become) and an inventory that
    sets become for all hosts: the plays on localhost run their modules as the controller's
    own user (playbooks/host_vars/localhost.yml). become_exe names no program and become_user
    another user, so a task that tried to become would fail on that; the first module the
    Kubernetes deploy runs on the controller (it asks the cluster for its version) fails on
    the kubeconfig instead, which names no cluster."""
    become_everywhere = tmp_path / "become"
    (become_everywhere / "group_vars" / "all").mkdir(parents=True)
    (become_everywhere / "hosts.yml").write_text("all: {}\n")
    (become_everywhere / "group_vars" / "all" / "main.yml").write_text("ansible_become: true\n")
    result = playbook("-i", "inventories/lab", "-i", str(become_everywhere), "playbooks/deploy.yml", "--become",
                      extra_vars={"target": "kubernetes", "deploy_build_release": False,
                                  "ansible_become_exe": str(tmp_path / "no-sudo"), "ansible_become_user": "nobody"},
                      env={"KUBECONFIG": str(tmp_path / "no-kubeconfig")}, timeout=300)
    assert result.rc != 0
    assert "Invalid kube-config file" in result.output, result.output[-3000:]
    assert "become" not in result.output and "no-sudo" not in result.output, result.output[-3000:]
    assert result.changed == 0
