"""djangoops.stack.input_problems: the rules for values that reach a template."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

_SPEC = importlib.util.spec_from_file_location(
    "djangoops_inputs", Path(__file__).resolve().parents[4] / "plugins" / "filter" / "inputs.py")
inputs = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(inputs)


def problems(kind, value, **extra):
    return inputs.input_problems([{"var": "v", "kind": kind, "value": value, **extra}])


@pytest.mark.parametrize(("kind", "good"), [
    ("dns_name", "blog.example.com"), ("dns_name", "localhost"),
    ("server_names", "_"), ("server_names", "blog.example.com www.example.com"),
    ("server_names", "*.example.com .example.org 10.0.0.1"),
    ("size", "10m"), ("size", "512k"), ("size", "1G"), ("size", "0"),
    ("url_dir", "/static/"), ("url_dir", "/"), ("url_dir", "/assets/v2/"),
    ("url_path", "/admin/login/"), ("url_path", "/login"),
    ("abs_path", "/opt/blog"), ("abs_path", "/var/www/blog/static/"),
    ("user_name", "blog"), ("user_name", "_blog-1"),
    ("name", "djangoops-blog"), ("name", "blog.v2"),
    ("ip_address", "10.0.0.5"), ("ip_address", "fd00::5"),
    ("allowed_host", "*"), ("allowed_host", ".example.com"), ("allowed_host", "[::1]"),
    ("origin", "https://blog.example.com"), ("origin", "http://127.0.0.1:8080"), ("origin", "https://*.example.com"),
    ("proxy_address", "*"), ("proxy_address", "10.0.0.0/24"), ("proxy_address", "fd00::1"),
    ("network", "10.0.0.5"), ("network", "fd00::/64"),
])
def test_good_values_pass(kind, good):
    assert problems(kind, good) == []


@pytest.mark.parametrize(("kind", "bad"), [
    ("dns_name", "blog example"), ("dns_name", "-blog.com"), ("dns_name", "a" * 64 + ".com"),
    ("server_names", "blog.com;\n  return 301"), ("server_names", "a  b"), ("server_names", ""),
    ("size", "10 m"), ("size", "10mb"), ("size", "10m;"),
    ("url_dir", "/static"), ("url_dir", "static/"), ("url_dir", "/../etc/"), ("url_dir", "/st atic/"),
    ("url_path", "admin/"), ("url_path", '/a"b'), ("url_path", "/a;b"),
    ("abs_path", "/"), ("abs_path", "opt/blog"), ("abs_path", "/opt/../etc"), ("abs_path", "/opt/blog\nExecStartPre=/x"),
    ("user_name", "root user"), ("user_name", "Blog"), ("user_name", "a" * 33),
    ("name", "Blog"), ("name", "blog/x"),
    ("ip_address", "10.0.0.256"), ("ip_address", "0.0.0.0 --workers 99"), ("ip_address", "blog.example.com"),
    ("allowed_host", "blog example"), ("allowed_host", "https://blog.example.com"),
    ("origin", "blog.example.com"), ("origin", "https://blog.example.com/path"),
    ("proxy_address", "10.0.0.0/33"), ("proxy_address", "any"),
    ("network", "*"), ("network", "db.example.com"),
])
def test_bad_values_are_named(kind, bad):
    found = problems(kind, bad)
    assert len(found) == 1 and found[0].startswith("v is "), found


def test_not_a_string_is_a_problem():
    assert problems("size", 10) and problems("dns_name", None)


def test_lists_each_item_and_required():
    assert problems("allowed_hosts", ["blog.example.com", "127.0.0.1"]) == []
    assert "is empty" in problems("allowed_hosts", [], required=True)[0]
    assert problems("allowed_hosts", []) == []
    assert "10.0.0.300" in problems("ip_addresses", ["10.0.0.1", "10.0.0.300"])[0]
    assert problems("dns_names", ["blog.example.com", "www.example.com"]) == []
    assert "'_'" in problems("dns_names", ["blog.example.com", "_"])[0]
    assert "must be a list" in problems("origins", "https://a.example.com")[0]
    found = problems("origins", ["https://ok.example.com", "nope"])
    assert found == ["v has 'nope': each must be an origin such as https://blog.example.com (scheme, host, optional port)"]


def test_line_and_lines_never_show_a_secret():
    assert problems("line", "one line") == []
    found = problems("line", "s3cret\nExecStart=/bin/sh", secret=True)
    assert found and "s3cret" not in found[0] and "ExecStart" not in found[0]
    found = problems("lines", {"GOOD": "x", "BAD": "a\nb", "ALSO": "c\rd"})
    assert found == ["v: the values of ALSO, BAD contain a newline; each value must be one line"]
    assert problems("lines", {"A": 1, "B": True}) == []


def test_unknown_kind_and_bad_input_raise():
    with pytest.raises(AnsibleFilterError):
        problems("colour", "x")
    with pytest.raises(AnsibleFilterError):
        inputs.input_problems("not a list")


@pytest.mark.parametrize(("given", "source"), [
    ("10.0.0.5", "10.0.0.5/32"), ("fd00::5", "fd00::5/128"), ("10.0.0.0/24", "10.0.0.0/24"),
])
def test_host_network(given, source):
    assert inputs.host_network(given) == source


def test_host_network_refuses_a_name():
    with pytest.raises(AnsibleFilterError):
        inputs.host_network("db.example.com")


def test_filter_names():
    assert sorted(inputs.FilterModule().filters()) == ["failed_checks", "host_network", "input_problems"]


def test_failed_checks_gives_the_messages_of_the_false_ones_in_order():
    checks = [{"var": "a", "ok": True, "msg": "a is bad"}, {"var": "b", "ok": False, "msg": "b is bad"},
              {"var": "c", "ok": "False", "msg": "c is bad"}, {"var": "d", "ok": "true", "msg": "d is bad"},
              {"var": "e", "ok": 0, "msg": "e is bad"}]
    assert inputs.failed_checks(checks) == ["b is bad", "c is bad", "e is bad"]
    assert inputs.failed_checks([]) == []


class _Check(dict):
    """A check that counts its reads, as Ansible's lazy templates render on each read."""
    reads: list = []

    def __getitem__(self, key):
        self.reads.append((self.get("var"), key))
        return super().__getitem__(key)


def test_failed_checks_reads_the_message_of_a_failed_check_only():
    checks = [_Check(var="a", ok=True, msg="a is bad"), _Check(var="b", ok=False, msg="b is bad")]
    assert inputs.failed_checks(checks) == ["b is bad"]
    assert ("a", "msg") not in _Check.reads and ("b", "msg") in _Check.reads


@pytest.mark.parametrize(("checks", "needle"), [
    ("not a list", "expected a list"),
    ([{"var": "a", "msg": "m"}], "each check needs ok and msg"),
    ([{"var": "a", "ok": "maybe", "msg": "m"}], "the check of a gave 'maybe'"),
])
def test_failed_checks_refuses_what_is_not_a_check(checks, needle):
    with pytest.raises(AnsibleFilterError, match=needle):
        inputs.failed_checks(checks)
