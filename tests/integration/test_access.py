"""Access policy: smtpd_*_restrictions with check_*_access tables (access(5)),
replaying the seed notes' access-table examples with Postfix's exact
replies, the access(5) actions, restriction classes, a table rewritten
while smtpd runs, and smtpd_delay_reject = no."""

import os
import re
import signal
import time

from conftest import queue_id_of

MAGEDU = dict(
    myhostname="mail.magedu.com",
    mydomain="magedu.com",
    myorigin="magedu.com",
    mydestination="$myhostname, localhost.$mydomain, localhost, $mydomain",
)


def access_table(p, text, name="access"):
    path = p.tmp / name
    path.write_text(text)
    return "hash:%s" % path


def transaction(p, sender="obama@whitehouse.com"):
    c = p.connect()
    c.expect("ehlo client.example.test", 250)
    c.expect("mail from:<%s>" % sender, 250)
    return c


def test_client_reject_reported_at_rcpt(postern):
    p = postern
    table = access_table(p, "127.0.0.1 REJECT\n")
    p.start(smtpd_client_restrictions="check_client_access " + table)
    c = transaction(p)       # smtpd_delay_reject = yes: MAIL still passes
    want = "554 5.7.1 <unknown[127.0.0.1]>: Client host rejected: Access denied"
    assert c.cmd("rcpt to:<mailtest@example.test>").text == want
    assert c.cmd("rcpt to:<mailtest2@example.test>").text == want
    c.expect("quit", 221)
    p.smtpd.wait_log(re.escape("NOQUEUE: reject: RCPT from unknown[127.0.0.1]: " + want +
                               "; from=<obama@whitehouse.com> to=<mailtest@example.test> "
                               "proto=ESMTP helo=<client.example.test>"))


def test_client_subnet_prefix(postern):
    p = postern
    table = access_table(p, "127.0 REJECT go away\n")
    p.start(smtpd_client_restrictions="check_client_access " + table)
    c = transaction(p)
    assert c.cmd("rcpt to:<mailtest@example.test>").text == \
        "554 5.7.1 <unknown[127.0.0.1]>: Client host rejected: go away"


def test_sender_domain_reject(postern):
    p = postern
    table = access_table(p, "whitehouse.com REJECT\n")
    p.start(smtpd_sender_restrictions="check_sender_access " + table)
    c = transaction(p)
    assert c.cmd("rcpt to:<mailtest@example.test>").text == \
        "554 5.7.1 <obama@whitehouse.com>: Sender address rejected: Access denied"
    c.expect("rset", 250)
    # parent_domain_matches_subdomains: whitehouse.com covers its subdomains
    c.expect("mail from:<x@mail.whitehouse.com>", 250)
    assert c.cmd("rcpt to:<mailtest@example.test>").text == \
        "554 5.7.1 <x@mail.whitehouse.com>: Sender address rejected: Access denied"
    c.expect("rset", 250)
    c.expect("mail from:<michelle@example.org>", 250)
    assert c.cmd("rcpt to:<mailtest@example.test>").code == 250


def test_recipient_localpart_reject_seed_notes(postern):
    """check_recipient_access before permit_mynetworks: 'rcpt to:hadoop'."""
    p = postern
    p.write_aliases("redhat: hadoop\nhadoop: mailtest\nopenstack: mailtest\n")
    table = access_table(p, "hadoop@ REJECT\nopenstack@ REJECT\n")
    p.start(smtpd_recipient_restrictions="check_recipient_access %s, permit_mynetworks, "
            "reject_unauth_destination" % table, **MAGEDU)
    c = transaction(p)
    assert c.cmd("rcpt to:hadoop").text == \
        "554 5.7.1 <hadoop>: Recipient address rejected: Access denied"
    assert c.cmd("rcpt to:openstack").text == \
        "554 5.7.1 <openstack>: Recipient address rejected: Access denied"
    assert c.cmd("rcpt to:redhat").code == 250


def test_actions(postern):
    p = postern
    table = access_table(p, "\n".join([
        "ok@example.test OK",
        "mailtest@example.test OK",
        "dunno@example.test DUNNO",
        "custom@example.test 450 4.7.0 come back later",
        "custom5@example.test 550 no such luck",
        "defer@example.test DEFER",
        "bogus@example.test FROBNICATE",
        "class@example.test strict",
        "warn@example.test WARN looks odd",
    ]) + "\n")
    p.start(smtpd_restriction_classes="strict", strict="reject",
            smtpd_recipient_restrictions="check_recipient_access %s, "
            "reject" % table)
    c = transaction(p)
    assert c.cmd("rcpt to:<ok@example.test>").text.startswith("550 5.1.1")   # implicit check stays
    assert c.cmd("rcpt to:<dunno@example.test>").text == \
        "554 5.7.1 <dunno@example.test>: Recipient address rejected: Access denied"
    assert c.cmd("rcpt to:<custom@example.test>").text == \
        "450 4.7.0 <custom@example.test>: Recipient address rejected: come back later"
    assert c.cmd("rcpt to:<custom5@example.test>").text == \
        "550 5.7.1 <custom5@example.test>: Recipient address rejected: no such luck"
    assert c.cmd("rcpt to:<defer@example.test>").text == \
        "450 4.7.1 <defer@example.test>: Recipient address rejected: Access denied"
    assert c.cmd("rcpt to:<bogus@example.test>").text == "451 4.3.5 Server configuration error"
    assert c.cmd("rcpt to:<class@example.test>").text == \
        "554 5.7.1 <class@example.test>: Recipient address rejected: Access denied"
    assert c.cmd("rcpt to:<warn@example.test>").text.startswith("554 5.7.1")
    assert c.cmd("rcpt to:<mailtest@example.test>").code == 250
    c.expect("quit", 221)
    p.smtpd.wait_log(r"NOQUEUE: warn: RCPT from unknown\[127\.0\.0\.1\]: looks odd; "
                     r"from=<obama@whitehouse\.com> to=<warn@example\.test>")


def test_prepend_hold_discard(postern):
    p = postern
    table = access_table(p, "\n".join([
        "tagged@whitehouse.com PREPEND X-Tag: from the access table",
        "held@whitehouse.com HOLD",
        "dropped@whitehouse.com DISCARD",
    ]) + "\n")
    p.start(smtpd_sender_restrictions="check_sender_access " + table)

    def send(sender, body):
        c = transaction(p, sender)
        c.expect("rcpt to:<mailtest@example.test>", 250)
        c.expect("data", 354)
        c.send("Subject: %s\r\n\r\n%s\r\n.\r\n" % (body, body))
        qid = queue_id_of(c.expect(None, 250))
        c.expect("quit", 221)
        return qid

    send("tagged@whitehouse.com", "tagged")
    (msg,) = p.wait_mbox("mailtest")
    assert b"\nX-Tag: from the access table\n" in msg

    # HOLD: the message is queued with a hold flag and qmgr parks it in hold/
    held = send("held@whitehouse.com", "held")
    p.smtpd.wait_log(r"NOQUEUE: hold: RCPT from .*: <held@whitehouse\.com>: Sender address "
                     r"triggers HOLD action")
    p.qmgr.wait_log(held + r": from=<held@whitehouse\.com>, .*\(queue hold\)")
    assert held in p.committed_queue_files()["hold"]

    dropped = send("dropped@whitehouse.com", "dropped")
    p.smtpd.wait_log(r"NOQUEUE: discard: RCPT from .*: <dropped@whitehouse\.com>: Sender "
                     r"address triggers DISCARD action")
    p.barrier("mailtest")
    assert all(b"dropped" not in m for m in p.mbox("mailtest"))
    assert all(b"Subject: held" not in m for m in p.mbox("mailtest"))
    assert all(dropped not in names for names in p.committed_queue_files().values())

    # released by hand (what "postsuper -H" does): delivered, not held again
    os.rename(p.spool / "hold" / held, p.spool / "incoming" / held)
    p.wait_queue_empty()
    assert any(b"\nSubject: held\n" in m for m in p.mbox("mailtest"))


def test_table_rewritten_takes_effect(postern):
    p = postern
    table = access_table(p, "someone@example.org REJECT\n")
    p.start(smtpd_sender_restrictions="check_sender_access " + table)
    c = transaction(p)
    assert c.cmd("rcpt to:<mailtest@example.test>").code == 250
    c.expect("quit", 221)
    time.sleep(1.1)     # a different mtime, past the 1-second recheck
    access_table(p, "whitehouse.com 554 5.7.1 not today\n")
    c = transaction(p)
    assert c.cmd("rcpt to:<mailtest@example.test>").text == \
        "554 5.7.1 <obama@whitehouse.com>: Sender address rejected: not today"


def test_builtin_helo_and_fqdn_checks(postern):
    p = postern
    p.start(smtpd_helo_restrictions="reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname",
            smtpd_sender_restrictions="reject_non_fqdn_sender",
            smtpd_recipient_restrictions="reject_non_fqdn_recipient, reject_unlisted_recipient")
    c = p.connect()
    c.expect("ehlo localhost", 250)
    c.expect("mail from:<obama@whitehouse.com>", 250)
    assert c.cmd("rcpt to:<mailtest@example.test>").text == \
        "504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname"
    c.expect("ehlo bad_name!", 250)
    c.expect("mail from:<obama@whitehouse.com>", 250)
    assert c.cmd("rcpt to:<mailtest@example.test>").text == \
        "501 5.5.2 <bad_name!>: Helo command rejected: Invalid name"
    c.expect("ehlo client.example.test", 250)
    c.expect("mail from:<obama@whitehouse>", 250)
    assert c.cmd("rcpt to:<mailtest@example.test>").text == \
        "504 5.5.2 <obama@whitehouse>: Sender address rejected: need fully-qualified address"
    c.expect("rset", 250)
    c.expect("mail from:<obama@whitehouse.com>", 250)
    assert c.cmd("rcpt to:<mailtest@example>").text == \
        "504 5.5.2 <mailtest@example>: Recipient address rejected: need fully-qualified address"
    assert c.cmd("rcpt to:<mailtest@example.test>").code == 250


def test_unauth_pipelining(postern):
    p = postern
    p.start(smtpd_client_restrictions="reject_unauth_pipelining")
    c = p.connect()
    c.send("EHLO early.example.test\r\nMAIL FROM:<a@example.test>\r\n")   # EHLO ends a group
    c.expect(None, 250)
    c.expect(None, 250)
    assert c.cmd("RCPT TO:<mailtest@example.test>").text == \
        "503 5.5.0 <unknown[127.0.0.1]>: Client host rejected: Improper use of SMTP command pipelining"


def test_no_delay_reject_rejects_at_connect(postern):
    p = postern
    table = access_table(p, "127.0.0.1 REJECT\n")
    p.configure(smtpd_delay_reject="no", smtpd_client_restrictions="check_client_access " + table)
    p.start_qmgr()
    p.start_smtpd(wait_ready=False)
    time.sleep(0.3)
    c = p.connect(greeting=False)
    assert c.reply().text == "554 5.7.1 <unknown[127.0.0.1]>: Client host rejected: Access denied"
    assert c.cmd("EHLO client.example.test").text == \
        "503 5.7.0 Error: access denied for unknown[127.0.0.1]"
    assert c.cmd("MAIL FROM:<a@example.test>").text == \
        "503 5.7.0 Error: access denied for unknown[127.0.0.1]"
    c.expect("QUIT", 221)
    p.smtpd.wait_log(re.escape("NOQUEUE: reject: CONNECT from unknown[127.0.0.1]: 554 5.7.1 "
                               "<unknown[127.0.0.1]>: Client host rejected: Access denied; "
                               "proto=SMTP"))


def test_no_delay_reject_sender_at_mail(postern):
    p = postern
    table = access_table(p, "whitehouse.com REJECT\n")
    p.start(smtpd_delay_reject="no", smtpd_sender_restrictions="check_sender_access " + table)
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    assert c.cmd("MAIL FROM:<obama@whitehouse.com>").text == \
        "554 5.7.1 <obama@whitehouse.com>: Sender address rejected: Access denied"
    c.expect("MAIL FROM:<michelle@example.org>", 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)


def test_table_that_cannot_answer_is_a_temporary_failure(postern):
    """An access table that cannot be read (missing here; a database that is
    down later) defers the recipient with Postfix's 451 4.3.5 reply, never a
    silent "not found": nothing is accepted on a guess."""
    p = postern
    p.start(smtpd_recipient_restrictions="check_recipient_access hash:%s, permit_mynetworks"
            % (p.tmp / "no-such-table"))
    c = transaction(p)
    assert c.cmd("rcpt to:<mailtest@example.test>").text == \
        "451 4.3.5 <mailtest@example.test>: Recipient address rejected: " \
        "Server configuration error"
    assert c.cmd("data").code in (503, 554)
    c.expect("quit", 221)
    assert all(not names for names in p.committed_queue_files().values())


def test_helo_required(postern):
    p = postern
    p.start(smtpd_helo_required="yes")
    c = p.connect()
    assert c.cmd("mail from:<a@remote.test>").text == "503 5.5.1 Error: send HELO/EHLO first"
    c.expect("helo client.example.test", 250)
    c.expect("mail from:<a@remote.test>", 250)
    c.expect("rcpt to:<mailtest@example.test>", 250)


def reload(p, n):
    """SIGHUP, then wait for the n-th "reloaded configuration" line."""
    p.smtpd.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while p.smtpd.log().count("reloaded configuration") < n:
        assert time.monotonic() < deadline, "no reload"
        time.sleep(0.02)


def test_pattern_tables_see_only_whole_keys(postern):
    """Postfix asks regexp:/pcre:/cidr: access tables only about the whole
    address or name, never the partial keys (domain, parents, user@) that
    hash: tables get."""
    p = postern
    rx = p.tmp / "sender_rx"
    rx.write_text("/^whitehouse\\.com$/ REJECT domain key\n/^obama@$/ REJECT user key\n"
                  "/^obama@whitehouse\\.com$/ REJECT whole address\n")
    cidr = p.tmp / "clients"
    cidr.write_text("127.0.0.0/8 REJECT by network\n")
    hashed = access_table(p, "whitehouse.com REJECT domain key\n")
    p.start(smtpd_sender_restrictions="check_sender_access regexp:%s" % rx,
            smtpd_client_restrictions="check_client_access cidr:%s" % cidr,
            smtpd_restriction_classes="domains",
            domains="check_sender_access " + hashed)
    c = p.connect()
    c.expect("ehlo client.example.test", 250)
    c.expect("mail from:<obama@whitehouse.com>", 250)
    # the client rule comes first (smtpd_delay_reject: all stages at RCPT)
    assert c.cmd("rcpt to:<mailtest@example.test>").text == \
        "554 5.7.1 <unknown[127.0.0.1]>: Client host rejected: by network"
    c.expect("quit", 221)
    p.configure(smtpd_client_restrictions=None)
    reload(p, 1)
    c = p.connect()
    c.expect("ehlo client.example.test", 250)
    c.expect("mail from:<obama@whitehouse.com>", 250)
    assert c.cmd("rcpt to:<mailtest@example.test>").text == \
        "554 5.7.1 <obama@whitehouse.com>: Sender address rejected: whole address"
    c.expect("rset", 250)
    c.expect("mail from:<michelle@whitehouse.com>", 250)   # only partial keys would match
    c.expect("rcpt to:<mailtest@example.test>", 250)
    c.expect("quit", 221)
    # the same domain key in a hash: table does match
    p.configure(smtpd_sender_restrictions="domains")
    reload(p, 2)
    c = p.connect()
    c.expect("ehlo client.example.test", 250)
    c.expect("mail from:<michelle@whitehouse.com>", 250)
    assert c.cmd("rcpt to:<mailtest@example.test>").text == \
        "554 5.7.1 <michelle@whitehouse.com>: Sender address rejected: domain key"


def test_bare_postmaster_is_always_accepted(postern):
    """RFC 5321 4.5.1: RCPT TO:<postmaster> (no domain) passes every
    restriction, as in Postfix, and reaches the postmaster alias."""
    p = postern
    p.write_aliases("postmaster: mailtest2\n")
    p.start(smtpd_client_restrictions="reject", smtpd_recipient_restrictions="reject")
    c = p.connect()
    c.expect("ehlo client.example.test", 250)
    c.expect("mail from:<a@remote.test>", 250)
    assert c.cmd("rcpt to:<mailtest@example.test>").text == \
        "554 5.7.1 <unknown[127.0.0.1]>: Client host rejected: Access denied"
    c.expect("rcpt to:<Postmaster>", 250)
    c.expect("data", 354)
    c.send("Subject: hello postmaster\r\n\r\nhi\r\n.\r\n")
    assert c.reply().code == 250
    c.expect("quit", 221)
    (msg,) = p.wait_mbox("mailtest2")
    assert b"Subject: hello postmaster" in msg
    assert b"X-Original-To: Postmaster@mail.example.test\n" in msg


def test_warn_if_reject(postern):
    """warn_if_reject turns the next restriction's reject into a
    reject_warning log line; the restriction after it counts again."""
    p = postern
    table = access_table(p, "whitehouse.com REJECT\n")
    p.start(smtpd_recipient_restrictions="warn_if_reject check_sender_access %s, "
                                         "warn_if_reject reject, "
                                         "permit_mynetworks, reject" % table)
    c = transaction(p)
    c.expect("rcpt to:<mailtest@example.test>", 250)
    c.expect("quit", 221)
    p.smtpd.wait_log(re.escape(
        "NOQUEUE: reject_warning: RCPT from unknown[127.0.0.1]: 554 5.7.1 "
        "<obama@whitehouse.com>: Sender address rejected: Access denied; "
        "from=<obama@whitehouse.com> to=<mailtest@example.test>"))
    p.smtpd.wait_log(re.escape(
        "NOQUEUE: reject_warning: RCPT from unknown[127.0.0.1]: 554 5.7.1 "
        "<mailtest@example.test>: Recipient address rejected: Access denied;"))
    # without warn_if_reject in front, the same check rejects
    p.configure(smtpd_recipient_restrictions="check_sender_access %s, warn_if_reject reject, "
                                             "permit_mynetworks" % table)
    reload(p, 1)
    c = transaction(p)
    assert c.cmd("rcpt to:<mailtest@example.test>").text == \
        "554 5.7.1 <obama@whitehouse.com>: Sender address rejected: Access denied"
