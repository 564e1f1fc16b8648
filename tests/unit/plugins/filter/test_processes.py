"""Unit tests for plugins/filter/processes.py: the app's process types besides Gunicorn."""

from __future__ import annotations

import pytest

from ansible_collections.djangoops.stack.plugins.filter.processes import app_processes


def test_a_worker_and_a_beat_read_with_their_defaults():
    result = app_processes([
        {"name": "worker", "command": "celery -A proj worker -Q default", "count": "2"},
        {"name": "beat", "command": ["celery", "-A", "proj", "beat"], "singleton": True, "group": "workers",
         "stop_timeout": 5, "resources": {"requests": {"cpu": "50m"}}},
    ])
    assert result["problems"] == []
    worker, beat = result["processes"]
    assert worker == {"name": "worker", "argv": ["celery", "-A", "proj", "worker", "-Q", "default"],
                      "exec_words": '"celery" "-A" "proj" "worker" "-Q" "default"', "count": 2,
                      "singleton": False, "group": "", "stop_timeout": 30, "resources": {}}
    assert beat["count"] == 1 and beat["singleton"] and beat["group"] == "workers" and beat["stop_timeout"] == 5
    assert beat["resources"] == {"requests": {"cpu": "50m"}}


def test_none_and_an_empty_list_are_no_processes():
    assert app_processes(None) == {"processes": [], "problems": []}
    assert app_processes([]) == {"processes": [], "problems": []}


@pytest.mark.parametrize(("item", "words"), [
    ({"name": "worker"}, "has no command"),
    ({"name": "worker", "command": ""}, "has no command"),
    ({"name": "worker", "command": "celery", "count": -1}, "count must be a whole number, 0 or more"),
    ({"name": "worker", "command": "celery", "count": "two"}, "count must be a whole number"),
    ({"name": "beat", "command": "celery beat", "singleton": True, "count": 2}, "a singleton runs exactly once"),
    ({"name": "beat", "command": "celery beat", "singleton": "yes"}, "singleton must be true or false"),
    ({"name": "Worker", "command": "celery"}, "name must be 1 to 40 lowercase"),
    ({"name": "web", "command": "celery"}, "the name web is the app's own"),
    ({"name": "worker", "command": "celery", "stop_timeout": 0}, "stop_timeout must be a whole number of seconds"),
    ({"name": "worker", "command": "celery", "group": ["a"]}, "group must be an inventory group"),
    ({"name": "worker", "command": "celery", "resources": {"cpu": 1}}, "resources must be a mapping with requests"),
    ({"name": "worker", "command": "--loglevel info"}, "starts with the option"),
    ({"name": "worker", "command": "celery", "replicas": 2}, "unknown keys replicas"),
    ("worker", "must be a mapping"),
])
def test_a_bad_item_is_named(item, words):
    result = app_processes([item, {"name": "good", "command": "celery"}])
    assert len(result["problems"]) == 1 and words in result["problems"][0], result
    assert result["problems"][0].startswith("item 1")
    assert [p["name"] for p in result["processes"]] == ["good"]


def test_a_name_used_twice_and_a_string_instead_of_a_list():
    assert "used twice" in app_processes([{"name": "w", "command": "a"}, {"name": "w", "command": "b"}])["problems"][0]
    assert "must be a list" in app_processes("celery worker")["problems"][0]


def test_a_program_runs_from_the_bin_dir_unless_it_names_a_path():
    result = app_processes([{"name": "a", "command": "celery worker"}, {"name": "b", "command": "/usr/bin/env x"}],
                           "/opt/app/current/venv/bin/")
    assert [p["exec_words"] for p in result["processes"]] == ['"/opt/app/current/venv/bin/celery" "worker"',
                                                                 '"/usr/bin/env" "x"']
    assert result["processes"][0]["argv"] == ["celery", "worker"]
