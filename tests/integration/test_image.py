"""The image role: build, push, run against PostgreSQL, and refuse bad input.

Real Docker, a real registry on 127.0.0.1:5000 and a PostgreSQL container; every
check is made over HTTP or against the registry's API.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import docker
import pytest
import requests
import yaml

from ansible_run import REPO, playbook
from waiting import eventually

NAMESPACE = "djangoops-test"
VERSION = "1.0"
COLOURS = ("orange", "maroon")


@pytest.fixture(scope="session")
def docker_client():
    return docker.from_env()


@pytest.fixture(scope="session")
def build_vars(registry, base_image, tmp_path_factory) -> dict:
    return {
        "image_registry": f"{registry}/{NAMESPACE}",
        "image_base_image": base_image,
        "image_version": VERSION,
        # The role has no project of its own: the sample blog of this clone.
        "image_source_dir": str(REPO / "examples" / "blog"),
        # Warm wheel cache between runs; the release archives go to a fresh folder.
        "image_wheel_cache_dir": "/var/cache/djangoops/test-wheels",
        "image_release_dir": str(tmp_path_factory.mktemp("releases")),
        "build_colours": list(COLOURS),
    }


@pytest.fixture(scope="session")
def built(build_vars):
    """Build and push orange and maroon once per session."""
    first = playbook("playbooks/build.yml", extra_vars=build_vars)
    assert first.rc == 0, first.output[-4000:]
    return first


def test_build_pushes_both_colours_and_never_latest(built, registry):
    tags = requests.get(f"http://{registry}/v2/{NAMESPACE}/djangoops-blog/tags/list", timeout=10).json()["tags"]
    assert {f"{VERSION}-orange", f"{VERSION}-maroon"} <= set(tags)
    assert "latest" not in tags


def test_second_build_reports_no_change(built, build_vars):
    again = playbook("playbooks/build.yml", extra_vars=build_vars)
    assert again.rc == 0, again.output[-3000:]
    assert again.changed == 0, again.output[-3000:]


PRIVATE = "127.0.0.1:5002"


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory):
    """A second docker-registry (tests/harness/registry-up's program) on 127.0.0.1:5002 that
    wants a user and a password (htpasswd, bcrypt); the controller's Docker login to it is
    removed after. Docker pushes to 127.0.0.0/8 over plain HTTP."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # Python 3.12's; its bcrypt is libxcrypt's
    user, password = "builder", secrets.token_urlsafe(18)
    tmp_path = tmp_path_factory.mktemp("private-registry")
    (tmp_path / "htpasswd").write_text(f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))}\n")
    (tmp_path / "config.yml").write_text(yaml.safe_dump({
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "storage")}},
        "http": {"addr": PRIVATE},
        "auth": {"htpasswd": {"realm": "djangoops-test", "path": str(tmp_path / "htpasswd")}}}))
    proc = subprocess.Popen(["docker-registry", "serve", str(tmp_path / "config.yml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        eventually(lambda: requests.get(f"http://{PRIVATE}/v2/", timeout=2).status_code == 401, 30, 0.2,
                   what="the private registry asking for a login")
        yield {"registry": f"{PRIVATE}/{NAMESPACE}", "user": user, "password": password}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        subprocess.run(["docker", "logout", PRIVATE], capture_output=True, check=False)
        subprocess.run(["docker", "image", "rm", f"{PRIVATE}/{NAMESPACE}/djangoops-blog:{VERSION}-orange"],
                       capture_output=True, check=False)


def test_a_private_registry_takes_the_push_with_its_credentials_only(built, build_vars, private_registry):
    """image_registry_username and image_registry_password: the role logs in before the push.
    Without them the push is refused, naming both; with a wrong password the login is, and
    neither password is printed; with the right ones the tag is in the registry, and a second
    build changes nothing."""
    subprocess.run(["docker", "logout", PRIVATE], capture_output=True, check=False)
    build = {**build_vars, "image_registry": private_registry["registry"], "build_colours": ["orange"],
             "image_release": False}
    anonymous = playbook("playbooks/build.yml", extra_vars=build)
    message = " ".join(anonymous.output.split())
    assert anonymous.rc != 0, anonymous.output[-3000:]
    assert f"image_registry {private_registry['registry']}: the push of" in message, message[-3000:]
    assert "image_registry_username and image_registry_password" in message

    wrong = playbook("playbooks/build.yml", extra_vars={**build, "image_registry_username": private_registry["user"],
                                                        "image_registry_password": "not-the-password-4711"})
    message = " ".join(wrong.output.split())
    assert wrong.rc != 0 and f"{PRIVATE} refused the login" in message, message[-3000:]
    assert "not-the-password-4711" not in wrong.output

    logged_in = {**build, "image_registry_username": private_registry["user"],
                 "image_registry_password": private_registry["password"]}
    pushed = playbook("playbooks/build.yml", extra_vars=logged_in)
    assert pushed.rc == 0, pushed.output[-3000:]
    tags = requests.get(f"http://{PRIVATE}/v2/{NAMESPACE}/djangoops-blog/tags/list", timeout=10,
                        auth=(private_registry["user"], private_registry["password"])).json()["tags"]
    assert tags == [f"{VERSION}-orange"]
    again = playbook("playbooks/build.yml", extra_vars=logged_in)
    assert again.rc == 0 and again.changed == 0, again.changed_tasks
    assert private_registry["password"] not in anonymous.output + wrong.output + pushed.output + again.output


def test_release_archive_holds_code_wheels_and_static(built, build_vars):
    import json
    import tarfile

    archive = Path(build_vars["image_release_dir"]) / f"djangoops-blog-{VERSION}-maroon.tar.gz"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        release = json.load(tar.extractfile("./release.json") if "./release.json" in names
                            else tar.extractfile("release.json"))
    flat = [n.removeprefix("./") for n in names]
    assert release["colour"] == "maroon" and release["version"] == VERSION
    assert release["image"] == f"{build_vars['image_registry']}/djangoops-blog:{VERSION}-maroon"
    assert "src/manage.py" in flat
    assert any(n.startswith("wheels/Django-") or n.startswith("wheels/django-") for n in flat)
    assert any(n.startswith("wheels/psycopg_binary-") and "cp311" in n for n in flat)
    # Hashed static files from collectstatic, and its manifest.
    assert "static/staticfiles.json" in flat
    assert any(re.match(r"static/admin/css/base\.[0-9a-f]{12}\.css$", n) for n in flat)


@pytest.fixture(scope="module")
def network(docker_client):
    net = docker_client.networks.create("djangoops-imagetest")
    yield net
    net.remove()


def _wait_http(url: str, want: int = 200, timeout: float = 60) -> requests.Response:
    def answered():
        resp = requests.get(url, timeout=5)
        return resp if resp.status_code == want else None

    return eventually(answered, timeout, interval=0.5, what=f"{url} answering {want}")


@pytest.mark.parametrize("colour", COLOURS)
def test_image_serves_its_colour_and_host_and_tracks_the_database(
        colour, built, build_vars, docker_client, network, postgres_image):
    ref = f"{build_vars['image_registry']}/djangoops-blog:{VERSION}-{colour}"
    # Drop the local copy: the container must come from the registry.
    docker_client.images.remove(ref, force=True)
    docker_client.images.pull(ref)

    password = secrets.token_urlsafe(16)
    db = docker_client.containers.run(
        postgres_image, detach=True, name=f"djangoops-imagetest-db-{colour}", network=network.name,
        environment={"POSTGRES_PASSWORD": password, "POSTGRES_USER": "blog", "POSTGRES_DB": "blog"})
    app = None
    try:
        env = {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": f"postgres://blog:{password}@{db.name}:5432/blog",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_SECURE_COOKIES": "false",
            "DJANGO_HSTS_SECONDS": "0",
            "BLOG_RELEASE_HEADERS": "true",
        }
        for _ in range(60):
            if db.exec_run("pg_isready -U blog -h 127.0.0.1").exit_code == 0:
                break
            time.sleep(1)
        out = docker_client.containers.run(ref, ["python", "manage.py", "migrate", "--noinput"],
                                           environment=env, network=network.name, remove=True)
        assert b"Applying blog" in out or b"No migrations to apply" in out

        hostname = f"blog-{colour}-1"
        app = docker_client.containers.run(
            ref, detach=True, name=f"djangoops-imagetest-app-{colour}", hostname=hostname,
            network=network.name, environment=env, ports={"8000/tcp": ("127.0.0.1", None)})
        app.reload()
        port = app.ports["8000/tcp"][0]["HostPort"]
        base = f"http://127.0.0.1:{port}"

        _wait_http(f"{base}/healthz")
        home = requests.get(f"{base}/", timeout=10)
        assert home.status_code == 200
        assert f'data-colour="{colour}"' in home.text
        assert f'data-served-by="{hostname}"' in home.text
        assert home.headers.get("X-Served-By") == hostname
        assert _wait_http(f"{base}/readyz").status_code == 200
        # The collection's own probes (djangoops_health in front of the blog): a probe's Host
        # (a pod's IP) need not be in ALLOWED_HOSTS.
        probe = {"Host": "10.42.0.99:8000"}
        assert requests.get(f"{base}/", headers=probe, timeout=10).status_code == 400
        live = requests.get(f"{base}/_djangoops/live", headers=probe, timeout=10)
        assert (live.status_code, live.text) == (200, "live\n")
        ready = requests.get(f"{base}/_djangoops/ready", headers=probe, timeout=10)
        assert (ready.status_code, ready.text) == (200, "ready\n")

        # Never root, and no secret baked into the image.
        assert app.exec_run("id -u").output.strip() == b"10001"
        config_env = docker_client.images.get(ref).attrs["Config"]["Env"]
        assert not [e for e in config_env if e.startswith(("SECRET_KEY=", "DATABASE_URL="))]

        db.stop(timeout=10)
        assert _wait_http(f"{base}/readyz", want=503, timeout=30).status_code == 503
        assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
        down = requests.get(f"{base}/_djangoops/ready", headers=probe, timeout=30)
        assert down.status_code == 503 and "'default'" in down.text, down.text
        assert requests.get(f"{base}/_djangoops/live", headers=probe, timeout=10).status_code == 200
    finally:
        for container in (app, db):
            if container is not None:
                container.remove(force=True, v=True)


def _layers(client, ref: str) -> list[str]:
    return client.images.get(ref).attrs["RootFS"]["Layers"]


def test_code_only_change_reuses_dependency_layers(registry, base_image, docker_client, tmp_path):
    src = tmp_path / "blog"
    shutil.copytree(REPO / "examples/blog", src,
                    ignore=shutil.ignore_patterns("__pycache__", "staticfiles", ".pytest_cache"))
    common = {
        "image_name": "djangoops-reuse-check",
        "image_push": False,
        "image_release": False,
        "image_base_image": base_image,
        "image_source_dir": str(src),
        "image_cache_dir": str(tmp_path / "cache"),
        "image_wheel_cache_dir": "/var/cache/djangoops/test-wheels",
        "image_colour": "orange",
    }
    ref = "djangoops-reuse-check:1.0-orange"
    try:
        first = playbook("playbooks/build.yml", extra_vars=common)
        assert first.rc == 0, first.output[-3000:]
        before = _layers(docker_client, ref)

        views = src / "blog" / "views.py"
        views.write_text(views.read_text() + "\n# a one-line code change\n")
        second = playbook("playbooks/build.yml", extra_vars=common)
        assert second.rc == 0, second.output[-3000:]
        assert second.changed > 0
        after = _layers(docker_client, ref)

        assert len(before) == len(after)
        differing = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
        # Only the app's own code layer changes; base, user and venv layers are reused.
        assert differing == [len(after) - 1], (before, after)
    finally:
        subprocess.run(["docker", "rmi", "-f", ref], check=False, capture_output=True)


def _wheel_dir(requirements: Path, wheel_cache: str, tmp_path: Path) -> str:
    """The wheel folder the role chooses for these requirements: the role's own expression
    (roles/image/tasks/wheels.yml), evaluated by Ansible on localhost, without a build."""
    tasks = yaml.safe_load((REPO / "roles/image/tasks/wheels.yml").read_text())
    facts = {}
    for task in tasks:
        facts.update(task.get("ansible.builtin.set_fact", {}))
    defaults = yaml.safe_load((REPO / "roles/image/defaults/main.yml").read_text())
    play = [{
        "name": "Evaluate the wheel folder", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "vars": {
            "image_requirements_file": str(requirements),
            "image_wheel_cache_dir": wheel_cache,
            "image_python_version": defaults["image_python_version"],
            "image_wheel_platforms": defaults["image_wheel_platforms"],
            "_image_requirements": facts["_image_requirements"],
            "wheel_dir": facts["_image_wheel_dir"],
        },
        "tasks": [{"name": "Show it", "ansible.builtin.debug": {"msg": "WHEEL-DIR={{ wheel_dir }}"}}],
    }]
    book = tmp_path / "wheel-dir.yml"
    book.write_text(yaml.safe_dump(play))
    result = playbook("-i", "localhost,", str(book))
    assert result.rc == 0, result.output[-2000:]
    return re.search(r"WHEEL-DIR=(\S+?)\"?$", result.output, re.MULTILINE).group(1)


def test_split_requirements_and_another_static_root(build_vars, base_image, docker_client, tmp_path):
    """A project whose requirements.txt includes base.txt (-r) and whose settings put
    STATIC_ROOT elsewhere: one build, whose release holds both files and the static files."""
    import json
    import tarfile

    src = tmp_path / "blog"
    shutil.copytree(REPO / "examples/blog", src,
                    ignore=shutil.ignore_patterns("__pycache__", "staticfiles", ".pytest_cache"))
    lines = (src / "requirements.txt").read_text().splitlines()
    top = [line for line in lines if line.lower().startswith("gunicorn")]
    assert top, lines
    (src / "base.txt").write_text("".join(f"{line}\n" for line in lines if line not in top))
    (src / "requirements.txt").write_text("-r base.txt\n" + "".join(f"{line}\n" for line in top))
    settings = src / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + '\nSTATIC_ROOT = str(BASE_DIR / "collected")\n')

    releases = tmp_path / "releases"
    extra = {
        "image_name": "djangoops-split-check",
        "image_colour": "orange",
        "image_push": False,
        "image_base_image": base_image,
        "image_source_dir": str(src),
        "image_cache_dir": str(tmp_path / "cache"),
        "image_wheel_cache_dir": build_vars["image_wheel_cache_dir"],
        "image_release_dir": str(releases),
    }
    ref = "djangoops-split-check:1.0-orange"
    try:
        result = playbook("playbooks/build.yml", extra_vars=extra)
        assert result.rc == 0, result.output[-4000:]
    finally:
        subprocess.run(["docker", "rmi", "-f", ref], check=False, capture_output=True)
    # Nothing left behind: no copy container, no staging folder.
    assert not docker_client.containers.list(all=True, filters={"name": "djangoops-release-djangoops-split-check"})
    assert not list(releases.glob(".staging*")), list(releases.iterdir())

    with tarfile.open(releases / "djangoops-split-check-1.0-orange.tar.gz") as tar:
        flat = {n.removeprefix("./"): n for n in tar.getnames()}
        release = json.load(tar.extractfile(flat["release.json"]))
        entry = tar.extractfile(flat["requirements.txt"]).read().decode()
        included = tar.extractfile(flat["requirements/base.txt"]).read().decode()
        top_copy = tar.extractfile(flat["requirements/requirements.txt"]).read().decode()
    assert release["static_root"] == "/app/collected"
    assert "media_root" not in release  # the blog sets no MEDIA_ROOT
    assert entry == "-r requirements/requirements.txt\n"
    assert included == (src / "base.txt").read_text() and "Django==" in included
    assert top_copy == (src / "requirements.txt").read_text()
    assert "static/staticfiles.json" in flat
    assert any(re.match(r"static/admin/css/base\.[0-9a-f]{12}\.css$", n) for n in flat)
    assert any(n.startswith(("wheels/Django-", "wheels/django-")) for n in flat)

    # The wheel folder follows the included file: the one the build filled, then another
    # once base.txt alone changes (evaluated, not built again).
    cache = build_vars["image_wheel_cache_dir"]
    used = _wheel_dir(src / "requirements.txt", cache, tmp_path)
    assert (Path(used) / ".complete").is_file(), used
    with (src / "base.txt").open("a") as base:
        base.write("# a change in the included file only\n")
    assert _wheel_dir(src / "requirements.txt", cache, tmp_path) != used


BAD_INPUTS = [
    ({"image_registry": ""}, "image_registry"),
    ({"image_colour": "Maroon Red"}, "image_colour"),
    ({"image_colour": "orange1"}, "image_colour"),
    ({"image_source_dir": "/nonexistent/project"}, "image_source_dir"),
    ({"image_requirements_file": "/nonexistent/requirements.txt"}, "image_requirements_file"),
    ({"image_version": "1.0 beta"}, "image_version"),
    ({"image_push": "maybe"}, "image_push"),
    ({"image_uid": 0}, "image_uid"),
    ({"image_wsgi_module": "my site.wsgi"}, "image_wsgi_module"),
    ({"image_python_version": "three"}, "image_python_version"),
    # the base image (the lab's stand-in or python:3.11-slim-bookworm) has Python 3.11
    ({"image_python_version": "3.12"}, "image_python_version"),
]


def assert_refused_before_any_change(result, cache: Path, *needles: str) -> None:
    """The build stopped, its output names every needle, and nothing changed or was written."""
    assert result.rc != 0
    for text in needles:
        assert text in result.output, result.output[-2000:]
    assert result.changed == 0
    assert not cache.exists(), "the role wrote files before rejecting its input"


@pytest.mark.parametrize(("bad", "variable"), BAD_INPUTS, ids=[b[1] + "-" + str(i) for i, b in enumerate(BAD_INPUTS)])
def test_bad_input_fails_before_any_change(bad, variable, registry, base_image, tmp_path):
    cache = tmp_path / "cache"
    good = {
        "image_registry": f"{registry}/{NAMESPACE}",
        "image_base_image": base_image,
        "image_cache_dir": str(cache),
        "image_colour": "orange",
        "image_source_dir": str(REPO / "examples" / "blog"),
    }
    result = playbook("playbooks/build.yml", extra_vars={**good, **bad})
    assert_refused_before_any_change(result, cache, variable)


def test_python_version_of_another_base_image_is_refused_naming_both(registry, base_image, tmp_path):
    """image_python_version 3.12 on the 3.11 base image: refused before any change, naming both versions."""
    cache = tmp_path / "cache"
    # --check too: the check only reads, so it runs (and refuses) there as well
    result = playbook("playbooks/build.yml", "--check", extra_vars={
        "image_registry": f"{registry}/{NAMESPACE}",
        "image_base_image": base_image,
        "image_cache_dir": str(cache),
        "image_colour": "orange",
        "image_source_dir": str(REPO / "examples" / "blog"),
        "image_python_version": "3.12",
    })
    assert_refused_before_any_change(result, cache, "image_python_version is '3.12'", base_image, "Python 3.11")


def test_missing_include_is_refused_before_any_change(registry, base_image, tmp_path):
    """A requirements file naming a file that is not there (-r) stops the build, naming both."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("Django==5.2.19\n-r base.txt\n")
    cache = tmp_path / "cache"
    # --check too: the check only reads, so it runs (and refuses) there as well
    result = playbook("playbooks/build.yml", "--check", extra_vars={
        "image_registry": f"{registry}/{NAMESPACE}", "image_base_image": base_image,
        "image_cache_dir": str(cache), "image_colour": "orange",
        "image_source_dir": str(REPO / "examples" / "blog"), "image_requirements_file": str(requirements)})
    assert_refused_before_any_change(result, cache, "image_requirements_file", str(tmp_path / "base.txt"))


def test_settings_module_that_does_not_import_is_named_and_nothing_is_pushed(build_vars, registry, tmp_path):
    """image_settings_module naming no module: the build stops at its import, the message names
    the variable and Python's own error, and no image of that tag exists or reached the registry."""
    cache = tmp_path / "cache"
    result = playbook("playbooks/build.yml", extra_vars={
        **{k: build_vars[k] for k in ("image_registry", "image_base_image", "image_source_dir",
                                      "image_wheel_cache_dir")},
        "image_cache_dir": str(cache), "image_colour": "teal", "image_version": "no-settings",
        "image_release": False, "image_settings_module": "mysite.no_such_settings"})
    assert result.rc != 0
    flat = " ".join(result.output.split())
    assert "image_settings_module 'mysite.no_such_settings' does not import" in flat.replace("''", "'"), flat[-3000:]
    assert "ModuleNotFoundError: No module named" in flat
    tags = requests.get(f"http://{registry}/v2/{NAMESPACE}/djangoops-blog/tags/list", timeout=10).json()
    assert "no-settings-teal" not in (tags.get("tags") or [])
    local = subprocess.run(["docker", "image", "inspect", f"{registry}/{NAMESPACE}/djangoops-blog:no-settings-teal"],
                           capture_output=True, check=False)
    assert local.returncode != 0, "a failed build left an image behind"


def test_requirement_with_no_wheel_is_named_before_any_build(build_vars, registry, tmp_path):
    """sgmllib3k publishes only a source archive: the wheel download stops the run, naming the
    package and the variable, before any context or image is made."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text((REPO / "examples/blog/requirements.txt").read_text() + "sgmllib3k==1.0.0\n")
    cache = tmp_path / "cache"
    result = playbook("playbooks/build.yml", extra_vars={
        **{k: build_vars[k] for k in ("image_registry", "image_base_image", "image_source_dir")},
        "image_cache_dir": str(cache), "image_wheel_cache_dir": str(tmp_path / "wheels"),
        "image_colour": "teal", "image_requirements_file": str(requirements)})
    flat = " ".join(result.output.split())
    assert result.rc != 0
    assert "image_requirements_file" in flat and "no wheel for Python 3.11" in flat, flat[-3000:]
    assert "for sgmllib3k==1.0.0" in flat
    assert result.changed == 0
    assert not cache.exists(), "a build context was made"


def test_missing_source_dir_is_refused_before_any_change(registry, base_image, tmp_path):
    """Without the lab inventory (which names examples/blog) nothing names a project."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  hosts: {}\n")
    cache = tmp_path / "cache"
    result = playbook("-i", str(inventory), "playbooks/build.yml", extra_vars={
        "image_registry": f"{registry}/{NAMESPACE}", "image_base_image": base_image,
        "image_cache_dir": str(cache), "image_colour": "orange"})
    assert_refused_before_any_change(result, cache, "image_source_dir is not set")


def test_ansible_doc_shows_every_argument():
    spec = yaml.safe_load((REPO / "roles/image/meta/argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    out = subprocess.run(["ansible-doc", "-t", "role", "djangoops.stack.image"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    for name, option in options.items():
        assert name in out
        first_words = " ".join(option["description"][0].split()[:3])
        assert first_words in " ".join(out.split()), (name, first_words)


def test_built_collection_is_the_same_collection(tmp_path):
    subprocess.run(["ansible-galaxy", "collection", "build", "--output-path", str(tmp_path)],
                   cwd=REPO, check=True, capture_output=True)
    tarball = next(tmp_path.glob("djangoops-stack-*.tar.gz"))
    dest = tmp_path / "collections"
    subprocess.run(["ansible-galaxy", "collection", "install", "--no-deps", "-p", str(dest), str(tarball)],
                   cwd=tmp_path, check=True, capture_output=True)
    installed = dest / "ansible_collections/djangoops/stack"

    def files(root: Path, sub: str) -> set[str]:
        return {str(p.relative_to(root)) for p in (root / sub).rglob("*") if p.is_file()
                and "__pycache__" not in p.parts}

    for sub in ("roles", "playbooks"):
        assert files(installed, sub) == files(REPO, sub)
    # The repository's scaffolding stays out: the local Docker lab (its role, playbooks and
    # inventories), the sample apps and the tests.
    assert (REPO / "lab" / "roles" / "lab").is_dir() and (REPO / "examples" / "blog").is_dir()
    for sub in ("lab", "examples", "inventories/lab", "inventories/lab-single", "tests"):
        assert not (installed / sub).exists(), sub
    assert not (installed / "roles" / "lab").exists()
    assert (installed / "inventories" / "vms" / "hosts.yml").is_file()
    # Outside the clone: no ansible.cfg, only the installed copy on the collections path.
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    env = {"ANSIBLE_COLLECTIONS_PATH": str(dest), "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"),
           "PATH": os.environ["PATH"], "HOME": os.environ["HOME"]}
    doc = subprocess.run(["ansible-doc", "-t", "role", "djangoops.stack.image"], cwd=tmp_path,
                         env=env, capture_output=True, text=True)
    assert doc.returncode == 0 and "image_registry" in doc.stdout, doc.stderr
    check = subprocess.run(["ansible-playbook", "--syntax-check", "djangoops.stack.build"], cwd=tmp_path,
                           env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
