"""roles/rolling_upgrade/files/unknown_migrations.py, against SQLite, as a rollback runs it
(`manage.py shell` reading it on stdin, with the code of the release it goes back to):
the applied migrations that code does not know, and where each app goes back to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "roles" / "rolling_upgrade" / "files" / "unknown_migrations.py"
PREFIX = "djangoops-unknown-migrations: "

MIGRATION = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = {dependencies}
    replaces = {replaces}
    operations = [migrations.AddField('note', {field!r}, models.IntegerField(null=True))]
"""
INITIAL = """from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [migrations.CreateModel('Note', [('id', models.AutoField(primary_key=True))])]
"""


@pytest.fixture
def release(tmp_path):
    """A project with the app `notes`; write(names) lays its migrations out as a release
    ships them; migrate() and unknown() run against the one database."""
    pytest.importorskip("django")
    (tmp_path / "settings_under_test.py").write_text(
        "SECRET_KEY = 'x' * 40\n"
        "INSTALLED_APPS = ['django.contrib.contenttypes', 'notes']\n"
        f"DATABASES = {{'default': {{'ENGINE': 'django.db.backends.sqlite3', 'NAME': {str(tmp_path / 'db.sqlite3')!r}}}}}\n"
        "USE_TZ = True\n")
    app = tmp_path / "notes"
    (app / "migrations").mkdir(parents=True)
    (app / "__init__.py").write_text("")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings_under_test", "PYTHONPATH": str(tmp_path)}

    def write(*names, squashed=None, initial=True):
        for old in (app / "migrations").glob("0*.py"):
            old.unlink()
        (app / "migrations" / "__init__.py").write_text("")
        if initial:
            (app / "migrations" / "0001_initial.py").write_text(INITIAL)
        previous = "0001_initial"
        for name in names:
            (app / "migrations" / f"{name}.py").write_text(MIGRATION.format(
                dependencies=[("notes", previous)], replaces=[], field=name.split("_", 1)[1]))
            previous = name
        if squashed:
            name, replaced = squashed
            (app / "migrations" / f"{name}.py").write_text(MIGRATION.format(
                dependencies=[("notes", "0001_initial")], replaces=[("notes", r) for r in replaced],
                field=replaced[0].split("_", 1)[1]))

    def django(*args, stdin=None):
        return subprocess.run([sys.executable, "-m", "django", *args], input=stdin, env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, check=False)

    def unknown():
        proc = django("shell", stdin=SCRIPT.read_text())
        assert proc.returncode == 0, proc.stderr
        lines = [line for line in proc.stdout.splitlines() if line.startswith(PREFIX)]
        assert len(lines) == 1, proc.stdout
        return json.loads(lines[0][len(PREFIX):])

    def migrate(*args):
        proc = django("migrate", "--no-input", *args)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    return write, migrate, unknown


def test_a_release_that_knows_every_applied_migration_finds_none(release):
    write, migrate, unknown = release
    write("0002_colour")
    migrate()
    assert unknown() == {"unknown": [], "targets": {}}


def test_the_older_code_names_what_the_newer_applied_and_where_its_app_goes_back_to(release):
    write, migrate, unknown = release
    write("0002_colour", "0003_size")
    migrate()
    write("0002_colour")  # the older release: it never had 0003
    assert unknown() == {"unknown": ["notes.0003_size"], "targets": {"notes": "0002_colour"}}
    write("0002_colour", "0003_size")  # the newer code runs it backwards, as the rollback does
    assert "Unapplying notes.0003_size" in migrate("notes", "0002_colour")
    write("0002_colour")
    assert unknown() == {"unknown": [], "targets": {}}


def test_a_squashed_migration_knows_the_ones_it_replaced(release):
    write, migrate, unknown = release
    write("0002_colour", "0003_size")
    migrate()
    write(squashed=("0002_squashed_0003", ["0002_colour", "0003_size"]))
    assert unknown() == {"unknown": [], "targets": {}}


def test_an_app_whose_migrations_the_older_code_lacks_goes_back_to_zero(release):
    write, migrate, unknown = release
    write()
    migrate()
    write(initial=False)  # the older release had the app without its models yet
    assert unknown() == {"unknown": ["notes.0001_initial"], "targets": {"notes": "zero"}}
