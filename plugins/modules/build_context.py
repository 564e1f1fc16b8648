#!/usr/bin/python
# Copyright: djangoops.stack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: build_context
short_description: Assemble a container build context from several sources and fingerprint it
version_added: 0.1.0
description:
  - Makes the directory O(path) hold exactly the files given by O(sources) and O(files),
    copying only what differs and removing what no longer belongs there.
  - Returns a SHA-256 fingerprint of the whole context (file names, contents and modes)
    mixed with O(extra), so a caller can rebuild an image only when its inputs changed.
  - Ansible has no module that mirrors several trees into one folder with exclusions and
    fingerprints the result in a single step; doing it with M(ansible.posix.synchronize),
    M(ansible.builtin.copy) and a shell checksum costs one task each.
author:
  - djangoops.stack developers (@djangoops)
attributes:
  check_mode:
    support: full
    description: Reports what would change and the fingerprint the context would have.
  diff_mode:
    support: full
    description: Lists the files that would be added, updated and removed.
options:
  path:
    description:
      - The build context directory. Created when missing.
    type: path
    required: true
  sources:
    description:
      - Files or directories copied into the context.
    type: list
    elements: dict
    default: []
    suboptions:
      src:
        description:
          - A file or a directory on the host the module runs on. A directory's contents
            are copied recursively.
        type: path
        required: true
      dest:
        description:
          - Path inside the context, relative; C(.) for the context's top.
        type: str
        required: true
      excludes:
        description:
          - Shell patterns. A pattern without C(/) matches any file or directory name at any
            depth; a pattern with C(/) matches the path relative to O(sources[].src).
        type: list
        elements: str
        default: []
  files:
    description:
      - Files written with the given content, as a mapping of relative path to text.
    type: dict
    default: {}
  extra:
    description:
      - Text mixed into the fingerprint, for example the build arguments.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Assemble the build context of the app image
  djangoops.stack.build_context:
    path: /home/me/.cache/djangoops/build/myapp
    sources:
      - src: /home/me/src/myapp
        dest: src
        excludes: [.git, __pycache__, "*.pyc"]
      - src: /home/me/.cache/djangoops/wheels/abc123
        dest: wheels
        excludes: [.complete]
      - src: /home/me/src/myapp/requirements.txt
        dest: requirements.txt
    files:
      Dockerfile: "{{ lookup('ansible.builtin.template', 'Dockerfile.j2') }}"
    extra: "{{ build_args | to_json }}"
  register: context
"""

RETURN = r"""
fingerprint:
  description: SHA-256 over the context's file names, modes and contents, and O(extra).
  returned: always
  type: str
  sample: 0f3c1e...
added:
  description: Files (relative paths) copied in that were not there.
  returned: always
  type: list
  elements: str
updated:
  description: Files whose content or mode changed.
  returned: always
  type: list
  elements: str
removed:
  description: Files removed because no source provides them any more.
  returned: always
  type: list
  elements: str
"""

import fnmatch
import hashlib
import os
import shutil
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes


class ContextError(Exception):
    pass


def _excluded(rel, name, patterns):
    for pattern in patterns:
        if "/" in pattern:
            if fnmatch.fnmatchcase(rel, pattern.strip("/")):
                return True
        elif fnmatch.fnmatchcase(name, pattern):
            return True
    return False


def _normalise_dest(dest):
    dest = os.path.normpath(dest or ".")
    if os.path.isabs(dest) or dest == ".." or dest.startswith("../"):
        raise ContextError("dest %r must be a path inside the context" % dest)
    return "" if dest == "." else dest


def desired_files(sources, files):
    """Map each relative path in the context to ('file', abs path, mode) or ('text', bytes, mode)."""
    wanted = {}
    for source in sources:
        src = source["src"]
        dest = _normalise_dest(source["dest"])
        patterns = source.get("excludes") or []
        if os.path.isfile(src):
            if not dest:
                raise ContextError("dest of the file %s must name a file, not the context's top" % src)
            wanted[dest] = ("file", src, stat.S_IMODE(os.stat(src).st_mode))
            continue
        if not os.path.isdir(src):
            raise ContextError("source %s does not exist" % src)
        for root, dirs, names in os.walk(src):
            rel_root = os.path.relpath(root, src)
            rel_root = "" if rel_root == "." else rel_root
            dirs[:] = sorted(d for d in dirs
                             if not _excluded(os.path.join(rel_root, d), d, patterns))
            for name in sorted(names):
                rel = os.path.join(rel_root, name)
                if _excluded(rel, name, patterns):
                    continue
                full = os.path.join(root, name)
                if os.path.islink(full) and not os.path.exists(full):
                    continue
                wanted[os.path.join(dest, rel) if dest else rel] = (
                    "file", full, stat.S_IMODE(os.stat(full).st_mode))
    for rel, text in (files or {}).items():
        wanted[_normalise_dest(rel)] = ("text", to_bytes(text), 0o644)
    return wanted


def _digest_file(path):
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _digest(entry):
    kind, value, dummy = entry
    return hashlib.sha256(value).hexdigest() if kind == "text" else _digest_file(value)


def existing_files(path):
    found = {}
    if not os.path.isdir(path):
        return found
    for root, dummy, names in os.walk(path):
        for name in names:
            full = os.path.join(root, name)
            found[os.path.relpath(full, path)] = full
    return found


def plan(path, wanted):
    """Compare the context with what is wanted: (added, updated, removed, fingerprint)."""
    have = existing_files(path)
    added, updated = [], []
    outer = hashlib.sha256()
    for rel in sorted(wanted):
        entry = wanted[rel]
        digest = _digest(entry)
        outer.update(("%s\0%o\0%s\n" % (rel, entry[2], digest)).encode("utf-8"))
        if rel not in have:
            added.append(rel)
        elif (_digest_file(have[rel]) != digest
              or stat.S_IMODE(os.stat(have[rel]).st_mode) != entry[2]):
            updated.append(rel)
    removed = sorted(set(have) - set(wanted))
    return added, updated, removed, outer


def apply(path, wanted, added, updated, removed):
    for rel in added + updated:
        target = os.path.join(path, rel)
        os.makedirs(os.path.dirname(target) or path, exist_ok=True)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        kind, value, mode = wanted[rel]
        tmp = target + ".djangoops-tmp"
        if kind == "text":
            with open(tmp, "wb") as handle:
                handle.write(value)
        else:
            shutil.copyfile(value, tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    for rel in removed:
        os.unlink(os.path.join(path, rel))
    # Directories left empty by removals go too.
    for root, dirs, names in os.walk(path, topdown=False):
        if root != path and not os.listdir(root):
            os.rmdir(root)


def run(path, sources, files, extra, check_mode):
    wanted = desired_files(sources, files)
    added, updated, removed, outer = plan(path, wanted)
    outer.update(to_bytes(extra))
    if not check_mode and (added or updated or removed or not os.path.isdir(path)):
        os.makedirs(path, exist_ok=True)
        apply(path, wanted, added, updated, removed)
    return {
        "changed": bool(added or updated or removed),
        "fingerprint": outer.hexdigest(),
        "added": added,
        "updated": updated,
        "removed": removed,
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            sources=dict(type="list", elements="dict", default=[], options=dict(
                src=dict(type="path", required=True),
                dest=dict(type="str", required=True),
                excludes=dict(type="list", elements="str", default=[]),
            )),
            files=dict(type="dict", default={}),
            extra=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    try:
        result = run(module.params["path"], module.params["sources"], module.params["files"],
                     module.params["extra"], module.check_mode)
    except (ContextError, OSError) as exc:
        module.fail_json(msg="build context %s: %s" % (module.params["path"], exc))
    if module._diff:
        result["diff"] = {
            "before": "".join("%s\n" % rel for rel in result["updated"] + result["removed"]),
            "after": "".join("%s\n" % rel for rel in result["added"] + result["updated"]),
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
