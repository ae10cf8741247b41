"""Domain and network match lists end to end, so that a Postfix main.cf
whose lists live in tables works unchanged: virtual domains known only
from a table (and from Postfix's defaults $virtual_mailbox_maps /
$virtual_alias_maps), relay_domains from a hash: table, mydestination
with a /file/name, mynetworks from cidr: tables and files, a domain list
whose table cannot answer (451 4.3.0 in smtpd, a deferral in qmgr), local
aliases that lead into virtual and remote domains, and
virtual_mailbox_domains from MySQL.

Unless a test says otherwise the client (127.0.0.1) is outside mynetworks,
so only our own destinations are accepted."""

import os
import pwd
import re
import subprocess
import time

import pytest

from conftest import BUILD, parse_delivered
from mariadb_server import mariadb, write_cf  # noqa: F401 (mariadb is a fixture)
from test_delivery import SENDER, TRICKY, lf, send_tricky

MAILCTL = BUILD / "src" / "mailctl" / "mailctl"
UNTRUSTED = "192.0.2.0/24"      # mynetworks without 127.0.0.1: no relaying for the tests' client
# Remote mail is tried (the tests' DNS answers nothing: a deferral).
REMOTE_DEFERRED = "status=deferred (Host or domain name not found. Name service error for name=relay.test type=MX"


def rcpt_replies(p, *addrs):
    """The final reply line to RCPT TO for each address, in one session."""
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    out = [c.cmd("RCPT TO:<%s>" % a).text for a in addrs]
    c.cmd("QUIT")
    c.close()
    return out


def accepted(addr):
    return "250 2.1.5 Ok"


def relay_denied(addr):
    return "554 5.7.1 <%s>: Relay access denied" % addr


def tempfail(addr):
    return "451 4.3.0 <%s>: Temporary lookup failure" % addr


def vbase(p):
    """A virtual_mailbox_base owned by mailtest (the virtual uid/gid)."""
    pw = pwd.getpwnam("mailtest")
    base = p.tmp / "vmail"
    base.mkdir(mode=0o755)
    os.chown(base, pw.pw_uid, pw.pw_gid)
    return base, {
        "virtual_mailbox_base": str(base),
        "virtual_uid_maps": "static:%d" % pw.pw_uid,
        "virtual_gid_maps": "static:%d" % pw.pw_gid,
    }


def vmaildir(base, path):
    out = []
    for sub in ("new", "cur"):
        d = base / path / sub
        if d.is_dir():
            out += [(f, f.read_bytes()) for f in sorted(d.iterdir())]
    return out


def wait_vmaildir(p, base, path, n=1):
    return p._wait("virtual maildir %s" % path, lambda: vmaildir(base, path), n, 10)


def table(p, name, text):
    path = p.tmp / name
    path.write_text(text)
    os.chmod(path, 0o644)
    return path


def make_unreadable(path):
    """Puts a directory where the table's file was: reading it fails even
    for root (chmod would not stop root)."""
    path.unlink()
    path.mkdir()


def make_readable(path, text):
    path.rmdir()
    path.write_text(text)
    os.chmod(path, 0o644)


def test_virtual_domain_known_only_from_table(postern):
    p = postern
    base, vconf = vbase(p)
    domains = table(p, "vdomains", "# virtual mailbox domains\nVirt.Test   anything\n")
    mailboxes = table(p, "vmailbox", "alice@virt.test  virt.test/alice/\n")
    p.start(mynetworks=UNTRUSTED, virtual_mailbox_domains="texthash:%s" % domains,
            virtual_mailbox_maps="texthash:%s" % mailboxes, **vconf)
    assert rcpt_replies(p, "nobody@virt.test", "x@sub.virt.test", "alice@VIRT.test") == [
        "550 5.1.1 <nobody@virt.test>: Recipient address rejected: "
        "User unknown in virtual mailbox table",
        relay_denied("x@sub.virt.test"),        # virtual domains match whole names only
        accepted("alice@VIRT.test"),
    ]
    send_tricky(p, to="alice@virt.test")
    ((path, msg),) = wait_vmaildir(p, base, "virt.test/alice")
    assert path.parent == base / "virt.test" / "alice" / "new"
    _, headers, _, rest = parse_delivered(msg, mbox=False)
    assert headers == ["Return-Path: <%s>" % SENDER, "X-Original-To: alice@virt.test",
                       "Delivered-To: alice@virt.test"]
    assert rest == lf(TRICKY)
    p.wait_queue_empty()


def test_virtual_domains_from_postfix_defaults(postern):
    """virtual_mailbox_domains = $virtual_mailbox_maps and
    virtual_alias_domains = $virtual_alias_maps (Postfix's defaults): a
    bare "domain anything" line in a map makes the domain virtual."""
    p = postern
    base, vconf = vbase(p)
    mailboxes = table(p, "vmailbox", "mbox.test  anything\nbob@mbox.test  mbox.test/bob/\n")
    aliases = table(p, "valias", "alias.test  anything\ninfo@alias.test  bob@mbox.test\n")
    p.start(mynetworks=UNTRUSTED, virtual_mailbox_maps="texthash:%s" % mailboxes,
            virtual_alias_maps="texthash:%s" % aliases, **vconf)
    assert rcpt_replies(p, "nobody@alias.test", "nobody@mbox.test", "x@other.test") == [
        "550 5.1.1 <nobody@alias.test>: Recipient address rejected: "
        "User unknown in virtual alias table",
        "550 5.1.1 <nobody@mbox.test>: Recipient address rejected: "
        "User unknown in virtual mailbox table",
        relay_denied("x@other.test"),
    ]
    p.send("info@alias.test", subject="via alias domain", body="hello\r\n")
    p.send("bob@mbox.test", subject="direct", body="hello\r\n")
    msgs = b"".join(m for _, m in wait_vmaildir(p, base, "mbox.test/bob", 2))
    assert b"X-Original-To: info@alias.test\nDelivered-To: bob@mbox.test\n" in msgs
    assert b"X-Original-To: bob@mbox.test\nDelivered-To: bob@mbox.test\n" in msgs
    p.wait_queue_empty()


def test_unlisted_domain_relay_access_denied(postern):
    p = postern
    local = table(p, "local-domains", "example.test\n")
    relay = table(p, "relay", "relay.test OK\n")
    p.start(mynetworks=UNTRUSTED, mydestination="$myhostname, %s" % local,
            relay_domains="texthash:%s" % relay, virtual_alias_domains="alias.test",
            virtual_mailbox_domains="mbox.test")
    assert rcpt_replies(p, "x@y.test", "x@test", "x@relay.test.evil") == [
        relay_denied("x@y.test"), relay_denied("x@test"), relay_denied("x@relay.test.evil")]
    assert not any(p.committed_queue_files().values())


@pytest.mark.parametrize("parent_style", [True, False])
def test_relay_domains_hash_table(postern, parent_style):
    p = postern
    src = table(p, "relay_domains", "relay.test   OK\n.dot.test   OK\n")
    r = subprocess.run([str(MAILCTL), "table", "rebuild", "hash:%s" % src], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    params = dict(mynetworks=UNTRUSTED, relay_domains="hash:%s, Example.ORG" % src)
    if not parent_style:
        params["parent_domain_matches_subdomains"] = "smtpd_access_maps"
    p.start(**params)
    sub = accepted if parent_style else relay_denied
    assert rcpt_replies(p, "user@relay.test", "user@mx.relay.test", "user@example.org",
                        "user@www.example.org", "user@a.dot.test", "user@other.test") == [
        accepted("user@relay.test"),
        sub("user@mx.relay.test"),            # "relay.test" covers subdomains in parent style
        accepted("user@example.org"),
        sub("user@www.example.org"),
        relay_denied("user@a.dot.test") if parent_style else accepted("user@a.dot.test"),
        relay_denied("user@other.test"),
    ]
    # accepted relay mail waits for the SMTP client
    p.send("user@relay.test", subject="relayed")
    p.qmgr.wait_log(r"to=<user@relay\.test>, relay=none, .*" + re.escape(REMOTE_DEFERRED))


def test_mydestination_with_file(postern):
    p = postern
    local = table(p, "local-domains", "# local domains\nlocal2.test, local3.test   # more\n")
    p.start(mynetworks=UNTRUSTED, mydestination="$myhostname, localhost, %s" % local)
    assert rcpt_replies(p, "nosuchuser@local3.test", "mailtest@sub.local2.test", "x@more") == [
        "550 5.1.1 <nosuchuser@local3.test>: Recipient address rejected: "
        "User unknown in local recipient table",
        relay_denied("mailtest@sub.local2.test"),   # mydestination: ".local2.test" would be needed
        relay_denied("x@more"),                      # a comment is no domain
    ]
    p.send("mailtest@local2.test", subject="from the file", body="local\r\n")
    (msg,) = p.wait_mbox("mailtest")
    _, headers, _, rest = parse_delivered(msg, mbox=True)
    assert headers[1:] == ["X-Original-To: mailtest@local2.test",
                           "Delivered-To: mailtest@local2.test"]
    assert rest == b"From: <sender@client.example.test>\nTo: <mailtest@local2.test>\n" \
                   b"Subject: from the file\n\nlocal\n\n"


def test_mydestination_missing_file(postern):
    """A /file/name that cannot be read: every recipient that needs the list
    is a temporary failure, and the log names the parameter and the file."""
    p = postern
    missing = p.tmp / "no-such-file"
    p.start(mynetworks=UNTRUSTED, mydestination="$myhostname, %s" % missing)
    assert rcpt_replies(p, "mailtest@example.test", "x@remote.test") == [
        tempfail("mailtest@example.test"), tempfail("x@remote.test")]
    assert ("warning: mydestination: open file %s: No such file or directory" % missing) \
        in p.smtpd.log()
    assert not any(p.committed_queue_files().values())


@pytest.mark.parametrize("mynetworks,cidr,trusted", [
    ("10.9.9.0/24, cidr:{cidr}", "127.0.0.1  OK\n", True),
    ("cidr:{cidr}", "10.0.0.0/8  OK\n", False),
    ("cidr:{cidr}", "!127.0.0.0/8  OK\n", False),             # cidr's own negation
    ("!cidr:{cidr}, 127.0.0.0/8", "127.0.0.1  OK\n", False),   # the list's negation
    ("{file}", "", True),
    ("!{file}, 0.0.0.0/0", "", False),
])
def test_mynetworks_tables_decide_relay(postern, mynetworks, cidr, trusted):
    p = postern
    cidr_path = table(p, "trusted.cidr", cidr)
    file_path = table(p, "networks", "# trusted\n10.0.0.0/8\n127.0.0.1 [::1]/128\n")
    p.start(mynetworks=mynetworks.format(cidr=cidr_path, file=file_path))
    want = accepted if trusted else relay_denied
    assert rcpt_replies(p, "x@far.test") == [want("x@far.test")]


def test_mynetworks_table_unreadable(postern):
    """A mynetworks table that cannot answer: the client is not trusted,
    permit_mynetworks answers 451 4.3.0 (Postfix), a warning says why."""
    p = postern
    cidr = table(p, "trusted.cidr", "127.0.0.1  OK\n")
    p.start(mynetworks="cidr:%s" % cidr)
    assert rcpt_replies(p, "x@far.test") == [accepted("x@far.test")]
    make_unreadable(cidr)
    time.sleep(1.2)      # file tables look again after a second
    assert rcpt_replies(p, "x@far.test", "mailtest@example.test") == [
        tempfail("x@far.test"), tempfail("mailtest@example.test")]
    p.smtpd.wait_log(r"warning: mynetworks: table cidr:%s: .* client 127\.0\.0\.1 is not trusted"
                     % cidr)
    make_readable(cidr, "127.0.0.1  OK\n")
    time.sleep(1.2)
    assert rcpt_replies(p, "x@far.test") == [accepted("x@far.test")]


def test_domain_list_table_unreadable(postern):
    """smtpd: exactly 451 4.3.0 and nothing accepted while the domain
    list's table cannot answer; qmgr: the recipient is deferred (never
    bounced, never delivered to another class) until it can."""
    p = postern
    base, vconf = vbase(p)
    domains = table(p, "vdomains", "virt.test  anything\n")
    mailboxes = table(p, "vmailbox", "alice@virt.test  virt.test/alice/\n")
    p.configure(mynetworks=UNTRUSTED, virtual_mailbox_domains="texthash:%s" % domains,
                virtual_mailbox_maps="texthash:%s" % mailboxes, **vconf)
    p.start_smtpd()
    p.send("alice@virt.test", subject="queued while the table was fine")
    make_unreadable(domains)
    time.sleep(1.2)
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    r = c.cmd("RCPT TO:<alice@virt.test>")
    assert r.lines == [tempfail("alice@virt.test")]
    r = c.cmd("DATA")
    assert r.code in (503, 554), r
    c.cmd("QUIT")
    c.close()
    p.smtpd.wait_log(r"warning: virtual_mailbox_domains: table texthash:%s: " % domains)
    assert len(p.committed_queue_files()["incoming"]) == 1, "only the first message"

    p.start_qmgr()
    p.qmgr.wait_log(r"to=<alice@virt\.test>, relay=none, .*dsn=4\.3\.0, "
                    r"status=deferred \(address resolver failure\)")
    p.qmgr.wait_log(r"warning: [0-9A-F]+: virtual_mailbox_domains: table texthash:")
    assert not (base / "virt.test").exists()
    assert "status=bounced" not in p.qmgr.log()
    make_readable(domains, "virt.test  anything\n")
    ((_, msg),) = wait_vmaildir(p, base, "virt.test/alice")
    assert b"Subject: queued while the table was fine" in msg
    p.wait_queue_empty()


def test_local_alias_into_virtual_and_remote_domains(postern):
    """An alias result in a virtual domain is rewritten by virtual_alias_maps
    and delivered by the virtual class; a remote one waits like remote mail."""
    p = postern
    base, vconf = vbase(p)
    p.write_aliases("postmaster: root\nteam: team@virt.test\nfar: someone@far.test\n")
    valias = table(p, "valias", "team@virt.test  carol@virt.test\n")
    mailboxes = table(p, "vmailbox", "carol@virt.test  virt.test/carol/\n")
    p.start(virtual_mailbox_domains="virt.test", virtual_alias_domains="",
            virtual_alias_maps="texthash:%s" % valias,
            virtual_mailbox_maps="texthash:%s" % mailboxes, **vconf)
    p.send("team@example.test", subject="to the team", body="hi\r\n")
    ((_, msg),) = wait_vmaildir(p, base, "virt.test/carol")
    _, headers, _, rest = parse_delivered(msg, mbox=False)
    assert headers == ["Return-Path: <%s>" % SENDER, "X-Original-To: team@example.test",
                       "Delivered-To: carol@virt.test"]
    assert rest.endswith(b"\n\nhi\n")
    p.qmgr.wait_log(r"to=<carol@virt\.test>, orig_to=<team@example\.test>, relay=virtual, .*"
                    r"status=sent \(delivered to maildir\)")

    p.send("far@example.test", subject="to someone far", body="hi\r\n")
    p.qmgr.wait_log(r"to=<someone@far\.test>, orig_to=<far@example\.test>, relay=none, .*"
                    r"dsn=4\.4\.1, status=deferred \(Host or domain name not found\. Name "
                    r"service error for name=far\.test type=MX")
    assert not p.mbox("mailtest") and not p.mbox("root")
    assert any(p.committed_queue_files()[d] for d in ("incoming", "deferred"))


def test_mysql_virtual_mailbox_domains(postern, mariadb):
    """virtual_mailbox_domains = mysql:... (the conf.d example query) decides
    the class; with the server down the same recipient is 451 4.3.0."""
    p = postern
    base, vconf = vbase(p)
    domains = write_cf(p, mariadb, "domains.cf",
                       "SELECT name FROM virtual_domains WHERE name = '%s'")
    mailboxes = write_cf(p, mariadb, "mailboxes.cf",
                         "SELECT maildir FROM virtual_mailboxes WHERE email = '%s' AND active = 1")
    p.start(mynetworks=UNTRUSTED, virtual_mailbox_domains=domains,
            virtual_mailbox_maps=mailboxes, **vconf)
    assert rcpt_replies(p, "x@other.test", "nobody@virt.test") == [
        relay_denied("x@other.test"),
        "550 5.1.1 <nobody@virt.test>: Recipient address rejected: "
        "User unknown in virtual mailbox table"]
    p.send("alice@virt.test", subject="class from mysql", body="hello\r\n")
    wait_vmaildir(p, base, "virt.test/alice")
    p.wait_queue_empty()
    mariadb.stop()
    try:
        assert rcpt_replies(p, "alice@virt.test") == [tempfail("alice@virt.test")]
        p.smtpd.wait_log(r"warning: virtual_mailbox_domains: table mysql:")
        assert not any(p.committed_queue_files().values())
    finally:
        mariadb.start()
    assert rcpt_replies(p, "alice@virt.test") == [accepted("alice@virt.test")]


def test_relay_recipient_maps(postern):
    """relay_recipient_maps: unknown recipients in relay_domains are
    rejected at RCPT with Postfix's text; empty accepts any."""
    p = postern
    table = p.tmp / "relay_recipients"
    table.write_text("known@relay.test x\n@catchall.test x\n")
    p.start(mynetworks="10.0.0.0/8", relay_domains="relay.test, catchall.test",
            relay_recipient_maps="texthash:%s" % table)
    c = p.connect()
    c.expect("ehlo client.example.test", 250)
    c.expect("mail from:<a@remote.test>", 250)
    c.expect("rcpt to:<known@relay.test>", 250)
    c.expect("rcpt to:<anyone@catchall.test>", 250)
    assert c.cmd("rcpt to:<unknown@relay.test>").text == \
        "550 5.1.1 <unknown@relay.test>: Recipient address rejected: " \
        "User unknown in relay recipient table"
    assert c.cmd("rcpt to:<x@elsewhere.test>").text == \
        "554 5.7.1 <x@elsewhere.test>: Relay access denied"
    c.expect("quit", 221)
