"""Log aggregation on the test cluster (djangoops.stack.logging, issue 5).

The role runs from tests/kubernetes/playbooks/logging.yml: its image is built on this
machine FROM the local stand-in base image and pushed to the registry on 127.0.0.1:5000,
which the cluster pulls from through its mirror. Pods in another namespace print
markers; the markers are then looked up through the aggregator's query API.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from k8s import KUBECTL, eventually, kubectl, kubectl_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from ansible_run import playbook  # noqa: E402

PLAYBOOK = "tests/kubernetes/playbooks/logging.yml"
NS = "djangoops-logtest"             # the logging namespace
APP_NS = "djangoops-logtest-app"     # where the pods whose logs are gathered run
UNUSED_NS = "djangoops-logtest-bad"  # bad-input runs aim here; it must never appear
BUSYBOX = "docker.io/library/busybox:1.35.0"
AGGREGATOR = "djangoops-logs-aggregator"
COLLECTOR = "djangoops-logs-collector"


def run_role(**extra) -> object:
    return playbook(PLAYBOOK, extra_vars={"logging_namespace": NS, **extra}, timeout=900)


@pytest.fixture(scope="module")
def deployed():
    """Converge twice; remove the role's namespace and the app namespace afterwards."""
    kubectl("delete", "namespace", APP_NS, "--ignore-not-found", "--wait=true", "--timeout=120s", timeout=150)
    runs = [run_role(), run_role()]
    kubectl("apply", "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": APP_NS, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}))
    try:
        yield runs
    finally:
        kubectl("delete", "namespace", APP_NS, "--ignore-not-found", "--wait=true", "--timeout=120s",
                check=False, timeout=150)
        removed = run_role(logging_state="absent")
        assert removed.rc == 0, removed.output[-3000:]


@contextlib.contextmanager
def aggregator_api():
    """The aggregator's API on 127.0.0.1 through kubectl port-forward (a random local port)."""
    forward = subprocess.Popen([KUBECTL, "-n", NS, "port-forward", f"svc/{AGGREGATOR}", ":8080"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = forward.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert match, f"port-forward did not start: {line}"
        yield f"http://127.0.0.1:{match[1]}"
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def query(api: str, **params) -> list[dict]:
    resp = requests.get(f"{api}/logs", params=params, timeout=30)
    resp.raise_for_status()
    return resp.json()["records"]


def busybox_pod(name: str, script: str) -> str:
    """A pod that passes the "restricted" Pod Security Standard and runs a shell script."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": APP_NS},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "talker", "image": BUSYBOX, "command": ["sh", "-c", script],
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}, "limits": {"memory": "32Mi"}},
            }],
        },
    })


def wait_succeeded(name: str, timeout: int = 180) -> None:
    eventually(lambda: kubectl_json("-n", APP_NS, "get", "pod", name)["status"]["phase"] == "Succeeded",
               timeout=timeout)


def collector_pods() -> list[dict]:
    return kubectl_json("-n", NS, "get", "pods", "-l", "app.kubernetes.io/component=collector")["items"]


def wait_collectors_ready(exclude: set[str] = frozenset()) -> set[str]:
    nodes = {n["metadata"]["name"] for n in kubectl_json("get", "nodes")["items"]}

    def ready():
        pods = [p for p in collector_pods() if p["metadata"]["name"] not in exclude
                and not p["metadata"].get("deletionTimestamp")]
        ready_on = {p["spec"]["nodeName"] for p in pods
                    if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))}
        return {p["metadata"]["name"] for p in pods} if ready_on == nodes else None

    return eventually(ready, timeout=180)


def test_converges_and_a_second_run_changes_nothing(deployed):
    first, second = deployed
    assert first.rc == 0, first.output[-3000:]
    assert second.rc == 0, second.output[-3000:]
    assert second.changed == 0, second.output[-3000:]


def test_a_ready_collector_on_every_node_without_root_or_capabilities(deployed):
    names = wait_collectors_ready()
    assert len(names) == len(kubectl_json("get", "nodes")["items"])
    namespace = kubectl_json("get", "namespace", NS)["metadata"]["labels"]
    assert namespace["pod-security.kubernetes.io/enforce"] == "privileged"
    assert namespace["app.kubernetes.io/managed-by"] == "djangoops.stack"
    for pod in collector_pods():
        spec = pod["spec"]
        assert spec["securityContext"]["runAsUser"] != 0 and spec["securityContext"]["runAsNonRoot"]
        container = spec["containers"][0]
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert all(m.get("readOnly") for m in container["volumeMounts"])
        assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "collector"
        assert container["image"].startswith("127.0.0.1:5000/djangoops-test/djangoops-logs:1.0-")


def test_a_pod_in_another_namespace_is_found_by_namespace_and_name(deployed):
    marker = f"logtest-{secrets.token_hex(6)}"
    # A 40000-character line reaches the log file as several partial (P) records that
    # the collector must join again.
    script = (f'echo "{marker} on stdout"; echo "{marker} on stderr" >&2; '
              f'head -c 40000 /dev/zero | tr "\\0" x; echo " {marker} long"')
    kubectl("apply", "-f", "-", stdin=busybox_pod("talker", script))
    wait_succeeded("talker")

    with aggregator_api() as api:
        def found():
            records = query(api, namespace=APP_NS, pod="talker", contains=marker)
            return records if len(records) >= 3 else None

        records = eventually(found, timeout=90)
        assert len(records) == 3, records
        by_message = {r["message"][-40:]: r for r in records}
        stdout = next(r for r in records if r["message"] == f"{marker} on stdout")
        stderr = next(r for r in records if r["message"] == f"{marker} on stderr")
        long = next(r for r in records if r["message"].endswith(f" {marker} long"))
        assert stdout["stream"] == "stdout" and stderr["stream"] == "stderr", by_message
        assert long["message"] == "x" * 40000 + f" {marker} long"
        assert {r["container"] for r in records} == {"talker"}
        assert {r["namespace"] for r in records} == {APP_NS}
        assert {r["node"] for r in records} == {kubectl_json("-n", APP_NS, "get", "pod", "talker")["spec"]["nodeName"]}
        # The filters hold: another pod name or namespace finds nothing.
        assert query(api, namespace=APP_NS, pod="someone-else", contains=marker) == []
        assert query(api, namespace="kube-system", contains=marker) == []


def test_replacing_the_collector_and_the_aggregator_neither_loses_nor_repeats_lines(deployed):
    marker = f"seq-{secrets.token_hex(6)}"
    lines = 600
    kubectl("apply", "-f", "-", stdin=busybox_pod(
        "counter", f'for i in $(seq 1 {lines}); do echo "{marker} $i"; sleep 0.1; done'))
    eventually(lambda: kubectl_json("-n", APP_NS, "get", "pod", "counter")["status"]["phase"] == "Running",
               timeout=120)

    def still_counting() -> bool:
        return kubectl_json("-n", APP_NS, "get", "pod", "counter")["status"]["phase"] == "Running"

    # Both replacements happen while the pod is still writing.
    time.sleep(5)
    old = {p["metadata"]["name"] for p in collector_pods()}
    assert still_counting()
    kubectl("-n", NS, "delete", "pod", "-l", "app.kubernetes.io/component=collector", "--wait=true")
    assert not old & wait_collectors_ready(exclude=old)

    assert still_counting()
    kubectl("-n", NS, "delete", "pod", "-l", "app.kubernetes.io/component=aggregator", "--wait=true")
    kubectl("-n", NS, "rollout", "status", f"deploy/{AGGREGATOR}", "--timeout=180s", timeout=200)
    wait_succeeded("counter")
    wait_collectors_ready()

    with aggregator_api() as api:
        def complete():
            records = query(api, namespace=APP_NS, pod="counter", contains=marker, limit=10000)
            return records if any(r["message"] == f"{marker} {lines}" for r in records) else None

        records = eventually(complete, timeout=120)
    numbers = [int(r["message"].split()[-1]) for r in records]
    assert len(numbers) == lines, f"{len(numbers)} records for {lines} lines"
    assert sorted(numbers) == list(range(1, lines + 1))


def test_a_prebuilt_image_is_used_as_given(deployed):
    image = kubectl_json("-n", NS, "get", "daemonset", COLLECTOR)["spec"]["template"]["spec"]["containers"][0]["image"]
    result = run_role(logging_image=image, logging_image_registry="")
    assert result.rc == 0, result.output[-3000:]
    assert result.changed == 0, result.output[-3000:]
    # nothing built or pushed: the image tasks are not even included
    assert "Look for the collector image" not in result.output, result.output[-3000:]


@pytest.mark.parametrize(("extra", "variable"), [
    ({"logging_namespace": "Logs_Here"}, "logging_namespace"),
    ({"logging_namespace": UNUSED_NS, "logging_image_registry": ""}, "logging_image_registry"),
    ({"logging_namespace": UNUSED_NS, "logging_storage_size": "lots"}, "logging_storage_size"),
    ({"logging_namespace": UNUSED_NS, "logging_retention_mb": 100}, "logging_retention_mb"),
    ({"logging_namespace": UNUSED_NS, "target": "vms"}, "logging_target"),
])
def test_bad_input_stops_before_any_change(extra, variable):
    result = playbook(PLAYBOOK, extra_vars=extra, timeout=300)
    assert result.rc != 0, result.output[-2000:]
    failure = result.output[result.output.find("[ERROR]"):]
    assert variable in failure, result.output[-2000:]
    assert result.changed == 0
    assert kubectl("get", "namespace", UNUSED_NS, "--ignore-not-found").strip() == ""


def test_every_option_is_documented_with_its_default():
    import yaml

    role = Path(__file__).resolve().parents[2] / "roles" / "logging"
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    options = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    assert set(defaults) == set(options)
    assert all(spec.get("description") for spec in options.values())
    for name, value in defaults.items():
        if "{{" not in str(value):
            assert options[name]["default"] == value, name
