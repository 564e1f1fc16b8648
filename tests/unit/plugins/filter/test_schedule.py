"""Unit tests for plugins/filter/schedule.py: cron schedules for systemd timers and CronJobs."""

from __future__ import annotations

import pytest

from ansible_collections.djangoops.stack.plugins.filter import schedule


@pytest.mark.parametrize(("cron", "expected"), [
    ("* * * * *", ["*-*-* *:*:00"]),
    ("*/15 * * * *", ["*-*-* *:00,15,30,45:00"]),
    ("0 3 * * *", ["*-*-* 03:00:00"]),
    ("@daily", ["*-*-* 00:00:00"]),
    ("@hourly", ["*-*-* *:00:00"]),
    ("30 4 1,15 * *", ["*-*-01,15 04:30:00"]),
    ("0 9 * * mon-fri", ["Mon,Tue,Wed,Thu,Fri *-*-* 09:00:00"]),
    ("0 0 * * 7", ["Sun *-*-* 00:00:00"]),
    ("0 0 * * 0-7", ["*-*-* 00:00:00"]),
    ("0 12 * jan,jul *", ["*-01,07-* 12:00:00"]),
    ("5/20 * * * *", ["*-*-* *:05,25,45:00"]),
    ("0 0-6/3 * * *", ["*-*-* 00,03,06:00:00"]),
    # both days restricted: cron runs on either, so two expressions (a timer ORs them)
    ("0 0 13 * fri", ["*-*-13 00:00:00", "Fri *-*-* 00:00:00"]),
])
def test_cron_becomes_on_calendar(cron, expected):
    assert schedule.cron_on_calendar(cron) == expected


def test_the_time_zone_is_written_after_each_expression():
    assert schedule.cron_on_calendar("0 0 13 * fri", "Europe/Paris") == [
        "*-*-13 00:00:00 Europe/Paris", "Fri *-*-* 00:00:00 Europe/Paris"]


@pytest.mark.parametrize(("cron", "words"), [
    ("every day", "five fields"),
    ("* * * *", "five fields"),
    ("60 * * * *", "minute 60 is outside 0-59"),
    ("* 24 * * *", "hour 24 is outside 0-23"),
    ("* * 0 * *", "day of month 0 is outside 1-31"),
    ("* * * 13 *", "month 13 is outside 1-12"),
    ("* * * * 8", "day of week 8 is outside 0-7"),
    ("*/0 * * * *", "step '0'"),
    ("5-1 * * * *", "runs backwards"),
    ("* * * foo *", "month 'foo' is not a number or a name"),
    ("a * * * *", "minute 'a' is not a number"),
    ("1,,2 * * * *", "minute has an empty item"),
])
def test_what_is_not_cron_is_named(cron, words):
    with pytest.raises(schedule.CronError, match=words):
        schedule.cron_on_calendar(cron)


def test_words_are_quoted_for_exec_start():
    assert schedule.systemd_exec_words(["clearsessions"]) == '"clearsessions"'
    assert schedule.systemd_exec_words(["report", "--title", 'a "b" 100% $HOME \\']) == (
        '"report" "--title" "a \\"b\\" 100%% $$HOME \\\\"')


def test_scheduled_commands_are_read_once_for_both_targets():
    got = schedule.app_scheduled_commands([
        {"name": "clearsessions", "schedule": "0  3 * * *", "command": "clearsessions"},
        {"name": "report", "schedule": "@weekly", "command": ["send_report", "--to", "ops team"],
         "time_zone": "Europe/Paris"},
    ])
    assert got["problems"] == []
    first, second = got["commands"]
    assert first == {"name": "clearsessions", "schedule": "0 3 * * *", "time_zone": "Etc/UTC", "argv": ["clearsessions"],
                     "on_calendar": ["*-*-* 03:00:00 Etc/UTC"], "exec_words": '"clearsessions"'}
    assert second["argv"] == ["send_report", "--to", "ops team"]
    assert second["on_calendar"] == ["Sun *-*-* 00:00:00 Europe/Paris"]
    assert second["schedule"] == "@weekly"


@pytest.mark.parametrize(("items", "words"), [
    ("clearsessions", "must be a list of mappings"),
    (["clearsessions"], "item 1 must be a mapping"),
    ([{"name": "Clear", "schedule": "@daily", "command": "clearsessions"}], "name must be 1 to 40 lowercase"),
    ([{"name": "a", "schedule": "@daily", "command": "x"}, {"name": "a", "schedule": "@daily", "command": "y"}],
     "the name a is used twice"),
    ([{"name": "a", "schedule": "daily", "command": "x"}], "item 1 (a): schedule 'daily' is not a cron schedule"),
    ([{"name": "a", "schedule": "@daily"}], "item 1 (a) has no command"),
    ([{"name": "a", "schedule": "@daily", "command": ""}], "item 1 (a): command is empty"),
    ([{"name": "a", "schedule": "@daily", "command": "--x"}], "item 1 (a): command starts with the option"),
    ([{"name": "a", "schedule": "@daily", "command": "x", "time_zone": "Paris time"}], "time_zone 'Paris time'"),
    ([{"name": "a", "schedule": "@daily", "command": "x", "every": 2}], "unknown keys every"),
])
def test_bad_items_are_named_and_never_raise(items, words):
    got = schedule.app_scheduled_commands(items)
    assert any(words in problem for problem in got["problems"]), got["problems"]


def test_the_filter_names_what_is_wrong():
    from ansible.errors import AnsibleFilterError
    with pytest.raises(AnsibleFilterError, match="'every day' is not a cron schedule"):
        schedule.FilterModule().filters()["cron_on_calendar"]("every day")


def test_the_filters():
    assert sorted(schedule.FilterModule().filters()) == ["app_scheduled_commands", "cron_on_calendar"]
