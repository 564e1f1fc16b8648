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

Forwarded headers: a request from an address outside FORWARDED_ALLOW_IPS (the list
Gunicorn reads too: addresses or networks, ``*`` for any; Gunicorn's default, 127.0.0.1
and ::1, when unset) reaches the project without its X-Forwarded-* , Forwarded and
X-Real-IP headers. Gunicorn only ignores them for its own URL scheme; Django's
SECURE_PROXY_SSL_HEADER, USE_X_FORWARDED_HOST and the project's own code read the raw
headers, so a client that reaches the app past the proxy could otherwise claim HTTPS or
another host.

The image role writes this file into the image's /app (Kubernetes); the app role installs
it beside the releases on VMs, so a rollback to any release finds it. Standard library
and Django only.
"""

import importlib
import ipaddress
import os

LIVE_PATH = "/_djangoops/live"
READY_PATH = "/_djangoops/ready"
_HEADERS = [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")]


def trusted_networks(text):
    """FORWARDED_ALLOW_IPS as networks; None when it trusts every address (``*``)."""
    networks = []
    for item in (part.strip() for part in (text or "").split(",")):
        if item == "*":
            return None
        if item:
            networks.append(ipaddress.ip_network(item, strict=False))
    return networks


def _trusted(address, networks):
    if networks is None:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True  # a Unix socket has no address: only local processes reach it (as Gunicorn judges)
    return any(ip in network for network in networks)


def strip_forwarded(environ, networks):
    """Drop the forwarded headers of a request whose peer is not a trusted proxy."""
    if not _trusted(environ.get("REMOTE_ADDR", ""), networks):
        for key in [k for k in environ if k.startswith("HTTP_X_FORWARDED_") or k in ("HTTP_FORWARDED", "HTTP_X_REAL_IP")]:
            del environ[key]


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


def wrap(app, check_databases=databases_answer, networks=None):
    """A WSGI callable answering the two paths and passing everything else to app, without
    forwarded headers from a peer outside networks (None trusts every peer)."""

    def health(environ, start_response):
        strip_forwarded(environ, networks)
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


application = wrap(load(os.environ.get("DJANGOOPS_WSGI_APP", "")),
                   networks=trusted_networks(os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")))
