"""Make the albums the site needs (the home page shows the featured one). Run after
migrate, once per release; a second run changes nothing."""

from django.core.management.base import BaseCommand

from photos.models import Album

ALBUMS = {"featured": "Featured photographs"}


class Command(BaseCommand):
    help = "Create the albums the gallery needs, when missing."

    def handle(self, *args, **options):
        for slug, name in ALBUMS.items():
            _, created = Album.objects.get_or_create(slug=slug, defaults={"name": name})
            self.stdout.write(f"album {slug}: {'created' if created else 'present'}")
