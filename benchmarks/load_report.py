"""Report one measured operation from loadgen's CSV and its times file (benchmarks/*_upgrade.sh):
failed requests (by reason), duration, p99 during the operation against steady state, colours,
the rate really sent and whether the load covered the whole operation.

    python benchmarks/load_report.py SAMPLES.csv TIMES NAME

SAMPLES.csv: tests/integration/loadgen.py --csv (at,sent,latency,status,colour,error,reason;
older files without sent and reason are read too: a failure is then any non-2xx answer).
TIMES: "<loadgen start> <operation start> <operation end> <playbook rc>", epoch seconds.
"""
import csv
import sys

rows = list(csv.DictReader(open(sys.argv[1])))
t0, start, end, rc = open(sys.argv[2]).read().split()
a, b = float(start) - float(t0), float(end) - float(t0)


def failed_row(r):
    if "reason" in r:  # loadgen decides: non-2xx, no answer, slow, lost
        return bool(r["reason"])
    return not 200 <= int(r["status"]) < 300


def when(r):
    """The real send time when the CSV has it, else the scheduled one."""
    return float(r["sent"]) if r.get("sent") else float(r["at"])


failed = [r for r in rows if failed_row(r)]
reasons = {}
for r in failed:
    key = r.get("reason") or f"http {r['status']}"
    reasons[key] = reasons.get(key, 0) + 1


def p99(sel):
    lat = sorted(float(r["latency"]) for r in sel)
    return lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000 if lat else float("nan")


during = [r for r in rows if a <= when(r) < b]
steady = [r for r in rows if not a <= when(r) < b]
runs = []
for r in rows:
    c = r["colour"]
    if runs and runs[-1][0] == c:
        runs[-1][1] += 1
    else:
        runs.append([c, 1])
after = {r["colour"] for r in rows if when(r) >= b}
counts = {}
for r in rows:
    counts[r["colour"]] = counts.get(r["colour"], 0) + 1
sent = sorted(float(r["sent"]) for r in rows if r.get("sent"))
sent_rate = (len(sent) - 1) / (sent[-1] - sent[0]) if len(sent) > 1 and sent[-1] > sent[0] else float("nan")
covered = "yes" if sent and sent[0] <= a and sent[-1] >= b else ("no" if sent else "-")
max_latency = max((float(r["latency"]) for r in rows), default=float("nan")) * 1000
ratio = p99(during) / p99(steady) if during and steady else float("nan")
print(f"{sys.argv[3]:<14} rc={rc} requests={len(rows)} ok={len(rows) - len(failed)} failed={len(failed)} "
      f"reasons={reasons} duration={b - a:.1f}s sent_in_op={len(during)} sent_rate={sent_rate:.1f}/s "
      f"covered={covered} p99_during={p99(during):.1f}ms p99_steady={p99(steady):.1f}ms "
      f"ratio={ratio:.2f} max={max_latency:.1f}ms first={runs[0][0] if runs else '-'} last={runs[-1][0] if runs else '-'} "
      f"after={sorted(after)} colours={counts} switches={len(runs) - 1}")
for r in failed[:5]:
    print("   failed:", r)
