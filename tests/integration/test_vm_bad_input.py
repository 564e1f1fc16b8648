"""Bad input to deploy.yml stops before any change, with a message naming the variable.

Each case runs the real playbook against the lab inventory (the lab need not exist):
it must fail, name the variable, report no changed task, and leave every Docker
container as it was.
"""

from __future__ import annotations

import re

import pytest
import yaml

import vm_helpers as vm
from pem import certificate_pem, key_pem, new_key

# A certificate with the key of another one: the run must stop before any change, and
# never show the key.
OTHER_KEY = key_pem(new_key())

# Bad values in batches: a role checks all its inputs in one step and names every bad one
# in one message, so one run proves each value of a batch is caught before any change (a
# run each cost the suite about 8 s). A batch holds values one step catches: the deploy
# stops at the first step that finds one (the target, the image's checks on the
# controller, then each role's argument spec and checks on its hosts, in the play's
# order). Needles are pieces of the messages, read in PlaybookResult.said (the whitespace
# and the YAML callback's doubled quotes taken out): an argument spec error prints the whole spec, so a
# bare variable name would prove nothing there.
CASES = {
    "unknown target": ({"target": "openstack"}, ["value of target must be one of: vms, kubernetes, got: openstack"]),
    "image name, colour and environment names": (
        {"image_colour": "Orange Red", "image_name": "Not/Valid Name", "app_environment_names": {"secret_key": "MY-SECRET"}},
        ["image_name 'Not/Valid Name' is not a valid repository name", "image_colour 'Orange Red' must be one lowercase word",
         "secret_key is 'MY-SECRET', not an environment variable name"]),
    "empty database password, listen address not an IP, database TLS without its certificate": (
        {"database_password": "", "database_listen_address": "db.example", "database_tls_mode": "provided",
         "database_tls_certificate": "", "database_tls_private_key": OTHER_KEY},
        ["database_password is empty, unset or the CHANGE-ME placeholder",
         "database_listen_address 'db.example' must be empty", "database_tls_certificate must be"]),
    "vault placeholder left in": ({"database_password": "CHANGE-ME"},
                                  ["database_password is empty, unset or the CHANGE-ME placeholder"]),
    "app values of the wrong type": (
        {"app_gunicorn_workers": "many", "app_database_sslmode": "strict"},
        ["argument 'app_gunicorn_workers' is of type str and we were unable to convert to int",
         "value of app_database_sslmode must be one of"]),
    "app values out of range": (
        {"app_gunicorn_workers": 0, "app_secret_key": "too-short", "app_db_conn_max_age": -1,
         "app_allowed_hosts": "blog.example.com", "app_health_path": "healthz", "app_ready_path": "/ready now",
         "app_manage_commands": "migrate --fake",
         "app_scheduled_commands": [{"name": "clear", "schedule": "every day", "command": "clearsessions"}]},
        ["app_gunicorn_workers is 0", "app_secret_key is unset, shorter than 32 characters",
         "app_db_conn_max_age is -1", "app_allowed_hosts must be a list, not 'blog.example.com'",
         "app_health_path is 'healthz'", "app_ready_path is '/ready now'", "app_manage_commands: must be a list",
         "app_scheduled_commands: item 1 (clear): schedule 'every day' is not a cron schedule"]),
    "broker password too short": ({"broker_password": "short"}, ["broker_password must be set (from Ansible Vault), 16 to 128"]),
    "every app host drained": ({"service_drained_hosts": ["app1", "app2"]},
                               ["service_drained_hosts drains every host of group 'app'"]),
    "drained host unknown": ({"service_drained_hosts": ["app9"]},
                             ["service_drained_hosts names hosts that are not in group 'app': app9"]),
    "uploads bucket that does not answer": ({"app_media_bucket": "uploads-check", "bucket_endpoint_url": "http://127.0.0.1:9",
                                             "bucket_access_key": "AK", "bucket_secret_key": "SK"}, ["bucket_endpoint_url"]),
    "uploads bucket without a key": ({"app_media_bucket": "uploads-check", "bucket_endpoint_url": "http://127.0.0.1:7070",
                                      "bucket_access_key": "", "bucket_secret_key": "SK"}, ["bucket_access_key"]),
    "site certificate with another's key": ({"service_tls_mode": "provided", "service_tls_certificate": certificate_pem(new_key()),
                                             "service_tls_private_key": OTHER_KEY},
                                            ["service_tls_private_key is not the key of service_tls_certificate"]),
    # the test S3 server's own keys (tests/run reads them), so only the URL is wrong
    "static files bucket with a relative URL": ({"static_assets_bucket": "static-check", "app_static_url": "/static/",
                                                 "bucket_endpoint_url": "http://127.0.0.1:7070",
                                                 "bucket_access_key": "{{ lookup('env', 'DJANGOOPS_S3_ACCESS_KEY') }}",
                                                 "bucket_secret_key": "{{ lookup('env', 'DJANGOOPS_S3_SECRET_KEY') }}"},
                                                ["static_assets_bucket_url"]),
}


def _assert_stopped_cleanly(result, needle, before):
    """Refused before any change; needle (None: none) in the output as it was printed."""
    assert result.rc != 0, result.output[-3000:]
    assert needle is None or needle in result.output, result.output[-3000:]
    assert result.changed == 0, result.recap
    assert not re.search(r"^changed: \[", result.output, re.MULTILINE)
    assert vm.container_state() == before, "a container was created, removed or restarted"


@pytest.mark.parametrize("extra_vars,needles", list(CASES.values()), ids=list(CASES))
def test_bad_values_stop_before_any_change_each_named(extra_vars, needles):
    before = vm.container_state()
    result = vm.deploy(vm.LAB, extra_vars=extra_vars)
    _assert_stopped_cleanly(result, None, before)
    said = result.said
    missing = [needle for needle in needles if needle not in said]
    assert not missing, (missing, said[-3000:])
    assert OTHER_KEY.splitlines()[1] not in result.output, "a private key was shown"


# Values that reach a template (the NGINX site, the systemd unit, the environment file):
# all bad at once, since djangoops.stack.input_problems names each one in one message, so
# one run per role proves every variable is checked before any change.
TEMPLATE_INPUTS = {
    "app": {
        "app_allowed_hosts": [],  # every page would answer 400
        "app_csrf_trusted_origins": ["blog.example.com"],
        "app_forwarded_allow_ips": ["any"],
        "app_user": "root user",
        "app_base_dir": "/",
        "app_bind_address": "0.0.0.0 --workers 99",
        "app_extra_environment": {"DJANGO_X": "1\nExecStartPre=/bin/sh -c id"},
        "app_extra_secrets": {"TOKEN": "never-shown\nX=1"},
    },
    "service": {
        "service_server_name": "blog.example.com;\n    return 301",
        "service_client_max_body_size": "10 mb",
        "service_static_url": "/static",
        "service_static_root": "/var/www/../etc",
        "service_upstream_fail_timeout": 0,
        "service_proxy_read_timeout": "a minute",
        "service_private_paths": ["/_djangoops"],
        "service_trusted_proxies": ["the CDN"],
        "service_tls_port": 80,  # service_listen_port's
    },
    "database": {"database_client_addresses": ["db.example.com", "10.0.0.0/33"]},
}


@pytest.mark.parametrize("role", list(TEMPLATE_INPUTS))
def test_every_template_input_is_checked_before_any_change(role):
    before = vm.container_state()
    bad = TEMPLATE_INPUTS[role]
    result = vm.deploy(vm.LAB, extra_vars=bad)
    _assert_stopped_cleanly(result, next(iter(bad)), before)
    for name in bad:
        assert name in result.output, f"{name} is not named: {result.output[-3000:]}"
    assert "never-shown" not in result.output


def test_bad_process_types_and_broker_url_are_each_named_before_any_change():
    """app_processes and app_broker_url (background work): every bad item is named in one
    message, before any change, and the broker URL's password is never shown."""
    before = vm.container_state()
    result = vm.deploy(vm.LAB, extra_vars={
        "app_processes": [
            {"name": "worker"},
            {"name": "mailer", "command": "celery -A proj worker -Q mail", "count": -1},
            {"name": "beat", "command": "celery -A proj beat", "singleton": True, "count": 2},
            {"name": "thumbs", "command": "celery -A proj worker", "group": "workers"},
        ],
        "app_broker_url": "http://:never-shown@broker.example:6379/0",
    })
    _assert_stopped_cleanly(result, "app_processes: item 1 (worker) has no command", before)
    for needle in ("item 2 (mailer): count must be a whole number, 0 or more, not -1",
                   "item 3 (beat): a singleton runs exactly once", "workers is not a group of the inventory",
                   "app_broker_url must start with redis://"):
        assert needle in result.output, f"{needle!r} is not said: {result.output[-3000:]}"
    assert "never-shown" not in result.output


def test_inventory_without_app_hosts_stops_before_any_change(tmp_path):
    inventory = yaml.safe_load(vm.LAB.read_text())
    inventory["all"]["children"]["app"] = {"hosts": {}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    # the lab's group_vars come along, so only the missing group is wrong
    (tmp_path / "group_vars").symlink_to(vm.LAB.parent / "group_vars")
    before = vm.container_state()
    result = vm.deploy(tmp_path / "hosts.yml")
    _assert_stopped_cleanly(result, "group 'app' has no hosts", before)
