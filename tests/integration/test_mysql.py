"""mysql: tables against a real MariaDB (mysql_table(5)): virtual users and
aliases from the example schema in conf.d/, unknown users rejected at RCPT,
an SQL-injection attempt that must not change the query, a lookup while
the server is down (451 4.3.0, nothing accepted) and the reconnect after it
comes back, and check_recipient_access mysql:.

The fixture (mariadb_server.py) starts a private mariadbd (own datadir,
socket and port on 127.0.0.1) once for this module; it never uses a
system instance.
"""

import os
import pwd

import pytest

from mariadb_server import mariadb, write_cf  # noqa: F401 (mariadb is a fixture)

SENDER = "sender@client.example.test"


def mysql_setup(p, db, **params):
    pw = pwd.getpwnam("mailtest")
    base = p.tmp / "vmail"
    base.mkdir(mode=0o755)
    os.chown(base, pw.pw_uid, pw.pw_gid)
    conf = {
        "virtual_mailbox_domains": "virt.test",
        "virtual_mailbox_base": str(base),
        "virtual_mailbox_maps": write_cf(
            p, db, "mailboxes.cf",
            "SELECT maildir FROM virtual_mailboxes WHERE email = '%s' AND active = 1"),
        "virtual_alias_maps": write_cf(
            p, db, "aliases.cf", "SELECT destination FROM virtual_aliases WHERE source = '%s'",
            "expansion_limit = 10\n"),
        "virtual_uid_maps": "static:%d" % pw.pw_uid,
        "virtual_gid_maps": "static:%d" % pw.pw_gid,
    }
    conf.update(params)
    p.start(**conf)
    return base


def maildir_files(base, path):
    d = base / path / "new"
    return sorted(d.iterdir()) if d.is_dir() else []


def rcpt(p, addr):
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    r = c.cmd("RCPT TO:<%s>" % addr)
    c.cmd("QUIT")
    c.close()
    return r


def test_mysql_virtual_users_and_aliases(postern, mariadb):
    p = postern
    base = mysql_setup(p, mariadb)
    p.send("alice@virt.test", subject="direct")
    p.send("info@virt.test", subject="via alias")
    (f1, f2) = p._wait("maildir", lambda: maildir_files(base, "virt.test/alice"), 2, 10)
    texts = f1.read_bytes() + f2.read_bytes()
    assert b"Subject: direct" in texts and b"Subject: via alias" in texts
    assert b"X-Original-To: info@virt.test\n" in texts
    p.wait_mbox("mailtest")
    p.wait_queue_empty()


@pytest.mark.parametrize("addr", ["nobody@virt.test", "gone@virt.test",
                                  "\"x' OR '1'='1\"@virt.test", "x'or/**/1#@virt.test"])
def test_mysql_unknown_and_injection_rejected(postern, mariadb, addr):
    p = postern
    base = mysql_setup(p, mariadb)
    r = rcpt(p, addr)
    assert r.lines[-1] == ("550 5.1.1 <%s>: Recipient address rejected: "
                           "User unknown in virtual mailbox table" % addr), r
    assert not (base / "virt.test").exists()
    assert not any(p.queue_files().values())


def test_mysql_down_is_tempfail_then_reconnects(postern, mariadb):
    p = postern
    base = mysql_setup(p, mariadb)
    assert rcpt(p, "alice@virt.test").code == 250      # a live connection exists
    mariadb.stop()
    try:
        c = p.connect()
        c.expect("EHLO client.example.test", 250)
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        r = c.cmd("RCPT TO:<alice@virt.test>")
        assert r.lines[-1] == "451 4.3.0 <alice@virt.test>: Temporary lookup failure", r
        r = c.cmd("DATA")
        assert r.code in (503, 554), r
        c.cmd("QUIT")
        c.close()
        assert not any(p.queue_files().values()), "nothing accepted"
    finally:
        mariadb.start()
    p.send("alice@virt.test", subject="after restart")
    p._wait("maildir", lambda: maildir_files(base, "virt.test/alice"), 1, 10)
    p.wait_queue_empty()
    assert "Temporary lookup failure" in p.smtpd.log() or "mysql" in p.smtpd.log()


def test_mysql_check_recipient_access(postern, mariadb):
    p = postern
    access = write_cf(p, mariadb, "access.cf",
                      "SELECT action FROM recipient_access WHERE address = '%s'")
    mysql_setup(p, mariadb, smtpd_recipient_restrictions=
                "check_recipient_access %s, permit_mynetworks, reject_unauth_destination" % access)
    r = rcpt(p, "blocked@example.test")
    assert r.lines[-1] == "554 5.7.1 <blocked@example.test>: Recipient address rejected: no mail here", r
    assert rcpt(p, "mailtest@example.test").code == 250


def test_mysql_lookups_run_in_parallel(postern, mariadb):
    """Each lookup thread has a connection of its own: four RCPTs whose
    query takes 0.5 s each are answered in about 0.5 s, not 2 s."""
    import threading
    import time
    p = postern
    slow = write_cf(p, mariadb, "slow.cf", "SELECT IF(SLEEP(0.5) = 0, 'DUNNO', 'DUNNO') "
                                           "FROM DUAL WHERE '%s' <> ''")
    p.start(smtpd_lookup_threads=4, smtpd_recipient_restrictions=
            "check_recipient_access %s, permit_mynetworks, reject_unauth_destination" % slow)
    # warm up: every lookup thread opens its connection (and the dead first host times out)
    codes = []

    def one():
        codes.append(rcpt(p, "mailtest@example.test").code)

    for _ in range(2):
        threads = [threading.Thread(target=one) for _ in range(4)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        elapsed = time.monotonic() - t0
    assert codes == [250] * 8, codes
    assert elapsed < 1.4, "4 concurrent lookups took %.2f s" % elapsed
