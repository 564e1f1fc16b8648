from django.db import models


class Album(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(unique=True)

    def __str__(self):
        return self.name


class Photo(models.Model):
    album = models.ForeignKey(Album, on_delete=models.PROTECT, related_name="photos")
    title = models.CharField(max_length=200)
    image = models.ImageField(upload_to="photos/%Y/%m/")
    # Made in the background by a Celery worker (photos.tasks.make_thumbnail).
    thumbnail = models.ImageField(upload_to="thumbnails/%Y/%m/", blank=True)
    thumbnailed_by = models.CharField(max_length=100, blank=True)
    uploaded = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-uploaded"]

    def __str__(self):
        return self.title


class Tick(models.Model):
    """One run of photos.tasks.record_tick: the curator's queue check counts them by key, so a
    task run twice, or never, shows (GET /ticks/)."""
    key = models.CharField(max_length=64, db_index=True)
    ran_by = models.CharField(max_length=100)
    ran_at = models.DateTimeField(auto_now_add=True)
