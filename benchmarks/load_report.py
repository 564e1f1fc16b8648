"""Report one measured operation from loadgen's CSV and its times file (benchmarks/*_upgrade.sh):
failed requests, duration, p99 during the operation against steady state, colours.

    python benchmarks/load_report.py SAMPLES.csv TIMES NAME
"""
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
t0, start, end, rc = open(sys.argv[2]).read().split()
a, b = float(start) - float(t0), float(end) - float(t0)
failed = [r for r in rows if not 200 <= int(r["status"]) < 300]
def p99(sel):
    lat = sorted(float(r["latency"]) for r in sel)
    return lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000 if lat else float("nan")
during = [r for r in rows if a <= float(r["at"]) < b]
steady = [r for r in rows if not a <= float(r["at"]) < b]
runs = []
for r in rows:
    c = r["colour"]
    if runs and runs[-1][0] == c:
        runs[-1][1] += 1
    else:
        runs.append([c, 1])
after = {r["colour"] for r in rows if float(r["at"]) >= b}
counts = {}
for r in rows:
    counts[r["colour"]] = counts.get(r["colour"], 0) + 1
print(f"{sys.argv[3]:<14} rc={rc} requests={len(rows)} failed={len(failed)} "
      f"duration={b - a:.1f}s p99_during={p99(during):.1f}ms p99_steady={p99(steady):.1f}ms "
      f"ratio={p99(during) / p99(steady):.2f} first={runs[0][0] if runs else '-'} last={runs[-1][0] if runs else '-'} "
      f"after={sorted(after)} colours={counts} switches={len(runs) - 1}")
for r in failed[:5]:
    print("   failed:", r)
