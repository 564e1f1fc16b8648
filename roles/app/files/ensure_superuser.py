# Make the superuser named in the environment, or bring its password and flags back in
# line; print what happened so Ansible can report a change only when there was one.
import os

from django.contrib.auth import get_user_model

User = get_user_model()
name = os.environ["DJANGOOPS_SUPERUSER_NAME"]
email = os.environ.get("DJANGOOPS_SUPERUSER_EMAIL", "")
password = os.environ["DJANGOOPS_SUPERUSER_PASSWORD"]
user = User.objects.filter(**{User.USERNAME_FIELD: name}).first()
if user is None:
    User.objects.create_superuser(name, email, password)
    print("created")
elif not (user.is_active and user.is_staff and user.is_superuser and user.check_password(password)):
    user.set_password(password)
    user.is_active = user.is_staff = user.is_superuser = True
    user.save()
    print("updated")
else:
    print("unchanged")
