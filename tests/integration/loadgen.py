"""A bounded, constant-rate HTTP load generator for 127.0.0.1 and the project's own lab and cluster (tests and benchmarks).

Open loop: requests are sent on a fixed schedule (``rate`` per second) whatever the
answers, by a pool of worker threads, each on a fresh TCP connection (``Connection:
close``), so a slow or restarting server shows up as latency or failures and is never
hidden by the client slowing down. Latency counts from the scheduled send time, so
queueing in the client under a stall is counted too. Every request is recorded: when,
how long, the status (or the socket error) and the ``X-Release-Colour`` header.

A failure is any answer that is not 2xx and any socket error or timeout.

As a module::

    with Load("http://127.0.0.1:8080", rate=100, paths=["/healthz"]) as load:
        ...   # upgrade, kill, stop
    assert load.stats.failed == 0, load.stats.failures[:5]

From the shell (benchmarks/vm_upgrade.sh)::

    python tests/integration/loadgen.py --url http://127.0.0.1:8080 --rate 250 \
        --requests 50000 --path /healthz --csv samples.csv
"""

from __future__ import annotations

import argparse
import csv
import ipaddress
import http.client
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Sample:
    at: float          # scheduled send time (monotonic seconds since start)
    latency: float     # seconds from the scheduled time to the end of the answer
    status: int        # HTTP status; 0 for a socket error or timeout
    colour: str        # X-Release-Colour, "" if absent
    error: str = ""


@dataclass
class Stats:
    samples: list[Sample] = field(default_factory=list)
    wall: float = 0.0

    @property
    def total(self) -> int:
        return len(self.samples)

    @property
    def failures(self) -> list[Sample]:
        return [s for s in self.samples if not 200 <= s.status < 300]

    @property
    def failed(self) -> int:
        return len(self.failures)

    def colours(self) -> list[str]:
        """The colours in the order the requests were scheduled."""
        return [s.colour for s in sorted(self.samples, key=lambda s: s.at) if s.colour]

    def colour_runs(self) -> list[tuple[str, int]]:
        """Consecutive runs of the same colour, e.g. [("orange", 900), ("maroon", 40), ...]."""
        runs: list[list] = []
        for c in self.colours():
            if runs and runs[-1][0] == c:
                runs[-1][1] += 1
            else:
                runs.append([c, 1])
        return [(c, n) for c, n in runs]

    def percentile(self, q: float, start: float | None = None, end: float | None = None) -> float:
        lat = sorted(s.latency for s in self.samples
                     if (start is None or s.at >= start) and (end is None or s.at < end))
        if not lat:
            return float("nan")
        return lat[min(len(lat) - 1, int(q / 100 * len(lat)))]

    def summary(self) -> str:
        rate = self.total / self.wall if self.wall else 0
        return (f"{self.total} requests in {self.wall:.1f} s ({rate:.1f}/s), {self.failed} failed, "
                f"p50 {self.percentile(50) * 1000:.1f} ms, p99 {self.percentile(99) * 1000:.1f} ms, "
                f"colours {self.colour_runs()[:12]}")


# The project's own networks: the Docker lab (10.213.87.0/24) and the test cluster's node,
# Service and pod ranges (10.213.96.0/22, tests/cluster/lib.sh).
_OURS = [ipaddress.ip_network(n) for n in ("127.0.0.0/8", "10.213.87.0/24", "10.213.96.0/22")]


def _ours(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in net for net in _OURS)


class Load:
    """Constant-rate GET requests to url + paths (cycled) until stopped or bounded."""

    def __init__(self, url: str = "http://127.0.0.1:8080", *, rate: float = 100.0,
                 paths: list[str] | None = None, max_requests: int = 20000,
                 max_seconds: float = 600.0, timeout: float = 15.0, workers: int = 48):
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        assert _ours(self.host), f"load goes to 127.0.0.1 or the project's own lab and cluster only, not {self.host}"
        self.paths = paths or ["/healthz"]
        self.rate = rate
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.timeout = timeout
        self.workers = workers
        self.stats = Stats()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    # -- one request -------------------------------------------------------------
    def _one(self, at: float, path: str) -> None:
        status, colour, error = 0, "", ""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("GET", path, headers={"Connection": "close", "User-Agent": "djangoops-loadgen"})
            resp = conn.getresponse()
            resp.read()
            status, colour = resp.status, resp.getheader("X-Release-Colour", "") or ""
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            conn.close()
        sample = Sample(at, time.monotonic() - self._t0 - at, status, colour, error)
        with self._lock:
            self.stats.samples.append(sample)

    # -- the schedule --------------------------------------------------------------
    def _run(self) -> None:
        interval = 1.0 / self.rate
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            n = 0
            while not self._stop.is_set() and n < self.max_requests:
                at = n * interval
                if at > self.max_seconds:
                    break
                delay = self._t0 + at - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                pool.submit(self._one, at, self.paths[n % len(self.paths)])
                n += 1
        self.stats.wall = time.monotonic() - self._t0

    def start(self) -> "Load":
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="loadgen", daemon=True)
        self._thread.start()
        return self

    def now(self) -> float:
        """Seconds since the load started (the clock of Sample.at)."""
        return time.monotonic() - self._t0

    def wait(self) -> Stats:
        """Wait until the bounded run ends by itself."""
        assert self._thread
        self._thread.join()
        return self.stats

    def stop(self) -> Stats:
        self._stop.set()
        return self.wait()

    def __enter__(self) -> "Load":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--rate", type=float, default=250.0, help="requests per second")
    p.add_argument("--requests", type=int, default=50000, help="stop after this many")
    p.add_argument("--max-seconds", type=float, default=900.0)
    p.add_argument("--path", action="append", help="path(s) to cycle through (default /healthz)")
    p.add_argument("--workers", type=int, default=64)
    p.add_argument("--csv", help="write every sample here: at,latency,status,colour,error")
    args = p.parse_args(argv)
    load = Load(args.url, rate=args.rate, paths=args.path, max_requests=args.requests,
                max_seconds=args.max_seconds, workers=args.workers)
    signal.signal(signal.SIGTERM, lambda *_: load._stop.set())
    load.start()
    print(f"loadgen: started {time.time():.3f}", flush=True)
    stats = load.wait()
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["at", "latency", "status", "colour", "error"])
            for s in sorted(stats.samples, key=lambda s: s.at):
                w.writerow([f"{s.at:.4f}", f"{s.latency:.5f}", s.status, s.colour, s.error])
    print("loadgen:", stats.summary(), flush=True)
    return 0 if stats.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
