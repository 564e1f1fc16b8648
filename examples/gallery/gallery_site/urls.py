from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.static import serve

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("photos.urls")),
]
# Uploads from the default storage's folder, when no web server or bucket serves them.
if settings.MEDIA_URL.startswith("/"):
    urlpatterns.append(
        path(f"{settings.MEDIA_URL.strip('/')}/<path:path>", serve, {"document_root": settings.MEDIA_ROOT})
    )
