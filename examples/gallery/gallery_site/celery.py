"""The gallery's Celery app: `celery -A gallery_site worker`. Its broker is GALLERY_BROKER_URL
(settings.CELERY_BROKER_URL); tasks live in each app's tasks.py."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gallery_site.settings")

app = Celery("gallery_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
