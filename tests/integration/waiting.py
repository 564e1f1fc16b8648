"""One way for the tests to wait: eventually(check, timeout).

check() is called until it returns a truthy value, which eventually() returns. An error
that means "not yet" (the server does not answer yet, kubectl finds no such object yet,
a field is not filled in yet) is remembered and the check tried again; any other
exception, AssertionError included, fails the test at once: a retry must never turn a
wrong answer into a pass.
"""

from __future__ import annotations

import subprocess
import time

import requests

# Errors that mean "not yet". kubectl's failures (tests/kubernetes/k8s.py) are
# subprocess.SubprocessError; a JSON body not complete yet is a ValueError; a status
# field not filled in yet is a KeyError or an IndexError.
NOT_YET = (OSError, requests.RequestException, subprocess.SubprocessError, ValueError, LookupError)


class NotReady(AssertionError):
    """The check never held within the time given."""


def eventually(check, timeout: float, interval: float = 1.0, what: str = ""):
    """Call check() until it returns a truthy value or timeout seconds pass; return that value."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
        except NOT_YET as exc:
            last = exc
        else:
            # A requests.Response is falsy for 4xx/5xx: a check that waits for a 503
            # returns one, and that answer is the value waited for.
            if value or isinstance(value, requests.Response):
                return value
            last = value
        if time.monotonic() >= deadline:
            raise NotReady(f"{what or getattr(check, '__name__', 'check')} not true within {timeout} s; last: {last!r}"[:2000])
        time.sleep(interval)
