# Copyright: djangoops.stack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Scheduled management commands: cron schedules read once, written for systemd timers
(OnCalendar) on VMs and for CronJobs on Kubernetes. djangoops.stack.app_scheduled_commands."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence

from ansible_collections.djangoops.stack.plugins.filter.app import app_manage_commands

_MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# field: (its name in messages, lowest, highest, names for 0.. or 1..)
_FIELDS = [
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
]
_SYSTEMD_DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
_NAME = re.compile(r"^[a-z0-9](?:[-a-z0-9]{0,38}[a-z0-9])?$")
_TIME_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*$")


class CronError(ValueError):
    """A schedule that is not cron syntax; its text says what is wrong."""


def _value(text: str, field: int) -> int:
    name, low, high, names = _FIELDS[field]
    if names and text.lower() in names:
        return names.index(text.lower()) + (1 if field == 3 else 0)
    if not text.isdigit():
        raise CronError(f"{name} '{text}' is not a number{' or a name' if names else ''}")
    number = int(text)
    if not low <= number <= high:
        raise CronError(f"{name} {number} is outside {low}-{high}")
    return number


def _field(text: str, field: int) -> tuple[set[int], bool]:
    """The values a cron field allows, and whether it is unrestricted (*)."""
    name, low, high = _FIELDS[field][:3]
    values: set[int] = set()
    if not text:
        raise CronError(f"{name} is empty")
    for part in text.split(","):
        if not part:
            raise CronError(f"{name} has an empty item in '{text}'")
        body, _slash, step_text = part.partition("/")
        step = 1
        if step_text or part.endswith("/"):
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{name} step '{step_text}' is not a positive number")
            step = int(step_text)
        if body == "*":
            first, last = low, high
        elif "-" in body:
            start, _dash, end = body.partition("-")
            first, last = _value(start, field), _value(end, field)
            if first > last:
                raise CronError(f"{name} range {body} runs backwards")
        else:
            first = _value(body, field)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    if field == 4 and 7 in values:  # 0 and 7 are both Sunday
        values.discard(7)
        values.add(0)
    unrestricted = text == "*" or values == set(range(low, (6 if field == 4 else high) + 1))
    return values, unrestricted


def parse_cron(schedule) -> list[tuple[set[int], bool]]:
    """Five cron fields (minute hour day-of-month month day-of-week) or a macro such as
    @daily: each field's values and whether it is unrestricted. Raises CronError."""
    if not isinstance(schedule, str):
        raise CronError(f"a schedule is a string, not {type(schedule).__name__}")
    text = _MACROS.get(schedule.strip().lower(), schedule)
    fields = text.split()
    if len(fields) != 5:
        raise CronError("it needs five fields (minute hour day-of-month month day-of-week) or a macro such as @daily")
    return [_field(part, number) for number, part in enumerate(fields)]


def _numbers(values: set[int], width: int) -> str:
    return ",".join(f"{value:0{width}d}" for value in sorted(values))


def cron_on_calendar(schedule, time_zone: str = "") -> list[str]:
    """systemd OnCalendar expressions (one or two) that fire when cron would. Cron runs when
    the day of month or the day of week matches if both are restricted; systemd ANDs them, so
    that case becomes two expressions, which a timer ORs."""
    minute, hour, dom, month, dow = parse_cron(schedule)
    zone = f" {time_zone}" if time_zone else ""
    time = f"{'*' if hour[1] else _numbers(hour[0], 2)}:{'*' if minute[1] else _numbers(minute[0], 2)}:00"
    month_text = "*" if month[1] else _numbers(month[0], 2)

    def spec(days_of_week: str, days_of_month: str) -> str:
        return f"{days_of_week + ' ' if days_of_week else ''}*-{month_text}-{days_of_month} {time}{zone}"

    dom_text = "*" if dom[1] else _numbers(dom[0], 2)
    dow_text = "" if dow[1] else ",".join(_SYSTEMD_DAYS[day] for day in sorted(dow[0]))
    if dom[1] or not dow_text:
        return [spec(dow_text, dom_text)]
    return [spec("", dom_text), spec(dow_text, "*")]


def systemd_exec_words(words) -> str:
    """Words for a unit's ExecStart=, each double-quoted so systemd passes it as one word:
    backslash and double quote escaped, % and $ doubled (no specifier, no variable)."""
    quoted = []
    for word in words:
        text = str(word).replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
        quoted.append(f'"{text}"')
    return " ".join(quoted)


def named_items(items, keys: tuple[str, ...], problems: list[str], reserved: tuple[str, ...] = ()):
    """Each mapping of a list whose items are named (the app's scheduled commands and process
    types): (label, name, item) for those with known keys and a new, valid, unreserved name;
    what is wrong with the others goes to problems, each naming its item."""
    if items is None:
        return
    use = ", ".join(keys)
    if isinstance(items, (str, bytes)) or not is_sequence(items):
        problems.append(f"must be a list of mappings ({use}), not {type(items).__name__}")
        return
    seen: set[str] = set()
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            problems.append(f"item {number} must be a mapping ({use}), not {type(item).__name__}")
            continue
        unknown = sorted(set(item) - set(keys))
        name = item.get("name")
        label = f"item {number}" + (f" ({name})" if isinstance(name, str) and name else "")
        if unknown:
            problems.append(f"{label} has unknown keys {', '.join(unknown)}: use {use}")
        elif not isinstance(name, str) or not _NAME.match(name):
            problems.append(f"{label}: name must be 1 to 40 lowercase letters, digits and '-', starting and ending with "
                            f"a letter or digit, not {name!r}")
        elif name in reserved:
            problems.append(f"{label}: the name {name} is the app's own: use another ({', '.join(reserved)} are taken)")
        elif name in seen:
            problems.append(f"{label}: the name {name} is used twice")
        else:
            seen.add(name)
            yield label, name, item


def command_words(item: dict, label: str, problems: list[str]):
    """The words of a named item's command (a string or a list of words, as in
    app_manage_commands), or None with what is wrong in problems, naming the item."""
    parsed = app_manage_commands([item["command"]])
    if parsed["problems"]:
        problems.append(f"{label}: command " + parsed["problems"][0].split(" ", 2)[2])
        return None
    return parsed["commands"][0]


def app_scheduled_commands(items=None, time_zone: str = "Etc/UTC"):
    """The app role's app_scheduled_commands, read once for both targets.

    Each item is a mapping: name (lowercase letters, digits and '-'), schedule (cron, five
    fields or a macro), command (a string split with shlex or a list of words, as in
    app_manage_commands) and optionally time_zone (else the one given). Never raises, so
    a check can name the variable: returns {commands, problems}; each command gains argv,
    time_zone, on_calendar (a list) and exec_words."""
    problems: list[str] = []
    commands: list[dict] = []
    for label, name, item in named_items(items, ("name", "schedule", "command", "time_zone"), problems):
        zone = item.get("time_zone", time_zone)
        if not isinstance(zone, str) or not _TIME_ZONE.match(zone):
            problems.append(f"{label}: time_zone {zone!r} must be a tz database name such as Etc/UTC or Europe/Paris")
            continue
        schedule = item.get("schedule")
        try:
            on_calendar = cron_on_calendar(schedule, zone)
        except CronError as err:
            problems.append(f"{label}: schedule {schedule!r} is not a cron schedule: {err}")
            continue
        if "command" not in item:
            problems.append(f"{label} has no command: name the management command to run")
            continue
        argv = command_words(item, label, problems)
        if argv is None:
            continue
        commands.append({"name": name, "schedule": " ".join(schedule.split()), "time_zone": zone, "argv": argv,
                         "on_calendar": on_calendar, "exec_words": systemd_exec_words(argv)})
    return {"commands": commands, "problems": problems}


def _cron_on_calendar_filter(schedule, time_zone: str = "") -> list[str]:
    try:
        return cron_on_calendar(schedule, time_zone)
    except CronError as err:
        raise AnsibleFilterError(f"cron_on_calendar: {schedule!r} is not a cron schedule: {err}") from err


class FilterModule:
    """djangoops.stack scheduling filters."""

    def filters(self):
        return {"app_scheduled_commands": app_scheduled_commands, "cron_on_calendar": _cron_on_calendar_filter}
