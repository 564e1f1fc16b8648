# Copyright: djangoops.stack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The index of the releases whose static files are in a bucket, and what pruning removes.

Documented in static_bucket_index.yml beside this file
(``ansible-doc -t filter djangoops.stack.static_bucket_index``).
"""

from __future__ import annotations

import json
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.common.text.converters import to_text


def _entries(index_text):
    text = to_text(index_text if index_text is not None else "").strip()
    if not text:
        return []
    try:
        index = json.loads(text)
    except ValueError as exc:
        raise AnsibleFilterError(f"static_bucket_index: the bucket's release index is not JSON: {exc}") from exc
    releases = index.get("releases") if isinstance(index, dict) else None
    if not isinstance(releases, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("release"), str) and is_sequence(entry.get("keys"))
        for entry in releases
    ):
        raise AnsibleFilterError(
            "static_bucket_index: the bucket's release index must be {\"releases\": [{\"release\": ..., \"keys\": [...]}]}"
        )
    return releases


def static_bucket_index(index_text, release, keys, keep):
    """The index after publishing ``release`` (with its ``keys``), keeping the ``keep`` newest
    releases, and the keys only the releases dropped from it refer to.

    The index lists releases oldest first; publishing a release again (a rollback by deploy)
    moves it to the end. A key that a kept release also refers to is never removed.
    """
    if not isinstance(release, str) or not release:
        raise AnsibleFilterError("static_bucket_index: the release must be a non-empty string")
    if not is_sequence(keys):
        raise AnsibleFilterError("static_bucket_index: keys must be a list of object keys")
    try:
        keep = int(keep)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"static_bucket_index: keep must be a number, not {keep!r}") from exc
    if keep < 1:
        raise AnsibleFilterError(f"static_bucket_index: keep must be 1 or more, not {keep}")
    entries = [entry for entry in _entries(index_text) if entry["release"] != release]
    entries.append({"release": release, "keys": sorted({to_text(key) for key in keys})})
    kept, dropped = entries[-keep:], entries[:-keep]
    still_used = {key for entry in kept for key in entry["keys"]}
    removed = sorted({key for entry in dropped for key in entry["keys"]} - still_used)
    return {
        "index": {"releases": kept},
        "dropped": [entry["release"] for entry in dropped],
        "delete": removed,
    }


def static_bucket_releases(index_text):
    """The releases of the bucket's index as read (oldest first); [] for no index."""
    return _entries(index_text)


_HASHED = re.compile(r".+[.][0-9a-f]{12}[.][^/]+$")


def static_bucket_sample(keys):
    """A hashed file of a release (collectstatic's name.0123456789ab.ext), to fetch at the
    static URL; staticfiles.json when the release has none."""
    if not is_sequence(keys):
        raise AnsibleFilterError("static_bucket_sample: expects a release's list of object keys")
    return next((to_text(key) for key in sorted(keys) if _HASHED.match(to_text(key))), "staticfiles.json")


class FilterModule:
    """djangoops.stack filters for static files in a bucket."""

    def filters(self):
        return {"static_bucket_index": static_bucket_index, "static_bucket_releases": static_bucket_releases,
                "static_bucket_sample": static_bucket_sample}
