#!/usr/bin/env python3
"""Background work on the VMs, measured on the gallery's lab (examples/gallery-ops/vms, two
Debian 13 servers, Redis on the first, one Celery worker with concurrency 1 on each):

  throughput  QUEUED tasks (record_tick, no sleep) queued at once on the first server
              (`manage.py shell`, straight to the broker): tasks per second from the first
              run's end to the last's, so the web's part is out of it;
  steady      tasks queued through the site (POST /ticks/add/, as the curator) at RATE a
              second for SECONDS: the latency from the request sent to the task's end;
  upgrade     the same load through playbooks/upgrade.yml to maroon (each server's worker
              stops warm and starts on the new release), then rollback.yml (not timed).

Every queued task must run exactly once in each phase (the run fails otherwise). Run by
benchmarks/vm_tasks.sh, which makes the lab and deploys first; figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
from gallery_client import Ticker, curator_session, tick_runs  # noqa: E402

URL = "http://127.0.0.1:8082"
INVENTORY = REPO / "examples" / "gallery-ops" / "vms"


def wait_all(session, prefix: str, keys: list[str], seconds: float) -> dict[str, list[float]]:
    """The end times of every key's runs, once each key ran; fails naming what is missing or
    ran more than once."""
    deadline = time.monotonic() + seconds
    while True:
        ended = tick_runs(session, URL, prefix, times=True, timeout=60)
        missing = [key for key in keys if key not in ended]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(1)
    twice = [key for key, runs in ended.items() if len(runs) != 1]
    if missing or twice:
        sys.exit(f"{len(keys)} queued: {len(missing)} never ran ({missing[:3]}), {len(twice)} ran twice ({twice[:3]})")
    return ended


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def latency_line(label: str, ticker: Ticker, ended: dict[str, list[float]]) -> dict:
    latencies = [(ended[key][0] - ticker.sent[key]) * 1000 for key in ticker.queued]
    line = {"phase": label, "tasks": len(latencies), "refused": len(ticker.refused),
            "p50_ms": round(percentile(latencies, 0.50), 1), "p99_ms": round(percentile(latencies, 0.99), 1),
            "max_ms": round(max(latencies), 1), "mean_ms": round(statistics.fmean(latencies), 1)}
    print(f"{label:<10} {line['tasks']:5d} tasks  p50 {line['p50_ms']:8.1f} ms  p99 {line['p99_ms']:8.1f} ms  "
          f"max {line['max_ms']:8.1f} ms  refused {line['refused']}", flush=True)
    return line


def ansible(*args: str) -> None:
    subprocess.run(["ansible-playbook", "-i", str(INVENTORY), *args], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queued", type=int, default=int(os.environ.get("QUEUED", 400)))
    parser.add_argument("--rate", type=float, default=float(os.environ.get("RATE", 4)))
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SECONDS_STEADY", 40)))
    args = parser.parse_args()
    session = curator_session(URL)
    results = []

    prefix = f"bench-{int(time.time())}-"
    keys = [f"{prefix}{n:05d}" for n in range(args.queued)]
    code = (f"from photos.tasks import record_tick; "
            f"[record_tick.delay('{prefix}' + format(n, '05d'), 0) for n in range({args.queued})]")
    started = time.time()
    subprocess.run(["ansible", "-i", str(INVENTORY), "gallery1", "-m", "ansible.builtin.command",
                    "-a", f"djangoops-gallery-manage shell -c {shlex.quote(code)}"],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    ended = wait_all(session, prefix, keys, 600)
    ends = sorted(times[0] for times in ended.values())
    rate = (len(ends) - 1) / (ends[-1] - ends[0])
    results.append({"phase": "throughput", "tasks": len(ends), "tasks_per_s": round(rate, 1),
                    "queue_to_last_s": round(ends[-1] - started, 1)})
    print(f"throughput {len(ends):5d} tasks  {rate:.1f} tasks/s (first end to last), "
          f"{ends[-1] - started:.1f} s from queueing to the last", flush=True)

    ticker = Ticker(URL, rate=args.rate, seconds=0).start()
    time.sleep(args.seconds)
    ticker.stop()
    results.append(latency_line("steady", ticker, wait_all(session, ticker.prefix, ticker.queued, 300)))

    time.sleep(1)  # a prefix of its own (whole seconds)
    ticker = Ticker(URL, rate=args.rate, seconds=0).start()
    began = time.monotonic()
    try:
        ansible("playbooks/upgrade.yml", "-e", "image_colour=maroon")
        time.sleep(3)
    finally:
        ticker.stop()
    upgrade_s = time.monotonic() - began
    line = latency_line("upgrade", ticker, wait_all(session, ticker.prefix, ticker.queued, 300))
    line["upgrade_s"] = round(upgrade_s, 1)
    results.append(line)
    ansible("playbooks/rollback.yml")

    out = Path(os.environ.get("DJANGOOPS_CACHE", "/var/cache/djangoops")) / "benchmarks" / "vm_tasks.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
