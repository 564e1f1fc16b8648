# Copyright: djangoops.stack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The requirements_tree filter: a pip requirements file and every file it includes.

Documented in requirements_tree.yml beside this file
(``ansible-doc -t filter djangoops.stack.requirements_tree``).
"""

from __future__ import annotations

import hashlib
import os
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

# The options of a requirements file that name another file, as pip's optparse spells
# them: "-r f", "-rf", "--requirement f", "--requirement=f", and the same for -c.
_INCLUDE = re.compile(
    r"^(?:(?P<short>-[rc])\s*=?\s*|(?P<long>--requirement|--constraint)(?:\s*=\s*|\s+))(?P<path>\S+)")
# pip drops a comment that starts a line or follows whitespace.
_COMMENT = re.compile(r"(^|\s+)#.*$")
# pip expands ${NAME} (uppercase letters, digits, underscores) from the environment.
_ENV_VAR = re.compile(r"\$\{([A-Z0-9_]+)\}")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

VARIABLE = "image_requirements_file"


def _lines(path):
    """The logical lines of a requirements file, joined and stripped as pip does."""
    with open(path, "rb") as handle:
        text = to_text(handle.read(), errors="surrogate_or_strict")
    logical, buffer, start = [], "", None
    for number, line in enumerate(text.splitlines(), 1):
        if start is None:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1]
            continue
        logical.append((start, buffer + line))
        buffer, start = "", None
    if buffer:
        logical.append((start, buffer))
    return logical


def includes(path):
    """(line number, option, referenced path as written) for each -r/-c line of one file."""
    found = []
    for number, line in _lines(path):
        line = _COMMENT.sub("", line).strip()
        match = _INCLUDE.match(line)
        if not match:
            continue
        option = match.group("short") or match.group("long")
        ref = _ENV_VAR.sub(lambda m: os.environ.get(m.group(1), m.group(0)), match.group("path"))
        found.append((number, option, ref))
    return found


def requirements_tree(path):
    """Collect a requirements file and, recursively, every file it includes.

    Returns a dict: top (the file's absolute path), root (the deepest folder holding every
    file of the tree), entry (top relative to root), files (a list of {src, dest}, dest
    relative to root, top first then in the order pip reads them), included (whether there
    is more than the top file), digest (SHA-256 over every file's dest and content), and
    the layout djangoops.stack.image gives them in its build context and release archive:
    layout (a list of {src, dest}) and entry_file (the text of requirements.txt there when
    it is not the top file itself).

    A lone file is requirements.txt there, as it always was. A tree goes to requirements/
    with the files' paths relative to root, and requirements.txt includes its top file:
    pip, reading requirements.txt in the image or on a VM, then finds every include.
    """
    if not path:
        raise AnsibleFilterError("%s is empty: name the project's requirements file" % VARIABLE)
    top = os.path.normpath(os.path.abspath(os.path.expanduser(to_text(path))))
    if not os.path.isfile(top):
        raise AnsibleFilterError("%s '%s' does not exist." % (VARIABLE, path))

    order = []          # files in the order they are first read
    done = set()        # real paths read completely
    stack = []          # (real path, shown path) of the files being read, for cycles

    def visit(file_path):
        real = os.path.realpath(file_path)
        if real in done:
            return      # included twice (not in a cycle): pip reads it twice, we copy it once
        if any(real == r for r, dummy in stack):
            chain = [shown for dummy, shown in stack[[r for r, dummy in stack].index(real):]] + [file_path]
            raise AnsibleFilterError(
                "%s '%s': the requirements files include each other in a cycle (%s), which pip "
                "cannot read: remove one of these -r/-c lines." % (VARIABLE, path, " -> ".join(chain)))
        stack.append((real, file_path))
        order.append(file_path)
        for number, option, ref in includes(file_path):
            if _URL.match(ref):
                raise AnsibleFilterError(
                    "%s '%s': %s line %d includes %s by URL (%s); the image is built without network "
                    "access: save the file beside the requirements and include it by a relative path."
                    % (VARIABLE, path, file_path, number, ref, option))
            if os.path.isabs(ref):
                raise AnsibleFilterError(
                    "%s '%s': %s line %d includes the absolute path %s (%s); it is copied into the image "
                    "and the release with the file that includes it: use a path relative to that file."
                    % (VARIABLE, path, file_path, number, ref, option))
            target = os.path.normpath(os.path.join(os.path.dirname(file_path), ref))
            if not os.path.isfile(target):
                raise AnsibleFilterError(
                    "%s '%s': %s line %d includes %s (%s %s), which does not exist."
                    % (VARIABLE, path, file_path, number, target, option, ref))
            visit(target)
        stack.pop()
        done.add(real)

    visit(top)
    root = os.path.commonpath([os.path.dirname(f) for f in order])
    files = [{"src": f, "dest": os.path.relpath(f, root)} for f in order]
    digest = hashlib.sha256()
    for entry in files:
        with open(entry["src"], "rb") as handle:
            content = handle.read()
        digest.update(entry["dest"].encode("utf-8") + b"\0" + hashlib.sha256(content).hexdigest().encode() + b"\n")
    if len(files) > 1:
        layout = [{"src": f["src"], "dest": "requirements/" + f["dest"]} for f in files]
        entry_file = "-r requirements/%s\n" % files[0]["dest"]
    else:
        layout = [{"src": top, "dest": "requirements.txt"}]
        entry_file = ""
    return {
        "top": top,
        "root": root,
        "entry": os.path.relpath(top, root),
        "files": files,
        "included": len(files) > 1,
        "digest": digest.hexdigest(),
        "layout": layout,
        "entry_file": entry_file,
    }


class FilterModule:
    """djangoops.stack requirements filters."""

    def filters(self):
        return {"requirements_tree": requirements_tree}
