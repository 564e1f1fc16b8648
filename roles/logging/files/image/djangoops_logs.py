#!/usr/bin/env python3
# Copyright: djangoops.stack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Small log collector and aggregator for Kubernetes (djangoops.stack.logging).

collect  runs on every node (DaemonSet): tails the kubelet's pod log files
         (<root>/<namespace>_<pod>_<uid>/<container>/<restart>.log, CRI format
         "<time> <stream> <P|F> <message>", or Docker's JSON lines), joins partial
         lines, and POSTs JSON records to the aggregator.
serve    the aggregator (one replica): stores records as JSON lines on its volume,
         drops records it already holds, and answers queries:
           GET  /logs?namespace=&pod=&container=&node=&stream=&contains=&since=&limit=
                (count_only=1: only the number of matches)
           GET  /positions?node=NAME      where each of that node's files was read up to
           POST /ingest                   {"records": [...], "resume": {key: offset}}
           GET  /healthz

Positions live with the stored data: a record carries its file's identity (node, pod
directory, container, hash of the file's first line, so a rotated file keeps its
identity) and the byte offset where it ends. The aggregator keeps the highest offset per
file and stream, stored in the same line as the batch, drops records at or below it, and
the collector asks for the positions when it starts. A collector restart therefore
neither resends nor loses lines, and the collector writes nothing on the node.
Standard library only.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import hashlib
import http.server
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
import urllib.request
import zlib

FIRST_LINE_MAX = 64 * 1024
READ_MAX = 512 * 1024          # bytes read from one file per pass
BATCH_MAX = 2 * 1024 * 1024    # bytes of records sent in one request
MESSAGE_MAX = 256 * 1024      # a joined partial line is cut here


def log(msg: str) -> None:
    print(f"djangoops-logs: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- parsing

def parse_line(raw: bytes):
    """(time, stream, full, message) of one log line, or None when it is not a log line."""
    if raw.startswith(b"{"):
        # Docker's json-file driver (cri-dockerd links those files into /var/log/pods).
        try:
            doc = json.loads(raw)
            text = doc["log"]
            return doc.get("time", ""), doc.get("stream", "stdout"), text.endswith("\n"), text.removesuffix("\n")
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
    parts = raw.split(b" ", 3)
    if len(parts) < 3 or parts[2] not in (b"F", b"P"):
        return None
    message = parts[3] if len(parts) == 4 else b""
    return (parts[0].decode("ascii", "replace"), parts[1].decode("ascii", "replace"),
            parts[2] == b"F", message.decode("utf-8", "replace"))


_POD_DIR = re.compile(r"^(?P<namespace>[a-z0-9-]+)_(?P<pod>[a-z0-9.-]+)_(?P<uid>[A-Za-z0-9-]+)$")
_LOG_FILE = re.compile(r"^(?P<restart>[0-9]+)\.log(?P<rotated>\.[0-9]{8}-[0-9]{6}(\.gz)?)?$")


def describe(path: str):
    """namespace, pod, uid, container and restart count from a pod log file's path."""
    container_dir, name = os.path.split(path)
    pod_dir, container = os.path.split(container_dir)
    pod_match = _POD_DIR.match(os.path.basename(pod_dir))
    file_match = _LOG_FILE.match(name)
    if not pod_match or not file_match:
        return None
    return {**pod_match.groupdict(), "container": container, "restart": int(file_match["restart"]),
            "rotated": bool(file_match["rotated"]), "dir": f"{os.path.basename(pod_dir)}/{container}"}


# ---------------------------------------------------------------- collector

class Collector:
    def __init__(self, args):
        self.root = args.root
        self.node = args.node
        self.url = args.aggregator.rstrip("/")
        self.interval = args.interval
        self.exclude = set(filter(None, args.exclude_namespaces.split(",")))
        self.hw: dict[str, int] = {}       # key -> end offset of the last record stored
        self.resume: dict[str, int] = {}   # key -> where reading starts next
        self.finished: dict[str, tuple] = {}  # compressed files read to their end
        self.open_gz: dict[str, tuple] = {}    # compressed files being read: (handle, key)
        self.ready = False
        self.last_ok = 0.0

    def _request(self, method: str, path: str, body: bytes | None = None, timeout: float = 30):
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.load(resp)

    def load_positions(self) -> None:
        while True:
            try:
                doc = self._request("GET", "/positions?" + urllib.parse.urlencode({"node": self.node}))
                self.hw.update(doc["hw"])
                self.resume.update(doc["resume"])
                log(f"positions of {len(self.resume)} files loaded from {self.url}")
                return
            except (OSError, ValueError, KeyError) as exc:
                log(f"waiting for the aggregator at {self.url}: {exc}")
                time.sleep(2)

    def files(self) -> list:
        """Every log file with what its path says, the oldest (rotated) first in each folder."""
        found = []
        for path in glob.glob(os.path.join(self.root, "*", "*", "*.log*")):
            info = describe(path)
            if info and info["namespace"] not in self.exclude:
                found.append((path, info))
        return sorted(found, key=lambda f: (f[1]["dir"], f[1]["restart"], not f[1]["rotated"], f[0]))

    def _key(self, info: dict, first: bytes) -> str:
        return f"{self.node}/{info['dir']}#{hashlib.sha256(first).hexdigest()[:16]}"

    def _forget(self, path: str) -> None:
        handle = self.open_gz.pop(path, (None, None))[0]
        if handle:
            handle.close()

    def _read(self, path: str, info: dict, budget: int):
        """(file key, resume point, bytes from there, mtime); key None while there is nothing to read."""
        stat = os.stat(path)
        if path.endswith(".gz"):
            # The kubelet compresses rotated files but the newest. Reading them too means
            # a collector that falls behind by up to containerLogMaxFiles files loses
            # nothing; a compressed file keeps the identity and offsets it had. Its
            # decompressor stays open between reads, so each byte is inflated once.
            if self.finished.get(path) == (stat.st_mtime_ns, stat.st_size):
                return None, 0, b"", 0
            if path not in self.open_gz:
                handle = gzip.open(path, "rb")
                first = handle.readline(FIRST_LINE_MAX)
                if not first.endswith(b"\n"):
                    handle.close()
                    return None, 0, b"", 0
                self.open_gz[path] = (handle, self._key(info, first))
            handle, key = self.open_gz[path]
            start = self.resume.get(key, 0)
            if handle.tell() != start:
                handle.seek(start)
            data = handle.read(min(READ_MAX, budget))
            if data and not data.endswith(b"\n"):
                data += handle.readline(FIRST_LINE_MAX)  # end on a line: the next read goes on from here
            if not data:
                self.finished[path] = (stat.st_mtime_ns, stat.st_size)
                self._forget(path)
            return key, start, data, stat.st_mtime
        with open(path, "rb") as handle:
            first = handle.readline(FIRST_LINE_MAX)
            if not first.endswith(b"\n") and len(first) < FIRST_LINE_MAX:
                return None, 0, b"", 0   # not even one whole line yet
            key = self._key(info, first)
            start = self.resume.get(key, 0)
            stat = os.fstat(handle.fileno())
            if stat.st_size <= start:
                return key, start, b"", stat.st_mtime
            handle.seek(start)
            return key, start, handle.read(min(READ_MAX, budget, stat.st_size - start)), stat.st_mtime

    def read_file(self, path: str, info: dict, budget: int):
        """Records of one file from its resume point: (records, file key, new resume, bytes used)."""
        try:
            key, start, data, mtime = self._read(path, info, budget)
        except (OSError, EOFError, zlib.error):
            self._forget(path)
            return [], None, 0, 0   # removed with its pod, rotated away, or half compressed
        if key is None or not data:
            return [], key, start, 0
        end = data.rfind(b"\n") + 1
        if end == 0 and len(data) < READ_MAX:
            return [], key, start, 0
        lines = data[:end].split(b"\n")[:-1] if end else [data]
        meta = {k: info[k] for k in ("namespace", "pod", "container", "restart")}
        records, pending, offset = [], {}, start

        def emit(stream: str, parts: list, upto: int) -> None:
            # One key per file and stream: each stream's offsets only grow, however the
            # container interleaves partial lines of stdout and stderr.
            stream_key = f"{key}:{stream}"
            if upto > self.hw.get(stream_key, -1):
                records.append({"key": stream_key, "offset": upto, "time": parts[1], "node": self.node,
                                "stream": stream, "message": "".join(parts[2]), **meta})

        for raw in lines:
            line_start, offset = offset, offset + len(raw) + (1 if end else 0)
            parsed = parse_line(raw)
            if parsed is None:
                continue
            when, stream, full, message = parsed
            parts = pending.setdefault(stream, [line_start, when, [], 0])
            parts[2].append(message)
            parts[3] = offset
            if full or sum(map(len, parts[2])) >= MESSAGE_MAX:
                del pending[stream]
                emit(stream, parts, offset)
        # A partial line is read again next time, unless waiting for its end would stall
        # the file (a full read that cannot move on) or the file stopped growing (the
        # container ended in the middle of a line): then it is sent as it is.
        stalled = len(data) >= READ_MAX and min([p[0] for p in pending.values()], default=offset) == start
        if pending and (stalled or time.time() - mtime > 60):
            for stream, parts in list(pending.items()):
                emit(stream, parts, parts[3])
            pending.clear()
        records.sort(key=lambda r: r["offset"])
        resume = min([p[0] for p in pending.values()], default=offset)
        return records, key, resume, len(data)

    def run_once(self) -> bool:
        """One pass over every file; True when there is more to read at once."""
        batch, resume, budget, more = [], {}, BATCH_MAX, False
        files = self.files()
        present = {path for path, _ in files}
        self.finished = {p: v for p, v in self.finished.items() if p in present}
        for path in set(self.open_gz) - present:
            self._forget(path)
        for path, info in files:
            if budget <= 0:
                more = True
                break
            records, key, new_resume, used = self.read_file(path, info, budget)
            if key is None:
                continue
            budget -= used
            batch.extend(records)
            if new_resume != self.resume.get(key, 0):
                resume[key] = new_resume
            if used >= READ_MAX:
                more = True
        if not batch and not resume:
            self.last_ok = time.monotonic()
            return more
        body = json.dumps({"node": self.node, "records": batch, "resume": resume}).encode()
        self._request("POST", "/ingest", body)
        for record in batch:
            self.hw[record["key"]] = max(self.hw.get(record["key"], -1), record["offset"])
        self.resume.update(resume)
        self.last_ok = time.monotonic()
        return more

    def run(self) -> None:
        self.load_positions()
        self.ready = True
        while True:
            try:
                more = self.run_once()
            except (OSError, ValueError) as exc:
                log(f"sending to {self.url} failed, will retry: {exc}")
                more = False
            if not more:
                time.sleep(self.interval)


# ---------------------------------------------------------------- aggregator

class Store:
    """Segment files of JSON lines on the volume, one line per accepted batch:
    {"hw": {key: offset}, "resume": {file key: offset}, "records": [[FIELDS...], ...]}. A batch and the
    positions it moves are one line, written and fsynced at once, so they cannot disagree
    after a crash (a half-written last line is cut off at start). Each segment starts with
    the positions of every file; the oldest segments go when the total passes max_bytes."""

    FIELDS = ("time", "node", "namespace", "pod", "container", "restart", "stream", "message")

    def __init__(self, directory: str, max_bytes: int):
        self.dir = directory
        self.max_bytes = max_bytes
        self.segment_bytes = max(max_bytes // 4, 1024 * 1024)
        self.lock = threading.Lock()
        self.hw: dict[str, int] = {}
        self.resume: dict[str, int] = {}
        os.makedirs(directory, exist_ok=True)
        self._load()

    def _segments(self) -> list[str]:
        names = [n for n in os.listdir(self.dir) if re.fullmatch(r"logs-[0-9]{8}\.jsonl", n)]
        return [os.path.join(self.dir, n) for n in sorted(names)]

    def _load(self) -> None:
        segments = self._segments()
        if not segments:
            self.active = os.path.join(self.dir, "logs-00000000.jsonl")
            open(self.active, "ab").close()
            log(f"store {self.dir}: empty")
            return
        self.active = segments[-1]
        with open(self.active, "rb+") as handle:
            # A crash in the middle of a write leaves half a line: cut it off.
            size = handle.seek(0, os.SEEK_END)
            keep = size
            while keep > 0:
                handle.seek(max(keep - 65536, 0))
                chunk = handle.read(keep - max(keep - 65536, 0))
                newline = chunk.rfind(b"\n")
                if newline >= 0:
                    keep = max(keep - 65536, 0) + newline + 1
                    break
                keep = max(keep - 65536, 0)
            if keep != size:
                handle.truncate(keep)
            # The segment's first line holds every position; its batches move them on.
            handle.seek(0)
            for raw in handle:
                try:
                    doc = json.loads(raw)
                except ValueError:
                    continue
                for key, offset in doc.get("hw", {}).items():
                    self.hw[key] = max(self.hw.get(key, -1), offset)
                self.resume.update(doc.get("resume", {}))
        log(f"store {self.dir}: {len(segments)} segments, {len(self.resume)} files known")

    def _line(self, doc: dict) -> bytes:
        return json.dumps(doc, separators=(",", ":")).encode() + b"\n"

    def ingest(self, records: list, resume: dict) -> tuple[int, int]:
        with self.lock:
            accepted, moved = [], {}
            for record in records:
                key, offset = record["key"], int(record["offset"])
                if offset <= self.hw.get(key, -1):
                    continue
                self.hw[key] = moved[key] = offset
                accepted.append([record.get(k) for k in self.FIELDS])
            if accepted or resume:
                self.resume.update(resume)
                with open(self.active, "ab") as handle:
                    handle.write(self._line({"hw": moved, "resume": resume, "records": accepted}))
                    handle.flush()
                    os.fsync(handle.fileno())
                if os.path.getsize(self.active) > self.segment_bytes:
                    self._roll()
            return len(accepted), len(records) - len(accepted)

    def _roll(self) -> None:
        number = int(os.path.basename(self.active)[5:13]) + 1
        path = os.path.join(self.dir, f"logs-{number:08d}.jsonl")
        with open(path + ".tmp", "wb") as handle:
            handle.write(self._line({"hw": self.hw, "resume": self.resume, "records": []}))
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(path + ".tmp", path)
        self.active = path
        segments = self._segments()
        while len(segments) > 1 and sum(os.path.getsize(p) for p in segments) > self.max_bytes:
            os.remove(segments.pop(0))

    def positions(self, node: str) -> dict:
        prefix = node + "/"
        with self.lock:
            return {"hw": {k: v for k, v in self.hw.items() if k.startswith(prefix)},
                    "resume": {k: v for k, v in self.resume.items() if k.startswith(prefix)}}

    def query(self, filters: dict, contains: str, since: str, limit: int | None):
        """The last `limit` matching records, oldest first; with limit None, their number."""
        found: collections.deque = collections.deque(maxlen=limit or 1)
        matches = 0
        needle = json.dumps(contains)[1:-1].encode() if contains else b""
        for path in self._segments():
            try:
                handle = open(path, "rb")
            except FileNotFoundError:
                continue             # removed by retention meanwhile
            with handle:
                for raw in handle:
                    if needle and needle not in raw:
                        continue
                    try:
                        batch = json.loads(raw)["records"]
                    except (ValueError, KeyError):
                        continue
                    for row in batch:
                        doc = dict(zip(self.FIELDS, row))
                        if any(str(doc.get(k)) != v for k, v in filters.items()):
                            continue
                        if contains and contains not in doc["message"]:
                            continue
                        if since and doc["time"] < since:
                            continue
                        matches += 1
                        if limit is not None:
                            found.append(doc)
        return matches if limit is None else list(found)


class Handler(http.server.BaseHTTPRequestHandler):
    store: Store
    server_version = "djangoops-logs"

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass                         # quiet: our own log lines would be collected again

    def _send(self, status: int, doc) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's naming
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        if url.path == "/healthz":
            self._send(200, {"status": "ok"})
        elif url.path == "/positions":
            self._send(200, self.store.positions(query.get("node", "")))
        elif url.path == "/logs":
            try:
                limit = max(1, min(int(query.get("limit", "1000")), 50000))
            except ValueError:
                self._send(400, {"error": "limit must be a number"})
                return
            filters = {k: query[k] for k in ("namespace", "pod", "container", "node", "stream", "restart") if k in query}
            if query.get("count_only", "") in ("1", "true"):
                matches = self.store.query(filters, query.get("contains", ""), query.get("since", ""), None)
                self._send(200, {"count": matches, "records": []})
                return
            records = self.store.query(filters, query.get("contains", ""), query.get("since", ""), limit)
            self._send(200, {"count": len(records), "records": records})
        else:
            self._send(404, {"error": "unknown path; try /logs?namespace=NS&pod=POD&contains=TEXT"})

    def do_POST(self):  # noqa: N802 - http.server's naming
        if self.path != "/ingest":
            self._send(404, {"error": "unknown path"})
            return
        try:
            doc = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            accepted, duplicates = self.store.ingest(doc.get("records", []), doc.get("resume", {}))
        except (ValueError, KeyError, TypeError) as exc:
            self._send(400, {"error": str(exc)})
            return
        self._send(200, {"accepted": accepted, "duplicates": duplicates})


def health_server(port: int, collector: Collector) -> None:
    """The collector's probes: /healthz while it runs, /readyz while it ships."""

    class Health(http.server.BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002
            pass

        def do_GET(self):  # noqa: N802
            ok = self.path == "/healthz" or (
                collector.ready and time.monotonic() - collector.last_ok < 30 * collector.interval + 30)
            self.send_response(200 if ok else 503)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("", port), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    collect = sub.add_parser("collect", help="tail this node's pod logs and ship them")
    collect.add_argument("--root", default="/var/log/pods")
    collect.add_argument("--node", default=os.environ.get("NODE_NAME", ""))
    collect.add_argument("--aggregator", required=True, help="e.g. http://djangoops-logs-aggregator:8080")
    collect.add_argument("--interval", type=float, default=1.0)
    collect.add_argument("--exclude-namespaces", default="", help="comma separated")
    collect.add_argument("--health-port", type=int, default=8081)
    serve = sub.add_parser("serve", help="store records and answer queries")
    serve.add_argument("--data", default="/data")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--max-bytes", type=int, default=768 * 1024 * 1024)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    if args.mode == "collect":
        if not args.node:
            parser.error("--node (or NODE_NAME) is required")
        collector = Collector(args)
        health_server(args.health_port, collector)
        log(f"collecting {args.root} on {args.node} for {args.aggregator}")
        collector.run()
    else:
        Handler.store = Store(args.data, args.max_bytes)
        server = http.server.ThreadingHTTPServer(("", args.port), Handler)
        log(f"serving on :{args.port}, data in {args.data}")
        server.serve_forever()


if __name__ == "__main__":
    main()
