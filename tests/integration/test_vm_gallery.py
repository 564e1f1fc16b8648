"""A team's own project on its own servers: examples/gallery (Django 6, Python 3.13) on two
Debian 13 hosts (lab containers from debian:trixie-slim), PostgreSQL 17 and NGINX on the
first, Gunicorn on both, uploads in a bucket of the test stack's S3 server, deployed by the
team's own site playbook (examples/gallery-ops/site.yml, the collection's roles one by one)
from its own inventory (examples/gallery-ops/vms), with nothing else. One deployment for
the module; the lab goes at the end."""

from __future__ import annotations

import re
import subprocess
import time
import uuid

import pytest
import requests

import vm_helpers as vm
from ansible_run import REPO, playbook
from gallery_client import Ticker, curator_session, queue_tick, thumbnail, tick_runs, tiny_png, upload
from loadgen import Load

INVENTORY = REPO / "examples" / "gallery-ops" / "vms"
SITE = "examples/gallery-ops/site.yml"
URL = "http://127.0.0.1:8082"
PORT = 2221
PORTS = {"gallery1": 2221, "gallery2": 2222}
ADDRESSES = {"gallery1": "10.213.89.10", "gallery2": "10.213.89.11"}
GATEWAY = "10.213.89.1"  # the lab network's, where tests/harness/s3-forward puts the S3 server
BUCKET = "djangoops-gallery-vm-media"


def s3_forward(*args: str) -> None:
    subprocess.run([str(REPO / "tests" / "harness" / "s3-forward"), GATEWAY, *args], check=True, timeout=60)


def site(**extra):
    return playbook("-i", str(INVENTORY), SITE, extra_vars=extra or None)


@pytest.fixture(scope="module")
def gallery():
    s3_forward("stop")  # one left by an interrupted run
    vm.lab_down(INVENTORY)
    up = vm.lab_up(INVENTORY)
    assert up.rc == 0, up.output[-4000:]
    s3_forward()
    try:
        first = site()
        assert first.rc == 0, first.output[-6000:]
        yield first
    finally:
        if not vm.keep_lab():
            s3_forward("stop")
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
    # The collection's health endpoints answer the hosts' own checks, not the public.
    assert requests.get(URL + "/_djangoops/ready", timeout=15).status_code == 404
    curator_session(URL)


def storage_has(host: str, name: str) -> str:
    """What the project's default storage says about name on one app server."""
    return vm.ssh_host(PORTS[host]).check_output(
        "djangoops-gallery-manage shell -c %s",
        f"from django.core.files.storage import default_storage as s; print(s.exists({name!r}))").split()[-1]


def photo_link(base: str, page: str, host_header: str | None = None) -> str:
    html = requests.get(base + page, timeout=15, headers={"Host": host_header} if host_header else {})
    assert html.status_code == 200, (base, html.status_code)
    return re.search(r'data-url="([^"]+)"', html.text).group(1).replace("&amp;", "&")


def day2(name: str, **extra):
    """One of the collection's day-2 playbooks (playbooks/<name>.yml) with the team's inventory."""
    return playbook("-i", str(INVENTORY), f"playbooks/{name}.yml", extra_vars=extra or None)


def under_load(paths: list[str], run):
    """run() while real pages (the list and a photo's page, through NGINX) are loaded at 15/s:
    its result, once the load covered it without a failed request."""
    traffic = Load(URL, rate=15, paths=paths, max_requests=10**6, max_seconds=900).start()
    time.sleep(2)
    try:
        with traffic.operation():
            result = run()
        time.sleep(2)
    finally:
        stats = traffic.stop()
    assert result.rc == 0, result.output[-6000:]
    assert stats.total >= 100 and stats.failed == 0, (stats.summary(), stats.failures[:5])
    traffic.assert_clean()
    return result


def colours() -> set[str]:
    """The colour of the release each server's `current` names."""
    targets = [vm.ssh_host(port).check_output("readlink /opt/djangoops-gallery/current") for port in PORTS.values()]
    return {next((c for c in ("orange", "maroon") if f"-{c}" in target), target) for target in targets}


def thumbnail_is_made(page: str) -> None:
    """The upload's thumbnail, made in the background by a Celery worker (app_processes) through
    Redis (djangoops.stack.broker) on one of the two servers, is on the photo's page and in the
    bucket, a JPEG."""
    link, worker = thumbnail(URL, page)
    assert f"/{BUCKET}/thumbnails/" in link, link
    assert requests.get(link, timeout=15).content[:3] == b"\xff\xd8\xff"
    assert worker in PORTS, worker


def test_a_worker_per_server_and_redis_on_the_first_only_for_the_app_servers(gallery):
    """app_processes on VMs: one Celery worker unit on each server, running the release
    `current` names as the app's user; Redis (Debian's package) on the database host with a
    password, refusing a client without it and any host that is not an app server."""
    for port in PORTS.values():
        host = vm.ssh_host(port)
        assert host.service("djangoops-gallery-worker@1").is_running
        assert host.service("djangoops-gallery-worker@1").is_enabled
        main = host.check_output("systemctl show -p MainPID --value djangoops-gallery-worker@1")
        assert host.check_output(f"ps -o user= -p {main}") == "djangoops-gallery"
    first = vm.ssh_host(PORT)
    assert first.check_output("redis-cli -h 127.0.0.1 ping 2>&1") .startswith("NOAUTH")
    # the test controller (the lab's gateway) is not an app server: nftables resets it
    refused = subprocess.run(["python3", "-c", f"import socket; socket.create_connection(({ADDRESSES['gallery1']!r}, 6379), 5)"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "Connection refused" in refused.stderr, refused.stderr
    # an app server reaches it
    assert vm.ssh_host(PORTS["gallery2"]).run(
        f"timeout 5 bash -c 'exec 3<>/dev/tcp/{ADDRESSES['gallery1']}/6379'").rc == 0


def test_beat_a_singleton_runs_on_one_of_the_two_servers_and_queues_each_heartbeat_once(gallery):
    """Celery beat (app_processes, singleton: true) with two servers in its group: its unit on
    the group's first server only; the heartbeats it queues every 5 s were all sent from
    there, and none closer than 3 s to the next (a second beat anywhere would halve the gaps)."""
    assert vm.ssh_host(PORTS["gallery1"]).service("djangoops-gallery-beat@1").is_running
    assert vm.ssh_host(PORTS["gallery2"]).run("systemctl cat djangoops-gallery-beat@1").rc != 0
    session = curator_session(URL)
    since = time.time()
    deadline = time.monotonic() + 60
    while True:
        beats = sorted((float(key.rsplit("-", 1)[1]), key) for key in tick_runs(session, URL, "beat-")
                       if float(key.rsplit("-", 1)[1]) > since)
        if len(beats) >= 4 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert len(beats) >= 4, beats
    assert {key.split("-")[1] for _, key in beats} == {"gallery1"}, beats
    gaps = [later - earlier for (earlier, _), (later, _) in zip(beats, beats[1:])]
    assert min(gaps) > 3, gaps


def runs_become(session, key: str, expected: dict[str, int], seconds: float) -> None:
    """Wait until the runs of the tasks under key (and "<key>/started") are expected."""
    deadline = time.monotonic() + seconds
    while (runs := tick_runs(session, URL, key)) != expected and time.monotonic() < deadline:
        time.sleep(0.5)
    assert runs == expected, runs


def test_a_worker_killed_mid_task_leaves_the_task_to_a_worker_that_runs_it_once(gallery):
    """The gallery's tasks are acknowledged once they ran (acks_late, reject_on_worker_lost):
    the worker processes running a task killed (SIGKILL, as the OOM killer does) while it runs,
    Celery gives the task back to the broker and a worker runs it again from the start, to its
    end, once; the worker services stay up."""
    session = curator_session(URL)
    key = f"slow-{uuid.uuid4().hex[:12]}"
    assert queue_tick(session, URL, key, seconds=8).json() == {"queued": True, "key": key}
    runs_become(session, key, {f"{key}/started": 1}, seconds=60)
    for port in PORTS.values():  # the pool's processes, on both servers: one of them runs it
        vm.ssh_host(port).check_output(
            "pkill -KILL -P $(systemctl show -p MainPID --value djangoops-gallery-worker@1)")
    runs_become(session, key, {f"{key}/started": 2, key: 1}, seconds=90)
    assert all(vm.ssh_host(port).service("djangoops-gallery-worker@1").is_running for port in PORTS.values())


def test_an_upload_is_in_the_bucket_for_both_servers_and_outlives_an_upgrade_and_a_rollback(gallery):
    """An image uploaded through NGINX lands in the bucket (django-storages, laid over the
    project's FileSystemStorage): both app servers find it, each one's page links it
    (signed) and the link answers the same bytes; a Celery worker makes its thumbnail. The
    collection's upgrade.yml to maroon and rollback.yml, with the team's inventory, lose no
    request under load, tasks queued through the site during the upgrade each run exactly
    once, and the upload is served after each. The team's site playbook then changes nothing."""
    png = tiny_png(int(time.time()))
    page = upload(URL, f"vm-{uuid.uuid4().hex[:8]}", png)
    link = photo_link(URL, page)
    assert f"http://{GATEWAY}:7070/{BUCKET}/photos/" in link and "X-Amz-Signature=" in link, link
    assert requests.get(link, timeout=15).content == png
    name = link.split(f"/{BUCKET}/", 1)[1].split("?", 1)[0]
    assert {host: storage_has(host, name) for host in PORTS} == {host: "True" for host in PORTS}
    for address in ADDRESSES.values():  # each server's Gunicorn, past NGINX
        own = photo_link(f"http://{address}:8000", page, host_header="localhost")
        assert requests.get(own, timeout=15).content == png
    # nothing of it in the servers' uploads folder: the bucket holds it
    assert not vm.ssh_host(PORT).file("/var/lib/djangoops-gallery/media/" + name).exists
    thumbnail_is_made(page)

    # tasks queued through the site at 4/s all through the upgrade, while each server's worker
    # restarts on the new release (SIGTERM, its task finished): each runs exactly once
    ticker = Ticker(URL).start()
    try:
        under_load(["/", page], lambda: day2("upgrade", image_colour="maroon"))
        time.sleep(2)
    finally:
        ticker.stop()
    assert len(ticker.queued) >= 100, len(ticker.queued)
    ticker.assert_each_ran_once()
    assert colours() == {"maroon"}
    assert requests.get(photo_link(URL, page), timeout=15).content == png

    under_load(["/", page], lambda: day2("rollback"))
    assert colours() == {"orange"}
    assert requests.get(photo_link(URL, page), timeout=15).content == png
    # the workers went back with the release: a new upload still gets its thumbnail
    thumbnail_is_made(upload(URL, f"vm-{uuid.uuid4().hex[:8]}", tiny_png(int(time.time()) + 1)))

    # Another app on this server whose name begins with this one's and a hyphen: the team's
    # site playbook leaves its process units alone (the app role knows its own by their line
    # X-Djangoops-App, not by the name pattern djangoops-gallery-*@, which matches them too).
    first = vm.ssh_host(PORTS["gallery1"])
    other = "/etc/systemd/system/djangoops-gallery-api-worker@.service"
    first.check_output(f"printf '[Unit]\\nDescription=another app\\n[Service]\\nExecStart=/bin/sleep infinity\\n"
                       f"[Install]\\nWantedBy=multi-user.target\\n' > {other} && systemctl daemon-reload"
                       " && systemctl enable --now djangoops-gallery-api-worker@1")
    try:
        again = site()
        assert again.rc == 0 and again.changed == 0, again.changed_tasks
        assert first.file(other).exists and first.service("djangoops-gallery-api-worker@1").is_running
    finally:
        first.run(f"systemctl disable --now djangoops-gallery-api-worker@1; rm -f {other}; systemctl daemon-reload")


def test_a_broker_the_servers_cannot_reach_stops_before_any_change(gallery):
    """A broker URL whose port nothing answers on: the app step stops on the first server,
    naming the address (not the password), before its settings, migrations or release
    change; the workers keep running."""
    result = site(app_broker_url="redis://:never-shown@10.213.89.10:6390/0")
    assert result.rc != 0, result.output[-3000:]
    assert "does not reach the broker at 10.213.89.10:6390" in result.output, result.output[-3000:]
    assert "never-shown" not in result.output
    assert result.changed == 0, result.changed_tasks
    assert all(vm.ssh_host(port).service("djangoops-gallery-worker@1").is_running for port in PORTS.values())
