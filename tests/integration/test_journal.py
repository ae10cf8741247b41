"""Native journald logging: smtpd and qmgr send structured entries to a
private journald (journal.py) and `journalctl POSTERN_QUEUE_ID=...` shows
one message's whole path with the right POSTERN_* fields; without a
journal the same lines go to stderr (sd_journal_send() would drop them
silently)."""

import re

import pytest

from conftest import QMGR, SMTPD, Daemon, queue_id_of
from journal import MountNamespace


@pytest.fixture
def journal(postern):
    ns = MountNamespace(postern.tmp / "journal")
    yield ns
    ns.stop()


def start_in(ns, p, *smtpd_args):
    """qmgr and smtpd inside ns, without POSTERN_LOG_STDERR."""
    p.write_main_cf()
    env = {k: v for k, v in p.env.items() if k != "POSTERN_LOG_STDERR"}
    p.qmgr = p._daemon("qmgr", ns.argv([QMGR, "--config-dir", p.confdir]), env=env)
    p.smtpd = p._daemon("smtpd", ns.argv([SMTPD, "--config-dir", p.confdir, *smtpd_args]),
                        sockets=[("smtp", p.sock)], env=env)
    p.wait_smtp_ready(p.port, p.smtpd)


def send_one(p, rcpt="mailtest@example.test", subject="journal"):
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<sender@client.example.test>", 250)
    c.expect("RCPT TO:<%s>" % rcpt, 250)
    c.expect("DATA", 354)
    c.send("Subject: %s\r\n\r\nbody\r\n.\r\n" % subject)
    qid = queue_id_of(c.expect(None, 250))
    c.expect("QUIT", 221)
    c.close()
    return qid


def test_message_path_in_the_journal(postern, journal):
    """client=, from= (queued), from= (queue active), to=... status=sent,
    removed: each a native entry of its service with its fields."""
    p = postern.configure()
    start_in(journal, p)
    qid = send_one(p)
    p.wait_mbox("mailtest")
    entries = journal.wait_entries(
        lambda es: any(e["MESSAGE"] == qid + ": removed" for e in es), "POSTERN_QUEUE_ID=" + qid)
    by = {}
    for e in entries:
        assert e["POSTERN_QUEUE_ID"] == qid
        assert e["PRIORITY"] == "6"
        assert e["_TRANSPORT"] == "journal"
        assert e["MESSAGE"].startswith(qid + ": ")
        by.setdefault(e["SYSLOG_IDENTIFIER"], []).append(e)
    assert set(by) == {"postern-smtpd", "postern-qmgr"}
    smtpd, qmgr = by["postern-smtpd"], by["postern-qmgr"]
    assert int(smtpd[0]["_PID"]) == p.smtpd.pid and int(qmgr[0]["_PID"]) == p.qmgr.pid

    text = [e["MESSAGE"][len(qid) + 2:] for e in smtpd]
    assert text[0] == "client=unknown[127.0.0.1]"
    m = re.match(r"^from=<sender@client\.example\.test>, size=(\d+), nrcpt=1 \(queued\)$", text[1])
    assert m and len(text) == 2, text
    size = m.group(1)
    assert smtpd[0]["POSTERN_CLIENT"] == smtpd[1]["POSTERN_CLIENT"] == "unknown[127.0.0.1]"
    assert smtpd[1]["POSTERN_SENDER"] == "sender@client.example.test"
    assert "POSTERN_SENDER" not in smtpd[0]

    text = [e["MESSAGE"][len(qid) + 2:] for e in qmgr]
    assert len(text) == 3, text
    assert text[0] == "from=<sender@client.example.test>, size=%s, nrcpt=1 (queue active)" % size
    assert re.match(r"^to=<mailtest@example\.test>, relay=local, delay=([0-9.]+), delays=[0-9.]+/"
                    r"[0-9.]+/[0-9.]+/[0-9.]+, dsn=2\.0\.0, status=sent \(delivered to mailbox\)$",
                    text[1]), text[1]
    assert text[2] == "removed"
    assert qmgr[0]["POSTERN_SENDER"] == "sender@client.example.test"
    d = qmgr[1]
    assert d["POSTERN_RECIPIENT"] == "mailtest@example.test"
    assert d["POSTERN_STATUS"] == "sent"
    assert d["POSTERN_RELAY"] == "local"
    assert d["POSTERN_SENDER"] == "sender@client.example.test"
    assert d["POSTERN_DELAY"] == re.search(r"delay=([0-9.]+),", text[1]).group(1)
    assert "POSTERN_RECIPIENT" not in qmgr[2]

    # nothing went to stderr: the journal got every line
    assert "client=" not in p.smtpd.log() and "status=sent" not in p.qmgr.log()
    # the same question by field, as an administrator asks it
    sent = journal.entries("POSTERN_STATUS=sent", "POSTERN_RECIPIENT=mailtest@example.test")
    assert [e["POSTERN_QUEUE_ID"] for e in sent] == [qid]


def test_other_lines_carry_their_fields(postern, journal):
    """A reject (NOQUEUE, with client, sender and recipient fields), a
    warning (PRIORITY 4, "warning: " as Postfix writes it), a deferral and
    the connection lines."""
    spool = postern.tmp / "no-such-mail-spool"
    p = postern.configure(mail_spool_directory=spool)
    start_in(journal, p, "-o", "no_such_parameter=1")
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<sender@client.example.test>", 250)
    r = c.cmd("RCPT TO:<no-such-user@example.test>")
    assert r.text == ("550 5.1.1 <no-such-user@example.test>: Recipient address rejected: "
                      "User unknown in local recipient table")
    c.expect("QUIT", 221)
    c.close()
    rejects = journal.wait_entries(lambda es: len(es) == 1, "SYSLOG_IDENTIFIER=postern-smtpd",
                                   "POSTERN_RECIPIENT=no-such-user@example.test")
    e = rejects[0]
    assert e["MESSAGE"] == ("NOQUEUE: reject: RCPT from unknown[127.0.0.1]: %s; "
                            "from=<sender@client.example.test> to=<no-such-user@example.test> "
                            "proto=ESMTP helo=<client.example.test>" % r.text)
    assert (e["POSTERN_CLIENT"], e["POSTERN_SENDER"], e["PRIORITY"]) == (
        "unknown[127.0.0.1]", "sender@client.example.test", "6")
    assert "POSTERN_QUEUE_ID" not in e

    conn = journal.entries("SYSLOG_IDENTIFIER=postern-smtpd", "POSTERN_CLIENT=unknown[127.0.0.1]")
    msgs = [x["MESSAGE"] for x in conn]
    assert "connect from unknown[127.0.0.1]" in msgs
    assert any(m.startswith("disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=0/1 quit=1")
               for m in msgs), msgs

    warn = journal.entries("SYSLOG_IDENTIFIER=postern-smtpd", "PRIORITY=4")
    assert any(re.match(r"^warning: .*unknown parameter name: no_such_parameter$", x["MESSAGE"])
               for x in warn), [x["MESSAGE"] for x in warn]

    qid = send_one(p, subject="deferred")          # mail_spool_directory does not exist
    deferred = journal.wait_entries(lambda es: len(es) == 1, "POSTERN_QUEUE_ID=" + qid,
                                    "POSTERN_STATUS=deferred")
    d = deferred[0]
    assert d["POSTERN_RECIPIENT"] == "mailtest@example.test"
    assert d["POSTERN_RELAY"] == "local"
    assert d["MESSAGE"].endswith(
        ", dsn=4.2.0, status=deferred (cannot update mailbox %s/mailtest for user mailtest. "
        "cannot access mail spool directory %s: No such file or directory)" % (spool, spool))


def test_without_a_journal_lines_go_to_stderr(postern, tmp_path):
    """No journal socket, no POSTERN_LOG_STDERR: Postfix-style lines on
    stderr, not lost in sd_journal_send()."""
    ns = MountNamespace(tmp_path / "nojournal", journal=False)
    try:
        p = postern.configure()
        start_in(ns, p)
        qid = send_one(p)
        p.wait_mbox("mailtest")
        p.qmgr.wait_log(r"postern-qmgr\[%d\]: %s: removed$" % (p.qmgr.pid, qid))
        log = p.smtpd.log()
        assert re.search(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d\.\d{3} postern-smtpd\[%d\]: "
                         r"%s: client=unknown\[127\.0\.0\.1\]$" % (p.smtpd.pid, qid), log, re.M), log
    finally:
        ns.stop()
