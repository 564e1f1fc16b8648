"""A bounded HTTP load generator for the benchmarks and tests: N threads send GET
requests to one URL at up to RATE requests/s for at most DURATION seconds (or until
stopped), and count answers by status and colour. Any non-2xx answer or socket error
is a failure. Traffic goes only where it is told (127.0.0.1 or the project's cluster).

    python benchmarks/load.py URL [--rate 200] [--duration 60] [--threads 16]
"""

from __future__ import annotations

import argparse
import collections
import json
import threading
import time

import requests


class Load:
    def __init__(self, url: str, rate: float = 200, threads: int = 16, headers: dict | None = None):
        self.url, self.rate, self.threads = url, rate, threads
        self.headers = headers or {}
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failed = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.colours: list[tuple[float, str]] = []  # (time, colour) of each change
        self.latencies: list[float] = []
        self._workers: list[threading.Thread] = []
        self._next = 0.0

    def _slot(self) -> bool:
        """Wait for this thread's next send time (a shared schedule at self.rate)."""
        with self.lock:
            now = time.monotonic()
            self._next = max(self._next + 1.0 / self.rate, now)
            at = self._next
        delay = at - time.monotonic()
        if delay > 0:
            self.stop_event.wait(delay)
        return not self.stop_event.is_set()

    def _work(self) -> None:
        while self._slot():
            t0 = time.monotonic()
            try:
                r = requests.get(self.url, headers=self.headers, timeout=10, allow_redirects=False)
                good = 200 <= r.status_code < 300
                reason = None if good else f"HTTP {r.status_code}"
                colour = r.headers.get("X-Release-Colour", "")
            except requests.RequestException as exc:
                good, reason, colour = False, type(exc).__name__, ""
            elapsed = time.monotonic() - t0
            with self.lock:
                self.latencies.append(elapsed)
                if good:
                    self.ok += 1
                    if not self.colours or self.colours[-1][1] != colour:
                        self.colours.append((time.time(), colour))
                else:
                    self.failed += 1
                    self.errors[reason] += 1

    def start(self) -> "Load":
        self._next = time.monotonic()
        self._workers = [threading.Thread(target=self._work, daemon=True) for _ in range(self.threads)]
        for w in self._workers:
            w.start()
        return self

    def stop(self) -> dict:
        self.stop_event.set()
        for w in self._workers:
            w.join(timeout=15)
        return self.summary()

    def summary(self) -> dict:
        with self.lock:
            lat = sorted(self.latencies)
            changes = [c for _, c in self.colours]

        def pct(q: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1) if lat else None

        return {"ok": self.ok, "failed": self.failed, "errors": dict(self.errors),
                "first_colour": changes[0] if changes else None, "last_colour": changes[-1] if changes else None,
                "colour_changes": max(0, len(changes) - 1), "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--threads", type=int, default=16)
    args = ap.parse_args()
    load = Load(args.url, args.rate, args.threads).start()
    time.sleep(args.duration)
    print(json.dumps(load.stop()))


if __name__ == "__main__":
    main()
