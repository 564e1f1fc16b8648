from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from blog.models import Post

from .conftest import csrf_token_from

pytestmark = pytest.mark.django_db


def make_post(author, title, published_days_ago=None):
    post = Post.objects.create(author=author, title=title, text=f"{title} text")
    if published_days_ago is not None:
        post.published_date = timezone.now() - timedelta(days=published_days_ago)
        post.save()
    return post


def titles_in_order(html, titles):
    positions = [html.index(title) for title in titles]
    return positions == sorted(positions)


def test_list_shows_published_posts_newest_first(client, author):
    make_post(author, "Older post", published_days_ago=3)
    make_post(author, "Newer post", published_days_ago=1)
    make_post(author, "Secret draft")
    future = make_post(author, "Future post")
    future.published_date = timezone.now() + timedelta(days=1)
    future.save()

    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Older post" in html and "Newer post" in html
    assert "Secret draft" not in html and "Future post" not in html
    assert titles_in_order(html, ["Newer post", "Older post"])


def test_list_links_hashed_stylesheet(client):
    html = client.get("/").content.decode()
    # ManifestStaticFilesStorage: css/blog.<12 hex>.css
    assert 'href="/static/css/blog.' in html
    assert "/static/css/blog.css" not in html


def test_detail(client, published_post):
    response = client.get(f"/post/{published_post.pk}/")
    assert response.status_code == 200
    assert b"Hello world" in response.content
    assert b"First post." in response.content
    assert b"by ada" in response.content


def test_detail_of_missing_post_is_404(client):
    assert client.get("/post/999999/").status_code == 404


def test_draft_is_hidden_from_anonymous_but_shown_to_its_author(client, author, password):
    draft = make_post(author, "Work in progress")
    assert client.get(f"/post/{draft.pk}/").status_code == 404
    client.login(username="ada", password=password)
    assert client.get(f"/post/{draft.pk}/").status_code == 200


@pytest.mark.parametrize("path", ["/post/new/", "/post/1/edit/"])
def test_anonymous_is_sent_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_login_page_logs_in(csrf_client, author, password):
    page = csrf_client.get("/accounts/login/?next=/post/new/")
    assert page.status_code == 200
    response = csrf_client.post(
        "/accounts/login/",
        {
            "username": "ada",
            "password": password,
            "next": "/post/new/",
            "csrfmiddlewaretoken": csrf_token_from(page),
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/post/new/"
    assert csrf_client.get("/post/new/").status_code == 200


def test_login_with_wrong_password_fails(csrf_client, author):
    page = csrf_client.get("/accounts/login/")
    response = csrf_client.post(
        "/accounts/login/",
        {"username": "ada", "password": "wrong", "csrfmiddlewaretoken": csrf_token_from(page)},
    )
    assert response.status_code == 200
    assert b"didn't match" in response.content


def test_new_post_form_creates_a_published_post(csrf_client, author):
    csrf_client.force_login(author)
    form = csrf_client.get("/post/new/")
    assert form.status_code == 200
    response = csrf_client.post(
        "/post/new/",
        {"title": "Made by form", "text": "Body", "csrfmiddlewaretoken": csrf_token_from(form)},
    )
    post = Post.objects.get(title="Made by form")
    assert response.status_code == 302
    assert response["Location"] == f"/post/{post.pk}/"
    assert post.author == author
    assert post.published_date is not None
    assert b"Made by form" in csrf_client.get("/").content


def test_post_without_csrf_token_is_refused(csrf_client, author):
    csrf_client.force_login(author)
    response = csrf_client.post("/post/new/", {"title": "Forged", "text": "x"})
    assert response.status_code == 403
    assert not Post.objects.filter(title="Forged").exists()


def test_invalid_form_is_shown_again(csrf_client, author):
    csrf_client.force_login(author)
    form = csrf_client.get("/post/new/")
    response = csrf_client.post(
        "/post/new/", {"title": "", "text": "x", "csrfmiddlewaretoken": csrf_token_from(form)}
    )
    assert response.status_code == 200
    assert b"This field is required" in response.content
    assert Post.objects.count() == 0


def test_author_edits_a_post(csrf_client, author, published_post):
    published = published_post.published_date
    csrf_client.force_login(author)
    form = csrf_client.get(f"/post/{published_post.pk}/edit/")
    assert form.status_code == 200
    assert b"Hello world" in form.content
    response = csrf_client.post(
        f"/post/{published_post.pk}/edit/",
        {"title": "Hello again", "text": "Edited.", "csrfmiddlewaretoken": csrf_token_from(form)},
    )
    assert response.status_code == 302
    published_post.refresh_from_db()
    assert (published_post.title, published_post.text) == ("Hello again", "Edited.")
    assert published_post.published_date == published  # editing does not re-date it


def test_other_user_may_not_edit(client, other_user, published_post):
    client.force_login(other_user)
    assert client.get(f"/post/{published_post.pk}/edit/").status_code == 403
    assert (
        client.post(
            f"/post/{published_post.pk}/edit/", {"title": "Hijack", "text": "x"}
        ).status_code
        == 403
    )
    published_post.refresh_from_db()
    assert published_post.title == "Hello world"


def test_logout_needs_post(csrf_client, author):
    csrf_client.force_login(author)
    page = csrf_client.get("/")
    assert b"Log out" in page.content
    response = csrf_client.post("/accounts/logout/", {"csrfmiddlewaretoken": csrf_token_from(page)})
    assert response.status_code == 302
    assert csrf_client.get("/post/new/").status_code == 302


def test_admin_requires_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_admin_is_reachable_for_staff(client, superuser, published_post):
    client.force_login(superuser)
    assert client.get("/admin/").status_code == 200
    changelist = client.get("/admin/blog/post/")
    assert changelist.status_code == 200
    assert b"Hello world" in changelist.content
    assert client.get(f"/admin/blog/post/{published_post.pk}/change/").status_code == 200


def test_plain_http_is_redirected_to_https():
    response = Client().get("/post/1/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/post/1/"


def test_https_responses_carry_security_headers(client):
    response = client.get("/")
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_unknown_host_is_rejected(client):
    assert client.get("/", headers={"Host": "evil.example.org"}).status_code == 400


def test_session_and_csrf_cookies_are_secure(csrf_client, author, password):
    page = csrf_client.get("/accounts/login/")
    assert page.cookies["csrftoken"]["secure"]
    csrf_client.post(
        "/accounts/login/",
        {"username": "ada", "password": password, "csrfmiddlewaretoken": csrf_token_from(page)},
    )
    assert csrf_client.cookies["sessionid"]["secure"]
    assert csrf_client.cookies["sessionid"]["httponly"]
