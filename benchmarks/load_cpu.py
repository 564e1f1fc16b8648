#!/usr/bin/env python3
"""What the tests' load costs the machine: the busy cores (/proc/stat, every core's time
but idle and iowait) over SECONDS with nothing sent, then with tests/integration/loadgen.py's
Load sending each RATE given to URL (the VM day-2 tests' paths: /healthz three times in four,
the list page once). The machine's CPU is what the test suite runs out of (docs/testing.md,
"Stop 36"), so a load rate is a CPU budget.

  python benchmarks/load_cpu.py --rate 40 --rate 20     # the lab of lab/lab_up.yml + deploy.yml

Every request must succeed (the run fails otherwise); only 127.0.0.1 or the project's own
lab and cluster are accepted by Load.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from loadgen import Load  # noqa: E402
import vm_helpers as vm  # noqa: E402

PATHS = ["/healthz", "/healthz", "/healthz", "/"]


def busy() -> tuple[int, int]:
    with open("/proc/stat", encoding="ascii") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


def busy_cores(seconds: float, action=None) -> float:
    before = busy()
    if action:
        action()
    else:
        time.sleep(seconds)
    after = busy()
    return (after[0] - before[0]) / (after[1] - before[1]) * os.cpu_count()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=vm.LAB_URL)
    parser.add_argument("--cafile", default=str(vm.LAB_CA))
    parser.add_argument("--rate", type=float, action="append", required=True)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    print(f"nothing sent: {busy_cores(args.seconds):.3f} busy cores over {args.seconds:.0f} s")
    failed = 0
    for rate in args.rate:
        load = Load(args.url, rate=rate, paths=PATHS, max_requests=10**6, max_seconds=args.seconds * 2,
                    cafile=args.cafile if args.url.startswith("https") else None)
        cores = busy_cores(args.seconds, lambda: (load.start(), time.sleep(args.seconds)))
        stats = load.stop()
        failed += stats.failed
        print(f"{rate:g}/s: {cores:.3f} busy cores over {args.seconds:.0f} s; {stats.summary()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
