# Copyright: djangoops.stack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one check of a certificate and its private key, before any change:
djangoops.stack.tls_pair_problems (used by the service role on both targets and the
database role)."""

from __future__ import annotations

import datetime

from ansible.errors import AnsibleFilterError

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover - the controller needs cryptography for community.crypto too
    x509 = None


def _public_bytes(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def tls_pair_problems(certificate, private_key, certificate_var: str, key_var: str, now=None) -> list[str]:
    """Messages naming the variables, empty when the pair is usable; the key is never shown."""
    if x509 is None:
        raise AnsibleFilterError("tls_pair_problems needs the Python package cryptography on the controller")
    problems: list[str] = []
    cert = key = None
    if not isinstance(certificate, str) or "-----BEGIN CERTIFICATE-----" not in certificate:
        problems.append(f"{certificate_var} must be the certificate as PEM text (-----BEGIN CERTIFICATE-----, "
                        "then any intermediates)")
    else:
        try:
            cert = x509.load_pem_x509_certificate(certificate.encode())
        except ValueError:
            problems.append(f"{certificate_var} is not a readable PEM certificate")
    if not isinstance(private_key, str) or "PRIVATE KEY-----" not in private_key:
        problems.append(f"{key_var} must be the certificate's private key as PEM text (-----BEGIN PRIVATE KEY-----); "
                        "its value is not shown")
    else:
        try:
            key = serialization.load_pem_private_key(private_key.encode(), password=None)
        except (ValueError, TypeError):
            problems.append(f"{key_var} is not a readable unencrypted PEM private key; its value is not shown")
    if cert is not None:
        now = now or datetime.datetime.now(datetime.timezone.utc)
        if cert.not_valid_after_utc <= now:
            problems.append(f"{certificate_var} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: "
                            "give the current certificate")
        elif cert.not_valid_before_utc > now:
            problems.append(f"{certificate_var} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
        if key is not None and _public_bytes(cert.public_key()) != _public_bytes(key.public_key()):
            problems.append(f"{key_var} is not the key of {certificate_var}: give the certificate with its own key")
    return problems


class FilterModule:
    """djangoops.stack TLS filters."""

    def filters(self):
        return {"tls_pair_problems": tls_pair_problems}
