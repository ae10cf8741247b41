"""Remote deliveries that wait do not hold up the queue (issue 7): a
delivery waiting on a slow server gives up its delivery thread's place
(src/common/workpool.c), so local mail goes on and more sessions run at
once than qmgr_delivery_threads; the sessions of one message to several
destinations run side by side.

The slow server is a small SMTP server in this process (a real TCP
server speaking enough SMTP for the client) that holds its greeting:
that is what makes the waits observable and long enough to measure."""

import socket
import threading
import time

import pytest

from conftest import listening_socket


class SlowServer:
    """Greets after `delay` seconds, then accepts every message.  Records
    when each connection came and how many were open at once."""

    def __init__(self, delay):
        self.delay = delay
        self.sock = listening_socket()
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.open = self.most = 0
        self.connected = []         # monotonic times
        self.messages = []          # (rcpts, data)
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with self.lock:
            self.open += 1
            self.most = max(self.most, self.open)
            self.connected.append(time.monotonic())
        try:
            conn.settimeout(30)
            time.sleep(self.delay)
            f = conn.makefile("rb")
            conn.sendall(b"220 slow.test ESMTP\r\n")
            rcpts = []
            for line in f:
                cmd = line.strip().upper()
                if cmd.startswith(b"EHLO") or cmd.startswith(b"HELO"):
                    conn.sendall(b"250-slow.test\r\n250 8BITMIME\r\n")
                elif cmd.startswith(b"MAIL"):
                    rcpts = []
                    conn.sendall(b"250 2.1.0 Ok\r\n")
                elif cmd.startswith(b"RCPT"):
                    rcpts.append(line.strip()[8:].decode())
                    conn.sendall(b"250 2.1.5 Ok\r\n")
                elif cmd == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    data = b""
                    for body in f:
                        if body == b".\r\n":
                            break
                        data += body
                    with self.lock:
                        self.messages.append((rcpts, data))
                    conn.sendall(b"250 2.0.0 Ok: queued\r\n")
                elif cmd == b"QUIT":
                    conn.sendall(b"221 2.0.0 Bye\r\n")
                    break
                else:
                    conn.sendall(b"250 2.0.0 Ok\r\n")
        except OSError:
            pass
        finally:
            conn.close()
            with self.lock:
                self.open -= 1

    def wait_messages(self, n, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= n:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError("slow server: %d of %d messages" % (len(self.messages), n))

    def close(self):
        self.stopping = True
        self.sock.close()


def test_waiting_remote_deliveries_do_not_hold_up_the_queue(postern):
    srv = SlowServer(delay=4)
    try:
        p = postern
        # two delivery threads: without stand-ins two slow sessions would
        # hold every message behind them for the whole delay
        p.start(relayhost="[127.0.0.1]:%d" % srv.port, qmgr_delivery_threads="2",
                smtp_connection_cache_time_limit="0s")
        for i in range(6):
            p.send("user%d@far.test" % i, subject="slow %d" % i)
        sent = time.monotonic()
        p.send("mailtest@example.test", subject="local, not waiting")
        assert b"Subject: local, not waiting" in p.wait_mbox("mailtest", 1)[0]
        local_took = time.monotonic() - sent
        msgs = srv.wait_messages(6)
        assert sorted(r[0] for r, _ in msgs) == ["<user%d@far.test>" % i for i in range(6)]
        # the local mail did not wait for a greeting (4 s) ...
        assert local_took < 3, local_took
        # ... and all six sessions were open at once, three per thread
        assert srv.most == 6, srv.most
        for i in range(6):
            m = p.qmgr.wait_log(r"to=<user%d@far\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, "
                                r"delay=\S+, delays=[\d.]+/[\d.]+/([\d.]+)/([\d.]+), .*"
                                r"status=sent \(250 2\.0\.0 Ok: queued\)" % (i, srv.port))
            # the held greeting is connection set-up (delays=a/b/c/d: c), not transmission
            assert float(m.group(1)) >= 3.5 and float(m.group(2)) < 1, m.group(0)
        p.barrier()
        assert len(srv.messages) == 6
    finally:
        srv.close()


@pytest.mark.parametrize("via", ["recipients", "virtual alias"])
def test_sessions_of_one_message_run_side_by_side(postern, via):
    """One message to two destinations (three recipients, or one virtual
    alias that expands to three remote addresses): the addresses of a
    destination share one session, and the two sessions run side by
    side, not one after the other."""
    a, b = SlowServer(delay=3), SlowServer(delay=3)
    try:
        p = postern
        table = p.tmp / "transport"
        table.write_text("a.test smtp:[127.0.0.1]:%d\nb.test smtp:[127.0.0.1]:%d\n"
                         % (a.port, b.port))
        table.chmod(0o644)
        aliases = p.tmp / "virtual"
        aliases.write_text("team@example.test x@a.test, y@b.test, z@a.test\n")
        aliases.chmod(0o644)
        p.start(transport_maps="texthash:%s" % table,
                virtual_alias_maps="texthash:%s" % aliases)
        start = time.monotonic()
        if via == "recipients":
            p.send(["x@a.test", "y@b.test", "z@a.test"], subject="two destinations")
        else:
            p.send("team@example.test", subject="two destinations")
        ((rcpts_a, data_a),) = a.wait_messages(1)
        ((rcpts_b, data_b),) = b.wait_messages(1)
        took = time.monotonic() - start
        assert rcpts_a == ["<x@a.test>", "<z@a.test>"] and rcpts_b == ["<y@b.test>"]
        assert b"Subject: two destinations" in data_a and data_a == data_b
        assert len(a.connected) == 1 and len(b.connected) == 1
        # both sessions began together, not one after the other's end
        assert abs(a.connected[0] - b.connected[0]) < 1.5, (a.connected, b.connected)
        assert took < 5.5, took
        orig = ", orig_to=<team@example\\.test>" if via != "recipients" else ""
        for rcpt, srv in (("x@a", a), ("y@b", b), ("z@a", a)):
            p.qmgr.wait_log(r"to=<%s\.test>%s, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*"
                            r"status=sent" % (rcpt, orig, srv.port))
        p.qmgr.wait_log(r": removed")
    finally:
        a.close()
        b.close()
