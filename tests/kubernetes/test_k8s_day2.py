"""Day-2 operations on Kubernetes (issue 6): upgrade orange to maroon, roll back, a
release that fails its health check, a tag that does not exist, scaling, self-healing
and teardown, each while a bounded load generator on this machine sends requests for real
pages (the list page and a post's detail page: routing, the host check, templates and
PostgreSQL) through the Service (tests/integration/loadgen.py, open loop), asserting that
none fails, that the load covered the whole operation and that at least half of rate x
its duration was sent during it (Load.assert_clean).
benchmarks/k8s_upgrade.sh runs the same with 50,000 requests at 250/s.
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from k8s import (AWX_NS, database_sql, deployer_credential, eventually, fresh_deployment, kubectl, kubectl_json,
                 remove_deployer, site_url)
from test_k8s_deploy import LOAD_RATE, TLS, Browser, create_post, post_path  # noqa: F401  (Browser used by create_post)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import awx_job as awx  # noqa: E402
from ansible_run import REPO, playbook  # noqa: E402
from blog_releases import add_subtitle  # noqa: E402
from loadgen import Load  # noqa: E402

NS = "djangoops-day2"
APP = "djangoops-blog"
# The autoscaler honours a lower minimum (scale.yml) once its scale-down window has
# passed: 20 s here instead of Kubernetes' 300, so the tests need not wait five minutes.
# A scheduled command that never comes due in a run (New Year): its CronJob follows the release.
BASE = {"target": "kubernetes", "kubernetes_namespace": NS, "app_hpa_scale_down_stabilization": 20,
        "app_scheduled_commands": [{"name": "yearly", "schedule": "@yearly", "command": "clearsessions"}]}
RATE = LOAD_RATE  # requests/s of real pages (why not more: test_k8s_deploy.LOAD_RATE); a thousand or more per test


def run(pb: str, **extra):
    return playbook(pb, extra_vars={**BASE, **extra}, timeout=1500)


@pytest.fixture(scope="module")
def url():
    with fresh_deployment(NS, lambda: run("deploy.yml", image_colour="orange")) as (_, address):
        yield address


def real_pages(url: str) -> list[str]:
    """The list page and a new post's detail page (sent with the Service URL's Host: the
    lab inventory's app_allowed_hosts is ["*"] on Kubernetes; see post_path)."""
    return ["/", post_path(url, f"under load {uuid.uuid4().hex[:8]}")]


@pytest.fixture(scope="module")
def pages(url) -> list[str]:
    return real_pages(url)


def under_load(url: str, pages: list[str], action, settle: float = 3.0):
    """Run action() while requests for pages flow through the Service; return (action's
    result, load summary). The summary's "stats" has assert_clean() for the operation."""
    load = Load(url.rstrip("/"), rate=RATE, paths=pages, max_requests=10**6, max_seconds=1800).start()
    time.sleep(settle)
    try:
        with load.operation():
            result = action()
        time.sleep(settle)
    finally:
        stats = load.stop()
    runs = stats.colour_runs()
    return result, {"ok": stats.ok, "failed": stats.failed, "reasons": stats.reasons(),
                    "failures": [s.error or s.status for s in stats.failures[:5]],
                    "first_colour": runs[0][0] if runs else None, "last_colour": runs[-1][0] if runs else None,
                    "stats": stats}


def web_image() -> str:
    return kubectl_json("-n", NS, "get", "deployment", APP)["spec"]["template"]["spec"]["containers"][0]["image"]


def scheduled_image() -> str:
    cronjob = kubectl_json("-n", NS, "get", "cronjob", f"{APP}-yearly")
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"]


def image() -> str:
    """The tag the pods' image was pinned from (they run it by digest)."""
    template = kubectl_json("-n", NS, "get", "deployment", APP)["spec"]["template"]
    assert "@sha256:" in template["spec"]["containers"][0]["image"], template["spec"]["containers"][0]["image"]
    return template["metadata"]["annotations"]["djangoops.dev/image"]


def colours(url: str, n: int = 30) -> set[str]:
    return {requests.get(url + "healthz", timeout=5).headers["X-Release-Colour"] for _ in range(n)}


def ready_pods() -> list[str]:
    pods = kubectl_json("-n", NS, "get", "pods", "-l",
                        f"app.kubernetes.io/instance={APP},app.kubernetes.io/component=web")["items"]
    return [p["metadata"]["name"] for p in pods if p["metadata"].get("deletionTimestamp") is None
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]


@pytest.fixture(scope="module")
def awx_job(url, ee_image, tmp_path_factory):
    """awx_job("djangoops upgrade Kubernetes", {survey answers}) -> the job template run as
    AWX runs it, in the execution environment, as its non-root user, with --become as the
    privilege escalation toggle passes it (tests/integration/awx_job.py): the inventory is
    the export's "djangoops Kubernetes" (localhost) with this module's settings, the
    cluster's credential a ServiceAccount token with only awx/kubernetes-rbac.yml's rights,
    bound in this namespace; no kubeconfig."""
    # check_url: the smoke check's address (the Service's, as the test reaches it)
    inventory = awx.kubernetes_inventory({}, {**{k: v for k, v in BASE.items() if k != "target"}, "check_url": url})
    credentials = [awx.secrets_credential(), awx.Credential(awx.KUBERNETES_TOKEN, deployer_credential(NS))]
    workdir = tmp_path_factory.mktemp("awx-jobs")

    def _job(template: str, answers: dict) -> awx.JobResult:
        return awx.run_job(ee_image, template, inventory=inventory, workdir=workdir, answers=answers,
                           credentials=credentials, become=True)

    yield _job
    remove_deployer()


def test_upgrade_orange_to_maroon_without_a_failed_request(url, pages, awx_job):
    """The "djangoops release Kubernetes" workflow of the export, node by node as AWX runs
    it: the build (Docker) on this machine pushes the release's image; the upgrade job, under
    load, in the execution environment; the smoke check job loads the site's pages. Then
    the upgrade job again and the deploy job of the same release change nothing."""
    assert colours(url) == {"orange"}
    answers = {"image_version": "1.0", "image_colour": "maroon"}
    load = {}

    def node(template: str, answers: dict):
        if template == "djangoops build":
            return run("playbooks/build.yml", **answers)
        if template == "djangoops upgrade Kubernetes":
            result, load["upgrade"] = under_load(url, pages, lambda: awx_job(template, answers))
            return result
        return awx_job(template, answers)

    ran = awx.run_workflow("djangoops release Kubernetes", answers, node)
    assert [t for t, _ in ran] == ["djangoops build", "djangoops upgrade Kubernetes",
                                   "djangoops smoke check Kubernetes"], ran[-1][1].output[-5000:]
    assert all(r.rc == 0 for _, r in ran), ran[-1][1].output[-5000:]
    assert ran[1][1].status == "successful"
    assert f"{url.rstrip('/')}/ answered 200" in ran[2][1].output, ran[2][1].output[-3000:]
    load = load["upgrade"]
    assert load["failed"] == 0 and load["ok"] > 500, load
    load["stats"].assert_clean()
    assert load["first_colour"] == "orange" and load["last_colour"] == "maroon", load
    assert colours(url) == {"maroon"}
    assert image().endswith(":1.0-maroon")
    assert scheduled_image() == web_image(), "the scheduled command runs the new release"
    for template in ("djangoops upgrade Kubernetes", "djangoops deploy Kubernetes"):
        again = awx_job(template, answers)
        assert again.rc == 0 and again.changed == 0, (template, again.changed_tasks, again.output[-3000:])
    # the jobs' rights were those of awx/kubernetes-rbac.yml in this namespace, no more
    deployer = f"--as=system:serviceaccount:{AWX_NS}:djangoops-deployer"
    assert kubectl("auth", "can-i", "patch", "deployments", "-n", NS, deployer).strip() == "yes"
    for elsewhere in (["get", "secrets", "-n", "kube-system"], ["create", "deployments", "-n", "default"],
                      ["create", "clusterrolebindings"]):
        assert kubectl("auth", "can-i", *elsewhere, deployer, check=False).strip() == "no", elsewhere


def test_rollback_without_a_failed_request_and_only_once(url, pages, awx_job):
    """The rollback job template in the execution environment, under load; then again: it
    does not roll forward."""
    assert image().endswith(":1.0-maroon")
    answers = {"rolling_upgrade_reverse_migrations": False}
    result, load = under_load(url, pages, lambda: awx_job("djangoops rollback Kubernetes", answers))
    assert result.rc == 0 and result.status == "successful", result.output[-5000:]
    assert load["failed"] == 0, load
    load["stats"].assert_clean()
    assert colours(url) == {"orange"}
    assert scheduled_image() == web_image(), "the scheduled command runs the release that serves again"
    again = awx_job("djangoops rollback Kubernetes", answers)  # does not roll forward again
    assert again.rc == 0 and again.changed == 0, (again.changed_tasks, again.output[-3000:])
    assert colours(url) == {"orange"}


def expand_release(tmp: Path) -> Path:
    """The blog with a nullable column more (blog.0002_post_subtitle), a migration orange's
    code does not know."""
    import shutil

    src = tmp / "blog"
    shutil.copytree(REPO / "examples" / "blog", src, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    return add_subtitle(src)


def test_a_rollback_across_a_migration_the_older_release_does_not_know(url, pages, tmp_path):
    """orange -> teal (adds blog.0002_post_subtitle): a rollback is refused before the
    Deployment changes, naming it and both ways out; with rolling_upgrade_reverse_migrations
    the pods go back to orange under load with no failed request, then teal's image runs
    the migration backwards in a Job."""
    assert image().endswith(":1.0-orange")
    upgraded = run("playbooks/upgrade.yml", image_source_dir=str(expand_release(tmp_path)), image_version="1.3",
                   image_colour="teal")
    assert upgraded.rc == 0, upgraded.output[-5000:]
    applied = "select count(*) from django_migrations where app = 'blog' and name = '0002_post_subtitle'"
    assert database_sql(NS, applied) == "1"
    template = kubectl_json("-n", NS, "get", "deployment", APP)["spec"]["template"]

    refused = run("playbooks/rollback.yml")
    message = " ".join(refused.output.split())
    assert refused.rc != 0, refused.output[-4000:]
    assert "Rollback refused, the app unchanged" in message and "blog.0002_post_subtitle" in message, message[-3000:]
    assert "1.0-orange does not know" in message and "manage.py migrate blog 0001_initial" in message, message[-3000:]
    assert kubectl_json("-n", NS, "get", "deployment", APP)["spec"]["template"] == template
    assert colours(url) == {"teal"}

    result, load = under_load(url, pages, lambda: run("playbooks/rollback.yml", rolling_upgrade_reverse_migrations=True))
    assert result.rc == 0, result.output[-5000:]
    assert load["failed"] == 0, load
    load["stats"].assert_clean()
    assert colours(url) == {"orange"}
    assert database_sql(NS, applied) == "0"
    assert database_sql(NS, "select count(*) from information_schema.columns where table_name = 'blog_post' "
                        "and column_name = 'subtitle'") == "0"
    assert not kubectl_json("-n", NS, "get", "jobs", "-l", "app.kubernetes.io/component=schema")["items"]


def unhealthy_release(tmp: Path) -> Path:
    """The blog with a WSGI module that cannot load: migrations pass, pods never get ready."""
    import shutil

    src = tmp / "blog"
    shutil.copytree(REPO / "examples" / "blog", src, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    with (src / "mysite" / "wsgi.py").open("a") as f:
        f.write("\nraise RuntimeError('this release cannot serve, on purpose')\n")
    return src


def test_a_release_that_fails_its_health_check_is_rolled_back(url, pages, tmp_path):
    before = image()
    result, load = under_load(url, pages, lambda: run("playbooks/upgrade.yml", image_source_dir=str(unhealthy_release(tmp_path)),
                                               image_version="1.2", image_colour="sick",
                                               rolling_upgrade_k8s_timeout=60))
    assert result.rc != 0
    flat = " ".join(result.output.split())
    assert "were not ready within 60 s" in flat and f"rolled back to {before}" in flat, flat[-3000:]
    assert load["failed"] == 0, load
    load["stats"].assert_clean()
    assert image() == before
    eventually(lambda: len(ready_pods()) == 3, timeout=120)
    assert colours(url) == {"orange"}


def test_an_image_tag_that_does_not_exist_changes_no_pod(url, pages):
    before, pods = image(), set(ready_pods())
    result, load = under_load(url, pages, lambda: run("playbooks/upgrade.yml", deploy_build_release=False,
                                               image_colour="nosuchcolour"))
    assert result.rc != 0
    flat = " ".join(result.output.split())
    assert "is not in its registry" in flat and "running release keeps serving" in flat, flat[-3000:]
    assert load["failed"] == 0, load
    load["stats"].assert_clean()
    assert image() == before and set(ready_pods()) == pods


def test_scale_up_and_down(url, pages, awx_job):
    result = run("playbooks/scale.yml", scale_replicas=5)
    assert result.rc == 0, result.output[-5000:]
    eventually(lambda: len(ready_pods()) == 5, timeout=180)
    assert kubectl_json("-n", NS, "get", "hpa", APP)["spec"]["minReplicas"] == 5
    again = run("playbooks/scale.yml", scale_replicas=5)
    assert again.rc == 0 and again.changed == 0, again.changed_tasks
    # down again as the scale job template, in the execution environment
    result, load = under_load(url, pages, lambda: awx_job("djangoops scale Kubernetes", {"scale_replicas": 3}))
    assert result.rc == 0 and result.status == "successful", result.output[-5000:]
    assert load["failed"] == 0, load
    load["stats"].assert_clean()
    eventually(lambda: len(ready_pods()) == 3, timeout=180)
    bad = run("playbooks/scale.yml", scale_replicas=0)
    assert bad.rc != 0 and "scale_replicas" in bad.output and bad.changed == 0


def test_a_deleted_pod_is_replaced_without_a_failed_request(url, pages):
    before = ready_pods()
    victim = before[0]

    def healed():
        now = ready_pods()  # the autoscaler may add pods under load, never fewer than before
        return len(now) >= len(before) and victim not in now

    def delete_and_heal():
        kubectl("-n", NS, "delete", "pod", victim, "--wait=false")
        return eventually(healed, timeout=120, interval=1)

    _, load = under_load(url, pages, delete_and_heal)
    assert load["failed"] == 0, load
    load["stats"].assert_clean()


def test_a_deploy_leaves_the_autoscalers_count_alone(url, pages):
    """With the autoscaler on, the Deployment's replicas are the autoscaler's: a deploy while it
    runs more pods than app_replicas removes none and reports no change."""
    # Any CPU use is over 1% of the pods' request: the autoscaler goes to its maximum.
    eager = {"image_colour": "orange", "deploy_build_release": False,
             "app_hpa_cpu_utilization": 1, "app_hpa_max_replicas": 5}
    first = run("deploy.yml", **eager)
    assert first.rc == 0, first.output[-5000:]

    def at_max():
        d = kubectl_json("-n", NS, "get", "deployment", APP)
        return d["spec"]["replicas"] == 5 and len(ready_pods()) == 5

    under_load(url, pages, lambda: eventually(at_max, timeout=240, interval=2))
    before = set(ready_pods())
    again, load = under_load(url, pages, lambda: run("deploy.yml", **eager))
    assert again.rc == 0 and again.changed == 0, again.changed_tasks
    load["stats"].assert_clean()
    assert kubectl_json("-n", NS, "get", "deployment", APP)["spec"]["replicas"] == 5
    assert before <= set(ready_pods()), "a pod the autoscaler started was removed by the deploy"


def test_teardown_keeps_the_data_then_the_articles_way_brings_it_back_in_two_colours(url):
    """A teardown keeps the data unless asked. The redeploy that shows it kept is the
    article's way (app_colour_deployments): orange runs as <app>-orange; the upgrade starts
    <app>-maroon beside it, both behind the Service, then removes orange, and no request
    fails. Then the data goes, leaving another team's object, then the namespace.
    (One test: a fresh deploy of its own would cost the colours a database's start.)"""
    colours_vars = {"app_colour_deployments": True, "app_hpa_enabled": False, "app_replicas": 2}
    title = f"kept {uuid.uuid4().hex[:8]}"
    create_post(url, title)
    result = run("playbooks/teardown.yml")
    assert result.rc == 0, result.output[-5000:]
    left = kubectl_json("-n", NS, "get", "deployments,statefulsets,services,jobs")["items"]
    assert left == [], [i["metadata"]["name"] for i in left]
    assert kubectl("-n", NS, "get", "pvc", f"data-{APP}-postgres-0", "-o", "name").strip()
    again = run("playbooks/teardown.yml")
    assert again.rc == 0 and again.changed == 0, again.changed_tasks

    redeployed = run("deploy.yml", image_colour="orange", deploy_build_release=False, **colours_vars)
    assert redeployed.rc == 0, redeployed.output[-5000:]
    colour_url = site_url(redeployed.output)
    assert title in requests.get(colour_url, headers=TLS, timeout=10).text

    def deployments():
        return sorted(d["metadata"]["name"] for d in kubectl_json("-n", NS, "get", "deployments", "-l",
                                                                  "app.kubernetes.io/component=web")["items"])

    assert deployments() == [f"{APP}-orange"]
    result, load = under_load(colour_url, real_pages(colour_url),
                              lambda: run("playbooks/upgrade.yml", image_colour="maroon",
                                          deploy_build_release=False, **colours_vars))
    assert result.rc == 0, result.output[-5000:]
    assert load["failed"] == 0, load
    load["stats"].assert_clean()
    assert load["first_colour"] == "orange" and load["last_colour"] == "maroon", load
    assert deployments() == [f"{APP}-maroon"]
    again = run("playbooks/upgrade.yml", image_colour="maroon", deploy_build_release=False, **colours_vars)
    assert again.rc == 0 and again.changed == 0, again.changed_tasks
    refused = run("playbooks/rollback.yml", **colours_vars)
    assert refused.rc != 0 and "upgrading to the previous colour" in " ".join(refused.output.split())

    # Another team's object in the namespace: removing the app's data leaves it (and the
    # namespace) alone; only teardown_remove_namespace takes the namespace with everything in it.
    kubectl("-n", NS, "create", "configmap", "another-teams", "--from-literal=keep=yes")
    gone = run("playbooks/teardown.yml", teardown_remove_data=True, **colours_vars)
    assert gone.rc == 0, gone.output[-5000:]
    assert kubectl("-n", NS, "get", "pvc", "-o", "name").strip() == ""
    assert kubectl("-n", NS, "get", "deployments", "-o", "name").strip() == ""
    assert kubectl("-n", NS, "get", "configmap", "another-teams", "-o", "name").strip()
    everything = run("playbooks/teardown.yml", teardown_remove_data=True, teardown_remove_namespace=True)
    assert everything.rc == 0, everything.output[-5000:]
    assert kubectl("get", "namespace", NS, "--ignore-not-found").strip() == ""
