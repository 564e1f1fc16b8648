import logging

from django.db import connections
from django.http import HttpResponse
from django.utils.cache import add_never_cache_headers

from .release import headers_enabled, release_info

logger = logging.getLogger(__name__)

HEALTH_PATHS = {"/healthz", "/readyz"}


def set_release_headers(response):
    if not headers_enabled():
        return response
    info = release_info()
    response["X-Served-By"] = info["served_by"]
    response["X-Release-Colour"] = info["release_colour"]
    response["X-App-Version"] = info["app_version"]
    return response


class HealthCheckMiddleware:
    """Answers the probes before any other middleware runs.

    It must stay first in MIDDLEWARE: SecurityMiddleware would redirect plain-HTTP
    probes to https, and CommonMiddleware calls request.get_host(), which rejects a
    Host header (such as a pod IP) missing from ALLOWED_HOSTS.

    /healthz  200 "ok" while the process runs (liveness: no dependency checked)
    /readyz   200 "ok" when the default database answers SELECT 1, else 503
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info.rstrip("/") or "/"
        if path not in HEALTH_PATHS:
            return self.get_response(request)
        if path == "/healthz":
            response = HttpResponse("ok\n", content_type="text/plain")
        else:
            response = self.readiness()
        add_never_cache_headers(response)
        return set_release_headers(response)

    @staticmethod
    def readiness():
        connection = connections["default"]
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        except Exception as exc:  # any failure means "not ready"
            logger.warning("readiness check failed: %s", exc)
            # Drop a broken persistent connection so the next check reconnects.
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - closing a dead connection may fail too
                pass
            return HttpResponse("database unavailable\n", status=503, content_type="text/plain")
        return HttpResponse("ok\n", content_type="text/plain")


class ReleaseHeadersMiddleware:
    """Adds X-Served-By, X-Release-Colour and X-App-Version to every response, when
    BLOG_RELEASE_HEADERS asks for them (release.headers_enabled)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return set_release_headers(self.get_response(request))
