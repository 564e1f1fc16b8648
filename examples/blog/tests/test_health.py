import socket
import threading
import time

import pytest
from django.db import connections
from django.test import Client

from .conftest import closed_port


def assert_not_cacheable(response):
    cache_control = response["Cache-Control"]
    for directive in ("no-cache", "no-store", "max-age=0"):
        assert directive in cache_control
    assert "Expires" in response


def probe(path, host="10.42.0.17:8000"):
    """A Kubernetes-style probe: plain HTTP, to the pod IP, no X-Forwarded-Proto."""
    return Client().get(path, headers={"Host": host})


def test_healthz_answers_without_database():
    # No database access allowed here: liveness must not depend on the database.
    response = probe("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert response["Content-Type"].startswith("text/plain")
    assert_not_cacheable(response)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
@pytest.mark.django_db
def test_probes_skip_ssl_redirect_and_host_validation(path):
    # ALLOWED_HOSTS does not contain the pod IP, and the request is plain HTTP:
    # any other path would get 400 or 301.
    assert Client().get("/", headers={"Host": "10.42.0.17:8000"}).status_code in (301, 400)
    response = probe(path)
    assert response.status_code == 200
    assert response["X-Served-By"]


@pytest.mark.django_db
def test_readyz_ok_with_database():
    response = probe("/readyz")
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert_not_cacheable(response)


def point_default_database_at(monkeypatch, host, port):
    connection = connections["default"]
    connection.close()
    monkeypatch.setitem(connection.settings_dict, "HOST", host)
    monkeypatch.setitem(connection.settings_dict, "PORT", str(port))


def test_readyz_503_when_database_refuses(monkeypatch, django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        assert probe("/readyz").status_code == 200
        with monkeypatch.context() as patch:
            point_default_database_at(patch, "127.0.0.1", closed_port())
            started = time.monotonic()
            response = probe("/readyz")
            elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.content == b"database unavailable\n"
        assert_not_cacheable(response)
        assert elapsed < 2
        # Liveness is unaffected; readiness comes back with the database.
        assert probe("/healthz").status_code == 200
        assert probe("/readyz").status_code == 200


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never says a word: a hung database."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_readyz_503_fast_when_database_hangs(
    monkeypatch, silent_server, django_db_setup, django_db_blocker, settings
):
    assert settings.DATABASES["default"]["OPTIONS"]["connect_timeout"] == 2
    with django_db_blocker.unblock(), monkeypatch.context() as patch:
        point_default_database_at(patch, "127.0.0.1", silent_server)
        started = time.monotonic()
        response = probe("/readyz")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    # connect_timeout=2 s bounds the wait (a probe's timeout is a few seconds).
    assert 1.5 < elapsed < 5
