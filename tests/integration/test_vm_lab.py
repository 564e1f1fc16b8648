"""The default deploy: `ansible-playbook deploy.yml` on the four-host Docker lab.

The session's lab deployment (conftest.lab_deployed: a fresh lab, deploy, deploy again)
must have changed nothing on its second run; then the module checks behaviour over SSH
(testinfra) and HTTP on 127.0.0.1. test_vm_day2 goes on with the same lab afterwards.
"""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import time
import uuid
import warnings

import pytest
import requests
from cryptography import x509

import acme_ca
import vm_helpers as vm
from ansible_run import playbook
from loadgen import Load

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def converged(lab_deployed):
    return lab_deployed


@pytest.fixture(scope="module")
def hosts(converged):
    return {name: vm.ssh_host(port) for name, (_, port) in vm.LAB_HOSTS.items()}


def test_deploy_converges_and_prints_the_url(converged):
    first = converged["first"]
    assert "The app answers at https://127.0.0.1:8443/" in first.output
    assert set(first.recap) >= {"lb", "app1", "app2", "db", "localhost"}
    assert all(h["failed"] == 0 and h["unreachable"] == 0 for h in first.recap.values())
    print(f"cold deploy (fresh lab): {converged['cold_s']:.1f} s")


def test_second_run_changes_nothing(converged):
    second = converged["second"]
    assert second.rc == 0, second.output[-6000:]
    changed = {host: r["changed"] for host, r in second.recap.items() if r["changed"]}
    assert not changed, f"second run changed: {changed}\n" + "\n".join(second.changed_tasks)
    print(f"no-op re-run: {converged['noop_s']:.1f} s")


def test_check_mode_on_the_converged_lab_reports_no_change(converged, lab_run):
    """`deploy.yml --check --diff` is how a team previews a run: on a converged lab it must
    neither fail nor announce a change (nor make one: the services keep answering)."""
    check = lab_run("deploy.yml", "--check", "--diff")
    assert check.rc == 0, check.output[-6000:]
    assert all(h["failed"] == 0 and h["unreachable"] == 0 for h in check.recap.values()), check.recap
    changed = {host: r["changed"] for host, r in check.recap.items() if r["changed"]}
    assert not changed, f"--check announced changes: {changed}\n" + "\n".join(check.changed_tasks)
    assert requests.get(vm.LAB_URL, timeout=10).status_code == 200


def test_a_changed_host_key_stops_the_deploy_before_any_change(converged, lab_env, lab_dirs):
    """app2 presents another SSH host key, as a man in the middle would: deploy.yml refuses
    to talk to it (the lab's known_hosts, written by lab/lab_up.yml) and stops every host
    before any change. The run opens new connections (no ControlMaster), as a new job would."""
    def in_app2(command: str) -> None:
        subprocess.run(["docker", "exec", "djangoops-lab-app2", "sh", "-c", command], check=True, capture_output=True)

    in_app2("mkdir -p /root/hostkeys && cp -a /etc/ssh/ssh_host_* /root/hostkeys/ && rm -f /etc/ssh/ssh_host_* "
            "&& ssh-keygen -A && systemctl restart ssh")
    try:
        before = vm.container_state()
        result = playbook("-i", str(vm.LAB.parent), "deploy.yml", extra_vars=lab_dirs,
                          env={**lab_env, "ANSIBLE_SSH_ARGS": "-o ControlMaster=no"})
        assert result.rc != 0, result.output[-4000:]
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in result.output or "Host key verification failed" in result.output, \
            result.output[-4000:]
        assert not re.search(r"^changed: \[", result.output, re.MULTILINE), result.output[-4000:]
        assert all(r["changed"] == 0 for r in result.recap.values()), result.recap
        assert vm.container_state() == before
    finally:
        in_app2("cp -a /root/hostkeys/ssh_host_* /etc/ssh/ && rm -rf /root/hostkeys && systemctl restart ssh")


def lab_sql(query: str) -> str:
    out = subprocess.run(["docker", "exec", "djangoops-lab-db", "runuser", "-u", "postgres", "--",
                          "psql", "-XtA", "blog", "-c", query], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_a_scheduled_command_runs_on_time_on_one_host(converged):
    """The lab's app_scheduled_commands (clearsessions, every minute): a timer on app1 only,
    the cron schedule as OnCalendar; its last run succeeded, and an expired session is gone
    by the next minute's run."""
    unit = f"{vm.APP_SERVICE}-scheduled-clearsessions"

    def show(host: str, what: str, props: str) -> dict:
        out = subprocess.run(["docker", "exec", f"djangoops-lab-{host}", "systemctl", "show", f"{unit}.{what}",
                              "-p", props], capture_output=True, text=True, check=True).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    timer = show("app1", "timer", "ActiveState,UnitFileState,TimersCalendar")
    assert timer["ActiveState"] == "active" and timer["UnitFileState"] == "enabled", timer
    assert "OnCalendar=*-*-* *:*:00 Etc/UTC" in timer["TimersCalendar"], timer
    assert show("app2", "timer", "LoadState")["LoadState"] == "not-found", "one host runs the schedule"
    key = f"expired{uuid.uuid4().hex}"
    lab_sql(f"insert into django_session values ('{key}', 'e30', now() - interval '1 day')")
    deadline = time.monotonic() + 80
    while lab_sql(f"select count(*) from django_session where session_key = '{key}'") != "0":
        assert time.monotonic() < deadline, f"the expired session outlived a minute of {unit}: {show('app1', 'service', 'Result,ExecMainStatus')}"
        time.sleep(2)
    service = show("app1", "service", "Result,ExecMainStatus,User")
    assert service == {"Result": "success", "ExecMainStatus": "0", "User": vm.APP_SERVICE}, service


def test_the_scheduled_commands_move_to_another_host_in_one_deploy(converged, lab_run, hosts):
    """app_scheduled_commands_host app2: its timer starts and app1's units go (a host that
    should not run them has none); a deploy without it moves them back."""
    def units(host: str) -> str:
        out = subprocess.run(["docker", "exec", f"djangoops-lab-{host}", "sh", "-c",
                              "ls /etc/systemd/system | grep scheduled; systemctl list-timers --all --no-legend | grep -c scheduled"],
                             capture_output=True, text=True)
        return " ".join(out.stdout.split())

    clear = f"{vm.APP_SERVICE}-scheduled-clearsessions"
    moved = lab_run("deploy.yml", "--tags", "app", app_scheduled_commands_host="app2")
    assert moved.rc == 0, moved.output[-6000:]
    assert (units("app1"), units("app2")) == ("0", f"{clear}.service {clear}.timer 1")
    # Files changed by hand on the hosts (the role writes only files it finds missing or
    # otherwise): the next deploy puts each back, its mode and its content.
    env, wrapper, rules = (f"/etc/{vm.APP_SERVICE}/env", f"/usr/local/sbin/{vm.APP_SERVICE}-restart",
                           f"/etc/{vm.APP_SERVICE}/firewall.nft")
    hosts["app1"].check_output("chmod 0644 %s && echo '# changed by hand' >> %s", env, wrapper)
    hosts["app2"].check_output("echo '# changed by hand' >> %s", rules)
    back = lab_run("deploy.yml", "--tags", "app")
    assert back.rc == 0, back.output[-6000:]
    assert (units("app1"), units("app2")) == (f"{clear}.service {clear}.timer 1", "0")
    assert hosts["app1"].check_output("stat -c '%%a %%U %%G' %s", env) == "600 root root"
    assert "# changed by hand" not in hosts["app1"].check_output("cat %s", wrapper) + hosts["app2"].check_output("cat %s", rules)
    assert hosts["app1"].check_output("sha1sum < %s", wrapper) == hosts["app2"].check_output("sha1sum < %s", wrapper)


@pytest.mark.parametrize(
    "name,service",
    [
        ("db", "postgresql"),
        ("app1", vm.APP_SERVICE),
        ("app2", vm.APP_SERVICE),
        ("lb", "nginx"),
    ],
)
def test_services_active_and_enabled(hosts, name, service):
    svc = hosts[name].service(service)
    assert svc.is_running
    assert svc.is_enabled


@pytest.mark.parametrize("name", ["app1", "app2"])
def test_gunicorn_runs_unprivileged(hosts, name):
    host = hosts[name]
    owners = host.check_output("ps -eo user:32,args | grep '[g]unicorn' | awk '{print $1}' | sort -u")
    assert owners.split() == [vm.APP_SERVICE], owners
    env = host.file(f"/etc/{vm.APP_SERVICE}/env")
    assert env.mode == 0o600 and env.user == "root"
    # five workers on two cores (2 x cores + 1), plus the master
    assert int(host.check_output("pgrep -c -u %s -f 'bin/gunicorn'", vm.APP_SERVICE)) >= 3


# One request to Gunicorn's own port from inside a lab host: its status line, or the error.
GUNICORN_PROBE = """
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], 8000), timeout=5)
    s.sendall(b"GET /_djangoops/live HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n")
    print(s.recv(15).decode())
except OSError as exc:
    print(type(exc).__name__)
"""


def test_gunicorn_answers_the_load_balancer_only():
    """nftables on the app hosts (app_firewall): Gunicorn's port answers the load balancer;
    from the database host or the other app host, on the same network, the connection is
    refused."""
    def probe(source: str, target_ip: str) -> str:
        return subprocess.run(["docker", "exec", f"djangoops-lab-{source}", "python3", "-c", GUNICORN_PROBE, target_ip],
                              capture_output=True, text=True, check=True).stdout.strip()

    app1, app2 = "10.213.87.21", "10.213.87.22"
    assert probe("lb", app1).endswith(" 200 OK") and probe("lb", app2).endswith(" 200 OK")
    assert probe("db", app1) == probe("app2", app1) == probe("db", app2) == "ConnectionRefusedError"


def _pg_probe(host, db_ip: str) -> str:
    return host.check_output(
        "python3 -c %s %s 5432 %s %s", vm.PG_PROBE, db_ip, vm.LAB_DB["user"], vm.LAB_DB["name"]
    )


def _db_ip(hosts) -> str:
    return hosts["db"].check_output("hostname -I").split()[0]


def test_database_refuses_the_load_balancer(hosts):
    answer = _pg_probe(hosts["lb"], _db_ip(hosts))
    assert answer.startswith("E") and "pg_hba.conf" in answer, answer


@pytest.mark.parametrize("name", ["app1", "app2"])
def test_database_admits_the_app_hosts_over_tls_only(hosts, name):
    """pg_hba admits the app hosts with hostssl only: a connection without TLS is refused; one
    that checks the server's certificate against the lab's CA (verify-full, the address the
    app connects to) logs in, encrypted."""
    db_ip = _db_ip(hosts)
    plain = _pg_probe(hosts[name], db_ip)
    assert plain.startswith("E") and "no encryption" in plain, plain
    login = (
        f"import psycopg; c = psycopg.connect(host='{db_ip}', dbname='{vm.LAB_DB['name']}', "
        f"user='{vm.LAB_DB['user']}', password='{vm.LAB_DB['password']}', sslmode='verify-full', "
        f"sslrootcert='/etc/{vm.APP_SERVICE}/database-ca.crt'); "
        "print(*c.execute('select current_user, ssl, version from pg_stat_ssl where pid = pg_backend_pid()').fetchone())"
    )
    user, ssl_on, version = hosts[name].check_output("%s -c %s", vm.APP_VENV_PYTHON, login).split()
    assert (user, ssl_on) == (vm.LAB_DB["user"], "True") and version in ("TLSv1.2", "TLSv1.3"), version


def test_database_tls_turned_off_and_on_again_replaces_the_entries_without_a_restart(hosts, lab_run):
    """database_tls_mode disabled gives the app hosts host entries (their hostssl ones go),
    provided gives hostssl back (the host ones go): PostgreSQL reloads, never restarts."""
    def entries() -> set[str]:
        hba = hosts["db"].check_output("cat /etc/postgresql/15/main/pg_hba.conf")
        return {" ".join(line.split()[:4]) for line in hba.splitlines() if line.split()[1:3] == ["blog", "blog"]}

    def started() -> str:
        return hosts["db"].check_output("su postgres -c %s", 'psql -tAc "select pg_postmaster_start_time()"')

    apps = {f"10.213.87.{n}/32" for n in (21, 22)}
    before = started()
    assert entries() == {f"hostssl blog blog {a}" for a in apps}
    off = lab_run("deploy.yml", "--tags", "database", database_tls_mode="disabled")
    try:
        assert off.rc == 0, off.output[-4000:]
        assert entries() == {f"host blog blog {a}" for a in apps}
    finally:
        on = lab_run("deploy.yml", "--tags", "database")
        assert on.rc == 0, on.output[-4000:]
    assert entries() == {f"hostssl blog blog {a}" for a in apps}
    assert started() == before, "PostgreSQL was restarted"


def test_the_apps_own_database_connections_are_encrypted(hosts):
    """After pages that query the database, every connection of the app's user is TLS: the
    app's environment sets libpq's PGSSLMODE=verify-full and PGSSLROOTCERT."""
    for _ in range(10):
        assert requests.get(f"{vm.LAB_URL}/", timeout=10).status_code == 200
    query = (f"select ssl, count(*) from pg_stat_ssl join pg_stat_activity using (pid) "
             f"where usename = '{vm.LAB_DB['user']}' group by ssl")
    rows = dict(line.split("|") for line in hosts["db"].check_output(
        "su postgres -c %s", f'psql -tAc "{query}"').splitlines())
    assert rows.get("t") and "f" not in rows, rows


def test_database_listens_only_on_localhost_and_the_lab_address(hosts):
    listening = hosts["db"].check_output("ss -Hltn 'sport = :5432' | awk '{print $4}'").split()
    addresses = {a.rsplit(":", 1)[0] for a in listening}
    assert addresses <= {"127.0.0.1", "[::1]", _db_ip(hosts)}, addresses
    assert "0.0.0.0" not in addresses and "*" not in addresses


def test_home_page_answers(converged):
    r = requests.get(f"{vm.LAB_URL}/", timeout=10)
    assert r.status_code == 200
    assert "data-served-by=" in r.text
    # The collection's health endpoints (they query the database) are not public: NGINX
    # answers 404 (service_private_paths); the deploys ask them on each host's own port.
    for path in ("/_djangoops/ready", "/_djangoops/live", "/_djangoops/../_djangoops/ready"):
        assert requests.get(f"{vm.LAB_URL}{path}", timeout=10).status_code == 404, path


def test_plain_http_is_redirected_to_https_whatever_the_client_claims(converged):
    """http://127.0.0.1:8080 answers 301 to the same path and query on the published HTTPS
    port; a client's own X-Forwarded-Proto: https changes nothing (it is no trusted proxy)."""
    for headers in ({}, {"X-Forwarded-Proto": "https"}):
        r = requests.get(f"{vm.LAB_HTTP_URL}/post/1/?page=2", headers=headers, allow_redirects=False, timeout=10)
        assert r.status_code == 301, (headers, r.status_code)
        assert r.headers["Location"] == f"{vm.LAB_URL}/post/1/?page=2", r.headers
    assert "Strict-Transport-Security" not in r.headers  # HSTS only over HTTPS


def test_a_trusted_proxy_a_write_freeze_and_a_pool_of_named_servers(converged, lab_run, hosts):
    """One deploy of the load balancer with three settings, then back (each deploy costs the
    test machine a run):
    - service_trusted_proxies (the db host as a trusted TLS proxy): its plain-HTTP request
      saying X-Forwarded-Proto: https is served (the page, no redirect loop), while the same
      request from app1 is redirected: only the listed addresses are believed;
    - service_write_freeze: a POST (the admin's login form) is answered 503 with Retry-After
      while pages serve;
    - service_upstream_servers: the pool sends only to the servers named (app1's address and
      port, as a migration names the cluster's Service).
    Back: the db host is redirected too, writes reach the app again, both hosts serve."""
    probe = ("import sys, urllib.request, urllib.error\n"
             "class Keep(urllib.request.HTTPRedirectHandler):\n"
             "    def redirect_request(self, *args, **kwargs):\n"
             "        return None\n"
             "request = urllib.request.Request('http://lb/', headers={'Host': '127.0.0.1', 'X-Forwarded-Proto': 'https'})\n"
             "try:\n"
             "    print(urllib.request.build_opener(Keep).open(request, timeout=10).status)\n"
             "except urllib.error.HTTPError as e:\n"
             "    print(e.code)\n")

    def status_from(host: str) -> str:
        return subprocess.run(["docker", "exec", f"djangoops-lab-{host}", "python3", "-c", probe],
                              capture_output=True, text=True, check=True).stdout.strip()

    login = f"{vm.LAB_URL}/admin/login/"
    changed = lab_run("deploy.yml", "--tags", "service", service_trusted_proxies=["10.213.87.30/32"],
                      service_write_freeze=True, service_write_freeze_retry_after=7,
                      service_upstream_servers=["10.213.87.21:8000"])
    try:
        assert changed.rc == 0, changed.output[-4000:]
        assert (status_from("db"), status_from("app1")) == ("200", "301")
        frozen = requests.post(login, data={"username": "x", "password": "y"}, timeout=10)
        assert (frozen.status_code, frozen.headers.get("Retry-After")) == (503, "7")
        pages = [requests.get(f"{vm.LAB_URL}/", timeout=10) for _ in range(10)]
        assert [r.status_code for r in pages] == [200] * 10
        assert {r.headers["X-Served-By"] for r in pages} == {"app1"}
    finally:
        # the site's key with another mode, by hand: the deploy that puts the settings back
        # puts its mode back too (the role writes only files it finds missing or otherwise)
        hosts["lb"].check_output("chmod 0644 /etc/nginx/tls/%s.key", vm.APP_SERVICE)
        back = lab_run("deploy.yml", "--tags", "service")
        assert back.rc == 0, back.output[-4000:]
    assert status_from("db") == "301"
    assert hosts["lb"].check_output("stat -c %%a /etc/nginx/tls/%s.key", vm.APP_SERVICE) == "600"
    # Django answers the form itself again (403: no CSRF cookie), not NGINX's 503
    assert requests.post(login, data={"username": "x", "password": "y"}, timeout=10).status_code == 403
    assert {requests.get(f"{vm.LAB_URL}/", timeout=10).headers["X-Served-By"] for _ in range(20)} == {"app1", "app2"}


def _tls_handshake(version: ssl.TLSVersion, cafile: str | None) -> str:
    """A handshake with the lab's NGINX at one TLS version: the version agreed, or the error."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
    else:
        ctx.load_default_certs()
    ctx.minimum_version = ctx.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # so that this client offers it at all
    try:
        with socket.create_connection(("127.0.0.1", 8443), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
            return conn.version()
    except ssl.SSLError as exc:
        return str(exc)


def test_https_takes_the_lab_ca_and_current_tls_only(converged):
    """The certificate is the lab CA's, for 127.0.0.1 (a client with only the system's CAs
    refuses it); TLS 1.2 and 1.3 are served, TLS 1.1 is refused by the server."""
    ca = str(vm.LAB_CA)
    assert _tls_handshake(ssl.TLSVersion.TLSv1_3, ca) == "TLSv1.3"
    assert _tls_handshake(ssl.TLSVersion.TLSv1_2, ca) == "TLSv1.2"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSVersion.TLSv1_1 itself
        assert "ALERT_PROTOCOL_VERSION" in _tls_handshake(ssl.TLSVersion.TLSv1_1, ca)
    assert "CERTIFICATE_VERIFY_FAILED" in _tls_handshake(ssl.TLSVersion.TLSv1_3, None)


def test_the_site_runs_with_its_secure_settings_over_https(converged):
    """Over HTTPS the app knows it is secure (no redirect loop), sends HSTS without preload,
    and its cookies are Secure: the lab runs as a real site does."""
    r = requests.get(f"{vm.LAB_URL}/admin/login/", timeout=10, allow_redirects=False)
    assert r.status_code == 200, r.status_code
    assert r.headers["Strict-Transport-Security"] == "max-age=3600; includeSubDomains", r.headers
    csrf = next(c for c in r.cookies if c.name == "csrftoken")
    assert csrf.secure, "the CSRF cookie is sent without Secure"


def test_the_login_page_is_rate_limited_per_client_and_pages_are_not(converged):
    """From the db host (a client address of its own, so the other tests' logins are not
    limited): 25 quick requests to /admin/login/ get 429 beyond the burst; the list page
    never does (service_login_rate_limit)."""
    probe = ("import ssl, sys, urllib.request, urllib.error\n"
             "lab_ca = ssl.create_default_context(cadata=sys.argv[1])\n"
             "def get(path):\n"
             "    try:\n"
             "        return urllib.request.urlopen(urllib.request.Request('https://lb' + path, headers={'Host': '127.0.0.1'}),\n"
             "                                      timeout=10, context=lab_ca).status\n"
             "    except urllib.error.HTTPError as e:\n"
             "        return e.code\n"
             "print(' '.join(str(get('/admin/login/')) for _ in range(25)))\n"
             "print(' '.join(str(get('/')) for _ in range(25)))\n")
    out = subprocess.run(["docker", "exec", "djangoops-lab-db", "python3", "-c", probe, vm.LAB_CA.read_text()],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    login, pages = out[0].split(), out[1].split()
    assert login[0] == "200" and "429" in login and set(login) <= {"200", "429"}, login
    assert set(pages) == {"200"}, pages


def test_both_app_hosts_serve():
    served = set()
    for _ in range(20):
        r = requests.get(f"{vm.LAB_URL}/", timeout=10)
        assert r.status_code == 200
        body = re.search(r'data-served-by="([^"]+)"', r.text).group(1)
        assert body == r.headers["X-Served-By"]
        served.add(body)
    assert served == {"app1", "app2"}


def test_failing_app_host_leaves_rotation(hosts):
    hosts["app1"].check_output("systemctl stop %s", vm.APP_SERVICE)
    try:
        answers = [requests.get(f"{vm.LAB_URL}/", timeout=10) for _ in range(10)]
        assert [r.status_code for r in answers] == [200] * 10
        assert {r.headers["X-Served-By"] for r in answers} == {"app2"}
    finally:
        hosts["app1"].check_output("systemctl start %s", vm.APP_SERVICE)
    vm.wait_ready(vm.LAB_URL)


@pytest.fixture(scope="module")
def admin_post(converged):
    title = f"Posted through the admin {uuid.uuid4().hex[:8]}"
    vm.admin_create_post(vm.LAB_URL, title, "Written by the VM integration test.")
    return title


def test_admin_post_is_listed(admin_post):
    r = requests.get(f"{vm.LAB_URL}/", timeout=10)
    assert r.status_code == 200
    assert admin_post in r.text


def test_static_files_come_from_nginx_with_cache_headers(hosts):
    page = requests.get(f"{vm.LAB_URL}/", timeout=10).text
    css = re.search(r'href="(/static/css/blog\.[0-9a-f]{12}\.css)"', page)
    assert css, "the page links no hashed stylesheet"
    marker = uuid.uuid4().hex
    r = requests.get(
        f"{vm.LAB_URL}{css.group(1)}?m={marker}", headers={"Accept-Encoding": "gzip"}, timeout=10
    )
    assert r.status_code == 200
    assert "immutable" in r.headers["Cache-Control"] and "max-age=31536000" in r.headers["Cache-Control"]
    assert r.headers["Server"] == "nginx"  # server_tokens off: no version
    assert r.headers["X-Served-By"].startswith("nginx")  # the lab asks for it (service_served_by_header)
    assert r.headers.get("Content-Encoding") == "gzip"
    # An unhashed name is cached, but not for ever.
    plain = requests.get(f"{vm.LAB_URL}/static/css/blog.css", timeout=10)
    assert plain.status_code == 200 and "immutable" not in plain.headers["Cache-Control"]
    # A page request with its own marker shows up in Gunicorn's access log; the static
    # request never does.
    page_marker = uuid.uuid4().hex
    for _ in range(4):
        requests.get(f"{vm.LAB_URL}/?m={page_marker}", timeout=10)
    time.sleep(1)
    logs = "".join(
        hosts[n].check_output("journalctl -u %s --no-pager -o cat --since '-10min'", vm.APP_SERVICE)
        for n in ("app1", "app2")
    )
    assert page_marker in logs
    assert marker not in logs


def test_data_survives_a_database_restart(admin_post):
    subprocess.run(["docker", "restart", vm.LAB_HOSTS["db"][0]], check=True, capture_output=True)
    vm.wait_ready(vm.LAB_URL, timeout=120)
    # Once the database answers again, every page answers: persistent connections from
    # before the restart are dead, and each worker's is checked before it is reused
    # (CONN_HEALTH_CHECKS), so no request may see the stale one.
    answers = [requests.get(f"{vm.LAB_URL}/", timeout=10) for _ in range(20)]
    assert [r.status_code for r in answers] == [200] * 20
    assert all(admin_post in r.text for r in answers)


def test_drained_host_leaves_rotation_and_comes_back(converged, lab_run):
    """service_drained_hosts takes one app host out of NGINX's pool (for a rolling upgrade)."""
    drained = lab_run("deploy.yml", service_drained_hosts=["app1"])
    assert drained.rc == 0, drained.output[-4000:]
    assert drained.recap["lb"]["changed"] > 0 and drained.recap["app1"]["changed"] == 0
    served = {requests.get(f"{vm.LAB_URL}/", timeout=10).headers["X-Served-By"] for _ in range(10)}
    assert served == {"app2"}
    back = lab_run("deploy.yml", "--tags", "service")
    assert back.rc == 0, back.output[-4000:]
    served = {requests.get(f"{vm.LAB_URL}/", timeout=10).headers["X-Served-By"] for _ in range(20)}
    assert served == {"app1", "app2"}


# --- the database step: management commands and the superuser -------------------------
# Cheap on the converged lab: the release stays the same, only the step's inputs change, and
# the runs select the app's phase (--tags app: the checks and the run lock run whatever is
# selected), as a team changing only the app would.

_SET_ADMIN_PASSWORD = (
    "from django.contrib.auth import get_user_model; "
    "u = get_user_model().objects.get(username='admin'); u.set_password('{}'); u.save()"
)


def _admin_login(url: str, password: str) -> bool:
    """Whether admin logs in to the Django admin with this password."""
    s = requests.Session()
    r = s.get(f"{url}/admin/login/", timeout=10)
    r.raise_for_status()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', r.text).group(1)
    s.post(f"{url}/admin/login/?next=/admin/",
           data={"csrfmiddlewaretoken": token, "username": vm.LAB_ADMIN[0], "password": password, "next": "/admin/"},
           headers={"Origin": url, "Referer": f"{url}/admin/login/"}, timeout=10)
    return "sessionid" in s.cookies


def _gunicorn_pids(hosts) -> dict[str, str]:
    return {n: hosts[n].check_output("systemctl show -p MainPID --value %s", vm.APP_SERVICE) for n in ("app1", "app2")}


def test_management_commands_run_once_per_release_and_list(converged, lab_run, hosts):
    """app_manage_commands run in the migration step, their output in the play's log; a rerun
    of the same release and list runs nothing and changes nothing (the marker)."""
    commands = ["createcachetable", ["check", "--fail-level", "ERROR"]]
    first = lab_run("deploy.yml", "--tags", "app", app_manage_commands=commands)
    assert first.rc == 0, first.output[-6000:]
    assert "ran createcachetable" in first.output and "ran check --fail-level ERROR" in first.output
    assert "System check identified" in first.output  # the command's own output, logged
    markers = {n: hosts[n].file(f"/opt/{vm.APP_SERVICE}/current/.djangoops-manage-done") for n in ("app1", "app2")}
    assert all(m.exists and m.user == "root" for m in markers.values())
    assert len({m.content_string for m in markers.values()}) == 1
    again = lab_run("deploy.yml", "--tags", "app", app_manage_commands=commands)
    assert again.rc == 0, again.output[-6000:]
    assert again.changed == 0, again.changed_tasks
    assert "ran createcachetable" not in again.output


def test_a_failing_management_command_stops_before_any_instance_switches(converged, lab_run, hosts):
    """A changed list runs on the same release (the marker holds the list's hash): a command
    that fails stops the play, named with its error; Gunicorn keeps serving untouched, and
    real pages under load during the whole run never fail."""
    pids = _gunicorn_pids(hosts)
    traffic = Load(vm.LAB_URL, rate=20, paths=["/"], max_requests=20000, max_seconds=600, cafile=str(vm.LAB_CA)).start()
    time.sleep(2)  # the load spans the whole run: before it starts and after it ends
    try:
        with traffic.operation():
            result = lab_run("deploy.yml", "--tags", "app", app_manage_commands=[["loaddata", "no-such-fixture"]])
        time.sleep(2)
    finally:
        stats = traffic.stop()
    assert stats.total >= 100 and stats.failed == 0, stats.summary()
    traffic.assert_clean()
    assert result.rc != 0
    # short pieces: the YAML callback may quote the message (doubling its ' quotes) and fold it
    flat = " ".join(result.output.split())
    assert "The management command" in flat and "loaddata no-such-fixture" in flat, flat[-4000:]
    assert "No fixture named" in flat
    assert "so no instance switched" in flat
    assert _gunicorn_pids(hosts) == pids
    answers = [requests.get(f"{vm.LAB_URL}/", timeout=10) for _ in range(10)]
    assert [r.status_code for r in answers] == [200] * 10


def test_a_password_changed_in_the_database_survives_a_redeploy(converged, lab_run, hosts):
    """The superuser is made when missing, never reset unless app_superuser_reset_password."""
    changed = f"changed-in-the-admin-{uuid.uuid4().hex[:8]}"
    manage = f"{vm.APP_SERVICE}-manage"
    hosts["app1"].check_output("%s shell -c %s", manage, _SET_ADMIN_PASSWORD.format(changed))
    try:
        again = lab_run("deploy.yml", "--tags", "app")
        assert again.rc == 0, again.output[-6000:]
        assert again.changed == 0, again.changed_tasks
        assert _admin_login(vm.LAB_URL, changed)
        assert not _admin_login(vm.LAB_URL, vm.LAB_ADMIN[1])
        reset = lab_run("deploy.yml", "--tags", "app", app_superuser_reset_password=True)
        assert reset.rc == 0, reset.output[-6000:]
        assert "reset superuser admin" in reset.output
        assert _admin_login(vm.LAB_URL, vm.LAB_ADMIN[1])
    finally:
        hosts["app1"].check_output("%s shell -c %s", manage, _SET_ADMIN_PASSWORD.format(vm.LAB_ADMIN[1]))


# -- certificates from an ACME CA --------------------------------------------------------

def _served_certificate(cafile: str) -> x509.Certificate:
    """The certificate the lab's NGINX serves for blog.lab.test, checked against cafile."""
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", 8443), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="blog.lab.test") as conn:
        return x509.load_der_x509_certificate(conn.getpeercert(binary_form=True))


def test_a_certificate_from_an_acme_ca_is_issued_kept_and_renewed(converged, lab_run, tmp_path):
    """service_tls_mode acme against Pebble, Let's Encrypt's test CA, which checks the HTTP-01
    challenge for real (its DNS stand-in sends blog.lab.test to the load balancer's port 80):
    a certificate is issued that chains to Pebble's root; a second run changes nothing; a run
    inside the renewal window (renew_days beyond its 90 days) renews it. The lab gets its
    own certificate back afterwards."""
    with acme_ca.running_pebble("10.213.87.10") as (directory, api_ca, root):
        (tmp_path / "root.pem").write_text(root)
        acme = {"service_tls_mode": "acme", "service_server_name": "blog.lab.test", "service_acme_directory": directory,
                "service_acme_ca_path": api_ca, "service_acme_terms_agreed": True, "service_acme_email": "ops@lab.test"}
        try:
            first = lab_run("deploy.yml", "--tags", "service", **acme)
            assert first.rc == 0, first.output[-6000:]
            issued = _served_certificate(str(tmp_path / "root.pem"))
            assert "Pebble" in issued.issuer.rfc4514_string(), issued.issuer
            names = issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert names.get_values_for_type(x509.DNSName) == ["blog.lab.test"]

            again = lab_run("deploy.yml", "--tags", "service", **acme)
            assert again.rc == 0 and again.changed == 0, again.output[-6000:]
            assert _served_certificate(str(tmp_path / "root.pem")).serial_number == issued.serial_number

            renewed = lab_run("deploy.yml", "--tags", "service", service_acme_renew_days=100, **acme)
            assert renewed.rc == 0, renewed.output[-6000:]
            assert _served_certificate(str(tmp_path / "root.pem")).serial_number != issued.serial_number
        finally:
            back = lab_run("deploy.yml", "--tags", "service")
            assert back.rc == 0, back.output[-4000:]
    assert requests.get(f"{vm.LAB_URL}/", timeout=10).status_code == 200  # the lab's CA again
