# Copyright: djangoops.stack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rules for values that reach a template (NGINX sites, systemd units, the app's
environment file), in one place: djangoops.stack.input_problems."""

from __future__ import annotations

import ipaddress
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.parsing.convert_bool import boolean

_LABEL = r"[A-Za-z0-9](?:[-A-Za-z0-9]{0,61}[A-Za-z0-9])?"
_DNS = re.compile(rf"^(?=.{{1,253}}\.?$){_LABEL}(?:\.{_LABEL})*\.?$")
_SIZE = re.compile(r"^[0-9]{1,10}[kKmMgG]?$")
_URL_DIR = re.compile(r"^/(?:[A-Za-z0-9._~-]+/)*$")
_URL_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_ABS_PATH = re.compile(r"^(?:/[A-Za-z0-9._+@-]+)+/?$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_NAME = re.compile(r"^[a-z0-9](?:[-a-z0-9_.]{0,61}[a-z0-9])?$")
_ORIGIN = re.compile(rf"^https?://(?:\*\.)?(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?$")


def _ip(text: str, network: bool = False) -> bool:
    try:
        if network:
            ipaddress.ip_network(text, strict=False)
        else:
            ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _dotted_segments(path: str) -> bool:
    return any(seg in (".", "..") for seg in path.split("/"))


def _allowed_host(host: str) -> bool:
    """An entry of Django's ALLOWED_HOSTS: *, .example.com, a DNS name, an IP, [IPv6]."""
    if host == "*":
        return True
    if host.startswith("["):
        return host.endswith("]") and _ip(host[1:-1])
    name = host[1:] if host.startswith(".") else host
    return bool(_DNS.match(name)) or _ip(host)


def _server_names(value: str) -> bool:
    """NGINX server_name: names separated by spaces; _, *.example.com, .example.com, IPs."""
    names = value.split(" ")
    if not value or any(not n for n in names):
        return False
    for n in names:
        if n == "_" or _ip(n):
            continue
        bare = n[2:] if n.startswith("*.") else (n[1:] if n.startswith(".") else n)
        if not _DNS.match(bare):
            return False
    return True


# kind: (rule, what is allowed). A rule takes one string.
_RULES = {
    "dns_name": (lambda v: bool(_DNS.match(v)), "a DNS name such as blog.example.com"),
    "server_names": (_server_names,
                     "NGINX server names separated by single spaces (_, blog.example.com, *.example.com, an IP address)"),
    "size": (lambda v: bool(_SIZE.match(v)), "a size such as 10m, 512k or 1g (digits, then k, m or g)"),
    "url_path": (lambda v: bool(_URL_PATH.match(v)) and not _dotted_segments(v),
                 "a URL path that starts with / (such as /admin/login/), of letters, digits and . _ ~ - /"),
    "url_dir": (lambda v: bool(_URL_DIR.match(v)) and not _dotted_segments(v),
                "a URL path that starts and ends with / (such as /static/), of letters, digits and . _ ~ -"),
    "abs_path": (lambda v: bool(_ABS_PATH.match(v)) and not _dotted_segments(v),
                 "an absolute path below / (such as /opt/blog) of letters, digits and . _ + @ -, without . or .. parts"),
    "user_name": (lambda v: bool(_USER.match(v)),
                  "a Unix user name: lowercase letters, digits, _ and -, starting with a letter or _, at most 32"),
    "name": (lambda v: bool(_NAME.match(v)),
             "lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or digit"),
    "ip_address": (_ip, "an IPv4 or IPv6 address such as 10.0.0.5"),
    "allowed_host": (_allowed_host, "a host Django accepts: *, .example.com, blog.example.com, an IP address or [IPv6]"),
    "origin": (lambda v: bool(_ORIGIN.match(v)), "an origin such as https://blog.example.com (scheme, host, optional port)"),
    "proxy_address": (lambda v: v == "*" or _ip(v, network=True), "* or an IP address or network such as 10.0.0.0/24"),
    "network": (lambda v: _ip(v, network=True), "an IP address or network such as 10.0.0.5, 10.0.0.0/24 or fd00::/64"),
}
_LIST_KINDS = {"dns_names": "dns_name", "allowed_hosts": "allowed_host", "origins": "origin", "proxy_addresses": "proxy_address",
               "ip_addresses": "ip_address", "networks": "network", "url_dirs": "url_dir",
               "url_paths": "url_path"}


def _has_newline(value) -> bool:
    return "\n" in value or "\r" in value


def input_problems(checks):
    """checks: a list of {var, kind, value[, secret][, required]}. Returns one message per
    bad value, each naming the variable and what is allowed; a secret's value is never shown.

    Kinds: the keys of _RULES (one string), dns_names/allowed_hosts/origins/proxy_addresses/ip_addresses/networks/url_dirs/url_paths (a list of
    such strings; required: not empty), line (a string without a newline), lines (a mapping
    whose values are strings without a newline; its keys are named, never its values).
    """
    if not is_sequence(checks):
        raise AnsibleFilterError("input_problems: expects a list of {var, kind, value}")
    problems = []
    for check in checks:
        var, kind, value = check["var"], check["kind"], check.get("value")
        secret = bool(check.get("secret", False))
        shown = "(hidden)" if secret else repr(value)
        if kind == "line":
            if not isinstance(value, str) or _has_newline(value):
                problems.append(f"{var} must be one line of text (no newline){'' if secret else ', not ' + shown}")
            continue
        if kind == "lines":
            if isinstance(value, dict):
                bad = sorted(str(k) for k, v in value.items() if _has_newline(str(v)))
                if bad:
                    problems.append(f"{var}: the values of {', '.join(bad)} contain a newline; each value must be one line")
            continue
        if kind in _LIST_KINDS:
            rule, allowed = _RULES[_LIST_KINDS[kind]]
            if isinstance(value, str) or not is_sequence(value):
                problems.append(f"{var} must be a list, not {shown}")
                continue
            if check.get("required") and not value:
                problems.append(f"{var} is empty: list at least one ({allowed})")
                continue
            bad = [item for item in value if not isinstance(item, str) or not rule(item)]
            if bad:
                problems.append(f"{var} has {', '.join(repr(b) for b in bad)}: each must be {allowed}")
            continue
        if kind not in _RULES:
            raise AnsibleFilterError(f"input_problems: unknown kind '{kind}' for {var}")
        rule, allowed = _RULES[kind]
        if not isinstance(value, str) or not rule(value):
            problems.append(f"{var} is {shown}: use {allowed}")
    return problems


def host_network(address):
    """An address as pg_hba.conf's source: a network as given, one IPv4 host as /32, one
    IPv6 host as /128."""
    text = str(address)
    if "/" in text:
        return text
    try:
        ip = ipaddress.ip_address(text)
    except ValueError as err:
        raise AnsibleFilterError(f"host_network: '{text}' is not an IP address or network") from err
    return f"{ip}/{ip.max_prefixlen}"


def failed_checks(checks):
    """The messages of a role's checks ({var, ok, msg}) whose ok is false, in order: what its
    validate task asserts is empty, in one task instead of a loop of one per check. A check's
    msg is read only when it failed: the checks come as lazy templates, and rendering every
    message of every passing check cost a no-op deploy's controller several seconds."""
    if not is_sequence(checks):
        raise AnsibleFilterError(f"failed_checks: expected a list of {{var, ok, msg}}, got {type(checks).__name__}")
    failed = []
    for check in checks:
        try:
            if "msg" not in check:
                raise KeyError("msg")
            ok, var = check["ok"], check.get("var", "?")
        except (KeyError, TypeError) as err:
            raise AnsibleFilterError(f"failed_checks: each check needs ok and msg, got {check!r}") from err
        try:
            passed = boolean(ok, strict=True)
        except TypeError as err:
            raise AnsibleFilterError(f"failed_checks: the check of {var} gave {ok!r}, not a boolean") from err
        if not passed:
            failed.append(str(check["msg"]))
    return failed


class FilterModule:
    """djangoops.stack input filters."""

    def filters(self):
        return {"input_problems": input_problems, "host_network": host_network, "failed_checks": failed_checks}
