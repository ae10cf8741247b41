"""Relay control and recipient checks, replaying the telnet session of the
seed notes (myhostname = mail.magedu.com) against a client outside
mynetworks."""

from conftest import parse_delivered, queue_id_of

MAGEDU = dict(
    myhostname="mail.magedu.com",
    mydomain="magedu.com",
    myorigin="magedu.com",
    mydestination="$myhostname, localhost.$mydomain, localhost, $mydomain",
    mynetworks="192.168.101.0/24",       # 127.0.0.1 is not in it: no relaying for us
)


def magedu(postern):
    postern.write_aliases("redhat: hadoop\nhadoop: mailtest\n")
    return postern.start(**MAGEDU)


def test_relay_denied_and_user_unknown(postern):
    p = magedu(postern)
    c = p.connect()
    c.expect("ehlo client.example.test", 250)
    assert c.cmd("mail from:obama@whitehouse.com").text.startswith("250 2.1.0")
    assert c.cmd("rcpt to:hadoop@aol.com").text == "554 5.7.1 <hadoop@aol.com>: Relay access denied"
    assert c.cmd("rcpt to:bbb@magedu.com").text == \
        "550 5.1.1 <bbb@magedu.com>: Recipient address rejected: User unknown in local recipient table"
    # the seed notes' "rcpt to:hadoop": no domain, completed with @$myorigin, an alias of mailtest
    assert c.cmd("rcpt to:hadoop").text.startswith("250 2.1.5")
    c.expect("data", 354)
    c.send("Subject:How are you?\r\npostfix test!!!\r\n.\r\n")
    queue_id_of(c.expect(None, 250))
    c.expect("quit", 221)
    (msg,) = p.wait_mbox("mailtest")
    _, headers, _, rest = parse_delivered(msg, True)
    assert headers[0] == "Return-Path: <obama@whitehouse.com>"
    assert headers[1] == "X-Original-To: hadoop@magedu.com"
    assert headers[2].startswith("Delivered-To: mailtest@"), headers[2]
    assert rest == b"Subject:How are you?\npostfix test!!!\n\n"


def test_rcpt_without_domain_local_user(postern):
    p = magedu(postern)
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<obama@whitehouse.com>", 250)
    c.expect("RCPT TO:<mailtest>", 250)
    c.expect("DATA", 354)
    c.send("Subject: no domain\r\n\r\nhi\r\n.\r\n")
    queue_id_of(c.expect(None, 250))
    c.expect("QUIT", 221)
    (msg,) = p.wait_mbox("mailtest")
    assert parse_delivered(msg, True)[1][2].startswith("Delivered-To: mailtest@")
    assert msg.endswith(b"\nSubject: no domain\n\nhi\n\n")


def test_relay_denied_for_every_foreign_domain(postern):
    p = magedu(postern)
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<obama@whitehouse.com>", 250)
    for rcpt in ("someone@example.org", "hadoop@magedu.com.evil.test", "x@sub.magedu.com"):
        assert c.cmd("RCPT TO:<%s>" % rcpt).text == "554 5.7.1 <%s>: Relay access denied" % rcpt
    assert c.cmd("DATA").code in (503, 554), "DATA without a valid recipient"
    c.expect("QUIT", 221)


def test_mynetworks_client_may_relay(postern):
    """Inside mynetworks the same recipient is accepted (permit_mynetworks)."""
    params = dict(MAGEDU, mynetworks="127.0.0.0/8")
    p = postern.start(**params)
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<obama@whitehouse.com>", 250)
    assert c.cmd("RCPT TO:<hadoop@aol.com>").code == 250
    c.expect("RSET", 250)
    assert c.cmd("RCPT TO:<bbb@magedu.com>").code == 503       # no MAIL after RSET
    c.expect("MAIL FROM:<obama@whitehouse.com>", 250)
    assert c.cmd("RCPT TO:<bbb@magedu.com>").text.startswith("550 5.1.1 <bbb@magedu.com>:")
    c.expect("QUIT", 221)
