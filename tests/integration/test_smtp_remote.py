"""Outbound delivery to real remote hosts (issue 7, Tests): each remote host
is a network namespace with an address of its own (netns_fixture.py),
running Postfix's smtp-sink or a scripted peer on port 25; dnsmasq serves
the MX and A records that name them.  Postern (smtpd and qmgr) runs in the
root namespace, as in test_smtp_client.py, and delivers by MX lookup to
port 25 as it would on the Internet.

What test_smtp_client.py covers against a second Postern on 127.0.0.x
(TLS levels, AUTH, null MX, expiry, grouping) is not repeated here; this
file covers MX preference, failover (refused, unreachable, 421 greeting),
per-recipient verdicts in one session, silent peers and stage timeouts,
retries until a peer comes back, and a qmgr killed mid-transaction.
Every timeout is shortened by configuration."""

import email
import json
import os
import re
import shutil
import tempfile
import time
from email import policy

import pytest

from conftest import DEFAULT_TIMEOUT, dsn_report
from dbus_fixture import MailBus
from netns_fixture import Network, remove_stale_namespaces

SENDER = "mailtest2@example.test"      # a local user: notices land in its mbox

# Every wait of the SMTP client, shortened (the defaults are minutes).
FAST = dict(smtp_connect_timeout="1s", smtp_helo_timeout="2s", smtp_mail_timeout="2s",
            smtp_rcpt_timeout="2s", smtp_data_init_timeout="2s", smtp_data_xfer_timeout="2s",
            smtp_data_done_timeout="2s", smtp_quit_timeout="1s",
            minimal_backoff_time="1s", maximal_backoff_time="2s", queue_run_delay="1s")

_stale_removed = False


@pytest.fixture
def net(request):
    """Remote hosts in namespaces for one test; removed at the end, whatever
    happened (their logs printed when the test failed)."""
    global _stale_removed
    if shutil.which("smtp-sink") is None:
        pytest.fail("smtp-sink is not installed (tools/test installs postfix)")
    if shutil.which("ip") is None:
        pytest.fail("ip is not installed (tools/test installs iproute2)")
    if not _stale_removed:
        remove_stale_namespaces()
        _stale_removed = True
    tmp = tempfile.mkdtemp(prefix="postern-netns-", dir="/tmp")
    n = Network(tmp)
    try:
        yield n
    finally:
        call = getattr(request.node, "rep_call", None)
        failed = call is None or call.failed
        if failed:
            print(n.logs())
        errors = n.close()
        if not failed and not errors:
            shutil.rmtree(tmp, ignore_errors=True)
        if errors:
            pytest.fail("cleanup of the remote hosts failed (kept %s): %s"
                        % (tmp, "; ".join(errors)))


def start(p, net, **params):
    """Postern with the test DNS and the short timeouts (params override)."""
    p.env["POSTERN_DNS_SERVER"] = net.dns_server
    return p.start(**dict(FAST, **params))


def make_message(subject, body):
    """A message with the header fields Postern would otherwise add, so the
    bytes at the sink are predictable: CRLF line ends."""
    return (b"From: <%s>\r\nTo: <someone@remote.test>\r\nSubject: %s\r\n"
            b"Date: Tue, 01 Dec 2026 12:00:00 +0000\r\nMessage-ID: <%s@client.example.test>\r\n"
            b"\r\n" % (SENDER.encode(), subject.encode(), subject.encode()) + body)


def send_raw(p, rcpts, msg, sender=SENDER):
    with p.smtp() as s:
        s.ehlo()
        refused = s.sendmail(sender, rcpts, msg)
        assert not refused, refused


def strip_postern_received(data):
    """data (LF line ends) without the Received: field Postern's smtpd put on
    top; asserts it is there, once, naming Postern."""
    m = re.match(rb"Received: from [^\n]*\n(?:[ \t][^\n]*\n)*", data)
    assert m, "no Received: field on top: %r" % data[:300]
    assert b"by mail.example.test (Postern)" in m.group(0), m.group(0)
    return data[m.end():]


def sink_dump_parts(dump):
    """smtp-sink's dump: its own fields, as a dict of lists, and the message
    as received (LF line ends), without the empty line smtp-sink adds."""
    head, sep, rest = dump.partition(b"Received: from ")
    assert sep, "no smtp-sink Received: in %r" % dump[:500]
    fields = {}
    for line in head.decode().splitlines():
        k, _, v = line.partition(": ")
        fields.setdefault(k, []).append(v)
    m = re.match(rb"[^\n]*\n\tby [^\n]* \(smtp-sink\) [^\n]*\n\t[^\n]*\n", rest)
    assert m, "smtp-sink Received: not as documented: %r" % rest[:300]
    msg = rest[m.end():]
    assert msg.endswith(b"\n\n"), msg[-100:]
    return fields, msg[:-1]


def qlog_wait(p, pattern, timeout=DEFAULT_TIMEOUT):
    return p.qmgr.wait_log(pattern, timeout=timeout)


def relay_re(host):
    return r"%s\[%s\]:25" % (re.escape(host.name), re.escape(host.addr))


def host_re(host):
    """The host as Postfix's texts name it: "name[address]", no port."""
    return r"%s\[%s\]" % (re.escape(host.name), re.escape(host.addr))


def log_time(hms):
    """Seconds since midnight of a log stamp "16:40:47.788"."""
    h, m, sec = hms.split(":")
    return int(h) * 3600 + int(m) * 60 + float(sec)


def wait_until(predicate, what, timeout=DEFAULT_TIMEOUT, postern=None):
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if postern is not None:
            postern.check_daemons_alive()
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(0.02)


# ---------------------------------------------------------------- MX preference

def test_best_mx_receives_the_message(postern, net):
    """Two MX hosts: the one with the lower preference (listed second in
    the zone) gets the message, byte for byte (dot-stuffing undone, the
    only addition Postern's Received: field); the other sees nothing."""
    mx1 = net.host("mx1.best.test")
    mx2 = net.host("mx2.best.test")
    net.start_dns(["mx-host=best.test,mx2.best.test,20", "mx-host=best.test,mx1.best.test,10"])
    sink1 = mx1.sink()
    sink2 = mx2.sink()
    p = start(postern, net)

    body = (b"first line\r\n.leading dot\r\n..two dots\r\n.\r\n\r\nFrom the start\r\n"
            b"tab\tand trailing space \r\n" + b"x" * 990 + b"\r\nlast line\r\n")
    msg = make_message("best-mx", body)
    send_raw(p, ["rcpt@best.test"], msg)
    qlog_wait(p, r"to=<rcpt@best\.test>, relay=%s, .*dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok"
              % relay_re(mx1))
    dumps = wait_until(sink1.dumps, "the dump at mx1")
    assert len(dumps) == 1, dumps
    fields, got = sink_dump_parts(dumps[0])
    assert fields["X-Client-Addr"] == [mx1.gateway]        # from the root namespace, via the veth
    assert fields["X-Helo-Args"] == ["mail.example.test"]
    assert fields["X-Mail-Args"][0].startswith("<%s>" % SENDER), fields
    # the peer offers DSN: the original recipient goes along, as Postfix sends it
    assert fields["X-Rcpt-Args"] == ["<rcpt@best.test> ORCPT=rfc822;rcpt@best.test"]
    assert strip_postern_received(got) == msg.replace(b"\r\n", b"\n")
    p.wait_queue_empty()
    assert sink2.dumps() == []
    assert "mx2.best.test" not in p.qmgr.log()               # not even tried
    assert p.mbox("mailtest2") == []                          # no notice of any kind


# ---------------------------------------------------------------- failover

def test_failover_to_the_next_mx(postern, net):
    """Three domains whose best MX fails in its own way, all with the same
    backup MX (preference 20): nothing listening (connection refused), an
    address nobody has (no ARP answer: the connect times out after
    smtp_connect_timeout, 1 s, before the kernel's 3 s "No route to host"),
    and a 421 greeting.  Each message goes to the backup at once, in the
    same delivery attempt."""
    refusing = net.host("mx1.refused.test")                 # no process: RST
    dead = net.host("mx1.dead.test", answer_arp=False)
    busy = net.host("mx1.busy.test")
    backup = net.host("backup.mx.test")
    records = []
    for d in ("refused", "dead", "busy"):
        records += ["mx-host=%s.test,mx1.%s.test,10" % (d, d),
                    "mx-host=%s.test,backup.mx.test,20" % d]
    net.start_dns(records)
    busy_sink = busy.sink("-Q", "CONNECT", expect=b"421")
    backup_sink = backup.sink()
    p = start(postern, net)

    sent_at = time.monotonic()
    for d in ("refused", "dead", "busy"):
        send_raw(p, ["user@%s.test" % d],
                 make_message("via-backup-%s" % d, b"%s\r\n" % d.encode()))
    qlog_wait(p, r"connect to %s: Connection refused" % relay_re(refusing))
    qlog_wait(p, r"connect to %s: Connection timed out" % relay_re(dead))
    qlog_wait(p, r"host %s refused to talk to me: 421 4\.0\.0 Server closing connection"
              % host_re(busy))
    for d in ("refused", "dead", "busy"):
        qlog_wait(p, r"to=<user@%s\.test>, relay=%s, .*status=sent" % (d, relay_re(backup)))
    elapsed = time.monotonic() - sent_at
    assert elapsed < 2.9, "the unreachable MX took %.1fs: not smtp_connect_timeout's 1s" % elapsed
    dumps = wait_until(lambda: len(backup_sink.dumps()) >= 3 and backup_sink.dumps(), "3 dumps")
    got = sorted(sink_dump_parts(d)[0]["X-Rcpt-Args"][0] for d in dumps)
    assert got == ["<user@%s.test> ORCPT=rfc822;user@%s.test" % (d, d)
                   for d in ("busy", "dead", "refused")]
    for dump in dumps:
        fields, body = sink_dump_parts(dump)
        d = re.match(r"<user@(\w+)\.test>", fields["X-Rcpt-Args"][0]).group(1)
        sent = make_message("via-backup-%s" % d, b"%s\r\n" % d.encode())
        assert strip_postern_received(body) == sent.replace(b"\r\n", b"\n")
    assert busy_sink.dumps() == []
    # one attempt each: nothing was deferred on the way
    assert "status=deferred" not in p.qmgr.log()
    p.wait_queue_empty()


# ---------------------------------------------------------------- per-recipient verdicts

def test_per_recipient_verdicts_in_one_session(postern, net):
    """One transaction, three recipients: 250, 450, 550.  The first is
    delivered, the second deferred and delivered alone by the retry, the
    third bounced to the sender with an RFC 3464 report naming it alone."""
    mx = net.host("mx.mixed.test")
    net.start_dns(["mx-host=mixed.test,mx.mixed.test,10"])
    peer = mx.peer(rcpt=[
        ["later@mixed\\.test", ["450 4.2.0 <later@mixed.test>: Recipient address rejected: "
                                "try again later", "250 2.1.5 Ok"]],
        ["bad@mixed\\.test", ["550 5.1.1 <bad@mixed.test>: Recipient address rejected: "
                              "User unknown"]],
    ])
    p = start(postern, net)
    msg = make_message("three-verdicts", b"one body for three\r\n")
    send_raw(p, ["ok@mixed.test", "later@mixed.test", "bad@mixed.test"], msg)

    relay = relay_re(mx)
    qlog_wait(p, r"to=<ok@mixed\.test>, relay=%s, .*dsn=2\.0\.0, status=sent" % relay)
    qlog_wait(p, r"to=<later@mixed\.test>, relay=%s, .*dsn=4\.2\.0, status=deferred \(host %s "
              r"said: 450 4\.2\.0 <later@mixed\.test>: Recipient address rejected: try again "
              r"later \(in reply to RCPT TO command\)\)$" % (relay, host_re(mx)))
    qlog_wait(p, r"to=<bad@mixed\.test>, relay=%s, .*dsn=5\.1\.1, status=bounced \(host %s "
              r"said: 550 5\.1\.1 <bad@mixed\.test>: Recipient address rejected: User unknown"
              r" \(in reply to RCPT TO command\)\)$" % (relay, host_re(mx)))
    qlog_wait(p, r"to=<later@mixed\.test>, relay=%s, .*dsn=2\.0\.0, status=sent" % relay)
    p.wait_queue_empty()

    # the first session offered all three in one transaction (the session
    # numbers count the fixture's readiness probe too)
    first_mail = [e for e in peer.events(event="command") if e["line"].startswith("MAIL")][0]
    first = [e for e in peer.events(event="command") if e["session"] == first_mail["session"]]
    verbs = [e["line"].split(":")[0].split(" ")[0].upper() for e in first]
    assert verbs[:6] == ["EHLO", "MAIL", "RCPT", "RCPT", "RCPT", "DATA"], verbs
    msgs = peer.messages()
    assert [m[0]["rcpts"] for m in msgs] == [["ok@mixed.test"], ["later@mixed.test"]], msgs
    assert msgs[0][0]["session"] == first_mail["session"]
    # the retry: a transaction of its own (on the cached connection, or a new one)
    assert msgs[1][0]["session"] >= first_mail["session"]
    for _, data in msgs:
        assert strip_postern_received(data.replace(b"\r\n", b"\n")) == msg.replace(b"\r\n", b"\n")
    assert not [e for e in peer.events(event="rcpt") if e["rcpt"] == "ok@mixed.test"][1:], \
        "ok@ was offered again"
    assert len([e for e in peer.events(event="rcpt") if e["rcpt"] == "bad@mixed.test"]) == 1

    notices = p.wait_mbox("mailtest2", 1)
    assert len(notices) == 1, [n[:300] for n in notices]
    m = email.message_from_bytes(notices[0].split(b"\n", 1)[1], policy=policy.compat32)
    assert notices[0].startswith(b"From MAILER-DAEMON ")
    assert m["Subject"] == "Undelivered Mail Returned to Sender"
    assert m["To"] == SENDER
    human, per_message, per_rcpt, original_part = dsn_report(m)
    assert original_part.get_content_type() == "message/rfc822"
    assert "<bad@mixed.test>: host mx.mixed.test[%s] said: 550 5.1.1" % mx.addr in human
    assert "ok@mixed.test" not in human and "later@mixed.test" not in human
    assert len(per_rcpt) == 1, [dict(s) for s in per_rcpt]   # one recipient
    rcpt = per_rcpt[0]
    assert rcpt["Final-Recipient"] == "rfc822; bad@mixed.test"
    assert rcpt["Action"] == "failed"
    assert rcpt["Status"] == "5.1.1"
    assert rcpt["Diagnostic-Code"].startswith("smtp; 550 5.1.1 <bad@mixed.test>")
    original = original_part.get_payload()[0]
    assert original["Subject"] == "three-verdicts"
    assert original["Message-ID"] == "<three-verdicts@client.example.test>"


# ---------------------------------------------------------------- silent peers

def mailctl_queue(mb):
    r = mb.mailctl("queue", "list")
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_silent_peers_time_out_and_defer(postern, net):
    """A peer that accepts the connection and never greets, and one that
    takes the message and never answers the final dot: each delivery gives
    up after its stage's timeout (smtp_helo_timeout, smtp_data_done_timeout:
    1 s), is deferred with the stage in its reason, in the log and in
    `mailctl queue list`, and nothing is bounced."""
    mute = net.host("mx.mute.test")
    stall = net.host("mx.stall.test")
    net.start_dns(["mx-host=mute.test,mx.mute.test,10", "mx-host=stall.test,mx.stall.test,10"])
    mute.sink("-W", "CONNECT:60", expect=None)
    stall_sink = stall.sink("-W", ".:60")
    mb = MailBus(postern)
    mb.start_bus()
    p = start(postern, net, smtp_helo_timeout="1s", smtp_data_done_timeout="1s",
              minimal_backoff_time="30s", maximal_backoff_time="30s")

    t0 = time.monotonic()
    send_raw(p, ["x@mute.test"], make_message("to-the-mute", b"hello?\r\n"))
    send_raw(p, ["y@stall.test"], make_message("to-the-stall", b"are you there?\r\n"))
    mute_line = qlog_wait(p, r"to=<x@mute\.test>, relay=\S+, .*status=deferred \((.*)\)$").group(1)
    stall_line = qlog_wait(p, r"to=<y@stall\.test>, relay=%s, .*status=deferred \((.*)\)$"
                           % relay_re(stall)).group(1)
    assert time.monotonic() - t0 < 4.0
    print("deferral reasons:\n  %s\n  %s" % (mute_line, stall_line))
    # the words are not Postfix's yet (test_reasons_in_postfix_words):
    # here the host, the stage and that it timed out
    mute_name = "%s[%s]" % (mute.name, mute.addr)
    stall_name = "%s[%s]" % (stall.name, stall.addr)
    assert mute_name in mute_line and "initial server greeting" in mute_line, mute_line
    assert "timed out" in mute_line, mute_line
    assert stall_name in stall_line and "timed out" in stall_line, stall_line
    # the stalled sink did get the whole message: only the 250 was missing
    dumps = wait_until(stall_sink.dumps, "the stalled sink's dump")
    assert b"are you there?\n" in dumps[0]

    listing = mailctl_queue(mb)
    print(listing)
    assert listing.count("(%s)" % mute_line) == 1, listing
    assert listing.count("(%s)" % stall_line) == 1, listing
    assert re.search(r"\(%s\)\n\s+x@mute\.test\n" % re.escape(mute_line), listing), listing
    assert re.search(r"\(%s\)\n\s+y@stall\.test\n" % re.escape(stall_line), listing), listing
    assert listing.rstrip().endswith("Kbytes in 2 Requests."), listing
    # deferred, not active ("*") or held ("!")
    ids = re.findall(r"^([0-9A-F]+)(\S?) +\d+ ", listing, re.M)
    assert len(ids) == 2 and all(mark == "" for _, mark in ids), listing
    assert sorted(p.committed_queue_files()["deferred"]) == sorted(i for i, _ in ids)
    assert "status=bounced" not in p.qmgr.log()
    assert p.mbox("mailtest2") == []


def test_reasons_in_postfix_words(postern, net):
    """The deferral reasons as Postfix's smtp(8) words them (hosts as
    "name[address]", without the port): "conversation with H timed out
    while receiving the initial server greeting", "... while sending end of
    data -- message may be sent more than once", and a server's reply
    followed by "(in reply to RCPT TO command)".  Every mismatch is listed."""
    mute = net.host("mx.mute.test")
    stall = net.host("mx.stall.test")
    grey = net.host("mx.grey.test")
    closing = net.host("mx.closing.test")
    net.start_dns(["mx-host=%s.test,mx.%s.test,10" % (d, d)
                   for d in ("mute", "stall", "grey", "closing")])
    mute.sink("-W", "CONNECT:60", expect=None)
    stall.sink("-W", ".:60")
    grey.sink("-r", "RCPT")
    closing.sink("-Q", "RCPT")
    p = start(postern, net, smtp_helo_timeout="1s", smtp_data_done_timeout="1s",
              minimal_backoff_time="30s", maximal_backoff_time="30s")
    for d in ("mute", "stall", "grey", "closing"):
        send_raw(p, ["u@%s.test" % d], make_message("words-%s" % d, b"words\r\n"))
    name = {h: "%s[%s]" % (h.name, h.addr) for h in (mute, stall, grey, closing)}
    want = {
        "mute": "conversation with %s timed out while receiving the initial server greeting"
                % name[mute],
        "stall": "conversation with %s timed out while sending end of data -- message may be "
                 "sent more than once" % name[stall],
        "grey": "host %s said: 450 4.3.0 Error: command failed (in reply to RCPT TO command)"
                % name[grey],
        "closing": "host %s said: 421 4.0.0 Server closing connection (in reply to RCPT TO "
                   "command)" % name[closing],
    }
    got = {}
    for d in want:
        got[d] = qlog_wait(p, r"to=<u@%s\.test>, relay=\S+, .*status=deferred \((.*)\)$" % d,
                           timeout=5).group(1)
    wrong = ["%s:\n  want %s\n  got  %s" % (d, want[d], got[d]) for d in want if got[d] != want[d]]
    assert not wrong, "\n".join(wrong)


# ---------------------------------------------------------------- retries

def test_retried_until_the_peer_comes_back(postern, net):
    """The only MX refuses connections for a while: the message is deferred
    and retried after the (shortened) backoff, again and again, not
    hammered; once an smtp-sink listens it arrives, exactly once."""
    mx = net.host("mx.back.test")
    net.start_dns(["mx-host=back.test,mx.back.test,10"])
    p = start(postern, net)
    msg = make_message("comes-back", b"patience\r\n")
    send_raw(p, ["z@back.test"], msg)
    # an attempt while the destination is throttled (minimal_backoff_time)
    # defers without a connection: it counts as an attempt all the same
    refused = r"to=<z@back\.test>, relay=none, .*dsn=4\.4\.1, status=deferred \((?:delivery " \
              r"temporarily suspended: )?connect to %s: Connection refused\)" % relay_re(mx)
    wait_until(lambda: len(re.findall(refused, p.qmgr.log(), re.M)) >= 3, "three deferrals",
               timeout=15, postern=p)
    # the attempts as qmgr logged them (milliseconds).  The retry time is
    # kept in whole seconds (the deferred file's mtime, as Postfix does), so
    # a backoff of B seconds makes a gap in (B-1, B], plus up to a queue run
    # (queue_run_delay 1s): the backoff is 1s after the first attempt, then
    # doubled to maximal_backoff_time (2s)
    stamps = [log_time(m.group(1)) for m in re.finditer(r"^\S+ +\d+ ([\d:.]+) .*" + refused,
                                                        p.qmgr.log(), re.M)]
    assert len(stamps) >= 3, stamps
    gaps = [(b - a) % 86400 for a, b in zip(stamps, stamps[1:])]
    assert gaps[0] <= 1 + 1 + 0.5, "attempts %r s apart" % gaps
    assert all(2 - 1 - 0.1 <= g <= 2 + 1 + 0.5 for g in gaps[1:]), "attempts %r s apart" % gaps
    assert p.mbox("mailtest2") == []

    sink = mx.sink()
    qlog_wait(p, r"to=<z@back\.test>, relay=%s, .*dsn=2\.0\.0, status=sent" % relay_re(mx),
              timeout=10)
    p.wait_queue_empty()
    time.sleep(1.2)          # a queue run (queue_run_delay 1s) later: still one copy
    dumps = sink.dumps()
    assert len(dumps) == 1, "%d copies at the peer" % len(dumps)
    assert strip_postern_received(sink_dump_parts(dumps[0])[1]) == msg.replace(b"\r\n", b"\n")
    assert len(re.findall(r"to=<z@back\.test>, .*status=sent", p.qmgr.log())) == 1
    assert p.mbox("mailtest2") == []


# ---------------------------------------------------------------- qmgr killed in flight

def session_members(sid):
    """PIDs of the processes of session sid (a killed qmgr's agents)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open("/proc/%s/stat" % pid).read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid and int(pid) != sid:
            out.append(int(pid))
    return out


def test_qmgr_killed_during_a_remote_transaction(postern, net):
    """The peer holds back its reply to the final dot; qmgr is killed
    (SIGKILL) meanwhile and started again.  The message reaches the peer
    at least once and at most twice (only the delivery in flight repeats),
    the queue ends empty and nothing is bounced.  The agent of the killed
    qmgr finishes on its own once the peer answers."""
    mx = net.host("mx.hold.test")
    net.start_dns(["mx-host=hold.test,mx.hold.test,10"])
    release = net.dir / "release"
    peer = mx.peer(hold_dot=str(release), hold_max=20)
    p = postern
    p.env["POSTERN_DNS_SERVER"] = net.dns_server
    p.configure(**dict(FAST, smtp_data_done_timeout="10s"))
    # the first qmgr's sanitizer reports (its agents': it dies by SIGKILL)
    # go to files, to be told apart below; everything else as usual
    asan_dir = p.tmp / "asan-first-qmgr"
    asan_dir.mkdir()
    os.chmod(asan_dir, 0o1777)                 # the agents run as mail_owner
    env = p.env
    p.env = dict(env, ASAN_OPTIONS=env["ASAN_OPTIONS"] + ":log_path=%s/agent" % asan_dir)
    try:
        first = p.start_qmgr()
    finally:
        p.env = env
    p.start_smtpd()
    msg = make_message("in-flight", b"do not lose me\r\n")
    send_raw(p, ["w@hold.test"], msg)
    try:
        peer.wait_event(event="dot")                 # the content is there, the 250 is not
        orphans = session_members(first.pid)
        assert orphans, "no agent in flight"
        first.kill9()
        p.start_qmgr()
        # the new qmgr may start a second delivery of the message; let it
        # reach the peer (or not) before the peer answers
        time.sleep(1.0)
    finally:
        release.write_text("go\n")
    qlog_wait(p, r"to=<w@hold\.test>, relay=%s, .*dsn=2\.0\.0, status=sent" % relay_re(mx),
              timeout=15)
    p.wait_queue_empty(timeout=15)
    wait_until(lambda: not session_members(first.pid), "the killed qmgr's agents to exit")
    time.sleep(1.5)                                   # a queue run later
    p.wait_queue_empty()
    msgs = peer.messages()
    print("copies at the peer: %d; sessions: %s" % (
        len(msgs), json.dumps([e for e in peer.events() if e.get("event") != "command"])))
    assert 1 <= len(msgs) <= 2, "%d copies at the peer" % len(msgs)
    for envelope, data in msgs:
        assert envelope["rcpts"] == ["w@hold.test"]
        assert strip_postern_received(data.replace(b"\r\n", b"\n")) == msg.replace(b"\r\n", b"\n")
    assert p.mbox("mailtest2") == []
    logs = "".join(d.log() for d in p.daemons if d.name.startswith("qmgr-"))
    assert "status=bounced" not in logs
    files = p.committed_queue_files()
    assert files == {d: [] for d in files}, files

    # the agent that outlived its qmgr could not answer and still freed
    # everything at exit: no sanitizer report at all
    reports = {f.name: f.read_text(errors="replace") for f in asan_dir.iterdir()}
    assert not reports, "sanitizer report from the first qmgr's agents:\n%s" \
        % "\n".join(reports.values())
