"""A stand-in for org.freedesktop.systemd1 on a test's private bus: the
three Manager methods Postern calls (ListUnitsByNames for mailctl status,
ListUnitsByPatterns and ReloadUnit for qmgr's Reload).  Units and their
states come from a JSON file; ReloadUnit does what the unit's ExecReload
would (kill -HUP of the unit's main pid, from the same file) and appends
"UNIT MODE" to a log file.

    fake_systemd.py ADDRESS UNITS.json CALLS.log
UNITS.json: {"name": {"load": "loaded", "active": "active", "sub": "running", "pid": 123}}
"""

import fnmatch
import json
import os
import signal
import sys

from gi.repository import Gio, GLib

XML = """<node><interface name="org.freedesktop.systemd1.Manager">
<method name="ListUnitsByNames"><arg type="as" direction="in"/>
  <arg type="a(ssssssouso)" direction="out"/></method>
<method name="ListUnitsByPatterns"><arg type="as" direction="in"/><arg type="as" direction="in"/>
  <arg type="a(ssssssouso)" direction="out"/></method>
<method name="ReloadUnit"><arg type="s" direction="in"/><arg type="s" direction="in"/>
  <arg type="o" direction="out"/></method>
</interface></node>"""


def main():
    address, units_path, log_path = sys.argv[1:4]

    def units():
        with open(units_path) as f:
            return json.load(f)

    def row(name, u):
        return (name, "", u.get("load", "loaded"), u.get("active", "inactive"), u.get("sub", "dead"),
                "", "/org/freedesktop/systemd1/unit/x", 0, "", "/")

    def on_call(conn, sender, path, iface, method, params, invocation):
        all_units = units()
        if method == "ListUnitsByNames":
            names = params.unpack()[0]
            rows = [row(n, all_units.get(n, {"load": "not-found"})) for n in names]
            invocation.return_value(GLib.Variant("(a(ssssssouso))", (rows,)))
        elif method == "ListUnitsByPatterns":
            states, patterns = params.unpack()
            rows = [row(n, u) for n, u in sorted(all_units.items())
                    if (not states or u.get("active") in states)
                    and (not patterns or any(fnmatch.fnmatch(n, p) for p in patterns))]
            invocation.return_value(GLib.Variant("(a(ssssssouso))", (rows,)))
        elif method == "ReloadUnit":
            name, mode = params.unpack()
            with open(log_path, "a") as f:
                f.write("%s %s\n" % (name, mode))
            pid = all_units.get(name, {}).get("pid")
            if pid:
                os.kill(pid, signal.SIGHUP)
            invocation.return_value(GLib.Variant("(o)", ("/org/freedesktop/systemd1/job/1",)))

    conn = Gio.DBusConnection.new_for_address_sync(
        address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
    info = Gio.DBusNodeInfo.new_for_xml(XML).interfaces[0]
    conn.register_object("/org/freedesktop/systemd1", info, on_call, None, None)
    conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                   "RequestName", GLib.Variant("(su)", ("org.freedesktop.systemd1", 4)), None,
                   Gio.DBusCallFlags.NONE, -1, None)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    loop.run()


if __name__ == "__main__":
    main()
