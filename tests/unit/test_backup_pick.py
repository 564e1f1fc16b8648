"""roles/backup/files/backup_pick.py: which barman-cloud backup a restore starts from."""

from __future__ import annotations

import datetime
import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "backup_pick", Path(__file__).resolve().parents[2] / "roles" / "backup" / "files" / "backup_pick.py")
pick = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(pick)

NOW = datetime.datetime(2026, 12, 5, 12, 0, tzinfo=datetime.timezone.utc)
LISTING = {"backups_list": [
    {"backup_id": "20261205T100000", "status": "DONE", "end_time": "Sat Dec  5 10:00:05 2026"},
    {"backup_id": "20261205T110000", "status": "DONE", "end_time": "Sat Dec  5 11:00:05 2026"},
    {"backup_id": "20261205T113000", "status": "FAILED", "end_time": "Sat Dec  5 11:30:05 2026"},
]}


def choose(target="", backup_id="", zone="UTC", listing=LISTING):
    return pick.pick(listing, target, backup_id, zone, now=NOW)


def test_the_newest_backup_without_a_target():
    assert choose() == {"backup_id": "20261205T110000", "end_time": "2026-12-05T11:00:05Z", "problem": ""}


def test_the_newest_that_ended_before_the_target():
    assert choose("2026-12-05T10:59:00+00:00")["backup_id"] == "20261205T100000"


def test_the_times_are_read_in_postgresqls_time_zone():
    # 11:00:05 in Paris is 10:00:05 UTC: the later backup fits a 10:30 UTC target
    assert choose("2026-12-05T10:30:00+00:00", zone="Europe/Paris")["backup_id"] == "20261205T110000"


def test_a_backup_named_must_end_before_the_target():
    assert "choose an earlier one" in choose("2026-12-05T10:30:00+00:00", "20261205T110000")["problem"]
    assert choose("", "20261205T100000")["backup_id"] == "20261205T100000"


@pytest.mark.parametrize(("target", "backup_id", "listing", "problem"), [
    ("2026-12-06T00:00:00+00:00", "", LISTING, "is in the future"),
    ("2026-12-05T09:00:00+00:00", "", LISTING, "is before the oldest backup, which ended at 2026-12-05T10:00:05Z"),
    ("2026-12-05 10:30", "", LISTING, "has no UTC offset"),
    ("yesterday", "", LISTING, "is not an ISO 8601 time"),
    ("", "20261205T113000", LISTING, "is not a finished backup"),
    ("", "", {"backups_list": []}, "holds no finished backup"),
])
def test_what_cannot_be_restored_is_named(target, backup_id, listing, problem):
    assert problem in choose(target, backup_id, listing=listing)["problem"]


def test_kubernetes_dumps_are_chosen_by_the_time_in_their_name():
    names = ["20261205T100000Z.dump", "20261205T110000Z.dump", "notes.txt", "2026.dump"]
    listing = pick.dump_listing(names)
    assert [b["backup_id"] for b in listing["backups_list"]] == ["20261205T100000Z", "20261205T110000Z"]
    assert pick.pick(listing, "", "", "UTC", now=NOW)["backup_id"] == "20261205T110000Z"
    assert pick.pick(listing, "2026-12-05T10:30:00+00:00", "", "UTC", now=NOW) == {
        "backup_id": "20261205T100000Z", "end_time": "2026-12-05T10:00:00Z", "problem": ""}
    assert "is not a finished backup" in pick.pick(listing, "", "20261205T120000Z", "UTC", now=NOW)["problem"]
    assert "no finished backup" in pick.pick(pick.dump_listing([]), "", "", "UTC", now=NOW)["problem"]
