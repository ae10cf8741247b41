"""The shipped systemd units (units/) as tests use them: rendered with
ExecStart pointing at this build tree's daemons, and parsed the way
systemd reads them (sections, repeated keys, backslash continuations,
"" resets) so that a test can start a daemon exactly as its unit says.

Used by test_units.py (systemd-analyze, systemd-socket-activate) and
test_system.py (a real systemd in systemd-nspawn).
"""

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNITS_SRC = ROOT / "units"

SERVICES = ("postern-smtpd.service", "postern-submission.service", "postern-qmgr.service")
SOCKETS = ("postern-smtpd.socket", "postern-local.socket", "postern-submission.socket",
           "postern-smtps.socket")
TARGETS = ("postern.target",)
ALL_UNITS = SERVICES + SOCKETS + TARGETS

# "@libexecdir@/postern/NAME" in the .in files -> the build tree's NAME
_LIBEXEC = re.compile(r"@libexecdir@/postern/([A-Za-z0-9_-]+)")


def build_binaries(build):
    """The daemons as the units name them, in the build tree BUILD."""
    return {
        "postern-smtpd": Path(build) / "src" / "smtpd" / "postern-smtpd",
        "postern-qmgr": Path(build) / "src" / "qmgr" / "postern-qmgr",
    }


def render_unit_text(text, binaries):
    """The unit text with @libexecdir@/postern/NAME replaced by binaries[NAME];
    any other @VAR@ left over is an error (a new substitution this helper
    does not know)."""
    def sub(m):
        if m.group(1) not in binaries:
            raise KeyError("unit names %s, which the test does not know" % m.group(0))
        return str(binaries[m.group(1)])
    out = _LIBEXEC.sub(sub, text)
    left = re.findall(r"@[A-Za-z_]+@", out)
    assert not left, "unsubstituted %s in a unit" % left
    return out


def render_units(dest, binaries, names=ALL_UNITS):
    """Writes the units into dest (created), ExecStart= pointing at binaries.
    Returns {name: path}."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in names:
        src = UNITS_SRC / (name + ".in")
        if not src.exists():
            src = UNITS_SRC / name
        path = dest / name
        path.write_text(render_unit_text(src.read_text(), binaries))
        out[name] = path
    return out


def parse_unit(path):
    """{section: {key: [values]}} as systemd reads a unit file: comments,
    line continuations (a trailing backslash joins the next line with a
    space), repeated keys appended, an empty assignment resets the list."""
    sections = {}
    current = None
    pending = ""
    for raw in Path(path).read_text().splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, "%s: assignment outside a section: %r" % (path, line)
        key, sep, value = line.partition("=")
        assert sep, "%s: not an assignment: %r" % (path, line)
        key, value = key.strip(), value.strip()
        if value == "":
            current[key] = []
        else:
            current.setdefault(key, []).append(value)
    return sections


def unit_value(unit, section, key, default=None):
    """The last value of key (what systemd uses for single-valued keys)."""
    values = unit.get(section, {}).get(key)
    return values[-1] if values else default


def exec_start_argv(unit):
    """ExecStart= of a service as an argv (systemd's quoting is shell-like
    for these simple lines; "$$" would be a literal "$")."""
    line = unit_value(unit, "Service", "ExecStart")
    assert line, "no ExecStart="
    line = line.lstrip("@-:+!")
    argv = shlex.split(line)
    for a in argv:
        assert "$" not in a.replace("$$", ""), "ExecStart= uses variable %r" % a
    return [a.replace("$$", "$") for a in argv]


def socket_listeners(unit):
    """[(ListenStream value, FileDescriptorName)] of a .socket unit."""
    name = unit_value(unit, "Socket", "FileDescriptorName")
    return [(v, name) for v in unit.get("Socket", {}).get("ListenStream", [])]


def loopback_address(listen_stream, port):
    """A ListenStream= value with its port replaced by an ephemeral one on
    127.0.0.1 (tests never bind public addresses or privileged ports).
    Only port-only and ADDR:PORT forms are shipped."""
    m = re.match(r"^(?:(?:\[[0-9a-fA-F:]+\]|[0-9.]+):)?(\d+)$", listen_stream)
    if listen_stream.startswith("/"):
        return None      # a unix socket: the caller picks a private path
    assert m, "ListenStream=%s is not a port or ADDR:PORT" % listen_stream
    return "127.0.0.1:%d" % port

