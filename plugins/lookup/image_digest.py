# Copyright: djangoops.stack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: image_digest
short_description: The digest an image tag points at, asked from its registry
version_added: 0.1.0
author:
  - djangoops.stack developers (@djangoops)
description:
  - Asks the registry of each image reference (C(registry/repository:tag)) which manifest the tag
    points at, with the OCI distribution API (C(HEAD /v2/<repository>/manifests/<tag>)), and returns
    its digest (C(sha256:...)). No Docker daemon is needed, so a deploy job that never builds pins
    the image it deploys.
  - Anonymous access, HTTP basic credentials, and the bearer tokens of Docker Hub, GHCR, GitLab,
    Harbor and the like (C(WWW-Authenticate Bearer realm=...)), fetched with the credentials when
    given.
  - A reference without a registry host is on Docker Hub (C(registry-1.docker.io)), and a
    repository without a slash there is under C(library/).
  - HTTPS, except for the registries of O(insecure_registries) and those on C(localhost) or
    C(127.0.0.0/8), which are asked over plain HTTP (as Docker does).
options:
  _terms:
    description: Image references with a tag.
    type: list
    elements: str
    required: true
  username:
    description: Registry user name; empty asks anonymously.
    type: str
    default: ""
  password:
    description: Registry password or token.
    type: str
    default: ""
  insecure_registries:
    description: Registry hosts (C(host:port)) asked over plain HTTP.
    type: list
    elements: str
    default: []
  validate_certs:
    description: Check the registry's TLS certificate.
    type: bool
    default: true
  timeout:
    description: Seconds for each HTTP request.
    type: int
    default: 15
"""

EXAMPLES = r"""
- name: Pin the image a Deployment runs
  ansible.builtin.set_fact:
    pinned: "registry.example.com/team/blog@{{ lookup('djangoops.stack.image_digest', 'registry.example.com/team/blog:1.0-orange') }}"
"""

RETURN = r"""
_raw:
  description: One digest per reference, such as C(sha256:5f0c...).
  type: list
  elements: str
"""

import base64
import hashlib
import json
import re
import urllib.error
from urllib.parse import urlencode

from ansible.errors import AnsibleLookupError
from ansible.module_utils.urls import open_url
from ansible.plugins.lookup import LookupBase

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
DOCKER_HUB = "registry-1.docker.io"


def parse_reference(ref):
    """(registry, repository, tag) of registry/repository:tag."""
    ref = str(ref).strip()
    if "@" in ref:
        raise AnsibleLookupError(f"image_digest: '{ref}' is already pinned by digest")
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag or not tag or not name:
        raise AnsibleLookupError(f"image_digest: '{ref}' has no tag (such as registry.example.com/team/blog:1.0-orange)")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, name
        if "/" not in repository:
            repository = "library/" + repository
    if not re.match(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$", repository):
        raise AnsibleLookupError(f"image_digest: '{ref}': '{repository}' is not a repository name")
    return registry, repository, tag


def plain_http(registry, insecure_registries=()):
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    return registry in insecure_registries or host == "localhost" or host.startswith("127.")


def parse_challenge(header):
    """(scheme, {param: value}) of a WWW-Authenticate header."""
    scheme, _sep, rest = (header or "").strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return [self._digest(term) for term in terms]

    def _open(self, url, method="GET", headers=None):
        return open_url(url, method=method, headers=headers or {}, timeout=self.get_option("timeout"),
                        validate_certs=self.get_option("validate_certs"), follow_redirects="all")

    def _basic(self):
        user, password = self.get_option("username"), self.get_option("password")
        if not user:
            return {}
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def _token(self, params, repository):
        query = {"scope": params.get("scope") or f"repository:{repository}:pull"}
        if params.get("service"):
            query["service"] = params["service"]
        try:
            answer = self._open(f"{params['realm']}?{urlencode(query)}", headers=self._basic())
            body = json.loads(answer.read())
        except (urllib.error.URLError, OSError, ValueError, KeyError) as err:
            raise AnsibleLookupError(f"image_digest: no token from {params.get('realm')}: {err}") from err
        token = body.get("token") or body.get("access_token")
        if not token:
            raise AnsibleLookupError(f"image_digest: {params.get('realm')} gave no token")
        return {"Authorization": f"Bearer {token}"}

    def _digest(self, ref):
        registry, repository, tag = parse_reference(ref)
        scheme = "http" if plain_http(registry, self.get_option("insecure_registries")) else "https"
        url = f"{scheme}://{registry}/v2/{repository}/manifests/{tag}"
        headers = {"Accept": ACCEPT}
        for attempt in range(2):
            try:
                answer = self._open(url, method="HEAD", headers=headers)
                digest = answer.headers.get("Docker-Content-Digest")
                if digest:
                    return digest
                # A registry that does not say: the digest of the manifest's own bytes.
                body = self._open(url, headers=headers).read()
                return "sha256:" + hashlib.sha256(body).hexdigest()
            except urllib.error.HTTPError as err:
                if err.code == 401 and attempt == 0:
                    challenge, params = parse_challenge(err.headers.get("WWW-Authenticate"))
                    if challenge == "bearer" and params.get("realm"):
                        headers.update(self._token(params, repository))
                        continue
                    if challenge == "basic" and self.get_option("username"):
                        headers.update(self._basic())
                        continue
                if err.code == 404:
                    raise AnsibleLookupError(
                        f"image_digest: {ref} is not in its registry ({registry} answered 404 for tag '{tag}')") from err
                raise AnsibleLookupError(f"image_digest: {registry} answered {err.code} for {ref}") from err
            except (urllib.error.URLError, OSError) as err:
                raise AnsibleLookupError(f"image_digest: cannot reach {scheme}://{registry} for {ref}: {err}") from err
        raise AnsibleLookupError(f"image_digest: {registry} refused the credentials for {ref} (401)")
