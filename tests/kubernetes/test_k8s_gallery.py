"""A team's own project on Kubernetes: examples/gallery (Django 6 on Python 3.13, settings
read from GALLERY_* names, its own STATIC_ROOT, no health endpoints, requirements split
with -r and -c, a command that must run after migrate, its own admin from a fixture),
deployed with its own inventory (examples/gallery-ops/kubernetes) and nothing else: no
extra variables, the project untouched. One deployment for the whole module.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import requests

from k8s import kubectl, kubectl_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from ansible_run import playbook  # noqa: E402

INVENTORY = "examples/gallery-ops/kubernetes"
NS = "djangoops-gallery"
APP = "djangoops-gallery"
CURATOR = ("curator", "curator-sample-password")  # the project's fixture, not the collection's


def deploy(*flags: str):
    return playbook("-i", INVENTORY, *flags, "deploy.yml", timeout=1500)


@pytest.fixture(scope="module")
def gallery():
    kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true", "--timeout=180s", timeout=200)
    first = deploy()
    assert first.rc == 0, first.output[-5000:]
    match = re.search(r"The app answers at (http://\S+/)", first.output)
    assert match, first.output[-3000:]
    yield {"first": first, "url": match.group(1).rstrip("/")}
    kubectl("delete", "namespace", NS, "--wait=false", check=False)


def test_its_pages_answer_from_its_own_database_after_its_own_command(gallery):
    """The home page reads the album that seed_albums (app_manage_commands) made after
    migrate; its hashed stylesheet comes from the project's STATIC_ROOT under its own
    STATIC_URL; a second deploy changes nothing."""
    home = requests.get(gallery["url"] + "/", timeout=15)
    assert home.status_code == 200, home.text[-500:]
    assert '<h1 class="album">Featured photographs</h1>' in home.text
    css = re.search(r'href="(/assets/photos/gallery\.[0-9a-f]{12}\.css)"', home.text)
    assert css, home.text[:800]
    asset = requests.get(gallery["url"] + css.group(1), timeout=15)
    assert asset.status_code == 200 and "immutable" in asset.headers["Cache-Control"]
    output = gallery["first"].output
    assert "ran seed_albums" in output and "ran loaddata curator" in output
    again = deploy()
    assert again.rc == 0 and again.changed == 0, [line for line in again.output.splitlines()
                                                  if line.startswith("changed:")]


def test_its_own_admin_from_its_fixture_logs_in_and_no_other_is_made(gallery):
    session = requests.Session()
    login = session.get(gallery["url"] + "/admin/login/", timeout=15)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    done = session.post(gallery["url"] + "/admin/login/?next=/admin/", allow_redirects=False, timeout=30,
                        data={"csrfmiddlewaretoken": token, "username": CURATOR[0], "password": CURATOR[1],
                              "next": "/admin/"}, headers={"Referer": gallery["url"] + "/admin/login/"})
    assert done.status_code == 302 and "sessionid" in session.cookies, done.status_code
    users = kubectl("-n", NS, "exec", f"deploy/{APP}", "--", "python", "manage.py", "shell", "-c",
                    "from django.contrib.auth.models import User; print(sorted(User.objects.values_list('username', flat=True)))")
    assert users.strip().splitlines()[-1] == "['curator']"


def test_the_collections_probes_serve_a_project_without_health_endpoints(gallery):
    container = kubectl_json("-n", NS, "get", "deployment", APP)["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/_djangoops/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/_djangoops/live"
    assert requests.get(gallery["url"] + "/_djangoops/ready", timeout=15).status_code == 200
    assert requests.get(gallery["url"] + "/healthz", timeout=15).status_code == 404  # the project has none


def test_python_3_13_django_6_and_settings_by_the_projects_names(gallery):
    versions = kubectl("-n", NS, "exec", f"deploy/{APP}", "--", "python", "-c",
                       "import sys, django; print(sys.version_info[:2], django.VERSION[:2])")
    assert versions.strip() == "(3, 13) (6, 0)"
    config = next(c for c in kubectl_json("-n", NS, "get", "configmaps")["items"]
                  if c["metadata"]["name"].startswith(f"{APP}-config-"))["data"]
    assert config["GALLERY_ALLOWED_HOSTS"] == "*" and config["GALLERY_STATIC_URL"] == "/assets/"
    assert "GALLERY_SECRET_KEY" not in config and "GALLERY_DATABASE_URL" not in config
    secret = next(s for s in kubectl_json("-n", NS, "get", "secrets")["items"]
                  if s["metadata"]["name"].startswith(f"{APP}-env-"))["data"]
    assert {"GALLERY_SECRET_KEY", "GALLERY_DATABASE_URL"} <= set(secret)
