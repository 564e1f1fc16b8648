#!/usr/bin/python
# Copyright: djangoops.stack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_objects
short_description: Read several kinds of Kubernetes objects in one task
version_added: 0.1.0
description:
  - Runs several reads, each one M(kubernetes.core.k8s_info) would do (a kind, with a name or
    label and field selectors, in a namespace or the whole cluster), in one module run, and
    returns the objects of each under the name the caller gave it.
  - Each M(kubernetes.core.k8s_info) task starts a Python process that imports
    the Kubernetes client, about half a second of CPU before its one request; a deploy reads
    a dozen kinds, so reading them together takes seconds off every run, on a loaded
    controller more. The reads, the client and its authentication are kubernetes.core's
    own (its C(K8sService.find)); only the loop is this module's.
  - Nothing is changed; a missing object is an empty list, not an error.
author:
  - djangoops.stack developers (@djangoops)
attributes:
  check_mode:
    support: full
    description: It only reads, in check mode too.
  diff_mode:
    support: none
    description: It changes nothing.
options:
  queries:
    description:
      - The reads, as a mapping of a name of the caller's choice to what to read. The result
        RV(objects) has the same names. A query without C(kind) reads the kind its name
        says, so a mapping of kinds to their selectors is a valid O(queries).
    type: dict
    required: true
  namespace:
    description:
      - The namespace of every query that names none. Without it, such a query reads the
        whole cluster (or a cluster-wide kind, such as C(Node)).
    type: str
  hidden_fields:
    description:
      - Fields removed from every object returned, as in M(kubernetes.core.k8s_info), for
        example C(metadata.managedFields).
    type: list
    elements: str
    default: []
notes:
  - Each query is a mapping with C(kind) (default the query's name), C(api_version) (default C(v1)), and
    optionally C(name), C(namespace), C(label_selectors) and C(field_selectors) (lists of
    strings), read as M(kubernetes.core.k8s_info) reads them.
  - Authentication takes the options and the C(K8S_AUTH_*) environment variables of the
    kubernetes.core modules (C(kubeconfig), C(context), C(host), C(api_key)...);
    C(module_defaults) for C(group/kubernetes.core.k8s) do not reach this module, so set them
    for C(djangoops.stack.k8s_objects) too.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Read the app's Deployment, its migration Job and the nodes at once
  djangoops.stack.k8s_objects:
    queries:
      deployment: {api_version: apps/v1, kind: Deployment, namespace: blog, name: web}
      job: {api_version: batch/v1, kind: Job, namespace: blog, name: web-migrate-1-0}
      nodes: {kind: Node}
  register: read

- name: Show the Deployment's replicas
  ansible.builtin.debug:
    msg: "{{ (read.objects.deployment | first).spec.replicas }}"
  when: read.objects.deployment | length > 0
"""

RETURN = r"""
objects:
  description: For each query's name, the objects it found (an empty list when none).
  returned: always
  type: dict
  sample: {"deployment": [{"kind": "Deployment", "metadata": {"name": "web"}}], "job": []}
api_found:
  description: For each query's name, whether the API server knows the kind.
  returned: always
  type: dict
  sample: {"deployment": true, "job": true}
"""

import copy

from ansible.module_utils.basic import missing_required_lib

try:
    from ansible_collections.kubernetes.core.plugins.module_utils.ansiblemodule import AnsibleModule
    from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.service import K8sService
    HAS_KUBERNETES_CORE = True
except ImportError:  # pragma: no cover - the sanity tests import without the collection
    HAS_KUBERNETES_CORE = False
    AUTH_ARG_SPEC = {}

QUERY_KEYS = {"kind", "api_version", "name", "namespace", "label_selectors", "field_selectors"}


def query_problems(queries: dict) -> list[str]:
    """What is wrong with the queries, one sentence each (empty when they can run)."""
    problems = []
    if not queries:
        problems.append("queries is empty: name at least one read")
    for name, query in sorted((queries or {}).items()):
        if not isinstance(query, dict):
            problems.append(f"queries.{name} must be a mapping, not {type(query).__name__}")
            continue
        unknown = sorted(set(query) - QUERY_KEYS)
        if unknown:
            problems.append(f"queries.{name} has unknown keys {unknown} (allowed: {sorted(QUERY_KEYS)})")
        for key in ("label_selectors", "field_selectors"):
            value = query.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problems.append(f"queries.{name}.{key} must be a list of strings")
    return problems


def read_all(svc, queries: dict, hidden_fields: list, namespace: str | None = None) -> tuple[dict, dict]:
    """Run each query through kubernetes.core's K8sService.find: (objects, api_found)."""
    objects, found = {}, {}
    for name, query in queries.items():
        facts = svc.find(
            query.get("kind") or name,
            query.get("api_version") or "v1",
            name=query.get("name"),
            namespace=query.get("namespace") or namespace,
            label_selectors=query.get("label_selectors") or [],
            field_selectors=query.get("field_selectors") or [],
            hidden_fields=hidden_fields or None,
        )
        objects[name] = facts.get("resources", [])
        found[name] = bool(facts.get("api_found", True))
    return objects, found


def argspec() -> dict:
    args = copy.deepcopy(AUTH_ARG_SPEC)
    args.update({
        "queries": {"type": "dict", "required": True},
        "namespace": {"type": "str"},
        "hidden_fields": {"type": "list", "elements": "str", "default": []},
    })
    return args


def main() -> None:  # pragma: no cover - needs a cluster (tests/kubernetes)
    if not HAS_KUBERNETES_CORE:
        from ansible.module_utils.basic import AnsibleModule as PlainModule

        PlainModule(argument_spec=argspec(), supports_check_mode=True).fail_json(
            msg=missing_required_lib("the kubernetes.core collection"))
    module = AnsibleK8SModule(module_class=AnsibleModule, argument_spec=argspec(), supports_check_mode=True)
    problems = query_problems(module.params["queries"])
    if problems:
        module.fail_json(msg="; ".join(problems))
    try:
        svc = K8sService(get_api_client(module), module)
        objects, found = read_all(svc, module.params["queries"], module.params["hidden_fields"],
                                  module.params["namespace"])
    except CoreException as e:
        module.fail_from_exception(e)
    module.exit_json(changed=False, objects=objects, api_found=found)


if __name__ == "__main__":
    main()
