"""Smoke test of the local cluster (issue 4): what the Kubernetes target will rely on."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from k8s import KUBECTL, eventually, kubectl, kubectl_json, pod_run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from ansible_run import REPO, playbook  # noqa: E402

NS = "djangoops-smoke"
BLOG_IMAGE = "127.0.0.1:5000/djangoops-test/djangoops-blog:1.0-orange"
BUSYBOX = "docker.io/library/busybox:1.35.0"
NODE_PORT = 30080


def manifests(secret_key: str) -> str:
    return f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: blog, namespace: {NS}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: blog}}}}
  template:
    metadata: {{labels: {{app: blog}}}}
    spec:
      containers:
        - name: blog
          image: {BLOG_IMAGE}
          env:
            - {{name: SECRET_KEY, value: "{secret_key}"}}
            - {{name: ALLOWED_HOSTS, value: "*"}}
            - {{name: DJANGO_SECURE_SSL_REDIRECT, value: "false"}}
            - {{name: BLOG_RELEASE_HEADERS, value: "true"}}
            - name: POD_NAME
              valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
          ports: [{{containerPort: 8000}}]
          readinessProbe:
            httpGet: {{path: /healthz, port: 8000}}
            periodSeconds: 2
          resources:
            requests: {{cpu: 50m, memory: 64Mi}}
---
apiVersion: v1
kind: Service
metadata: {{name: blog, namespace: {NS}}}
spec:
  type: NodePort
  selector: {{app: blog}}
  ports: [{{port: 8000, targetPort: 8000, nodePort: {NODE_PORT}}}]
"""


def _in_registry(ref: str) -> bool:
    repository, tag = ref.split("/", 1)[1].rsplit(":", 1)
    accept = ("application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
              "application/vnd.docker.distribution.manifest.v2+json")
    answer = requests.head(f"http://127.0.0.1:5000/v2/{repository}/manifests/{tag}", headers={"Accept": accept}, timeout=10)
    return answer.status_code == 200


@pytest.fixture(scope="module")
def blog(tmp_path_factory):
    # The image test pushes this tag too; these tests run beside it (tests/run), so they
    # build it themselves when the registry does not have it yet.
    if not _in_registry(BLOG_IMAGE):
        work = tmp_path_factory.mktemp("smoke-image")
        built = playbook("playbooks/build.yml", extra_vars={
            "image_registry": "127.0.0.1:5000/djangoops-test", "image_version": "1.0", "build_colours": ["orange"],
            "image_base_image": os.environ.get("DJANGOOPS_BASE_IMAGE", "djangoops-test/python:3.11-bookworm"),
            "image_source_dir": str(REPO / "examples" / "blog"),
            "image_build_dir": str(work / "build"), "image_release_dir": str(work / "releases")})
        assert built.rc == 0, built.output[-4000:]
    kubectl("apply", "-f", "-", stdin=manifests(secrets.token_urlsafe(50)))
    try:
        kubectl("-n", NS, "rollout", "status", "deploy/blog", "--timeout=180s", timeout=200)
        yield
    finally:
        kubectl("delete", "namespace", NS, "--wait=true", "--timeout=120s", check=False, timeout=150)


def test_node_is_ready():
    nodes = kubectl_json("get", "nodes")["items"]
    assert nodes
    for node in nodes:
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True", node["metadata"]["name"]


def test_two_replicas_from_the_local_registry_are_ready(blog):
    deploy = kubectl_json("-n", NS, "get", "deploy", "blog")
    assert deploy["status"].get("readyReplicas") == 2
    pods = kubectl_json("-n", NS, "get", "pods", "-l", "app=blog")["items"]
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {BLOG_IMAGE}


def _node_address() -> str:
    node = kubectl_json("get", "nodes")["items"][0]
    return next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")


def test_service_spreads_requests_over_both_pods(blog):
    url = f"http://{_node_address()}:{NODE_PORT}/healthz"
    # kube-proxy needs a moment to program a new Service.
    eventually(lambda: requests.get(url, timeout=3).status_code == 200, timeout=60, interval=1)
    pods = {p["metadata"]["name"] for p in kubectl_json("-n", NS, "get", "pods", "-l", "app=blog")["items"]}
    served_by: set[str] = set()

    def both_seen():
        # New connections each time; kube-proxy picks an endpoint per connection.
        served_by.update(requests.get(url, timeout=5).headers["X-Served-By"] for _ in range(20))
        return served_by == pods

    eventually(both_seen, timeout=60, interval=1)
    assert served_by == pods


def test_service_answers_on_127_0_0_1_through_port_forward(blog):
    forward = subprocess.Popen([KUBECTL, "-n", NS, "port-forward", "svc/blog", "18080:8000"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        resp = eventually(lambda: requests.get("http://127.0.0.1:18080/healthz", timeout=3), timeout=30, interval=1)
        assert resp.status_code == 200 and resp.headers["X-Served-By"].startswith("blog-")
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def test_cluster_dns_resolves_a_service_from_a_pod(blog):
    cluster_ip = kubectl_json("-n", NS, "get", "svc", "blog")["spec"]["clusterIP"]
    # a few tries: a pod just made may wait a moment for the network (kube-router admits its
    # address after it starts), and busybox's nslookup gives up on its first timeout
    run = pod_run(NS, "dns-check", BUSYBOX,
                  ["sh", "-c", f"for i in 1 2 3 4 5 6 7 8 9 10; do nslookup blog.{NS}.svc.cluster.local && exit 0; "
                   "sleep 1; done; exit 1"])
    assert run.returncode == 0 and cluster_ip in run.stdout, run.stdout


PVC = f"""
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data, namespace: {NS}}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 16Mi}}}}
"""


def _pod(name: str, command: str) -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {NS}}}
spec:
  restartPolicy: Never
  containers:
    - name: c
      image: {BUSYBOX}
      command: [sh, -c, "{command}"]
      volumeMounts: [{{name: data, mountPath: /data}}]
  volumes:
    - name: data
      persistentVolumeClaim: {{claimName: data}}
"""


def _wait_succeeded(name: str) -> None:
    eventually(lambda: kubectl_json("-n", NS, "get", "pod", name)["status"]["phase"] == "Succeeded", timeout=120)


def test_a_claim_binds_and_its_file_survives_the_pod(blog):
    kubectl("apply", "-f", "-", stdin=PVC + "---" + _pod("writer", "echo kept-$(date +%s) > /data/proof"))
    _wait_succeeded("writer")
    assert kubectl_json("-n", NS, "get", "pvc", "data")["status"]["phase"] == "Bound"
    kubectl("-n", NS, "delete", "pod", "writer", "--wait=true")
    kubectl("apply", "-f", "-", stdin=_pod("reader", "cat /data/proof"))
    _wait_succeeded("reader")
    assert kubectl("-n", NS, "logs", "reader").startswith("kept-")


# Metrics and NetworkPolicy enforcement are proven once, by the product's tests that need
# them: test_k8s_deploy.py::test_the_autoscaler_reads_cpu (the autoscaler reads the pods'
# CPU from metrics-server) and ::test_only_the_collections_pods_reach_the_database
# (kube-router admits a labelled pod of the namespace, refuses an unlabelled one and one of
# another namespace).
