"""The D-Bus API org.postern.Mail1 and mailctl, against a private system bus
with a real polkitd (dbus_fixture.py)."""

import json
import re
import time

import pytest

from conftest import DEFAULT_TIMEOUT
from dbus_fixture import (ADMIN_USER, BUS_NAME, BUS_PATH, IFACE_MANAGER, IFACE_QUEUE,
                          PLAIN_USER, mailbus, wait_for)  # noqa: F401 (mailbus is a fixture)


def test_smoke(postern, mailbus):
    mailbus.start()
    postern.start()
    mailbus.wait_owner()
    r = mailbus.mailctl("status")
    print(r.stdout, r.stderr)
    assert r.returncode == 0
