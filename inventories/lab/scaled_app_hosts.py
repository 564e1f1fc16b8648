#!/usr/bin/env python3
"""The lab's extra app hosts, app3 to appN, for lab/scale.yml (an inventory script).

inventories/lab/hosts.yml holds the fixed hosts (lb, app1, app2, db). The number of app
hosts the lab should have, N, is the lab's state, like a cloud's instance count: lab/scale.yml
writes it to ~/.cache/djangoops/lab/app_hosts (DJANGOOPS_LAB_STATE_DIR overrides the
folder) and this script turns it into hosts app3..appN in the group app, each with its
own SSH port (2210 + i) and address (10.213.87.20 + i). Without the file, N is 2 and the
script adds nothing. The lab role (lab/roles/lab) makes a container for every host it lists.
"""

import json
import os
import sys
from pathlib import Path

FIXED_APP_HOSTS = 2
MAX_APP_HOSTS = 9


def app_hosts() -> int:
    state = Path(os.environ.get("DJANGOOPS_LAB_STATE_DIR") or Path.home() / ".cache/djangoops/lab") / "app_hosts"
    try:
        wanted = int(state.read_text().strip())
    except (OSError, ValueError):
        return FIXED_APP_HOSTS
    return max(FIXED_APP_HOSTS, min(MAX_APP_HOSTS, wanted))


def inventory() -> dict:
    names = [f"app{i}" for i in range(FIXED_APP_HOSTS + 1, app_hosts() + 1)]
    hostvars = {
        name: {"ansible_port": 2210 + i, "lab_ipv4": f"10.213.87.{20 + i}", "lab_scaled": True}
        for i, name in enumerate(names, start=FIXED_APP_HOSTS + 1)
    }
    return {"app": {"hosts": names}, "_meta": {"hostvars": hostvars}}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--host":
        print(json.dumps(inventory()["_meta"]["hostvars"].get(sys.argv[2], {})))
    else:
        print(json.dumps(inventory()))
