"""roles/app/files/ensure_database.py: its decisions without a database, then the whole
script against SQLite (when Django is installed), as both targets run it.

The file is a plain script (sent as `manage.py shell -c` code on Kubernetes and on stdin
on VMs), so its functions are read by parsing it: only the top-level functions and
constants are run here, never its Django imports or its work.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

SECRET = "not-printed-7f3a9c"
SCRIPT = Path(__file__).resolve().parents[2] / "roles" / "app" / "files" / "ensure_database.py"


def _functions() -> dict:
    tree = ast.parse(SCRIPT.read_text(), str(SCRIPT))
    keep = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.Assign))
            and not (isinstance(node, ast.Assign) and not isinstance(node.value, ast.Constant))]
    namespace: dict = {"json": json}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(SCRIPT), "exec"), namespace)  # noqa: S102
    return namespace


F = _functions()


class FakeUser:
    def __init__(self, password="pw", active=True, staff=True, superuser=True):
        self.password = password
        self.is_active, self.is_staff, self.is_superuser = active, staff, superuser
        self.checked = 0

    def check_password(self, password):
        self.checked += 1
        return password == self.password


def test_a_missing_superuser_is_created():
    assert F["superuser_action"](None, "pw", False)[0] == "create"
    assert F["superuser_action"](None, "pw", True)[0] == "create"


def test_an_existing_superuser_is_left_alone_whatever_its_password():
    user = FakeUser(password="changed in the admin")
    assert F["superuser_action"](user, "pw", False) == ("keep", "")
    assert user.checked == 0  # no hash computed when nothing would be reset


@pytest.mark.parametrize("flags", [dict(active=False), dict(staff=False), dict(superuser=False),
                                   dict(staff=False, superuser=False)])
def test_a_user_who_is_not_a_superuser_is_left_alone_and_reported(flags):
    action, sentence = F["superuser_action"](FakeUser(**flags), "pw", False)
    assert action == "skip"
    assert "{name}" in sentence and "app_superuser_reset_password" in sentence


def test_reset_brings_back_the_password_and_the_flags():
    assert F["superuser_action"](FakeUser(password="changed"), "pw", True)[0] == "reset"
    assert F["superuser_action"](FakeUser(superuser=False), "pw", True)[0] == "reset"
    assert F["superuser_action"](FakeUser(), "pw", True) == ("keep", "")


@pytest.mark.parametrize("text,commands", [
    ("", []),
    ("[]", []),
    ('[["createcachetable"], ["loaddata", "a b.json"]]', [["createcachetable"], ["loaddata", "a b.json"]]),
])
def test_parse_commands(text, commands):
    assert F["parse_commands"](text) == commands


@pytest.mark.parametrize("text", ['"createcachetable"', '[[]]', '[["a", 1]]', '[[""]]', '["a"]', '{}'])
def test_parse_commands_refuses_what_the_role_never_sends(text):
    with pytest.raises(ValueError):
        F["parse_commands"](text)


def test_tail_keeps_the_end():
    assert F["tail"]("abc", 10) == "abc"
    assert F["tail"]("0123456789", 4) == "[...]6789"


# --- the whole script, against SQLite ------------------------------------------------


@pytest.fixture
def project(tmp_path):
    pytest.importorskip("django")
    (tmp_path / "djangoops_test_settings.py").write_text(
        "SECRET_KEY = 'x' * 40\n"
        "INSTALLED_APPS = ['django.contrib.auth', 'django.contrib.contenttypes']\n"
        f"DATABASES = {{'default': {{'ENGINE': 'django.db.backends.sqlite3', 'NAME': {str(tmp_path / 'db.sqlite3')!r}}}}}\n"
        "USE_TZ = True\n"
        "PASSWORD_HASHERS = ['django.contrib.auth.hashers.MD5PasswordHasher']\n"
    )

    def run(commands=(), reset=False, stdin=False, password=SECRET, extra=None):
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "djangoops_test_settings", "PYTHONPATH": str(tmp_path)}
        script_env = {
            "DJANGOOPS_SUPERUSER_NAME": "admin", "DJANGOOPS_SUPERUSER_EMAIL": "admin@example.invalid",
            "DJANGOOPS_SUPERUSER_PASSWORD": password, "DJANGOOPS_SUPERUSER_RESET": "true" if reset else "false",
            "DJANGOOPS_MANAGE_COMMANDS": json.dumps([list(c) for c in commands]),
            **(extra or {}),
        }
        if stdin:  # as tasks/vms_manage.yml sends it: the superuser's details inside the code
            code = ("import json as _json, os as _os\n"
                    f"_os.environ.update(_json.loads({json.dumps(json.dumps(script_env))}))\n" + SCRIPT.read_text())
            source = tmp_path / "stdin.py"
            source.write_text(code)
            with source.open() as handle:
                proc = subprocess.run([sys.executable, "-m", "django", "shell"], stdin=handle, env=env,
                                      capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False)
        else:  # as the migration Job runs it: manage.py shell -c, the details in its environment
            proc = subprocess.run([sys.executable, "-m", "django", "shell", "-c", SCRIPT.read_text()],
                                  env={**env, **script_env}, capture_output=True, text=True, cwd=tmp_path,
                                  timeout=120, check=False)
        last = [line for line in proc.stdout.splitlines() if line.startswith('{"changed"')]
        return proc, (json.loads(last[-1]) if last else None)

    def sql(statement):
        import sqlite3
        with sqlite3.connect(tmp_path / "db.sqlite3") as db:
            return db.execute(statement).fetchall()

    return run, sql


def test_first_run_migrates_and_creates_then_nothing_changes(project):
    run, _ = project
    proc, result = run()
    assert proc.returncode == 0, proc.stderr
    assert result["changed"] and "created superuser admin" in result["changes"]
    proc, result = run(stdin=True)
    assert proc.returncode == 0, proc.stderr
    assert result == {"changed": False, "changes": [], "notes": [], "commands": []}


def test_a_changed_password_survives_unless_reset_is_asked(project):
    run, sql = project
    run()
    hashed = sql("select password from auth_user where username = 'admin'")[0][0]
    proc, result = run(password="another")  # as if the admin had changed it: the options differ
    assert not result["changed"]
    assert sql("select password from auth_user where username = 'admin'")[0][0] == hashed
    proc, result = run(password="another", reset=True)
    assert result["changes"] == ["reset superuser admin (app_superuser_reset_password)"]
    assert sql("select password from auth_user where username = 'admin'")[0][0] != hashed
    assert not run(password="another", reset=True)[1]["changed"]


def test_a_user_who_is_not_a_superuser_is_reported_not_promoted(project):
    run, sql = project
    run()
    sql("update auth_user set is_superuser = 0 where username = 'admin'")
    proc, result = run()
    assert not result["changed"] and "admin exists but is not an active superuser" in result["notes"][0]
    assert sql("select is_superuser from auth_user where username = 'admin'")[0][0] == 0
    proc, result = run(reset=True)
    assert result["changed"] and sql("select is_superuser from auth_user where username = 'admin'")[0][0] == 1


def test_commands_run_in_order_with_their_output(project):
    run, _ = project
    proc, result = run(commands=[["check"], ["createcachetable"]], stdin=True)
    assert proc.returncode == 0, proc.stderr
    assert [c["command"] for c in result["commands"]] == ["check", "createcachetable"]
    assert "System check identified no issues" in result["commands"][0]["output"]
    assert "ran check" in result["changes"] and result["changed"]


@pytest.mark.parametrize("stdin", [False, True])
def test_a_failing_command_stops_with_its_name_and_error(project, stdin):
    run, _ = project
    proc, result = run(commands=[["check"], ["loaddata", "no-such-fixture"], ["createcachetable"]], stdin=stdin)
    assert proc.returncode != 0
    assert "the management command 'loaddata no-such-fixture' failed" in proc.stdout
    assert result["failed"]["command"] == "loaddata no-such-fixture"
    assert "No fixture named 'no-such-fixture'" in result["failed"]["error"]
    assert [c["command"] for c in result["commands"]] == ["check"]  # the one after never ran
    assert SECRET not in proc.stdout + proc.stderr  # the environment is never printed


class FakeClock:
    """A clock that moves only when slept on."""

    def __init__(self):
        self.now = 0.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def _failing(times):
    calls = []

    def connect():
        calls.append(1)
        if len(calls) <= times:
            raise ConnectionError("connection timeout expired")
    return connect, calls


def test_the_database_is_waited_for_until_it_answers():
    clock = FakeClock()
    connect, calls = _failing(3)
    tries = F["wait_for_database"](connect, 30, ConnectionError, clock, clock.sleep)
    assert tries == 4 and len(calls) == 4
    assert clock.slept == [2.0, 2.0, 2.0]


def test_a_database_that_never_answers_fails_once_the_wait_is_over():
    clock = FakeClock()
    connect, calls = _failing(1000)
    with pytest.raises(ConnectionError, match="timeout"):
        F["wait_for_database"](connect, 10, ConnectionError, clock, clock.sleep)
    assert clock.now <= 10 and len(calls) == 6


def test_other_errors_are_not_waited_on():
    clock = FakeClock()

    def connect():
        raise KeyError("not a database error")
    with pytest.raises(KeyError):
        F["wait_for_database"](connect, 30, ConnectionError, clock, clock.sleep)
    assert clock.slept == []


# --- the migrations' timeouts, against a real PostgreSQL (tests/harness/pg-scratch) ------

REPO = Path(__file__).resolve().parents[2]
THING = """from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [migrations.CreateModel("Thing", [("id", models.BigAutoField(primary_key=True)),
                                                   ("name", models.CharField(max_length=20))])]
"""
NOTE = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("lockapp", "0001_initial")]
    operations = [migrations.AddField("Thing", "note", models.TextField(null=True))]
"""


@pytest.fixture
def pg_project(tmp_path):
    """A project with one app (lockapp) in a database of its own on the scratch PostgreSQL."""
    pytest.importorskip("django")
    psycopg = pytest.importorskip("psycopg")
    from urllib.parse import urlsplit

    started = subprocess.run([str(REPO / "tests" / "harness" / "pg-scratch")], capture_output=True, text=True,
                             timeout=120, check=True)
    url = started.stdout.strip().splitlines()[-1].split("=", 1)[1]
    name = f"ensure_{os.getpid()}_{id(tmp_path) % 100000}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}"')
        admin.execute(f'create database "{name}"')
    parts = urlsplit(url)
    database = {"ENGINE": "django.db.backends.postgresql", "NAME": name, "USER": parts.username,
                "PASSWORD": parts.password, "HOST": parts.hostname, "PORT": str(parts.port)}
    (tmp_path / "lockapp" / "migrations").mkdir(parents=True)
    (tmp_path / "lockapp" / "__init__.py").write_text("")
    (tmp_path / "lockapp" / "migrations" / "__init__.py").write_text("")
    (tmp_path / "lockapp" / "migrations" / "0001_initial.py").write_text(THING)
    (tmp_path / "djangoops_pg_settings.py").write_text(
        "SECRET_KEY = 'x' * 40\n"
        "INSTALLED_APPS = ['django.contrib.auth', 'django.contrib.contenttypes', 'lockapp']\n"
        f"DATABASES = {{'default': {database!r}}}\n"
        "USE_TZ = True\n")

    def run(lock_timeout="10s"):
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "djangoops_pg_settings", "PYTHONPATH": str(tmp_path),
               "DJANGOOPS_MIGRATE_LOCK_TIMEOUT": lock_timeout, "DJANGOOPS_MIGRATE_STATEMENT_TIMEOUT": "0"}
        return subprocess.run([sys.executable, "-m", "django", "shell", "-c", SCRIPT.read_text()], env=env,
                              capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False)

    def columns():
        with psycopg.connect(url.rsplit("/", 1)[0] + "/" + name) as conn:
            return [row[0] for row in conn.execute(
                "select column_name from information_schema.columns where table_name = 'lockapp_thing' order by 1")]

    try:
        yield run, columns, tmp_path, url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


def test_a_migration_blocked_by_a_lock_fails_within_lock_timeout_and_applies_nothing(pg_project):
    import psycopg

    run, columns, project_dir, db_url = pg_project
    first = run()
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert json.loads(first.stdout.strip().splitlines()[-1])["migrations"][-1] == "lockapp.0001_initial"
    (project_dir / "lockapp" / "migrations" / "0002_note.py").write_text(NOTE)
    with psycopg.connect(db_url) as holder:  # a long transaction that read the table
        holder.execute("select count(*) from lockapp_thing")
        started = time.monotonic()
        blocked = run(lock_timeout="1s")
        took = time.monotonic() - started
    assert blocked.returncode != 0
    assert "lock_timeout (1s, app_migrate_lock_timeout)" in blocked.stdout, blocked.stdout[-2000:]
    # named before it ran, and in the JSON line of the failure
    assert "djangoops: migrations to apply: lockapp.0002_note\n" in blocked.stdout, blocked.stdout[-2000:]
    assert json.loads(blocked.stdout.strip().splitlines()[-1])["migrations"] == ["lockapp.0002_note"]
    assert took < 30, took  # Django's start-up, then one second of waiting
    assert "note" not in columns()
    again = run()  # the lock is gone: the same release migrates
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "note" in columns()
    unchanged = run()  # nothing left to apply: none named
    assert "migrations" not in json.loads(unchanged.stdout.strip().splitlines()[-1]), unchanged.stdout[-2000:]


@pytest.mark.parametrize(("environ", "pairs"), [
    ({}, []),
    ({"DJANGOOPS_MIGRATE_LOCK_TIMEOUT": "10s", "DJANGOOPS_MIGRATE_STATEMENT_TIMEOUT": "0"},
     [("lock_timeout", "10s"), ("statement_timeout", "0")]),
])
def test_migration_timeouts_come_from_the_environment(environ, pairs):
    assert F["migration_timeouts"](environ) == pairs


def test_the_timeout_that_cancelled_a_statement_is_named():
    assert F["timeout_hit"]("canceling statement due to lock timeout") == "lock_timeout"
    assert F["timeout_hit"]("canceling statement due to statement timeout") == "statement_timeout"
    assert F["timeout_hit"]("relation does not exist") is None


@pytest.mark.parametrize(("text", "address"), [
    ("djangoops-gallery-redis:6379", ("djangoops-gallery-redis", 6379)),
    ("10.0.0.5:6380", ("10.0.0.5", 6380)),
    ("[fd00::5]:5672", ("fd00::5", 5672)),
    ("", None), ("redis", None), (":6379", None), ("host:", None), ("host:0", None), ("host:70000", None),
])
def test_broker_address(text, address):
    assert F["broker_address"](text) == address


def test_a_broker_that_does_not_answer_stops_before_the_migrations(project):
    """The broker check comes before anything changes: no table is made, the address (never a
    URL) is named; one that answers lets the run go on."""
    import socket
    run, sql = project
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: refused
        proc, result = run(extra={"DJANGOOPS_BROKER_ADDRESS": f"127.0.0.1:{port}", "DJANGOOPS_BROKER_WAIT": "1"})
    assert proc.returncode != 0
    assert f"the broker check failed: the app does not reach the broker at 127.0.0.1:{port} within 1 s" in proc.stdout
    assert result["failed"]["command"] == "connect" and not result["changes"]
    assert sql("select name from sqlite_master where name = 'auth_user'") == []
    with socket.create_server(("127.0.0.1", 0)) as listening:
        proc, result = run(extra={"DJANGOOPS_BROKER_ADDRESS": f"127.0.0.1:{listening.getsockname()[1]}"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "created superuser admin" in result["changes"]
