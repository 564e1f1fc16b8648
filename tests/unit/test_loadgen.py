"""tests/integration/loadgen.py against a real http.server on 127.0.0.1 (ports 18900-18999).

Every request ends as exactly one ok or failed sample, with its real send time; the
zero-downtime assertion (assert_clean) fails when the load did not prove anything.
A few seconds in all.
"""

from __future__ import annotations

import csv
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

import loadgen  # noqa: E402
from loadgen import NO_COLOUR, Load  # noqa: E402

PORTS = range(18900, 19000)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen_hosts: ClassVar[list[str]] = []
    seen_proto: ClassVar[list[str]] = []

    def log_message(self, *args):  # keep pytest's output clean
        pass

    def answer(self, status: int, colour: str | None = "orange") -> None:
        body = b"ok\n"
        self.send_response(status)
        if colour:
            self.send_header("X-Release-Colour", colour)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).seen_hosts.append(self.headers.get("Host", ""))
        type(self).seen_proto.append(self.headers.get("X-Forwarded-Proto", ""))
        if self.path in ("/", "/ok"):
            self.answer(200)
        elif self.path == "/maroon":
            self.answer(200, "maroon")
        elif self.path == "/nocolour":
            self.answer(200, None)
        elif self.path == "/error":
            self.answer(500)
        elif self.path == "/slow":
            time.sleep(0.25)
            self.answer(200)
        elif self.path == "/drop":  # closes without an answer: RemoteDisconnected
            self.close_connection = True
        else:
            self.answer(404)


def _bind(sock_factory):
    for port in PORTS:
        try:
            return sock_factory(port), port
        except OSError:
            continue
    pytest.skip("no free port in 18900-18999")


@pytest.fixture(scope="module")
def server():
    Handler.seen_hosts, Handler.seen_proto = [], []
    httpd, port = _bind(lambda p: ThreadingHTTPServer(("127.0.0.1", p), Handler))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def refused_url():
    """A port bound but not listening: connections to it are refused."""
    def bound(port):
        s = socket.socket()
        s.bind(("127.0.0.1", port))
        return s

    sock, port = _bind(bound)
    yield f"http://127.0.0.1:{port}"
    sock.close()


def run(url, paths, n, rate=200.0, **kwargs) -> loadgen.Stats:
    load = Load(url, rate=rate, paths=paths, max_requests=n, max_seconds=30, timeout=5, **kwargs)
    return load.start().wait()


def accounted(stats: loadgen.Stats, n: int) -> None:
    assert stats.scheduled == n
    assert stats.total == n == stats.ok + stats.failed
    assert stats.lost == 0 and not stats.runner_error
    assert all((s.reason == "") == s.ok for s in stats.samples)


def test_ok_answers_are_counted_with_their_send_time(server):
    stats = run(server, ["/ok"], 20)
    accounted(stats, 20)
    assert stats.ok == 20 and stats.failed == 0 and stats.reasons() == {}
    for s in stats.samples:
        assert s.status == 200 and s.colour == "orange"
        assert s.sent is not None and s.sent >= s.at - 1e-6
        assert s.latency >= s.sent - s.at
    assert stats.first_sent is not None and stats.first_sent < stats.last_sent
    assert 0 < stats.max_latency < 1


def test_a_500_is_counted_failed(server):
    stats = run(server, ["/ok", "/error"], 10)
    accounted(stats, 10)
    assert stats.ok == 5 and stats.failed == 5
    assert stats.reasons() == {"http 500": 5}
    assert {s.status for s in stats.failures} == {500}


def test_a_refused_connection_is_counted_failed(refused_url):
    stats = run(refused_url, ["/ok"], 5)
    accounted(stats, 5)
    assert stats.failed == 5 and stats.reasons() == {"ConnectionRefusedError": 5}
    assert all(s.status == 0 and "ConnectionRefusedError" in s.error for s in stats.failures)


def test_a_connection_closed_without_answer_is_counted_failed(server):
    stats = run(server, ["/drop", "/ok"], 6)
    accounted(stats, 6)
    assert stats.ok == 3 and stats.reasons() == {"RemoteDisconnected": 3}


def test_an_unexpected_exception_in_the_client_is_counted_not_lost(server):
    # http.client raises UnicodeEncodeError (neither OSError nor HTTPException) for a
    # path that is not ASCII: the old generator lost such requests without a trace.
    stats = run(server, ["/ok", "/café"], 6)
    accounted(stats, 6)
    assert stats.ok == 3 and stats.reasons() == {"UnicodeEncodeError": 3}


class Weird(Exception):
    pass


class Deadly(BaseException):
    """Escapes `except Exception`: the worker's future holds it."""


class Faulty(Load):
    def _exchange(self, path):
        if path == "/weird":
            raise Weird("a client bug")
        if path == "/deadly":
            raise Deadly("the worker dies")
        return super()._exchange(path)


def test_any_exception_from_a_worker_is_counted(server):
    load = Faulty(server, rate=200, paths=["/ok", "/weird", "/deadly"], max_requests=9, max_seconds=10, timeout=5)
    stats = load.start().wait()
    accounted(stats, 9)
    assert stats.ok == 3 and stats.reasons() == {"Weird": 3, "lost": 3}
    assert all("Deadly" in s.error for s in stats.failures if s.reason == "lost")


def test_an_answer_slower_than_the_bound_is_counted_failed(server):
    stats = run(server, ["/slow", "/ok"], 4, rate=20, slow_after=0.1)
    accounted(stats, 4)
    assert stats.ok == 2 and stats.reasons() == {"slow": 2}
    slow = stats.failures
    assert all(s.status == 200 and s.duration > 0.1 and "bound" in s.error for s in slow)
    # the same answers are ok under the default bound (5 s)
    assert run(server, ["/slow"], 2, rate=20).ok == 2


def test_total_is_ok_plus_failed_over_every_kind(server):
    stats = run(server, ["/ok", "/error", "/drop", "/café", "/nocolour"], 25)
    accounted(stats, 25)
    assert stats.ok == 10
    assert stats.reasons() == {"http 500": 5, "RemoteDisconnected": 5, "UnicodeEncodeError": 5}


def test_colour_runs_keep_answers_without_the_colour_header(server):
    stats = run(server, ["/ok", "/ok", "/nocolour", "/nocolour", "/maroon"], 10, rate=100)
    accounted(stats, 10)
    assert stats.ok == 10
    colours = stats.colours()
    assert len(colours) == 10 and colours.count(NO_COLOUR) == 4
    assert stats.colour_runs() == [("orange", 2), (NO_COLOUR, 2), ("maroon", 1)] * 2


def test_the_rate_holds_and_can_be_checked(server):
    stats = run(server, ["/ok"], 100, rate=200)
    accounted(stats, 100)
    assert 170 <= stats.achieved_rate <= 230, stats.summary()
    assert stats.last_sent - stats.first_sent == pytest.approx(0.495, abs=0.075)
    assert stats.max_send_lag < 0.15, stats.summary()


def test_a_rate_that_did_not_hold_shows(server):
    """One worker and 0.25 s answers at 20/s: requests leave late, and it is recorded."""
    stats = run(server, ["/slow"], 4, rate=20, workers=1)
    accounted(stats, 4)
    assert stats.max_send_lag > 0.5
    assert stats.achieved_rate < 10
    assert all(s.latency >= s.duration for s in stats.samples)


def test_host_header_and_extra_headers_are_sent(server):
    Handler.seen_hosts.clear()
    Handler.seen_proto.clear()
    run(server, ["/ok"], 2, headers={"X-Forwarded-Proto": "https"})
    run(server, ["/ok"], 2, host_header="blog.example.test")
    assert Handler.seen_hosts[:2] == [server.split("://")[1]] * 2
    assert Handler.seen_hosts[2:] == ["blog.example.test"] * 2
    assert Handler.seen_proto[:2] == ["https", "https"]


def test_assert_clean_passes_when_the_load_covers_the_operation(server):
    with Load(server, rate=100, paths=["/ok"], max_requests=1000, max_seconds=10, timeout=5) as load:
        with load.operation():
            time.sleep(0.3)
        time.sleep(0.1)
    summary = load.assert_clean()
    assert "0 failed" in summary
    stats = load.stats
    assert stats.first_sent <= stats.op_started and stats.last_sent >= stats.op_ended
    assert stats.sent_between(stats.op_started, stats.op_ended) >= 20


def test_assert_clean_fails_when_the_load_proves_nothing(server):
    with Load(server, rate=100, paths=["/ok"], max_requests=1000, max_seconds=10, timeout=5) as load:
        with load.operation():
            time.sleep(0.3)
        time.sleep(0.1)
    start, end = load.stats.op_started, load.stats.op_ended
    load.assert_clean()
    with pytest.raises(AssertionError, match="fewer than"):
        load.assert_clean(min_requests=10_000)
    with pytest.raises(AssertionError, match="stopped before the operation ended"):
        load.assert_clean(start, end + 5)
    with pytest.raises(AssertionError, match="started after the operation"):
        load.assert_clean(-1.0, end)
    with pytest.raises(AssertionError, match="no operation window"):
        loadgen.Stats(rate=1).assert_clean()


def test_assert_clean_fails_on_a_failed_request(server):
    with Load(server, rate=100, paths=["/ok", "/error"], max_requests=1000, max_seconds=10, timeout=5) as load:
        with load.operation():
            time.sleep(0.2)
        time.sleep(0.1)
    with pytest.raises(AssertionError, match=r"failed \{'http 500'"):
        load.assert_clean()


def test_stop_with_requests_in_flight_loses_none(server):
    load = Load(server, rate=200, paths=["/slow", "/ok"], max_requests=1000, max_seconds=10, timeout=5).start()
    time.sleep(0.2)
    stats = load.stop()
    accounted(stats, stats.scheduled)
    assert stats.scheduled > 20 and stats.failed == 0


def test_the_cli_writes_a_csv_that_load_report_reads(server, tmp_path):
    samples = tmp_path / "samples.csv"
    out = subprocess.run([sys.executable, str(REPO / "tests" / "integration" / "loadgen.py"), "--url", server,
                          "--rate", "100", "--requests", "30", "--path", "/ok", "--path", "/error",
                          "--header", "X-Forwarded-Proto: https", "--csv", str(samples)],
                         capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 1, out  # failed requests: non-zero
    assert "loadgen: started" in out.stdout and "15 failed {'http 500': 15}" in out.stdout, out.stdout
    rows = list(csv.DictReader(samples.open()))
    assert list(rows[0]) == loadgen.CSV_COLUMNS and len(rows) == 30
    assert {r["reason"] for r in rows} == {"", "http 500"}
    t0 = float(out.stdout.split("loadgen: started ", 1)[1].split()[0])
    times = tmp_path / "times"
    times.write_text(f"{t0} {t0 + 0.05} {t0 + 0.1} 0\n")
    report = subprocess.run([sys.executable, str(REPO / "benchmarks" / "load_report.py"), str(samples),
                             str(times), "unit"], capture_output=True, text=True, timeout=30, check=True).stdout
    assert "requests=30 ok=15 failed=15 reasons={'http 500': 15}" in report, report
    assert "covered=yes" in report and "first=orange" in report, report
