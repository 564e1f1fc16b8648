"""Run a job template of awx/djangoops-stack.json the way AWX runs it, in the execution
environment image (tests/ee/build.py), as its non-root user.

AWX lays out a private data dir for each job (awx/main/tasks/jobs.py) and hands it to
ansible-runner; on a container group the EE image runs `ansible-runner worker` and the
data dir travels to it as a stream. This helper does the same on this machine:

    ansible-runner transmit PDD -p <playbook> | docker run -i <EE> ansible-runner worker
        | ansible-runner process PDD

with the data dir laid out as AWX lays it:
- project/: the repository's tracked files (an SCM checkout: no .git, no files a run left);
- inventory/hosts: an executable script printing the inventory as JSON;
- env/extravars: the template's extra variables and the survey's answers;
- env/tmp*: each custom credential's extra variables (the injectors of the credential
  types in awx/djangoops-stack.json), and files a credential injects, with
  `-e @/runner/env/tmp*` in env/cmdline;
- env/cmdline: `-u <user>` and `--become` when the template turns privilege escalation on
  (or the test asks, as the toggle would);
- env/ssh_key: the machine credential's private key (runner loads it into an ssh-agent);
- env/envvars: what AWX sets (ANSIBLE_SSH_CONTROL_PATH_DIR, the collections path) and what
  a credential injects as environment (the Kubernetes one: K8S_AUTH_*).
The container gets --network host: the lab's SSH ports, the registry, the S3 server and
the cluster's API are all on 127.0.0.1 here. Nothing from an earlier job is there: each job
has a new data dir, and the container is removed when it ends.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml

from ansible_run import REPO, PlaybookResult, _log_timing

EXPORT = REPO / "awx" / "djangoops-stack.json"
# The tooling venv's (requirements-dev.txt), as tests/ee/build.py finds ansible-builder.
RUNNER = str(Path(sys.executable).parent / "ansible-runner")


def ee_image_tag() -> str:
    """The execution environment image's tag (tests/ee/build.py: built from
    execution-environment.yml the first time, then found by the hash of its inputs)."""
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "ee" / "build.py")], capture_output=True, text=True,
                          check=False, timeout=1800)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    return proc.stdout.strip().splitlines()[-1]


def templates() -> dict[str, dict]:
    return {t["name"]: t for t in json.loads(EXPORT.read_text())["job_templates"]}


def credential_types() -> dict[str, dict]:
    return {t["name"]: t for t in json.loads(EXPORT.read_text())["credential_types"]}


@dataclass
class Credential:
    """A credential of a custom type of the export, rendered through its type's injectors as
    AWX renders them: each `file` template into a file of the data dir, `env` into the job's
    environment, `extra_vars` into a file passed with -e @ ({{ input }} the credential's
    inputs, {{ tower.filename.<name> }} an injected file's path)."""

    type_name: str
    inputs: dict


# AWX's managed credential type for a cluster (kind "kubernetes"), injected by code, not by
# templates (awx/main/models/credential/injectors.py, kubernetes_bearer_token):
# inputs host, bearer_token, verify_ssl, ssl_ca_cert.
KUBERNETES_TOKEN = "OpenShift or Kubernetes API Bearer Token"


def _kubernetes_token(inputs: dict, pdd: Path) -> dict:
    env = {"K8S_AUTH_HOST": inputs["host"], "K8S_AUTH_API_KEY": inputs["bearer_token"]}
    if inputs.get("verify_ssl") and inputs.get("ssl_ca_cert"):
        env.update({"K8S_AUTH_VERIFY_SSL": "True", "K8S_AUTH_SSL_CA_CERT": _inject(pdd, inputs["ssl_ca_cert"])})
    else:
        env["K8S_AUTH_VERIFY_SSL"] = "False"
    return env


@dataclass
class JobResult(PlaybookResult):
    status: str = ""
    data_dir: Path | None = None


def _render(template, values: dict, filenames: dict[str, str]):
    if isinstance(template, dict):
        return {k: _render(v, values, filenames) for k, v in template.items()}
    if not isinstance(template, str):
        return template
    out = template
    for name, path in filenames.items():
        out = out.replace(f"{{{{ tower.filename.{name} }}}}", path)
    for name, value in values.items():
        if out == f"{{{{ {name} }}}}":
            return value
        out = out.replace(f"{{{{ {name} }}}}", str(value))
    return out


def _copy_project(dest: Path) -> None:
    """The repository's tracked files, symlinks kept (AWX copies the checkout, .git left out)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src, dst = REPO / rel, dest / rel
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the work tree
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, dst)


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _inject(pdd: Path, content: str) -> str:
    """CONTENT in a new file of the data dir's env/, as AWX writes a credential's file;
    returns its path in the container."""
    tmp = f"tmp{uuid.uuid4().hex[:8]}"
    _write(pdd / "env" / tmp, content)
    return f"/runner/env/{tmp}"


def run_job(image: str, template: str, *, inventory: dict, workdir: Path, answers: dict | None = None,
            credentials: list[Credential] | None = None, ssh_key: str | None = None, user: str = "root",
            become: bool | None = None, vault_password: str | None = None, envvars: dict | None = None,
            timeout: int = 1800) -> JobResult:
    """Run the job template TEMPLATE (its name in awx/djangoops-stack.json) with the survey's
    ANSWERS against INVENTORY (AWX's JSON form), in IMAGE. VAULT_PASSWORD: a Vault
    credential's, given as AWX gives it (--ask-vault-pass, the prompt answered from
    env/passwords)."""
    spec = templates()[template]
    ident = uuid.uuid4().hex[:12]
    pdd = workdir / f"job-{ident}"
    _copy_project(pdd / "project")
    (pdd / "cp").mkdir()
    _write(pdd / "inventory" / "hosts",
           "#! /usr/bin/env python3\nimport json\nprint(json.dumps(" + repr(inventory) + "))\n", 0o700)
    extravars = {**(yaml.safe_load(spec["extra_vars"] or "{}") or {}), **(answers or {})}
    _write(pdd / "env" / "extravars", json.dumps(extravars))
    cmdline = [f"-u {user}"]
    if spec.get("become_enabled") if become is None else become:
        cmdline.append("--become")
    types = credential_types()
    env_injected: dict = {}
    for credential in credentials or []:
        filenames = {}
        if credential.type_name == KUBERNETES_TOKEN:
            env_injected.update(_kubernetes_token(credential.inputs, pdd))
            continue
        injectors = types[credential.type_name]["injectors"]
        for key, template_ in injectors.get("file", {}).items():
            filenames[key.removeprefix("template.")] = _inject(pdd, _render(template_, credential.inputs, {}))
        env_injected.update(_render(injectors.get("env", {}), credential.inputs, filenames))
        rendered = _render(injectors.get("extra_vars", {}), credential.inputs, filenames)
        if rendered:
            cmdline.append(f"-e @{_inject(pdd, json.dumps(rendered))}")
    if vault_password is not None:
        cmdline.append("--ask-vault-pass")
        # AWX's prompt for a Vault credential without a vault id (jobs.py, get_password_prompts)
        _write(pdd / "env" / "passwords", json.dumps({r"Vault password:\s*?$": vault_password}))
    _write(pdd / "env" / "cmdline", " ".join(cmdline))
    if ssh_key:
        _write(pdd / "env" / "ssh_key", ssh_key)
    env = {
        "ANSIBLE_SSH_CONTROL_PATH_DIR": "/runner/cp",
        "ANSIBLE_COLLECTIONS_PATH": "/runner/requirements_collections:~/.ansible/collections:"
                                    "/usr/share/ansible/collections:/runner/project/collections",
        "ANSIBLE_FORCE_COLOR": "False",
        **env_injected,
        # a profile asked of the test run (ansible_run.py's DJANGOOPS_PLAYBOOK_OUTPUT) reaches the job
        **{k: v for k, v in os.environ.items() if k in ("ANSIBLE_CALLBACKS_ENABLED", "PROFILE_TASKS_TASK_OUTPUT_LIMIT")},
        **(envvars or {}),
    }
    _write(pdd / "env" / "envvars", json.dumps(env))
    start = time.monotonic()
    name = f"djangoops-awx-job-{ident}"
    transmit = subprocess.Popen([RUNNER, "transmit", str(pdd), "-p", spec["playbook"], "--ident", ident],
                                stdout=subprocess.PIPE)
    worker = subprocess.Popen(["docker", "run", "-i", "--rm", "--name", name, "--network", "host", image,
                               "ansible-runner", "worker", "--private-data-dir=/runner"],
                              stdin=transmit.stdout, stdout=subprocess.PIPE)
    transmit.stdout.close()
    try:
        processed = subprocess.run([RUNNER, "process", str(pdd), "--ident", ident], stdin=worker.stdout,
                                   capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        raise
    finally:
        worker.stdout.close()
        worker.wait(timeout=60)
        transmit.wait(timeout=60)
    artifacts = pdd / "artifacts" / ident
    rc_file, status_file = artifacts / "rc", artifacts / "status"
    rc = int(rc_file.read_text()) if rc_file.exists() else -1
    status = status_file.read_text().strip() if status_file.exists() else "unknown"
    stdout_file = artifacts / "stdout"
    output = (stdout_file.read_text() if stdout_file.exists() else processed.stdout) + processed.stderr
    result = JobResult(rc, output, status=status, data_dir=pdd)
    _log_timing((spec["playbook"],), extravars, time.monotonic() - start, result)
    return result


def run_workflow(name: str, answers: dict, run_node) -> list[tuple[str, JobResult]]:
    """Run the workflow NAME of the export as AWX runs one: from the node that no other node
    follows, each node's job template with the workflow's survey ANSWERS (run_node(template,
    answers) runs one), then the nodes its success edges name, once it succeeded; a failed
    job ends the walk (the workflows of awx/surveys.yml have no failure or always edges).
    Returns (template, result) for each job run, in order."""
    (workflow,) = [w for w in json.loads(EXPORT.read_text())["workflow_job_templates"] if w["name"] == name]
    nodes = {n["identifier"]: n for n in workflow["related"]["workflow_nodes"]}
    followed = {s["identifier"] for n in nodes.values() for s in n["related"]["success_nodes"]}
    todo = [i for i in nodes if i not in followed]
    ran: list[tuple[str, JobResult]] = []
    while todo:
        node = nodes[todo.pop(0)]
        template = node["unified_job_template"]["name"]
        result = run_node(template, answers)
        ran.append((template, result))
        if result.rc != 0:
            break
        todo += [s["identifier"] for s in node["related"]["success_nodes"]]
    return ran


_TLS_VARS = ("service_tls_certificate", "service_tls_private_key", "database_tls_certificate",
             "database_tls_private_key")


def _exported(lab_env: dict) -> dict:
    """inventories/lab as an SCM inventory source imports it (ansible-inventory --export),
    without what a job takes from its credentials (the SSH key and known hosts, the CA file,
    the app's secrets) and the lab's folder on this machine."""
    proc = subprocess.run(["ansible-inventory", "-i", str(REPO / "inventories" / "lab"), "--list", "--export"],
                          cwd=REPO, env={**os.environ, **lab_env}, capture_output=True, text=True, check=True)
    inventory = json.loads(proc.stdout)
    for name in ("ansible_ssh_private_key_file", "ansible_ssh_common_args", "lab_tls_dir", "deploy_ca_path",
                 "database_password", "app_secret_key", "app_superuser_password"):
        inventory["all"]["vars"].pop(name, None)
    return inventory


def lab_inventory(lab_env: dict) -> dict:
    """The lab as an AWX inventory holds it: its hosts, groups and variables, with the values
    the lab reads from files on this machine (~/.cache/djangoops/lab) written in: the site's
    and the database's certificates and keys per host, the CA."""
    inventory = _exported(lab_env)
    tls = Path.home() / ".cache" / "djangoops" / "lab" / "tls"
    every = inventory["all"]["vars"]
    every["_lab_tls"] = True
    every["app_database_ca_certificate"] = (tls / "ca.crt").read_text()
    for host, hostvars in inventory["_meta"]["hostvars"].items():
        if (tls / f"{host}.crt").exists():
            for kind in ("service", "database"):
                hostvars[f"{kind}_tls_certificate"] = (tls / f"{host}.crt").read_text()
                hostvars[f"{kind}_tls_private_key"] = (tls / f"{host}.key").read_text()
    every.update(dict.fromkeys(_TLS_VARS, ""))
    return inventory


def kubernetes_inventory(lab_env: dict, variables: dict) -> dict:
    """The "djangoops Kubernetes" inventory of the export (localhost, a local connection)
    with the lab's variables (no TLS files: the lab's Kubernetes site has none) and
    VARIABLES (the namespace and what else the deployment sets there)."""
    every = _exported(lab_env)["all"]["vars"]
    every.update({"_lab_tls": False, "app_database_ca_certificate": "", **dict.fromkeys(_TLS_VARS, ""), **variables})
    return {"all": {"hosts": ["localhost"], "vars": every},
            "_meta": {"hostvars": {"localhost": {"ansible_connection": "local"}}}}


def vaulted(value: str, password: str) -> dict:
    """VALUE encrypted with Ansible Vault, in the JSON form an inventory script prints."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    return {"__ansible_vault": VaultLib([("default", VaultSecret(password.encode()))]).encrypt(value).decode()}


def secrets_credential() -> Credential:
    """The "djangoops.stack secrets" credential with the lab inventory's own values."""
    secrets = yaml.safe_load((REPO / "inventories" / "lab" / "group_vars" / "all" / "main.yml").read_text())
    return Credential("djangoops.stack secrets",
                      {k: secrets[k] for k in ("database_password", "app_secret_key", "app_superuser_password")})


def lab_credentials() -> tuple[str, list[Credential]]:
    """The machine credential's key, and the custom credentials every lab job takes: the
    servers' host keys and the site's CA (the app's secrets: secrets_credential, or vaulted)."""
    lab = Path.home() / ".cache" / "djangoops" / "lab"
    return (lab / "id_ed25519").read_text(), [
        Credential("djangoops.stack SSH known hosts", {"known_hosts": (lab / "known_hosts").read_text()}),
        Credential("djangoops.stack site CA", {"ca_certificate": (lab / "tls" / "ca.crt").read_text()}),
    ]


def swap_host_keys(known_hosts: str) -> str:
    """known_hosts lines with each host's key replaced by the next host's: servers whose
    keys changed, as after a reinstall or an impostor."""
    entries = [line.split(" ", 1) for line in known_hosts.splitlines() if line.strip() and not line.startswith("#")]
    keys = [key for _, key in entries]
    return "".join(f"{host} {keys[(i + 1) % len(keys)]}\n" for i, (host, _) in enumerate(entries))
