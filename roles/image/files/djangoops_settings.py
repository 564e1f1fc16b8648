"""Settings djangoops.stack lays over a Django project's own, for what the collection
manages on the project's behalf: today, user uploads (media) in an S3-compatible bucket.

DJANGO_SETTINGS_MODULE names this module only when there is something to lay over; then
DJANGOOPS_PROJECT_SETTINGS names the project's own module, whose settings are all taken
as they are (every upper-case name), before these changes:

  DJANGOOPS_MEDIA_BUCKET       the bucket: Django's default storage becomes django-storages'
                               S3Storage there (the project must install django-storages
                               with boto3, `django-storages[s3]`)
  DJANGOOPS_MEDIA_ENDPOINT_URL the S3 API's URL (any S3-compatible server)
  DJANGOOPS_MEDIA_ACCESS_KEY, DJANGOOPS_MEDIA_SECRET_KEY   the bucket's credentials
  DJANGOOPS_MEDIA_REGION       the region to sign for (default us-east-1)
  DJANGOOPS_MEDIA_LOCATION     a folder inside the bucket (default: none)
  DJANGOOPS_MEDIA_PUBLIC_URL   where browsers fetch uploads (a CDN or a public bucket),
                               unsigned; without it, links are signed and expire

The project's own STORAGES["staticfiles"] and every other setting stay as they were.
The image role writes this file into each image's /app; the app role installs it beside
the releases on VMs. Standard library and Django only (storages is checked, not needed,
when no bucket is set).
"""

import importlib
import os

_project_name = os.environ.get("DJANGOOPS_PROJECT_SETTINGS", "")
if not _project_name or _project_name == __name__:
    raise RuntimeError(
        "djangoops_settings: DJANGOOPS_PROJECT_SETTINGS must name the project's own settings module "
        "(such as mysite.settings)"
    )
_project = importlib.import_module(_project_name)
globals().update((name, value) for name, value in vars(_project).items() if name.isupper())


def media_storage(environ):
    """The STORAGES["default"] entry for the bucket environ names, and MEDIA_URL (or None)."""
    public_url = environ.get("DJANGOOPS_MEDIA_PUBLIC_URL", "").rstrip("/")
    options = {
        "bucket_name": environ["DJANGOOPS_MEDIA_BUCKET"],
        "endpoint_url": environ.get("DJANGOOPS_MEDIA_ENDPOINT_URL") or None,
        "access_key": environ.get("DJANGOOPS_MEDIA_ACCESS_KEY") or None,
        "secret_key": environ.get("DJANGOOPS_MEDIA_SECRET_KEY") or None,
        "region_name": environ.get("DJANGOOPS_MEDIA_REGION") or "us-east-1",
        "location": environ.get("DJANGOOPS_MEDIA_LOCATION", "").strip("/"),
        # Path-style addressing: any S3-compatible server, no wildcard DNS for buckets.
        "addressing_style": "path",
        "signature_version": "s3v4",
        # An upload never replaces another file of the same name.
        "file_overwrite": False,
    }
    if public_url:
        scheme, _, rest = public_url.partition("://")
        options.update({"custom_domain": rest, "url_protocol": scheme + ":", "querystring_auth": False})
    else:
        options["querystring_auth"] = True
    media_url = public_url + "/" if public_url else None
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}, media_url


if os.environ.get("DJANGOOPS_MEDIA_BUCKET"):
    try:
        importlib.import_module("storages.backends.s3")
    except ImportError as exc:
        raise RuntimeError(
            "djangoops_settings: uploads go to the bucket DJANGOOPS_MEDIA_BUCKET names, which needs "
            f"django-storages with boto3 in the project's requirements (django-storages[s3]): {exc}"
        ) from exc
    _default, _media_url = media_storage(os.environ)
    # Django's own default for static files when the project sets no STORAGES.
    _static_default = {"staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    STORAGES = {**(globals().get("STORAGES") or _static_default), "default": _default}
    if _media_url:
        MEDIA_URL = _media_url
