"""A private D-Bus system bus with a real polkitd, for the tests of the
org.postern.Mail1 API.

- dbus-daemon with a "system" configuration of its own (a socket in the
  test directory, the stock default-deny policy for method calls, root
  allowed everything) that includes the project's bus policy
  dbus/org.postern.Mail1.conf and polkit's own policy from
  /usr/share/dbus-1/system.d, so the project's policy file is what lets
  other users call methods;
- polkitd on that bus, in a private mount namespace in which the test's
  actions directory (the project's polkit/org.postern.mail.policy) and
  rules directory (polkit/50-postern-mailadm.rules.example installed as a
  .rules file) are bind-mounted over the compiled-in ones, so no system
  file is read or changed.

Both run as conftest Daemons of the test's Postern instance, so they are
stopped (TERM, then KILL) with it, after qmgr and smtpd.
"""

import grp
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUILD, DEFAULT_TIMEOUT, ROOT, Daemon

MAILCTL = BUILD / "src" / "mailctl" / "mailctl"
ADMIN_GROUP = "postern-admin"          # the example rules' group
ADMIN_USER = "mailtest2"               # a member of it (tools/lib.sh)
PLAIN_USER = "mailtest"                # no group, no rights

BUS_NAME = "org.postern.Mail1"
BUS_PATH = "/org/postern/Mail1"
IFACE_MANAGER = "org.postern.Mail1.Manager"
IFACE_QUEUE = "org.postern.Mail1.Queue"

SYSTEM_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path={socket}</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  <policy user="root"><allow own="*"/><allow send_type="method_call"/></policy>
  <includedir>/usr/share/dbus-1/system.d</includedir>
  <includedir>{systemd}</includedir>
</busconfig>
"""


def ensure_admin_group():
    """The example rules' group with mailtest2 in it (tools/lib.sh does the
    same for CI)."""
    try:
        g = grp.getgrnam(ADMIN_GROUP)
    except KeyError:
        subprocess.run(["groupadd", "-r", ADMIN_GROUP], check=True)
        g = grp.getgrnam(ADMIN_GROUP)
    if ADMIN_USER not in g.gr_mem:
        subprocess.run(["usermod", "-aG", ADMIN_GROUP, ADMIN_USER], check=True)


def wait_for(predicate, what, timeout=DEFAULT_TIMEOUT, daemon=None):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if daemon is not None and not daemon.alive():
            raise AssertionError("%s died while waiting for %s:\n%s" % (daemon.name, what, daemon.log()))
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(0.05)


class MailBus:
    """The private system bus (and polkitd) of one test."""

    def __init__(self, postern):
        self.p = postern
        self.dir = Path(postern.tmp) / "dbus"
        self.dir.mkdir()
        os.chmod(self.dir, 0o755)
        self.socket = self.dir / "system_bus_socket"
        self.address = "unix:path=%s" % self.socket
        self.systemd = self.dir / "system.d"
        self.systemd.mkdir()
        shutil.copy(ROOT / "dbus" / "org.postern.Mail1.conf", self.systemd)
        (self.dir / "system.conf").write_text(SYSTEM_CONF.format(socket=self.socket,
                                                                 systemd=self.systemd))
        self.bus = None
        self.polkitd = None
        # qmgr, smtpd and every client of this test use this bus
        postern.env["DBUS_SYSTEM_BUS_ADDRESS"] = self.address

    # -- processes

    def start_bus(self):
        self.p._n += 1
        self.bus = Daemon("dbus-daemon-%d" % self.p._n,
                          ["dbus-daemon", "--config-file=%s" % (self.dir / "system.conf"),
                           "--nofork", "--nopidfile"], self.p.env, self.p.tmp)
        self.p.daemons.append(self.bus)
        wait_for(lambda: self.busctl("status", "org.freedesktop.DBus").returncode == 0,
                 "the private bus", daemon=self.bus)
        return self

    def start_polkit(self):
        ensure_admin_group()
        actions = self.dir / "polkit-actions"
        rules = self.dir / "polkit-rules"
        empty = self.dir / "polkit-empty"
        for d in (actions, rules, empty):
            d.mkdir()
        shutil.copy(ROOT / "polkit" / "org.postern.mail.policy", actions)
        shutil.copy(ROOT / "polkit" / "50-postern-mailadm.rules.example",
                    rules / "50-postern-mailadm.rules")
        pk = pwd.getpwnam("polkitd")
        for d in (rules, empty):
            for f in [d] + list(d.iterdir()):
                os.chown(f, pk.pw_uid, 0)
            os.chmod(d, 0o700)
        script = ("mount --bind '%s' /usr/share/polkit-1/actions && "
                  "mount --bind '%s' /etc/polkit-1/rules.d && "
                  "mount --bind '%s' /usr/share/polkit-1/rules.d && "
                  "exec /usr/lib/polkit-1/polkitd --no-debug") % (actions, rules, empty)
        self.p._n += 1
        self.polkitd = Daemon("polkitd-%d" % self.p._n,
                              ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                              self.p.env, self.p.tmp)
        self.p.daemons.append(self.polkitd)
        wait_for(lambda: self.has_owner("org.freedesktop.PolicyKit1"), "polkitd on the bus",
                 daemon=self.polkitd)
        return self

    def start(self):
        """Bus and polkitd."""
        return self.start_bus().start_polkit()

    def stop_bus(self):
        self.bus.stop()

    # -- clients

    def env(self):
        return dict(self.p.env, DBUS_SYSTEM_BUS_ADDRESS=self.address)

    def run(self, argv, user=None, input=None, timeout=DEFAULT_TIMEOUT * 3):
        """Runs a client, as root or as user (setpriv, with its groups)."""
        if user is not None:
            argv = ["setpriv", "--reuid=%s" % user, "--regid=%s" % user, "--init-groups"] + list(argv)
        return subprocess.run([str(a) for a in argv], env=self.env(), input=input,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)

    def mailctl(self, *args, user=None, input=None):
        return self.run([MAILCTL, *args], user=user, input=input)

    def busctl(self, *args, user=None):
        return self.run(["busctl", "--system", "--no-pager", *args], user=user)

    def gdbus_call(self, iface, method, *args, user=None):
        return self.run(["gdbus", "call", "--system", "--dest", BUS_NAME, "--object-path",
                         BUS_PATH, "--method", "%s.%s" % (iface, method), *args], user=user)

    def has_owner(self, name):
        r = self.busctl("call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                        "org.freedesktop.DBus", "NameHasOwner", "s", name)
        return r.returncode == 0 and r.stdout.strip() == "b true"

    def wait_owner(self, name=BUS_NAME, timeout=DEFAULT_TIMEOUT):
        wait_for(lambda: self.has_owner(name), "%s on the bus" % name, timeout,
                 daemon=self.p.qmgr)


@pytest.fixture
def mailbus(postern):
    """A private system bus with polkitd for the test's Postern instance;
    qmgr started afterwards finds it through DBUS_SYSTEM_BUS_ADDRESS."""
    for b in (MAILCTL,):
        if not b.exists():
            pytest.fail("%s is not built (POSTERN_BUILD_DIR=%s)" % (b, BUILD))
    return MailBus(postern)
