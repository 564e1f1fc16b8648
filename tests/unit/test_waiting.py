"""tests/integration/waiting.py: the one wait helper retries "not yet", never a wrong answer."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from waiting import NotReady, eventually  # noqa: E402


def test_returns_the_first_truthy_value():
    calls = iter([None, 0, "", {"ready": True}])
    assert eventually(lambda: next(calls), timeout=5, interval=0.01) == {"ready": True}


@pytest.mark.parametrize("error", [ConnectionRefusedError(), subprocess.CalledProcessError(1, "kubectl"),
                                   ValueError("half a JSON body"), KeyError("status")])
def test_not_yet_errors_are_tried_again(error):
    calls = []

    def check():
        calls.append(1)
        if len(calls) < 3:
            raise error
        return True

    assert eventually(check, timeout=5, interval=0.01) is True and len(calls) == 3


def test_an_assertion_fails_at_once():
    calls = []

    def check():
        calls.append(1)
        assert False, "a wrong answer"

    started = time.monotonic()
    with pytest.raises(AssertionError, match="a wrong answer"):
        eventually(check, timeout=30, interval=0.01)
    assert len(calls) == 1 and time.monotonic() - started < 5


def test_the_time_running_out_names_the_check_and_the_last_error():
    def database_answers():
        raise ConnectionRefusedError("refused")

    with pytest.raises(NotReady, match="database_answers not true within 0.2 s; last: ConnectionRefusedError"):
        eventually(database_answers, timeout=0.2, interval=0.05)


def test_a_response_waited_for_is_returned_whatever_its_status():
    # requests.Response is falsy for 4xx/5xx; waiting for a 503 must still end on it.
    resp = requests.Response()
    resp.status_code = 503
    assert not resp
    assert eventually(lambda: resp, timeout=1, interval=0.01) is resp
