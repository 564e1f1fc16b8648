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
    uploaded = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-uploaded"]

    def __str__(self):
        return self.title
