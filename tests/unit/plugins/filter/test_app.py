"""Unit tests for the djangoops.stack filters in plugins/filter/app.py: plain pytest."""

from __future__ import annotations

import hashlib
import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.djangoops.stack.plugins.filter import app as filters


def settings(**changes):
    """The shared settings as roles/app/vars/main.yml passes them, with the role's defaults."""
    base = {
        "secret_key": "s" * 40,
        "debug": False,
        "database_name": "blog",
        "database_user": "blog",
        "database_password": "db-pass",
        "database_port": 5432,
        "conn_max_age": 60,
        "allowed_hosts": [],
        "csrf_trusted_origins": [],
        "static_url": "/static/",
        "extra_environment": {},
    }
    base.update(changes)
    return base


VMS = {
    "database_host": "10.0.0.5",
    "settings_module": "mysite.settings",
    "wsgi_app": "mysite.wsgi:application",
    "static_root": "/opt/djangoops-blog/current/static",
    "version": "1.0",
    "colour": "orange",
}
K8S = {
    "database_host": "djangoops-blog-postgres",
    "database_url": "",
    "gunicorn_workers": 2,
    "gunicorn_threads": 1,
    "gunicorn_timeout": 30,
    "gunicorn_graceful_timeout": 20,
}


def content_hash(data):
    """What roles/app/vars/main.yml names the ConfigMap and Secret by (to_json | hash('sha256'))[:10]."""
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:10]


# --- app_environment: Kubernetes -------------------------------------------------------


def test_kubernetes_config_keys_come_in_the_contract_order():
    env = filters.app_environment(settings(), "kubernetes", **K8S)
    assert list(env["config"]) == [
        "DEBUG", "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_CONN_MAX_AGE", "ALLOWED_HOSTS",
        "CSRF_TRUSTED_ORIGINS", "STATIC_URL", "DJANGO_SERVE_STATIC", "WEB_CONCURRENCY", "GUNICORN_CMD_ARGS",
    ]
    assert env["config"] == {
        "DEBUG": "false",
        "DB_HOST": "djangoops-blog-postgres",
        "DB_PORT": "5432",
        "DB_NAME": "blog",
        "DB_USER": "blog",
        "DB_CONN_MAX_AGE": "60",
        "ALLOWED_HOSTS": "",
        "CSRF_TRUSTED_ORIGINS": "",
        "STATIC_URL": "/static/",
        "DJANGO_SERVE_STATIC": "true",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_CMD_ARGS": "--threads 1 --timeout 30 --graceful-timeout 20",
    }
    # the in-cluster database: the password, and the URL built from the same settings
    assert env["secrets"] == {
        "SECRET_KEY": "s" * 40,
        "DB_PASSWORD": "db-pass",
        "DATABASE_URL": "postgres://blog:db-pass@djangoops-blog-postgres:5432/blog",
    }


def test_kubernetes_names_hash_the_same_json_as_before_the_filter():
    # Rendered by the role's Jinja expressions before this filter existed (ansible-core
    # 2.21): djangoops-blog-config-ea5a73bbb4 and djangoops-blog-env-449c6539dd. A change
    # of key order or value type here would roll every pod on upgrade.
    env = filters.app_environment(
        settings(
            debug=True,
            allowed_hosts=["blog.example"],
            extra_environment={"DJANGO_HSTS_SECONDS": 0, "DEBUG": "true", "ZZ": "z", "AA": ["l"]},
        ),
        "kubernetes",
        **dict(K8S, database_host="10.0.0.5", database_url="postgres://u:p@db:5432/blog",
               gunicorn_workers=4, gunicorn_threads="2", gunicorn_timeout=60, gunicorn_graceful_timeout=25),
    )
    assert json.dumps(env["config"]) == (
        '{"DEBUG": "true", "DB_HOST": "10.0.0.5", "DB_PORT": "5432", "DB_NAME": "blog", "DB_USER": "blog", '
        '"DB_CONN_MAX_AGE": "60", "ALLOWED_HOSTS": "blog.example", "CSRF_TRUSTED_ORIGINS": "", "STATIC_URL": "/static/", '
        '"DJANGO_SERVE_STATIC": "true", "WEB_CONCURRENCY": "4", "GUNICORN_CMD_ARGS": "--threads 2 --timeout 60 --graceful-timeout 25", '
        '"DJANGO_HSTS_SECONDS": 0, "ZZ": "z", "AA": ["l"]}'
    )
    assert content_hash(env["config"]) == "ea5a73bbb4"
    assert json.dumps(env["secrets"]) == '{"SECRET_KEY": "' + "s" * 40 + '", "DATABASE_URL": "postgres://u:p@db:5432/blog"}'
    assert content_hash(env["secrets"]) == "449c6539dd"


def test_kubernetes_database_url_replaces_the_password():
    env = filters.app_environment(settings(), "kubernetes", **dict(K8S, database_url="postgres://u:p@h/d"))
    assert env["secrets"] == {"SECRET_KEY": "s" * 40, "DATABASE_URL": "postgres://u:p@h/d"}


@pytest.mark.parametrize("database_url", ["", None])
def test_kubernetes_without_database_url_has_the_password_and_the_built_url(database_url):
    options = dict(K8S, database_url=database_url)
    env = filters.app_environment(settings(), "kubernetes", **options)
    assert env["secrets"] == {
        "SECRET_KEY": "s" * 40,
        "DB_PASSWORD": "db-pass",
        "DATABASE_URL": "postgres://blog:db-pass@djangoops-blog-postgres:5432/blog",
    }
    del options["database_url"]
    assert filters.app_environment(settings(), "kubernetes", **options) == env


def test_extra_environment_replaces_in_place_and_adds_at_the_end_with_its_types():
    extra = {"X_INT": 5, "DEBUG": "true", "X_BOOL": True, "SECRET_KEY": "from-extra"}
    env = filters.app_environment(settings(extra_environment=extra), "kubernetes", **K8S)
    assert list(env["config"])[0] == "DEBUG"
    assert env["config"]["DEBUG"] == "true"
    assert list(env["config"])[-3:] == ["X_INT", "X_BOOL", "SECRET_KEY"]
    assert env["config"]["X_INT"] == 5
    assert env["config"]["X_BOOL"] is True
    # the Secret is built from the settings alone
    assert env["secrets"]["SECRET_KEY"] == "s" * 40


def test_values_are_strings_where_the_contract_converts_them():
    env = filters.app_environment(
        settings(debug=True, database_port="5433", conn_max_age=0, allowed_hosts=["a.example", ".b.example", 7],
                 csrf_trusted_origins=["https://a.example"]),
        "kubernetes",
        **dict(K8S, gunicorn_workers="3"),
    )
    config = env["config"]
    assert (config["DEBUG"], config["DB_PORT"], config["DB_CONN_MAX_AGE"]) == ("true", "5433", "0")
    assert config["ALLOWED_HOSTS"] == "a.example,.b.example,7"
    assert config["CSRF_TRUSTED_ORIGINS"] == "https://a.example"
    assert config["WEB_CONCURRENCY"] == "3"


def test_other_values_keep_their_type():
    env = filters.app_environment(settings(database_name=123, static_url="/s/"), "kubernetes", **K8S)
    assert env["config"]["DB_NAME"] == 123
    assert env["config"]["STATIC_URL"] == "/s/"


# --- app_environment: VMs --------------------------------------------------------------


def test_vms_environment():
    env = filters.app_environment(settings(), "vms", **VMS)
    assert env["config"] == {
        "DEBUG": "false",
        "DB_HOST": "10.0.0.5",
        "DB_PORT": "5432",
        "DB_NAME": "blog",
        "DB_USER": "blog",
        "DB_CONN_MAX_AGE": "60",
        "ALLOWED_HOSTS": "",
        "CSRF_TRUSTED_ORIGINS": "",
        "STATIC_URL": "/static/",
        "DJANGO_SETTINGS_MODULE": "mysite.settings",
        "DJANGOOPS_WSGI_APP": "mysite.wsgi:application",
        "STATIC_ROOT": "/opt/djangoops-blog/current/static",
        "APP_VERSION": "1.0",
        "APP_RELEASE_COLOUR": "orange",
    }
    assert env["secrets"] == {
        "SECRET_KEY": "s" * 40,
        "DB_PASSWORD": "db-pass",
        "DATABASE_URL": "postgres://blog:db-pass@10.0.0.5:5432/blog",
    }


def test_vms_version_is_a_string_and_extra_comes_last():
    env = filters.app_environment(settings(extra_environment={"APP_VERSION": "x", "N": 7}), "vms", **dict(VMS, version=2))
    assert env["config"]["APP_VERSION"] == "x"
    assert list(env["config"])[-1] == "N"
    assert filters.app_environment(settings(), "vms", **dict(VMS, version=2))["config"]["APP_VERSION"] == "2"


def test_both_targets_share_the_settings():
    vms = filters.app_environment(settings(debug=True, allowed_hosts=["a"]), "vms", **VMS)
    k8s = filters.app_environment(settings(debug=True, allowed_hosts=["a"]), "kubernetes", **dict(K8S, database_host="10.0.0.5"))
    shared = ["DEBUG", "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_CONN_MAX_AGE", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "STATIC_URL"]
    assert [vms["config"][key] for key in shared] == [k8s["config"][key] for key in shared]
    assert vms["secrets"] == k8s["secrets"]


# --- app_environment: the database URL --------------------------------------------------


def test_database_url_quotes_user_password_and_name():
    env = filters.app_environment(
        settings(database_user="u@x", database_password="p:/@?#% &", database_name="my db", database_port="6432"),
        "vms", **VMS,
    )
    url = env["secrets"]["DATABASE_URL"]
    assert url == "postgres://u%40x:p%3A%2F%40%3F%23%25%20%26@10.0.0.5:6432/my%20db"
    # what the sample blog's dj_database_url reads back
    from urllib.parse import unquote, urlsplit
    parts = urlsplit(url)
    assert (unquote(parts.username), unquote(parts.password), parts.hostname, parts.port, unquote(parts.path[1:])) == (
        "u@x", "p:/@?#% &", "10.0.0.5", 6432, "my db",
    )
    assert "DATABASE_URL" not in env["config"]


def test_database_url_puts_an_ipv6_host_in_brackets():
    env = filters.app_environment(settings(), "vms", **dict(VMS, database_host="fd00::5"))
    assert env["secrets"]["DATABASE_URL"] == "postgres://blog:db-pass@[fd00::5]:5432/blog"


# --- app_environment: the app's names --------------------------------------------------


def test_default_names_are_the_blogs():
    assert filters.DEFAULT_NAMES == {
        "secret_key": "SECRET_KEY", "database_url": "DATABASE_URL", "allowed_hosts": "ALLOWED_HOSTS",
        "csrf_trusted_origins": "CSRF_TRUSTED_ORIGINS", "static_url": "STATIC_URL", "debug": "DEBUG",
        "db_host": "DB_HOST", "db_port": "DB_PORT", "db_name": "DB_NAME", "db_user": "DB_USER",
        "db_password": "DB_PASSWORD", "db_conn_max_age": "DB_CONN_MAX_AGE",
        "media_url": "MEDIA_URL", "https_redirect": "DJANGO_SECURE_SSL_REDIRECT",
        "secure_cookies": "DJANGO_SECURE_COOKIES", "broker_url": "CELERY_BROKER_URL",
    }


@pytest.mark.parametrize("target, options", [("vms", VMS), ("kubernetes", K8S)])
@pytest.mark.parametrize("names", [None, {}, dict(filters.DEFAULT_NAMES)])
def test_default_names_leave_the_environment_unchanged(target, options, names):
    assert filters.app_environment(settings(), target, **dict(options, names=names)) == filters.app_environment(
        settings(), target, **options
    )


def test_kubernetes_default_names_hash_as_before():
    env = filters.app_environment(settings(), "kubernetes", **dict(K8S, names={}))
    plain = filters.app_environment(settings(), "kubernetes", **K8S)
    assert json.dumps(env["config"]) == json.dumps(plain["config"])
    assert json.dumps(env["secrets"]) == json.dumps(plain["secrets"])


def test_a_renamed_setting_keeps_its_place_and_its_half():
    names = {"secret_key": "DJANGO_SECRET_KEY", "debug": "DJANGO_DEBUG", "database_url": "DB_URL", "db_password": "PGPASSWORD"}
    env = filters.app_environment(settings(), "vms", **dict(VMS, names=names))
    assert list(env["config"])[0] == "DJANGO_DEBUG"
    assert "DEBUG" not in env["config"]
    assert env["config"]["DJANGO_DEBUG"] == "false"
    assert env["secrets"] == {
        "DJANGO_SECRET_KEY": "s" * 40,
        "PGPASSWORD": "db-pass",
        "DB_URL": "postgres://blog:db-pass@10.0.0.5:5432/blog",
    }
    k8s = filters.app_environment(settings(), "kubernetes", **dict(K8S, database_url="postgres://x/y", names=names))
    assert k8s["secrets"] == {"DJANGO_SECRET_KEY": "s" * 40, "DB_URL": "postgres://x/y"}


@pytest.mark.parametrize(
    "names, message",
    [
        ({"secret": "X"}, "names: unknown key secret"),
        ({"debug": "1DEBUG"}, "names: debug is '1DEBUG', not an environment variable name"),
        ({"debug": "MY-DEBUG"}, "not an environment variable name"),
        ({"debug": "DEBUG\n"}, "not an environment variable name"),
        ({"debug": ""}, "not an environment variable name"),
        ({"debug": 5}, "not an environment variable name"),
        ({"debug": "STATIC_URL"}, "names: static_url and debug both map to STATIC_URL"),
        ({"db_user": "U", "db_name": "U"}, "db_name and db_user both map to U"),
        ({"static_url": "STATIC_ROOT"}, "static_url is STATIC_ROOT, a name the collection sets itself"),
        (["DEBUG"], "names: must be a dictionary"),
    ],
)
def test_wrong_names_are_refused(names, message):
    for target, options in (("vms", VMS), ("kubernetes", K8S)):
        with pytest.raises(AnsibleFilterError, match=message):
            filters.app_environment(settings(), target, **dict(options, names=names))


def test_app_environment_names_reports_problems_without_raising():
    assert filters.app_environment_names({}) == {"names": filters.DEFAULT_NAMES, "problems": []}
    assert filters.app_environment_names(None)["problems"] == []
    result = filters.app_environment_names({"secret_key": "DJANGO_SECRET_KEY"})
    assert result["names"]["secret_key"] == "DJANGO_SECRET_KEY"
    assert result["names"]["debug"] == "DEBUG"
    assert result["problems"] == []
    problems = filters.app_environment_names({"bogus": "X", "debug": "9", "db_host": "DB_PORT"})["problems"]
    assert len(problems) == 3
    assert problems[0].startswith("unknown key bogus")


# --- app_environment: extra secrets ----------------------------------------------------


def test_extra_secrets_go_to_the_secrets_only():
    env = filters.app_environment(
        settings(extra_secrets={"API_KEY": "k", "DEBUG": "true"}, extra_environment={"PLAIN": "p"}), "kubernetes", **K8S,
    )
    assert env["secrets"]["API_KEY"] == "k"
    assert list(env["secrets"])[-2:] == ["API_KEY", "DEBUG"]
    assert "API_KEY" not in env["config"]
    # a plain setting of the same name leaves the config half: the secret is what the app reads
    assert "DEBUG" not in env["config"]
    assert env["config"]["PLAIN"] == "p"


def test_extra_secrets_replace_a_secret_of_the_same_name():
    env = filters.app_environment(settings(extra_secrets={"DATABASE_URL": "postgres://ext/db"}), "vms", **VMS)
    assert env["secrets"]["DATABASE_URL"] == "postgres://ext/db"


def test_no_extra_secrets_is_the_same_as_none():
    assert filters.app_environment(settings(extra_secrets={}), "vms", **VMS) == filters.app_environment(settings(), "vms", **VMS)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"extra_secrets": {"A": "1"}, "extra_environment": {"A": "2"}}, "A in both extra_environment and extra_secrets"),
        ({"extra_secrets": {"bad-name": "1"}}, "extra_secrets: 'bad-name' not environment variable names"),
        ({"extra_environment": {"1ABC": "1"}}, "extra_environment: '1ABC' not environment variable names"),
        ({"extra_environment": {5: "1"}}, "extra_environment: 5 not environment variable names"),
        ({"extra_secrets": ["A=1"]}, "extra_secrets must be a dictionary"),
    ],
)
def test_wrong_extra_variables_are_refused(changes, message):
    with pytest.raises(AnsibleFilterError, match=message):
        filters.app_environment(settings(**changes), "vms", **VMS)


# --- app_environment: wrong input ------------------------------------------------------


@pytest.mark.parametrize(
    "value, target, options, message",
    [
        ("not a dict", "vms", VMS, "must be a dictionary"),
        (settings(), "docker", VMS, "use vms or kubernetes"),
        ({k: v for k, v in settings().items() if k != "debug"}, "vms", VMS, "settings: missing debug"),
        (settings(secret_key_typo="x"), "vms", VMS, "settings: unknown secret_key_typo"),
        (settings(), "vms", {k: v for k, v in VMS.items() if k != "static_root"}, "target vms: missing static_root"),
        (settings(), "vms", dict(VMS, database_url="postgres://x"), "target vms: unknown database_url"),
        (settings(), "kubernetes", dict(K8S, static_root="/x"), "target kubernetes: unknown static_root"),
        (settings(), "kubernetes", {k: v for k, v in K8S.items() if k != "database_host"}, "missing database_host"),
        (settings(extra_environment=["A=1"]), "vms", VMS, "extra_environment must be a dictionary"),
    ],
)
def test_wrong_input_is_refused_naming_it(value, target, options, message):
    with pytest.raises(AnsibleFilterError, match=message):
        filters.app_environment(value, target, **options)


# --- k8s_job_pods_state: pods as the API returns them ----------------------------------


def pod(phase, *container_states, name="blog-migrate-abc12"):
    """A Pod of a migration Job as kubernetes.core.k8s_info returns it (trimmed)."""
    status = {
        "phase": phase,
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "hostIP": "10.0.0.2",
        "qosClass": "Burstable",
        "startTime": "2026-12-03T08:00:00Z",
    }
    if container_states:
        status["containerStatuses"] = [
            {
                "name": "migrate",
                "image": "127.0.0.1:5000/djangoops/djangoops-blog:1.0-orange",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "started": False,
                "state": state,
                "lastState": {},
            }
            for state in container_states
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "djangoops", "labels": {"job-name": "blog-migrate"}},
        "spec": {"restartPolicy": "Never"},
        "status": status,
    }


def waiting(reason, message=None):
    state = {"reason": reason}
    if message is not None:
        state["message"] = message
    return {"waiting": state}


SUCCEEDED = pod("Succeeded", {"terminated": {"exitCode": 0, "reason": "Completed"}})
FAILED = pod("Failed", {"terminated": {"exitCode": 1, "reason": "Error"}})
RUNNING = pod("Running", {"running": {"startedAt": "2026-12-03T08:00:05Z"}})
SCHEDULED = pod("Pending")
CREATING = pod("Pending", waiting("ContainerCreating"))
ERR_IMAGE_PULL = pod(
    "Pending",
    waiting("ErrImagePull", 'rpc error: code = NotFound desc = failed to pull and unpack image "127.0.0.1:5000/x:9": not found'),
)
IMAGE_PULL_BACKOFF = pod("Pending", waiting("ImagePullBackOff", 'Back-off pulling image "127.0.0.1:5000/x:9"'))
CONFIG_ERROR = pod("Pending", waiting("CreateContainerConfigError", 'secret "blog-env-0123456789" not found'))


@pytest.mark.parametrize(
    "pods, done",
    [
        ([], False),
        ([SCHEDULED], False),
        ([CREATING], False),
        ([RUNNING], False),
        ([SUCCEEDED], True),
        ([FAILED], True),
        ([RUNNING, FAILED], True),
    ],
)
def test_done_when_a_pod_finished(pods, done):
    assert filters.k8s_job_pods_state(pods) == {"done": done, "stuck": []}


def test_image_pull_errors_are_stuck():
    state = filters.k8s_job_pods_state([ERR_IMAGE_PULL, IMAGE_PULL_BACKOFF])
    assert state == {
        "done": False,
        "stuck": [
            'ErrImagePull: rpc error: code = NotFound desc = failed to pull and unpack image "127.0.0.1:5000/x:9": not found',
            'ImagePullBackOff: Back-off pulling image "127.0.0.1:5000/x:9"',
        ],
    }


def test_a_missing_secret_is_stuck():
    assert filters.k8s_job_pods_state([CONFIG_ERROR])["stuck"] == [
        'CreateContainerConfigError: secret "blog-env-0123456789" not found'
    ]


@pytest.mark.parametrize("reason", ["InvalidImageName", "CreateContainerError"])
def test_other_reasons_waiting_does_not_cure(reason):
    assert filters.k8s_job_pods_state([pod("Pending", waiting(reason, "m"))])["stuck"] == [f"{reason}: m"]


def test_stuck_message_is_cut_and_may_be_missing():
    state = filters.k8s_job_pods_state([pod("Pending", waiting("ImagePullBackOff", "x" * 500), waiting("ErrImagePull"))])
    assert state["stuck"] == ["ImagePullBackOff: " + "x" * 300, "ErrImagePull: "]


def test_done_and_stuck_together():
    assert filters.k8s_job_pods_state([FAILED, IMAGE_PULL_BACKOFF]) == {
        "done": True,
        "stuck": ['ImagePullBackOff: Back-off pulling image "127.0.0.1:5000/x:9"'],
    }


def test_pods_must_be_a_list():
    with pytest.raises(AnsibleFilterError, match="list of pods"):
        filters.k8s_job_pods_state({"resources": []})


# --- release_fingerprint and release_archive_path --------------------------------------


@pytest.mark.parametrize(
    "text, fingerprint",
    [
        (None, ""),
        ("", ""),
        ("{}", ""),
        ('{"fingerprint": null}', ""),
        ("[1, 2]", ""),
        ('{"name": "djangoops-blog", "fingerprint": "0123456789abcdef0123"}', "0123456789abcdef0123"),
    ],
)
def test_release_fingerprint(text, fingerprint):
    assert filters.release_fingerprint(text) == fingerprint


def test_release_fingerprint_refuses_text_that_is_not_json():
    with pytest.raises(AnsibleFilterError, match="not JSON"):
        filters.release_fingerprint("{not json")


# --- release_python_version and python_major_minor --------------------------------------


@pytest.mark.parametrize(
    "text, version",
    [
        (None, ""),
        ("", ""),
        ("{}", ""),
        ('{"python_version": null}', ""),
        ("[1, 2]", ""),
        ('{"name": "djangoops-blog", "python_version": "3.11"}', "3.11"),
        ('{"python_version": "3.13.1"}', "3.13"),
    ],
)
def test_release_python_version(text, version):
    assert filters.release_python_version(text) == version


def test_release_python_version_refuses_text_that_is_not_json():
    with pytest.raises(AnsibleFilterError, match="not JSON"):
        filters.release_python_version("{not json")


def test_release_python_version_refuses_a_version_that_is_not_one():
    with pytest.raises(AnsibleFilterError, match="not a Python version"):
        filters.release_python_version('{"python_version": "three"}')


@pytest.mark.parametrize(
    "value, version",
    [
        (None, ""),
        ("", ""),
        ("3.11", "3.11"),
        (" 3.11\n", "3.11"),
        ("3.13.1", "3.13"),
        ("3.14.0rc1", "3.14"),
        ("3.09", "3.9"),
        (3.12, "3.12"),
    ],
)
def test_python_major_minor(value, version):
    assert filters.python_major_minor(value) == version


@pytest.mark.parametrize("value", ["3", "three", "3.x", "v3.11", "3.11 x"])
def test_python_major_minor_refuses_what_is_not_a_version(value):
    with pytest.raises(AnsibleFilterError, match="not a Python version"):
        filters.python_major_minor(value)


@pytest.mark.parametrize(
    "args, path",
    [
        (("/r", "djangoops-blog", "1.0", "orange"), "/r/djangoops-blog-1.0-orange.tar.gz"),
        (("/r", "team/sub/blog", "2.3", "maroon"), "/r/team-sub-blog-2.3-maroon.tar.gz"),
        (("/r", "blog", 2, "orange"), "/r/blog-2-orange.tar.gz"),
    ],
)
def test_release_archive_path(args, path):
    assert filters.release_archive_path(*args) == path


# --- cache_dir ----------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "args", "path"), [
    ({"XDG_CACHE_HOME": "/x", "HOME": "/h"}, ("",), "/x/djangoops"),
    ({"XDG_CACHE_HOME": "", "HOME": "/h"}, ("",), "/h/.cache/djangoops"),
    ({"HOME": "/h"}, ("", "releases"), "/h/.cache/djangoops/releases"),
    ({"XDG_CACHE_HOME": "/x", "HOME": "/h"}, ("", "releases", "/mine"), "/mine/releases"),
    ({"XDG_CACHE_HOME": "/x", "HOME": "/h"}, ("/given", "releases", "/mine"), "/given"),
    ({"HOME": "/h"}, (None, "releases", None), "/h/.cache/djangoops/releases"),
])
def test_cache_dir(monkeypatch, env, args, path):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert filters.cache_dir(*args) == path


# --- app_manage_commands ----------------------------------------------------------------


@pytest.mark.parametrize(
    "given,commands",
    [
        (None, []),
        ([], []),
        (["createcachetable"], [["createcachetable"]]),
        (["loaddata initial.json", ["loaddata", "two words.json"]], [["loaddata", "initial.json"], ["loaddata", "two words.json"]]),
        (["loaddata 'two words.json' --verbosity 0"], [["loaddata", "two words.json", "--verbosity", "0"]]),
        # shlex splits words, nothing of a shell applies: ; $ | stay words for call_command
        (["check; rm -rf / $HOME | x"], [["check;", "rm", "-rf", "/", "$HOME", "|", "x"]]),
        ([("check",)], [["check"]]),
    ],
)
def test_app_manage_commands_gives_argv_lists_in_order(given, commands):
    result = filters.app_manage_commands(given)
    assert result["problems"] == []
    assert result["commands"] == commands


@pytest.mark.parametrize(
    "given,problem",
    [
        ("createcachetable", "must be a list"),
        ({"a": 1}, "must be a list"),
        ([""], "item 1 is empty"),
        (["   "], "item 1 is empty"),
        ([[]], "item 1 is empty"),
        ([[""]], "item 1 is empty"),
        (["check", "--noinput"], "item 2 starts with the option '--noinput'"),
        ([["loaddata", 1]], "item 1: every word must be a string, not 1"),
        ([["loaddata", None]], "every word must be a string"),
        ([3], "item 1 is of type int"),
        ([{"loaddata": "x"}], "item 1 is of type dict"),
        (["loaddata 'open"], "cannot be split into words"),
    ],
)
def test_app_manage_commands_reports_problems_without_raising(given, problem):
    result = filters.app_manage_commands(given)
    assert any(problem in p for p in result["problems"]), result["problems"]


def test_app_manage_commands_keeps_the_valid_ones():
    result = filters.app_manage_commands(["check", "", ["createcachetable"]])
    assert result["commands"] == [["check"], ["createcachetable"]]
    assert len(result["problems"]) == 1


def test_app_manage_commands_marker_is_the_hash_of_the_argv_lists():
    result = filters.app_manage_commands(["loaddata initial.json"])
    assert result["marker"] == hashlib.sha256(b'[["loaddata","initial.json"]]').hexdigest()
    # the same commands written either way are the same list, and the same marker
    assert filters.app_manage_commands([["loaddata", "initial.json"]])["marker"] == result["marker"]
    assert filters.app_manage_commands(["loaddata other.json"])["marker"] != result["marker"]
    # the order is part of it
    assert (filters.app_manage_commands(["check", "createcachetable"])["marker"]
            != filters.app_manage_commands(["createcachetable", "check"])["marker"])


def test_app_manage_commands_marker_is_empty_without_commands():
    assert filters.app_manage_commands([])["marker"] == ""
    assert filters.app_manage_commands(None) == {"commands": [], "problems": [], "marker": ""}


def test_the_script_variables_are_reserved_names():
    for name in ("DJANGOOPS_MANAGE_COMMANDS", "DJANGOOPS_SUPERUSER_RESET"):
        _, problems = filters.environment_names({"secret_key": name})
        assert any("a name the collection sets itself" in p for p in problems)


def test_filter_names():
    assert sorted(filters.FilterModule().filters()) == [
        "app_environment", "app_environment_names", "app_manage_commands", "cache_dir", "k8s_changed", "k8s_job_pods_state",
        "python_major_minor", "release_archive_path", "release_fingerprint", "release_python_version",
    ]


# --- app_environment: uploads in a bucket ----------------------------------------------

MEDIA = {"bucket": "uploads", "endpoint_url": "http://10.0.0.1:7070", "region": "us-east-1", "location": "",
         "public_url": "", "access_key": "AK", "secret_key": "SK"}


def test_no_bucket_changes_nothing():
    plain = filters.app_environment(settings(), "kubernetes", **K8S)
    empty = filters.app_environment(settings(media_bucket=dict(MEDIA, bucket="")), "kubernetes", **K8S)
    assert plain == empty
    assert not [k for k in plain["config"] if k.startswith("DJANGOOPS_")]


def test_a_bucket_lays_the_collections_settings_over_the_projects_with_secret_credentials():
    env = filters.app_environment(settings(media_bucket=MEDIA), "kubernetes", **K8S)
    assert env["config"]["DJANGO_SETTINGS_MODULE"] == "djangoops_settings"
    assert "DJANGOOPS_PROJECT_SETTINGS" not in env["config"]  # the image names it
    assert env["config"]["DJANGOOPS_MEDIA_BUCKET"] == "uploads"
    assert env["config"]["DJANGOOPS_MEDIA_ENDPOINT_URL"] == "http://10.0.0.1:7070"
    assert "DJANGOOPS_MEDIA_LOCATION" not in env["config"]  # empty values are left out
    assert env["secrets"]["DJANGOOPS_MEDIA_ACCESS_KEY"] == "AK" and env["secrets"]["DJANGOOPS_MEDIA_SECRET_KEY"] == "SK"
    assert "AK" not in env["config"].values() and "SK" not in env["config"].values()
    vms = filters.app_environment(settings(media_bucket=MEDIA), "vms", **VMS)
    assert vms["config"]["DJANGOOPS_PROJECT_SETTINGS"] == "mysite.settings"


def test_on_vms_the_overlay_is_found_in_the_lib_dir_only_when_a_bucket_is_set():
    """manage.py runs on a VM import djangoops_settings from the folder beside the releases."""
    lib = {**VMS, "lib_dir": "/opt/blog/lib"}
    assert filters.app_environment(settings(media_bucket=MEDIA), "vms", **lib)["config"]["PYTHONPATH"] == "/opt/blog/lib"
    assert "PYTHONPATH" not in filters.app_environment(settings(), "vms", **lib)["config"]
    assert "PYTHONPATH" not in filters.app_environment(settings(media_bucket=MEDIA), "vms", **VMS)["config"]


def test_media_names_are_the_collections_own():
    names = filters.app_environment_names({"secret_key": "DJANGOOPS_MEDIA_BUCKET"})
    assert names["problems"] and "sets itself" in names["problems"][0]


def test_an_unknown_media_key_is_refused():
    with pytest.raises(AnsibleFilterError, match="media_bucket: unknown key bucket_name"):
        filters.app_environment(settings(media_bucket={"bucket_name": "x"}), "kubernetes", **K8S)


# --- app_environment: MEDIA_URL and the secure-proxy switches, by the project's names ----

def test_media_url_and_https_are_left_out_unless_set():
    """Deployments that set neither get the same environment as before (the ConfigMap's hash)."""
    for target, options in (("vms", VMS), ("kubernetes", K8S)):
        plain = filters.app_environment(settings(), target, **options)
        unset = filters.app_environment(settings(media_url="", https=None), target, **options)
        assert plain == unset
        assert not {"MEDIA_URL", "DJANGO_SECURE_SSL_REDIRECT", "DJANGO_SECURE_COOKIES"} & set(plain["config"])


@pytest.mark.parametrize("https", [True, False])
def test_https_sets_both_switches_under_the_projects_names(https):
    env = filters.app_environment(settings(https=https, media_url="/uploads/"), "kubernetes", **K8S)
    word = "true" if https else "false"
    assert env["config"]["DJANGO_SECURE_SSL_REDIRECT"] == word and env["config"]["DJANGO_SECURE_COOKIES"] == word
    assert env["config"]["MEDIA_URL"] == "/uploads/"
    named = filters.app_environment(settings(https=https, media_url="/uploads/"), "vms",
                                    **dict(VMS, names={"https_redirect": "GALLERY_HTTPS", "secure_cookies": "",
                                                       "media_url": "GALLERY_MEDIA_URL"}))
    assert named["config"]["GALLERY_HTTPS"] == word and named["config"]["GALLERY_MEDIA_URL"] == "/uploads/"
    assert not {"DJANGO_SECURE_SSL_REDIRECT", "DJANGO_SECURE_COOKIES", "MEDIA_URL"} & set(named["config"])


def test_https_must_be_a_boolean():
    with pytest.raises(AnsibleFilterError, match="https must be true, false or None"):
        filters.app_environment(settings(https="yes"), "vms", **VMS)


def test_only_the_optional_settings_may_have_no_name():
    assert filters.app_environment_names({"media_url": "", "secure_cookies": "", "https_redirect": ""})["problems"] == []
    problems = filters.app_environment_names({"secret_key": ""})["problems"]
    assert problems and "secret_key is ''" in problems[0] and "or empty" not in problems[0]
    problems = filters.app_environment_names({"media_url": "media-url"})["problems"]
    assert problems and "or empty (the project reads none)" in problems[0]
    # two optional settings may not share a name either
    assert filters.app_environment_names({"https_redirect": "X_HTTPS", "secure_cookies": "X_HTTPS"})["problems"]


# --- k8s_changed: kubernetes.core.k8s results, as its runner returns them ---------------


def applied(before=None, after=None, method="apply", changed=True, diff=True):
    """One object's result: diff holds only what differed (ansible's recursive_diff)."""
    result = {"changed": changed, "method": method, "result": {"kind": "Deployment"}}
    if diff:
        result["diff"] = {"before": before or {}, "after": after or {}} if before or after else {}
    return result


STATUS_MOVED = applied(
    before={"status": {"readyReplicas": 2, "conditions": [{"type": "Available", "lastUpdateTime": "08:00:00"}]},
            "metadata": {"resourceVersion": "101"}},
    after={"status": {"readyReplicas": 3, "conditions": [{"type": "Available", "lastUpdateTime": "08:00:05"}]},
           "metadata": {"resourceVersion": "102"}})
IMAGE_CHANGED = applied(
    before={"spec": {"template": {"spec": {"containers": [{"image": "blog@sha256:aa"}]}}},
            "metadata": {"generation": 3}, "status": {"observedGeneration": 3}},
    after={"spec": {"template": {"spec": {"containers": [{"image": "blog@sha256:bb"}]}}},
           "metadata": {"generation": 4}, "status": {"observedGeneration": 4}})
LABEL_CHANGED = applied(before={"metadata": {"labels": {"tier": "a"}, "resourceVersion": "1"}},
                        after={"metadata": {"labels": {"tier": "b"}, "resourceVersion": "2"}})


@pytest.mark.parametrize("result, changed", [
    (STATUS_MOVED, False),
    (applied(before={"metadata": {"managedFields": [1]}}, after={"metadata": {"managedFields": [2]}}), False),
    (IMAGE_CHANGED, True),
    (LABEL_CHANGED, True),
    (applied(method="create", diff=False), True),
    (applied(method="delete", diff=False), True),
    (applied(changed=False, diff=False), False),
    # no diff to read (the task ran without diff: true): as reported
    (applied(diff=False), True),
], ids=["status only", "managed fields only", "image", "label", "created", "deleted", "unchanged", "no diff"])
def test_k8s_changed_reads_one_object(result, changed):
    assert filters.k8s_changed(result) is changed


def test_k8s_changed_reads_each_object_of_a_task():
    """A Deployment whose status moved, an autoscaler whose figure moved: no change; any
    object whose manifest changed makes the task changed."""
    hpa_moved = applied(before={"status": {"currentMetrics": [{"value": "3%"}]}},
                        after={"status": {"currentMetrics": [{"value": "4%"}]}})
    unchanged = applied(changed=False)
    assert filters.k8s_changed({"changed": True, "result": {"results": [STATUS_MOVED, hpa_moved, unchanged]}}) is False
    assert filters.k8s_changed({"changed": True, "result": {"results": [STATUS_MOVED, IMAGE_CHANGED]}}) is True
    assert filters.k8s_changed({"changed": False, "result": {"results": [unchanged, unchanged]}}) is False


@pytest.mark.parametrize("bad", [None, "changed", ["a"]])
def test_k8s_changed_refuses_what_is_no_result(bad):
    with pytest.raises(AnsibleFilterError, match="k8s_changed: the input must be a kubernetes.core.k8s result"):
        filters.k8s_changed(bad)


def test_the_broker_url_is_a_secret_under_the_projects_name_and_absent_when_empty():
    broker = dict(settings(), broker_url="redis://:pw@10.0.0.1:6379/0")
    env = filters.app_environment(broker, "kubernetes", **K8S, names={"broker_url": "GALLERY_BROKER_URL"})
    assert env["secrets"]["GALLERY_BROKER_URL"] == "redis://:pw@10.0.0.1:6379/0"
    assert "GALLERY_BROKER_URL" not in env["config"] and "CELERY_BROKER_URL" not in env["secrets"]
    assert "CELERY_BROKER_URL" not in filters.app_environment(settings(), "kubernetes", **K8S)["secrets"]
    # a project that reads none leaves it out
    assert "CELERY_BROKER_URL" not in filters.app_environment(broker, "kubernetes", **K8S,
                                                          names={"broker_url": ""})["secrets"]
