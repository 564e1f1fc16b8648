"""The execution environment image (tests/ee/build.py, from execution-environment.yml) is one
AWX can run: its entrypoint and non-root user, ansible-core and ansible-runner, every
collection of requirements.yml and the Python packages the controller side imports. The
jobs that run in it are in test_vm_day2 (the "djangoops * VMs" job templates)."""

from __future__ import annotations

import json
import subprocess

import yaml

from ansible_run import REPO


def in_image(image: str, command: str) -> str:
    proc = subprocess.run(["docker", "run", "--rm", image, "sh", "-c", command], capture_output=True, text=True,
                          check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_the_image_is_an_execution_environment_that_runs_as_a_non_root_user(ee_image):
    config = subprocess.run(["docker", "image", "inspect", "-f", "{{json .Config}}", ee_image], capture_output=True,
                            text=True, check=True).stdout
    config = json.loads(config)
    assert config["User"] == "1000" and config["Labels"]["ansible-execution-environment"] == "true", config
    assert config["Entrypoint"][0] == "/opt/builder/bin/entrypoint"
    out = in_image(ee_image, "id -u; ansible --version | head -n 1; ansible-runner --version;"
                             " ansible-galaxy collection list --format yaml 2>/dev/null;"
                             " test ! -e /etc/pip.conf && test ! -e /output && echo clean")
    uid, core, runner, rest = out.split("\n", 3)
    assert uid == "1000" and "core 2.2" in core and runner.startswith("2.4."), out
    assert rest.rstrip().endswith("clean"), out
    listed = yaml.safe_load(rest.rstrip()[: -len("clean")])
    installed = {name for path in listed.values() for name in path}
    wanted = {c["name"] for c in yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]}
    assert wanted <= installed, sorted(wanted - installed)


def test_the_controller_side_imports_work_in_the_image(ee_image):
    out = in_image(ee_image, "python -W ignore -c 'import kubernetes, jsonpatch, boto3, botocore, docker, requests,"
                             " cryptography, psycopg2; print(kubernetes.__version__)'; ssh -V 2>&1; rsync --version")
    assert out.split("\n", 1)[0].startswith("36."), out
    assert "OpenSSH" in out and "rsync" in out, out
