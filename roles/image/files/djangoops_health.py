"""djangoops.stack's health checks, in front of any Django project's WSGI callable.

Gunicorn serves ``djangoops_health:application``; the environment variable
DJANGOOPS_WSGI_APP names the project's own callable (``mysite.wsgi:application``,
``:application`` when omitted), loaded when the worker boots, as Gunicorn would load it.
Two paths are answered here; every other request goes to the project untouched:

  /_djangoops/live   200 once the worker has loaded the project. No Django code runs,
                     so a slow view, a middleware or the URLconf cannot fail it.
  /_djangoops/ready  200 when every database in the project's own DATABASES answers a
                     query, else 503 naming the database alias and the error's class.

Neither goes through ALLOWED_HOSTS, middleware or the URLconf, so a kubelet's or a load
balancer's probe needs nothing from the project. Nothing secret is ever answered.

The image role writes this file into the image's /app (Kubernetes); the app role installs
it beside the releases on VMs, so a rollback to any release finds it. Standard library
and Django only.
"""

import importlib
import os

LIVE_PATH = "/_djangoops/live"
READY_PATH = "/_djangoops/ready"
_HEADERS = [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")]


def load(target):
    """The WSGI callable named by target, ``module`` or ``module:attribute``."""
    if not target:
        raise RuntimeError(
            "djangoops_health: DJANGOOPS_WSGI_APP is not set; it names the project's WSGI callable, "
            "such as mysite.wsgi:application"
        )
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute or "application")


def databases_answer(connections=None, close_old_connections=None):
    """(True, "") when each database in DATABASES answers SELECT 1, else (False, reason).
    Connections are then closed or kept as the project's CONN_MAX_AGE says, as after a
    request; a broken one is closed so the next check connects anew."""
    if connections is None:
        from django.db import close_old_connections, connections
    alias = ""
    try:
        for alias in connections:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        connections[alias].close()
        return False, f"database {alias!r} does not answer ({type(exc).__name__})"
    finally:
        close_old_connections()
    return True, ""


def respond(start_response, environ, status, text):
    body = b"" if environ.get("REQUEST_METHOD") == "HEAD" else text.encode() + b"\n"
    start_response(status, _HEADERS + [("Content-Length", str(len(body)))])
    return [body]


def wrap(app, check_databases=databases_answer):
    """A WSGI callable answering the two paths and passing everything else to app."""

    def health(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == LIVE_PATH:
            return respond(start_response, environ, "200 OK", "live")
        if path == READY_PATH:
            ready, reason = check_databases()
            if ready:
                return respond(start_response, environ, "200 OK", "ready")
            return respond(start_response, environ, "503 Service Unavailable", reason)
        return app(environ, start_response)

    return health


application = wrap(load(os.environ.get("DJANGOOPS_WSGI_APP", "")))
