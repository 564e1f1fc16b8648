# Fed to `manage.py shell` on stdin with the code of the release a rollback goes back to
# (roles/rolling_upgrade/tasks/vms_rollback_check.yml): which migrations applied to the
# database that code does not know, and, for each app they belong to, the latest
# migration it knows ("zero": none), which is where `migrate <app> <name>` run with the
# newer code takes the schema back to. One JSON line, read by the task. Names only: no
# setting, no row.
import json as _djangoops_json

from django.db import DEFAULT_DB_ALIAS as _djangoops_alias
from django.db import connections as _djangoops_connections
from django.db.migrations.loader import MigrationLoader as _DjangoopsLoader


def _djangoops_unknown_migrations(connection):
    loader = _DjangoopsLoader(connection, ignore_no_migrations=True)
    known = set(loader.disk_migrations)
    for migration in loader.disk_migrations.values():
        known.update(getattr(migration, "replaces", None) or ())  # a squash knows what it replaced
    unknown = sorted(f"{app}.{name}" for app, name in loader.applied_migrations if (app, name) not in known)
    targets = {}
    for app in sorted({name.split(".", 1)[0] for name in unknown}):
        leaves = sorted(name for label, name in loader.graph.leaf_nodes(app) if label == app)
        targets[app] = leaves[-1] if leaves else "zero"
    return {"unknown": unknown, "targets": targets}


print("djangoops-unknown-migrations: "
      + _djangoops_json.dumps(_djangoops_unknown_migrations(_djangoops_connections[_djangoops_alias])))
