#!/usr/bin/env python3
"""Log aggregation on the test cluster (djangoops.stack.logging): deploy times and throughput.

    KUBECONFIG=/var/cache/djangoops/cluster/admin.kubeconfig benchmarks/logging_throughput.py [LINES]

Run from the repository with the tooling venv active, the registry up and the cluster
from tests/cluster/up running. It uses the namespaces djangoops-logtest-bench and
djangoops-logtest-bench-app and deletes both at the end. Prints:
- the role's first run (image built, as the local copy is removed first, and pushed, namespace made, pods ready) and a no-op re-run;
- LINES (default 100000) lines of 100 bytes printed by one pod as fast as it can: the time
  from the pod's end until the aggregator holds every line, and lines per second from the
  pod's start;
- how long a query that counts every line takes (a full scan of the store), the store's size;
- the collector's and aggregator's CPU and memory (kubectl top) right after.
"""

from __future__ import annotations

import calendar
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "kubernetes"), str(REPO / "tests" / "integration")]

from ansible_run import playbook  # noqa: E402
from k8s import KUBECTL, eventually, kubectl, kubectl_json  # noqa: E402

NS, APP_NS = "djangoops-logtest-bench", "djangoops-logtest-bench-app"
LINES = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
# Each line is "<marker> <number padded to 6> " followed by x up to 100 bytes with the newline.
POD = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "burst", "namespace": APP_NS},
    "spec": {"restartPolicy": "Never", "containers": [{
        "name": "burst", "image": "docker.io/library/busybox:1.35.0",
        "command": ["sh", "-c", f"seq -w 1 {LINES} | sed 's/^/MARK /; s/$/ {'x' * 82}/'"]}]},
}


def timed_role(**extra) -> tuple[float, int]:
    start = time.monotonic()
    result = playbook("tests/kubernetes/playbooks/logging.yml",
                      extra_vars={"logging_namespace": NS, "logging_storage_size": "1Gi",
                                  "logging_retention_mb": 768, **extra})
    assert result.rc == 0, result.output[-3000:]
    return time.monotonic() - start, result.changed


def main() -> None:
    # A first run that builds the image: remove this benchmark's and the tests' local copies.
    old = subprocess.run(["docker", "images", "-q", "127.0.0.1:5000/djangoops-test/djangoops-logs"],
                         capture_output=True, text=True, check=True).stdout.split()
    if old:
        subprocess.run(["docker", "rmi", "--force", *sorted(set(old))], capture_output=True, check=False)
    cold, cold_changed = timed_role()
    noop, noop_changed = timed_role()
    print(f"role, first run: {cold:6.1f} s (changed={cold_changed})")
    print(f"role, no-op re-run: {noop:6.1f} s (changed={noop_changed})")

    kubectl("create", "namespace", APP_NS)
    forward = subprocess.Popen([KUBECTL, "-n", NS, "port-forward", "svc/djangoops-logs-aggregator", ":8080"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        api = "http://127.0.0.1:" + re.search(r"127\.0\.0\.1:(\d+)", forward.stdout.readline())[1]
        kubectl("apply", "-f", "-", stdin=json.dumps(POD))
        eventually(lambda: kubectl_json("-n", APP_NS, "get", "pod", "burst")["status"]["phase"] == "Succeeded",
                   timeout=600, interval=0.5)
        status = kubectl_json("-n", APP_NS, "get", "pod", "burst")["status"]["containerStatuses"][0]["state"]
        ended = time.time()
        started = calendar.timegm(time.strptime(status["terminated"]["startedAt"], "%Y-%m-%dT%H:%M:%SZ"))
        seen = {"count": -1, "since": time.monotonic()}

        def count() -> int:
            return requests.get(f"{api}/logs", params={"namespace": APP_NS, "pod": "burst", "contains": "MARK",
                                                       "count_only": "1"}, timeout=300).json()["count"]

        def settled():
            # every line stored, or no progress for 30 s (lines lost)
            now = count()
            if now != seen["count"]:
                seen.update(count=now, since=time.monotonic(), at=time.time())
            return now == LINES or time.monotonic() - seen["since"] > 30

        eventually(settled, timeout=900, interval=2)
        done = seen["at"]
        asked = time.monotonic()
        stored = count()
        print(f"{LINES} lines of 100 bytes: pod ran {ended - started:5.1f} s; {stored} stored, the last of them "
              f"{done - ended:5.1f} s after its end; {stored / (done - started):8.0f} lines/s overall")
        print(f"a query counting all {stored} lines (a full scan): {time.monotonic() - asked:5.1f} s")
        size = int(kubectl("-n", NS, "exec", "deploy/djangoops-logs-aggregator", "--", "python3", "-c",
                           "import os; print(sum(os.path.getsize('/data/' + f) for f in os.listdir('/data')))"))
        print(f"store on the volume: {size / 1e6:6.1f} MB, {size / max(stored, 1):5.0f} bytes per line")
        print(kubectl("-n", NS, "top", "pods", check=False))
    finally:
        forward.terminate()
        kubectl("delete", "namespace", APP_NS, "--ignore-not-found", "--wait=true", check=False, timeout=200)
        playbook("tests/kubernetes/playbooks/logging.yml",
                 extra_vars={"logging_namespace": NS, "logging_state": "absent"})


if __name__ == "__main__":
    main()
