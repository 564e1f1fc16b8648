"""kubectl helpers for the tests against the cluster from tests/cluster/up."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from waiting import eventually  # noqa: E402,F401  (the one wait helper, re-exported for the tests here)

KUBECTL = os.environ.get("KUBECTL", "/var/cache/djangoops/k3s/kube-v1.34.4/bin/kubectl")

# The session's one deployment of the production settings (conftest.e2e_site), shared by
# test_k8s_lock, test_k8s_deploy and test_k8s_backup: behind a TLS-terminating proxy (SSL redirect, secure
# cookies, HSTS: requests carry X-Forwarded-Proto https), the lab's plain-HTTP overrides
# turned around (app_https). The blog's release headers stay on: the tests read X-Served-By.
E2E_NS = "djangoops-e2e"
# Django's clearsessions at 03:30 Paris time (a CronJob): test_k8s_deploy starts a Job from it. Not
# every minute: a pod a minute for the whole phase cost CPU that the tests beside it need, and
# when a CronJob fires is Kubernetes' part (the VM lab's timer, which this collection writes,
# is seen running on time in test_vm_lab).
E2E_VARS = {"target": "kubernetes", "kubernetes_namespace": E2E_NS,
            "app_extra_environment": {"BLOG_RELEASE_HEADERS": "true"}, "app_https": True,
            "app_scheduled_commands": [{"name": "clearsessions", "schedule": "30 3 * * *", "command": "clearsessions",
                                        "time_zone": "Europe/Paris"}],
            # The database admits the collection's pods of test_k8s_deploy's second site, in a
            # namespace of its own, too (database_k8s_clients).
            "database_k8s_clients": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": f"{E2E_NS}-ext"}},
                                      "podSelector": {"matchLabels": {"app.kubernetes.io/managed-by": "djangoops.stack"}}}]}


class KubectlError(subprocess.SubprocessError):
    """kubectl failed (eventually() takes it as "not yet": the object may not exist yet)."""


def kubectl(*args: str, stdin: str | None = None, check: bool = True, timeout: int = 180) -> str:
    proc = subprocess.run([KUBECTL, *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise KubectlError(f"kubectl {' '.join(args)} failed: {proc.stdout}{proc.stderr}")
    return proc.stdout


def kubectl_json(*args: str) -> dict:
    return json.loads(kubectl(*args, "-o", "json"))


def pod_run(namespace: str, name: str, image: str, command: list[str], labels: str | None = None,
            overrides: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run command in a new pod (restartPolicy Never) until it ends; its exit code and its log,
    then delete it. Not `kubectl run --rm -i`: attaching races the container's start, and a
    short command's output can be lost while its exit code is not (a CI run saw busybox's
    nslookup answer go missing that way)."""
    args = ["-n", namespace, "run", name, "--restart=Never", f"--image={image}"]
    if labels:
        args.append(f"--labels={labels}")
    if overrides:
        args.append(f"--overrides={json.dumps(overrides)}")
    kubectl(*args, "--command", "--", *command)
    try:
        def ended():
            status = kubectl_json("-n", namespace, "get", "pod", name)["status"]
            state = (status.get("containerStatuses") or [{}])[0].get("state", {})
            return status.get("phase") in ("Succeeded", "Failed") and "terminated" in state and state["terminated"]

        terminated = eventually(ended, timeout=timeout, interval=1, what=f"pod {name} to end")
        log = kubectl("-n", namespace, "logs", name)
        return subprocess.CompletedProcess([KUBECTL, *args], terminated["exitCode"], log, "")
    finally:
        kubectl("-n", namespace, "delete", "pod", name, "--wait=false", "--ignore-not-found", check=False)


def answers_within(namespace: str, image: str, labels: str, seconds: int, probe: str) -> subprocess.CompletedProcess:
    """The shell command probe, every half second for `seconds`, from a new pod of image (uid 999,
    restricted pod security) in namespace, with labels: exit 0 once probe succeeded. A pod just
    made is admitted by a NetworkPolicy a moment after it starts (about a second here: kube-router
    learns its address), so one try would say nothing."""
    name = f"client-{uuid.uuid4().hex[:6]}"
    script = f"for i in $(seq {seconds * 2}); do {probe} && exit 0; sleep 0.5; done; exit 1"
    overrides = {"spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 999, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": name, "image": image, "command": ["bash", "-c", script],
                        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}}
    return pod_run(namespace, name, image, ["bash", "-c", script], labels=labels, overrides=overrides,
                   timeout=120 + seconds * 2)


def database_sql(namespace: str, query: str, app: str = "djangoops-blog", user: str = "postgres",
                 database: str = "blog") -> str:
    """psql in the app's database pod, over its local socket (trusted: no password)."""
    return kubectl("-n", namespace, "exec", f"{app}-postgres-0", "-c", "postgresql", "--", "psql", "-U", user,
                   "-d", database, "-XtAc", query).strip()


def site_url(output: str) -> str:
    """The address a deploy printed ("The app answers at http://.../")."""
    match = re.search(r"The app answers at (http://\S+/)", output)
    assert match, output[-3000:]
    return match.group(1)


@contextmanager
def fresh_deployment(namespace: str, deploy: Callable) -> Iterator[tuple]:
    """deploy() into namespace made anew (a module's one deployment): yields its result and
    the address it printed; the namespace is deleted afterwards, without waiting."""
    kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true", "--timeout=180s", timeout=200)
    first = deploy()
    assert first.rc == 0, first.output[-5000:]
    try:
        yield first, site_url(first.output)
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


AWX_NS = "djangoops-awx"


def deployer_credential(namespace: str) -> dict:
    """The inputs of AWX's "OpenShift or Kubernetes API Bearer Token" credential for a
    ServiceAccount (djangoops-awx/djangoops-deployer) with only the rights awx/kubernetes-rbac.yml
    gives, bound in NAMESPACE as docs/awx.md says: the API's address and CA from the
    kubeconfig, a token of two hours (kubectl create token)."""
    import base64

    repo = Path(__file__).resolve().parents[2]
    kubectl("apply", "-f", str(repo / "awx" / "kubernetes-rbac.yml"))
    subject = [{"kind": "ServiceAccount", "name": "djangoops-deployer", "namespace": AWX_NS}]
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": AWX_NS}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "djangoops-deployer", "namespace": AWX_NS}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "djangoops-deployer", "namespace": namespace}, "subjects": subject,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "djangoops-deployer"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "djangoops-deployer-cluster"}, "subjects": subject,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "djangoops-deployer-cluster"}},
    ]
    kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    token = kubectl("-n", AWX_NS, "create", "token", "djangoops-deployer", "--duration=2h").strip()
    cluster = kubectl_json("config", "view", "--raw", "--minify")["clusters"][0]["cluster"]
    return {"host": cluster["server"], "bearer_token": token, "verify_ssl": True,
            "ssl_ca_cert": base64.b64decode(cluster["certificate-authority-data"]).decode()}


def remove_deployer() -> None:
    """What deployer_credential made, outside the app's namespace (its RoleBinding goes with it)."""
    kubectl("delete", "clusterrolebinding", "djangoops-deployer-cluster", "--ignore-not-found", check=False)
    kubectl("delete", "namespace", AWX_NS, "--ignore-not-found", "--wait=false", check=False)
