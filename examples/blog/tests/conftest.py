import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.test.utils import override_settings

from blog.models import Post

BASE_DIR = Path(__file__).resolve().parent.parent

# Every test request arrives "through NGINX over TLS", as in production: the settings
# keep their secure defaults (SSL redirect, secure cookies), and Django learns the
# scheme from X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER). A browser (and NGINX) send
# Host; without it the test client's SERVER_PORT 80 would leak into request.get_host().
HTTPS = {"X-Forwarded-Proto": "https", "Host": "testserver"}


@pytest.fixture(autouse=True)
def release_headers(monkeypatch):
    """The tests read the release headers, as the lab does: BLOG_RELEASE_HEADERS on
    (tests/test_release_header.py checks that they are off without it)."""
    monkeypatch.setenv("BLOG_RELEASE_HEADERS", "true")


@pytest.fixture(scope="session", autouse=True)
def collected_static(tmp_path_factory):
    """Run collectstatic once, so pages render through the real
    ManifestStaticFilesStorage (hashed names from staticfiles.json)."""
    root = tmp_path_factory.mktemp("staticfiles")
    with override_settings(STATIC_ROOT=str(root)):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield root


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing():
    """PBKDF2's many rounds are the point in production and only slow tests down."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture
def client():
    return Client(headers=HTTPS)


@pytest.fixture
def csrf_client():
    """A client that, like a browser, must send the CSRF token. Over HTTPS Django
    also checks the Origin (or Referer) header, which a browser sends."""
    return Client(enforce_csrf_checks=True, headers={**HTTPS, "Origin": "https://testserver"})


@pytest.fixture
def password():
    return "correct-horse-battery-staple"


@pytest.fixture
def author(django_user_model, password):
    return django_user_model.objects.create_user("ada", "ada@example.com", password)


@pytest.fixture
def other_user(django_user_model, password):
    return django_user_model.objects.create_user("grace", "grace@example.com", password)


@pytest.fixture
def superuser(django_user_model, password):
    return django_user_model.objects.create_superuser("root", "root@example.com", password)


@pytest.fixture
def published_post(author):
    post = Post.objects.create(author=author, title="Hello world", text="First post.")
    post.publish()
    return post


def csrf_token_from(response):
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', response.content)
    assert match, "no CSRF token in the form"
    return match.group(1).decode()


def run_blog(*args, env=None, timeout=120):
    """Run a Python command in a fresh process with ONLY the given environment
    (plus PATH), from the project directory, and return the CompletedProcess."""
    clean_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    clean_env.update(env or {})
    return subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def closed_port():
    """A TCP port on 127.0.0.1 on which nothing listens."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
