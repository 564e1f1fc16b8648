"""The environment contract, each case in a fresh process with only the given env."""

import json
import secrets

import pytest

from .conftest import closed_port, run_blog

STRONG_KEY = secrets.token_urlsafe(50)
NO_DB = f"postgres://blog:x@127.0.0.1:{closed_port()}/blog"
PRODUCTION = {"SECRET_KEY": STRONG_KEY, "ALLOWED_HOSTS": "blog.example.com", "DATABASE_URL": NO_DB}

DUMP = """
import json, django
from django.conf import settings
django.setup()
names = ["DEBUG", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "DATABASES", "STATIC_URL",
         "STATIC_ROOT", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
         "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
         "MIDDLEWARE", "STORAGES", "SILENCED_SYSTEM_CHECKS"]
print(json.dumps({n: getattr(settings, n) for n in names}, default=str))
"""


def settings_for(env):
    result = run_blog("-c", DUMP, env={"DJANGO_SETTINGS_MODULE": "mysite.settings", **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_secret_key_is_required_without_debug():
    result = run_blog("manage.py", "check", env={"DATABASE_URL": NO_DB})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY environment variable is required" in result.stderr


def test_debug_runs_without_secret_key():
    assert settings_for({"DEBUG": "true", "DATABASE_URL": NO_DB})["DEBUG"] is True


def test_production_defaults():
    s = settings_for(PRODUCTION)
    assert s["DEBUG"] is False
    assert s["ALLOWED_HOSTS"] == ["blog.example.com"]
    assert s["SECURE_SSL_REDIRECT"] and s["SESSION_COOKIE_SECURE"] and s["CSRF_COOKIE_SECURE"]
    assert s["SECURE_HSTS_SECONDS"] == 31536000
    assert s["SECURE_HSTS_INCLUDE_SUBDOMAINS"] and not s["SECURE_HSTS_PRELOAD"]
    assert s["STATIC_URL"] == "/static/"
    assert s["STATIC_ROOT"].endswith("/staticfiles")
    assert s["STORAGES"]["staticfiles"]["BACKEND"].endswith("ManifestStaticFilesStorage")
    assert s["MIDDLEWARE"][0] == "blog.middleware.HealthCheckMiddleware"
    assert s["MIDDLEWARE"].index("django.middleware.security.SecurityMiddleware") > 0


def test_hsts_preload_only_when_asked():
    assert settings_for({**PRODUCTION, "DJANGO_HSTS_PRELOAD": "true"})["SECURE_HSTS_PRELOAD"] is True
    assert not settings_for({**PRODUCTION, "DJANGO_HSTS_PRELOAD": "true", "DJANGO_HSTS_SECONDS": "0"})["SECURE_HSTS_PRELOAD"]


def test_plain_http_lab_overrides():
    s = settings_for(
        {
            **PRODUCTION,
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_SECURE_COOKIES": "no",
            "DJANGO_HSTS_SECONDS": "0",
        }
    )
    assert not s["SECURE_SSL_REDIRECT"]
    assert not s["SESSION_COOKIE_SECURE"] and not s["CSRF_COOKIE_SECURE"]
    assert s["SECURE_HSTS_SECONDS"] == 0
    assert not s["SECURE_HSTS_PRELOAD"]


def test_lists_static_and_database_url():
    s = settings_for(
        {
            **PRODUCTION,
            "ALLOWED_HOSTS": " blog.example.com, 10.0.0.5 ,,",
            "CSRF_TRUSTED_ORIGINS": "https://blog.example.com,https://www.example.com",
            "STATIC_URL": "/assets/",
            "STATIC_ROOT": "/srv/static",
            "DATABASE_URL": "postgres://u:p%40ss@db.example.com:6543/blogdb",
        }
    )
    assert s["ALLOWED_HOSTS"] == ["blog.example.com", "10.0.0.5"]
    assert s["CSRF_TRUSTED_ORIGINS"] == ["https://blog.example.com", "https://www.example.com"]
    assert (s["STATIC_URL"], s["STATIC_ROOT"]) == ("/assets/", "/srv/static")
    db = s["DATABASES"]["default"]
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"]) == ("blogdb", "u", "p@ss")
    assert (db["HOST"], int(db["PORT"])) == ("db.example.com", 6543)
    assert db["CONN_MAX_AGE"] == 60 and db["CONN_HEALTH_CHECKS"] is True
    assert db["OPTIONS"]["connect_timeout"] == 2


def test_database_from_separate_variables():
    env = {k: v for k, v in PRODUCTION.items() if k != "DATABASE_URL"}
    env.update(
        DB_NAME="blogdb",
        DB_USER="u",
        DB_PASSWORD="pw",
        DB_HOST="10.0.0.9",
        DB_PORT="5433",
        DB_CONN_MAX_AGE="0",
    )
    db = settings_for(env)["DATABASES"]["default"]
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == (
        "blogdb",
        "u",
        "pw",
        "10.0.0.9",
        "5433",
    )
    assert db["CONN_MAX_AGE"] == 0 and db["CONN_HEALTH_CHECKS"] is True


@pytest.mark.parametrize(("name", "value"), [("DEBUG", "maybe"), ("DJANGO_HSTS_SECONDS", "a year")])
def test_bad_values_are_named(name, value):
    result = run_blog("manage.py", "check", env={**PRODUCTION, name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr


def test_check_deploy_is_clean_with_production_env():
    result = run_blog("manage.py", "check", "--deploy", env=PRODUCTION)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNINGS" not in output
    # The one silenced check is security.W021 (HSTS preload is asked for, never a default).
    assert "System check identified no issues (1 silenced)." in output
    assert settings_for(PRODUCTION)["SILENCED_SYSTEM_CHECKS"] == ["security.W021"]
    preload = run_blog("manage.py", "check", "--deploy", env={**PRODUCTION, "DJANGO_HSTS_PRELOAD": "true"})
    assert "System check identified no issues (0 silenced)." in preload.stdout + preload.stderr


def test_check_deploy_warns_when_tls_is_switched_off():
    # Nothing is silenced: the lab overrides show up as deploy warnings.
    env = {**PRODUCTION, "DJANGO_SECURE_SSL_REDIRECT": "false", "DJANGO_HSTS_SECONDS": "0"}
    result = run_blog("manage.py", "check", "--deploy", env=env)
    output = result.stdout + result.stderr
    assert "security.W008" in output and "security.W004" in output


def test_collectstatic_needs_no_database(tmp_path):
    # Image build time: only SECRET_KEY, and a database that cannot be reached.
    root = tmp_path / "static"
    env = {"SECRET_KEY": STRONG_KEY, "DATABASE_URL": NO_DB, "STATIC_ROOT": str(root)}
    result = run_blog("manage.py", "collectstatic", "--noinput", env=env)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((root / "staticfiles.json").read_text())
    hashed = manifest["paths"]["css/blog.css"]
    assert hashed != "css/blog.css" and hashed.startswith("css/blog.") and hashed.endswith(".css")
    assert (root / hashed).read_text() == (root / "css/blog.css").read_text()
    assert "admin/css/base.css" in manifest["paths"]


def test_logging_goes_to_stdout():
    code = "import django, logging; django.setup(); logging.getLogger('blog').warning('hello-log')"
    result = run_blog("-c", code, env={"DJANGO_SETTINGS_MODULE": "mysite.settings", **PRODUCTION})
    assert result.returncode == 0, result.stderr
    assert "WARNING blog" in result.stdout and "hello-log" in result.stdout
