"""djangoops.stack.image_digest: references, challenges, and the token flow over real HTTP
(a small registry stand-in on 127.0.0.1 that wants a bearer token, as Docker Hub does).
tests/kubernetes asks the real registry of the test stack through every deploy."""

from __future__ import annotations

import http.server
import json
import threading

import pytest
from ansible.errors import AnsibleLookupError

from ansible_collections.djangoops.stack.plugins.lookup import image_digest as lk

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("ref", "parsed"), [
    ("127.0.0.1:5000/djangoops/blog:1.0-orange", ("127.0.0.1:5000", "djangoops/blog", "1.0-orange")),
    ("registry.example.com/team/blog:2", ("registry.example.com", "team/blog", "2")),
    ("localhost/blog:1", ("localhost", "blog", "1")),
    ("team/blog:1.0", (lk.DOCKER_HUB, "team/blog", "1.0")),
    ("python:3.13-slim", (lk.DOCKER_HUB, "library/python", "3.13-slim")),
])
def test_parse_reference(ref, parsed):
    assert lk.parse_reference(ref) == parsed


@pytest.mark.parametrize("ref", ["blog", "127.0.0.1:5000/blog", "blog@sha256:00", "reg.example.com/Team/Blog:1"])
def test_parse_reference_refuses(ref):
    with pytest.raises(AnsibleLookupError):
        lk.parse_reference(ref)


def test_plain_http_only_for_loopback_and_listed():
    assert lk.plain_http("127.0.0.1:5000") and lk.plain_http("localhost:5000") and lk.plain_http("localhost")
    assert not lk.plain_http("registry.example.com")
    assert lk.plain_http("10.0.0.5:5000", ["10.0.0.5:5000"])


def test_parse_challenge():
    scheme, params = lk.parse_challenge('Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"')
    assert scheme == "bearer" and params == {"realm": "https://auth.example/token", "service": "reg",
                                             "scope": "repository:a/b:pull"}


class _Registry(http.server.BaseHTTPRequestHandler):
    token = "t0ken"

    def log_message(self, *args):  # quiet
        pass

    def _manifest(self):
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self.send_response(401)
            realm = f"http://127.0.0.1:{self.server.server_port}/token"
            self.send_header("WWW-Authenticate", f'Bearer realm="{realm}",service="stand-in"')
            self.end_headers()
            return
        if not self.path.endswith("/manifests/1.0-orange"):
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Docker-Content-Digest", DIGEST)
        self.end_headers()

    def do_HEAD(self):  # noqa: N802
        self._manifest()

    def do_GET(self):  # noqa: N802
        if self.path.startswith("/token"):
            ok = "scope=repository%3Ateam%2Fblog%3Apull" in self.path and self.headers.get("Authorization", "").startswith("Basic ")
            body = json.dumps({"token": self.token} if ok else {}).encode()
            self.send_response(200 if ok else 401)
            self.end_headers()
            self.wfile.write(body)
            return
        self._manifest()


@pytest.fixture
def registry():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()


class _Lookup(lk.LookupModule):
    """The plugin with its documented defaults (outside Ansible's plugin loader)."""

    DEFAULTS = {"username": "", "password": "", "insecure_registries": [], "validate_certs": True, "timeout": 15}

    def set_options(self, task_keys=None, var_options=None, direct=None):
        self._given = {**self.DEFAULTS, **(direct or {})}

    def get_option(self, option, hostvars=None):
        return self._given[option]


def _lookup(ref, **options):
    return _Lookup().run([ref], variables={}, **options)


def test_a_bearer_token_is_fetched_with_the_credentials(registry):
    assert _lookup(f"{registry}/team/blog:1.0-orange", username="u", password="p") == [DIGEST]


def test_a_missing_tag_is_named(registry):
    with pytest.raises(AnsibleLookupError, match="is not in its registry"):
        _lookup(f"{registry}/team/blog:9.9-none", username="u", password="p")


def test_no_credentials_no_token(registry):
    with pytest.raises(AnsibleLookupError, match="no token"):
        _lookup(f"{registry}/team/blog:1.0-orange")
