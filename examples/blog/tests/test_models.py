import pytest
from django.core.management import call_command
from django.utils import timezone

from blog.models import Post

pytestmark = pytest.mark.django_db


def test_new_post_is_a_draft(author):
    post = Post.objects.create(author=author, title="Draft", text="Not yet.")
    assert post.published_date is None
    assert post.created_date <= timezone.now()
    assert str(post) == "Draft"


def test_publish_sets_the_date_and_saves(author):
    post = Post.objects.create(author=author, title="T", text="x")
    before = timezone.now()
    post.publish()
    stored = Post.objects.get(pk=post.pk)
    assert stored.published_date is not None
    assert before <= stored.published_date <= timezone.now()


def test_absolute_url(published_post):
    assert published_post.get_absolute_url() == f"/post/{published_post.pk}/"


def test_deleting_the_author_deletes_the_posts(author, published_post):
    author.delete()
    assert not Post.objects.filter(pk=published_post.pk).exists()


def test_migrations_match_the_models():
    # Fails (SystemExit) when a model change lacks its migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
