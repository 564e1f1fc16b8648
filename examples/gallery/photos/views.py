from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, JsonResponse
from django.views.decorators.http import require_POST
from django.shortcuts import get_object_or_404, redirect, render

from .forms import PhotoForm
from .models import Album, Photo, Tick

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
        if settings.CELERY_BROKER_URL:
            from .tasks import make_thumbnail

            make_thumbnail.delay_on_commit(new.pk)
        return redirect("photo", pk=new.pk)
    return render(request, "photos/upload.html", {"form": form})


@login_required(login_url="/admin/login/")
@require_POST
def tick(request):
    """Queue one record_tick task under the key posted (the curator's check of the queue),
    optionally one that takes `seconds` (at most 60)."""
    key = request.POST.get("key", "")[:64]
    try:
        seconds = float(request.POST.get("seconds", "0.2"))
    except ValueError:
        seconds = -1.0
    if not key or not 0 <= seconds <= 60 or not settings.CELERY_BROKER_URL:
        return JsonResponse({"queued": False}, status=400)
    from .tasks import record_tick

    record_tick.delay_on_commit(key, seconds)
    return JsonResponse({"queued": True, "key": key})


@login_required(login_url="/admin/login/")
def ticks(request):
    """How many times each key's task ran, for the keys with a prefix (?prefix=...); with
    ?times=1, when each run ended instead (seconds since the epoch)."""
    found = Tick.objects.filter(key__startswith=request.GET.get("prefix", ""))
    if request.GET.get("times"):
        ended = {}
        for key, ran_at in found.values_list("key", "ran_at").order_by("ran_at"):
            ended.setdefault(key, []).append(ran_at.timestamp())
        return JsonResponse(ended)
    runs = found.values("key").annotate(runs=Count("id")).order_by()
    return JsonResponse({row["key"]: row["runs"] for row in runs})
