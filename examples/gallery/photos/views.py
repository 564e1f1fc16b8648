from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render

from .forms import PhotoForm
from .models import Album, Photo

FEATURED = "featured"


def _featured():
    # seed_albums makes it after migrate; a deploy that skipped the command shows no page.
    try:
        return Album.objects.get(slug=FEATURED)
    except Album.DoesNotExist:
        raise Http404("No featured album: run `manage.py seed_albums` after migrating.") from None


def home(request):
    album = _featured()
    return render(request, "photos/home.html", {"album": album, "photos": album.photos.all()[:50]})


def photo(request, pk):
    return render(request, "photos/photo.html", {"photo": get_object_or_404(Photo, pk=pk)})


@login_required(login_url="/admin/login/")
def upload(request):
    form = PhotoForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        new = form.save(commit=False)
        new.album = _featured()
        new.save()
        return redirect("photo", pk=new.pk)
    return render(request, "photos/upload.html", {"form": form})
