# Bring the database in line with the release, once per deploy, before the new code
# serves: apply unapplied migrations, then make the superuser named in the environment
# (or bring its password and flags back in line). The last line of output is JSON
# saying what changed, so Ansible reports a change only when there was one.
import json
import os

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

changes = []

executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
if plan:
    call_command("migrate", interactive=False, verbosity=1)
    changes.append(f"applied {len(plan)} migrations")

name = os.environ.get("DJANGOOPS_SUPERUSER_NAME", "")
if name:
    User = get_user_model()
    email = os.environ.get("DJANGOOPS_SUPERUSER_EMAIL", "")
    password = os.environ["DJANGOOPS_SUPERUSER_PASSWORD"]
    user = User.objects.filter(**{User.USERNAME_FIELD: name}).first()
    if user is None:
        User.objects.create_superuser(name, email, password)
        changes.append(f"created superuser {name}")
    elif not (user.is_active and user.is_staff and user.is_superuser and user.check_password(password)):
        user.set_password(password)
        user.is_active = user.is_staff = user.is_superuser = True
        user.save()
        changes.append(f"updated superuser {name}")

print(json.dumps({"changed": bool(changes), "changes": changes}))
