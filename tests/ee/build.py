#!/usr/bin/env python3
"""Build the execution environment (EE) image the AWX-style tests run playbooks in, with
ansible-builder 3 from this repository's execution-environment.yml, and print its tag.

Nothing can be pulled here and Galaxy cannot be reached, so the test build *derives* a
definition from the product one (docs/testing.md, "The execution environment"):
- the base image is the harness's local stand-in for python:3.13-slim-trixie
  (DJANGOOPS_BASE_IMAGE_TRIXIE) instead of CentOS Stream 9, so the package manager is apt
  (tests/ee/apt-pkgmgr answers the two forms ansible-builder's scripts use) and pip is
  already there (Debian's ensurepip refuses the system Python: skip_pip_install);
- /usr/share/ansible/collections is seeded with the collections of requirements.yml (and
  their dependencies) copied from the `ansible` package of the tooling venv, so the
  generated `ansible-galaxy collection install -r requirements.yml` finds them installed and
  does nothing (--offline guards it);
- pip reads its packages from a folder of wheels downloaded on this machine (PyPI through
  the host's proxy, whose CA containers do not trust), served on 127.0.0.1 during the build.
The dependencies (ansible-core, ansible-runner, requirements.yml, meta/ee-requirements.txt,
meta/ee-bindep.txt) are the product's, unchanged (tests/unit/test_execution_environment.py
checks which keys differ). The image is tagged djangoops-test/ee:<key>, the key a hash of
everything the build reads; a build whose tag exists is skipped. Everything lives under
$DJANGOOPS_CACHE/ee, outside the repository.

    tests/ee/build.py            build if needed, print the tag
"""

from __future__ import annotations

import copy
import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("DJANGOOPS_CACHE", "/var/cache/djangoops")) / "ee"
BASE_IMAGE = os.environ.get("DJANGOOPS_BASE_IMAGE_TRIXIE", "djangoops-test/python:3.13-trixie")
PYTHON_VERSION = "3.13"  # the base image's
# Fixed: the port is written into pip.conf, which is part of the build context (a different
# one would rebuild every layer after it).
WHEEL_PORT = 18765
# The keys of the product definition the derived one may change.
CHANGED_KEYS = {"images", "options", "additional_build_files", "additional_build_steps"}
CHANGED_DEPENDENCIES = {"python_interpreter", "galaxy", "python", "system"}
BUILDER = str(Path(sys.executable).parent / "ansible-builder")


def product() -> dict:
    return yaml.safe_load((REPO / "execution-environment.yml").read_text())


def derived(definition: dict, files: Path) -> dict:
    """The product definition with the base image, package manager and index of this machine;
    its dependency files named by absolute path (the derived file lives in the cache)."""
    out = copy.deepcopy(definition)
    out["images"] = {"base_image": {"name": BASE_IMAGE}}
    deps = out["dependencies"]
    deps["python_interpreter"] = {"python_path": "/usr/local/bin/python"}
    for key in ("galaxy", "python", "system"):
        deps[key] = str(REPO / deps[key])
    out["additional_build_files"] = [
        {"src": str(files / "apt-pkgmgr"), "dest": "ee"},
        {"src": str(files / "pip.conf"), "dest": "ee"},
        {"src": str(files / "seed"), "dest": "seed"},
    ]
    out["additional_build_steps"] = {
        "prepend_base": ["COPY _build/ee/apt-pkgmgr /usr/local/sbin/apt-pkgmgr",
                         "COPY _build/ee/pip.conf /etc/pip.conf"],
        "prepend_galaxy": ["COPY _build/seed/ /usr/share/ansible/collections/"],
        "append_final": ["RUN rm -f /etc/pip.conf /usr/local/sbin/apt-pkgmgr"],
    }
    out["options"] = {"package_manager_path": "/usr/local/sbin/apt-pkgmgr", "skip_pip_install": True}
    return out


def required_collections() -> list[str]:
    return [c["name"] for c in yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]]


def seed(into: Path) -> list[str]:
    """Copy the collections requirements.yml names, and what they depend on, from the venv's
    `ansible` package into INTO/ansible_collections; returns their name==version lines."""
    import ansible_collections

    bundle = Path(ansible_collections.__path__[0])
    todo, done = required_collections(), {}
    while todo:
        name = todo.pop()
        if name in done:
            continue
        namespace, coll = name.split(".")
        source = bundle / namespace / coll
        manifest = json.loads((source / "MANIFEST.json").read_text())["collection_info"]
        done[name] = manifest["version"]
        todo.extend(manifest.get("dependencies") or {})
        target = into / "ansible_collections" / namespace / coll
        if not target.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    return sorted(f"{n}=={v}" for n, v in done.items())


def sha(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


def tree_digest(root: Path) -> bytes:
    lines = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        lines.append(f"{path.relative_to(root)} {hashlib.sha256(path.read_bytes()).hexdigest()} {path.stat().st_mode & 0o111}")
    return "\n".join(lines).encode()


def run(*cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, **kw)


def requirements(context: Path, seeded: Path, work: Path) -> list[str]:
    """Every Python package the build installs: ansible-builder's own introspection of the
    seeded collections and the user lists, plus the fixed installs of its Dockerfile."""
    build = context / "_build"
    run(sys.executable, str(build / "scripts" / "introspect.py"), "introspect", str(seeded),
        f"--user-pip={build / 'requirements.txt'}", f"--user-bindep={build / 'bindep.txt'}",
        f"--write-pip={work / 'requirements.txt'}", f"--write-bindep={work / 'bindep.txt'}",
        stdout=subprocess.DEVNULL)
    dockerfile = (context / "Dockerfile").read_text()
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="(.*)"$', dockerfile, re.M).group(1).split()
    fixed = re.findall(r"pip install --no-cache-dir (.*)$", dockerfile, re.M)
    extra = [w.strip("'\"") for line in fixed for w in line.split() if not w.startswith("$")]
    lines = [line.split("#")[0].strip() for line in (work / "requirements.txt").read_text().splitlines()]
    return sorted({*filter(None, lines), *refs, *extra})


def wheels(reqs: list[str]) -> Path:
    """The wheels of REQS for the base image's Python, downloaded once (keyed by the list)."""
    folder = CACHE / f"wheels-{sha(json.dumps(reqs).encode())}"
    if (folder / ".complete").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "requirements.txt").write_text("\n".join(reqs) + "\n")
    run(sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--implementation", "cp",
        "--python-version", PYTHON_VERSION, "--platform", "manylinux_2_28_x86_64",
        "--platform", "manylinux2014_x86_64", "--platform", "linux_x86_64", "-d", str(folder),
        "-r", str(folder / "requirements.txt"))
    (folder / ".complete").touch()
    return folder


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False).returncode == 0


def serve(folder: Path) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", WHEEL_PORT), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # pip's requests are not news
        pass


def build() -> str:
    files = CACHE / "files"
    shutil.rmtree(files, ignore_errors=True)
    files.mkdir(parents=True)
    shutil.copy2(REPO / "tests" / "ee" / "apt-pkgmgr", files / "apt-pkgmgr")
    (files / "pip.conf").write_text(f"[global]\nno-index = true\nfind-links = http://127.0.0.1:{WHEEL_PORT}/\n")
    collections = seed(files / "seed")
    definition_file = CACHE / "execution-environment.yml"
    definition_file.write_text(yaml.safe_dump(derived(product(), files), sort_keys=False))
    context = CACHE / "context"
    shutil.rmtree(context, ignore_errors=True)
    run(BUILDER, "create", "--file", str(definition_file), "--context", str(context),
        "--output-filename", "Dockerfile", stdout=subprocess.DEVNULL)
    reqs = requirements(context, files / "seed", CACHE)
    folder = wheels(reqs)
    base_id = run("docker", "image", "inspect", "-f", "{{.Id}}", BASE_IMAGE, capture_output=True).stdout.strip()
    listing = "\n".join(sorted(p.name for p in folder.glob("*.whl")))
    key = sha(tree_digest(context), base_id.encode(), listing.encode(), "\n".join(collections).encode())
    tag = f"djangoops-test/ee:{key}"
    if image_exists(tag):
        return tag
    server = serve(folder)
    try:
        run("nice", "-n", "10", BUILDER, "build", "--file", str(definition_file), "--context", str(context),
            "--output-filename", "Dockerfile", "--tag", tag, "--container-runtime", "docker",
            "--build-arg", "ANSIBLE_GALAXY_CLI_COLLECTION_OPTS=--offline",
            "--extra-build-cli-args", f"--network host --label org.djangoops.recipe={key}", "-v", "2",
            stdout=sys.stderr)
    finally:
        server.shutdown()
    # older test EE images go (about 0.7 GB each)
    old = run("docker", "images", "-q", "--filter", "reference=djangoops-test/ee", "--format", "{{.Repository}}:{{.Tag}}",
              capture_output=True).stdout.split()
    for other in old:
        if other != tag:
            subprocess.run(["docker", "rmi", other], capture_output=True, check=False)
    return tag


def build_once() -> str:
    """build(), one at a time on this machine: the integration and the Kubernetes phases of
    tests/run both ask for the image, side by side."""
    import fcntl

    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return build()


if __name__ == "__main__":
    print(build_once())
