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

import hashlib
import json
import os
import re
import shlex
from collections.abc import Mapping
from urllib.parse import quote

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

# Settings that may be left out: the defaults they take.
# media_url: the project's MEDIA_URL, written when set; https: whether the site is served
# over HTTPS (TLS ending at NGINX or the ingress), written as the secure-proxy switches
# when it is true or false, left to the project when None.
# broker_url: the task queue's URL (Celery's broker), a secret, written when set.
_OPTIONAL_SETTINGS = {"extra_secrets": {}, "media_bucket": {}, "media_url": "", "https": None, "broker_url": ""}

# Uploads in a bucket (the media_bucket setting, the app role's app_media_bucket*): its keys,
# the variable each goes to (read by djangoops_settings), and which are secrets.
_MEDIA_KEYS = {
    "bucket": ("DJANGOOPS_MEDIA_BUCKET", False),
    "endpoint_url": ("DJANGOOPS_MEDIA_ENDPOINT_URL", False),
    "region": ("DJANGOOPS_MEDIA_REGION", False),
    "location": ("DJANGOOPS_MEDIA_LOCATION", False),
    "public_url": ("DJANGOOPS_MEDIA_PUBLIC_URL", False),
    "access_key": ("DJANGOOPS_MEDIA_ACCESS_KEY", True),
    "secret_key": ("DJANGOOPS_MEDIA_SECRET_KEY", True),
}

# The environment variable the app reads each setting from, by default (the sample blog's
# names). The filter's names option (the app role's app_environment_names) renames them.
DEFAULT_NAMES = {
    "secret_key": "SECRET_KEY",
    "database_url": "DATABASE_URL",
    "allowed_hosts": "ALLOWED_HOSTS",
    "csrf_trusted_origins": "CSRF_TRUSTED_ORIGINS",
    "static_url": "STATIC_URL",
    "debug": "DEBUG",
    "db_host": "DB_HOST",
    "db_port": "DB_PORT",
    "db_name": "DB_NAME",
    "db_user": "DB_USER",
    "db_password": "DB_PASSWORD",
    "db_conn_max_age": "DB_CONN_MAX_AGE",
    "media_url": "MEDIA_URL",
    "https_redirect": "DJANGO_SECURE_SSL_REDIRECT",
    "secure_cookies": "DJANGO_SECURE_COOKIES",
    "broker_url": "CELERY_BROKER_URL",
}

# Settings a project may not read at all: an empty name leaves them out of its environment.
OPTIONAL_NAMES = ("media_url", "https_redirect", "secure_cookies", "broker_url")

# Names the collection sets itself, on one target or the other (the release, the image's
# runtime, the pod's name, the migration Job's superuser): no setting may be renamed to one.
RESERVED_NAMES = (
    "DJANGO_SETTINGS_MODULE",
    "DJANGOOPS_WSGI_APP",
    "STATIC_ROOT",
    "APP_VERSION",
    "APP_RELEASE_COLOUR",
    "DJANGO_SERVE_STATIC",
    "WEB_CONCURRENCY",
    "GUNICORN_CMD_ARGS",
    "POD_NAME",
    "DJANGOOPS_PROJECT_SETTINGS",
    *(entry[0] for entry in _MEDIA_KEYS.values()),
    "DJANGOOPS_SUPERUSER_NAME",
    "DJANGOOPS_SUPERUSER_EMAIL",
    "DJANGOOPS_SUPERUSER_PASSWORD",
    "DJANGOOPS_SUPERUSER_RESET",
    "DJANGOOPS_MANAGE_COMMANDS",
)

# What a shell, systemd and Kubernetes all accept as an environment variable's name.
ENV_NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# What each target adds: required, then optional.
_TARGET_OPTIONS = {
    "vms": (("database_host", "settings_module", "wsgi_app", "static_root", "version", "colour"), ("names", "lib_dir")),
    "kubernetes": (
        ("database_host", "gunicorn_workers", "gunicorn_threads", "gunicorn_timeout", "gunicorn_graceful_timeout"),
        ("database_url", "names"),
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


def _is_env_name(name):
    return isinstance(name, str) and _ENV_NAME.fullmatch(name) is not None


def environment_names(names=None):
    """DEFAULT_NAMES with the given ones replacing theirs, and what is wrong with them.

    Returns (names, problems): problems is a list of sentences naming the key or the name
    at fault, empty when the names can be used.
    """
    if names is None:
        names = {}
    if not isinstance(names, dict):
        return dict(DEFAULT_NAMES), ["must be a dictionary of setting: NAME (such as secret_key: DJANGO_SECRET_KEY)"]
    problems = []
    unknown = sorted(str(key) for key in names if key not in DEFAULT_NAMES)
    if unknown:
        problems.append(f"unknown key {', '.join(unknown)} (known: {', '.join(DEFAULT_NAMES)})")
    resolved = dict(DEFAULT_NAMES)
    resolved.update((key, value) for key, value in names.items() if key in DEFAULT_NAMES)
    for key, value in resolved.items():
        if key in OPTIONAL_NAMES and value == "":
            continue
        if not _is_env_name(value):
            problems.append(f"{key} is {value!r}, not an environment variable name ({ENV_NAME_PATTERN})"
                            + (" or empty (the project reads none)" if key in OPTIONAL_NAMES else ""))
        elif value in RESERVED_NAMES:
            problems.append(f"{key} is {value}, a name the collection sets itself")
    by_name = {}
    for key, value in resolved.items():
        if isinstance(value, str) and value:
            by_name.setdefault(value, []).append(key)
    for value, keys in by_name.items():
        if len(keys) > 1:
            problems.append(f"{' and '.join(keys)} both map to {value}")
    return resolved, problems


def app_environment_names(names=None):
    """The environment variable names of the app's settings, and what is wrong with them."""
    resolved, problems = environment_names(names)
    return {"names": resolved, "problems": problems}


def _check_keys(what, variables):
    if not isinstance(variables, dict):
        raise AnsibleFilterError(f"app_environment: {what} must be a dictionary, not {type(variables).__name__}")
    bad = sorted(repr(key) for key in variables if not _is_env_name(key))
    if bad:
        raise AnsibleFilterError(
            f"app_environment: {what}: {', '.join(bad)} not environment variable names ({ENV_NAME_PATTERN})"
        )


def database_url(user, password, host, port, name):
    """postgres://user:password@host:port/name, user, password and name URL-quoted."""
    host = str(host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return (
        f"postgres://{quote(str(user), safe='')}:{quote(str(password), safe='')}"
        f"@{host}:{port!s}/{quote(str(name), safe='')}"
    )


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
    _check_names("settings", settings, _SETTINGS, _OPTIONAL_SETTINGS)
    _check_names(f"options for target {target}", options, *_TARGET_OPTIONS[target])
    names, problems = environment_names(options.get("names"))
    if problems:
        raise AnsibleFilterError(f"app_environment: names: {'; '.join(problems)}")
    extra = settings["extra_environment"]
    extra_secrets = settings.get("extra_secrets", _OPTIONAL_SETTINGS["extra_secrets"])
    _check_keys("extra_environment", extra)
    _check_keys("extra_secrets", extra_secrets)
    both = sorted(set(extra) & set(extra_secrets))
    if both:
        raise AnsibleFilterError(
            f"app_environment: {', '.join(both)} in both extra_environment and extra_secrets: a variable is a setting or a secret"
        )

    config = {
        names["debug"]: str(settings["debug"]).lower(),
        names["db_host"]: options["database_host"],
        names["db_port"]: str(settings["database_port"]),
        names["db_name"]: settings["database_name"],
        names["db_user"]: settings["database_user"],
        names["db_conn_max_age"]: str(settings["conn_max_age"]),
        names["allowed_hosts"]: _join(settings["allowed_hosts"]),
        names["csrf_trusted_origins"]: _join(settings["csrf_trusted_origins"]),
        names["static_url"]: settings["static_url"],
    }
    media_url = settings.get("media_url") or ""
    if media_url and names["media_url"]:
        config[names["media_url"]] = media_url
    https = settings.get("https")
    if https is not None:
        if not isinstance(https, bool):
            raise AnsibleFilterError(f"app_environment: https must be true, false or None, not {https!r}")
        for key in ("https_redirect", "secure_cookies"):
            if names[key]:
                config[names[key]] = str(https).lower()
    secrets = {names["secret_key"]: settings["secret_key"]}
    broker_url = settings.get("broker_url") or ""
    if broker_url and names["broker_url"]:
        secrets[names["broker_url"]] = broker_url
    built_url = database_url(
        settings["database_user"], settings["database_password"], options["database_host"],
        settings["database_port"], settings["database_name"],
    )
    if target == "vms":
        # The image sets these itself; a VM reads them from the release.
        config.update({
            "DJANGO_SETTINGS_MODULE": options["settings_module"],
            # djangoops_health hands every request but its probes to this callable.
            "DJANGOOPS_WSGI_APP": options["wsgi_app"],
            "STATIC_ROOT": options["static_root"],
            "APP_VERSION": str(options["version"]),
            "APP_RELEASE_COLOUR": options["colour"],
        })
        secrets[names["db_password"]] = settings["database_password"]
        secrets[names["database_url"]] = built_url
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
            # An external database: its URL, as given, is all the app needs.
            secrets[names["database_url"]] = options["database_url"]
        else:
            secrets[names["db_password"]] = settings["database_password"]
            secrets[names["database_url"]] = built_url
    media = settings.get("media_bucket") or {}
    unknown = sorted(set(media) - set(_MEDIA_KEYS))
    if unknown:
        raise AnsibleFilterError(f"app_environment: media_bucket: unknown key {', '.join(unknown)}")
    if media.get("bucket"):
        # djangoops_settings (beside the project's code) lays the bucket over the project's
        # settings; the image names the project's module itself, a VM reads it from here.
        config["DJANGO_SETTINGS_MODULE"] = "djangoops_settings"
        if target == "vms":
            config["DJANGOOPS_PROJECT_SETTINGS"] = options["settings_module"]
            if options.get("lib_dir"):
                # where djangoops_settings is on a VM (the image has it in /app): manage.py
                # runs and the migration step import it from there
                config["PYTHONPATH"] = options["lib_dir"]
        for key, (name, secret) in _MEDIA_KEYS.items():
            value = str(media.get(key) or "")
            if secret:
                secrets[name] = value
            elif value:
                config[name] = value
    # Last, so it may replace any setting above (as combine() did).
    for key, value in extra.items():
        config[key] = value
    # Secrets last too, replacing a secret of the same name; a setting of that name leaves
    # the config half, so the secret is what the app reads on both targets.
    for key, value in extra_secrets.items():
        config.pop(key, None)
        secrets[key] = value
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


# What the API server and its controllers write on an object, never the manifest: a
# difference there alone is not a change the task made.
_K8S_SERVER_METADATA = frozenset(("generation", "resourceVersion", "managedFields"))


def _k8s_object_changed(result):
    if not isinstance(result, Mapping):
        raise AnsibleFilterError(f"k8s_changed: each result must be a mapping, not {type(result).__name__}")
    if not result.get("changed"):
        return False
    diff = result.get("diff")
    if result.get("method") in ("create", "delete") or not isinstance(diff, Mapping):
        return True  # made or removed, or no diff to read (the task without diff: true)
    for side in (diff.get("before") or {}, diff.get("after") or {}):
        for key, value in side.items():
            if key == "status":
                continue
            if key == "metadata" and isinstance(value, Mapping) and set(value) <= _K8S_SERVER_METADATA:
                continue
            return True
    return False


def k8s_changed(result):
    """Whether a kubernetes.core.k8s task changed an object, not only saw its status move.

    kubernetes.core reports a change whenever the object it read before applying differs
    from the one it holds after (after the wait, with wait: true), status included: a
    Deployment whose pods' readiness, or an autoscaler whose CPU figure, moved meanwhile
    reads as changed. With the task's diff on, this looks at what differed."""
    if not isinstance(result, Mapping):
        raise AnsibleFilterError(f"k8s_changed: the input must be a kubernetes.core.k8s result, not {type(result).__name__}")
    if not result.get("changed"):
        return False
    inner = result.get("result")
    if isinstance(inner, Mapping) and is_sequence(inner.get("results")) and "method" not in result:
        return any(_k8s_object_changed(each) for each in inner["results"])
    return _k8s_object_changed(result)


def app_manage_commands(commands=None):
    """The app role's app_manage_commands as argv lists, what is wrong with it, and its marker.

    Each item is a string (split as a shell would split words, with shlex, but never run
    by a shell) or a list of argv words. Never raises, so that a check can name the
    variable; the commands returned are the valid ones. The marker is a hash of the
    commands (sha256 of their compact JSON), empty when there are none: it names the Job
    on Kubernetes and is written to the release on VMs once they ran.
    """
    if commands is None:
        commands = []
    problems = []
    argvs = []
    if isinstance(commands, (str, bytes)) or not is_sequence(commands):
        problems.append(f"must be a list of commands (each a string or a list of words), not {type(commands).__name__}")
        commands = []
    for number, item in enumerate(commands, start=1):
        if isinstance(item, str):
            try:
                argv = shlex.split(item)
            except ValueError as exc:
                problems.append(f"item {number} ({item!r}) cannot be split into words: {exc}")
                continue
        elif is_sequence(item) and not isinstance(item, bytes):
            argv = list(item)
            bad = [word for word in argv if not isinstance(word, str)]
            if bad:
                problems.append(f"item {number}: every word must be a string, not {', '.join(repr(word) for word in bad)}")
                continue
        else:
            problems.append(f"item {number} is of type {type(item).__name__}: use a string or a list of words")
            continue
        if not argv or not argv[0].strip():
            problems.append(f"item {number} is empty: name a management command")
            continue
        if argv[0].startswith("-"):
            problems.append(f"item {number} starts with the option {argv[0]!r}: the command's name comes first")
            continue
        argvs.append([to_text(word) for word in argv])
    marker = hashlib.sha256(json.dumps(argvs, separators=(",", ":")).encode()).hexdigest() if argvs else ""
    return {"commands": argvs, "problems": problems, "marker": marker}


def _release_manifest_field(text, field, who):
    """One field of a release archive's sidecar JSON (its manifest); empty when none."""
    if not text:
        return ""
    try:
        manifest = json.loads(to_text(text))
    except ValueError as exc:
        raise AnsibleFilterError(f"{who}: the release manifest is not JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        return ""
    return manifest.get(field) or ""


def release_fingerprint(text):
    """The build fingerprint in a release archive's sidecar JSON; empty when none."""
    return _release_manifest_field(text, "fingerprint", "release_fingerprint")


def release_python_version(text):
    """The Python (major.minor) a release was built for, from its manifest; empty when none."""
    return python_major_minor(_release_manifest_field(text, "python_version", "release_python_version"))


def python_major_minor(version):
    """'3.13.1' -> '3.13', '3.11' -> '3.11'; empty for empty input; an error for anything else."""
    text = to_text(version if version is not None else "").strip()
    if not text:
        return ""
    match = re.match(r"^(\d+)\.(\d+)(\.\S*)?$", text)
    if not match:
        raise AnsibleFilterError(f"python_major_minor: '{text}' is not a Python version such as 3.11 or 3.13.1")
    return f"{int(match.group(1))}.{int(match.group(2))}"


def cache_dir(given=None, sub="", root=None):
    """The controller folder the collection keeps builds and releases in: ``given`` when set,
    else ``<root>/<sub>``, where ``root`` defaults to ``$XDG_CACHE_HOME/djangoops`` (or
    ``~/.cache/djangoops`` when XDG_CACHE_HOME is unset or empty)."""
    if given:
        return str(given)
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "djangoops")
    return os.path.join(str(root), str(sub)) if sub else str(root)


def release_archive_path(directory, name, version, colour):
    """Where djangoops.stack.image writes a release archive, and every role reads it."""
    return f"{directory!s}/{str(name).replace('/', '-')}-{version!s}-{colour!s}.tar.gz"


class FilterModule:
    """djangoops.stack filters."""

    def filters(self):
        return {
            "app_environment": app_environment,
            "app_environment_names": app_environment_names,
            "app_manage_commands": app_manage_commands,
            "cache_dir": cache_dir,
            "k8s_changed": k8s_changed,
            "k8s_job_pods_state": k8s_job_pods_state,
            "release_archive_path": release_archive_path,
            "python_major_minor": python_major_minor,
            "release_fingerprint": release_fingerprint,
            "release_python_version": release_python_version,
        }
