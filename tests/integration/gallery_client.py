"""A browser's part in the tests of examples/gallery on both targets: the curator's
login (the project's own admin, from its fixture) and an image upload through the site."""

from __future__ import annotations

import re
import struct
import threading
import time
import zlib

import requests

CURATOR = ("curator", "curator-sample-password")  # the project's fixture, not the collection's


def tiny_png(seed: int) -> bytes:
    """A valid 1x1 PNG whose one pixel depends on seed (so each upload is its own file)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    pixel = bytes([0, seed % 256, (seed // 256) % 256, 7])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(pixel)) + chunk(b"IEND", b""))


def curator_session(url: str) -> requests.Session:
    session = requests.Session()
    login = session.get(url + "/admin/login/", timeout=15)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    done = session.post(url + "/admin/login/?next=/admin/", allow_redirects=False, timeout=30,
                        data={"csrfmiddlewaretoken": token, "username": CURATOR[0], "password": CURATOR[1],
                              "next": "/admin/"}, headers={"Referer": url + "/admin/login/"})
    assert done.status_code == 302 and "sessionid" in session.cookies, done.status_code
    return session


def upload(url: str, title: str, png: bytes) -> str:
    """Upload png through the site as the curator; the photo page's path."""
    session = curator_session(url)
    form = session.get(url + "/upload/", timeout=15)
    assert form.status_code == 200, form.status_code
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    done = session.post(url + "/upload/", allow_redirects=False, timeout=30, headers={"Referer": url + "/upload/"},
                        data={"csrfmiddlewaretoken": token, "title": title},
                        files={"image": (f"{title}.png", png, "image/png")})
    assert done.status_code == 302 and done.headers["Location"].startswith("/photos/"), (done.status_code, done.text[-800:])
    return done.headers["Location"]


def thumbnail(url: str, page: str, seconds: float = 90) -> tuple[str, str]:
    """The thumbnail a Celery worker made for the photo at page (its link and the worker's host
    name), read from the photo's page through the site; fails when none came within seconds."""
    deadline = time.monotonic() + seconds
    while True:
        html = requests.get(url + page, timeout=15)
        assert html.status_code == 200, (page, html.status_code)
        found = re.search(r'data-thumbnail-url="([^"]+)" data-by="([^"]*)"', html.text)
        if found:
            return found.group(1).replace("&amp;", "&"), found.group(2)
        assert time.monotonic() < deadline, f"no thumbnail on {page} after {seconds} s: no worker ran the task"
        time.sleep(1)


def queue_tick(session: requests.Session, url: str, key: str, seconds: float = 0.2) -> requests.Response:
    """Queue examples/gallery's record_tick task under key through the site, as the curator
    (session): one that takes seconds (more than 1: it leaves "<key>/started" as it begins).
    A connection of its own each time, as the load generator's (tests/integration/loadgen.py):
    a kept-alive one that NGINX closes as it reloads in an upgrade would be lost on the way
    in ("Remote end closed connection without response"), a client's race, not the site's."""
    return session.post(url + "/ticks/add/", data={"key": key, "seconds": seconds}, timeout=10,
                        headers={"X-CSRFToken": session.cookies.get("csrftoken", ""), "Referer": url + "/",
                                 "Connection": "close"})


def tick_runs(session: requests.Session, url: str, prefix: str, times: bool = False, timeout: float = 15) -> dict:
    """How many times each task whose key begins with prefix ran, read through the site; with
    times, when each of its runs ended instead (a list of seconds since the epoch)."""
    answer = session.get(url + "/ticks/", params={"prefix": prefix, **({"times": 1} if times else {})}, timeout=timeout)
    assert answer.status_code == 200, answer.status_code
    return answer.json()


class Ticker:
    """Queues examples/gallery's record_tick task through the site (POST /ticks/add/, as the
    curator) at a steady rate from a thread, each under a key of its own; then reads through
    the site (GET /ticks/) how many times each key's task ran. Bounded: at most `limit` tasks."""

    def __init__(self, url: str, rate: float = 4, limit: int = 2000, seconds: float = 0.2):
        self.url, self.interval, self.limit, self.seconds = url, 1 / rate, limit, seconds
        self.prefix = f"tick-{int(time.time())}-"
        self.session = curator_session(url)
        self.queued: list[str] = []
        self.sent: dict[str, float] = {}  # when each queued key's request was sent (time.time())
        self.refused: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        number = 0
        while not self._stop.is_set() and number < self.limit:
            started = time.monotonic()
            key = f"{self.prefix}{number:05d}"
            number += 1
            try:
                sent = time.time()
                answer = queue_tick(self.session, self.url, key, self.seconds)
                if answer.status_code == 200 and answer.json().get("queued"):
                    self.queued.append(key)
                    self.sent[key] = sent
                else:
                    self.refused.append((key, f"HTTP {answer.status_code}"))
            except (requests.RequestException, ValueError) as err:
                self.refused.append((key, repr(err)))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def start(self) -> "Ticker":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def runs(self) -> dict[str, int]:
        return tick_runs(self.session, self.url, self.prefix)

    def assert_each_ran_once(self, seconds: float = 120) -> dict[str, int]:
        """Every queued task ran, none twice: waits up to seconds for the queue to drain."""
        assert self.queued and not self.refused, (len(self.queued), self.refused[:5])
        deadline = time.monotonic() + seconds
        while True:
            runs = self.runs()
            missing = [key for key in self.queued if key not in runs]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(2)
        twice = {key: count for key, count in runs.items() if count != 1}
        assert not missing and not twice, (f"{len(self.queued)} queued, {len(missing)} never ran ({missing[:5]}), "
                                           f"run more than once: {dict(list(twice.items())[:5])}")
        return runs
