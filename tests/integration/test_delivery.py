"""Local delivery end to end: SMTP in, bytes in the mailbox out (mbox and
Maildir), aliases, ownership, retries from deferred/."""

import os
import pwd
import re
import time

from conftest import parse_delivered, queue_id_of

SENDER = "sender@client.example.test"

# Every awkward thing at once: leading dots (smtplib stuffs them, the mailbox
# must hold the original), "From " lines (quoted in mbox only), 8-bit octets
# (BODY=8BITMIME), white space at line ends, an empty line inside.
TRICKY = (b"From: <sender@client.example.test>\r\n"
          b"To: <mailtest@example.test>\r\n"
          b"Subject: byte exact\r\n"
          b"Message-ID: <byte-exact@client.example.test>\r\n"
          b"MIME-Version: 1.0\r\n"
          b"Content-Type: text/plain; charset=utf-8\r\n"
          b"Content-Transfer-Encoding: 8bit\r\n"
          b"\r\n"
          b"line one\r\n"
          b".leading dot\r\n"
          b"..two dots\r\n"
          b".\r\n"
          b"From the start of a line\r\n"
          b">From already quoted\r\n"
          b" From not at the start\r\n"
          b"\r\n"
          b"trailing spaces   \r\n"
          b"\ttab\r\n"
          b"8bit: Gr\xc3\xbc\xc3\x9fe, \xe6\x97\xa5\xe6\x9c\xac, raw \xff\xfe\x80\r\n"
          b"last line\r\n")


def lf(data):
    return data.replace(b"\r\n", b"\n")


def mbox_quote(data):
    return re.sub(rb"(?m)^From ", b">From ", data)


def send_tricky(p, to="mailtest@example.test"):
    with p.smtp() as s:
        s.ehlo()
        assert s.has_extn("8bitmime")
        refused = s.sendmail(SENDER, [to], TRICKY, mail_options=["BODY=8BITMIME"])
        assert not refused


def test_mbox_byte_exact(postern):
    p = postern.start()
    send_tricky(p)
    (msg,) = p.wait_mbox("mailtest")
    from_line, headers, received, rest = parse_delivered(msg, mbox=True)
    assert from_line.startswith("From %s  " % SENDER)
    assert headers == ["Return-Path: <%s>" % SENDER,
                       "X-Original-To: mailtest@example.test",
                       "Delivered-To: mailtest@example.test"]
    assert "\tby mail.example.test" in received
    # the message as sent, LF line ends, dot-unstuffed, From_ quoted, then an empty line
    assert rest == mbox_quote(lf(TRICKY)) + b"\n"
    st = os.stat(p.mbox_path("mailtest"))
    assert st.st_uid == pwd.getpwnam("mailtest").pw_uid, "mbox not owned by the recipient"


def test_mbox_appends_in_order(postern):
    p = postern.start()
    for i in range(3):
        p.send("mailtest@example.test", subject="append-%d" % i, body="number %d\r\n" % i)
        p.wait_mbox("mailtest", i + 1)
    msgs = p.mbox("mailtest")
    assert len(msgs) == 3
    for i, m in enumerate(msgs):
        assert b"\nSubject: append-%d\n" % i in m
        assert m.endswith(b"\nnumber %d\n\n" % i)
    # the message shows before the lock goes; the queue file goes after both
    p.wait_queue_empty()
    assert not (p.mail / "mailtest.lock").exists(), "dotlock left behind"


def test_maildir_byte_exact(postern):
    p = postern.start(home_mailbox="Maildir/")
    send_tricky(p)
    ((path, msg),) = p.wait_maildir("mailtest")
    assert path.parent.name == "new"
    _, headers, received, rest = parse_delivered(msg, mbox=False)
    assert headers == ["Return-Path: <%s>" % SENDER,
                       "X-Original-To: mailtest@example.test",
                       "Delivered-To: mailtest@example.test"]
    assert rest == lf(TRICKY), "Maildir content differs (no From_ quoting, no extra line)"
    uid = pwd.getpwnam("mailtest").pw_uid
    assert os.stat(path).st_uid == uid
    maildir = p.home("mailtest") / "Maildir"
    for sub in ("new", "cur", "tmp"):
        assert (maildir / sub).is_dir() and os.stat(maildir / sub).st_uid == uid
    assert os.listdir(maildir / "tmp") == []
    assert not p.mbox_path("mailtest").exists()


def test_maildir_unique_names(postern):
    p = postern.start(home_mailbox="Maildir/")
    for i in range(5):
        p.send("mailtest@example.test", subject="unique-%d" % i)
    msgs = p.wait_maildir("mailtest", 5)
    assert len({path.name for path, _ in msgs}) == 5
    assert sorted(re.search(rb"\nSubject: (unique-\d)\n", m).group(1) for _, m in msgs) == \
        [b"unique-%d" % i for i in range(5)]


def test_two_local_recipients_one_transaction(postern):
    p = postern.start()
    p.send(["mailtest@example.test", "mailtest2@localhost"], subject="two", body="both\r\n")
    (m1,) = p.wait_mbox("mailtest")
    (m2,) = p.wait_mbox("mailtest2")
    assert parse_delivered(m1, True)[1][2] == "Delivered-To: mailtest@example.test"
    assert parse_delivered(m2, True)[1][2] == "Delivered-To: mailtest2@localhost"
    assert m1.endswith(b"\nboth\n\n") and m2.endswith(b"\nboth\n\n")


def test_received_header(postern):
    p = postern.start()
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.expect("DATA", 354)
    c.send("Subject: received\r\n\r\nbody\r\n.\r\n")
    qid = queue_id_of(c.expect(None, 250))
    c.expect("QUIT", 221)
    (msg,) = p.wait_mbox("mailtest")
    received = parse_delivered(msg, True)[2]
    assert received.startswith("Received: from client.example.test ")
    assert "127.0.0.1" in received
    assert "\tby mail.example.test" in received
    assert qid in received, "Received: header lacks the queue id %s: %r" % (qid, received)
    assert "ESMTP" in received


def test_helo_name_is_neutered(postern):
    """A HELO name cannot smuggle structure into Received: or the log:
    words are joined with one space, then unprintable characters and
    space < > ( ) \\ " ; @ become '?', as Postfix does."""
    p = postern.start()
    c = p.connect()
    c.send(b"EHLO evil  <x@y>\x01(z)\r\n")
    c.expect(None, 250)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.expect("DATA", 354)
    c.send("Subject: helo\r\n\r\nbody\r\n.\r\n")
    queue_id_of(c.expect(None, 250))
    c.expect("QUIT", 221)
    (msg,) = p.wait_mbox("mailtest")
    received = parse_delivered(msg, True)[2]
    assert received.startswith("Received: from evil??x?y???z? ("), received


def test_null_sender(postern):
    p = postern.start()
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<>", 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.expect("DATA", 354)
    c.send("Subject: bounce-like\r\n\r\nnull sender\r\n.\r\n")
    queue_id_of(c.expect(None, 250))
    c.expect("QUIT", 221)
    (msg,) = p.wait_mbox("mailtest")
    assert parse_delivered(msg, True)[1][0] == "Return-Path: <>"


def test_alias_recursive(postern):
    p = postern.configure()
    p.write_aliases("# seed notes: redhat: hadoop\nredhat: hadoop\nhadoop: mailtest\n"
                    "team: mailtest,\n  mailtest2\n")
    p.start()
    p.send("redhat@example.test", subject="via alias")
    (msg,) = p.wait_mbox("mailtest")
    _, headers, _, rest = parse_delivered(msg, True)
    assert headers[1] == "X-Original-To: redhat@example.test"
    assert headers[2].startswith("Delivered-To: mailtest@"), headers[2]
    assert b"Subject: via alias\n" in rest
    p.send("team@example.test", subject="to the team")
    p.wait_mbox("mailtest", 2)
    (m2,) = p.wait_mbox("mailtest2")
    assert b"Subject: to the team\n" in m2


def test_deferred_then_delivered(postern):
    """A failed local delivery (the user's home is missing) is deferred and
    retried with backoff, then delivered once the home exists."""
    p = postern.configure(home_mailbox="Maildir/")
    home = p.home("mailtest")
    os.rmdir(home)
    p.start()
    p.send("mailtest@example.test", subject="retry me")
    deadline = time.monotonic() + 10
    while not p.committed_queue_files()["deferred"]:
        assert time.monotonic() < deadline, "message never reached deferred/: %r" % p.queue_files()
        assert not p.maildir("mailtest")
        time.sleep(0.02)
    p.make_home("mailtest")
    ((_, msg),) = p.wait_maildir("mailtest", timeout=15)
    assert b"Subject: retry me\n" in msg
    p.wait_queue_empty()


def test_maildir_delivery_has_only_the_users_rights(postern):
    """Delivery into a home runs as the user: a Maildir that is a symlink
    into a root-only directory is not written to; the mail is deferred."""
    p = postern.configure(home_mailbox="Maildir/")
    target = p.tmp / "root-only"
    target.mkdir(mode=0o700)
    for sub in ("tmp", "new", "cur"):
        (target / sub).mkdir(mode=0o700)
    os.symlink(target, p.home("mailtest") / "Maildir")
    p.start()
    p.send("mailtest@example.test", subject="not for root")
    deadline = time.monotonic() + 10
    while not p.committed_queue_files()["deferred"]:
        assert time.monotonic() < deadline, "message never reached deferred/: %r" % p.queue_files()
        time.sleep(0.02)
    assert [f for sub in ("tmp", "new", "cur") for f in os.listdir(target / sub)] == []
    assert "Permission denied" in p.qmgr.log()


def test_one_copy_per_mailbox(postern):
    """The same user reached through several recipients of one message (the
    address twice in other case, and an alias naming it) gets one copy, as
    with Postfix's duplicate filter; the other user of the alias gets its own."""
    p = postern.configure()
    p.write_aliases("team: mailtest, mailtest2, mailtest\n")
    p.start()
    p.send(["mailtest@example.test", "MailTest@example.test", "team@example.test"],
           subject="once each")
    p.wait_queue_empty()
    assert len(p.mbox("mailtest")) == 1
    assert len(p.mbox("mailtest2")) == 1
