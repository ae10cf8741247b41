"""postern-smtpd's ESMTP extensions on the wire (issue 7, server side):
DSN (RFC 3461) parameters kept in the queue file, SMTPUTF8 (RFC 6531)
addresses delivered to virtual mailboxes and aliases, CHUNKING / BDAT
(RFC 3030) through the same pipeline as DATA with no way to smuggle a
command through a chunk.  Replies are compared as exact lines, mailboxes
as exact bytes."""

import os
import pwd
import re
import time

import pytest

from conftest import parse_delivered, queue_id_of

SENDER = "sender@client.example.test"
EHLO = "EHLO client.example.test"


def ehlo(c):
    r = c.expect(EHLO, 250)
    return r


def keywords(reply):
    return [t.split()[0].upper() for t in reply.texts[1:]]


def bdat(data, last=False):
    return b"BDAT %d%s\r\n" % (len(data), b" LAST" if last else b"") + data


def lines(c, n):
    return [r.text for r in c.replies(n)]


# ---------------------------------------------------------------- queue files

def read_queue_file(path):
    """(envelope records as [(letter, bytes)], content) of a queue file."""
    data = path.read_bytes()
    assert data.startswith(b"POSTERN-QUEUE 1\n"), data[:40]
    pos = len(b"POSTERN-QUEUE 1\n")
    records = []
    size = None
    while True:
        end = data.index(b"\n", pos)
        line = data[pos:end]
        pos = end + 1
        if line == b"X":
            break
        records.append((chr(line[0]), line[1:]))
        if line[:1] == b"Z":
            size = int(line[1:])
    content = data[pos:pos + size]
    assert data[pos + size:pos + size + 2] == b"E\n"
    return records, content


def wait_incoming(p, n=1, timeout=10):
    """The committed files in incoming/ once there are n (no qmgr running)."""
    deadline = time.monotonic() + timeout
    while True:
        names = p.committed_queue_files()["incoming"]
        if len(names) >= n:
            return [p.spool / "incoming" / name for name in names]
        assert time.monotonic() < deadline, "no queue file: %r" % p.queue_files()
        time.sleep(0.02)


def start_smtpd_only(p, **params):
    """smtpd without qmgr: accepted mail stays in incoming/ to be read."""
    p.configure(**params)
    p.start_smtpd()
    return p


# ---------------------------------------------------------------- EHLO

def test_ehlo_announces_dsn_smtputf8_chunking(postern):
    p = postern.start()
    c = p.connect()
    r = ehlo(c)
    # Postfix's order; CHUNKING is the last line
    assert r.lines[0] == "250-mail.example.test"
    assert keywords(r)[-4:] == ["8BITMIME", "DSN", "SMTPUTF8", "CHUNKING"], r
    assert r.lines[-1] == "250 CHUNKING"
    assert all(ln.startswith("250-") for ln in r.lines[:-1]), r
    c.expect("QUIT", 221)


def test_smtputf8_disabled(postern):
    p = postern.start(smtputf8_enable="no")
    c = p.connect()
    r = ehlo(c)
    assert "SMTPUTF8" not in keywords(r) and "CHUNKING" in keywords(r), r
    assert c.cmd("MAIL FROM:<%s> SMTPUTF8" % SENDER).text == \
        "555 5.5.4 Unsupported option: SMTPUTF8"
    # strict_smtputf8 (Postern's default) still wants the declaration
    assert c.cmd("MAIL FROM:<j\u00f6rg@client.example.test>").text == \
        "553 5.6.7 Must declare SMTPUTF8 to send unicode address"
    c.expect("QUIT", 221)


def test_discard_ehlo_keywords(postern):
    p = postern.start(smtpd_discard_ehlo_keywords="dsn, smtputf8, chunking")
    c = p.connect()
    r = ehlo(c)
    assert not {"DSN", "SMTPUTF8", "CHUNKING"} & set(keywords(r)), r
    assert r.lines[-1] == "250 8BITMIME"
    assert c.cmd("MAIL FROM:<%s> RET=FULL" % SENDER).text == "501 5.7.1 DSN support is disabled"
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    # BDAT unannounced: the session ends, the "chunk" is never read as commands
    c.send(bdat(b"RSET\r\n"))
    data, closed = c.read_to_eof()
    assert data == b"521 5.5.1 Error: command not implemented\r\n" and closed, data
    p.smtpd.wait_log(r"discarding EHLO keywords: DSN SMTPUTF8 CHUNKING")


# ---------------------------------------------------------------- DSN

def test_dsn_parameters_in_queue_file(postern):
    """RET, ENVID, NOTIFY and ORCPT land decoded in the queue file's e, r,
    n and o records, per recipient and in order, for DATA and for BDAT."""
    p = start_smtpd_only(postern)
    c = p.connect()
    ehlo(c)
    c.expect("MAIL FROM:<%s> RET=HDRS ENVID=QQ+2B314159+3D" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test> NOTIFY=SUCCESS,FAILURE "
             "ORCPT=rfc822;Orig+2Bext@Example.test", 250)
    c.expect("RCPT TO:<mailtest2@example.test> NOTIFY=NEVER", 250)
    c.expect("RCPT TO:<root@example.test>", 250)
    c.expect("RCPT TO:<postmaster@example.test> ORCPT=x-local;pm", 250)
    c.expect("DATA", 354)
    c.send("Subject: dsn\r\n\r\nbody\r\n.\r\n")
    queue_id_of(c.reply())
    c.expect("MAIL FROM:<> RET=FULL", 250)
    c.expect("RCPT TO:<mailtest@example.test> NOTIFY=delay", 250)
    msg = b"Subject: dsn bdat\r\n\r\nbody\r\n"
    c.send(bdat(msg, last=True))
    r = c.reply()
    assert re.match(r"^250 2\.0\.0 Ok: %d bytes queued as [0-9A-F]+$" % len(msg), r.text), r
    c.expect("QUIT", 221)

    files = {}
    for path in wait_incoming(p, 2):
        records, content = read_queue_file(path)
        files[b"dsn bdat" in content] = records
    data_rec, bdat_rec = files[False], files[True]
    env = [(k, v) for k, v in data_rec if k in "SRnoerOL"]
    assert env == [
        ("S", SENDER.encode()),
        ("e", b"QQ+314159="), ("r", b"HDRS"),
        ("R", b"mailtest@example.test"), ("n", b"SUCCESS,FAILURE"),
        ("o", b"rfc822;Orig+ext@Example.test"),
        ("R", b"mailtest2@example.test"), ("n", b"NEVER"),
        ("R", b"root@example.test"),
        ("R", b"postmaster@example.test"), ("o", b"x-local;pm"),
    ], data_rec
    env = [(k, v) for k, v in bdat_rec if k in "SRnoerOL"]
    assert env == [("S", b""), ("r", b"FULL"), ("R", b"mailtest@example.test"),
                   ("n", b"DELAY")], bdat_rec
    assert ("P", b"ESMTP") in bdat_rec
    # the queue manager reads them and delivers
    p.start_qmgr()
    msgs = p.wait_mbox("mailtest", 2)
    assert sorted(m.split(b"\nSubject: ")[1].split(b"\n")[0] for m in msgs) == \
        [b"dsn", b"dsn bdat"]


@pytest.mark.parametrize("cmd, reply", [
    ("MAIL FROM:<%s> RET=" % SENDER, "501 5.5.4 Bad RET parameter syntax"),
    ("MAIL FROM:<%s> RET=NONE" % SENDER, "501 5.5.4 Bad RET parameter syntax"),
    ("MAIL FROM:<%s> RET=FULL RET=FULL" % SENDER, "501 5.5.4 Bad RET parameter syntax"),
    ("MAIL FROM:<%s> ENVID=" % SENDER, "501 5.5.4 Bad ENVID parameter syntax"),
    ("MAIL FROM:<%s> ENVID=a+2b" % SENDER, "501 5.5.4 Bad ENVID parameter syntax"),
    ("MAIL FROM:<%s> ENVID=a+0D+0A" % SENDER, "501 5.5.4 Bad ENVID parameter syntax"),
    ("MAIL FROM:<%s> ENVID=a+00" % SENDER, "501 5.5.4 Bad ENVID parameter syntax"),
    ("MAIL FROM:<%s> ENVID=a=b" % SENDER, "501 5.5.4 Bad ENVID parameter syntax"),
    ("MAIL FROM:<%s> ENVID=%s" % (SENDER, "x" * 101), "501 5.5.4 Bad ENVID parameter syntax"),
    ("MAIL FROM:<%s> ENVID=a ENVID=b" % SENDER, "501 5.5.4 Bad ENVID parameter syntax"),
    ("MAIL FROM:<%s> FROBNICATE=1" % SENDER, "555 5.5.4 Unsupported option: FROBNICATE=1"),
    ("RCPT TO:<mailtest@example.test> NOTIFY=", "501 5.5.4 Error: Bad NOTIFY parameter syntax"),
    ("RCPT TO:<mailtest@example.test> NOTIFY=NEVER,SUCCESS",
     "501 5.5.4 Error: Bad NOTIFY parameter syntax"),
    ("RCPT TO:<mailtest@example.test> NOTIFY=OFTEN", "501 5.5.4 Error: Bad NOTIFY parameter syntax"),
    ("RCPT TO:<mailtest@example.test> NOTIFY=DELAY NOTIFY=DELAY",
     "501 5.5.4 Error: Bad NOTIFY parameter syntax"),
    ("RCPT TO:<mailtest@example.test> ORCPT=rfc822", "501 5.5.4 Error: Bad ORCPT parameter syntax"),
    ("RCPT TO:<mailtest@example.test> ORCPT=rfc822;", "501 5.5.4 Error: Bad ORCPT parameter syntax"),
    ("RCPT TO:<mailtest@example.test> ORCPT=;a@b", "501 5.5.4 Error: Bad ORCPT parameter syntax"),
    ("RCPT TO:<mailtest@example.test> ORCPT=rfc822;a+0Ab@c",
     "501 5.5.4 Error: Bad ORCPT parameter syntax"),
    ("RCPT TO:<mailtest@example.test> ORCPT=rfc822;a ORCPT=rfc822;a",
     "501 5.5.4 Error: Bad ORCPT parameter syntax"),
    ("RCPT TO:<mailtest@example.test> RET=FULL", "555 5.5.4 Unsupported option: RET=FULL"),
])
def test_dsn_syntax_errors(postern, cmd, reply):
    p = postern.start()
    c = p.connect()
    ehlo(c)
    if cmd.startswith("RCPT"):
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
    assert c.cmd(cmd).text == reply
    # the transaction (or its absence) is as before: the client can go on
    if cmd.startswith("RCPT"):
        c.expect("RCPT TO:<mailtest@example.test>", 250)
    else:
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("QUIT", 221)


# ---------------------------------------------------------------- SMTPUTF8

def virtual_utf8(p, **params):
    pw = pwd.getpwnam("mailtest")
    base = p.tmp / "vmail"
    base.mkdir(mode=0o755)
    os.chown(base, pw.pw_uid, pw.pw_gid)
    (p.tmp / "vmailbox").write_text("j\u00f6rg@b\u00fccher.test b\u00fccher.test/j\u00f6rg/\n",
                                    encoding="utf-8")
    conf = {
        "virtual_mailbox_domains": "b\u00fccher.test",
        "virtual_mailbox_base": str(base),
        "virtual_mailbox_maps": "texthash:%s" % (p.tmp / "vmailbox"),
        "virtual_uid_maps": "static:%d" % pw.pw_uid,
        "virtual_gid_maps": "static:%d" % pw.pw_gid,
    }
    conf.update(params)
    p.start(**conf)
    return base / "b\u00fccher.test" / "j\u00f6rg"


def maildir_files(path):
    out = []
    for sub in ("new", "cur"):
        d = path / sub
        if d.is_dir():
            out += [(f, f.read_bytes()) for f in sorted(d.iterdir())]
    return out


UTF8_MESSAGE = ("From: J\u00f6rg <j\u00f6rg@b\u00fccher.test>\r\n"
                "To: <J\u00d6RG@B\u00fccher.test>\r\n"
                "Subject: Gr\u00fc\u00dfe aus \u65e5\u672c\r\n"
                "\r\n"
                "K\u00e4se.\r\n"
                "\u00e9t\u00e9.\r\n").encode()


def test_smtputf8_to_virtual_mailbox(postern):
    """An SMTPUTF8 transaction to a UTF-8 virtual address (ASCII in the
    table key folded, the rest as written) lands byte-exact; Received: and
    the queue file say UTF8SMTP."""
    p = postern
    mailbox = virtual_utf8(p)
    c = p.connect()
    ehlo(c)
    c.expect("MAIL FROM:<s\u00e9nder@client.example.test> SMTPUTF8", 250)
    c.expect("RCPT TO:<j\u00f6rg@B\u00fcCHER.test>", 250)
    # a UTF-8 address that is nobody's is still rejected as unknown
    assert c.cmd("RCPT TO:<j\u00f8rg@b\u00fccher.test>").text == \
        "550 5.1.1 <j\u00f8rg@b\u00fccher.test>: Recipient address rejected: " \
        "User unknown in virtual mailbox table"
    c.expect("DATA", 354)
    c.send(UTF8_MESSAGE + b".\r\n")
    qid = queue_id_of(c.reply())
    c.expect("QUIT", 221)
    ((path, msg),) = p._wait("virtual maildir", lambda: maildir_files(mailbox), 1, 10)
    _, headers, received, rest = parse_delivered(msg, mbox=False)
    assert headers == ["Return-Path: <s\u00e9nder@client.example.test>",
                       "X-Original-To: j\u00f6rg@B\u00fcCHER.test",
                       # the ASCII letters of the domain folded, as Postfix's virtual(8)
                       "Delivered-To: j\u00f6rg@b\u00fccher.test"], headers
    assert ("\tby mail.example.test (Postern) with UTF8SMTP id %s\n" % qid) in received, received
    assert "for <j\u00f6rg@B\u00fcCHER.test>" in received
    assert rest == UTF8_MESSAGE.replace(b"\r\n", b"\n")
    p.wait_queue_empty()


def test_smtputf8_queue_file_and_alias(postern):
    """The Lsmtputf8 flag and the UTF8SMTP protocol in the queue file; a
    UTF-8 local part resolved by alias_maps."""
    p = start_smtpd_only(postern)
    c = p.connect()
    ehlo(c)
    c.expect("MAIL FROM:<j\u00f6rg@client.example.test> SMTPUTF8", 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.send(bdat(b"Subject: x\r\n\r\nx\r\n", last=True))
    assert c.reply().code == 250
    c.expect("QUIT", 221)
    (path,) = wait_incoming(p)
    records, _ = read_queue_file(path)
    assert ("L", b"smtputf8") in records and ("P", b"UTF8SMTP") in records, records
    assert ("S", "j\u00f6rg@client.example.test".encode()) in records
    p.smtpd.stop()

    p.write_aliases("postmaster: root\nj\u00fcrgen: mailtest\n")
    p.start_qmgr()
    p.start_smtpd()
    c = p.connect()
    ehlo(c)
    c.expect("MAIL FROM:<%s> SMTPUTF8" % SENDER, 250)
    c.expect("RCPT TO:<j\u00fcrgen@example.test>", 250)
    c.expect("DATA", 354)
    c.send(b"Subject: via alias\r\n\r\nhi\r\n.\r\n")
    queue_id_of(c.reply())
    c.expect("QUIT", 221)
    # the message held in incoming/ above is delivered too
    msgs = p.wait_mbox("mailtest", 2)
    alias_msg = [m for m in msgs if b"Subject: via alias" in m]
    assert alias_msg, msgs
    _, headers, _, rest = parse_delivered(alias_msg[0], mbox=True)
    assert headers[1] == "X-Original-To: j\u00fcrgen@example.test"
    assert rest == b"Subject: via alias\n\nhi\n\n"


def test_smtputf8_needs_declaration(postern):
    p = postern.start()
    c = p.connect()
    ehlo(c)
    must = "553 5.6.7 Must declare SMTPUTF8 to send unicode address"
    assert c.cmd("MAIL FROM:<j\u00f6rg@client.example.test>").text == must
    assert c.cmd("MAIL FROM:<jorg@b\u00fccher.example>").text == must
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    assert c.cmd("RCPT TO:<j\u00f6rg@example.test>").text == must
    c.expect("RSET", 250)
    # not UTF-8 at all: refused whatever was declared
    c.send(b"MAIL FROM:<j\xf6rg@client.example.test> SMTPUTF8\r\n")
    assert c.reply().text == "500 5.5.2 Error: bad UTF-8 syntax"
    c.send(b"MAIL FROM:<j\xc3@client.example.test> SMTPUTF8\r\n")
    assert c.reply().text == "500 5.5.2 Error: bad UTF-8 syntax"
    # SMTPUTF8 is an EHLO extension
    c.expect("HELO client.example.test", 250)
    assert c.cmd("MAIL FROM:<%s> SMTPUTF8" % SENDER).text == \
        "555 5.5.4 Unsupported option: SMTPUTF8"
    c.expect("QUIT", 221)
    p.barrier()
    assert p.mbox("mailtest") == []


def test_strict_smtputf8_no(postern):
    """strict_smtputf8 = no (Postfix's default): UTF-8 without the
    declaration is accepted; invalid UTF-8 still is not."""
    p = postern.start(strict_smtputf8="no", smtputf8_enable="no")
    c = p.connect()
    ehlo(c)
    c.expect("MAIL FROM:<j\u00f6rg@client.example.test>", 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.expect("RSET", 250)
    c.send(b"MAIL FROM:<j\xf6rg@client.example.test>\r\n")
    assert c.reply().text == "501 5.1.7 Bad sender address syntax"
    c.expect("QUIT", 221)


# ---------------------------------------------------------------- BDAT

MESSAGE = (b"From: <sender@client.example.test>\r\n"
           b"Subject: chunked\r\n"
           b"\r\n"
           b"line one\r\n"
           b".\r\n"                         # a "." line is data in BDAT
           b"..two dots stay two\r\n"
           b"8bit: Gr\xc3\xbc\xc3\x9fe\r\n"
           b"last line\r\n")


def test_bdat_chunks_byte_exact_to_maildir(postern):
    """Several chunks pipelined in one write, cut so that a CR and its LF
    are in different chunks: replies in order, the maildir holds the
    message byte for byte (LF line ends, no dot-unstuffing)."""
    p = postern.start(home_mailbox="Maildir/")
    cut1 = MESSAGE.index(b"line one\r\n") + len(b"line one\r")   # CR | LF
    cut2 = MESSAGE.index(b".\r\n") + 1                             # "." | CRLF
    c1, c2, c3 = MESSAGE[:cut1], MESSAGE[cut1:cut2], MESSAGE[cut2:]
    assert c1.endswith(b"\r") and c2.startswith(b"\n")
    c = p.connect()
    ehlo(c)
    c.send(b"MAIL FROM:<%s>\r\nRCPT TO:<mailtest@example.test>\r\n" % SENDER.encode()
           + bdat(c1) + bdat(c2) + bdat(c3, last=True) + b"QUIT\r\n")
    r = c.replies(6)
    assert [x.text for x in r[:4]] == ["250 2.1.0 Ok", "250 2.1.5 Ok",
                                       "250 2.0.0 Ok: %d bytes" % len(c1),
                                       "250 2.0.0 Ok: %d bytes" % len(c2)], r
    assert re.match(r"^250 2\.0\.0 Ok: %d bytes queued as [0-9A-F]+$" % len(MESSAGE),
                    r[4].text), r[4]
    qid = r[4].text.rsplit(" ", 1)[1]
    assert r[5].text == "221 2.0.0 Bye"
    ((path, msg),) = p.wait_maildir("mailtest")
    _, headers, received, rest = parse_delivered(msg, mbox=False)
    assert ("\tby mail.example.test (Postern) with ESMTP id %s\n" % qid) in received
    assert rest == MESSAGE.replace(b"\r\n", b"\n")
    p.smtpd.wait_log(r"disconnect from .* ehlo=1 mail=1 rcpt=1 bdat=3 quit=1 commands=7")


def test_bdat_smuggling_inside_chunk_not_executed(postern):
    """A chunk holding an end of data and a whole second transaction is
    one message's content: nothing is delivered to the smuggled recipient."""
    p = postern.start()
    payload = (b"Subject: innocent\r\n\r\nhello\r\n.\r\n"
               b"MAIL FROM:<evil@attacker.test>\r\n"
               b"RCPT TO:<mailtest2@example.test>\r\n"
               b"DATA\r\n"
               b"Subject: smuggled\r\n\r\nevil\r\n.\r\n")
    c = p.connect()
    ehlo(c)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.send(bdat(payload, last=True))
    r = c.reply()
    assert re.match(r"^250 2\.0\.0 Ok: %d bytes queued as " % len(payload), r.text), r
    c.expect("QUIT", 221)
    assert c.read_to_eof(5) == (b"", True)
    (msg,) = p.wait_mbox("mailtest")
    _, _, _, rest = parse_delivered(msg, mbox=True)
    assert rest == payload.replace(b"\r\n", b"\n") + b"\n"
    barrier = p.barrier()
    assert len(barrier) == 1, "the smuggled transaction delivered something"


def test_bdat_resynchronises_after_failure(postern):
    """Refused chunks are read to their end and dropped: their bytes never
    run as commands, every further chunk of the failed transaction gets
    the same reply, LAST ends it, and the next transaction works."""
    p = postern.start()
    c = p.connect()
    ehlo(c)
    evil = b"MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<mailtest2@example.test>\r\nDATA\r\n"
    c.send(bdat(evil))                                        # no MAIL
    assert c.reply().text == "503 5.5.1 Error: need RCPT command"
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    assert c.cmd("RCPT TO:<nosuchuser@example.test>").code == 550
    c.send(bdat(evil) + bdat(b"QUIT\r\n") + bdat(evil, last=True))   # no valid recipients
    assert lines(c, 3) == ["554 5.5.1 Error: no valid recipients"] * 3
    c.expect("MAIL FROM:<%s>" % SENDER, 250)                 # LAST ended the transaction
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.send(bdat(b"Subject: after\r\n\r\nok\r\n", last=True))
    assert re.match(r"^250 2\.0\.0 Ok: 22 bytes queued as [0-9A-F]+$", c.reply().text)
    c.expect("QUIT", 221)
    (msg,) = p.wait_mbox("mailtest")
    assert msg.endswith(b"\nSubject: after\n\nok\n\n")
    assert len(p.barrier()) == 1


def test_bdat_data_mixing_refused(postern):
    p = postern.start(smtpd_data_restrictions="check_sender_access inline:{ "
                                              "nodata@client.example.test=REJECT }")
    c = p.connect()
    ehlo(c)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.send(bdat(b"Subject: mixed\r\n\r\n"))
    assert c.reply().text == "250 2.0.0 Ok: 18 bytes"
    assert c.cmd("DATA").text == "503 5.5.1 Error: DATA after BDAT"
    assert c.cmd("MAIL FROM:<%s>" % SENDER).text == "503 5.5.1 Error: MAIL after BDAT"
    assert c.cmd("RCPT TO:<mailtest2@example.test>").text == "503 5.5.1 Error: RCPT after BDAT"
    c.expect("RSET", 250)
    # DATA refused by smtpd_data_restrictions, then BDAT in that transaction
    c.expect("MAIL FROM:<nodata@client.example.test>", 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    assert c.cmd("DATA").code == 554
    c.send(bdat(b"RSET\r\n", last=True))
    assert c.reply().text == "503 5.5.1 Error: BDAT after DATA"
    c.expect("MAIL FROM:<%s>" % SENDER, 250)   # LAST ended that transaction
    c.expect("QUIT", 221)
    p.barrier()
    p.wait_queue_empty()
    assert p.mbox("mailtest") == []
    assert p.queue_files()["incoming"] == []


def test_bdat_size_limit(postern):
    """Over message_size_limit: Postfix's 552 before the chunk is read
    (it is still read and dropped), the same for each further chunk, then
    a new transaction; a message that fits raw but not with our Received:
    header gets Postfix's "message file too big" at LAST, as DATA would."""
    p = postern.start(message_size_limit=2000)
    c = p.connect()
    r = ehlo(c)
    assert "250-SIZE 2000" in r.lines
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    big = b"x" * 1498 + b"\r\n"
    c.send(bdat(big) + bdat(big) + bdat(b"MAIL FROM:<evil@attacker.test>\r\n", last=True))
    assert lines(c, 3) == ["250 2.0.0 Ok: 1500 bytes",
                           "552 5.3.4 Chunk exceeds message size limit",
                           "552 5.3.4 Chunk exceeds message size limit"]
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.send(bdat(b"y" * 1998 + b"\r\n", last=True))        # 2000 raw + Received: > 2000
    assert c.reply().text == "552 5.3.4 Error: message file too big"
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.send(bdat(b"Subject: fits\r\n\r\nok\r\n", last=True))
    assert c.reply().code == 250
    c.expect("QUIT", 221)
    (msg,) = p.wait_mbox("mailtest")
    assert msg.endswith(b"\nSubject: fits\n\nok\n\n")


def test_bdat_rset_aborts(postern):
    p = postern.start()
    c = p.connect()
    ehlo(c)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.send(bdat(b"Subject: aborted\r\n\r\n"))
    assert c.reply().code == 250
    c.expect("RSET", 250)
    # the transaction is gone: BDAT has nothing to go into
    c.send(bdat(b"more\r\n", last=True))
    assert c.reply().text == "503 5.5.1 Error: need RCPT command"
    c.expect("QUIT", 221)
    c.read_to_eof(5)
    p.barrier()
    p.wait_queue_empty()
    assert p.mbox("mailtest") == []
    assert p.queue_files()["incoming"] == [], "a queue file (or temp file) was left behind"


def test_bdat_zero_last_and_end_of_data_restrictions(postern):
    p = postern.start(smtpd_end_of_data_restrictions="check_sender_access inline:{ "
                                                     "eod@client.example.test=REJECT }")
    c = p.connect()
    ehlo(c)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.send(bdat(b"Subject: zero\r\n\r\nbody\r\n") + b"BDAT 0 LAST\r\n")
    assert c.reply().text == "250 2.0.0 Ok: 23 bytes"
    assert re.match(r"^250 2\.0\.0 Ok: 23 bytes queued as ", c.reply().text)
    c.expect("MAIL FROM:<eod@client.example.test>", 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.send(bdat(b"Subject: refused\r\n\r\n", last=True))
    assert c.reply().text == ("554 5.7.1 <eod@client.example.test>: Sender address rejected: "
                              "Access denied")
    c.expect("QUIT", 221)
    (msg,) = p.wait_mbox("mailtest")
    assert msg.endswith(b"\nSubject: zero\n\nbody\n\n")
    p.barrier()
    assert len(p.mbox("mailtest")) == 1


@pytest.mark.parametrize("line, reply", [
    (b"BDAT\r\n", b"521 5.5.4 Syntax: BDAT count [LAST]\r\n"),
    (b"BDAT 12x\r\n", b"521 5.5.4 Syntax: BDAT count [LAST]\r\n"),
    (b"BDAT -5\r\n", b"521 5.5.4 Syntax: BDAT count [LAST]\r\n"),
    (b"BDAT 5 FIRST\r\n", b"521 5.5.4 Syntax: BDAT count [LAST]\r\n"),
    (b"BDAT 99999999999999999999\r\n", b"521 5.5.4 Syntax: BDAT count [LAST]\r\n"),
    (b"BDAT 0\r\n", b"551 5.7.1 Null BDAT request\r\n"),
])
def test_bdat_malformed_ends_session(postern, line, reply):
    """Where the chunk ends is unknown: the session ends, and what follows
    is never read as commands."""
    p = postern.start()
    c = p.connect()
    ehlo(c)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.send(line + b"RSET\r\nMAIL FROM:<evil@attacker.test>\r\n")
    data, closed = c.read_to_eof()
    assert data == reply and closed, data


def test_bdat_bare_newlines(postern):
    """A bare LF is a line end in BDAT (it ends nothing there); a bare CR
    is refused as in DATA under smtpd_forbid_bare_newline (the session
    ends, the message is not queued)."""
    p = postern.start()
    c = p.connect()
    ehlo(c)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.send(bdat(b"Subject: lf\n\nbare\nlf\n.\nend\r\n", last=True))
    assert c.reply().code == 250
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.send(bdat(b"Subject: cr\r\n\r\na\rb\r\n", last=True))
    data, closed = c.read_to_eof()
    assert data == b"550 5.5.2 mail.example.test Error: bare <CR> received\r\n" and closed
    (msg,) = p.wait_mbox("mailtest")
    assert msg.endswith(b"\nSubject: lf\n\nbare\nlf\n.\nend\n\n")
    p.barrier()
    assert len(p.mbox("mailtest")) == 1


def test_bdat_timeout_inside_chunk(postern):
    p = postern.start(smtpd_timeout="2s")
    c = p.connect()
    ehlo(c)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<mailtest@example.test>", 250)
    c.send(b"BDAT 100 LAST\r\nonly ten b")
    data, closed = c.read_to_eof(10)
    assert data == b"421 4.4.2 mail.example.test Error: timeout exceeded\r\n" and closed, data
    p.smtpd.wait_log(r"timeout after BDAT from ")
    p.barrier()
    assert p.mbox("mailtest") == []


def test_sendmail_utf8_recipient_autodetected(postern):
    """sendmail never says SMTPUTF8: a local submission with a UTF-8
    address gets the flag (Postfix's smtputf8_autodetect_classes default
    names sendmail) instead of a 553, and is delivered through an alias."""
    from test_sendmail import SENDMAIL, run, unix_listener
    if not SENDMAIL.exists():
        pytest.fail("%s is not built" % SENDMAIL)
    p = postern
    sock_path = p.tmp / "local.sock"
    sock = unix_listener(sock_path)
    try:
        p.configure(local_submission_socket=str(sock_path))
        p.write_aliases("postmaster: root\nj\u00fcrgen: mailtest\n")
        p.start_qmgr()
        p.start_smtpd(listeners=[("local", sock)])
        r = run(p, ["-f", "root", "j\u00fcrgen@example.test"],
                data="Subject: local utf8\n\nhallo\n")
        assert r.returncode == 0, r.stderr
        (msg,) = p.wait_mbox("mailtest")
        assert "\nX-Original-To: j\u00fcrgen@example.test\n".encode() in msg, msg
        assert b"\nSubject: local utf8\n" in msg and msg.endswith(b"\n\nhallo\n\n"), msg
    finally:
        sock.close()
