"""A private systemd-journald for tests.

libsystemd sends to the fixed path /run/systemd/journal/socket, so the
journald runs in a mount namespace of its own: a tmpfs on /run with
/run/systemd and /run/log bind mounts of the test's directories, and the
test's journald.conf (Storage=volatile: the journal files go to
/run/log/journal, that is DIR/run-log/journal).  Processes that should
log to it are started with `nsenter --mount=/proc/JOURNALD/ns/mnt` in
front (MountNamespace.argv).  Nothing of the host's /run, /var/log or
journal is touched.  The entries are read back with `journalctl -D`.

A namespace with an empty /run/systemd and no journald (journal=False)
is the "no journal" case.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

JOURNALD = "/lib/systemd/systemd-journald"

JOURNALD_CONF = ("[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToSyslog=no\n"
                 "ForwardToWall=no\nForwardToConsole=no\nAudit=no\n")

# Mounts the private directories, then becomes journald (or just waits).
_SETUP = r'''
set -e
D=$1
mount -t tmpfs -o mode=0755 postern-test-run /run
mkdir /run/systemd /run/log
mount --bind "$D/run-systemd" /run/systemd
mount --bind "$D/run-log" /run/log
mount --bind "$D/journald.conf" /etc/systemd/journald.conf
if [ "$2" = journal ]; then exec %s; fi
exec sleep infinity
''' % JOURNALD


class MountNamespace:
    """A private mount namespace held by one process (journald, or a sleep
    when journal=False)."""

    def __init__(self, directory, journal=True):
        self.dir = Path(directory)
        self.journal_dir = self.dir / "run-log" / "journal"
        for d in ("run-systemd", "run-log"):
            (self.dir / d).mkdir(parents=True, exist_ok=True)
        (self.dir / "journald.conf").write_text(JOURNALD_CONF)
        self.journal = journal
        self.log = open(self.dir / "journald.out", "wb")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", _SETUP, "journal-ns",
             str(self.dir), "journal" if journal else "none"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, start_new_session=True)
        self._wait_ready()

    def _inside(self, path):
        return Path("/proc/%d/root" % self.proc.pid) / path.lstrip("/")

    def _wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        want = ["run/systemd/journal/socket", "run/systemd/journal/stdout"] if self.journal else []
        while True:
            assert self.proc.poll() is None, "journal namespace exited:\n" + self.output()
            comm = Path("/proc/%d/comm" % self.proc.pid).read_text().strip()
            mounted = comm in ("systemd-journal", "sleep")
            if mounted and all(self._inside(p).exists() for p in want):
                return
            assert time.monotonic() < deadline, "journald did not start:\n" + self.output()
            time.sleep(0.02)

    def output(self):
        self.log.flush()
        return (self.dir / "journald.out").read_text(errors="replace")

    def argv(self, argv):
        """argv run inside the namespace (nsenter execs it: same pid)."""
        return ["nsenter", "--mount=/proc/%d/ns/mnt" % self.proc.pid, "--"] + [str(a) for a in argv]

    def sync(self):
        """Everything sent so far is written to the journal files."""
        if self.journal:
            subprocess.run(self.argv(["journalctl", "--sync"]), capture_output=True, timeout=20)

    def entries(self, *matches):
        """journalctl -D ... -o json MATCHES, as a list of dicts."""
        self.sync()
        r = subprocess.run(["journalctl", "--no-pager", "-D", str(self.journal_dir), "-o", "json",
                            *matches], capture_output=True, text=True, timeout=20)
        assert r.returncode in (0, 1), r.stderr
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def wait_entries(self, predicate, *matches, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            es = self.entries(*matches)
            if predicate(es):
                return es
            if time.monotonic() > deadline:
                raise AssertionError("journal %r: not there after %.0fs:\n%s" % (
                    matches, timeout, "\n".join(str(e.get("MESSAGE")) for e in es[-30:])))
            time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            self.sync()
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()
