"""execution-environment.yml and the collection's own dependency lists, read by ansible-builder 3.

`ansible-builder introspect` reads the collection the way an execution environment's build
does (meta/execution-environment.yml): every Python package the collection's controller side
needs must come out of it, or a playbook fails inside AWX on an import the developer's
machine had. Which packages are needed is read from the code: each module family the roles
and playbooks call, and each third-party import of the plugins. `ansible-builder create`
then makes the build context from the definition, with this collection's lists in it. The
image itself is built by tests/ee/build.py from a definition derived from this one (a base
image cannot be pulled here); the last test checks what that derivation may change.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BUILDER = shutil.which("ansible-builder", path=str(Path(sys.executable).parent)) or shutil.which("ansible-builder")

# What a module family needs on the controller (their own documentation's requirements).
FAMILY_NEEDS = {
    "kubernetes.core.": {"kubernetes", "jsonpatch"},
    "amazon.aws.": {"boto3", "botocore"},
    "community.aws.": {"boto3", "botocore"},
    "community.docker.": {"docker", "requests"},
    "community.crypto.": {"cryptography"},
}
# A plugin's import -> its package
IMPORT_PACKAGE = {"cryptography": "cryptography", "yaml": "PyYAML", "requests": "requests", "boto3": "boto3"}
# ansible-core brings these; ansible-builder leaves them out of an introspection on purpose
WITH_ANSIBLE_CORE = {"PyYAML", "jinja2", "packaging", "resolvelib", "cryptography-core"}

pytestmark = pytest.mark.skipif(BUILDER is None, reason="ansible-builder is not installed (requirements-dev.txt)")


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;#]", requirement.strip(), maxsplit=1)[0]


def needed() -> set[str]:
    text = "\n".join(p.read_text() for p in [*REPO.glob("roles/*/tasks/*.yml"), *REPO.glob("playbooks/**/*.yml")])
    packages = set().union(*(needs for family, needs in FAMILY_NEEDS.items() if family in text))
    for plugin in REPO.glob("plugins/*/*.py"):
        for module in re.findall(r"^\s*(?:from|import)\s+([a-z_0-9]+)", plugin.read_text(), re.M):
            packages.add(IMPORT_PACKAGE.get(module, ""))
    return packages - {""} - WITH_ANSIBLE_CORE


def introspected() -> dict:
    proc = subprocess.run([BUILDER, "introspect", str(REPO / "collections")], capture_output=True, text=True,
                          check=True, timeout=120)
    return yaml.safe_load(proc.stdout.split("---", 1)[1])


def test_introspection_lists_every_package_the_controller_side_imports():
    data = introspected()
    ours = [line for line in data["python"] if line.endswith("# from collection djangoops.stack")]
    names = {_name(line) for line in ours}
    assert needed() <= names, f"missing from meta/ee-requirements.txt: {sorted(needed() - names)}"
    listed = {_name(line) for line in (REPO / "meta" / "ee-requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    assert names == listed, "ansible-builder read meta/ee-requirements.txt through meta/execution-environment.yml"
    system = [line for line in data["system"] if line.endswith("# from collection djangoops.stack")]
    assert any(line.startswith("openssh-client ") and "platform:dpkg" in line for line in system)
    assert any(line.startswith("openssh-clients ") and "platform:rpm" in line for line in system)


def test_the_definition_makes_a_build_context_with_the_collections_lists(tmp_path):
    definition = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert definition["version"] == 3
    deps = definition["dependencies"]
    assert (deps["python"], deps["system"], deps["galaxy"]) == (
        "meta/ee-requirements.txt", "meta/ee-bindep.txt", "requirements.yml")
    assert "ansible-runner" in deps["ansible_runner"]["package_pip"]
    proc = subprocess.run([BUILDER, "create", "--file", "execution-environment.yml", "--context", str(tmp_path / "ee"),
                           "--output-filename", "Dockerfile"], cwd=REPO, capture_output=True, text=True, check=False,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    build = tmp_path / "ee" / "_build"
    assert (build / "requirements.txt").read_text() == (REPO / "meta" / "ee-requirements.txt").read_text()
    assert (build / "bindep.txt").read_text() == (REPO / "meta" / "ee-bindep.txt").read_text()
    assert yaml.safe_load((build / "requirements.yml").read_text()) == yaml.safe_load((REPO / "requirements.yml").read_text())
    dockerfile = (tmp_path / "ee" / "Dockerfile").read_text()
    assert f'ARG EE_BASE_IMAGE="{definition["images"]["base_image"]["name"]}"' in dockerfile
    assert "ansible-galaxy collection install" in dockerfile and "introspect" in dockerfile


def _ee_build():
    spec = importlib.util.spec_from_file_location("ee_build", REPO / "tests" / "ee" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_test_build_changes_only_the_base_the_package_manager_and_the_index(tmp_path):
    """tests/ee/build.py builds the EE the AWX-style tests run in from a definition derived
    from the product's: only the base image, the package manager, the index and the build
    steps that seed the collections differ; every dependency list is the product's own."""
    build = _ee_build()
    product = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    derived = build.derived(product, tmp_path)
    assert {k for k in product.keys() | derived.keys() if product.get(k) != derived.get(k)} <= build.CHANGED_KEYS | {
        "dependencies"}
    deps, ours = product["dependencies"], derived["dependencies"]
    for key in deps.keys() | ours.keys():
        if key in ("galaxy", "python", "system"):
            assert Path(ours[key]).read_text() == (REPO / deps[key]).read_text(), key
        elif key not in build.CHANGED_DEPENDENCIES:
            assert ours.get(key) == deps.get(key), key
    assert derived["options"]["skip_pip_install"] is True
    assert "ansible-runner" in ours["ansible_runner"]["package_pip"]
