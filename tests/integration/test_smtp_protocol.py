"""The SMTP dialogue on the wire: greeting, EHLO, command replies,
pipelining, bare LF, size and recipient limits, long lines, many sessions."""

import threading

from conftest import queue_id_of

SENDER = "sender@client.example.test"


def test_greeting_and_ehlo(postern):
    p = postern.start()
    c = p.connect(greeting=False)
    g = c.reply()
    assert g.code == 220 and g.text.startswith("220 mail.example.test ESMTP"), g
    r = c.expect("EHLO client.example.test", 250)
    assert r.lines[0].startswith("250-mail.example.test"), r
    keywords = {t.split()[0].upper() for t in r.texts[1:]}
    assert {"PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES"} <= keywords, r
    c.expect("QUIT", 221)
    assert c.read_to_eof(5) == (b"", True)


def test_basic_commands(postern):
    p = postern.start()
    c = p.connect()
    c.expect("HELO client.example.test", 250)
    assert c.expect("NOOP", 250).text.startswith("250 2.0.0")
    assert c.cmd("RCPT TO:<mailtest@example.test>").text.startswith("503 5.5.1"), "RCPT before MAIL"
    assert c.cmd("DATA").text.startswith("503 5.5.1"), "DATA before MAIL"
    assert c.expect("MAIL FROM:<%s>" % SENDER, 250).text.startswith("250 2.1.0")
    assert c.cmd("MAIL FROM:<%s>" % SENDER).text.startswith("503 5.5.1"), "nested MAIL"
    # as Postfix: 554 "no valid recipients" inside a transaction
    assert c.cmd("DATA").text[:9] in ("503 5.5.1", "554 5.5.1"), "DATA before RCPT"
    assert c.expect("RCPT TO:<mailtest@example.test>", 250).text.startswith("250 2.1.5")
    assert c.expect("RSET", 250).text.startswith("250 2.0.0")
    assert c.cmd("DATA").text.startswith("503 5.5.1"), "RSET forgets the transaction"
    assert c.cmd("BOGUS").text.startswith("502 5.5.2")
    # VRFY never discloses users: the same 252 for a real and an unknown user
    assert c.cmd("VRFY mailtest").text == "252 2.0.0 mailtest"
    assert c.cmd("VRFY nosuchuser").text == "252 2.0.0 nosuchuser"
    assert c.cmd("HELP").code == 214
    assert c.cmd("MAIL FROM:<broken").code == 501
    assert c.expect("QUIT", 221).text.startswith("221 2.0.0")
    assert c.read_to_eof(5)[1]
    p.barrier()
    assert p.mbox("mailtest") == []


def test_pipelined_transactions(postern):
    """EHLO, MAIL, RCPTs and DATA in one write; the end of the first message
    and the second transaction in the next write: replies in order."""
    p = postern.start()
    c = p.connect()
    c.send("EHLO client.example.test\r\n"
           "MAIL FROM:<one@client.example.test>\r\n"
           "RCPT TO:<mailtest@example.test>\r\n"
           "RCPT TO:<nosuchuser@example.test>\r\n"
           "RCPT TO:<mailtest2@example.test>\r\n"
           "DATA\r\n")
    ehlo = c.reply()
    assert ehlo.code == 250 and any(t.upper() == "PIPELINING" for t in ehlo.texts), ehlo
    r = c.replies(5)
    assert [x.code for x in r] == [250, 250, 550, 250, 354], r
    assert r[2].text.startswith("550 5.1.1 <nosuchuser@example.test>:"), r[2]
    c.send("Subject: first\r\n\r\nfirst body\r\n.\r\n"
           "MAIL FROM:<two@client.example.test>\r\n"
           "RCPT TO:<mailtest@example.test>\r\n"
           "DATA\r\n")
    r = c.replies(4)
    assert [x.code for x in r] == [250, 250, 250, 354], r
    q1 = queue_id_of(r[0])
    c.send("Subject: second\r\n\r\nsecond body\r\n.\r\nQUIT\r\n")
    r = c.replies(2)
    assert [x.code for x in r] == [250, 221], r
    q2 = queue_id_of(r[0])
    assert q1 != q2
    assert c.read_to_eof(5) == (b"", True)
    got = p.wait_mbox("mailtest", 2)
    subjects = sorted(m.split(b"\nSubject: ")[1].split(b"\n")[0] for m in got)
    assert subjects == [b"first", b"second"]
    (m2,) = p.wait_mbox("mailtest2")
    assert m2.endswith(b"\nSubject: first\n\nfirst body\n\n")
    assert b"\nReturn-Path: <one@client.example.test>\n" in m2


def test_dot_stuffing_raw(postern):
    """The server removes exactly one leading dot; "." alone ends the data."""
    p = postern.start()
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.expect("DATA", 354)
    c.send("Subject: dots\r\n\r\n..\r\n...\r\n..x\r\n.y\r\nz.\r\n.\r\n")
    queue_id_of(c.expect(None, 250))
    c.expect("QUIT", 221)
    (msg,) = p.wait_mbox("mailtest")
    assert msg.endswith(b"\nSubject: dots\n\n.\n..\n.x\ny\nz.\n\n")


def test_bare_lf_smuggling(postern):
    """DATA with a bare LF before a fake end of data and a smuggled second
    transaction: 550 (Postfix's smtpd_forbid_bare_newline_reject_code), connection closed, nothing delivered."""
    p = postern.start()
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.expect("DATA", 354)
    c.send(b"Subject: innocent\r\n\r\nhello\n.\n"
           b"MAIL FROM:<evil@attacker.test>\r\n"
           b"RCPT TO:<mailtest@example.test>\r\n"
           b"DATA\r\n"
           b"Subject: smuggled\r\n\r\nevil\r\n.\r\n")
    data, closed = c.read_to_eof()
    assert data == b"550 5.5.2 mail.example.test Error: bare <LF> received\r\n", data
    assert closed
    p.barrier()
    assert p.mbox("mailtest") == [], "a message was delivered after a bare LF"
    p.wait_queue_empty()


def test_message_size_limit(postern):
    p = postern.start(message_size_limit=10000)
    c = p.connect()
    r = c.expect("EHLO client.example.test", 250)
    assert "SIZE 10000" in r.texts, r
    # Postfix's texts: smtpd's size check at MAIL, cleanup's after DATA
    assert c.cmd("MAIL FROM:<%s> SIZE=20000" % SENDER).text == \
        "552 5.3.4 Message size exceeds fixed limit"
    c.expect("MAIL FROM:<%s> SIZE=500" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.expect("DATA", 354)
    c.send(b"Subject: too big\r\n\r\n" + (b"x" * 98 + b"\r\n") * 200 + b".\r\n")
    assert c.reply().text == "552 5.3.4 Error: message file too big"
    # the session goes on; a small message passes
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.expect("DATA", 354)
    c.send(b"Subject: small\r\n\r\n" + (b"y" * 98 + b"\r\n") * 50 + b".\r\n")
    queue_id_of(c.expect(None, 250))
    c.expect("QUIT", 221)
    (msg,) = p.wait_mbox("mailtest")
    assert b"\nSubject: small\n" in msg
    p.barrier()
    assert len(p.mbox("mailtest")) == 1
    p.wait_queue_empty()
    assert p.queue_files()["incoming"] == [], "temp file of the rejected message left behind"


def test_recipient_limit(postern):
    p = postern.start(smtpd_recipient_limit=2)
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.expect("RCPT TO:<mailtest2@example.test>", 250)
    assert c.cmd("RCPT TO:<mailtest@localhost>").text == "452 4.5.3 Error: too many recipients"
    c.expect("DATA", 354)
    c.send("Subject: limited\r\n\r\nbody\r\n.\r\n")
    queue_id_of(c.expect(None, 250))
    c.expect("QUIT", 221)
    (m1,) = p.wait_mbox("mailtest")
    p.wait_mbox("mailtest2")
    assert b"\nDelivered-To: mailtest@example.test\n" in m1


def test_long_command_line(postern):
    """A command line far past the RFC limit is an error reply, not a crash."""
    p = postern.start()
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.send(b"MAIL FROM:<" + b"a" * 100000 + b"@client.example.test>\r\n")
    try:
        r = c.reply()
        assert r.code >= 500 or r.code == 421, r
        if r.code != 421:
            c.expect("NOOP", 250)
    except EOFError:
        pass
    p.wait_smtp_ready(p.port, p.smtpd)


def test_long_data_line(postern):
    """A 100 kB line in DATA: either accepted or refused, never a crash;
    the session and the server go on."""
    p = postern.start()
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.expect("DATA", 354)
    c.send(b"Subject: long line\r\n\r\n" + b"z" * 100000 + b"\r\n.\r\n")
    r = c.reply()
    assert r.code in (250, 500, 552, 554), r
    p.wait_smtp_ready(p.port, p.smtpd)


def test_many_concurrent_sessions(postern):
    p = postern.start(home_mailbox="Maildir/")
    errors = []

    def client(n):
        try:
            with p.smtp() as s:
                for i in range(5):
                    s.sendmail(SENDER, ["mailtest@example.test"],
                               b"Subject: c%02d-%d\r\n\r\nbody\r\n" % (n, i))
        except Exception as e:          # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    msgs = p.wait_maildir("mailtest", 100, timeout=30)
    subjects = {m.split(b"\nSubject: ")[1].split(b"\n")[0] for _, m in msgs}
    assert len(msgs) == 100 and len(subjects) == 100


def test_vrfy_disabled(postern):
    """disable_vrfy_command = yes gives Postfix's 502 reply."""
    p = postern.start(disable_vrfy_command="yes")
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    assert c.cmd("VRFY mailtest").text == "502 5.5.1 VRFY command is disabled"
    c.expect("QUIT", 221)
