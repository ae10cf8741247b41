"""A private dnsmasq on a free port of 127.0.0.1 serving test zones, for
the tests that need DNS answers (test_dns.py, test_smtp_client.py).  The
daemons reach it through POSTERN_DNS_SERVER."""

import contextlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import DEFAULT_TIMEOUT, free_port


@contextlib.contextmanager
def dnsmasq(zones, probe_name, probe_addr):
    """Runs dnsmasq with zones (dnsmasq.conf lines) until the block ends;
    ready once probe_name has the A record probe_addr.  Yields
    "127.0.0.1:PORT"."""
    if shutil.which("dnsmasq") is None:
        pytest.fail("dnsmasq is not installed (tools/test installs dnsmasq-base)")
    d = Path(tempfile.mkdtemp(prefix="postern-dns-", dir="/tmp"))
    port = free_port()
    conf = d / "dnsmasq.conf"
    conf.write_text("port=%d\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\n"
                    "log-queries\n" % port + zones)
    proc = subprocess.Popen(["dnsmasq", "--keep-in-foreground", "--conf-file=%s" % conf,
                             "--user=root", "--pid-file=%s" % (d / "pid"),
                             "--log-facility=%s" % (d / "dnsmasq.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + DEFAULT_TIMEOUT
        while True:
            r = subprocess.run(["dig", "+short", "+tries=1", "+time=1", "@127.0.0.1", "-p",
                                str(port), probe_name, "A"], capture_output=True, text=True)
            if r.stdout.strip() == probe_addr:
                break
            assert proc.poll() is None, "dnsmasq exited: %s" % proc.stderr.read()
            assert time.monotonic() < deadline, "dnsmasq does not answer"
            time.sleep(0.05)
        yield "127.0.0.1:%d" % port
    finally:
        proc.terminate()
        proc.wait(5)
        shutil.rmtree(d, ignore_errors=True)
