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
def record_tick(key):
    """A short task that leaves one row per run: while a worker restarts, some are in flight."""
    time.sleep(0.2)
    Tick.objects.create(key=key[:64], ran_by=socket.gethostname()[:100])
