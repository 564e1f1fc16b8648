"""Self-healing on Kubernetes: delete one app pod while a load generator on this machine
sends requests through the Service; report the seconds until 3 pods are ready again and
the failed requests (goal: 0). Needs a deploy (`ansible-playbook deploy.yml -e
target=kubernetes`) and KUBECONFIG.

    python benchmarks/k8s_selfheal.py [--namespace djangoops] [--rate 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from load import Load  # noqa: E402

KUBECTL = os.environ.get("KUBECTL", "/var/cache/djangoops/k3s/kube-v1.34.4/bin/kubectl")
SELECTOR = "app.kubernetes.io/instance=djangoops-blog,app.kubernetes.io/component=web"


def kubectl_json(*args: str) -> dict:
    return json.loads(subprocess.run([KUBECTL, *args, "-o", "json"], check=True, capture_output=True, text=True).stdout)


def ready_pods(ns: str) -> list[str]:
    pods = kubectl_json("-n", ns, "get", "pods", "-l", SELECTOR)["items"]
    return [p["metadata"]["name"] for p in pods
            if p["metadata"].get("deletionTimestamp") is None
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]


def service_url(ns: str) -> str:
    svc = kubectl_json("-n", ns, "get", "service", "djangoops-blog")
    node = kubectl_json("get", "nodes")["items"][0]
    address = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    return f"http://{address}:{svc['spec']['ports'][0]['nodePort']}/healthz"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--namespace", default="djangoops")
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    url = service_url(args.namespace)
    for run in range(1, args.repeat + 1):
        before = ready_pods(args.namespace)
        assert len(before) >= 3, f"expected 3 ready pods, found {before}"
        load = Load(url, rate=args.rate).start()
        time.sleep(5)
        victim = before[0]
        t0 = time.monotonic()
        subprocess.run([KUBECTL, "-n", args.namespace, "delete", "pod", victim, "--wait=false"], check=True,
                       capture_output=True)
        while True:
            now = ready_pods(args.namespace)
            if len(now) >= len(before) and victim not in now:
                break
            time.sleep(0.5)
        healed = time.monotonic() - t0
        time.sleep(10)  # the deleted pod finishes shutting down meanwhile
        result = load.stop()
        print(json.dumps({"run": run, "url": url, "deleted": victim, "seconds_to_ready": round(healed, 1),
                          **result}))


if __name__ == "__main__":
    main()
