"""Draw one measured operation (benchmarks/*_upgrade.sh) as a PNG: latency percentiles over
time, the share of each colour answering, failed requests, and the playbook's plays marked,
so a reader sees where a stall happens.

    python benchmarks/load_chart.py SAMPLES.csv TIMES PLAYBOOK.log NAME OUT.png

SAMPLES.csv and TIMES as for load_report.py (the CSV's times count from the load's start, t0). PLAYBOOK.log: the operation's ansible-playbook
output with ansible.posix.profile_tasks on (the measure function of vm_lib.sh sets it), whose
timestamp lines place each play; a log without them (a shell function's) marks no play.
"""
from __future__ import annotations

import csv
import re
import sys
from datetime import datetime

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"orange": "#f28e2b", "maroon": "#800000", "": "#bab0ac"}
# profile_tasks: "Saturday 05 December 2026  04:50:12 +0000 (0:00:01.234)       0:00:10.123 ****"
STAMP = re.compile(r"^\w+ (\d{2} \w+ \d{4}) +(\d{2}:\d{2}:\d{2}) ([+-]\d{4}) \(")


def plays(log_path: str) -> list[tuple[float, str]]:
    """(epoch, play name) for each PLAY of the log, from the first timestamp after it."""
    found, pending = [], None
    try:
        lines = open(log_path, errors="replace").read().splitlines()
    except OSError:
        return []
    for line in lines:
        if line.startswith("PLAY [") and "RECAP" not in line:
            pending = line[6:line.index("]")] if "]" in line else line[6:]
            continue
        m = STAMP.match(line)
        if m and pending is not None:
            when = datetime.strptime(" ".join(m.groups()), "%d %B %Y %H:%M:%S %z").timestamp()
            found.append((when, pending))
            pending = None
    return found


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main(samples: str, times: str, log: str, name: str, out: str) -> None:
    rows = list(csv.DictReader(open(samples)))
    t0, start, end, rc = open(times).read().split()
    t0, start, end = float(t0), float(start), float(end)
    bins: dict[int, list[dict]] = {}
    for r in rows:
        at = float(r["sent"]) if r.get("sent") else float(r["at"])
        bins.setdefault(int(at), []).append(r)
    xs = sorted(bins)
    p50 = [percentile([float(r["latency"]) * 1000 for r in bins[x]], 0.50) for x in xs]
    p99 = [percentile([float(r["latency"]) * 1000 for r in bins[x]], 0.99) for x in xs]
    failed = [sum(1 for r in bins[x] if r.get("reason") or not 200 <= int(r["status"] or 0) < 300) for x in xs]
    colours = sorted({r["colour"] for r in rows}, key=lambda c: (c == "", c))
    share = {c: [sum(1 for r in bins[x] if r["colour"] == c) / len(bins[x]) for x in xs] for c in colours}
    rel = xs  # loadgen's times count from its start (t0), as load_report.py reads them

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1.4]})
    top.plot(rel, p50, label="p50 (1 s bins)", lw=1)
    top.plot(rel, p99, label="p99 (1 s bins)", lw=1)
    if any(failed):
        top.bar(rel, [f or 0 for f in failed], width=1, color="red", alpha=0.5, label="failed requests")
    top.set_yscale("log")
    top.set_ylabel("latency, ms")
    bottom.stackplot(rel, *[share[c] for c in colours], labels=[c or "(no colour)" for c in colours],
                     colors=[COLOURS.get(c, None) for c in colours])
    bottom.set_ylabel("share answering")
    bottom.set_xlabel("seconds since the load started")
    bottom.set_ylim(0, 1)
    for ax in (top, bottom):
        ax.axvspan(start - t0, end - t0, color="grey", alpha=0.12)
    for when, play in plays(log):
        x = when - t0
        top.axvline(x, color="grey", lw=0.6, ls="--")
        top.text(x, top.get_ylim()[1], " " + play[:38], rotation=90, va="top", ha="left", fontsize=6.5, color="dimgrey")
    top.legend(loc="upper left", fontsize=8)
    bottom.legend(loc="lower left", fontsize=8)
    top.set_title(f"{name}: {len(rows)} requests, {sum(failed)} failed, playbook rc={rc} "
                  f"(shaded: the operation, {end - start:.1f} s)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=90)


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    main(*sys.argv[1:])
