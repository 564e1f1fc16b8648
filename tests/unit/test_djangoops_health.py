"""roles/image/files/djangoops_health.py: the WSGI wrapper that answers liveness and
readiness for any Django project. Loaded as Gunicorn loads it (DJANGOOPS_WSGI_APP names
the project's callable), in a subprocess with a throwaway Django project whose database is
SQLite: readiness follows the database the project's own DATABASES name."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

WRAPPER = Path(__file__).resolve().parents[2] / "roles" / "image" / "files" / "djangoops_health.py"


def _module(monkeypatch, tmp_path, target):
    """The wrapper module, imported with DJANGOOPS_WSGI_APP=target and tmp_path on sys.path."""
    monkeypatch.setenv("DJANGOOPS_WSGI_APP", target)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("plainapp", "echoapp"):
        monkeypatch.delitem(sys.modules, name, raising=False)  # each test's own copy
    spec = importlib.util.spec_from_file_location("djangoops_health_under_test", WRAPPER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _call(app, path, method="GET"):
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": method}, start_response))
    return seen["status"], seen["headers"], body


@pytest.fixture
def plain_app(tmp_path):
    (tmp_path / "plainapp.py").write_text(textwrap.dedent("""
        calls = []
        def application(environ, start_response):
            calls.append(environ["PATH_INFO"])
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"the app's own answer"]
        def other(environ, start_response):
            start_response("200 OK", [])
            return [b"other"]
    """))
    return tmp_path


def test_other_paths_reach_the_app_untouched(monkeypatch, plain_app):
    health = _module(monkeypatch, plain_app, "plainapp")
    status, _, body = _call(health.application, "/blog/")
    assert (status, body) == ("404 Not Found", b"the app's own answer")
    assert sys.modules["plainapp"].calls == ["/blog/"]


def test_the_callable_named_after_a_colon_is_served(monkeypatch, plain_app):
    health = _module(monkeypatch, plain_app, "plainapp:other")
    assert _call(health.application, "/x")[2] == b"other"


def test_liveness_answers_without_calling_the_app(monkeypatch, plain_app):
    health = _module(monkeypatch, plain_app, "plainapp")
    status, headers, body = _call(health.application, health.LIVE_PATH)
    assert (status, body) == ("200 OK", b"live\n")
    assert headers["Cache-Control"] == "no-store" and headers["Content-Length"] == "5"
    assert sys.modules["plainapp"].calls == []
    assert _call(health.application, health.LIVE_PATH, "HEAD")[2] == b""


def test_readiness_follows_the_database_check(monkeypatch, plain_app):
    health = _module(monkeypatch, plain_app, "plainapp")
    answers = iter([(True, ""), (False, "database 'default' does not answer (OperationalError)")])
    app = health.wrap(sys.modules["plainapp"].application, check_databases=lambda: next(answers))
    assert _call(app, health.READY_PATH)[:3:2] == ("200 OK", b"ready\n")
    status, _, body = _call(app, health.READY_PATH)
    assert status == "503 Service Unavailable" and b"'default'" in body and b"OperationalError" in body


FORWARDED = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_FOR": "203.0.113.9",
             "HTTP_X_FORWARDED_HOST": "evil.example", "HTTP_FORWARDED": "proto=https", "HTTP_X_REAL_IP": "203.0.113.9"}


def _headers_seen(monkeypatch, tmp_path, allow, peer):
    """The forwarded headers the project sees from `peer` with FORWARDED_ALLOW_IPS=allow."""
    (tmp_path / "echoapp.py").write_text(textwrap.dedent("""
        import json
        def application(environ, start_response):
            start_response("200 OK", [])
            return [json.dumps(sorted(k for k in environ if k.startswith("HTTP_"))).encode()]
    """))
    if allow is None:
        monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    else:
        monkeypatch.setenv("FORWARDED_ALLOW_IPS", allow)
    health = _module(monkeypatch, tmp_path, "echoapp")
    environ = {"PATH_INFO": "/", "REQUEST_METHOD": "GET", "REMOTE_ADDR": peer, "HTTP_HOST": "blog", **FORWARDED}
    body = b"".join(health.application(environ, lambda status, headers: None))
    return set(json.loads(body)) - {"HTTP_HOST"}


@pytest.mark.parametrize(("allow", "peer", "kept"), [
    ("10.213.98.0/24,10.213.99.2", "10.213.98.1", True),    # the node's address on the pod network
    ("10.213.98.0/24,10.213.99.2", "10.213.99.2", True),
    ("10.213.98.0/24,10.213.99.2", "127.0.0.1", False),     # a port-forward arrives from inside the pod
    ("10.213.98.0/24,10.213.99.2", "203.0.113.9", False),
    ("fd00::/64", "fd00::7", True),
    ("*", "203.0.113.9", True),
    (None, "127.0.0.1", True),                               # Gunicorn's own default: the loopback only
    (None, "10.0.0.5", False),
    ("10.0.0.5", "", True),                                  # a Unix socket: no address to judge
])
def test_forwarded_headers_reach_the_project_only_from_trusted_proxies(monkeypatch, tmp_path, allow, peer, kept):
    assert _headers_seen(monkeypatch, tmp_path, allow, peer) == (set(FORWARDED) if kept else set())


def test_without_the_app_named_the_worker_does_not_boot(monkeypatch, tmp_path):
    with pytest.raises(RuntimeError, match="DJANGOOPS_WSGI_APP"):
        _module(monkeypatch, tmp_path, "")


def test_an_app_that_does_not_import_fails_the_boot(monkeypatch, tmp_path):
    with pytest.raises(ModuleNotFoundError):
        _module(monkeypatch, tmp_path, "no_such_project.wsgi")


PROJECT = """
import os
SECRET_KEY = "unit-test-only"
ALLOWED_HOSTS = ["only.example"]
ROOT_URLCONF = "proj.urls"
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["DB_FILE"]}}
"""

@pytest.mark.skipif(importlib.util.find_spec("django") is None, reason="Django is not installed here")
def test_readiness_queries_the_projects_own_database_and_skips_allowed_hosts(tmp_path):
    """A real Django project: the probes' Host (a pod IP) is not in ALLOWED_HOSTS, yet ready and
    live answer 200 while the app's own page answers 400; with its database file unreadable,
    ready answers 503 naming the alias."""
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "__init__.py").write_text("")
    (tmp_path / "proj" / "settings.py").write_text(PROJECT)
    (tmp_path / "proj" / "urls.py").write_text("urlpatterns = []\n")
    (tmp_path / "proj" / "wsgi.py").write_text(
        "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n"
        "from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n")
    script = textwrap.dedent("""
        import json, os, sys
        sys.path.insert(0, os.environ["WRAPPER_DIR"])
        import djangoops_health as h

        def call(path):
            seen = {}
            environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "SERVER_NAME": "10.0.0.9",
                       "SERVER_PORT": "8000", "HTTP_HOST": "10.0.0.9:8000", "wsgi.url_scheme": "http",
                       "wsgi.input": __import__("io").BytesIO()}
            body = b"".join(h.application(environ, lambda status, headers: seen.update(status=status)))
            return [seen["status"], body.decode()]

        out = {"ready": call(h.READY_PATH), "live": call(h.LIVE_PATH), "app": call("/")}
        from django.db import connections
        connections["default"].settings_dict["NAME"] = "/nonexistent/dir/db.sqlite3"
        out["down"] = call(h.READY_PATH)
        out["live_down"] = call(h.LIVE_PATH)
        print(json.dumps(out))
    """)
    env = {"PATH": "/usr/bin:/bin", "DB_FILE": str(tmp_path / "db.sqlite3"), "WRAPPER_DIR": str(WRAPPER.parent),
           "DJANGOOPS_WSGI_APP": "proj.wsgi", "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["ready"] == ["200 OK", "ready\n"]
    assert out["live"] == ["200 OK", "live\n"]
    assert out["app"][0].startswith("400")  # the project's own ALLOWED_HOSTS still guards its pages
    assert out["down"][0] == "503 Service Unavailable" and "'default'" in out["down"][1], out["down"]
    assert out["live_down"] == ["200 OK", "live\n"]
