"""Test-run defaults, applied before Django loads its settings.

pytest-django imports the settings module before it loads any conftest, and
mysite/settings.py (rightly) refuses to start without SECRET_KEY. So the settings
module is named here, after a throwaway key is put into the environment, and Django
is set up right away (tests/conftest.py imports models); pytest-django then finds it
ready.
"""

import os

import django
import pytest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
os.environ.setdefault(
    "SECRET_KEY", "pytest-only-secret-key-5f1c0c2b8e7d4a6b9e3f1a2c4d6e8f0a1b3c5d7e9f"
)

django.setup()


def pytest_configure(config):
    if not (os.environ.get("DATABASE_URL") or os.environ.get("DB_NAME")):
        pytest.exit(
            "These tests need a real PostgreSQL: set DATABASE_URL=postgres://user:pass@host:port/db "
            "(the user needs CREATEDB). From the repository root, tests/harness/pg-scratch "
            "starts a throwaway server and prints the URL.",
            returncode=4,
        )
