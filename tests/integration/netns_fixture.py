"""Remote hosts with addresses of their own, for the outbound delivery tests
(test_smtp_remote.py): one network namespace per remote host, joined to
the root namespace by a veth pair (10.200.N.1 on our side, 10.200.N.2 on
the host's), running Postfix's smtp-sink or the scripted peer below under
`ip netns exec`; a private dnsmasq (dnsmasq_fixture.py) serves the MX and
A records naming them.  The daemons under test stay in the root
namespace and reach the resolver through POSTERN_DNS_SERVER, as in
test_smtp_client.py; their connections go out through the veth to port
25 of the remote address, as to any MX.

Names are unique per run ("pstn-PID-RANDOM-K" namespaces, "pvRANDOMK" veth
ends): namespaces left by a run that died (its PID no longer alive) are
removed when the fixture starts, and every namespace and veth of a test
is removed by its finalizer, whatever the outcome.  Processes are stopped
by their PID (TERM, then KILL); deleting a namespace takes its veth pair
with it.

Run as a program (inside a namespace) this file is the scripted peer:

  python3 netns_fixture.py peer ADDR:PORT DIR RULES.json

an SMTP server for what smtp-sink cannot express: replies per recipient
and per attempt, a reply held back after the message until a file
appears.  It writes one JSON line per event to DIR/events.jsonl and each
message it accepted as DIR/msg-N.eml (the data as received, dot-unstuffed,
CRLF kept) with DIR/msg-N.json (the envelope).
"""

import json
import os
import random
import re
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

NS_PREFIX = "pstn-"
SUBNET = "10.200"
PEER_SCRIPT = Path(__file__).resolve()
PY = "/usr/bin/python3"


# ---------------------------------------------------------------- the scripted peer

class _PeerHandler(socketserver.StreamRequestHandler):
    """One SMTP session, driven by the server's rules:

    banner       greeting line (default "220 NAME ESMTP"); null: never greet
    rcpt         [[regex, [reply for attempt 1, attempt 2, ...]], ...]: the
                 reply to RCPT TO for a matching address, by how many times
                 this address was offered before (the last one repeats);
                 anything else gets "250 2.1.5 Ok"
    hold_dot     path: after the message, reply only once this file exists
                 (checked every 20 ms, for at most hold_max seconds)
    dot_reply    the reply after the message (default "250 2.0.0 Ok: queued as N")
    """

    def setup(self):
        super().setup()
        self.connection.settimeout(self.server.rules.get("idle", 60))

    def say(self, line):
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        srv = self.server
        rules = srv.rules
        session = srv.next_number("session")
        srv.event(session=session, event="connect", client=self.client_address[0])
        banner = rules.get("banner", "220 %s ESMTP scripted peer" % rules.get("name", "peer"))
        if banner is None:
            # accept the connection and stay silent until the client leaves
            try:
                while self.rfile.readline():
                    pass
            except OSError:
                pass
            srv.event(session=session, event="closed")
            return
        self.say(banner)
        mail, rcpts = None, []
        try:
            while True:
                line = self.rfile.readline()
                if not line:
                    break
                cmd = line.rstrip(b"\r\n").decode("utf-8", "replace")
                verb = cmd.split(" ", 1)[0].upper()
                srv.event(session=session, event="command", line=cmd)
                if verb == "EHLO":
                    self.say("250-%s" % rules.get("name", "peer"))
                    self.say("250-PIPELINING")
                    self.say("250-8BITMIME")
                    self.say("250 ENHANCEDSTATUSCODES")
                elif verb == "HELO":
                    self.say("250 %s" % rules.get("name", "peer"))
                elif verb == "MAIL":
                    mail, rcpts = cmd[5:].strip(), []
                    self.say("250 2.1.0 Ok")
                elif verb == "RCPT":
                    m = re.match(r"(?i)TO:\s*<([^>]*)>", cmd[5:].strip())
                    addr = m.group(1) if m else ""
                    reply = srv.rcpt_reply(addr)
                    srv.event(session=session, event="rcpt", rcpt=addr, reply=reply)
                    if reply.startswith("2"):
                        rcpts.append(addr)
                    self.say(reply)
                elif verb == "DATA":
                    if mail is None or not rcpts:
                        self.say("554 5.5.1 Error: no valid recipients")
                        continue
                    self.say("354 End data with <CR><LF>.<CR><LF>")
                    data = b""
                    while True:
                        ln = self.rfile.readline()
                        if not ln:
                            raise ConnectionError("EOF in DATA")
                        if ln == b".\r\n":
                            break
                        data += ln[1:] if ln.startswith(b".") else ln
                    n = srv.next_number("msg")
                    srv.event(session=session, event="dot", msg=n, size=len(data))
                    hold = rules.get("hold_dot")
                    if hold:
                        deadline = time.monotonic() + rules.get("hold_max", 30)
                        while not os.path.exists(hold) and time.monotonic() < deadline:
                            time.sleep(0.02)
                    # the message counts as received once the 250 is on its way
                    (srv.dir / ("msg-%d.json" % n)).write_text(json.dumps(
                        {"session": session, "mail": mail, "rcpts": rcpts}))
                    (srv.dir / ("msg-%d.eml" % n)).write_bytes(data)
                    self.say(rules.get("dot_reply", "250 2.0.0 Ok: queued as %d" % n))
                    srv.event(session=session, event="accepted", msg=n)
                    mail, rcpts = None, []
                elif verb == "RSET":
                    mail, rcpts = None, []
                    self.say("250 2.0.0 Ok")
                elif verb == "NOOP":
                    self.say("250 2.0.0 Ok")
                elif verb == "QUIT":
                    self.say("221 2.0.0 Bye")
                    break
                else:
                    self.say("502 5.5.2 Error: command not recognized")
        except (OSError, ConnectionError) as e:
            srv.event(session=session, event="lost", error=str(e))
            return
        srv.event(session=session, event="closed")


class _PeerServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, outdir, rules):
        self.dir = Path(outdir)
        self.rules = rules
        self.lock = threading.Lock()
        self.counters = {}
        self.offered = {}
        super().__init__(addr, _PeerHandler)

    def next_number(self, what):
        with self.lock:
            self.counters[what] = self.counters.get(what, 0) + 1
            return self.counters[what]

    def event(self, **fields):
        fields["t"] = time.time()
        with self.lock, open(self.dir / "events.jsonl", "a") as f:
            f.write(json.dumps(fields) + "\n")

    def rcpt_reply(self, addr):
        for pattern, replies in self.rules.get("rcpt", []):
            if re.fullmatch(pattern, addr, re.I):
                with self.lock:
                    k = self.offered.get(addr, 0)
                    self.offered[addr] = k + 1
                return replies[min(k, len(replies) - 1)]
        return "250 2.1.5 Ok"


def peer_main(argv):
    host, port = argv[0].rsplit(":", 1)
    rules = json.loads(Path(argv[2]).read_text())
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    srv = _PeerServer((host, int(port)), argv[1], rules)
    srv.event(event="listening")
    srv.serve_forever()


# ---------------------------------------------------------------- the fixture side

def _ip(*args, check=True):
    r = subprocess.run(["ip", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_pids(pids, grace=3.0):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    for pid in pids:
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _ns_pids(ns):
    r = _ip("netns", "pids", ns, check=False)
    return [int(x) for x in r.stdout.split()] if r.returncode == 0 else []


def _delete_ns(ns):
    _stop_pids(_ns_pids(ns))
    _ip("netns", "del", ns, check=False)


def remove_stale_namespaces():
    """Namespaces of earlier runs whose process is gone: our prefix, a dead PID."""
    r = _ip("netns", "list", check=False)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(re.escape(NS_PREFIX) + r"(\d+)-", name)
        if m and not _pid_alive(int(m.group(1))):
            _delete_ns(name)


def _used_subnets():
    r = _ip("-4", "-o", "addr", "show", check=False)
    return {int(m.group(1)) for m in re.finditer(r"inet %s\.(\d+)\." % re.escape(SUBNET), r.stdout)}


def tcp_greeting(addr, port=25, timeout=0.5):
    """The first bytes a server at addr:port sends (b"" if it closes, None
    if the connection fails or nothing comes within timeout)."""
    try:
        with socket.create_connection((addr, port), timeout=timeout) as s:
            try:
                return s.recv(512)
            except socket.timeout:
                return None
    except OSError:
        return None


class Proc:
    """A process inside a namespace, stopped by its PID."""

    def __init__(self, name, argv, workdir):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(workdir) / ("%s.log" % name)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(3)


class SmtpSink:
    """Postfix's smtp-sink on a remote host's address, each transaction
    dumped to a file of its own (-d)."""

    def __init__(self, host, options, banner_name):
        self.host = host
        self.dir = host.dir / ("sink-%d" % host.next_id())
        self.dir.mkdir()
        os.chown(self.dir, 65534, 65534)       # nobody: smtp-sink runs as -u nobody
        argv = ["ip", "netns", "exec", host.ns, "smtp-sink", "-u", "nobody",
                "-h", banner_name, "-d", str(self.dir) + "/%H%M%S.", *options,
                "%s:25" % host.addr, "16"]
        self.proc = host.start("smtp-sink", argv)

    def dumps(self):
        """The transactions received so far, oldest first: [bytes]."""
        files = sorted(self.dir.iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [p.read_bytes() for p in files]


class ScriptedPeer:
    """The peer of peer_main() on a remote host's address."""

    def __init__(self, host, rules):
        self.host = host
        self.dir = host.dir / ("peer-%d" % host.next_id())
        self.dir.mkdir()
        rules = dict(rules)
        rules.setdefault("name", host.name)
        self.rules_path = self.dir / "rules.json"
        self.rules_path.write_text(json.dumps(rules))
        argv = ["ip", "netns", "exec", host.ns, PY, PEER_SCRIPT, "peer",
                "%s:25" % host.addr, self.dir, self.rules_path]
        self.proc = host.start("peer", argv)

    def events(self, **match):
        try:
            lines = (self.dir / "events.jsonl").read_text().splitlines()
        except FileNotFoundError:
            return []
        evs = [json.loads(ln) for ln in lines if ln.strip()]
        return [e for e in evs if all(e.get(k) == v for k, v in match.items())]

    def wait_event(self, timeout=10.0, n=1, **match):
        deadline = time.monotonic() + timeout
        while True:
            got = self.events(**match)
            if len(got) >= n:
                return got
            if not self.proc.alive():
                raise AssertionError("peer on %s died:\n%s" % (self.host.addr, self.proc.log()))
            if time.monotonic() > deadline:
                raise AssertionError("peer on %s: %d event(s) %r after %.0fs, wanted %d\n%s"
                                     % (self.host.addr, len(got), match, timeout, n,
                                        "\n".join(map(json.dumps, self.events()))))
            time.sleep(0.02)

    def messages(self):
        """[(envelope dict, bytes)] of the accepted messages, in order."""
        out = []
        for n in range(1, 1000):
            eml = self.dir / ("msg-%d.eml" % n)
            env = self.dir / ("msg-%d.json" % n)
            if not env.exists():
                if eml.exists() or (self.dir / ("msg-%d.json" % (n + 1))).exists():
                    continue
                break
            out.append((json.loads(env.read_text()), eml.read_bytes()))
        return out


class RemoteHost:
    """One namespace: veth end eth0 with addr (unless silent), lo up."""

    def __init__(self, net, name, k, subnet, answer_arp=True):
        self.net = net
        self.name = name
        self.ns = "%s%d-%s-%d" % (NS_PREFIX, os.getpid(), net.token, k)
        self.veth = "pv%s%d" % (net.token, k)
        self.gateway = "%s.%d.1" % (SUBNET, subnet)
        self.addr = "%s.%d.2" % (SUBNET, subnet)
        self.dir = net.dir / name
        self.dir.mkdir(mode=0o755)
        self.procs = []
        self._ids = 0
        _ip("netns", "add", self.ns)
        net.namespaces.append(self)
        _ip("link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.ns)
        _ip("addr", "add", "%s/24" % self.gateway, "dev", self.veth)
        _ip("link", "set", self.veth, "up")
        _ip("-n", self.ns, "link", "set", "lo", "up")
        if answer_arp:
            _ip("-n", self.ns, "addr", "add", "%s/24" % self.addr, "dev", "eth0")
        _ip("-n", self.ns, "link", "set", "eth0", "up")

    def next_id(self):
        self._ids += 1
        return self._ids

    def start(self, what, argv):
        p = Proc("%s-%d" % (what, self.next_id()), argv, self.dir)
        self.procs.append(p)
        return p

    def wait_listening(self, proc, expect=b"220", timeout=10.0):
        """Until a connection to addr:25 works (and, unless expect is None,
        its first bytes start with expect)."""
        deadline = time.monotonic() + timeout
        while True:
            if expect is None:
                try:
                    socket.create_connection((self.addr, 25), timeout=0.5).close()
                    return
                except OSError:
                    pass
            else:
                got = tcp_greeting(self.addr)
                if got and got.startswith(expect):
                    return
            if not proc.alive():
                raise AssertionError("%s exited:\n%s" % (proc.name, proc.log()))
            if time.monotonic() > deadline:
                raise AssertionError("nothing answers on %s:25 after %.0fs:\n%s"
                                     % (self.addr, timeout, proc.log()))
            time.sleep(0.02)

    def sink(self, *options, expect=b"220"):
        """smtp-sink with options (see smtp-sink(1)); waits for it."""
        s = SmtpSink(self, options, self.name)
        self.wait_listening(s.proc, expect)
        return s

    def peer(self, expect=b"220", **rules):
        p = ScriptedPeer(self, rules)
        self.wait_listening(p.proc, None if rules.get("banner", "") is None else expect)
        return p

    def stop_processes(self):
        for p in self.procs:
            p.stop()
        # anything still running in our namespace (children of ours)
        _stop_pids(_ns_pids(self.ns))

    def logs(self):
        return "\n".join("==== %s on %s (%s):\n%s" % (p.name, self.name, self.addr, p.log()[-4000:])
                         for p in self.procs)


class Network:
    """The remote hosts of one test and their DNS."""

    def __init__(self, workdir):
        self.dir = Path(workdir)
        os.chmod(self.dir, 0o755)              # smtp-sink (as nobody) writes below it
        self.token = "%06x" % random.randrange(16 ** 6)
        self.namespaces = []
        self._k = 0
        self._dns = None
        self.dns_server = None

    def host(self, name, answer_arp=True):
        """A remote host called name (its DNS name), with an address of its
        own; answer_arp=False: the address is routed to it but nobody has it,
        so connections to it time out."""
        used = _used_subnets()
        free = [n for n in range(1, 255) if n not in used]
        if not free:
            raise RuntimeError("no free %s.N.0/24 subnet" % SUBNET)
        self._k += 1
        # a random free one: two runs at once rarely pick the same
        return RemoteHost(self, name, self._k, random.choice(free), answer_arp)

    def start_dns(self, records):
        """dnsmasq with records (dnsmasq.conf lines) and an A record for each
        host; returns "127.0.0.1:PORT" for POSTERN_DNS_SERVER."""
        from dnsmasq_fixture import dnsmasq
        lines = ["local=/test/"] + ["host-record=%s,%s" % (h.name, h.addr) for h in self.namespaces]
        lines += list(records) + ["host-record=probe.netns.test,192.0.2.99"]
        self._dns = dnsmasq("\n".join(lines) + "\n", "probe.netns.test", "192.0.2.99")
        self.dns_server = self._dns.__enter__()
        return self.dns_server

    def logs(self):
        return "\n".join(h.logs() for h in self.namespaces)

    def close(self):
        errors = []
        for h in self.namespaces:
            try:
                h.stop_processes()
            except Exception as e:          # go on: the namespaces must go
                errors.append("%s: %s" % (h.ns, e))
        if self._dns is not None:
            try:
                self._dns.__exit__(None, None, None)
            except Exception as e:
                errors.append("dnsmasq: %s" % e)
        for h in self.namespaces:
            _delete_ns(h.ns)
            if _ip("link", "show", h.veth, check=False).returncode == 0:
                _ip("link", "del", h.veth, check=False)
            if h.ns in _ip("netns", "list", check=False).stdout.split():
                errors.append("namespace %s not removed" % h.ns)
        return errors


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "peer":
        peer_main(sys.argv[2:])
    else:
        sys.exit("usage: netns_fixture.py peer ADDR:PORT DIR RULES.json")
