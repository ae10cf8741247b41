"""Virtual domains end to end (virtual(5), virtual(8)): virtual mailboxes
(maildir and mbox) owned by virtual_uid_maps / virtual_gid_maps,
virtual_alias_maps fan-out and catch-all, unknown virtual users rejected at
RCPT, a uid below virtual_minimum_uid deferred with a log line."""

import os
import pwd

import pytest

from conftest import parse_delivered

from test_delivery import SENDER, TRICKY, lf, mbox_quote, send_tricky


def virtual_setup(p, mailbox_maps, alias_maps="", **params):
    """Writes the tables, makes the base (owned by mailtest) and starts."""
    pw = pwd.getpwnam("mailtest")
    base = p.tmp / "vmail"
    base.mkdir(mode=0o755)
    os.chown(base, pw.pw_uid, pw.pw_gid)
    (p.tmp / "vmailbox").write_text(mailbox_maps)
    (p.tmp / "valias").write_text(alias_maps)
    conf = {
        "virtual_mailbox_domains": "virt.test",
        "virtual_alias_domains": "alias.test",
        "virtual_mailbox_base": str(base),
        "virtual_mailbox_maps": "texthash:%s" % (p.tmp / "vmailbox"),
        "virtual_alias_maps": "texthash:%s" % (p.tmp / "valias"),
        "virtual_uid_maps": "static:%d" % pw.pw_uid,
        "virtual_gid_maps": "static:%d" % pw.pw_gid,
    }
    conf.update(params)
    p.start(**conf)
    return base, pw


def vmaildir(base, path):
    out = []
    for sub in ("new", "cur"):
        d = base / path / sub
        if d.is_dir():
            out += [(f, f.read_bytes()) for f in sorted(d.iterdir())]
    return out


def test_virtual_maildir_byte_exact(postern):
    p = postern
    base, pw = virtual_setup(p, "alice@virt.test virt.test/alice/\n")
    send_tricky(p, to="alice@virt.test")
    ((path, msg),) = p._wait("virtual maildir", lambda: vmaildir(base, "virt.test/alice"), 1, 10)
    assert path.parent == base / "virt.test" / "alice" / "new"
    _, headers, _, rest = parse_delivered(msg, mbox=False)
    assert headers == ["Return-Path: <%s>" % SENDER,
                       "X-Original-To: alice@virt.test",
                       "Delivered-To: alice@virt.test"]
    assert rest == lf(TRICKY)
    for f in (path, base / "virt.test", base / "virt.test" / "alice",
              base / "virt.test" / "alice" / "tmp"):
        st = os.stat(f)
        assert (st.st_uid, st.st_gid) == (pw.pw_uid, pw.pw_gid), f
    p.wait_queue_empty()
    assert "relay=virtual" in p.qmgr.log() and "status=sent (delivered to maildir)" in p.qmgr.log()


def test_virtual_mbox(postern):
    p = postern
    base, pw = virtual_setup(p, "bob@virt.test virt.test/bob\n")
    send_tricky(p, to="bob@virt.test")
    mbox = base / "virt.test" / "bob"
    p._wait("virtual mbox", lambda: [1] if mbox.exists() and mbox.stat().st_size > 0 else [], 1, 10)
    p.wait_queue_empty()
    from_line, headers, _, rest = parse_delivered(mbox.read_bytes(), mbox=True)
    assert from_line.startswith("From %s  " % SENDER)
    assert headers[2] == "Delivered-To: bob@virt.test"
    assert rest == mbox_quote(lf(TRICKY)) + b"\n"
    assert os.stat(mbox).st_uid == pw.pw_uid


def test_virtual_alias_fans_out(postern):
    p = postern
    base, _ = virtual_setup(p, "alice@virt.test virt.test/alice/\n",
                            "info@virt.test alice@virt.test, mailtest@example.test\n")
    p.send("info@virt.test", subject="fan-out", body="to two\r\n")
    p.wait_mbox("mailtest")
    ((_, msg),) = p._wait("virtual maildir", lambda: vmaildir(base, "virt.test/alice"), 1, 10)
    assert b"X-Original-To: info@virt.test\n" in msg
    assert b"Delivered-To: alice@virt.test\n" in msg
    (m,) = p.mbox("mailtest")
    assert b"X-Original-To: info@virt.test\n" in m and b"Delivered-To: mailtest@example.test\n" in m
    p.wait_queue_empty()


def test_virtual_alias_catch_all_and_one_copy(postern):
    p = postern
    virtual_setup(p, "", "@alias.test mailtest@example.test\n")
    p.send(["anyone@alias.test", "other@alias.test"], subject="catch-all")
    p.wait_mbox("mailtest")
    p.barrier()
    assert len(p.mbox("mailtest")) == 1, "one copy per mailbox and message"
    p.wait_queue_empty()


@pytest.mark.parametrize("rcpt,table", [
    ("nobody@virt.test", "virtual mailbox table"),
    ("nobody@alias.test", "virtual alias table"),
])
def test_virtual_unknown_user_rejected_at_rcpt(postern, rcpt, table):
    p = postern
    virtual_setup(p, "alice@virt.test virt.test/alice/\n", "info@alias.test alice@virt.test\n")
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    r = c.cmd("RCPT TO:<%s>" % rcpt)
    assert r.code == 550, r
    assert r.lines[-1] == ("550 5.1.1 <%s>: Recipient address rejected: User unknown in %s"
                           % (rcpt, table))
    c.expect("RCPT TO:<info@alias.test>", 250)
    c.expect("RCPT TO:<alice@virt.test>", 250)
    c.cmd("QUIT")
    c.close()


def test_virtual_uid_below_minimum_deferred(postern):
    p = postern
    base, _ = virtual_setup(p, "alice@virt.test virt.test/alice/\n",
                            virtual_uid_maps="static:5", virtual_minimum_uid="100")
    p.send("alice@virt.test", subject="low uid")
    p.qmgr.wait_log(r"uid 5 is below virtual_minimum_uid 100")
    p.qmgr.wait_log(r"to=<alice@virt.test>.*status=deferred")
    assert not (base / "virt.test").exists()
    assert p.queue_files(), "message kept in the queue"


def test_regexp_virtual_alias_maps_see_whole_addresses(postern):
    """A regexp: virtual_alias_maps is asked about user@domain only, never
    the partial keys (user, @domain) that texthash: tables get (Postfix's
    mail_addr_find with DICT_FLAG_FIXED)."""
    p = postern
    rx = p.tmp / "valias.rx"
    rx.write_text("/^mailtest$/ mailtest2@example.test\n"
                  "/^@example\\.test$/ mailtest2@example.test\n"
                  "/^(.*)@old\\.test$/ ${1}@example.test\n")
    p.start(virtual_alias_maps="regexp:%s" % rx, virtual_alias_domains="old.test")
    p.send("mailtest@example.test", subject="to mailtest")
    p.send("mailtest@old.test", subject="via old.test")
    msgs = p.wait_mbox("mailtest", 2)
    assert [b"Subject: to mailtest" in m for m in msgs].count(True) == 1
    assert [b"Subject: via old.test" in m for m in msgs].count(True) == 1
    p.barrier("mailtest2")
    assert len(p.mbox("mailtest2")) == 1   # only the barrier
