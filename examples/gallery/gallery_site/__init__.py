"""The gallery's project package; its Celery app loads with Django, so @shared_task binds to it."""

from .celery import app as celery_app

__all__ = ("celery_app",)
