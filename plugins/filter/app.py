# Copyright: djangoops.stack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters that own the contracts the roles share: the app's environment, the release
archive's path and its fingerprint, and the state of the migration Job's pods.

Each filter is documented in the .yml file of its name beside this one
(``ansible-doc -t filter djangoops.stack.<name>``), as community.general does for files
that hold several filters.
"""

from __future__ import annotations

import json

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.common.text.converters import to_text

# The settings both targets share, in the order their keys appear in the ConfigMap.
# The order is part of the contract: the ConfigMap is named by a hash of its JSON.
_SETTINGS = (
    "secret_key",
    "debug",
    "database_name",
    "database_user",
    "database_password",
    "database_port",
    "conn_max_age",
    "allowed_hosts",
    "csrf_trusted_origins",
    "static_url",
    "extra_environment",
)

# What each target adds: required, then optional.
_TARGET_OPTIONS = {
    "vms": (("database_host", "settings_module", "static_root", "version", "colour"), ()),
    "kubernetes": (
        ("database_host", "gunicorn_workers", "gunicorn_threads", "gunicorn_timeout", "gunicorn_graceful_timeout"),
        ("database_url",),
    ),
}

# Waiting reasons that more waiting does not cure: the pod will never start.
_STUCK_REASONS = (
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
)
_STUCK_MESSAGE_LENGTH = 300


def _join(values):
    """A list as one comma-separated string, as Jinja's join(',') makes it."""
    return ",".join(str(value) for value in values)


def _check_names(what, given, required, optional=()):
    missing = [name for name in required if name not in given]
    unknown = sorted(set(given) - set(required) - set(optional))
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing))
    if unknown:
        problems.append("unknown " + ", ".join(unknown))
    if problems:
        raise AnsibleFilterError(f"app_environment: {what}: {'; '.join(problems)}")


def app_environment(settings, target, **options):
    """The app's environment (docs/design.md) for one target, as config and secrets.

    Keys hold the values the roles always wrote: strings where the contract converts
    (DEBUG, DB_PORT, ...), every other value as given, so a JSON dump of either half is
    the same as before the filter existed.
    """
    if not isinstance(settings, dict):
        raise AnsibleFilterError(f"app_environment: the input must be a dictionary of settings, not {type(settings).__name__}")
    if target not in _TARGET_OPTIONS:
        raise AnsibleFilterError(f"app_environment: target is {target!r}: use vms or kubernetes")
    _check_names("settings", settings, _SETTINGS)
    _check_names(f"options for target {target}", options, *_TARGET_OPTIONS[target])
    extra = settings["extra_environment"]
    if not isinstance(extra, dict):
        raise AnsibleFilterError(f"app_environment: extra_environment must be a dictionary, not {type(extra).__name__}")

    config = {
        "DEBUG": str(settings["debug"]).lower(),
        "DB_HOST": options["database_host"],
        "DB_PORT": str(settings["database_port"]),
        "DB_NAME": settings["database_name"],
        "DB_USER": settings["database_user"],
        "DB_CONN_MAX_AGE": str(settings["conn_max_age"]),
        "ALLOWED_HOSTS": _join(settings["allowed_hosts"]),
        "CSRF_TRUSTED_ORIGINS": _join(settings["csrf_trusted_origins"]),
        "STATIC_URL": settings["static_url"],
    }
    secrets = {"SECRET_KEY": settings["secret_key"]}
    if target == "vms":
        # The image sets these itself; a VM reads them from the release.
        config.update({
            "DJANGO_SETTINGS_MODULE": options["settings_module"],
            "STATIC_ROOT": options["static_root"],
            "APP_VERSION": str(options["version"]),
            "APP_RELEASE_COLOUR": options["colour"],
        })
        secrets["DB_PASSWORD"] = settings["database_password"]
    else:
        # Pods serve their own static files (WhiteNoise) and scale by pods, not workers.
        config.update({
            "DJANGO_SERVE_STATIC": "true",
            "WEB_CONCURRENCY": str(options["gunicorn_workers"]),
            "GUNICORN_CMD_ARGS": (
                f"--threads {options['gunicorn_threads']!s}"
                f" --timeout {options['gunicorn_timeout']!s}"
                f" --graceful-timeout {options['gunicorn_graceful_timeout']!s}"
            ),
        })
        if options.get("database_url"):
            secrets["DATABASE_URL"] = options["database_url"]
        else:
            secrets["DB_PASSWORD"] = settings["database_password"]
    # Last, so it may replace any setting above (as combine() did).
    for key, value in extra.items():
        config[key] = value
    return {"config": config, "secrets": secrets}


def k8s_job_pods_state(pods):
    """Whether a Job's pods finished, and why any of them cannot start."""
    if not is_sequence(pods):
        raise AnsibleFilterError(f"k8s_job_pods_state: the input must be a list of pods, not {type(pods).__name__}")
    done = False
    stuck = []
    for pod in pods:
        status = (pod or {}).get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            done = True
        for container in status.get("containerStatuses") or []:
            waiting = ((container or {}).get("state") or {}).get("waiting")
            if waiting is None or waiting.get("reason", "") not in _STUCK_REASONS:
                continue
            message = to_text(waiting.get("message") or "")[:_STUCK_MESSAGE_LENGTH]
            stuck.append(f"{waiting['reason']}: {message}")
    return {"done": done, "stuck": stuck}


def release_fingerprint(text):
    """The build fingerprint in a release archive's sidecar JSON; empty when none."""
    if not text:
        return ""
    try:
        manifest = json.loads(to_text(text))
    except ValueError as exc:
        raise AnsibleFilterError(f"release_fingerprint: the release manifest is not JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        return ""
    return manifest.get("fingerprint") or ""


def release_archive_path(directory, name, version, colour):
    """Where djangoops.stack.image writes a release archive, and every role reads it."""
    return f"{directory!s}/{str(name).replace('/', '-')}-{version!s}-{colour!s}.tar.gz"


class FilterModule:
    """djangoops.stack filters."""

    def filters(self):
        return {
            "app_environment": app_environment,
            "k8s_job_pods_state": k8s_job_pods_state,
            "release_archive_path": release_archive_path,
            "release_fingerprint": release_fingerprint,
        }
