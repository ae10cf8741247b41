"""A real systemd as PID 1 for the system test tier: systemd-nspawn
--volatile=yes boots the host's /usr on a tmpfs root with a private
network, the test's units in /etc/systemd/system and whatever else the
test binds in.  Commands run inside with nsenter into the container's
leader (its systemd); its files are reachable from here under
/proc/LEADER/root.

The container runs from a cgroup of its own (nspawn puts its payload and
supervisor cgroups next to itself, never in the root cgroup), is stopped
with SIGTERM to nspawn (which powers the container off), and its cgroups
and nspawn's propagation directory are removed afterwards.  Only
processes started here are signalled, by PID.
"""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
NSPAWN = shutil.which("systemd-nspawn") or "/usr/bin/systemd-nspawn"


def _cgroup_dirs(name):
    """Where a cgroup NAME lives: the unified hierarchy alone, or (hybrid
    layout) the named systemd hierarchy and the unified one."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return [CGROUP_ROOT / name]
    return [CGROUP_ROOT / h / name for h in ("systemd", "unified") if (CGROUP_ROOT / h).is_dir()]


def _rmdir_tree(path):
    if not path.is_dir():
        return
    for sub in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        try:
            sub.rmdir()
        except OSError:
            pass
    try:
        path.rmdir()
    except OSError:
        pass


class Container:
    """One booted container.  binds: [(host_path, container_path)] bound
    read-only; unit: the target to boot (systemd.unit=)."""

    def __init__(self, workdir, name, binds, unit):
        self.workdir = Path(workdir)
        self.name = name
        self.binds = binds
        self.unit = unit
        self.log_path = self.workdir / "nspawn.log"
        self.proc = None
        self.leader = None
        self.cgroups = _cgroup_dirs("postern-test-%s" % name)

    # -- life cycle

    def boot(self, timeout=30.0):
        argv = [NSPAWN, "-D", "/", "--volatile=yes", "--private-network", "--register=no",
                "--keep-unit", "-M", self.name, "--console=passive"]
        for src, dst in self.binds:
            argv.append("--bind-ro=%s:%s" % (src, dst) if dst != src else "--bind-ro=%s" % src)
        argv += ["-b", "--", "systemd.firstboot=off", "systemd.unit=%s" % self.unit]
        for d in self.cgroups:
            d.mkdir(parents=True, exist_ok=True)
        cgroups = [str(d / "cgroup.procs") for d in self.cgroups]

        def enter_cgroup():
            for procs in cgroups:
                with open(procs, "w") as f:
                    f.write(str(os.getpid()))

        self.t_boot = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True, preexec_fn=enter_cgroup)
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("systemd-nspawn exited (%s):\n%s" % (self.proc.returncode,
                                                                          self.log()))
            if self.leader is None:
                self.leader = self._find_leader()
            if self.leader is not None:
                r = self.run("systemctl", "is-system-running", check=False, timeout=5)
                state = r.stdout.strip()
                if state in ("running", "degraded"):
                    self.boot_seconds = time.monotonic() - self.t_boot
                    return state
            time.sleep(0.05)
        raise AssertionError("container did not boot in %.0fs (state %r):\n%s"
                             % (timeout, state, self.log()))

    def _find_leader(self):
        """The container's PID 1 as seen from here: nspawn's child systemd."""
        try:
            out = subprocess.run(["pgrep", "-P", str(self.proc.pid), "-x", "systemd"],
                                 capture_output=True, text=True, timeout=5).stdout.split()
        except subprocess.TimeoutExpired:
            return None
        return int(out[0]) if out else None

    def stop(self, timeout=20.0):
        """Powers the container off; returns True if it needed SIGKILL."""
        killed = False
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
                killed = True
        for d in self.cgroups:
            _rmdir_tree(d)
        prop = Path("/run/systemd/nspawn/propagate") / self.name
        for p in (prop, prop.parent, prop.parent.parent):
            try:
                p.rmdir()
            except OSError:
                pass
        return killed

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except FileNotFoundError:
            return ""

    # -- inside

    def run(self, *argv, check=True, timeout=20, input=None):
        """argv in all of the container's namespaces (its files, its pid 1)."""
        r = subprocess.run(["nsenter", "-t", str(self.leader), "-a", *[str(a) for a in argv]],
                           capture_output=True, text=True, timeout=timeout, input=input)
        if check:
            assert r.returncode == 0, "%s: exit %d\n%s%s" % (" ".join(map(str, argv)),
                                                             r.returncode, r.stdout, r.stderr)
        return r

    def run_in_network(self, *argv, timeout=30):
        """argv in the container's network namespace only (host files): a
        client for the container's 127.0.0.1."""
        return subprocess.run(["nsenter", "-t", str(self.leader), "-n", *[str(a) for a in argv]],
                              capture_output=True, text=True, timeout=timeout)

    def path(self, inside):
        """A container path as a host path."""
        return Path("/proc/%d/root" % self.leader) / str(inside).lstrip("/")

    def show(self, unit, *props):
        """systemctl show -p ... as a dict."""
        r = self.run("systemctl", "show", unit, *["--property=%s" % p for p in props])
        return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)

    def journal(self, *args):
        """journalctl -o json entries (list of dicts) for the given matches."""
        r = self.run("journalctl", "--no-pager", "-o", "json", *args, check=False)
        assert r.returncode in (0, 1), r.stderr
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def wait_journal(self, predicate, *args, timeout=10.0):
        """Polls journalctl until predicate(entries) is true; returns entries."""
        deadline = time.monotonic() + timeout
        while True:
            entries = self.journal(*args)
            if predicate(entries):
                return entries
            if time.monotonic() > deadline:
                raise AssertionError("journal %r: condition not met in %.0fs; last entries:\n%s"
                                     % (args, timeout, "\n".join(e.get("MESSAGE", "") if
                                                                 isinstance(e.get("MESSAGE"), str)
                                                                 else repr(e.get("MESSAGE"))
                                                                 for e in entries[-30:])))
            time.sleep(0.1)
