"""roles/image/files/djangoops_settings.py: the settings the collection lays over a
project's own (uploads in a bucket). Imported as Django would, with the environment the
app role sets; django-storages itself is exercised by the deploys against the real S3
server, here only its presence is faked or taken away."""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest

OVERLAY = Path(__file__).resolve().parents[2] / "roles" / "image" / "files" / "djangoops_settings.py"

PROJECT = '''
SECRET_KEY = "k"
MEDIA_URL = "/uploads/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
_private = "not copied"
lowercase = "not copied"
'''


def _load(monkeypatch, tmp_path, env, project=PROJECT, storages=True):
    (tmp_path / "someproject_settings.py").write_text(project)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "someproject_settings", raising=False)
    for name in [n for n in os.environ if n.startswith("DJANGOOPS_")]:
        monkeypatch.delenv(name)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if storages:
        for name in ("storages", "storages.backends", "storages.backends.s3"):
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    else:
        monkeypatch.setitem(sys.modules, "storages.backends.s3", None)  # import fails
    spec = importlib.util.spec_from_file_location("djangoops_settings_under_test", OVERLAY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUCKET = {
    "DJANGOOPS_PROJECT_SETTINGS": "someproject_settings",
    "DJANGOOPS_MEDIA_BUCKET": "media",
    "DJANGOOPS_MEDIA_ENDPOINT_URL": "http://10.0.0.1:7070",
    "DJANGOOPS_MEDIA_ACCESS_KEY": "AK",
    "DJANGOOPS_MEDIA_SECRET_KEY": "SK",
}


def test_the_projects_settings_are_taken_as_they_are(monkeypatch, tmp_path):
    settings = _load(monkeypatch, tmp_path, {"DJANGOOPS_PROJECT_SETTINGS": "someproject_settings"})
    assert settings.SECRET_KEY == "k" and settings.MEDIA_URL == "/uploads/"
    assert settings.STORAGES["default"]["BACKEND"].endswith("FileSystemStorage")  # no bucket: untouched
    assert not hasattr(settings, "_private") and not hasattr(settings, "lowercase")


def test_uploads_go_to_the_bucket_and_static_files_stay(monkeypatch, tmp_path):
    settings = _load(monkeypatch, tmp_path, BUCKET)
    default = settings.STORAGES["default"]
    assert default["BACKEND"] == "storages.backends.s3.S3Storage"
    assert default["OPTIONS"]["endpoint_url"] == "http://10.0.0.1:7070" and default["OPTIONS"]["region_name"] == "us-east-1"
    assert (default["OPTIONS"]["access_key"], default["OPTIONS"]["secret_key"]) == ("AK", "SK")
    assert default["OPTIONS"]["bucket_name"] == "media" and default["OPTIONS"]["querystring_auth"] is True
    assert default["OPTIONS"]["addressing_style"] == "path" and default["OPTIONS"]["file_overwrite"] is False
    assert settings.STORAGES["staticfiles"]["BACKEND"].startswith("whitenoise.")
    assert settings.MEDIA_URL == "/uploads/"  # signed links: MEDIA_URL is not used for them


def test_a_public_url_makes_unsigned_links_there(monkeypatch, tmp_path):
    settings = _load(monkeypatch, tmp_path, {**BUCKET, "DJANGOOPS_MEDIA_PUBLIC_URL": "https://cdn.example.org/media/"})
    options = settings.STORAGES["default"]["OPTIONS"]
    assert options["custom_domain"] == "cdn.example.org/media" and options["url_protocol"] == "https:"
    assert options["querystring_auth"] is False
    assert settings.MEDIA_URL == "https://cdn.example.org/media/"


def test_a_project_without_storages_keeps_djangos_static_default(monkeypatch, tmp_path):
    settings = _load(monkeypatch, tmp_path, BUCKET, project='SECRET_KEY = "k"\n')
    assert settings.STORAGES["staticfiles"]["BACKEND"] == "django.contrib.staticfiles.storage.StaticFilesStorage"


def test_without_django_storages_the_error_names_the_requirement(monkeypatch, tmp_path):
    with pytest.raises(RuntimeError, match=r"django-storages\[s3\]"):
        _load(monkeypatch, tmp_path, BUCKET, storages=False)


def test_the_projects_module_must_be_named(monkeypatch, tmp_path):
    with pytest.raises(RuntimeError, match="DJANGOOPS_PROJECT_SETTINGS"):
        _load(monkeypatch, tmp_path, {"DJANGOOPS_PROJECT_SETTINGS": ""})
