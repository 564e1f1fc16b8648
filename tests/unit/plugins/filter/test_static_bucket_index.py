"""Unit tests for plugins/filter/static_bucket.py: plain pytest."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.djangoops.stack.plugins.filter.static_bucket import static_bucket_index


def publish(index, release, keys, keep=2):
    text = json.dumps(index["index"]) if index else ""
    return static_bucket_index(text, release, keys, keep)


def test_the_first_release_starts_the_index_and_removes_nothing():
    plan = static_bucket_index("", "1-orange", ["css/a.1.css", "admin/x.css"], 3)
    assert plan == {"index": {"releases": [{"release": "1-orange", "keys": ["admin/x.css", "css/a.1.css"]}]},
                    "dropped": [], "delete": []}


def test_keys_only_a_dropped_release_used_are_removed_and_shared_ones_stay():
    first = publish(None, "1-orange", ["css/a.1.css", "admin/x.css", "css/a.css"])
    second = publish(first, "2-maroon", ["css/a.2.css", "admin/x.css", "css/a.css"])
    assert second["delete"] == []
    third = publish(second, "3-orange", ["css/a.3.css", "admin/x.css", "css/a.css"])
    assert third["dropped"] == ["1-orange"]
    assert third["delete"] == ["css/a.1.css"]
    assert [e["release"] for e in third["index"]["releases"]] == ["2-maroon", "3-orange"]


def test_publishing_a_kept_release_again_moves_it_last_and_removes_nothing():
    first = publish(None, "1-orange", ["a.1"])
    second = publish(first, "2-maroon", ["a.2"])
    again = publish(second, "1-orange", ["a.1"])
    assert [e["release"] for e in again["index"]["releases"]] == ["2-maroon", "1-orange"]
    assert again["delete"] == [] and again["dropped"] == []
    # and a later release then drops 2-maroon, the older of the two
    later = publish(again, "3-teal", ["a.3"])
    assert later["dropped"] == ["2-maroon"] and later["delete"] == ["a.2"]


def test_the_same_release_published_twice_gives_the_same_index():
    first = publish(None, "1-orange", ["b", "a"])
    assert publish(first, "1-orange", ["a", "b"]) == first


def test_keep_one_keeps_only_the_release_being_published():
    first = publish(None, "1-orange", ["a.1", "shared"], keep=1)
    second = publish(first, "2-maroon", ["a.2", "shared"], keep=1)
    assert second["delete"] == ["a.1"]


@pytest.mark.parametrize(("text", "release", "keys", "keep", "message"), [
    ("not json", "1", [], 2, "not JSON"),
    ('{"releases": [{"release": 1}]}', "1", [], 2, "must be"),
    ("", "", [], 2, "release"),
    ("", "1", "a.css", 2, "keys"),
    ("", "1", [], 0, "keep must be 1 or more"),
    ("", "1", [], "two", "keep must be a number"),
])
def test_bad_input_is_an_error_that_says_what_is_wrong(text, release, keys, keep, message):
    with pytest.raises(AnsibleFilterError, match=message):
        static_bucket_index(text, release, keys, keep)


# --- static_bucket_releases and static_bucket_sample -------------------------------------

from ansible_collections.djangoops.stack.plugins.filter.static_bucket import (  # noqa: E402
    static_bucket_releases,
    static_bucket_sample,
)


def test_releases_of_no_index_and_of_an_index():
    assert static_bucket_releases("") == [] and static_bucket_releases("  \n") == []
    text = json.dumps({"releases": [{"release": "1-orange", "keys": ["a.css"]}, {"release": "2-maroon", "keys": []}]})
    assert [r["release"] for r in static_bucket_releases(text)] == ["1-orange", "2-maroon"]


@pytest.mark.parametrize("text", ["not json", '{"releases": "x"}', '{"releases": [{"keys": []}]}'])
def test_releases_of_a_foreign_index_fail(text):
    with pytest.raises(AnsibleFilterError):
        static_bucket_releases(text)


def test_sample_is_a_hashed_file_else_the_manifest():
    assert static_bucket_sample(["staticfiles.json", "img/x.png", "css/blog.0123456789ab.css",
                                 "admin/a.fedcba987654.js"]) == "admin/a.fedcba987654.js"
    assert static_bucket_sample(["staticfiles.json", "css/blog.css"]) == "staticfiles.json"
    with pytest.raises(AnsibleFilterError):
        static_bucket_sample("css/blog.0123456789ab.css")
