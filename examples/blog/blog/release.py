"""What the page header and the X-Served-By / X-Release-Colour headers show.

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


def release_info():
    return {
        "served_by": served_by(),
        "release_colour": release_colour(),
        "app_version": app_version(),
    }
