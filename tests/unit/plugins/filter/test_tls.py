"""djangoops.stack.tls_pair_problems: a certificate and its key, checked before any change."""

from __future__ import annotations

import datetime
import importlib.util
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[4]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tls = _load("djangoops_tls", _ROOT / "plugins" / "filter" / "tls.py")
pem = _load("djangoops_test_pem", _ROOT / "tests" / "integration" / "pem.py")

NOW = datetime.datetime(2026, 12, 5, tzinfo=datetime.timezone.utc)


def _key():
    return pem.new_key()


def _pem_key(key) -> str:
    return pem.key_pem(key)


def _cert(key, not_before, not_after) -> str:
    return pem.certificate_pem(key, "blog.example.test", not_before, not_after)


@pytest.fixture(scope="module")
def pair():
    key = _key()
    return _cert(key, NOW - datetime.timedelta(days=1), NOW + datetime.timedelta(days=30)), _pem_key(key)


def check(cert, key):
    return tls.tls_pair_problems(cert, key, "c_var", "k_var", now=NOW)


def test_a_current_certificate_with_its_own_key_passes(pair):
    assert check(*pair) == []


def test_a_chain_is_read_from_its_first_certificate(pair):
    cert, key = pair
    other = _cert(_key(), NOW, NOW + datetime.timedelta(days=9))
    assert check(cert + other, key) == []


def test_another_key_is_named_and_not_shown(pair):
    cert, _ = pair
    other = _pem_key(_key())
    problems = check(cert, other)
    assert problems == ["k_var is not the key of c_var: give the certificate with its own key"]
    assert other not in " ".join(problems)


def test_an_expired_certificate_is_named_with_its_date():
    key = _key()
    cert = _cert(key, NOW - datetime.timedelta(days=60), NOW - datetime.timedelta(days=2))
    assert check(cert, _pem_key(key)) == ["c_var expired on 2026-12-03 00:00 UTC: give the current certificate"]


def test_a_certificate_not_yet_valid_is_named():
    key = _key()
    cert = _cert(key, NOW + datetime.timedelta(days=2), NOW + datetime.timedelta(days=60))
    assert check(cert, _pem_key(key)) == ["c_var is not valid before 2026-12-07 00:00 UTC"]


@pytest.mark.parametrize(("cert", "key", "names"), [
    ("", "", ["c_var must be", "k_var must be"]),
    (None, None, ["c_var must be", "k_var must be"]),
    ("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
     "-----BEGIN PRIVATE KEY-----\nsecret-bits\n-----END PRIVATE KEY-----\n",
     ["c_var is not a readable PEM certificate", "k_var is not a readable"]),
])
def test_text_that_is_not_pem_is_named(cert, key, names):
    problems = check(cert, key)
    assert len(problems) == len(names)
    for problem, name in zip(problems, names):
        assert problem.startswith(name)
    assert "secret-bits" not in " ".join(problems)
