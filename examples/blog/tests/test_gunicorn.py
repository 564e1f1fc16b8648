"""The app served by a real gunicorn, as in production: probes by IP over plain
HTTP, the site by name behind a TLS-terminating proxy (X-Forwarded-Proto)."""

import http.client
import re
import secrets
import subprocess
import sys
import time
from urllib.parse import quote

import pytest
from django.conf import settings

from .conftest import BASE_DIR, closed_port

pytestmark = pytest.mark.django_db


def database_url():
    db = settings.DATABASES["default"]  # the test database, created by pytest-django
    return (
        f"postgres://{quote(db['USER'], safe='')}:{quote(db['PASSWORD'], safe='')}"
        f"@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"
    )


def get(port, path, host, **headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host, **headers})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.fixture
def gunicorn(request, tmp_path, collected_static):
    port = closed_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "blog.example.com",
        "DATABASE_URL": database_url(),
        "POD_NAME": "blog-test-pod",
        "APP_RELEASE_COLOUR": "maroon",
        "APP_VERSION": "1.0",
        "BLOG_RELEASE_HEADERS": "true",
        "STATIC_ROOT": str(collected_static),  # collectstatic ran, as in the image
        **getattr(request, "param", {}),  # more settings, from indirect parametrisation
    }
    log = (tmp_path / "gunicorn.log").open("w+")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "mysite.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--timeout",
            "30",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if get(port, "/healthz", "127.0.0.1")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, "gunicorn exited"
            assert time.monotonic() < deadline, "gunicorn did not come up in 30 s"
            time.sleep(0.2)
        yield port, log
        log.seek(0)
        print(log.read())  # shown when the test fails
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_served_by_gunicorn(gunicorn):
    port, log = gunicorn
    # Probes: pod IP as Host, plain HTTP.
    status, headers, body = get(port, "/healthz", f"10.42.0.17:{port}")
    assert (status, body) == (200, b"ok\n")
    status, headers, body = get(port, "/readyz", f"10.42.0.17:{port}")
    assert (status, body) == (200, b"ok\n")
    assert headers["X-Served-By"] == "blog-test-pod"

    # The site over plain HTTP is sent to HTTPS.
    status, headers, _ = get(port, "/", "blog.example.com")
    assert status == 301 and headers["Location"] == "https://blog.example.com/"

    # Through the TLS proxy: the page, with the release in the header.
    status, headers, body = get(port, "/", "blog.example.com", **{"X-Forwarded-Proto": "https"})
    assert status == 200
    assert headers["X-Served-By"] == "blog-test-pod"
    assert headers["X-Release-Colour"] == "maroon"
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert b'data-served-by="blog-test-pod" data-colour="maroon" data-version="1.0"' in body

    # Unknown names are refused, and the refusal is logged to stdout.
    status, _, _ = get(port, "/", "evil.example.org", **{"X-Forwarded-Proto": "https"})
    assert status == 400
    time.sleep(0.3)
    log.seek(0)
    assert "Invalid HTTP_HOST header: 'evil.example.org'" in log.read()


def _stylesheet(port):
    status, _, body = get(port, "/", "blog.example.com", **{"X-Forwarded-Proto": "https"})
    assert status == 200
    match = re.search(rb'href="(/static/[^"]+\.[0-9a-f]{12}\.css)"', body)
    assert match, "the page links no hashed stylesheet"
    return match.group(1).decode()


@pytest.mark.parametrize("gunicorn", [{"DJANGO_SERVE_STATIC": "true"}], indirect=True)
def test_whitenoise_serves_hashed_static_files_for_ever(gunicorn):
    port, _ = gunicorn
    path = _stylesheet(port)
    status, headers, body = get(port, path, "blog.example.com", **{"X-Forwarded-Proto": "https"})
    assert status == 200 and body
    assert headers["Cache-Control"] == "max-age=315360000, public, immutable"
    # An unknown (e.g. an older release's) name is a 404, not the page.
    status, _, _ = get(port, "/static/css/blog.000000000000.css", "blog.example.com",
                       **{"X-Forwarded-Proto": "https"})
    assert status == 404


def test_static_files_are_left_to_the_proxy_by_default(gunicorn):
    port, _ = gunicorn
    status, _, _ = get(port, _stylesheet(port), "blog.example.com", **{"X-Forwarded-Proto": "https"})
    assert status == 404
