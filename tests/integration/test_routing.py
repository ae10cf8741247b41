"""transport_maps and the class transports end to end (issue 7, first
step; docs/smtp-client.md): discard:, error: and retry: with their texts
and DSN codes, local: and virtual: for domains of another class, a
next-hop-only entry, the "*" wildcard, an unusable entry (a deferral with
the table named, never a guess), and a table that cannot be opened.
Remote routes reach the SMTP client (test_smtp_client.py delivers through
it); here their hops lead nowhere and the mail is deferred."""

import os
import pwd

from conftest import free_port


def transport_table(p, text):
    path = p.tmp / "transport"
    path.write_text(text)
    os.chmod(path, 0o644)
    return "texthash:%s" % path


def test_transport_maps_routes(postern):
    p = postern
    pw = pwd.getpwnam("mailtest")
    base = p.tmp / "vmail"
    base.mkdir(mode=0o755)
    os.chown(base, pw.pw_uid, pw.pw_gid)
    dead = free_port()
    table = transport_table(p, "\n".join([
        "discarded.test discard:dropped by policy",
        "closed.test error:5.7.1 we do not deliver there",
        "plain-error.test error:",
        "later.test retry:4.3.2 come back later",
        "routed-local.test local:",
        "routed-virtual.test virtual:",
        "relayed.test smtp:[127.0.0.1]:%d" % dead,
        "hop-only.test :[smarthost.test]:587",
        "odd.test carrier-pigeon:coop",
        "broken.test smtp:[unclosed",
        "",
    ]))
    p.start(transport_maps=table, virtual_mailbox_base=str(base),
            virtual_mailbox_maps="inline:{ v@routed-virtual.test = routed/v/ }",
            virtual_uid_maps="static:%d" % pw.pw_uid, virtual_gid_maps="static:%d" % pw.pw_gid,
            relayhost="[relayhost.test]")

    p.send("x@discarded.test", subject="to be discarded")
    p.qmgr.wait_log(r"to=<x@discarded\.test>, relay=none, .*dsn=2\.0\.0, status=sent "
                    r"\(dropped by policy\)")
    p.send("x@closed.test", subject="refused")
    p.qmgr.wait_log(r"to=<x@closed\.test>, relay=none, .*dsn=5\.7\.1, status=bounced "
                    r"\(we do not deliver there\)")
    p.send("x@plain-error.test", subject="refused without text")
    p.qmgr.wait_log(r"to=<x@plain-error\.test>, relay=none, .*dsn=5\.0\.0, status=bounced "
                    r"\(mail for this destination is refused\)")
    p.send("x@later.test", subject="postponed")
    p.qmgr.wait_log(r"to=<x@later\.test>, relay=none, .*dsn=4\.3\.2, status=deferred "
                    r"\(come back later\)")

    # local: for a domain that is not in mydestination: the local part's mailbox
    p.send("mailtest@routed-local.test", subject="routed to local", body="via transport_maps\r\n")
    msgs = p.wait_mbox("mailtest", 1)
    assert b"Subject: routed to local" in msgs[0] and b"via transport_maps" in msgs[0]
    # virtual: for a domain that is not in virtual_mailbox_domains
    p.send("v@routed-virtual.test", subject="routed to virtual")
    p.qmgr.wait_log(r"to=<v@routed-virtual\.test>, relay=virtual, .*status=sent")
    got = list((base / "routed" / "v" / "new").iterdir())
    assert len(got) == 1 and b"Subject: routed to virtual" in got[0].read_bytes()

    # remote routes go to the SMTP client, which tries the hop they name
    # (nothing listens there; the tests' DNS answers nothing)
    p.send("x@relayed.test")
    p.qmgr.wait_log(r"to=<x@relayed\.test>, relay=none, .*dsn=4\.4\.1, status=deferred "
                    r"\(connect to 127\.0\.0\.1\[127\.0\.0\.1\]:%d: Connection refused\)"
                    % dead)
    p.send("x@hop-only.test")
    p.qmgr.wait_log(r"to=<x@hop-only\.test>, .*status=deferred \(Host or domain name not "
                    r"found\. Name service error for name=smarthost\.test type=A")
    # no entry: relayhost. The bounces above went there too (their sender is
    # remote), so the destination may already be throttled as dead.
    p.send("x@elsewhere.test")
    p.qmgr.wait_log(r"to=<x@elsewhere\.test>, .*status=deferred \((delivery temporarily "
                    r"suspended: )?Host or domain name not found\. Name service error for "
                    r"name=relayhost\.test type=A")

    # unusable entries defer with the reason logged
    p.send("x@odd.test")
    p.qmgr.wait_log(r"warning: .*transport_maps: unknown transport \"carrier-pigeon\"")
    p.qmgr.wait_log(r"to=<x@odd\.test>, relay=none, .*dsn=4\.3\.5, status=deferred")
    p.send("x@broken.test")
    p.qmgr.wait_log(r"to=<x@broken\.test>, relay=none, .*dsn=4\.3\.5, status=deferred "
                    r"\(x@broken\.test: bad next-hop")
    # local mail still goes where it always did (the table has no entry for it)
    p.send("mailtest2@example.test", subject="plain local")
    assert b"Subject: plain local" in p.wait_mbox("mailtest2", 1)[0]


def test_transport_maps_wildcard_and_local_override(postern):
    p = postern
    table = transport_table(p, "example.test local:\n* error:5.7.1 only local mail here\n")
    p.start(transport_maps=table)
    p.send("mailtest@example.test", subject="local still")
    assert b"Subject: local still" in p.wait_mbox("mailtest", 1)[0]
    p.send("x@anywhere.test")
    p.qmgr.wait_log(r"to=<x@anywhere\.test>, relay=none, .*dsn=5\.7\.1, status=bounced "
                    r"\(only local mail here\)")


def test_transport_maps_that_cannot_be_opened(postern):
    p = postern
    p.start(transport_maps="hash:%s" % (p.tmp / "missing-transport"))
    p.send("mailtest@example.test", subject="waits")
    p.qmgr.wait_log(r"warning: .*transport_maps: table hash:.*missing-transport: open .*: "
                    r"No such file or directory")
    p.qmgr.wait_log(r"to=<mailtest@example\.test>, relay=none, .*dsn=4\.3\.0, status=deferred "
                    r"\(transport_maps lookup failure\)")
    assert p.mbox("mailtest") == []
