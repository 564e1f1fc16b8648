"""Settings of the gallery, a second sample project for djangoops.stack.

Written the way a team's own project might be, on purpose unlike the sample blog: its own
environment names (GALLERY_*), STATIC_ROOT and MEDIA_ROOT of its own, no health endpoints,
uploads through Django's default storage. The collection deploys it with inventory
variables only (docs/your-project.md); nothing here knows about djangoops.stack.
"""

import os
import socket
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def _flag(name, default):
    return os.environ.get(name, default).strip().lower() in {"1", "true", "yes", "on"}


def _list(name):
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


SECRET_KEY = os.environ["GALLERY_SECRET_KEY"]
DEBUG = _flag("GALLERY_DEBUG", "false")
ALLOWED_HOSTS = _list("GALLERY_ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = _list("GALLERY_CSRF_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "photos",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "gallery_site.urls"
WSGI_APPLICATION = "gallery_site.wsgi.application"

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
            ],
        },
    },
]

# One URL says it all; nothing else is read.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ["GALLERY_DATABASE_URL"], conn_max_age=60, conn_health_checks=True
    ),
}
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/Amsterdam"
USE_I18N = True
USE_TZ = True

# Where collectstatic writes and uploads go: the project's own choice.
STATIC_URL = os.environ.get("GALLERY_STATIC_URL", "/assets/")
STATIC_ROOT = BASE_DIR / "collected-assets"
MEDIA_URL = os.environ.get("GALLERY_MEDIA_URL", "/uploads/")
MEDIA_ROOT = BASE_DIR / "uploads"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
FILE_UPLOAD_PERMISSIONS = 0o644

# Behind a TLS-terminating proxy in production; a plain-HTTP lab turns this off.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = _flag("GALLERY_HTTPS", "true")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT

# Background work: Celery, with its broker from the environment. Without one, uploads get
# no thumbnail (nothing is queued). A task is acknowledged after it ran, so a worker killed
# mid-task leaves it to another; a worker takes one task at a time.
CELERY_BROKER_URL = os.environ.get("GALLERY_BROKER_URL", "")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE

# Celery beat (one per site: `celery -A gallery_site beat`) queues a heartbeat every
# GALLERY_HEARTBEAT_SECONDS (default 5 minutes; 0: none). Each carries the name of the host
# whose beat sent it, so the curator sees a second beat at once (GET /ticks/?prefix=beat-).
_HEARTBEAT = float(os.environ.get("GALLERY_HEARTBEAT_SECONDS", "300"))
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {"task": "photos.tasks.heartbeat", "schedule": _HEARTBEAT,
                  "args": (socket.gethostname()[:40],)},
} if _HEARTBEAT > 0 else {}
