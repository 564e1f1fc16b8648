"""A team's own project on its own server: examples/gallery (Django 6, Python 3.13) on one
Debian 13 host (a lab container from debian:trixie-slim) with PostgreSQL 17, deployed by
the team's own site playbook (examples/gallery-ops/site.yml, the collection's roles one by
one) from its own inventory (examples/gallery-ops/vms), with nothing else. One deployment
for the module; the lab goes at the end."""

from __future__ import annotations

import re
import time
import uuid

import pytest
import requests

import vm_helpers as vm
from ansible_run import REPO, playbook
from gallery_client import curator_session, tiny_png, upload

INVENTORY = REPO / "examples" / "gallery-ops" / "vms"
SITE = "examples/gallery-ops/site.yml"
URL = "http://127.0.0.1:8082"
PORT = 2221


def site(**extra):
    return playbook("-i", str(INVENTORY), SITE, extra_vars=extra or None)


@pytest.fixture(scope="module")
def gallery():
    vm.lab_down(INVENTORY)
    up = vm.lab_up(INVENTORY)
    assert up.rc == 0, up.output[-4000:]
    try:
        first = site()
        assert first.rc == 0, first.output[-6000:]
        yield first
    finally:
        if not vm.keep_lab():
            vm.lab_down(INVENTORY)


def test_debian_13_with_its_own_python_and_postgresql(gallery):
    host = vm.ssh_host(PORT)
    assert host.file("/etc/debian_version").content_string.startswith("13")
    assert host.run("/opt/djangoops-gallery/current/venv/bin/python -c 'import sys, django; "
                    "print(sys.version_info[:2], django.VERSION[:2])'").stdout.strip() == "(3, 13) (6, 0)"
    assert host.package("postgresql-17").is_installed
    assert host.service("postgresql").is_running


def test_its_pages_static_files_and_admin_through_nginx(gallery):
    home = requests.get(URL + "/", timeout=15)
    assert home.status_code == 200, home.text[-500:]
    assert '<h1 class="album">Featured photographs</h1>' in home.text  # seed_albums ran after migrate
    css = re.search(r'href="(/assets/photos/gallery\.[0-9a-f]{12}\.css)"', home.text)
    assert css, home.text[:800]
    asset = requests.get(URL + css.group(1), timeout=15)
    assert asset.status_code == 200 and "immutable" in asset.headers.get("Cache-Control", ""), asset.headers
    assert requests.get(URL + "/_djangoops/ready", timeout=15).status_code == 200
    curator_session(URL)


def test_an_upload_outlives_a_new_release_and_a_second_run_changes_nothing(gallery):
    png = tiny_png(int(time.time()))
    page = upload(URL, f"vm-{uuid.uuid4().hex[:8]}", png)
    html = requests.get(URL + page, timeout=15).text
    link = re.search(r'data-url="([^"]+)"', html).group(1)
    assert requests.get(URL + link, timeout=15).content == png
    host = vm.ssh_host(PORT)
    stored = "/var/lib/djangoops-gallery/media/" + link.split("/uploads/", 1)[1]
    assert host.file(stored).exists and host.file(stored).user == "djangoops-gallery"

    maroon = site(image_colour="maroon")
    assert maroon.rc == 0, maroon.output[-6000:]
    assert "maroon" in host.check_output("readlink /opt/djangoops-gallery/current")
    assert requests.get(URL + link, timeout=15).content == png
    again = site(image_colour="maroon")
    assert again.rc == 0 and again.changed == 0, [line for line in again.output.splitlines()
                                                  if line.startswith("changed:")]
