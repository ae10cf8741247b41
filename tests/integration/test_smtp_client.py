"""The SMTP client end to end (issue 7, first step; docs/smtp-client.md):
qmgr hands remote recipients to postern-smtp, which delivers them to a
second, real Postern (its own smtpd and qmgr on another port, delivering
into its own spool): the message byte for byte, Postfix's status line
with the relay, a 5xx RCPT bounced, a 4xx deferred, a refused connection
deferred, a next-hop list falling over to its second host, and the agent
running as mail_owner.  DNS (MX) routing and network namespaces come
with the next steps."""

import os
import pwd
import re
import shutil
import socket
import tempfile
import time

import pytest

from conftest import QMGR, Postern, dsn_report, free_port, listening_socket
from dnsmasq_fixture import dnsmasq
from sasl_fixture import PASSWORD, REALM, USER, make_sasldb


@pytest.fixture
def peer():
    """A second Postern: the remote host (mydestination remote.test)."""
    tmp = tempfile.mkdtemp(prefix="postern-peer-", dir="/tmp")
    p = Postern(tmp)
    try:
        yield p
    finally:
        problems = p.stop_all()
        if not problems:
            shutil.rmtree(tmp, ignore_errors=True)


def start_peer(peer, **params):
    params.setdefault("mydestination", "remote.test, $myhostname")
    peer.start(myhostname="mx.remote.test", **params)
    return peer


def start_greylisting_peer(peer):
    """A peer that answers later@remote.test with 450."""
    access = peer.tmp / "rcpt-access"
    access.write_text("later@remote.test 450 4.7.1 try again later\n")
    os.chmod(access, 0o644)
    return start_peer(peer, smtpd_recipient_restrictions=(
        "check_recipient_access texthash:%s, permit_mynetworks, reject_unauth_destination"
        % access))


def test_relayhost_delivery_and_per_recipient_results(postern, peer):
    start_greylisting_peer(peer)
    p = postern
    p.start(relayhost="[127.0.0.1]:%d" % peer.port)
    relay = r"127\.0\.0\.1\[127\.0\.0\.1\]:%d" % peer.port

    body = b"line one\r\n.leading dot\r\n..two dots\r\n\r\nlast line\r\n"
    p.send("mailtest@remote.test", body=body, subject="over smtp")
    p.qmgr.wait_log(r"to=<mailtest@remote\.test>, relay=%s, .*dsn=2\.0\.0, status=sent "
                    r"\(250 2\.0\.0 Ok: queued as [0-9A-F]+\)" % relay)
    got = peer.wait_mbox("mailtest", 1)[0]
    # the peer received the message as sent (its own Received: on top)
    text = got.replace(b"\r\n", b"\n")
    assert b"Subject: over smtp" in text
    assert b"\n.leading dot\n..two dots\n\nlast line\n" in text
    assert text.count(b"Received: ") >= 2

    p.send("nosuchuser@remote.test", subject="unknown there")
    host = r"127\.0\.0\.1\[127\.0\.0\.1\]"
    p.qmgr.wait_log(r"to=<nosuchuser@remote\.test>, relay=%s, .*dsn=5\.1\.1, status=bounced "
                    r"\(host %s said: 550 5\.1\.1 <nosuchuser@remote\.test>: Recipient "
                    r"address rejected: User unknown in local recipient table \(in reply to RCPT "
                    r"TO command\)\)" % (relay, host))
    p.send("later@remote.test", subject="greylisted")
    p.qmgr.wait_log(r"to=<later@remote\.test>, relay=%s, .*dsn=4\.7\.1, status=deferred "
                    r"\(host %s said: 450 4\.7\.1 " % (relay, host))
    assert len(peer.mbox("mailtest")) == 1


def test_refused_connection_defers_and_next_hop_list(postern, peer):
    start_peer(peer)
    dead = free_port()
    p = postern
    table = p.tmp / "transport"
    table.write_text("down.test smtp:[127.0.0.1]:%d\n"
                     "remote.test smtp:[127.0.0.1]:%d, [127.0.0.1]:%d\n" % (dead, dead, peer.port))
    os.chmod(table, 0o644)
    p.start(transport_maps="texthash:%s" % table)
    p.send("x@down.test", subject="nobody listens")
    p.qmgr.wait_log(r"to=<x@down\.test>, relay=none, .*dsn=4\.4\.1, status=deferred "
                    r"\(connect to 127\.0\.0\.1\[127\.0\.0\.1\]:%d: Connection refused\)" % dead)
    p.send("mailtest@remote.test", subject="second hop")
    p.qmgr.wait_log(r"to=<mailtest@remote\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*"
                    r"status=sent" % peer.port)
    assert b"Subject: second hop" in peer.wait_mbox("mailtest", 1)[0]


def test_connection_reused_and_recipient_limit(postern, peer):
    """Messages to one destination in a row share one connection (no new
    greeting, EHLO); smtp_destination_recipient_limit splits a message's
    recipients over transactions, which run side by side (the first on
    the cached connection, the second on one of its own); the idle
    connection ends with QUIT."""
    start_peer(peer)
    p = postern
    p.start(relayhost="[127.0.0.1]:%d" % peer.port, smtp_destination_recipient_limit="2",
            smtp_connection_cache_time_limit="5s")
    relay = r"127\.0\.0\.1\[127\.0\.0\.1\]:%d" % peer.port
    p.send("mailtest@remote.test", subject="first")
    p.qmgr.wait_log(r"to=<mailtest@remote\.test>, relay=%s, .*status=sent" % relay)
    p.send("mailtest2@remote.test", subject="second")
    # Postfix's conn_use=N for the second transaction on the connection
    p.qmgr.wait_log(r"to=<mailtest2@remote\.test>, relay=%s, conn_use=2, delay=.*status=sent"
                    % relay)
    assert not re.search(r"to=<mailtest@remote\.test>, relay=%s, conn_use=" % relay,
                         p.qmgr.log())
    p.send(["mailtest@remote.test", "mailtest2@remote.test", "nosuchuser@remote.test"],
           subject="three")
    p.qmgr.wait_log(r"to=<nosuchuser@remote\.test>, relay=%s, .*status=bounced" % relay)
    assert b"Subject: second" in peer.wait_mbox("mailtest2", 2)[0]
    assert b"Subject: three" in peer.wait_mbox("mailtest", 2)[1]
    log = peer.smtpd.log()
    # one connection for the first two and the last message's first
    # transaction (2 recipients), a second one beside it for nosuchuser
    probes = len(re.findall(r"disconnect from .* quit=1 commands=1$", log, re.M))
    assert len(re.findall(r": connect from ", log)) - probes == 2, log
    assert re.findall(r"from=<sender@client\.example\.test>, size=\d+, nrcpt=(\d+) \(queued\)",
                      log) == ["1", "1", "2"], log
    # the reused connection ends with QUIT once idle (the bounce for
    # nosuchuser, to the remote sender, may take either connection)
    peer.smtpd.wait_log(r"disconnect from unknown\[127\.0\.0\.1\] ehlo=1 mail=[34] "
                        r"rcpt=[45] data=[34].* quit=1", timeout=20)


def test_dead_destination_is_throttled(postern):
    """A destination none of whose hosts answers is not tried again for
    minimal_backoff_time: the next message defers at once with Postfix's
    "delivery temporarily suspended" and the first reason."""
    dead = free_port()
    p = postern
    p.start(relayhost="[127.0.0.1]:%d" % dead, minimal_backoff_time="60s",
            maximal_backoff_time="120s")
    p.send("a@far.test", subject="first")
    p.qmgr.wait_log(r"to=<a@far\.test>, relay=none, .*status=deferred \(connect to "
                    r"127\.0\.0\.1\[127\.0\.0\.1\]:%d: Connection refused\)" % dead)
    p.qmgr.wait_log(r"destination throttled for 60s")
    # now something listens there, but the destination stays suspended
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", dead))
    srv.listen(5)
    try:
        p.send("b@far.test", subject="second")
        p.qmgr.wait_log(r"to=<b@far\.test>, relay=none, .*dsn=4\.4\.1, status=deferred "
                        r"\(delivery temporarily suspended: connect to 127\.0\.0\.1"
                        r"\[127\.0\.0\.1\]:%d: Connection refused\)" % dead)
        srv.settimeout(0.5)
        with pytest.raises(socket.timeout):
            srv.accept()
    finally:
        srv.close()


def test_dsn_and_smtputf8_end_to_end(postern, peer, request):
    """RFC 3461 parameters given to our smtpd travel through the queue and
    the SMTP client to a peer that offers DSN (its queue file shows them);
    a UTF-8 recipient is relayed with SMTPUTF8, and bounced with 5.6.7 from
    a peer without it, never downgraded."""
    hold = peer.tmp / "hold-senders"
    hold.write_text("sender@client.example.test HOLD\n")
    os.chmod(hold, 0o644)
    start_peer(peer, smtpd_sender_restrictions="check_sender_access texthash:%s" % hold)
    old = Postern(tempfile.mkdtemp(prefix="postern-peer-", dir="/tmp"))
    request.addfinalizer(lambda: (old.stop_all(), shutil.rmtree(old.tmp, ignore_errors=True)))
    start_peer(old, smtputf8_enable="no", mydestination="old.test")
    p = postern
    transport = p.tmp / "transport"
    transport.write_text("remote.test smtp:[127.0.0.1]:%d\nold.test smtp:[127.0.0.1]:%d\n"
                         % (peer.port, old.port))
    os.chmod(transport, 0o644)
    p.start(transport_maps="texthash:%s" % transport)
    with p.smtp() as s:
        s.ehlo()
        assert s.has_extn("dsn") and s.has_extn("smtputf8")
        s.mail("sender@client.example.test", ["RET=HDRS", "ENVID=QQ+2B314"])
        code, _ = s.rcpt("mailtest@remote.test", ["NOTIFY=SUCCESS,DELAY",
                                                  "ORCPT=rfc822;Orig+2Bx@remote.test"])
        assert code == 250
        code, _ = s.data(b"Subject: dsn relayed\r\n\r\nbody\r\n")
        assert code == 250
    p.qmgr.wait_log(r"to=<mailtest@remote\.test>, relay=127\.0\.0\.1.*status=sent")
    deadline = time.monotonic() + 10
    while not peer.committed_queue_files()["hold"] and time.monotonic() < deadline:
        time.sleep(0.1)
    held = peer.committed_queue_files()["hold"]
    assert len(held) == 1, held
    records = (peer.spool / "hold" / held[0]).read_bytes().split(b"\nX\n")[0].split(b"\n")
    assert b"eQQ+314" in records and b"rHDRS" in records, records
    assert b"nSUCCESS,DELAY" in records and b"orfc822;Orig+x@remote.test" in records, records

    # SMTPUTF8 end to end, and no downgrade
    utf8 = "j\u00f6rg@remote.test"
    with p.smtp() as s:
        s.ehlo()
        s.mail("sender@client.example.test", ["SMTPUTF8"])
        code, _ = s.rcpt(utf8)
        assert code == 250
        code, _ = s.data("Subject: utf8\r\n\r\nbody\r\n".encode())
        assert code == 250
    # the peer took the UTF-8 address in RCPT (SMTPUTF8 declared) and has no such user
    p.qmgr.wait_log(r"to=<j\u00f6rg@remote\.test>, relay=127\.0\.0\.1\S+, .*dsn=5\.1\.1, "
                    r"status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 550 5\.1\.1 "
                    r"<j\u00f6rg@remote\.test>: Recipient address rejected: User unknown")
    with p.smtp() as s:
        s.ehlo()
        s.mail("mailtest2@example.test", ["SMTPUTF8"])
        code, _ = s.rcpt("j\u00f6rg@old.test")
        assert code == 250
        code, _ = s.data("Subject: no downgrade\r\n\r\nbody\r\n".encode())
        assert code == 250
    p.qmgr.wait_log(r"to=<j\u00f6rg@old\.test>, relay=127\.0\.0\.1\S+, .*dsn=5\.6\.7, "
                    r"status=bounced \(SMTPUTF8 is required, but was not offered by host "
                    r"127\.0\.0\.1\[127\.0\.0\.1\]\)")
    notice = p.wait_mbox("mailtest2", 1)[0]
    assert b"Undelivered Mail Returned to Sender" in notice


def test_agent_runs_as_mail_owner(postern, peer):
    """The agent's peer sees a connection from a process of mail_owner:
    checked through /proc while the peer holds the session open."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    p = postern
    p.start(relayhost="[127.0.0.1]:%d" % port)
    p.send("x@far.test", subject="who sends")
    srv.settimeout(10)
    conn, addr = srv.accept()
    # find the process whose socket is the other end of conn
    inode = None
    want = "%08X:%04X" % (0x0100007F, addr[1])
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        if f[1] == want:
            inode = f[9]
    assert inode, want
    owner = None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir("/proc/%s/fd" % pid):
                if os.readlink("/proc/%s/fd/%s" % (pid, fd)) == "socket:[%s]" % inode:
                    owner = pid
        except OSError:
            continue
    assert owner, inode
    status = dict(l.split(":", 1) for l in open("/proc/%s/status" % owner).read().splitlines()
                  if ":" in l)
    uid = int(status["Uid"].split()[0])
    assert uid == pwd.getpwnam("postern").pw_uid, status["Uid"]
    assert int(status["CapEff"], 16) == 0
    assert open("/proc/%s/comm" % owner).read().strip() == "postern-smtp"
    conn.sendall(b"421 4.3.2 not today\r\n")
    conn.close()
    srv.close()
    p.qmgr.wait_log(r"to=<x@far\.test>, relay=none, .*status=deferred \(host "
                    r"127\.0\.0\.1\[127\.0\.0\.1\] refused to talk to me: 421 4\.3\.2 not today")


MX_ZONES = """\
local=/test/
mx-host=multi.test,mx1.multi.test,10
mx-host=multi.test,mx2.multi.test,20
host-record=mx1.multi.test,127.0.0.3
host-record=mx2.multi.test,127.0.0.1
host-record=aonly.test,127.0.0.1
mx-host=nullmx.test,.,0
host-record=probe.test,127.0.0.9
"""


@pytest.fixture(scope="module")
def mx_dns():
    with dnsmasq(MX_ZONES, "probe.test", "127.0.0.9") as server:
        yield server


def test_mx_routing(postern, peer, mx_dns):
    """The best MX refuses connections: the next one gets the mail; a name
    without MX is reached at its address; null MX and a name that does not
    exist bounce at once, without a connection."""
    start_peer(peer, mydestination="multi.test, aonly.test, $myhostname")
    p = postern
    p.env["POSTERN_DNS_SERVER"] = mx_dns
    table = p.tmp / "transport"
    table.write_text("multi.test smtp:multi.test:%d\naonly.test smtp:aonly.test:%d\n"
                     "nullmx.test smtp:nullmx.test:%d\nnowhere.test smtp:nowhere.test:%d\n"
                     % ((peer.port,) * 4))
    os.chmod(table, 0o644)
    p.start(transport_maps="texthash:%s" % table)

    p.send("mailtest@multi.test", subject="via the second mx")
    p.qmgr.wait_log(r"connect to mx1\.multi\.test\[127\.0\.0\.3\]:%d: Connection refused"
                    % peer.port)
    p.qmgr.wait_log(r"to=<mailtest@multi\.test>, relay=mx2\.multi\.test\[127\.0\.0\.1\]:%d, "
                    r".*dsn=2\.0\.0, status=sent" % peer.port)
    p.send("mailtest@aonly.test", subject="no mx")
    p.qmgr.wait_log(r"to=<mailtest@aonly\.test>, relay=aonly\.test\[127\.0\.0\.1\]:%d, "
                    r".*status=sent" % peer.port)
    subjects = [m for m in peer.wait_mbox("mailtest", 2)]
    assert any(b"Subject: via the second mx" in m for m in subjects)
    assert any(b"Subject: no mx" in m for m in subjects)

    p.send("x@nullmx.test", subject="null mx")
    p.qmgr.wait_log(r"to=<x@nullmx\.test>, relay=none, .*dsn=5\.1\.2, status=bounced "
                    r"\(Domain nullmx\.test does not accept mail \(nullMX\)\)")
    p.send("x@nowhere.test", subject="no such domain")
    p.qmgr.wait_log(r"to=<x@nowhere\.test>, relay=none, .*dsn=5\.1\.2, status=bounced "
                    r"\(Host or domain name not found")


@pytest.mark.parametrize("lookup", ["dns", "native", "dns, native"])
def test_smtp_host_lookup(postern, peer, mx_dns, lookup):
    """smtp_host_lookup: "dns" (the default, as Postfix) asks A/AAAA records
    only, so a name that only /etc/hosts knows is not found; "native"
    (getaddrinfo) finds it; "dns, native" falls back to the system's
    lookup.  A name in the DNS is found either way, and "localhost" is
    the loopback address without asking (RFC 6761).  qmgr (and so its
    SMTP agents) runs in a mount namespace of its own whose /etc/hosts
    names hostsonly.test."""
    start_peer(peer, mydestination="remote.test, aonly.test, local.test")
    p = postern
    p.env["POSTERN_DNS_SERVER"] = mx_dns
    hosts = p.tmp / "hosts"
    hosts.write_text("127.0.0.1 localhost\n127.0.0.1 hostsonly.test\n")
    os.chmod(hosts, 0o644)
    table = p.tmp / "transport"
    table.write_text("remote.test smtp:[hostsonly.test]:%d\naonly.test smtp:[aonly.test]:%d\n"
                     "local.test smtp:[localhost]:%d\n" % ((peer.port,) * 3))
    os.chmod(table, 0o644)
    params = {} if lookup == "dns" else {"smtp_host_lookup": lookup}
    p.configure(transport_maps="texthash:%s" % table, inet_protocols="ipv4", **params)
    p.qmgr = p._daemon("qmgr", ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts), str(QMGR),
                                "--config-dir", str(p.confdir)])
    p.start_smtpd()

    p.send("mailtest@aonly.test", subject="a record")
    p.qmgr.wait_log(r"to=<mailtest@aonly\.test>, relay=aonly\.test\[127\.0\.0\.1\]:%d, "
                    r".*status=sent" % peer.port)
    p.send("mailtest@local.test", subject="localhost")
    p.qmgr.wait_log(r"to=<mailtest@local\.test>, relay=localhost\[127\.0\.0\.1\]:%d, "
                    r".*status=sent" % peer.port)
    p.send("mailtest@remote.test", subject="lookup %s" % lookup)
    if lookup == "dns":
        p.qmgr.wait_log(r"to=<mailtest@remote\.test>, relay=none, .*dsn=4\.4\.1, "
                        r"status=deferred \(Host or domain name not found\. Name service error "
                        r"for name=hostsonly\.test type=A: Host not found")
        assert len(peer.wait_mbox("mailtest", 2)) == 2
    else:
        p.qmgr.wait_log(r"to=<mailtest@remote\.test>, relay=hostsonly\.test"
                        r"\[127\.0\.0\.1\]:%d, .*status=sent" % peer.port)
        got = peer.wait_mbox("mailtest", 3)
        assert [m for m in got if b"Subject: lookup %s" % lookup.encode() in m]


def test_one_session_for_the_recipients_of_a_destination(postern, peer):
    """Four recipients at one destination: one SMTP session with four RCPTs
    (PIPELINING), each with its own verdict; the accepted ones get one copy."""
    start_greylisting_peer(peer)
    p = postern
    p.start(relayhost="[127.0.0.1]:%d" % peer.port)
    rcpts = ["mailtest@remote.test", "nosuchuser@remote.test", "later@remote.test",
             "mailtest2@remote.test"]
    p.send(rcpts, subject="four at once")
    relay = r"127\.0\.0\.1\[127\.0\.0\.1\]:%d" % peer.port
    p.qmgr.wait_log(r"to=<mailtest@remote\.test>, relay=%s, .*status=sent" % relay)
    p.qmgr.wait_log(r"to=<mailtest2@remote\.test>, relay=%s, .*status=sent" % relay)
    p.qmgr.wait_log(r"to=<nosuchuser@remote\.test>, relay=%s, .*dsn=5\.1\.1, status=bounced"
                    % relay)
    p.qmgr.wait_log(r"to=<later@remote\.test>, relay=%s, .*dsn=4\.7\.1, status=deferred" % relay)
    assert b"Subject: four at once" in peer.wait_mbox("mailtest", 1)[0]
    assert b"Subject: four at once" in peer.wait_mbox("mailtest2", 1)[0]
    # the first attempt was one transaction: four RCPTs, two accepted, one
    # message at the peer (the connection may then serve the retries)
    queued = re.findall(r"from=<sender@client\.example\.test>, size=\d+, nrcpt=(\d+) \(queued\)",
                        peer.smtpd.log())
    assert queued[:1] == ["2"], queued


def _report(msg_bytes):
    """The parts of a delivered notice (mbox message bytes)."""
    import email
    from email import policy
    m = email.message_from_bytes(msg_bytes, policy=policy.compat32)
    return m


def test_bounce_notice_to_the_sender(postern, peer):
    """A recipient refused with 5xx: the sender (a local user here) gets an
    RFC 3464 multipart/report from MAILER-DAEMON with the null sender."""
    start_peer(peer)
    p = postern
    p.start(relayhost="[127.0.0.1]:%d" % peer.port)
    p.send(["nosuchuser@remote.test", "mailtest@remote.test"],
                  sender="mailtest2@example.test", subject="partly undeliverable",
                  body="the original body\r\n")
    p.qmgr.wait_log(r"to=<nosuchuser@remote\.test>, .*status=bounced")
    p.qmgr.wait_log(r"sender non-delivery notification: [0-9A-F]+")
    notice = p.wait_mbox("mailtest2", 1)[0]
    m = _report(notice)
    assert m["From"] == "MAILER-DAEMON@mail.example.test (Mail Delivery System)"
    assert m["Subject"] == "Undelivered Mail Returned to Sender"
    assert m["To"] == "mailtest2@example.test"
    assert m["Auto-Submitted"] == "auto-replied"
    human, per_message, per_rcpt, original_part = dsn_report(m)
    assert original_part.get_content_type() == "message/rfc822"
    assert "This is the mail system at host mail.example.test." in human
    assert "<nosuchuser@remote.test>: host 127.0.0.1[127.0.0.1] said: 550 5.1.1" in human
    assert "mailtest@remote.test" not in human           # delivered: not in the notice
    assert per_message["Reporting-MTA"] == "dns; mail.example.test"
    assert per_message["X-Postfix-Sender"] == "rfc822; mailtest2@example.test"
    assert len(per_rcpt) == 1
    assert per_rcpt[0]["Final-Recipient"] == "rfc822; nosuchuser@remote.test"
    assert per_rcpt[0]["Action"] == "failed"
    assert per_rcpt[0]["Status"] == "5.1.1"
    assert per_rcpt[0]["Remote-MTA"] == "dns; 127.0.0.1"
    assert per_rcpt[0]["Diagnostic-Code"] == ("smtp; 550 5.1.1 <nosuchuser@remote.test>: "
                                              "Recipient address rejected: User unknown in "
                                              "local recipient table")
    original = original_part.get_payload()[0]
    assert original["Subject"] == "partly undeliverable"
    assert "the original body" in original.get_payload()
    # the notice came with the null sender (the mbox's From_ line and Return-Path)
    assert notice.startswith(b"From MAILER-DAEMON ")
    assert b"Return-Path: <>" in notice


def test_expired_message_and_double_bounce(postern):
    """No retries (maximal_queue_lifetime = 0): the unreachable recipient
    bounces at once, with a notice to the sender; a message with the null
    sender that bounces makes a postmaster notice from double-bounce (with
    2bounce in notify_classes, as in Postfix), and that one, undeliverable
    in turn, is discarded: no loop."""
    dead = free_port()
    p = postern
    p.start(relayhost="[127.0.0.1]:%d" % dead, maximal_queue_lifetime="0",
            notify_classes="2bounce, resource, software")
    p.send("x@far.test", sender="mailtest2@example.test", subject="too late")
    p.qmgr.wait_log(r"to=<x@far\.test>, relay=none, .*dsn=5\.4\.7, status=bounced "
                    r"\(message expired in queue: connect to")
    notice = p.wait_mbox("mailtest2", 1)[0]
    assert b"Subject: Undelivered Mail Returned to Sender" in notice
    assert b"Status: 5.4.7" in notice

    # a bounce of a bounce: null sender, undeliverable recipient
    p.send("y@far.test", sender="", subject="a bounce that bounces")
    copy = p.wait_mbox("root", 1)[0]            # postmaster: root (the tests' aliases)
    assert b"Subject: Postmaster Copy: Undelivered Mail" in copy
    assert copy.startswith(b"From double-bounce@")
    assert b"<y@far.test>: message expired in queue" in copy


def test_starttls_levels(postern, peer, certs):
    """may (the default): STARTTLS when offered, the peer records ESMTPS;
    verify with the fixture's CA: a verified session; verify without it:
    deferred, the certificate not verified; encrypt against a peer without
    TLS: deferred, never sent in the clear."""
    start_peer(peer, smtpd_tls_cert_file=certs["crt"], smtpd_tls_key_file=certs["key"],
               smtpd_tls_security_level="may")
    p = postern
    p.start(relayhost="[127.0.0.1]:%d" % peer.port)
    relay = r"127\.0\.0\.1\[127\.0\.0\.1\]:%d" % peer.port
    p.send("mailtest@remote.test", subject="opportunistic")
    p.qmgr.wait_log(r"Anonymous TLS connection established to %s: TLSv1\.[23] with cipher "
                    % relay)
    p.qmgr.wait_log(r"to=<mailtest@remote\.test>, relay=%s, .*status=sent" % relay)
    got = peer.wait_mbox("mailtest", 1)[0]
    assert re.search(rb"by mx\.remote\.test \(Postern\) with ESMTPS id", got), got[:600]

    p.stop_all()
    q = Postern(tempfile.mkdtemp(prefix="postern-it-", dir="/tmp"))
    try:
        q.start(relayhost="[127.0.0.1]:%d" % peer.port, smtp_tls_security_level="verify",
                smtp_tls_CAfile=certs["ca"])
        q.send("mailtest2@remote.test", subject="verified")
        q.qmgr.wait_log(r"Verified TLS connection established to %s" % relay)
        q.qmgr.wait_log(r"to=<mailtest2@remote\.test>, relay=%s, .*status=sent" % relay)
    finally:
        q.stop_all()
        shutil.rmtree(q.tmp, ignore_errors=True)
    q = Postern(tempfile.mkdtemp(prefix="postern-it-", dir="/tmp"))
    try:
        q.start(relayhost="[127.0.0.1]:%d" % peer.port, smtp_tls_security_level="verify")
        q.send("mailtest2@remote.test", subject="not verifiable")
        q.qmgr.wait_log(r"to=<mailtest2@remote\.test>, relay=none, .*status=deferred \(TLS "
                        r"handshake with %s failed: server certificate not verified" % relay)
    finally:
        q.stop_all()
        shutil.rmtree(q.tmp, ignore_errors=True)


@pytest.mark.parametrize("timeout", ["3600s", "0"])
def test_tls_session_resumed(postern, peer, certs, timeout):
    """Two connections in a row to a TLS peer (no connection cache): the
    second resumes the first one's TLS session, verified level and all;
    smtp_tls_session_cache_timeout = 0 resumes none."""
    start_peer(peer, smtpd_tls_cert_file=certs["crt"], smtpd_tls_key_file=certs["key"],
               smtpd_tls_security_level="may")
    p = postern
    p.start(relayhost="[127.0.0.1]:%d" % peer.port, smtp_connection_cache_time_limit="0s",
            smtp_tls_security_level="verify", smtp_tls_CAfile=certs["ca"],
            smtp_tls_loglevel="1", smtp_tls_session_cache_timeout=timeout)
    relay = r"127\.0\.0\.1\[127\.0\.0\.1\]:%d" % peer.port
    for n, user in enumerate(("mailtest", "mailtest2")):
        p.send("%s@remote.test" % user, subject="tls %d" % n)
        p.qmgr.wait_log(r"to=<%s@remote\.test>, relay=%s, .*status=sent" % (user, relay))
    log = p.qmgr.log()
    assert len(re.findall(r"Verified TLS connection established to %s" % relay, log)) == 2, log
    reused = re.findall(r"%s: reusing the TLS session of an earlier connection" % relay, log)
    assert len(reused) == (1 if timeout != "0" else 0), log
    assert b"Subject: tls 1" in peer.wait_mbox("mailtest2", 1)[0]


def test_tls_wrappermode(postern, peer, certs, request):
    """A relayhost that speaks SMTPS (TLS from the first byte, port 465
    style): smtp_tls_wrappermode = yes delivers over TLS (no STARTTLS);
    without it the client waits for a greeting that never comes in the
    clear, and defers."""
    peer.configure(myhostname="mx.remote.test", mydestination="remote.test, $myhostname",
                   smtpd_tls_cert_file=certs["crt"], smtpd_tls_key_file=certs["key"])
    peer.start_qmgr()
    smtps = listening_socket()
    request.addfinalizer(smtps.close)
    peer.start_smtpd(listeners=[("smtps", smtps)])
    port = smtps.getsockname()[1]
    p = postern
    p.start(relayhost="[127.0.0.1]:%d" % port, smtp_tls_wrappermode="yes",
            smtp_tls_security_level="verify", smtp_tls_CAfile=certs["ca"])
    relay = r"127\.0\.0\.1\[127\.0\.0\.1\]:%d" % port
    p.send("mailtest@remote.test", subject="over smtps")
    p.qmgr.wait_log(r"Verified TLS connection established to %s: TLSv1\.[23] " % relay)
    p.qmgr.wait_log(r"to=<mailtest@remote\.test>, relay=%s, .*status=sent" % relay)
    got = peer.wait_mbox("mailtest", 1)[0]
    assert b"Subject: over smtps" in got
    assert "STARTTLS" not in peer.smtpd.log()

    p.stop_all()
    q = Postern(tempfile.mkdtemp(prefix="postern-it-", dir="/tmp"))
    try:
        q.start(relayhost="[127.0.0.1]:%d" % port, smtp_helo_timeout="2s")
        q.send("mailtest2@remote.test", subject="plain to smtps")
        q.qmgr.wait_log(r"to=<mailtest2@remote\.test>, relay=none, .*status=deferred "
                        r"\((conversation with|lost connection with) 127\.0\.0\.1"
                        r"\[127\.0\.0\.1\] ", timeout=20)
    finally:
        q.stop_all()
        shutil.rmtree(q.tmp, ignore_errors=True)


def test_encrypt_refuses_a_peer_without_tls(postern, peer):
    start_peer(peer)                      # no certificate: no STARTTLS
    p = postern
    p.start(relayhost="[127.0.0.1]:%d" % peer.port, smtp_tls_security_level="encrypt")
    p.send("mailtest@remote.test", subject="must be encrypted")
    p.qmgr.wait_log(r"to=<mailtest@remote\.test>, relay=none, .*status=deferred \(TLS is "
                    r"required, but was not offered by host 127\.0\.0\.1\[127\.0\.0\.1\]\)")
    peer.smtpd.wait_log(r"disconnect from .* ehlo=1 quit=1")
    assert peer.mbox("mailtest") == []


def test_tls_policy_maps(postern, peer, certs):
    """smtp_tls_policy_maps overrides smtp_tls_security_level per next hop:
    "none" for a peer that offers STARTTLS keeps the session in plaintext;
    "secure" with match= and protocols= checks the certificate's names and
    the protocol; a match= the certificate fails defers (and a cached
    connection set up under another policy is not reused for it)."""
    start_peer(peer, smtpd_tls_cert_file=certs["crt"], smtpd_tls_key_file=certs["key"],
               smtpd_tls_security_level="may")
    p = postern
    policy = p.tmp / "tls_policy"
    policy.write_text("[127.0.0.1]:%d none\n"
                      "[localhost]:%d secure match=nosuch.example:localhost protocols=>=TLSv1.3\n"
                      % (peer.port, peer.port))
    os.chmod(policy, 0o644)
    transport = p.tmp / "transport"
    transport.write_text("plain.test smtp:[127.0.0.1]:%d\n"
                         "checked.test smtp:[localhost]:%d\n" % (peer.port, peer.port))
    os.chmod(transport, 0o644)
    p.start(transport_maps="texthash:%s" % transport, smtp_tls_policy_maps="texthash:%s" % policy,
            smtp_tls_CAfile=certs["ca"])
    p.send("mailtest@plain.test", subject="policy none")
    p.qmgr.wait_log(r"to=<mailtest@plain\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, "
                    r".*status=sent" % peer.port)
    assert "TLS connection established" not in p.qmgr.log()
    p.send("mailtest@checked.test", subject="policy secure")
    p.qmgr.wait_log(r"Verified TLS connection established to localhost\[[0-9.:]+\]:%d: "
                    r"TLSv1\.3 " % peer.port)
    p.qmgr.wait_log(r"to=<mailtest@checked\.test>, relay=localhost\[.*status=sent")
    # the certificate does not name other.example
    policy.write_text("[localhost]:%d secure match=other.example\n" % peer.port)
    time.sleep(1.1)               # file tables are checked for changes once a second
    p.send("mailtest2@checked.test", subject="wrong name")
    p.qmgr.wait_log(r"to=<mailtest2@checked\.test>, relay=none, .*status=deferred \(TLS "
                    r"handshake with localhost\[[0-9.:]+\]:%d failed: server certificate not "
                    r"verified" % peer.port)


def test_unreadable_tls_policy_defers(postern, peer):
    """A TLS policy that cannot be looked up defers the delivery: never a
    guess that might send in the clear."""
    start_peer(peer)
    p = postern
    p.start(relayhost="[127.0.0.1]:%d" % peer.port,
            smtp_tls_policy_maps="texthash:%s" % (p.tmp / "no-such-policy"))
    p.send("mailtest@remote.test", subject="policy unknown")
    p.qmgr.wait_log(r"to=<mailtest@remote\.test>, relay=none, .*dsn=4\.3\.0, status=deferred "
                    r"\(smtp_tls_policy_maps")
    assert peer.mbox("mailtest") == []


def test_fallback_relay(postern, peer):
    """A destination that cannot be reached goes to smtp_fallback_relay;
    mail for the relayhost never does (Postfix 2.3 and later)."""
    start_peer(peer)
    dead, dead2 = free_port(), free_port()
    p = postern
    transport = p.tmp / "transport"
    transport.write_text("far.test smtp:[127.0.0.1]:%d\n" % dead)
    os.chmod(transport, 0o644)
    p.start(transport_maps="texthash:%s" % transport,
            smtp_fallback_relay="[127.0.0.1]:%d" % peer.port,
            relayhost="[127.0.0.1]:%d" % dead2)
    p.send("mailtest@far.test", subject="via the fallback")
    p.qmgr.wait_log(r"to=<mailtest@far\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*"
                    r"status=sent" % peer.port)
    p.send("mailtest@elsewhere.test", subject="relayhost only")
    p.qmgr.wait_log(r"to=<mailtest@elsewhere\.test>, relay=none, .*status=deferred "
                    r"\(connect to 127\.0\.0\.1\[127\.0\.0\.1\]:%d: Connection refused\)"
                    % dead2)


def test_relayhost_with_auth(postern, peer, certs, sasl_dir):
    """A smarthost that takes mail only from authenticated clients: the
    credentials of smtp_sasl_password_maps (a root-only table: qmgr reads
    it) go over TLS with AUTH PLAIN; a wrong password defers with the
    server's words; without TLS (noplaintext) no password is sent."""
    make_sasldb(sasl_dir)
    params = dict(smtpd_tls_cert_file=certs["crt"], smtpd_tls_key_file=certs["key"],
                  smtpd_tls_security_level="may", smtpd_sasl_auth_enable="yes",
                  cyrus_sasl_config_path=str(sasl_dir), smtpd_sasl_local_domain=REALM,
                  mynetworks="192.0.2.0/24",
                  smtpd_recipient_restrictions="permit_sasl_authenticated, reject")
    start_peer(peer, **params)
    passwd = postern.tmp / "sasl_passwd"
    passwd.write_text("[127.0.0.1]:%d %s@%s:%s\n" % (peer.port, USER, REALM, PASSWORD))
    os.chmod(passwd, 0o600)
    p = postern
    p.start(relayhost="[127.0.0.1]:%d" % peer.port, smtp_sasl_auth_enable="yes",
            smtp_sasl_password_maps="texthash:%s" % passwd)
    p.send("mailtest@remote.test", subject="authenticated relay")
    p.qmgr.wait_log(r"to=<mailtest@remote\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*"
                    r"status=sent" % peer.port)
    peer.smtpd.wait_log(r"client=.*, sasl_method=PLAIN, sasl_username=%s@%s" % (USER, REALM))
    got = peer.wait_mbox("mailtest", 1)[0]
    assert re.search(rb"with ESMTPSA id", got), got[:600]

    passwd.write_text("[127.0.0.1]:%d %s@%s:wrong\n" % (peer.port, USER, REALM))
    time.sleep(1.1)               # file tables are checked for changes once a second
    p.send("mailtest@remote.test", subject="wrong password")
    p.qmgr.wait_log(r"to=<mailtest@remote\.test>, relay=none, .*status=deferred \(SASL "
                    r"authentication failed; server 127\.0\.0\.1\[127\.0\.0\.1\] said: 535 ",
                    timeout=20)


def test_no_password_over_plaintext(postern, peer, sasl_dir):
    make_sasldb(sasl_dir)
    start_peer(peer, smtpd_sasl_auth_enable="yes", cyrus_sasl_config_path=str(sasl_dir),
               smtpd_sasl_local_domain=REALM, smtpd_tls_auth_only="no",
               mynetworks="192.0.2.0/24",
               smtpd_recipient_restrictions="permit_sasl_authenticated, reject")
    passwd = postern.tmp / "sasl_passwd"
    passwd.write_text("[127.0.0.1]:%d %s@%s:%s\n" % (peer.port, USER, REALM, PASSWORD))
    p = postern
    p.start(relayhost="[127.0.0.1]:%d" % peer.port, smtp_sasl_auth_enable="yes",
            smtp_sasl_password_maps="texthash:%s" % passwd)
    p.send("mailtest@remote.test", subject="would be plaintext")
    p.qmgr.wait_log(r"to=<mailtest@remote\.test>, relay=none, .*status=deferred \(SASL "
                    r"authentication failed; cannot authenticate to server .*no mechanism "
                    r"available \(noplaintext without TLS\)\)")
    # no AUTH, no mail: EHLO and QUIT only
    peer.smtpd.wait_log(r"disconnect from .* ehlo=1 quit=1 commands=2")
    assert not re.search(r"disconnect from .* auth=", peer.smtpd.log())
