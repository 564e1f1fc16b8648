import re
import socket

import pytest

pytestmark = pytest.mark.django_db


def header_tag(response):
    match = re.search(r'<header class="page-header"[^>]*>', response.content.decode())
    assert match, "no page header"
    return match.group(0)


def test_header_shows_host_name_and_default_colour(client, monkeypatch):
    monkeypatch.delenv("POD_NAME", raising=False)
    monkeypatch.delenv("APP_RELEASE_COLOUR", raising=False)
    monkeypatch.setenv("APP_VERSION", "1.0")
    response = client.get("/")
    tag = header_tag(response)
    hostname = socket.gethostname()
    assert f'data-served-by="{hostname}"' in tag
    assert 'data-colour="orange"' in tag
    assert 'data-version="1.0"' in tag
    assert 'style="background-color: orange"' in tag
    assert response["X-Served-By"] == hostname
    assert response["X-Release-Colour"] == "orange"
    assert response["X-App-Version"] == "1.0"


def test_pod_name_and_colour_come_from_the_environment(client, monkeypatch):
    monkeypatch.setenv("POD_NAME", "blog-7d9f8c6b5-x2x4q")
    monkeypatch.setenv("APP_RELEASE_COLOUR", "maroon")
    monkeypatch.setenv("APP_VERSION", "2.0")
    response = client.get("/")
    tag = header_tag(response)
    assert 'data-served-by="blog-7d9f8c6b5-x2x4q"' in tag
    assert 'data-colour="maroon"' in tag
    assert 'data-version="2.0"' in tag
    assert 'style="background-color: maroon"' in tag
    assert response["X-Served-By"] == "blog-7d9f8c6b5-x2x4q"
    assert response["X-Release-Colour"] == "maroon"


def test_colour_changes_without_restart(client, monkeypatch):
    monkeypatch.setenv("APP_RELEASE_COLOUR", "orange")
    assert client.get("/")["X-Release-Colour"] == "orange"
    monkeypatch.setenv("APP_RELEASE_COLOUR", "maroon")
    assert 'data-colour="maroon"' in header_tag(client.get("/"))


def test_header_values_are_escaped(client, monkeypatch):
    monkeypatch.setenv("APP_RELEASE_COLOUR", 'red" onmouseover="alert(1)')
    tag = header_tag(client.get("/"))
    assert 'onmouseover="alert' not in tag


def test_every_page_carries_the_release_headers(client, published_post):
    for path in ("/", f"/post/{published_post.pk}/", "/accounts/login/", "/post/new/"):
        response = client.get(path)
        assert response["X-Served-By"], path
        assert response["X-Release-Colour"], path


def test_no_release_headers_unless_asked_and_the_page_header_stays(client, monkeypatch):
    monkeypatch.delenv("BLOG_RELEASE_HEADERS", raising=False)
    for path in ("/", "/healthz"):
        response = client.get(path)
        assert response.status_code == 200, path
        for header in ("X-Served-By", "X-Release-Colour", "X-App-Version"):
            assert header not in response, (path, header)
    assert "data-colour=" in header_tag(client.get("/"))
