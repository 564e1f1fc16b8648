"""Background work of the gallery: a thumbnail for each upload, made by a Celery worker."""

import io
import socket
import time

from celery import shared_task
from django.core.files.base import ContentFile
from PIL import Image

from .models import Photo, Tick

THUMBNAIL_SIZE = (240, 240)


@shared_task
def make_thumbnail(photo_id):
    photo = Photo.objects.get(pk=photo_id)
    with photo.image.open("rb") as source:
        image = Image.open(source)
        image.load()
    image = image.convert("RGB")
    image.thumbnail(THUMBNAIL_SIZE)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    photo.thumbnail.save(f"thumb-{photo.pk}.jpg", ContentFile(out.getvalue()), save=False)
    # Which worker made it: the page shows it, so a test can tell a worker ran the task.
    photo.thumbnailed_by = socket.gethostname()[:100]
    photo.save(update_fields=["thumbnail", "thumbnailed_by"])
    return photo.thumbnail.name


@shared_task
def record_tick(key, seconds=0.2):
    """A task that leaves one row per run: while a worker restarts, some are in flight. A
    longer one (seconds, at most a minute) leaves a row "<key>/started" first, so a check
    can tell it began, and how often: killed mid-task, it begins again on a worker."""
    seconds = min(max(float(seconds), 0.0), 60.0)
    if seconds > 1:
        Tick.objects.create(key=f"{key[:56]}/started", ran_by=socket.gethostname()[:100])
    time.sleep(seconds)
    Tick.objects.create(key=key[:64], ran_by=socket.gethostname()[:100])


@shared_task
def heartbeat(sent_by):
    """Queued by Celery beat (settings.CELERY_BEAT_SCHEDULE) from the host sent_by: one row
    per beat, whose key names that host, so two beats of one site show."""
    Tick.objects.create(key=f"beat-{sent_by}-{time.time():.3f}"[:64], ran_by=socket.gethostname()[:100])
