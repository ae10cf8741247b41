"""The DATA and end-of-data restriction stages (smtpd_data_restrictions,
smtpd_end_of_data_restrictions) and the access(5) actions REDIRECT and BCC,
with Postfix's reply texts and log lines, checked on the wire, in the
queue directory and in the delivered mailbox bytes."""

import re
import signal
import time

from conftest import parse_delivered, queue_id_of

QID = r"[0-9A-F]{18,40}"
CLIENT = re.escape("unknown[127.0.0.1]")


def access_table(p, text, name="access"):
    path = p.tmp / name
    path.write_text(text)
    return "hash:%s" % path


def transaction(p, sender, *rcpts):
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<%s>" % sender, 250)
    for r in rcpts:
        c.expect("RCPT TO:<%s>" % r, 250)
    return c


def message(subject, body):
    """Message text as sent (CRLF) and as stored (LF)."""
    text = "Subject: %s\r\n\r\n%s\r\n" % (subject, body)
    return text, text.replace("\r\n", "\n").encode()


def send_data(c, subject, body):
    """DATA (waiting for the 354), the content, the dot: the final reply."""
    c.expect("DATA", 354)
    sent, _ = message(subject, body)
    c.send(sent + ".\r\n")
    return c.reply()


def incoming(p):
    """Everything in incoming/, temp files included."""
    return p.queue_files()["incoming"]


def wait_incoming_empty(p, timeout=10.0):
    """incoming/ without any file, temp files included (a session that is
    gone has removed its unfinished queue file)."""
    deadline = time.monotonic() + timeout
    while incoming(p):
        assert time.monotonic() < deadline, "incoming/ not empty: %r" % incoming(p)
        time.sleep(0.02)


# ---------------------------------------------------------------- DATA

def test_data_rejects_unauth_pipelining(postern):
    p = postern
    p.start(smtpd_data_restrictions="reject_unauth_pipelining")
    c = transaction(p, "pipe@example.org", "mailtest@example.test")
    # DATA with more input behind it, without waiting for the 354 (RFC 2920)
    c.send("DATA\r\nNOOP\r\n")
    want = ("503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command "
            "pipelining")
    assert c.reply().text == want
    assert c.reply().text == "250 2.0.0 Ok"
    # Postfix leaves the transaction as it was: MAIL and RCPT still stand
    assert c.cmd("RCPT TO:<mailtest2@example.test>").text == "250 2.1.5 Ok"
    assert c.cmd("MAIL FROM:<again@example.org>").text == "503 5.5.1 Error: nested MAIL command"
    # the session stays marked: a later DATA is refused too
    assert c.cmd("DATA").text == want
    c.expect("RSET", 250)
    c.expect("QUIT", 221)
    p.smtpd.wait_log(QID + re.escape(": reject: DATA from unknown[127.0.0.1]: " + want +
                                     "; from=<pipe@example.org> to=<mailtest@example.test> "
                                     "proto=ESMTP helo=<client.example.test>"))
    # the message content the client pipelined was never taken as mail
    assert all(not names for names in p.committed_queue_files().values())

    # a client that waits for the 354 gets its mail delivered
    c = transaction(p, "patient@example.org", "mailtest@example.test")
    r = send_data(c, "patient", "waited for the 354")
    queue_id_of(r)
    c.expect("QUIT", 221)
    (msg,) = p.wait_mbox("mailtest")
    _, hdrs, _, rest = parse_delivered(msg, mbox=True)
    assert hdrs[0] == "Return-Path: <patient@example.org>"
    assert rest == b"Subject: patient\n\nwaited for the 354\n\n"


def test_data_pipelined_content_is_not_taken_as_mail(postern):
    """The whole message sent with DATA in one write: after the 503 every
    content line is a (bad) command, as in Postfix, and nothing is queued."""
    p = postern
    p.start(smtpd_data_restrictions="reject_unauth_pipelining")
    c = transaction(p, "pipe@example.org", "mailtest@example.test")
    c.send("DATA\r\nSubject: smuggled\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    assert c.reply().text == ("503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP "
                              "command pipelining")
    assert c.reply().text == "502 5.5.2 Error: command not recognized"
    assert c.reply().text == "500 5.5.2 Error: bad syntax"
    assert c.reply().text == "502 5.5.2 Error: command not recognized"
    assert c.reply().text == "502 5.5.2 Error: command not recognized"
    assert c.reply().text == "221 2.0.0 Bye"
    c.close()
    p.barrier("mailtest2")
    assert p.mbox("mailtest") == []
    p.smtpd.wait_log(r"disconnect from unknown\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 data=0/1 "
                     r"quit=1 unknown=0/4 commands=4/9")
    wait_incoming_empty(p)


def test_data_check_access_and_builtins(postern):
    p = postern
    senders = access_table(p, "spam@example.org REJECT go away\n"
                              "later@example.org DEFER\n"
                              "friend@example.org OK\n", "senders")
    clients = access_table(p, "127.0.0.1 DUNNO\n", "clients")
    # localhost is not in mynetworks here: permit_mynetworks does not
    # apply and the list ends in reject, unless the sender table permits
    p.start(mynetworks="192.0.2.0/24",
            smtpd_relay_restrictions="reject_unauth_destination",
            smtpd_data_restrictions="check_client_access %s, check_sender_access %s, "
                                    "permit_mynetworks, reject" % (clients, senders))
    c = transaction(p, "spam@example.org", "mailtest@example.test")
    assert c.cmd("DATA").text == "554 5.7.1 <spam@example.org>: Sender address rejected: go away"
    c.expect("RSET", 250)
    c.expect("MAIL FROM:<later@example.org>", 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    assert c.cmd("DATA").text == \
        "450 4.7.1 <later@example.org>: Sender address rejected: Access denied"
    c.expect("RSET", 250)
    c.expect("MAIL FROM:<stranger@example.org>", 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.expect("RCPT TO:<mailtest2@example.test>", 250)
    assert c.cmd("DATA").text == "554 5.7.1 <DATA>: Data command rejected: Access denied"
    c.expect("RSET", 250)
    c.expect("MAIL FROM:<friend@example.org>", 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    queue_id_of(send_data(c, "friend", "let in by the sender table"))
    c.expect("QUIT", 221)
    # two recipients: the DATA log line names none of them (Postfix)
    p.smtpd.wait_log(QID + re.escape(": reject: DATA from unknown[127.0.0.1]: 554 5.7.1 "
                                     "<DATA>: Data command rejected: Access denied; "
                                     "from=<stranger@example.org> proto=ESMTP "
                                     "helo=<client.example.test>"))
    (msg,) = p.wait_mbox("mailtest")
    assert msg.endswith(b"\nSubject: friend\n\nlet in by the sender table\n\n")
    assert p.mbox("mailtest2") == []


def test_data_defer_and_permit_mynetworks(postern):
    p = postern
    clients = access_table(p, "127.0.0.1 DEFER\n")
    p.start(smtpd_data_restrictions="permit_mynetworks, check_client_access " + clients)
    c = transaction(p, "local@example.org", "mailtest@example.test")
    queue_id_of(send_data(c, "trusted", "permit_mynetworks ends the list"))
    c.expect("QUIT", 221)
    p.wait_mbox("mailtest")

    p.configure(mynetworks="192.0.2.0/24", smtpd_relay_restrictions="reject_unauth_destination")
    p.smtpd.signal(signal.SIGHUP)
    p.smtpd.wait_log("reloaded configuration")
    c = transaction(p, "local@example.org", "mailtest@example.test")
    # the table's reply names what it looked up, the client
    assert c.cmd("DATA").text == \
        "450 4.7.1 <unknown[127.0.0.1]>: Client host rejected: Access denied"
    c.expect("QUIT", 221)


def test_data_stage_actions(postern):
    p = postern
    table = access_table(p, "\n".join([
        "tag@example.org PREPEND X-Data-Stage: tagged at DATA",
        "held@example.org HOLD",
        "drop@example.org DISCARD",
        "warn@example.org WARN watch this one",
    ]) + "\n")
    p.start(smtpd_data_restrictions="check_sender_access " + table)

    c = transaction(p, "tag@example.org", "mailtest@example.test")
    queue_id_of(send_data(c, "tagged", "prepended"))
    c.expect("QUIT", 221)
    (msg,) = p.wait_mbox("mailtest")
    # PREPEND goes above our Received: header, as Postfix's smtpd writes it
    assert b"\nDelivered-To: mailtest@example.test\nX-Data-Stage: tagged at DATA\nReceived: " in msg
    assert msg.endswith(b"\nSubject: tagged\n\nprepended\n\n")

    c = transaction(p, "held@example.org", "mailtest@example.test")
    held = queue_id_of(send_data(c, "held", "kept in hold"))
    c.expect("QUIT", 221)
    p.qmgr.wait_log(held + r": from=<held@example\.org>, .*\(queue hold\)")
    assert held in p.committed_queue_files()["hold"]
    p.smtpd.wait_log(QID + re.escape(": hold: DATA from unknown[127.0.0.1]: <held@example.org>: "
                                     "Sender address triggers HOLD action; from=<held@example.org>"
                                     " to=<mailtest@example.test>"))

    c = transaction(p, "drop@example.org", "mailtest@example.test")
    dropped = queue_id_of(send_data(c, "dropped", "discarded"))
    c.expect("QUIT", 221)

    c = transaction(p, "warn@example.org", "mailtest@example.test")
    queue_id_of(send_data(c, "warned", "logged"))
    c.expect("QUIT", 221)
    p.smtpd.wait_log(QID + re.escape(": warn: DATA from unknown[127.0.0.1]: watch this one; "
                                     "from=<warn@example.org> to=<mailtest@example.test>"))
    msgs = p.wait_mbox("mailtest", 2)
    p.barrier("mailtest2")
    msgs = p.mbox("mailtest")
    assert [m.split(b"\nSubject: ")[1].split(b"\n")[0] for m in msgs] == [b"tagged", b"warned"]
    assert all(dropped not in names for names in p.committed_queue_files().values())


# ---------------------------------------------------------------- end of data

def test_end_of_data_reject_removes_the_message(postern):
    p = postern
    table = access_table(p, "bad@example.org REJECT no thanks\n"
                            "good@example.org OK\n"
                            "client.example.test OK\n")     # the barrier's sender
    p.start(home_mailbox="Maildir/",
            smtpd_end_of_data_restrictions="check_sender_access %s, defer" % table)
    c = transaction(p, "bad@example.org", "mailtest@example.test")
    r = send_data(c, "rejected", "after the dot")
    assert r.text == "554 5.7.1 <bad@example.org>: Sender address rejected: no thanks"
    # the final reply ends the transaction: a new one may start at once
    c.expect("MAIL FROM:<other@example.org>", 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.expect("RCPT TO:<mailtest2@example.test>", 250)
    r = send_data(c, "deferred", "try later")
    assert r.text == "450 4.3.2 <END-OF-DATA>: End-of-data rejected: Try again later"
    assert incoming(p) == []          # no queue file, not even a temp file
    c.expect("MAIL FROM:<good@example.org>", 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    queue_id_of(send_data(c, "accepted", "permitted by the table"))
    c.expect("QUIT", 221)
    p.smtpd.wait_log(QID + re.escape(": reject: END-OF-MESSAGE from unknown[127.0.0.1]: 554 5.7.1 "
                                     "<bad@example.org>: Sender address rejected: no thanks; "
                                     "from=<bad@example.org> to=<mailtest@example.test> "
                                     "proto=ESMTP helo=<client.example.test>"))
    p.smtpd.wait_log(QID + re.escape(": reject: END-OF-MESSAGE from unknown[127.0.0.1]: 450 4.3.2 "
                                     "<END-OF-DATA>: End-of-data rejected: Try again later; "
                                     "from=<other@example.org> proto=ESMTP"))
    ((_, msg),) = p.wait_maildir("mailtest")
    _, hdrs, _, rest = parse_delivered(msg, mbox=False)
    assert hdrs[0] == "Return-Path: <good@example.org>"
    assert rest == b"Subject: accepted\n\npermitted by the table\n"
    p.wait_queue_empty()        # the rejected ones were never queued: nothing else comes
    assert len(p.maildir("mailtest")) == 1
    assert p.maildir("mailtest2") == []
    assert incoming(p) == []


def test_end_of_data_discard_hold_and_late_prepend(postern):
    p = postern
    table = access_table(p, "\n".join([
        "drop@example.org DISCARD",
        "held@example.org HOLD kept for review",
        "tag@example.org PREPEND X-Late: too late",
    ]) + "\n")
    p.start(smtpd_end_of_data_restrictions="check_sender_access " + table)

    c = transaction(p, "drop@example.org", "mailtest@example.test")
    dropped = queue_id_of(send_data(c, "dropped", "claimed but not kept"))
    c.expect("QUIT", 221)
    p.smtpd.wait_log(re.escape(dropped + ": discard: END-OF-MESSAGE from unknown[127.0.0.1]: "
                               "<drop@example.org>: Sender address triggers DISCARD action; "
                               "from=<drop@example.org> to=<mailtest@example.test>"))

    c = transaction(p, "held@example.org", "mailtest@example.test")
    held = queue_id_of(send_data(c, "held", "sits in hold"))
    c.expect("QUIT", 221)
    p.smtpd.wait_log(re.escape(held + ": hold: END-OF-MESSAGE from unknown[127.0.0.1]: "
                               "<held@example.org>: Sender address kept for review;"))
    p.qmgr.wait_log(held + r": from=<held@example\.org>, .*\(queue hold\)")
    assert held in p.committed_queue_files()["hold"]
    data = (p.spool / "hold" / held).read_bytes()
    # the flag is an extracted record behind the content; qmgr's K follows
    assert re.search(rb"\nSubject: held\n\nsits in hold\nE\nLhold\nK\d+\n$", data), data[-200:]

    c = transaction(p, "tag@example.org", "mailtest@example.test")
    queue_id_of(send_data(c, "tagged", "no header added"))
    c.expect("QUIT", 221)
    p.smtpd.wait_log(re.escape("access table %s: action PREPEND must be used before "
                               "smtpd_end_of_data_restrictions" % table))
    (msg,) = p.wait_mbox("mailtest")
    assert b"X-Late" not in msg
    assert msg.endswith(b"\nSubject: tagged\n\nno header added\n\n")
    p.barrier("mailtest2")
    assert len(p.mbox("mailtest")) == 1
    assert all(dropped not in names for names in p.queue_files().values())


# ---------------------------------------------------------------- REDIRECT and BCC

def test_redirect(postern):
    p = postern
    p.write_aliases("postmaster: root\nother: mailtest\n")
    table = access_table(p, "mailtest@example.test REDIRECT mailtest2@example.test\n"
                            "mailtest2@example.test REDIRECT mailtest\n")
    p.start(home_mailbox="Maildir/",
            smtpd_recipient_restrictions="check_recipient_access %s, permit_mynetworks, "
                                         "reject_unauth_destination" % table)
    c = transaction(p, "sender@example.org", "other@example.test", "mailtest@example.test")
    qid = queue_id_of(send_data(c, "redirected", "for the redirect target only"))
    c.expect("QUIT", 221)
    p.smtpd.wait_log(r"NOQUEUE: redirect: RCPT from %s: <mailtest@example\.test>: Recipient "
                     r"address triggers REDIRECT mailtest2@example\.test; "
                     r"from=<sender@example\.org> to=<mailtest@example\.test>" % CLIENT)
    # every recipient goes to the redirect address, the earlier one too;
    # one copy
    ((_, msg),) = p.wait_maildir("mailtest2")
    _, hdrs, _, rest = parse_delivered(msg, mbox=False)
    assert hdrs == ["Return-Path: <sender@example.org>", "X-Original-To: other@example.test",
                    "Delivered-To: mailtest2@example.test"]
    assert rest == b"Subject: redirected\n\nfor the redirect target only\n"
    p.qmgr.wait_log(qid + r": to=<mailtest2@example\.test>, orig_to=<other@example\.test>, "
                    r"relay=local, .*status=sent")
    p.wait_queue_empty()
    assert p.maildir("mailtest") == []

    # a target without a domain is refused with Postfix's warning
    c = transaction(p, "sender@example.org", "mailtest2@example.test")
    c.expect("QUIT", 221)
    p.smtpd.wait_log(re.escape('access table %s entry "mailtest2@example.test" requires '
                               'user@domain target' % table))


def test_redirect_last_one_wins_at_end_of_data(postern):
    p = postern
    rcpts = access_table(p, "mailtest@example.test REDIRECT mailtest2@example.test\n", "rcpts")
    senders = access_table(p, "late@example.org REDIRECT mailtest@example.test\n", "senders")
    p.start(smtpd_recipient_restrictions="check_recipient_access %s, permit_mynetworks, "
                                         "reject_unauth_destination" % rcpts,
            smtpd_end_of_data_restrictions="check_sender_access " + senders)
    c = transaction(p, "late@example.org", "mailtest@example.test")
    qid = queue_id_of(send_data(c, "twice", "redirected twice"))
    c.expect("QUIT", 221)
    p.smtpd.wait_log(re.escape(qid + ": redirect: END-OF-MESSAGE from unknown[127.0.0.1]: "
                               "<late@example.org>: Sender address triggers REDIRECT "
                               "mailtest@example.test;"))
    (msg,) = p.wait_mbox("mailtest")
    _, hdrs, _, rest = parse_delivered(msg, mbox=True)
    assert hdrs[1:] == ["X-Original-To: mailtest@example.test",
                        "Delivered-To: mailtest@example.test"]
    assert rest == b"Subject: twice\n\nredirected twice\n\n"
    p.barrier("mailtest2")
    assert len(p.mbox("mailtest2")) == 1       # the barrier only


def test_bcc(postern):
    p = postern
    table = access_table(p, "boss@example.org BCC mailtest2@example.test\n")
    p.start(smtpd_sender_restrictions="check_sender_access " + table)
    # two RCPTs evaluate the sender stage twice: still one copy
    c = transaction(p, "boss@example.org", "mailtest@example.test", "mailtest@example.test")
    qid = queue_id_of(send_data(c, "watched", "a copy goes to mailtest2"))
    c.expect("QUIT", 221)
    p.smtpd.wait_log(r"NOQUEUE: bcc: RCPT from %s: <boss@example\.org>: Sender address "
                     r"triggers BCC mailtest2@example\.test; from=<boss@example\.org>" % CLIENT)
    p.smtpd.wait_log(qid + r": from=<boss@example\.org>, size=\d+, nrcpt=3 \(queued\)")
    (orig,) = p.wait_mbox("mailtest")
    (copy,) = p.wait_mbox("mailtest2")
    _, hdrs1, rcv1, rest1 = parse_delivered(orig, mbox=True)
    _, hdrs2, rcv2, rest2 = parse_delivered(copy, mbox=True)
    assert hdrs1[1:] == ["X-Original-To: mailtest@example.test",
                         "Delivered-To: mailtest@example.test"]
    assert hdrs2[1:] == ["X-Original-To: mailtest2@example.test",
                         "Delivered-To: mailtest2@example.test"]
    assert rcv1 == rcv2             # the same queued message
    assert rest1 == rest2 == b"Subject: watched\n\na copy goes to mailtest2\n\n"
    p.wait_queue_empty()


def test_bcc_at_end_of_data(postern):
    p = postern
    p.write_aliases("postmaster: root\narchive: mailtest2\n")
    clients = access_table(p, "127.0.0.1 BCC archive@example.test\n")
    p.start(smtpd_end_of_data_restrictions="check_client_access " + clients)
    c = transaction(p, "someone@example.org", "mailtest@example.test")
    qid = queue_id_of(send_data(c, "archived", "copied at the end of data"))
    c.expect("QUIT", 221)
    p.smtpd.wait_log(re.escape(qid + ": bcc: END-OF-MESSAGE from unknown[127.0.0.1]: "
                               "<unknown[127.0.0.1]>: Client host triggers BCC "
                               "archive@example.test;"))
    (orig,) = p.wait_mbox("mailtest")
    (copy,) = p.wait_mbox("mailtest2")
    _, _, _, rest1 = parse_delivered(orig, mbox=True)
    _, hdrs2, _, rest2 = parse_delivered(copy, mbox=True)
    # the alias result is completed with $myorigin, as Postfix's local does
    assert hdrs2[1:] == ["X-Original-To: archive@example.test",
                         "Delivered-To: mailtest2@mail.example.test"]
    assert rest1 == rest2 == b"Subject: archived\n\ncopied at the end of data\n\n"
    p.qmgr.wait_log(qid + r": to=<mailtest2@mail\.example\.test>, orig_to=<archive@example\.test>, "
                    r"relay=local, .*status=sent")
