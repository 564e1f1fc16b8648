"""`ansible-playbook deploy.yml -e target=kubernetes` against the cluster from tests/cluster/up.

The session's one deploy (conftest.e2e_site, shared with test_k8s_lock before this module
and test_k8s_backup after it) into its own namespace with the production security settings
(SSL redirect, secure cookies, HSTS), as behind a TLS-terminating ingress: requests go to
the Service's node port with `X-Forwarded-Proto: https`. Then a second run must change
nothing, and the tests check what the issue asks: 3 ready pods, spreading over pods,
data surviving the database pod, the autoscaler's CPU figures, the restricted Pod Security
Standard, `check --deploy`, and a failing migration that leaves the old pods serving.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from k8s import E2E_NS, E2E_VARS, KUBECTL, answers_within, database_sql, eventually, kubectl, kubectl_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from ansible_run import REPO, playbook  # noqa: E402
from loadgen import Load  # noqa: E402
from pem import certificate_pem, key_pem, new_key  # noqa: E402

NS = E2E_NS
APP = "djangoops-blog"
ADMIN = ("admin", "lab-only-admin-password")
DEPLOY_VARS = E2E_VARS
TLS = {"X-Forwarded-Proto": "https"}
# requests/s of real pages under load: each costs a pod about 3 to 4 ms of CPU (the list
# page or a detail page against /healthz's 1 ms), so 20/s keeps the 3 pods near 25% of
# their 100m CPU request, under the autoscaler's 70% target: a test that counts pods must
# not see the autoscaler add one because of its own load. A rollout of a minute or more
# still gets a thousand requests; more would take CPU the playbooks share on the test
# machine (docs/testing.md, stop 36).
LOAD_RATE = 20


def deploy(*flags: str, **extra):
    return playbook(*flags, "deploy.yml", extra_vars={**DEPLOY_VARS, **extra}, timeout=1500)


@pytest.fixture(scope="module")
def deployed(e2e_site):
    return e2e_site


class Browser:
    """A browser behind a TLS proxy: X-Forwarded-Proto https, and the Secure cookies
    sent back by hand (requests keeps them from plain-HTTP URLs)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.origin = "https://" + self.url.split("://", 1)[1]
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {**TLS, "Origin": self.origin, "Referer": self.origin + path, **kwargs.pop("headers", {})}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        r = requests.request(method, self.url + path, headers=headers, allow_redirects=False, timeout=15, **kwargs)
        self.cookies.update(r.cookies.get_dict())
        return r


def _csrf(html: str) -> str:
    m = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def create_post(url: str, title: str) -> None:
    b = Browser(url)
    r = b.request("GET", "/admin/login/")
    assert r.status_code == 200, r.status_code
    r = b.request("POST", "/admin/login/?next=/admin/",
                  data={"csrfmiddlewaretoken": _csrf(r.text), "username": ADMIN[0], "password": ADMIN[1],
                        "next": "/admin/"})
    assert r.status_code == 302 and "sessionid" in b.cookies, f"login failed: {r.status_code}"
    r = b.request("GET", "/admin/blog/post/add/")
    assert r.status_code == 200, r.status_code
    author = re.search(r'<select name="author"[^>]*>.*?<option value="(\d+)"', r.text, re.S)
    assert author, "no author choices on the admin form"
    r = b.request("POST", "/admin/blog/post/add/",
                  data={"csrfmiddlewaretoken": _csrf(r.text), "author": author.group(1), "title": title,
                        "text": "written through the Service", "created_date_0": "2026-01-01",
                        "created_date_1": "00:00:00", "published_date_0": "2026-01-01",
                        "published_date_1": "00:00:00", "_save": "Save"})
    assert r.status_code == 302, f"post not saved: {r.status_code} {r.text[-500:]}"


def post_path(url: str, title: str) -> str:
    """A new published post's detail page (/post/<pk>/), from its link on the list page.

    For the load generator: the list page and a detail page go through routing, the host
    check, the templates and PostgreSQL, where /healthz is answered before all of them.
    The tests deploy with the lab inventory, whose app_allowed_hosts is ["*"] with
    target=kubernetes (inventories/lab/group_vars/all/main.yml), so the Host a browser
    sends for the Service's URL (the node's address and port, Load's default) is served.
    """
    create_post(url, title)
    page = requests.get(url, headers=TLS, timeout=10)
    assert page.status_code == 200, page.status_code
    link = re.search(r'<a href="(/post/\d+/)">' + re.escape(title) + "</a>", page.text)
    assert link, f"no link to {title!r} on the list page"
    detail = requests.get(url.rstrip("/") + link.group(1), headers=TLS, timeout=10)
    assert detail.status_code == 200 and title in detail.text, detail.status_code
    assert detail.headers.get("X-Release-Colour"), "the detail page carries no X-Release-Colour"
    return link.group(1)


def app_pods() -> list[dict]:
    return kubectl_json("-n", NS, "get", "pods", "-l",
                        f"app.kubernetes.io/instance={APP},app.kubernetes.io/component=web")["items"]


def ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def test_converges_and_a_second_run_changes_nothing(deployed):
    again = deploy()
    assert again.rc == 0, again.output[-5000:]
    assert again.changed == 0, again.changed_tasks


def test_check_mode_on_the_converged_cluster_reports_no_change(deployed):
    generation = kubectl_json("-n", NS, "get", "deployment", APP)["metadata"]["generation"]
    check = deploy("--check", "--diff")
    assert check.rc == 0, check.output[-5000:]
    assert all(h["failed"] == 0 for h in check.recap.values()), check.recap
    assert check.changed == 0, check.changed_tasks
    assert kubectl_json("-n", NS, "get", "deployment", APP)["metadata"]["generation"] == generation
    # the run lock was read, not taken (test_k8s_lock: a lease held by another refuses --check)
    assert "Read the run lease" in check.output
    assert kubectl("-n", NS, "get", "leases", "-o", "name").strip() == ""


def test_a_scheduled_command_runs_as_a_cronjob(deployed):
    """E2E_VARS' app_scheduled_commands (clearsessions at 03:30, Paris time): a CronJob with
    that schedule and time zone, from the app's image (by digest) and settings, never two runs
    at once, its pods no Service's. A Job started from it now removes an expired session."""
    cronjob = kubectl_json("-n", NS, "get", "cronjob", f"{APP}-clearsessions")
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == ("30 3 * * *", "Europe/Paris", "Forbid")
    pod = spec["jobTemplate"]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    web = kubectl_json("-n", NS, "get", "deployment", APP)["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "manage.py", "clearsessions"]
    assert (container["image"], container["envFrom"]) == (web["image"], web["envFrom"])
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "scheduled"
    key = f"expired{uuid.uuid4().hex}"
    database_sql(NS, f"insert into django_session values ('{key}', 'e30', now() - interval '1 day')")
    job = f"{APP}-clearsessions-now-{uuid.uuid4().hex[:6]}"
    kubectl("-n", NS, "create", "job", job, f"--from=cronjob/{APP}-clearsessions")
    try:
        kubectl("-n", NS, "wait", "--for=condition=complete", f"job/{job}", "--timeout=120s", timeout=130)
        assert database_sql(NS, f"select count(*) from django_session where session_key = '{key}'") == "0"
    finally:
        kubectl("-n", NS, "delete", "job", job, "--ignore-not-found", "--wait=false")


def pg_answers_within(namespace: str, labels: str, seconds: int) -> subprocess.CompletedProcess:
    """pg_isready against the database's Service from a new pod of the database's image in
    namespace, with labels, for up to `seconds` (k8s.answers_within)."""
    image = kubectl_json("-n", NS, "get", "statefulset", f"{APP}-postgres")["spec"]["template"]["spec"]["containers"][0]["image"]
    return answers_within(namespace, image, labels, seconds,
                          f"pg_isready -h {APP}-postgres.{NS}.svc.cluster.local -p 5432 -t 1")


def test_only_the_collections_pods_reach_the_database(deployed):
    """The database role's NetworkPolicy, enforced by the local cluster (kube-router's
    firewall): a pod the collection makes in the namespace reaches PostgreSQL's port; a pod
    of the namespace without that label, and one of another namespace, do not in 8 seconds
    of tries (the second site of test_an_external_database_by_url..., admitted by
    database_k8s_clients, does)."""
    policy = kubectl_json("-n", NS, "get", "networkpolicy", f"{APP}-postgres")["spec"]
    assert policy["ingress"][0]["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/managed-by": "djangoops.stack"}}},
        *DEPLOY_VARS["database_k8s_clients"]]  # the second site's (test_an_external_database_by_url...)
    ours = pg_answers_within(NS, "app.kubernetes.io/managed-by=djangoops.stack", 60)
    assert ours.returncode == 0 and "accepting connections" in ours.stdout, ours.stdout + ours.stderr
    stranger = pg_answers_within(NS, "app.kubernetes.io/name=stranger", 8)
    assert stranger.returncode != 0 and "accepting connections" not in stranger.stdout, stranger.stdout + stranger.stderr
    outside = f"{NS}-outside"
    kubectl("create", "namespace", outside)
    try:
        other = pg_answers_within(outside, "app.kubernetes.io/managed-by=djangoops.stack", 8)
        assert other.returncode != 0 and "accepting connections" not in other.stdout, other.stdout + other.stderr
    finally:
        kubectl("delete", "namespace", outside, "--wait=false", check=False)


def test_three_ready_pods(deployed):
    pods = eventually(lambda: [p for p in app_pods() if ready(p)] if len(
        [p for p in app_pods() if ready(p)]) == 3 else None, timeout=120)
    assert len(pods) == 3
    deployment = kubectl_json("-n", NS, "get", "deployment", APP)
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    labels = deployment["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "djangoops.stack"
    assert labels["app.kubernetes.io/name"] == APP
    pdb = kubectl_json("-n", NS, "get", "pdb", APP)
    assert pdb["spec"]["maxUnavailable"] == 1


def test_the_service_spreads_requests_over_pods(deployed):
    url = deployed["url"]
    seen: set[str] = set()

    def two_pods():
        for _ in range(15):
            r = requests.get(url, headers=TLS, timeout=10)
            assert r.status_code == 200
            seen.add(r.headers["X-Served-By"])
            assert f'data-served-by="{r.headers["X-Served-By"]}"' in r.text  # the downward API's pod name
        return len(seen) >= 2

    eventually(two_pods, timeout=60, interval=1)
    assert seen <= {p["metadata"]["name"] for p in app_pods()}


def test_static_files_are_served_for_ever(deployed):
    page = requests.get(deployed["url"], headers=TLS, timeout=10).text
    css = re.search(r'href="(/static/[^"]+\.[0-9a-f]{12}\.css)"', page)
    assert css, "no hashed stylesheet on the page"
    r = requests.get(deployed["url"].rstrip("/") + css.group(1), headers=TLS, timeout=10)
    assert r.status_code == 200
    assert "immutable" in r.headers["Cache-Control"] and "max-age=315360000" in r.headers["Cache-Control"]


def test_plain_http_is_sent_to_https(deployed):
    r = requests.get(deployed["url"], allow_redirects=False, timeout=10)
    assert r.status_code == 301 and r.headers["Location"].startswith("https://")


def test_a_post_survives_deleting_the_database_pod(deployed):
    title = f"survivor {uuid.uuid4().hex[:8]}"
    create_post(deployed["url"], title)
    assert title in requests.get(deployed["url"], headers=TLS, timeout=10).text
    old_uid = kubectl_json("-n", NS, "get", "pod", f"{APP}-postgres-0")["metadata"]["uid"]
    kubectl("-n", NS, "delete", "pod", f"{APP}-postgres-0", "--wait=true", timeout=120)

    def back():
        pod = kubectl_json("-n", NS, "get", "pod", f"{APP}-postgres-0")
        return pod["metadata"]["uid"] != old_uid and ready(pod)

    eventually(back, timeout=180)

    def listed():
        r = requests.get(deployed["url"], headers=TLS, timeout=10)
        return r.status_code == 200 and title in r.text

    eventually(listed, timeout=120)


def test_the_autoscaler_reads_cpu(deployed):
    def cpu():
        hpa = kubectl_json("-n", NS, "get", "hpa", APP)
        for metric in hpa.get("status", {}).get("currentMetrics") or []:
            value = metric.get("resource", {}).get("current", {}).get("averageUtilization")
            if metric.get("resource", {}).get("name") == "cpu" and value is not None:
                return hpa
        return None

    hpa = eventually(cpu, timeout=240, interval=5)
    assert hpa["spec"]["minReplicas"] == 3
    assert hpa["spec"]["scaleTargetRef"]["name"] == APP


def test_the_namespace_enforces_restricted_and_admits_every_pod(deployed):
    ns = kubectl_json("get", "namespace", NS)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    pods = kubectl_json("-n", NS, "get", "pods")["items"]
    running = [p for p in pods if p["status"]["phase"] == "Running"]
    assert len(running) >= 4  # PostgreSQL and 3 app pods
    # Enforced, not just labelled: a root pod is refused.
    refused = kubectl("-n", NS, "run", "root-probe", "--image=docker.io/library/busybox:1.35.0",
                      "--restart=Never", "--dry-run=server", "--", "true", check=False)
    assert "root-probe" not in refused


def test_check_deploy_in_a_pod_prints_no_warning(deployed):
    out = kubectl("-n", NS, "exec", f"deploy/{APP}", "--", "python", "manage.py", "check", "--deploy",
                  "--fail-level", "WARNING")
    # The one silenced check is security.W021: HSTS preload only when asked (DJANGO_HSTS_PRELOAD).
    assert "System check identified no issues (1 silenced)." in out


def test_an_external_database_by_url_an_ingress_with_tls_and_a_clusterip_service(deployed):
    """No StatefulSet when database_url names the database (here the e2e namespace's, reached
    across namespaces); one pod without autoscaler; an Ingress serving TLS from the certificate
    and key given (service_tls_mode provided), with the Service ClusterIP by itself. Gunicorn
    trusts forwarded headers from the cluster's own addresses only. A second run asks
    cert-manager instead (acme): the Ingress names the issuer and the role's Secret goes."""
    ns = "djangoops-e2e-ext"
    host = "blog.example.test"
    key = new_key()
    certificate = certificate_pem(key, host)
    ext_vars = {**DEPLOY_VARS, "kubernetes_namespace": ns, "deploy_build_release": False,
                "database_url": f"postgres://blog:lab-only-db-password-not-secret@{APP}-postgres.{NS}.svc:5432/blog",
                "app_replicas": 1, "app_hpa_enabled": False,
                "service_ingress_enabled": True, "service_ingress_host": host}
    kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=180s", timeout=200)
    try:
        result = playbook("deploy.yml", timeout=900, extra_vars={
            **ext_vars, "service_tls_mode": "provided", "service_tls_certificate": certificate,
            "service_tls_private_key": key_pem(key)})
        assert result.rc == 0, result.output[-5000:]
        assert f"The app answers at https://{host}/ (through the Ingress, once its host name" in " ".join(result.output.split())
        assert "PRIVATE KEY" not in result.output
        assert kubectl_json("-n", ns, "get", "statefulsets,pvc,hpa")["items"] == []
        assert kubectl_json("-n", ns, "get", "service", APP)["spec"]["type"] == "ClusterIP"
        ingress = kubectl_json("-n", ns, "get", "ingress", APP)
        rule = ingress["spec"]["rules"][0]
        assert rule["host"] == host
        assert rule["http"]["paths"][0]["backend"]["service"]["name"] == APP
        assert ingress["spec"]["tls"] == [{"hosts": [host], "secretName": f"{APP}-tls"}]
        secret = kubectl_json("-n", ns, "get", "secret", f"{APP}-tls")
        assert secret["type"] == "kubernetes.io/tls"
        assert base64.b64decode(secret["data"]["tls.crt"]).decode().strip() == certificate.strip()
        secret_keys = kubectl_json("-n", ns, "get", "secrets", "-l", f"djangoops.dev/config-of={APP}")["items"]
        assert any("DATABASE_URL" in item.get("data", {}) for item in secret_keys)
        # The cluster's addresses, read from its Node (the pod CIDR and the node's InternalIP),
        # and the pod's own loopback.
        configs = kubectl_json("-n", ns, "get", "configmaps", "-l", f"djangoops.dev/config-of={APP}")["items"]
        assert {c["data"]["FORWARDED_ALLOW_IPS"] for c in configs} == {"10.213.98.0/24,10.213.99.2,127.0.0.1,::1"}
        headers = {**TLS, "Host": host}

        forward = subprocess.Popen([KUBECTL, "-n", ns, "port-forward", f"svc/{APP}", "18081:80"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            r = eventually(lambda: requests.get("http://127.0.0.1:18081/readyz", timeout=3), timeout=30, interval=1)
            assert r.status_code == 200  # /readyz queries the database: the external one answers
            # A port-forward arrives from the pod's loopback, trusted as by Gunicorn's default.
            page = requests.get("http://127.0.0.1:18081/", headers=headers, timeout=10, allow_redirects=False)
            assert page.status_code == 200 and page.headers["X-Served-By"].startswith(f"{APP}-")
        finally:
            forward.terminate()
            forward.wait(timeout=10)

        # A client outside the cluster that reaches a pod with its own address (a node port
        # with externalTrafficPolicy Local keeps it: this host's 10.213.99.1) cannot claim
        # HTTPS: its X-Forwarded-Proto never reaches Django, which redirects it.
        direct = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "direct", "namespace": ns},
                  "spec": {"type": "NodePort", "externalTrafficPolicy": "Local",
                           "selector": {"app.kubernetes.io/instance": APP, "app.kubernetes.io/component": "web"},
                           "ports": [{"port": 80, "targetPort": "http"}]}}
        kubectl("apply", "-f", "-", stdin=json.dumps(direct))
        node_port = kubectl_json("-n", ns, "get", "service", "direct")["spec"]["ports"][0]["nodePort"]
        page = eventually(lambda: requests.get(f"http://10.213.99.2:{node_port}/", headers=headers, timeout=5,
                                               allow_redirects=False), timeout=30, interval=1)
        assert page.status_code == 301, page.status_code
        assert page.headers["Location"] == f"https://{host}/"

        result = playbook("deploy.yml", timeout=900, extra_vars={
            **ext_vars, "service_tls_mode": "acme", "service_acme_issuer": "lab-acme"})
        assert result.rc == 0, result.output[-5000:]
        ingress = kubectl_json("-n", ns, "get", "ingress", APP)
        assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "lab-acme"
        assert ingress["spec"]["tls"] == [{"hosts": [host], "secretName": f"{APP}-tls"}]
        # The role's own Secret goes: cert-manager writes the one of that name from now on.
        assert kubectl_json("-n", ns, "get", "secrets", "-l", f"djangoops.dev/tls-of={APP}")["items"] == []
    finally:
        kubectl("delete", "namespace", ns, "--wait=false", check=False)


def broken_release(tmp: Path) -> Path:
    src = tmp / "blog"
    shutil.copytree(REPO / "examples" / "blog", src, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    migrations = sorted((src / "blog" / "migrations").glob("0*.py"))
    last = migrations[-1].stem
    (src / "blog" / "migrations" / "0999_broken.py").write_text(
        "from django.db import migrations\n\n\n"
        "def fail(apps, schema_editor):\n"
        "    raise RuntimeError('this migration is broken on purpose')\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    dependencies = [('blog', '{last}')]\n"
        "    operations = [migrations.RunPython(fail)]\n"
    )
    return src


def test_a_failing_migration_stops_the_deploy_and_the_old_pods_keep_serving(deployed, tmp_path):
    # real pages, as a browser behind the TLS proxy asks for them (plain HTTP is sent to https here)
    pages = ["/", post_path(deployed["url"], f"under load {uuid.uuid4().hex[:8]}")]
    before = {p["metadata"]["name"] for p in app_pods()}
    image_before = kubectl_json("-n", NS, "get", "deployment", APP)["spec"]["template"]["spec"]["containers"][0]["image"]
    load = Load(deployed["url"].rstrip("/"), rate=LOAD_RATE, paths=pages, headers=TLS, max_requests=10**6,
                max_seconds=1800).start()
    try:
        with load.operation():
            result = deploy(image_source_dir=str(broken_release(tmp_path)), image_version="1.1", image_colour="broken")
        time.sleep(2)
    finally:
        stats = load.stop()
    assert result.rc != 0
    assert "migration Job" in result.output and "running release keeps serving" in result.output
    assert "this migration is broken on purpose" in result.output
    assert "It was applying: blog.0999_broken." in " ".join(result.output.split())  # named before it ran
    assert kubectl_json("-n", NS, "get", "deployment", APP)["spec"]["template"]["spec"]["containers"][0]["image"] == image_before
    assert {p["metadata"]["name"] for p in app_pods()} == before
    assert stats.failed == 0 and stats.total > 100, stats.failures[:5]
    load.assert_clean()  # and the load covered the whole deploy, at the rate asked (with slack)


def test_an_image_that_cannot_be_pulled_stops_before_the_pods_change(deployed):
    before = {p["metadata"]["name"] for p in app_pods()}
    image_before = kubectl_json("-n", NS, "get", "deployment", APP)["spec"]["template"]["spec"]["containers"][0]["image"]
    result = deploy(deploy_build_release=False, image_colour="nosuchcolour")
    assert result.rc != 0
    flat = " ".join(result.output.split())
    # The tag's digest is asked from the registry before any change: a missing tag stops there.
    assert "is not in its registry" in flat, flat[-3000:]
    assert "running release keeps serving" in flat
    assert kubectl_json("-n", NS, "get", "deployment", APP)["spec"]["template"]["spec"]["containers"][0]["image"] == image_before
    assert {p["metadata"]["name"] for p in app_pods()} == before
    jobs = kubectl_json("-n", NS, "get", "jobs")["items"]
    assert not [j for j in jobs if j["spec"]["template"]["spec"]["containers"][0]["image"].endswith("nosuchcolour")]


# --- the migration Job: management commands and the superuser --------------------------
# The same release throughout: a changed commands list or reset flag names a new Job.

_SET_ADMIN_PASSWORD = (
    "from django.contrib.auth import get_user_model; "
    "u = get_user_model().objects.get(username='admin'); u.set_password('{}'); u.save()"
)


def admin_login(url: str, password: str) -> bool:
    b = Browser(url)
    r = b.request("GET", "/admin/login/")
    assert r.status_code == 200, r.status_code
    r = b.request("POST", "/admin/login/?next=/admin/",
                  data={"csrfmiddlewaretoken": _csrf(r.text), "username": ADMIN[0], "password": password,
                        "next": "/admin/"})
    return r.status_code == 302 and "sessionid" in b.cookies


def set_admin_password(password: str) -> None:
    kubectl("-n", NS, "exec", f"deploy/{APP}", "--", "python", "manage.py", "shell", "-c",
            _SET_ADMIN_PASSWORD.format(password))


def migration_jobs() -> set[str]:
    return {j["metadata"]["name"] for j in kubectl_json("-n", NS, "get", "jobs", "-l",
                                                        "app.kubernetes.io/component=migrate")["items"]}


def test_a_rotated_database_password_then_management_commands_then_both_back(deployed):
    """Rotation: the role is altered by a new Job before the app's Secret changes and its
    pods roll; the old password no longer logs in, pages that read the database answer.
    On the rotated site, a commands list names a new migration Job (the same release, no
    pod rolls): it runs them, the play logs them, and a second identical run changes
    nothing. That Job makes the superuser only when missing: a password changed in the
    database survives it, unless app_superuser_reset_password asks, which the deploy that
    puts the database password back does (a new Job again, the pods roll again).
    A second identical run changes nothing: the round trip converges.
    (One test for both: each deploy here costs a rollout on the test machine.)"""
    old = "lab-only-db-password-not-secret"
    new = "rotated-" + uuid.uuid4().hex[:12]
    changed = f"changed-in-the-admin-{uuid.uuid4().hex[:8]}"
    commands = ["createcachetable", ["check"]]

    def roles_jobs() -> set[str]:
        return {j["metadata"]["name"] for j in kubectl_json("-n", NS, "get", "jobs", "-l",
                                                             "app.kubernetes.io/component=database-roles")["items"]}

    def rotated(result, password: str, previous: str, jobs_before: set[str]) -> None:
        assert result.rc == 0, result.output[-5000:]
        assert len(roles_jobs()) == 1 and roles_jobs() != jobs_before, (jobs_before, roles_jobs())
        assert result.output.index("Set the app's user up") < result.output.index("Store the settings in a ConfigMap")
        accepted = db_login("blog", password)
        assert accepted.returncode == 0 and accepted.stdout.strip() == "1", accepted.stderr
        refused = db_login("blog", previous)
        assert refused.returncode != 0 and "password authentication failed" in refused.stderr, refused.stderr
        pages = [requests.get(deployed["url"], headers=TLS, timeout=10) for _ in range(10)]
        assert [p.status_code for p in pages] == [200] * 10

    rotation_left = False
    try:
        jobs_before = roles_jobs()
        rotation_left = True
        rotated(deploy(database_password=new), new, old, jobs_before)

        jobs_before = migration_jobs()
        deployment_before = kubectl_json("-n", NS, "get", "deployment", APP)["metadata"]["generation"]
        set_admin_password(changed)
        result = deploy(database_password=new, deploy_build_release=False, app_manage_commands=commands)
        assert result.rc == 0, result.output[-5000:]
        assert migration_jobs() - jobs_before, "no new migration Job for the commands"
        assert "Report what the migration Job did" in result.output and "ran createcachetable" in result.output
        assert "System check identified" in result.output  # check's output, read from the Job's log
        assert kubectl_json("-n", NS, "get", "deployment", APP)["metadata"]["generation"] == deployment_before
        assert admin_login(deployed["url"], changed)
        again = deploy(database_password=new, deploy_build_release=False, app_manage_commands=commands)
        assert again.rc == 0, again.output[-5000:]
        assert again.changed == 0, again.changed_tasks

        jobs_before = roles_jobs()
        rotated(deploy(deploy_build_release=False, app_superuser_reset_password=True), old, new, jobs_before)
        rotation_left = False
        assert admin_login(deployed["url"], ADMIN[1])
        again = deploy(deploy_build_release=False, app_superuser_reset_password=True)
        assert again.rc == 0 and again.changed == 0, again.changed_tasks
    finally:
        if rotation_left:  # the next tests' deploys need the password they name
            deploy(deploy_build_release=False)
        set_admin_password(ADMIN[1])


def test_a_failing_management_command_fails_the_job_and_the_old_pods_keep_serving(deployed):
    before = {p["metadata"]["name"] for p in app_pods()}
    image_before = kubectl_json("-n", NS, "get", "deployment", APP)["spec"]["template"]["spec"]["containers"][0]["image"]
    result = deploy(deploy_build_release=False, app_manage_commands=[["loaddata", "no-such-fixture"]])
    assert result.rc != 0
    # short pieces: the YAML callback may quote the message (doubling its ' quotes) and fold it
    flat = " ".join(result.output.split())
    assert "migration Job" in flat and "running release keeps serving" in flat, flat[-3000:]
    assert "the management command" in flat and "loaddata no-such-fixture" in flat and "No fixture named" in flat
    assert kubectl_json("-n", NS, "get", "deployment", APP)["spec"]["template"]["spec"]["containers"][0]["image"] == image_before
    assert {p["metadata"]["name"] for p in app_pods()} == before
    answers = [requests.get(deployed["url"], headers=TLS, timeout=10) for _ in range(10)]
    assert [r.status_code for r in answers] == [200] * 10


def db_sql(query: str, user: str = "postgres") -> str:
    """psql in the database pod, over its local socket (trusted: no password)."""
    return database_sql(NS, query, app=APP, user=user)


def db_login(user: str, password: str) -> subprocess.CompletedProcess:
    """A password login to the database pod over TCP, at the pod's own address: the app's
    way in (scram-sha-256; only the pod's loopback is trusted)."""
    return subprocess.run([KUBECTL, "-n", NS, "exec", f"{APP}-postgres-0", "-c", "postgresql", "--", "bash", "-c",
                           'PGPASSWORD="$1" psql -h "$(hostname -i)" -U "$2" -d blog -XtAc "SELECT 1"', "-", password,
                           user], capture_output=True, text=True, timeout=60, check=False)


def test_the_apps_user_owns_its_database_and_is_no_superuser(deployed):
    assert db_sql("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'blog'") == "f|f|f"
    assert db_sql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'blog'") == "blog"
    assert db_sql("SELECT rolsuper FROM pg_roles WHERE rolname = 'postgres'") == "t"
    secret = kubectl_json("-n", NS, "get", "secret", f"{APP}-postgres")["data"]
    assert set(secret) == {"SUPERUSER_PASSWORD", "APP_PASSWORD"}
    assert base64.b64decode(secret["SUPERUSER_PASSWORD"]) != base64.b64decode(secret["APP_PASSWORD"])


def test_another_postgresql_major_version_is_refused_before_any_change(deployed):
    """A new major version cannot start on the old data (it would crash-loop): the deploy
    stops in its checks, before the image is built, naming the variable and the way."""
    def image() -> str:
        sts = kubectl_json("-n", NS, "get", "statefulset", f"{APP}-postgres")
        return sts["spec"]["template"]["spec"]["containers"][0]["image"]

    before = image()
    result = deploy(database_image="postgres:17")
    assert result.rc != 0, result.output[-3000:]
    assert "database_image postgres:17 is PostgreSQL 17" in result.output, result.output[-3000:]
    assert "written by PostgreSQL 15" in result.output and "Nothing changed" in result.output
    assert result.changed == 0, result.recap
    assert image() == before


# Bad values in batches (a run each cost about 8 s): a role names every bad input of one
# step in one message, and the deploy stops at the first step that finds one (the
# namespace, the database, the app, then the service's argument spec). Needles are pieces
# of the messages, read in PlaybookResult.said.
BAD = {
    "namespace Kubernetes rejects": ({"kubernetes_namespace": "Blog_Prod"},
                                     ["namespace_name (default: kubernetes_namespace) is 'Blog_Prod'"]),
    "empty database password, storage size not a quantity, clients not NetworkPolicy peers": (
        {"database_password": "", "database_storage_size": "lots", "database_k8s_clients": [{"pods": "all"}]},
        ["database_password is empty", "database_storage_size 'lots' is not a Kubernetes quantity",
         "database_k8s_clients must be a list of NetworkPolicy peers"]),
    "no replicas, no image": ({"app_replicas": 0, "app_image": ""},
                              ["app_image '' must name an image with a tag", "app_replicas is 0"]),
    "autoscaler below its minimum": ({"app_hpa_max_replicas": 2}, ["app_hpa_max_replicas (2) is below app_replicas (3)"]),
    "unknown service type": ({"service_type": "Ingress"}, ["value of service_type must be one of"]),
}


def test_code_rebuilt_under_the_same_tag_rolls_out_by_digest(deployed, tmp_path):
    """One line of the project changed, deployed again under the same version and colour:
    the tag is rebuilt in place and pushed; the deploy pins its new digest, so the pods roll
    and the new code answers (with tags and IfNotPresent, the old pods would have stayed)."""
    marker = f"rebuilt-{uuid.uuid4().hex[:8]}"
    src = tmp_path / "blog"
    shutil.copytree(REPO / "examples" / "blog", src, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    base = src / "blog" / "templates" / "blog" / "base.html"
    base.write_text(base.read_text().replace("</body>", f"<!-- {marker} -->\n</body>"))
    digest_before = kubectl_json("-n", NS, "get", "deployment", APP)["spec"]["template"]["spec"]["containers"][0]["image"]
    result = deploy(image_source_dir=str(src))
    assert result.rc == 0, result.output[-5000:]
    template = kubectl_json("-n", NS, "get", "deployment", APP)["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] != digest_before and "@sha256:" in digest_before
    assert template["metadata"]["annotations"]["djangoops.dev/image"].endswith(":1.0-orange")
    b = Browser(deployed["url"])
    assert all(marker in b.request("GET", "/").text for _ in range(10)), "a pod still runs the old code"


@pytest.mark.parametrize("extra,needles", BAD.values(), ids=BAD.keys())
def test_bad_input_stops_before_any_change(extra, needles):
    ns = "djangoops-badinput"
    result = playbook("deploy.yml", extra_vars={**DEPLOY_VARS, "kubernetes_namespace": ns, **extra}, timeout=300)
    assert result.rc != 0, result.output[-3000:]
    said = result.said
    missing = [needle for needle in needles if needle not in said]
    assert not missing, (missing, said[-3000:])
    assert result.changed == 0, result.recap
    assert "Build the app image" not in result.output.split("fatal:", 1)[0].rsplit("PLAY [", 1)[-1]
    assert kubectl("get", "namespace", ns, "--ignore-not-found").strip() == ""
