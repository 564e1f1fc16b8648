"""Make the clone importable as ansible_collections.djangoops.stack (via ./collections)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "collections"))
