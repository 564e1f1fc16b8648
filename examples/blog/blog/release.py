"""What the page header and the X-Served-By / X-Release-Colour headers (when asked for) show.

Read from the environment on every call (cheap), so that a test or an operator can
change them without re-importing anything.
"""

import os
import socket

DEFAULT_COLOUR = "orange"


def served_by():
    """The pod (Kubernetes downward API sets POD_NAME) or else the host name."""
    return os.environ.get("POD_NAME") or socket.gethostname()


def release_colour():
    return os.environ.get("APP_RELEASE_COLOUR") or DEFAULT_COLOUR


def app_version():
    return os.environ.get("APP_VERSION") or "dev"


def headers_enabled():
    """Whether responses carry X-Served-By, X-Release-Colour and X-App-Version: only when
    BLOG_RELEASE_HEADERS asks (true, 1, yes or on), as the lab and the tests do. They name
    the host and the release, which a public site need not tell anyone; the page header
    the article shows does not depend on it."""
    return os.environ.get("BLOG_RELEASE_HEADERS", "").strip().lower() in ("1", "true", "yes", "on")


def release_info():
    return {
        "served_by": served_by(),
        "release_colour": release_colour(),
        "app_version": app_version(),
    }
