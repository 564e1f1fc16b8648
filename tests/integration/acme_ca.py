"""Pebble, Let's Encrypt's ACME test server, for the ACME test: a real ACME CA on 127.0.0.1
whose validation authority checks every HTTP-01 challenge for real, over the lab's network.

pebble-challtestsrv answers Pebble's DNS queries: every name resolves to the lab's load
balancer (10.213.87.10), so Pebble fetches http://<name>/.well-known/acme-challenge/<token>
from the lab's NGINX on port 80. Both programs come from tests/harness/pebble (built once,
cached). No random sleeps or refused nonces (PEBBLE_VA_NOSLEEP, PEBBLE_WFE_NONCEREJECT=0):
the test is about the collection, not about its retries.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

import requests

from ansible_run import REPO
from waiting import eventually

DIRECTORY = "https://127.0.0.1:14000/dir"
MANAGEMENT = "https://127.0.0.1:15000"


@contextmanager
def running_pebble(answer_ipv4: str):
    """Start challtestsrv (DNS: every name is answer_ipv4) and Pebble; yield (directory URL,
    the CA file of Pebble's own HTTPS, Pebble's issuing root as PEM); stop both."""
    home = Path(subprocess.run([str(REPO / "tests/harness/pebble")], capture_output=True, text=True,
                               check=True).stdout.strip().splitlines()[-1])
    api_ca = home / "certs" / "pebble.minica.pem"
    with tempfile.TemporaryDirectory(prefix="djangoops-pebble-") as tmp:
        config = Path(tmp) / "pebble.json"
        config.write_text(json.dumps({"pebble": {
            "listenAddress": "127.0.0.1:14000",
            "managementListenAddress": "127.0.0.1:15000",
            "certificate": str(home / "certs/localhost/cert.pem"),
            "privateKey": str(home / "certs/localhost/key.pem"),
            "httpPort": 80,
            "tlsPort": 443,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
            "retryAfter": {"authz": 1, "order": 1},
            "keyAlgorithm": "ecdsa",
            "profiles": {"default": {"description": "90 days", "validityPeriod": 7776000}},
        }}))
        log = open(Path(tmp) / "pebble.log", "w")  # noqa: SIM115 - closed below
        dns = subprocess.Popen([str(home / "bin/pebble-challtestsrv"), "-defaultIPv4", answer_ipv4, "-defaultIPv6", "",
                                "-dnsserver", "127.0.0.1:8053", "-doh", "", "-http01", "", "-https01", "",
                                "-tlsalpn01", "", "-management", "127.0.0.1:8055"], stdout=log, stderr=log)
        ca = subprocess.Popen([str(home / "bin/pebble"), "-config", str(config), "-dnsserver", "127.0.0.1:8053"],
                              stdout=log, stderr=log,
                              env={**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"})
        try:
            eventually(lambda: requests.get(DIRECTORY, verify=str(api_ca), timeout=2).ok, 30,
                       what="Pebble's directory answering")
            root = requests.get(f"{MANAGEMENT}/roots/0", verify=str(api_ca), timeout=5).text
            yield DIRECTORY, str(api_ca), root
        finally:
            for process in (ca, dns):
                process.terminate()
                process.wait(timeout=10)
            log.close()
            print((Path(tmp) / "pebble.log").read_text()[-3000:])
