"""Settings for the blog, read entirely from environment variables (12-factor).

The contract (docs/design.md, "The app's runtime contract"):

    SECRET_KEY              required unless DEBUG is on
    DEBUG                   off unless set to a true value
    DATABASE_URL            postgres://user:pass@host:5432/db, or else
    DB_NAME, DB_USER, DB_PASSWORD, DB_HOST, DB_PORT
    DB_CONN_MAX_AGE         persistent connections in seconds (default 60)
    DB_CONNECT_TIMEOUT      seconds to wait for a connection (default 2, so that
                            /readyz answers 503 quickly when the database is gone)
    ALLOWED_HOSTS           comma separated
    CSRF_TRUSTED_ORIGINS    comma separated, e.g. https://blog.example.com
    STATIC_URL, STATIC_ROOT default /static/ and <BASE_DIR>/staticfiles
    APP_RELEASE_COLOUR, APP_VERSION, POD_NAME
                            shown in the page header (see blog/release.py)
    DJANGO_SECURE_SSL_REDIRECT (bool), DJANGO_SECURE_COOKIES (bool),
    DJANGO_HSTS_SECONDS (int)
    DJANGO_SERVE_STATIC     (bool, default off) WhiteNoise serves STATIC_ROOT from the
                            app itself (Kubernetes); on VMs NGINX serves /static/
                            TLS settings: secure unless DEBUG is on; plain-HTTP labs
                            turn them off explicitly
    LOG_LEVEL               default INFO; logs go to stdout

Nothing here touches the database, so ``collectstatic`` and ``check --deploy`` run
with only SECRET_KEY set (at image build time, for example).
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name, default):
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={raw!r} is not a boolean: use one of true/false, yes/no, on/off, 1/0."
    )


def env_int(name, default):
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None


def env_list(name):
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


# --- Core -----------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "The SECRET_KEY environment variable is required when DEBUG is off. "
            "Set SECRET_KEY to a long random string (for example the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`), "
            "or set DEBUG=true for local development."
        )
    # Development only: DEBUG is on and no key was given.
    SECRET_KEY = "django-insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "blog.apps.BlogConfig",
]

MIDDLEWARE = [
    # First: probes are answered before the SSL redirect and before anything calls
    # request.get_host(), so Kubernetes can probe by pod IP with any Host header.
    "blog.middleware.HealthCheckMiddleware",
    # Which pod/host and release served this response (X-Served-By, X-Release-Colour),
    # only with BLOG_RELEASE_HEADERS=true (the lab and the tests set it).
    "blog.middleware.ReleaseHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    *(["whitenoise.middleware.WhiteNoiseMiddleware"] if env_bool("DJANGO_SERVE_STATIC", False) else []),
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "blog.context_processors.release",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------

DB_CONN_MAX_AGE = env_int("DB_CONN_MAX_AGE", 60)
DB_CONNECT_TIMEOUT = env_int("DB_CONNECT_TIMEOUT", 2)

if os.environ.get("DATABASE_URL"):
    _default_db = dj_database_url.parse(
        os.environ["DATABASE_URL"],
        conn_max_age=DB_CONN_MAX_AGE,
        conn_health_checks=True,
    )
else:
    _default_db = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("DB_NAME", "blog"),
        "USER": os.environ.get("DB_USER", "blog"),
        "PASSWORD": os.environ.get("DB_PASSWORD", ""),
        "HOST": os.environ.get("DB_HOST", ""),
        "PORT": os.environ.get("DB_PORT", ""),
        "CONN_MAX_AGE": DB_CONN_MAX_AGE,
        "CONN_HEALTH_CHECKS": True,
    }
# A connect_timeout given in DATABASE_URL (?connect_timeout=5) wins.
_default_db.setdefault("OPTIONS", {}).setdefault("connect_timeout", DB_CONNECT_TIMEOUT)
DATABASES = {"default": _default_db}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "post_list"
LOGOUT_REDIRECT_URL = "post_list"

# --- Internationalisation ---------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------------

STATIC_URL = os.environ.get("STATIC_URL", "/static/")
STATIC_ROOT = os.environ.get("STATIC_ROOT") or str(BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed file names + staticfiles.json, so NGINX can cache them for ever.
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}
# With DJANGO_SERVE_STATIC, WhiteNoise serves the hashed names with a year-long,
# immutable Cache-Control and the few unhashed ones for an hour.
WHITENOISE_MAX_AGE = 3600

# --- Security ---------------------------------------------------------------------
# Secure unless DEBUG is on; `manage.py check --deploy` reports no issue with these
# defaults. Plain-HTTP labs switch them off with the DJANGO_* variables.

# NGINX (or the ingress) terminates TLS and says so in X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
# Preloading is a promise browsers keep for months: only when asked for.
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0 and env_bool("DJANGO_HSTS_PRELOAD", False)
# check --deploy suggests preloading (security.W021); without it asked for, that is a choice.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- Logging: everything to stdout (the process manager collects it) -----------------

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
    },
}
