# Bring the database in line with the release, once per deploy, before the new code
# serves: apply unapplied migrations, make the superuser named in the environment when
# it is missing, then run the release's management commands (app_manage_commands). The
# last line of output is JSON saying what changed and what ran, so Ansible reports a
# change only when there was one. A failing command prints a line naming it and that
# JSON (with "failed"), then exits non-zero: the deploy stops before any instance switches.
# A plain script run top to bottom (manage.py shell -c on Kubernetes, on stdin on VMs);
# tests/unit/test_ensure_database.py reads its functions by parsing this file.
# The environment is never printed: it carries the app's secrets.
import io
import json
import os
import socket
import sys
import time
import traceback

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor

# The most of a command's output kept in the JSON line (its end, where errors are).
OUTPUT_LIMIT = 4000
# Seconds to wait for the database to accept a connection when DJANGOOPS_DATABASE_WAIT
# is not set: a database (or its Service) made seconds ago may not answer yet.
DATABASE_WAIT = 90
# Seconds to wait for the task queue's broker (DJANGOOPS_BROKER_ADDRESS, "host:port") when
# DJANGOOPS_BROKER_WAIT is not set: a broker made in the same run may still be starting.
BROKER_WAIT = 15


def wait_for_database(connect, wait, errors, clock, sleep, pause=2.0):
    """Call connect() until it returns, for up to `wait` seconds: the number of tries.
    The last error is raised once the time is up, so a wrong password or host still
    fails the deploy, only later."""
    deadline = clock() + wait
    tries = 0
    while True:
        tries += 1
        try:
            connect()
            return tries
        except errors:
            if clock() + pause > deadline:
                raise
            sleep(pause)


def broker_address(text):
    """(host, port) from "host:port" or "[v6 address]:port", or None when text names none."""
    host, _, port = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def superuser_action(user, password, reset):
    """What to do about the superuser: (action, sentence). action is create, keep
    (nothing to do), reset (password and flags brought back) or skip (an existing user
    who is not a superuser, left alone and reported). The password is only checked when
    asked to reset it (a hash costs time)."""
    if user is None:
        return "create", "created superuser {name}"
    flags_ok = bool(user.is_active and user.is_staff and user.is_superuser)
    if reset:
        if flags_ok and user.check_password(password):
            return "keep", ""
        return "reset", "reset superuser {name} (app_superuser_reset_password)"
    if flags_ok:
        return "keep", ""
    return "skip", (
        "user {name} exists but is not an active superuser: left alone "
        "(app_superuser_reset_password true makes it one, with the password given)"
    )


def parse_commands(text):
    """DJANGOOPS_MANAGE_COMMANDS (JSON, the role's argv lists) as a list of lists of str."""
    commands = json.loads(text or "[]")
    if not isinstance(commands, list) or not all(
        isinstance(argv, list) and argv and all(isinstance(word, str) for word in argv) and argv[0]
        for argv in commands
    ):
        raise ValueError("DJANGOOPS_MANAGE_COMMANDS must be a JSON list of non-empty lists of strings")
    return commands


def migration_timeouts(environ):
    """PostgreSQL's lock_timeout and statement_timeout for the migrations, from
    DJANGOOPS_MIGRATE_LOCK_TIMEOUT and DJANGOOPS_MIGRATE_STATEMENT_TIMEOUT (the role's
    app_migrate_*): (name, value) pairs, those not set left out."""
    pairs = [("lock_timeout", environ.get("DJANGOOPS_MIGRATE_LOCK_TIMEOUT", "")),
             ("statement_timeout", environ.get("DJANGOOPS_MIGRATE_STATEMENT_TIMEOUT", ""))]
    return [(name, value) for name, value in pairs if value]


def timeout_hit(error_text):
    """Which timeout stopped a statement, from PostgreSQL's message, or None."""
    if "lock timeout" in error_text:
        return "lock_timeout"
    if "statement timeout" in error_text:
        return "statement_timeout"
    return None


def tail(text, limit=OUTPUT_LIMIT):
    return text if len(text) <= limit else "[...]" + text[-limit:]


def run_command(argv):
    """call_command(*argv) with its output captured: (output, error or None)."""
    out = io.StringIO()
    try:
        call_command(*argv, stdout=out, stderr=out)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any failure stops the deploy, named
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return out.getvalue(), detail
    return out.getvalue(), None


result = {"changed": False, "changes": [], "notes": [], "commands": []}


def connect_once():
    connection = connections[DEFAULT_DB_ALIAS]
    connection.close()
    connection.ensure_connection()


def fail(command, error, output="", step=None):
    """Print a line naming the failed step (the management command by default), the JSON
    line, and stop the deploy."""
    result["changed"] = bool(result["changes"])
    result["failed"] = {"command": command, "error": error, "output": tail(output)}
    print(f"djangoops: {step or f'the management command {command!r}'} failed: {error}")
    print(json.dumps(result))
    sys.stdout.flush()
    raise SystemExit(1)


# Uploads go to a bucket (djangoops_settings): it must answer, with these credentials,
# before anything changes. head_bucket, since a missing object and a missing bucket both
# look like "not there" to the storage's exists().
bucket = os.environ.get("DJANGOOPS_MEDIA_BUCKET", "")
if bucket:
    from django.core.files.storage import default_storage

    try:
        default_storage.connection.meta.client.head_bucket(Bucket=default_storage.bucket_name)
    except Exception as exc:  # noqa: BLE001 - any failure stops the deploy, named
        where = os.environ.get("DJANGOOPS_MEDIA_ENDPOINT_URL") or "AWS S3"
        fail("head_bucket", step="the media bucket check", error=
             f"the bucket {bucket} at {where} does not answer with the credentials given "
             f"(app_media_bucket, app_media_bucket_endpoint_url, app_media_bucket_access_key, "
             f"app_media_bucket_secret_key): {type(exc).__name__}: {exc}")

# The app's processes take their tasks from a broker (Kubernetes: the Job's pod has the app's
# labels, so a NetworkPolicy that admits the app admits it): it must answer before anything
# changes, or the new pods would start and wait. Its address only; the URL holds a password.
broker = broker_address(os.environ.get("DJANGOOPS_BROKER_ADDRESS", ""))
if broker:
    broker_wait = float(os.environ.get("DJANGOOPS_BROKER_WAIT", BROKER_WAIT))
    try:
        wait_for_database(lambda: socket.create_connection(broker, timeout=5).close(), broker_wait,
                          OSError, time.monotonic, time.sleep)
    except OSError as exc:
        fail("connect", step="the broker check", error=
             f"the app does not reach the broker at {broker[0]}:{broker[1]} within {broker_wait:.0f} s "
             f"(app_broker_url, or djangoops.stack.broker's Service with app_broker_password): "
             f"{type(exc).__name__}: {exc}. Check that the broker runs and admits the app's pods "
             f"(broker_k8s_clients)")

started = time.monotonic()
tries = wait_for_database(connect_once, float(os.environ.get("DJANGOOPS_DATABASE_WAIT", DATABASE_WAIT)),
                          DatabaseError, time.monotonic, time.sleep)
if tries > 1:
    result["notes"].append(f"the database answered after {tries} tries ({time.monotonic() - started:.0f} s)")

executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
if plan:
    # Named before they run (the log shows what a failed migration was part of), and in the
    # JSON line the play reports.
    result["migrations"] = [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]
    print("djangoops: migrations to apply: " + ", ".join(result["migrations"]))
    sys.stdout.flush()
    # A migration waits at most lock_timeout for a table another session holds (then it
    # fails, and the running release keeps serving, instead of queueing every query behind
    # its ALTER TABLE), and runs at most statement_timeout: for this session only.
    timeouts = migration_timeouts(os.environ) if connections[DEFAULT_DB_ALIAS].vendor == "postgresql" else []
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        for setting, value in timeouts:
            cursor.execute("SELECT set_config(%s, %s, false)", [setting, value])
    try:
        call_command("migrate", interactive=False, verbosity=1)
    except DatabaseError as exc:
        hit = timeout_hit(str(exc))
        if hit is None:
            raise
        limit = dict(timeouts)[hit]
        fail("migrate", step="the migrations", error=(
            f"a statement waited longer than {hit} ({limit}, app_migrate_{hit}) and was cancelled: "
            + ("another session holds a lock on a table the migration changes (a long transaction or query); "
               if hit == "lock_timeout" else "a migration ran too long; ")
            + f"nothing of that migration was applied. PostgreSQL said: {str(exc).strip()}"))
    # the superuser and the management commands run without them
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        for setting, _value in timeouts:
            cursor.execute(f"RESET {setting}")  # one of migration_timeouts' two names
    result["changes"].append(f"applied {len(plan)} migrations")

name = os.environ.get("DJANGOOPS_SUPERUSER_NAME", "")
if name:
    User = get_user_model()
    email = os.environ.get("DJANGOOPS_SUPERUSER_EMAIL", "")
    password = os.environ["DJANGOOPS_SUPERUSER_PASSWORD"]
    reset = os.environ.get("DJANGOOPS_SUPERUSER_RESET", "false").lower() == "true"
    user = User.objects.filter(**{User.USERNAME_FIELD: name}).first()
    action, sentence = superuser_action(user, password, reset)
    if action == "create":
        User.objects.create_superuser(name, email, password)
    elif action == "reset":
        user.set_password(password)
        user.is_active = user.is_staff = user.is_superuser = True
        user.save()
    if action in ("create", "reset"):
        result["changes"].append(sentence.format(name=name))
    elif action == "skip":
        result["notes"].append(sentence.format(name=name))

for argv in parse_commands(os.environ.get("DJANGOOPS_MANAGE_COMMANDS", "")):
    output, error = run_command(argv)
    command = " ".join(argv)
    if error is not None:
        fail(command, error, output)
    result["commands"].append({"command": command, "output": tail(output)})
    result["changes"].append(f"ran {command}")

result["changed"] = bool(result["changes"])
print(json.dumps(result))
