"""A bounded, constant-rate HTTP load generator for 127.0.0.1 and the project's own lab and cluster (tests and benchmarks).

Open loop: requests are scheduled at a fixed rate (``rate`` per second) whatever the
answers and handed to a pool of worker threads, each on a fresh TCP connection
(``Connection: close``), so a slow or restarting server shows up as latency or failures
and is never hidden by the client slowing down. Latency counts from the scheduled time,
so queueing in the client under a stall is counted too; the real send time of each
request is recorded beside it, so whether the rate held can be checked afterwards.

Every scheduled request ends as exactly one sample, ok or failed with a reason:

- ``http <status>``: an answer that is not 2xx;
- the exception's type (``ConnectionRefusedError``, ``TimeoutError``, ``RemoteDisconnected``,
  ``UnicodeEncodeError``...): no answer, whatever was raised on the client's side;
- ``slow``: a 2xx answer that took longer than ``slow_after`` seconds from its real send
  (a correctness bound, default 5 s: no visitor waits that long; speed goals live in
  docs/benchmarks.md);
- ``lost``: the worker itself died (never expected; counted so that nothing vanishes).

As a module::

    with Load("http://127.0.0.1:8080", rate=100, paths=["/", "/post/1/"]) as load:
        with load.operation():      # records when the operation started and ended
            ...                     # upgrade, kill, stop
        time.sleep(2)               # some load after it
    load.assert_clean()             # 0 failed, none lost, the load covered the operation
                                    # and sent at least half of rate x its duration in it

From the shell (benchmarks/vm_lib.sh)::

    python tests/integration/loadgen.py --url http://127.0.0.1:8080 --rate 250 \
        --requests 50000 --path / --path /post/1/ --csv samples.csv

The CSV has one row per request: at,sent,latency,status,colour,error,reason (times in
seconds from the start; reason empty for an ok request). benchmarks/load_report.py
reads it.
"""

from __future__ import annotations

import argparse
import csv
import functools
import http.client
import ipaddress
import math
import signal
import ssl
import sys
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

NO_COLOUR = "no colour"  # in colour runs: an answer without X-Release-Colour
# assert_clean's default: at least this share of rate x the operation's duration must
# have been sent during the operation (a loaded 2-core machine delays the generator too).
MIN_FRACTION = 0.5


@dataclass
class Sample:
    at: float                 # scheduled send time (monotonic seconds since the start)
    sent: float | None        # real send time (same clock); None if the worker never got to send
    latency: float            # seconds from the scheduled time to the end of the answer (or the error)
    status: int               # HTTP status; 0 when no answer came
    colour: str               # X-Release-Colour, "" if absent
    error: str = ""           # the exception, or why the answer does not count
    reason: str = ""          # "" for an ok request, else the failure's kind (see the module's doc)

    @property
    def ok(self) -> bool:
        return not self.reason

    @property
    def duration(self) -> float:
        """Seconds from the real send to the end of the answer."""
        return self.latency - ((self.sent if self.sent is not None else self.at) - self.at)


@dataclass(repr=False)
class Stats:
    samples: list[Sample] = field(default_factory=list)
    wall: float = 0.0                 # seconds from the start to the end of the schedule
    rate: float = 0.0                 # the rate asked for
    scheduled: int = 0                # requests handed to the workers
    runner_error: str = ""            # the scheduler itself failed (never expected)
    op_started: float | None = None   # Load.operation(): the operation's window, same clock
    op_ended: float | None = None

    def __repr__(self) -> str:  # short in assertion messages: the samples can be many thousands
        return f"Stats({self.summary()})"

    # -- counts ------------------------------------------------------------------------
    @property
    def total(self) -> int:
        """Requests that ended (each exactly once, ok or failed)."""
        return len(self.samples)

    @property
    def lost(self) -> int:
        """Scheduled requests without a sample: 0 once the run has ended."""
        return self.scheduled - self.total

    @property
    def failures(self) -> list[Sample]:
        return [s for s in self.samples if not s.ok]

    @property
    def failed(self) -> int:
        return sum(1 for s in self.samples if not s.ok)

    @property
    def ok(self) -> int:
        return sum(1 for s in self.samples if s.ok)

    def reasons(self) -> dict[str, int]:
        """Failed requests by reason, most frequent first."""
        return dict(Counter(s.reason for s in self.samples if not s.ok).most_common())

    # -- when requests really left -----------------------------------------------------
    def _sent_times(self) -> list[float]:
        return sorted(s.sent for s in self.samples if s.sent is not None)

    @property
    def first_sent(self) -> float | None:
        sent = self._sent_times()
        return sent[0] if sent else None

    @property
    def last_sent(self) -> float | None:
        sent = self._sent_times()
        return sent[-1] if sent else None

    @property
    def achieved_rate(self) -> float:
        """Requests per second between the first and the last real send."""
        sent = self._sent_times()
        if len(sent) < 2 or sent[-1] <= sent[0]:
            return 0.0
        return (len(sent) - 1) / (sent[-1] - sent[0])

    @property
    def max_latency(self) -> float:
        return max((s.latency for s in self.samples), default=float("nan"))

    @property
    def max_send_lag(self) -> float:
        """The longest delay between a request's scheduled and real send time."""
        return max((s.sent - s.at for s in self.samples if s.sent is not None), default=float("nan"))

    def sent_between(self, start: float, end: float) -> int:
        return sum(1 for s in self.samples if s.sent is not None and start <= s.sent <= end)

    # -- colours -----------------------------------------------------------------------
    def colours(self) -> list[str]:
        """The colour of every answer (NO_COLOUR without the header), in the order the
        requests were scheduled. Requests without an answer (socket errors) have none."""
        return [s.colour or NO_COLOUR for s in sorted(self.samples, key=lambda s: s.at) if s.status]

    def colour_runs(self) -> list[tuple[str, int]]:
        """Consecutive runs of the same colour, e.g. [("orange", 900), ("maroon", 40), ...]."""
        runs: list[list] = []
        for c in self.colours():
            if runs and runs[-1][0] == c:
                runs[-1][1] += 1
            else:
                runs.append([c, 1])
        return [(c, n) for c, n in runs]

    # -- latency -----------------------------------------------------------------------
    def percentile(self, q: float, start: float | None = None, end: float | None = None) -> float:
        lat = sorted(s.latency for s in self.samples
                     if (start is None or s.at >= start) and (end is None or s.at < end))
        if not lat:
            return float("nan")
        return lat[min(len(lat) - 1, int(q / 100 * len(lat)))]

    def summary(self) -> str:
        def t(x):
            return "-" if x is None else f"{x:.2f} s"

        window = ""
        if self.op_started is not None and self.op_ended is not None:
            window = (f", operation {t(self.op_started)} to {t(self.op_ended)} "
                      f"({self.sent_between(self.op_started, self.op_ended)} sent in it)")
        lost = f", {self.lost} LOST" if self.lost else ""
        runner = f", scheduler failed: {self.runner_error}" if self.runner_error else ""
        return (f"{self.total} requests ({self.ok} ok, {self.failed} failed {self.reasons()}{lost}) "
                f"in {self.wall:.1f} s, {self.achieved_rate:.1f}/s sent of {self.rate:g}/s asked, "
                f"first sent {t(self.first_sent)}, last sent {t(self.last_sent)}, "
                f"max send lag {self.max_send_lag * 1000:.1f} ms{window}, "
                f"p50 {self.percentile(50) * 1000:.1f} ms, p99 {self.percentile(99) * 1000:.1f} ms, "
                f"max {self.max_latency * 1000:.1f} ms, colours {self.colour_runs()[:12]}{runner}")

    # -- the zero-downtime assertion ---------------------------------------------------
    def assert_clean(self, op_started: float | None = None, op_ended: float | None = None,
                     min_requests: int | None = None, *, min_fraction: float = MIN_FRACTION) -> str:
        """Assert that the load proves the operation caused no failed request:

        - every scheduled request ended exactly once (none lost, total == ok + failed);
        - none failed (the reasons are in the message);
        - the load covered the whole operation: a request was sent at or before it
          started and another at or after it ended;
        - at least ``min_requests`` were sent during it; by default ``min_fraction`` of
          rate x the operation's duration (slack for a loaded machine), and at least 1.

        The window defaults to the one Load.operation() recorded; times are on the load's
        clock (Load.now()). Returns the summary, for printing.
        """
        start = self.op_started if op_started is None else op_started
        end = self.op_ended if op_ended is None else op_ended
        summary = self.summary()
        assert start is not None and end is not None, f"no operation window recorded (Load.operation()): {summary}"
        assert end >= start, f"the operation ended ({end:.2f} s) before it started ({start:.2f} s)"
        assert not self.runner_error, summary
        assert self.lost == 0, f"{self.lost} requests ended without a sample: {summary}"
        assert self.total == self.ok + self.failed, summary
        assert self.failed == 0, (f"{self.failed} failed {self.reasons()}: "
                                  f"{[(round(s.at, 3), s.status, s.reason, s.error) for s in self.failures[:10]]}; "
                                  f"{summary}")
        first, last = self.first_sent, self.last_sent
        assert first is not None and first <= start, \
            f"the load started after the operation (first sent {first}, operation from {start:.2f} s): {summary}"
        assert last is not None and last >= end, \
            f"the load stopped before the operation ended (last sent {last}, operation until {end:.2f} s): {summary}"
        if min_requests is None:
            min_requests = max(1, math.floor(self.rate * (end - start) * min_fraction))
        during = self.sent_between(start, end)
        assert during >= min_requests, (f"only {during} requests sent during the {end - start:.1f} s operation, "
                                        f"fewer than {min_requests}: {summary}")
        return summary


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
    """Constant-rate GET requests to url + paths (cycled) until stopped or bounded.

    ``host_header`` replaces the Host header (default: the URL's host and port, as a
    browser sends it); ``headers`` are added to every request (for example
    ``{"X-Forwarded-Proto": "https"}`` behind a TLS-terminating proxy). ``slow_after``:
    an answer slower than this, from its real send, counts as failed ("slow"). An https://
    URL is checked against ``cafile`` (a private CA, such as the lab's) or the system's CAs;
    every request makes a full TLS handshake, as a new visitor does.
    """

    def __init__(self, url: str = "http://127.0.0.1:8080", *, rate: float = 100.0,
                 paths: list[str] | None = None, max_requests: int = 20000,
                 max_seconds: float = 600.0, timeout: float = 15.0, workers: int = 48,
                 slow_after: float = 5.0, host_header: str | None = None,
                 headers: dict[str, str] | None = None, cafile: str | None = None):
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.tls = ssl.create_default_context(cafile=cafile) if parts.scheme == "https" else None
        self.port = parts.port or (443 if self.tls else 80)
        assert _ours(self.host), f"load goes to 127.0.0.1 or the project's own lab and cluster only, not {self.host}"
        assert rate > 0, "rate must be positive"
        self.paths = paths or ["/healthz"]
        self.rate = rate
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.timeout = timeout
        self.workers = workers
        self.slow_after = slow_after
        self.headers = {"Connection": "close", "User-Agent": "djangoops-loadgen", **(headers or {})}
        if host_header:
            self.headers["Host"] = host_header
        self.stats = Stats(rate=rate)
        self.started_epoch = 0.0  # time.time() at the start (the CSV's times count from it)
        self._stop = threading.Event()
        self._first_sent = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    # -- one request -------------------------------------------------------------------
    def _exchange(self, path: str) -> tuple[int, str]:
        """Send one GET and read the whole answer: (status, colour). Raises on no answer."""
        conn = (http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.tls)
                if self.tls else http.client.HTTPConnection(self.host, self.port, timeout=self.timeout))
        try:
            # a Host given in headers must be the only one
            conn.putrequest("GET", path, skip_host=any(k.lower() == "host" for k in self.headers))
            for name, value in self.headers.items():
                conn.putheader(name, value)
            conn.endheaders()
            resp = conn.getresponse()
            resp.read()
            return resp.status, resp.getheader("X-Release-Colour", "") or ""
        finally:
            conn.close()

    def _one(self, at: float, path: str) -> Sample:
        sent = time.monotonic() - self._t0
        self._first_sent.set()
        status, colour, error, reason = 0, "", "", ""
        try:
            status, colour = self._exchange(path)
        except Exception as exc:  # noqa: BLE001 - whatever the client raises, the request failed
            status, error, reason = 0, f"{type(exc).__name__}: {exc}", type(exc).__name__
        end = time.monotonic() - self._t0
        if not reason:
            if not 200 <= status < 300:
                reason = f"http {status}"
            elif end - sent > self.slow_after:
                reason = "slow"
                error = f"answered in {end - sent:.3f} s, over the {self.slow_after:g} s bound"
        return Sample(at, sent, end - at, status, colour, error, reason)

    def _record(self, at: float, future: Future) -> None:
        """Done callback of every request: exactly one sample, whatever happened."""
        try:
            sample = future.result()
        except BaseException as exc:  # noqa: BLE001 - the worker died: still counted
            sample = Sample(at, None, time.monotonic() - self._t0 - at, 0, "",
                            f"{type(exc).__name__}: {exc}", "lost")
        with self._lock:
            self.stats.samples.append(sample)

    # -- the schedule ------------------------------------------------------------------
    def _run(self) -> None:
        interval = 1.0 / self.rate
        try:
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                n = 0
                while not self._stop.is_set() and n < self.max_requests:
                    at = n * interval
                    if at > self.max_seconds:
                        break
                    delay = self._t0 + at - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                    with self._lock:
                        self.stats.scheduled = n + 1
                    future = pool.submit(self._one, at, self.paths[n % len(self.paths)])
                    n += 1
                    future.add_done_callback(functools.partial(self._record, at))
                # leaving the block waits for every request in flight
        except BaseException as exc:  # noqa: BLE001 - reported by summary() and assert_clean()
            self.stats.runner_error = f"{type(exc).__name__}: {exc}"
        finally:
            self.stats.wall = time.monotonic() - self._t0
            self._first_sent.set()

    def start(self) -> "Load":
        """Start the schedule; returns once the first request has left (so an operation
        started after start() is covered from its beginning)."""
        self._t0 = time.monotonic()
        self.started_epoch = time.time()
        self._thread = threading.Thread(target=self._run, name="loadgen", daemon=True)
        self._thread.start()
        self._first_sent.wait(10)
        return self

    def now(self) -> float:
        """Seconds since the load started (the clock of Sample.at and Sample.sent)."""
        return time.monotonic() - self._t0

    @contextmanager
    def operation(self):
        """Record the operation's window (stats.op_started, stats.op_ended) for assert_clean()."""
        self.stats.op_started = self.now()
        try:
            yield self
        finally:
            self.stats.op_ended = self.now()

    def wait(self) -> Stats:
        """Wait until the bounded run ends by itself (every request in flight included)."""
        assert self._thread
        self._thread.join()
        return self.stats

    def stop(self) -> Stats:
        self._stop.set()
        return self.wait()

    def assert_clean(self, op_started: float | None = None, op_ended: float | None = None,
                     min_requests: int | None = None, **kwargs) -> str:
        """Stats.assert_clean() once the load has stopped (see there)."""
        assert self._thread is not None and not self._thread.is_alive(), "stop the load first"
        return self.stats.assert_clean(op_started, op_ended, min_requests, **kwargs)

    def __enter__(self) -> "Load":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


CSV_COLUMNS = ["at", "sent", "latency", "status", "colour", "error", "reason"]


def write_csv(stats: Stats, path: str) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for s in sorted(stats.samples, key=lambda s: s.at):
            w.writerow([f"{s.at:.4f}", "" if s.sent is None else f"{s.sent:.4f}", f"{s.latency:.5f}",
                        s.status, s.colour, s.error, s.reason])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--rate", type=float, default=250.0, help="requests per second")
    p.add_argument("--requests", type=int, default=50000, help="stop after this many")
    p.add_argument("--max-seconds", type=float, default=900.0)
    p.add_argument("--path", action="append", help="path(s) to cycle through (default /healthz)")
    p.add_argument("--workers", type=int, default=64)
    p.add_argument("--timeout", type=float, default=15.0, help="socket timeout, seconds")
    p.add_argument("--slow-after", type=float, default=5.0,
                   help="a request answered later than this (seconds from its send) counts as failed")
    p.add_argument("--host-header", help="Host header to send (default: the URL's host)")
    p.add_argument("--header", action="append", default=[], metavar="NAME:VALUE", help="extra request header")
    p.add_argument("--csv", help="write every request here: " + ",".join(CSV_COLUMNS))
    p.add_argument("--cafile", help="a CA file to check an https:// URL against (default: the system's CAs)")
    args = p.parse_args(argv)
    headers = {}
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            p.error(f"--header {h!r}: use NAME:VALUE")
        headers[name.strip()] = value.strip()
    load = Load(args.url, rate=args.rate, paths=args.path, max_requests=args.requests,
                max_seconds=args.max_seconds, workers=args.workers, timeout=args.timeout,
                slow_after=args.slow_after, host_header=args.host_header, headers=headers, cafile=args.cafile)
    signal.signal(signal.SIGTERM, lambda *_: load._stop.set())
    load.start()
    print(f"loadgen: started {load.started_epoch:.3f}", flush=True)
    stats = load.wait()
    if args.csv:
        write_csv(stats, args.csv)
    print("loadgen:", stats.summary(), flush=True)
    return 0 if stats.failed == 0 and stats.lost == 0 and not stats.runner_error else 1


if __name__ == "__main__":
    sys.exit(main())
