"""Shared helpers for the VM tests: the lab inventories, SSH hosts, HTTP, Docker state."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import certifi
import requests
import testinfra

from ansible_run import REPO, PlaybookResult, playbook
from waiting import eventually

LAB = REPO / "inventories" / "lab" / "hosts.yml"
LAB_SINGLE = REPO / "inventories" / "lab-single" / "hosts.yml"
SSH_KEY = Path.home() / ".cache" / "djangoops" / "lab" / "id_ed25519"
APP_SERVICE = "djangoops-blog"
APP_VENV_PYTHON = "/opt/djangoops-blog/current/venv/bin/python"

# name -> (container, ssh port)
LAB_HOSTS = {
    "lb": ("djangoops-lab-lb", 2201),
    "app1": ("djangoops-lab-app1", 2202),
    "app2": ("djangoops-lab-app2", 2203),
    "db": ("djangoops-lab-db", 2204),
}
SINGLE_HOSTS = {"single": ("djangoops-single-single", 2211)}

# The lab serves HTTPS with a certificate from its own CA (lab/lab_up.yml makes both) and
# redirects plain HTTP there.
LAB_URL = "https://127.0.0.1:8443"
LAB_HTTP_URL = "http://127.0.0.1:8080"
LAB_CA = SSH_KEY.parent / "tls" / "ca.crt"
_CA_BUNDLE = Path(tempfile.gettempdir()) / f"djangoops-tests-ca-{os.getpid()}.pem"
# The CAs trusted before (the machine's REQUESTS_CA_BUNDLE, else its system store, else certifi's).
_BASE_CAS = os.environ.get("REQUESTS_CA_BUNDLE") or ssl.get_default_verify_paths().cafile or certifi.where()


def trust_lab_ca() -> None:
    """requests in the tests' process trusts the CAs it trusted before and the lab's, once
    lab/lab_up.yml made it. REQUESTS_CA_BUNDLE reaches the playbooks the tests start, and pip
    in them reads it too: the lab's CA alone would make the package index untrusted there."""
    parts = [Path(_BASE_CAS).read_text()]
    if LAB_CA.is_file():
        parts.append(LAB_CA.read_text())
    _CA_BUNDLE.write_text("\n".join(parts))
    os.environ["REQUESTS_CA_BUNDLE"] = str(_CA_BUNDLE)


trust_lab_ca()
SINGLE_URL = "http://127.0.0.1:8081"

# Lab-only credentials (inventories/lab/group_vars/all/main.yml).
LAB_DB = {"name": "blog", "user": "blog", "password": "lab-only-db-password-not-secret"}
LAB_ADMIN = ("admin", "lab-only-admin-password")


def keep_lab() -> bool:
    """DJANGOOPS_KEEP_LAB=1 leaves the lab running after the tests (for debugging)."""
    return os.environ.get("DJANGOOPS_KEEP_LAB", "") not in ("", "0")


def deploy(inventory: Path = LAB, *args: str, extra_vars: dict | None = None) -> PlaybookResult:
    return playbook("-i", str(inventory), "deploy.yml", *args, extra_vars=extra_vars)


def lab_up(inventory: Path = LAB) -> PlaybookResult:
    """The lab the inventory describes (lab/lab_up.yml): deploy.yml only deploys to it."""
    return playbook("-i", str(inventory), "lab/lab_up.yml")


def lab_down(inventory: Path = LAB) -> PlaybookResult:
    return playbook("-i", str(inventory), "lab/lab_down.yml")


def ssh_host(port: int):
    """A testinfra host reached over SSH, as Ansible reaches it."""
    return testinfra.get_host(
        f"ssh://root@127.0.0.1:{port}",
        ssh_identity_file=str(SSH_KEY),
        ssh_extra_args=f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={SSH_KEY.parent / 'known_hosts'} -o LogLevel=ERROR",
    )


def container_state(prefix: str = "djangoops-lab-") -> dict[str, tuple[str, str]]:
    """The id and start time of each container of the lab whose names start with prefix (the
    main lab's, inventories/lab: djangoops-lab-<host>): equal before and after means untouched.
    Only that lab's hosts, the containers of a lab image (djangoops-lab:<suite>): the
    Kubernetes phase, beside these tests, builds images, makes and removes the one-server
    lab's host (djangoops-single-single, test_vm_single), and the image role's short-lived
    containers (djangoops-release-*, djangoops-python-probe-*) come and go meanwhile."""
    rows = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}} {{.Image}}"], capture_output=True,
                          text=True, check=True).stdout.splitlines()
    ids = [name for name, image in (row.split(" ", 1) for row in rows)
           if image.startswith("djangoops-lab:") and name.startswith(prefix)]
    if not ids:
        return {}
    out = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=False).stdout
    return {c["Name"]: (c["Id"], c["State"]["StartedAt"]) for c in json.loads(out or "[]")}


def wait_ready(url: str, timeout: float = 90) -> None:
    """Wait until the app behind url answers /readyz with 200 (its database answers)."""
    eventually(lambda: requests.get(f"{url}/readyz", timeout=5).status_code == 200, timeout,
               what=f"{url}/readyz answering 200")


def admin_create_post(url: str, title: str, text: str) -> requests.Session:
    """Log in to the Django admin (with CSRF) and add a published post."""
    s = requests.Session()
    origin = {"Origin": url, "Referer": f"{url}/admin/login/"}
    r = s.get(f"{url}/admin/login/", timeout=10)
    r.raise_for_status()
    token = _csrf_field(r.text)
    r = s.post(
        f"{url}/admin/login/?next=/admin/",
        data={
            "csrfmiddlewaretoken": token,
            "username": LAB_ADMIN[0],
            "password": LAB_ADMIN[1],
            "next": "/admin/",
        },
        headers=origin,
        timeout=10,
    )
    r.raise_for_status()
    assert "sessionid" in s.cookies, f"admin login failed: {r.status_code} {r.url}"
    r = s.get(f"{url}/admin/blog/post/add/", timeout=10)
    r.raise_for_status()
    token = _csrf_field(r.text)
    author = re.search(r'<select name="author"[^>]*>.*?<option value="(\d+)"', r.text, re.S)
    assert author, "no author choices on the admin add form"
    now = time.gmtime()
    r = s.post(
        f"{url}/admin/blog/post/add/",
        data={
            "csrfmiddlewaretoken": token,
            "author": author.group(1),
            "title": title,
            "text": text,
            "created_date_0": time.strftime("%Y-%m-%d", now),
            "created_date_1": "00:00:00",
            "published_date_0": time.strftime("%Y-%m-%d", now),
            "published_date_1": "00:00:00",
            "_save": "Save",
        },
        headers={"Origin": url, "Referer": f"{url}/admin/blog/post/add/"},
        timeout=10,
    )
    r.raise_for_status()
    assert r.url.rstrip("/").endswith("/admin/blog/post"), f"post not saved, ended on {r.url}"
    return s


def _csrf_field(html: str) -> str:
    m = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert m, "no CSRF token in the form"
    return m.group(1)


# A minimal PostgreSQL StartupMessage: the server's first answer says whether pg_hba.conf
# admits this client ('R', an authentication request) or not ('E' ... pg_hba.conf ...).
PG_PROBE = r"""
import socket, struct, sys
host, port, user, db = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
body = struct.pack("!I", 196608) + b"".join(k.encode() + b"\0" + v.encode() + b"\0"
                                             for k, v in (("user", user), ("database", db))) + b"\0"
s = socket.create_connection((host, port), timeout=5)
s.sendall(struct.pack("!I", len(body) + 4) + body)
data = s.recv(4096)
print(data[:1].decode(), data[5:].replace(b"\0", b" ").decode(errors="replace"))
"""
