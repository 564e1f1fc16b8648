"""Which backup a restore starts from (djangoops.stack.backup).

VMs: reads `barman-cloud-backup-list --format json` on stdin; arguments: the recovery
target time (ISO 8601 with its UTC offset, or empty for the end of the archived WAL), a
backup ID (empty: choose) and PostgreSQL's TimeZone setting. Prints one JSON object:
backup_id, end_time (ISO, UTC) and problem (empty when a backup fits). barman's end_time is
PostgreSQL's now() at the backup's end, written without its zone (ctime), in that TimeZone.

Kubernetes: with a fourth argument `dumps`, stdin is a JSON list of the dumps' file names
(`20261205T030000Z.dump`, named by the time pg_dump's snapshot was taken, UTC); the ID is
the name without `.dump`, and the same rules choose.
"""

import datetime
import json
import sys
import zoneinfo


def pick(listing, target_text, backup_id, zone="UTC", now=None):
    tz = zoneinfo.ZoneInfo(zone)

    def _end(backup):
        naive = datetime.datetime.strptime(backup["end_time"], "%a %b %d %H:%M:%S %Y")
        return naive.replace(tzinfo=tz).astimezone(datetime.timezone.utc)

    done = [b for b in listing.get("backups_list", []) if b.get("status") == "DONE" and b.get("end_time")]
    done.sort(key=_end)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    target = None
    if target_text:
        try:
            target = datetime.datetime.fromisoformat(target_text)
        except ValueError:
            return {"problem": f"backup_restore_target_time '{target_text}' is not an ISO 8601 time"}
        if target.tzinfo is None:
            return {"problem": f"backup_restore_target_time '{target_text}' has no UTC offset (add +00:00 or Z)"}
        if target > now:
            return {"problem": f"backup_restore_target_time {target.isoformat()} is in the future (now {now:%Y-%m-%dT%H:%M:%S}Z)"}
    if not done:
        return {"problem": "the bucket holds no finished backup of this server: take one with playbooks/backup.yml"}
    if backup_id:
        chosen = [b for b in done if b["backup_id"] == backup_id]
        if not chosen:
            known = ", ".join(b["backup_id"] for b in done)
            return {"problem": f"backup_restore_backup_id '{backup_id}' is not a finished backup (there are: {known})"}
        chosen = chosen[0]
        if target and _end(chosen) > target:
            return {"problem": f"backup {backup_id} ended at {_end(chosen):%Y-%m-%dT%H:%M:%S}Z, after "
                               f"backup_restore_target_time {target.isoformat()}: choose an earlier one"}
    else:
        fitting = [b for b in done if target is None or _end(b) <= target]
        if not fitting:
            return {"problem": f"backup_restore_target_time {target.isoformat()} is before the oldest backup, which ended "
                               f"at {_end(done[0]):%Y-%m-%dT%H:%M:%S}Z"}
        chosen = fitting[-1]
    return {"backup_id": chosen["backup_id"], "end_time": _end(chosen).strftime("%Y-%m-%dT%H:%M:%SZ"), "problem": ""}


DUMP_NAME = "%Y%m%dT%H%M%SZ"


def dump_listing(names):
    """The dumps' file names as a barman listing (times in UTC); other names are ignored."""
    backups = []
    for name in names:
        stem = name[:-len(".dump")] if name.endswith(".dump") else ""
        try:
            taken = datetime.datetime.strptime(stem, DUMP_NAME)
        except ValueError:
            continue
        backups.append({"backup_id": stem, "status": "DONE", "end_time": taken.strftime("%a %b %d %H:%M:%S %Y")})
    return {"backups_list": backups}


if __name__ == "__main__":
    listing = json.load(sys.stdin)
    if sys.argv[4:] == ["dumps"]:
        listing = dump_listing(listing)
    print(json.dumps(pick(listing, sys.argv[1], sys.argv[2], sys.argv[3] or "UTC")))
