"""Delivery status notices end to end (issue 7; docs/smtp-client.md,
"Delivery status notices"): delay notices (delay_warning_time, once per
message, also across a qmgr restart), bounce_queue_lifetime for notices,
notify_classes copies to postmaster and the double bounce, and RFC 3461
NOTIFY / RET / ENVID / ORCPT in the notices.

Mail that waits goes to a retry: route and mail that fails to an error:
route (transport_maps), so no peer is needed but for the "relayed"
success notice.  Messages with DSN parameters (which no client can give
before smtpd parses them) or an arrival time in the past are written into
the queue by queue_writer.py, as smtpd writes them.  Every check parses
the notice as it arrived in the sender's mbox with Python's email
module."""

import email
import email.utils
import os
import re
import time
from email import policy

from conftest import dsn_report
from queue_writer import Rcpt, write_queue_file
from test_smtp_client import peer, start_peer  # noqa: F401  (the peer fixture)

SENDER = "mailtest2@example.test"
ROUTES = ("slow.test retry:4.4.1 the far end is not answering\n"
          "closed.test error:5.7.1 we do not deliver there\n"
          "discarded.test discard:dropped\n")
HOUR = 3600


def start(p, **params):
    table = p.tmp / "transport"
    table.write_text(ROUTES)
    os.chmod(table, 0o644)
    params.setdefault("transport_maps", "texthash:%s" % table)
    return p.start(**params)


def parse(raw):
    """A notice as delivered to an mbox (its From_ line included)."""
    return email.message_from_bytes(raw, policy=policy.compat32)


def notices(p, user, subject):
    """(raw, parsed) of the messages in user's mbox with that Subject."""
    out = []
    for raw in p.mbox(user):
        m = parse(raw)
        if m["Subject"] == subject:
            out.append((raw, m))
    return out


def wait_notices(p, user, subject, n=1, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        got = notices(p, user, subject)
        if len(got) >= n:
            return got
        assert time.monotonic() < deadline, "%s: %d notice(s) %r, wanted %d" % (
            user, len(got), subject, n)
        p.check_daemons_alive()
        time.sleep(0.05)


def wait_count(daemon, pattern, n, timeout=15):
    """Waits until pattern matches at least n times in daemon's log."""
    deadline = time.monotonic() + timeout
    while True:
        got = len(re.findall(pattern, daemon.log(), re.M))
        if got >= n:
            return got
        assert time.monotonic() < deadline, "%s: %r %d times, wanted %d" % (
            daemon.name, pattern, got, n)
        time.sleep(0.05)


report = dsn_report


def by_recipient(per_rcpt):
    return {r["Final-Recipient"]: r for r in per_rcpt}


# ---------------------------------------------------------------- delay notices

def test_delay_notice_once_even_across_a_restart(postern):
    p = start(postern, delay_warning_time="2s")
    p.send("x@slow.test", sender=SENDER, subject="slow one", body="the body\r\n")
    p.qmgr.wait_log(r"sender delay notification: [0-9A-F]+", timeout=20)
    ((raw, m),) = wait_notices(p, "mailtest2", "Delayed Mail (still being retried)")

    assert raw.startswith(b"From MAILER-DAEMON ") and b"\nReturn-Path: <>\n" in raw
    assert m["From"] == "MAILER-DAEMON@mail.example.test (Mail Delivery System)"
    assert m["To"] == SENDER
    assert m["Auto-Submitted"] == "auto-replied"
    human, per_message, per_rcpt, original = report(m)
    assert "This is the mail system at host mail.example.test." in human
    assert "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #" in human
    assert "Your message could not be delivered for more than 0 hour(s)." in human
    assert "It will be retried until it is 5 day(s) old." in human
    assert "<x@slow.test>: the far end is not answering" in human
    assert per_message["Reporting-MTA"] == "dns; mail.example.test"
    assert per_message["X-Postfix-Sender"] == "rfc822; " + SENDER
    (r,) = per_rcpt
    assert r["Final-Recipient"] == "rfc822; x@slow.test"
    assert r["Action"] == "delayed"
    assert r["Status"] == "4.4.1"
    assert r["Diagnostic-Code"] == "X-Postfix; the far end is not answering"
    arrival = email.utils.parsedate_to_datetime(per_message["Arrival-Date"]).timestamp()
    until = email.utils.parsedate_to_datetime(r["Will-Retry-Until"]).timestamp()
    assert until - arrival == 5 * 24 * HOUR
    # headers only
    assert original.get_content_type() == "text/rfc822-headers"
    assert original["Content-Description"] == "Undelivered Message Headers"
    assert "Subject: slow one" in original.get_payload()
    assert "the body" not in original.get_payload()

    # retried, and no second notice: not later, and not after a restart
    before = len(re.findall(r"to=<x@slow\.test>.*status=deferred", p.qmgr.log()))
    wait_count(p.qmgr, r"to=<x@slow\.test>.*status=deferred", before + 2)
    old = p.qmgr
    old.stop()
    qid = re.search(r"(\w+): from=<mailtest2@example\.test>", old.log()).group(1)
    queue_file = (p.spool / "deferred" / qid).read_bytes()
    assert re.search(rb"\nW\d+\n", queue_file), queue_file[-300:]
    p.start_qmgr()
    wait_count(p.qmgr, r"to=<x@slow\.test>.*status=deferred", 2)
    p.barrier()
    assert len(notices(p, "mailtest2", "Delayed Mail (still being retried)")) == 1
    assert "delay notification" not in p.qmgr.log()
    assert len(re.findall(r"delay notification", old.log())) == 1


def test_delay_notice_follows_notify_and_skips_the_null_sender(postern):
    p = start(postern, delay_warning_time="4h")
    past = time.time() - 5 * HOUR
    write_queue_file(p.spool, "", ["a@slow.test"], "Subject: a notice\n\nx\n", arrival=past)
    write_queue_file(p.spool, SENDER, [Rcpt("b@slow.test", notify="NEVER")],
                     "Subject: never\n\nx\n", arrival=past)
    write_queue_file(p.spool, SENDER, [Rcpt("c@slow.test", notify="FAILURE")],
                     "Subject: failure only\n\nx\n", arrival=past)
    write_queue_file(p.spool, SENDER, [Rcpt("d@slow.test", notify="DELAY"),
                                       Rcpt("e@slow.test", notify="SUCCESS,FAILURE"),
                                       Rcpt("f@slow.test")],
                     "Subject: three kinds\n\nx\n", arrival=past)
    ((raw, m),) = wait_notices(p, "mailtest2", "Delayed Mail (still being retried)")
    for who in "abc":
        p.qmgr.wait_log(r"to=<%s@slow\.test>.*status=deferred" % who)
    human, per_message, per_rcpt, original = report(m)
    assert "Your message could not be delivered for more than 4 hour(s)." in human
    assert sorted(by_recipient(per_rcpt)) == ["rfc822; d@slow.test", "rfc822; f@slow.test"]
    assert "<e@slow.test>" not in human
    assert "Subject: three kinds" in original.get_payload()
    p.barrier()
    assert len(notices(p, "mailtest2", "Delayed Mail (still being retried)")) == 1
    assert len(re.findall(r"delay notification", p.qmgr.log())) == 1
    assert p.mbox("root") == []                 # no "delay" in notify_classes


# ---------------------------------------------------------------- lifetimes

def test_bounce_queue_lifetime_expires_notices(postern):
    p = start(postern, bounce_queue_lifetime="1h")
    past = time.time() - 2 * HOUR
    old_notice = write_queue_file(p.spool, "", ["a@slow.test"], "Subject: old notice\n\nx\n",
                                  arrival=past)
    old_mail = write_queue_file(p.spool, SENDER, ["b@slow.test"], "Subject: old mail\n\nx\n",
                                arrival=past)
    new_notice = write_queue_file(p.spool, "", ["c@slow.test"], "Subject: new notice\n\nx\n")
    p.qmgr.wait_log(r"%s: to=<a@slow\.test>, relay=none, .*dsn=5\.4\.7, status=bounced "
                    r"\(message expired in queue: the far end is not answering\)" % old_notice)
    # the double bounce is not wanted (notify_classes has no 2bounce or bounce)
    p.qmgr.wait_log(r"%s: undeliverable bounce discarded" % old_notice)
    p.qmgr.wait_log(r"%s: to=<b@slow\.test>, .*status=deferred" % old_mail)
    p.qmgr.wait_log(r"%s: to=<c@slow\.test>, .*status=deferred" % new_notice)
    files = p.committed_queue_files()
    assert old_notice not in files["incoming"] + files["deferred"]
    assert old_mail in files["incoming"] + files["deferred"]
    assert new_notice in files["incoming"] + files["deferred"]
    p.barrier()
    assert notices(p, "mailtest2", "Undelivered Mail Returned to Sender") == []
    assert p.mbox("root") == []


def test_zero_lifetimes_mean_one_attempt(postern):
    """maximal_queue_lifetime = 0: one attempt for everything, and
    bounce_queue_lifetime (5d) is cut down to it, as Postfix's qmgr does;
    with 2bounce the expired notice goes to postmaster whole."""
    p = start(postern, maximal_queue_lifetime="0", notify_classes="2bounce")
    p.qmgr.wait_log(r"bounce_queue_lifetime is larger than maximal_queue_lifetime - adjusting "
                    r"bounce_queue_lifetime")
    qid = write_queue_file(p.spool, "", ["a@slow.test"],
                           "Subject: a fresh notice\n\nits body\n")
    p.qmgr.wait_log(r"%s: to=<a@slow\.test>, relay=none, .*dsn=5\.4\.7, status=bounced" % qid)
    p.qmgr.wait_log(r"%s: postmaster non-delivery notification: [0-9A-F]+" % qid)
    ((raw, m),) = wait_notices(p, "root", "Postmaster Copy: Undelivered Mail")
    assert raw.startswith(b"From double-bounce@mail.example.test ")
    assert m["Auto-Submitted"] == "auto-generated"
    human, per_message, per_rcpt, original = report(m)
    assert "I'm sorry" not in human              # no boilerplate for postmaster
    assert "<a@slow.test>: message expired in queue: the far end is not answering" in human
    assert per_message["X-Postfix-Sender"] == "rfc822; MAILER-DAEMON"
    assert original.get_content_type() == "message/rfc822"
    assert "its body" in original.get_payload()[0].get_payload()

    p.send("b@slow.test", sender=SENDER, subject="one try only")
    ((raw, m),) = wait_notices(p, "mailtest2", "Undelivered Mail Returned to Sender")
    assert "Status: 5.4.7" in m.as_string()
    # one attempt: deferred, and at once expired
    assert len(re.findall(r"to=<b@slow\.test>, .*status=deferred", p.qmgr.log())) == 1
    assert len(re.findall(r"to=<b@slow\.test>, .*status=bounced", p.qmgr.log())) == 1


def test_bounce_queue_lifetime_zero(postern):
    p = start(postern, bounce_queue_lifetime="0")
    qid = write_queue_file(p.spool, "", ["a@slow.test"], "Subject: notice\n\nx\n")
    mail = write_queue_file(p.spool, SENDER, ["b@slow.test"], "Subject: mail\n\nx\n")
    p.qmgr.wait_log(r"%s: to=<a@slow\.test>, relay=none, .*dsn=5\.4\.7, status=bounced" % qid)
    p.qmgr.wait_log(r"%s: to=<b@slow\.test>, relay=none, .*status=deferred" % mail)


# ---------------------------------------------------------------- notify_classes

def test_notify_classes_bounce_and_delay_copies(postern):
    p = start(postern, notify_classes="bounce, delay", delay_warning_time="4h")
    p.send("x@closed.test", sender=SENDER, subject="refused", body="the secret body\r\n")
    ((raw, m),) = wait_notices(p, "mailtest2", "Undelivered Mail Returned to Sender")
    human, _, _, original = report(m)
    assert "I'm sorry to have to inform you" in human
    assert original.get_content_type() == "message/rfc822"

    ((raw, m),) = wait_notices(p, "root", "Postmaster Copy: Undelivered Mail")
    assert raw.startswith(b"From double-bounce@mail.example.test ")
    assert m["To"] == "postmaster@mail.example.test"
    assert m["Auto-Submitted"] == "auto-generated"
    human, per_message, per_rcpt, original = report(m)
    assert "I'm sorry" not in human
    assert "<x@closed.test>: we do not deliver there" in human
    assert per_message["X-Postfix-Sender"] == "rfc822; " + SENDER
    (r,) = per_rcpt
    assert (r["Action"], r["Status"]) == ("failed", "5.7.1")
    assert original.get_content_type() == "text/rfc822-headers"
    assert "Subject: refused" in original.as_string()
    assert "the secret body" not in original.get_payload()

    # NOTIFY=NEVER: nothing for the sender, the copy for postmaster all the same
    never = write_queue_file(p.spool, SENDER, [Rcpt("y@closed.test", notify="NEVER")],
                             "Subject: quiet\n\nx\n")
    p.qmgr.wait_log(r"%s: postmaster non-delivery notification" % never)
    wait_notices(p, "root", "Postmaster Copy: Undelivered Mail", 2)
    assert not re.search(r"%s: sender non-delivery" % never, p.qmgr.log())

    # delay: the sender's notice and postmaster's copy; a late notice (null
    # sender) only to postmaster
    past = time.time() - 5 * HOUR
    write_queue_file(p.spool, SENDER, ["z@slow.test"], "Subject: waits\n\nx\n", arrival=past)
    write_queue_file(p.spool, "", ["w@slow.test"], "Subject: late notice\n\nx\n", arrival=past)
    wait_notices(p, "mailtest2", "Delayed Mail (still being retried)")
    copies = wait_notices(p, "root", "Postmaster Warning: Delayed Mail", 2)
    finals = sorted(report(m)[2][0]["Final-Recipient"] for _, m in copies)
    assert finals == ["rfc822; w@slow.test", "rfc822; z@slow.test"]
    for raw, m in copies:
        assert raw.startswith(b"From double-bounce@mail.example.test ")
        assert "THIS IS A WARNING ONLY" not in report(m)[0]
    p.barrier()
    assert len(notices(p, "mailtest2", "Delayed Mail (still being retried)")) == 1


def test_default_notify_classes_send_no_copies(postern):
    p = start(postern)
    p.send("x@closed.test", sender=SENDER, subject="refused")
    wait_notices(p, "mailtest2", "Undelivered Mail Returned to Sender")
    # a bounce of a bounce: discarded without 2bounce
    qid = write_queue_file(p.spool, "", ["y@closed.test"], "Subject: a notice\n\nx\n")
    p.qmgr.wait_log(r"%s: undeliverable bounce discarded" % qid)
    p.barrier()
    assert p.mbox("root") == []


# ---------------------------------------------------------------- DSN (RFC 3461)

def test_success_notice_for_local_delivery_and_alias_expansion(postern):
    p = postern
    p.write_aliases("postmaster: root\nteam: mailtest\n")
    start(p, virtual_alias_maps="inline:{ va@example.test = mailtest2@example.test }")
    write_queue_file(p.spool, SENDER, [
        Rcpt("mailtest@example.test", notify="SUCCESS", orcpt="rfc822;MailTest@Example.TEST"),
        Rcpt("team@example.test", orig="team", notify="SUCCESS,FAILURE"),
        Rcpt("va@example.test", notify="SUCCESS"),
        Rcpt("other@discarded.test"),
    ], "Subject: report please\n\nthe body\n", envid="QQ314159")
    ((raw, m),) = wait_notices(p, "mailtest2", "Successful Mail Delivery Report")
    assert raw.startswith(b"From MAILER-DAEMON ")
    assert m["Auto-Submitted"] == "auto-replied"
    human, per_message, per_rcpt, original = report(m)
    assert "Your message was successfully delivered to the destination(s)" in human
    assert "<mailtest@example.test>: delivered to mailbox" in human
    assert "<team@example.test> (expanded from <team>): alias expanded" in human
    assert per_message["Original-Envelope-Id"] == "QQ314159"
    rcpts = by_recipient(per_rcpt)
    assert sorted(rcpts) == ["rfc822; mailtest@example.test", "rfc822; team@example.test",
                             "rfc822; va@example.test"]
    r = rcpts["rfc822; mailtest@example.test"]
    assert (r["Action"], r["Status"]) == ("delivered", "2.0.0")
    assert r["Original-Recipient"] == "rfc822;MailTest@Example.TEST"
    assert r["Diagnostic-Code"] == "X-Postfix; delivered to mailbox"
    r = rcpts["rfc822; team@example.test"]
    assert (r["Action"], r["Status"]) == ("expanded", "2.0.0")
    assert r["Original-Recipient"] == "rfc822; team"
    assert r["Diagnostic-Code"] == "X-Postfix; alias expanded"
    assert rcpts["rfc822; va@example.test"]["Action"] == "expanded"     # virtual alias
    assert "Will-Retry-Until" not in r
    # not RET=FULL: the header only
    assert original.get_content_type() == "text/rfc822-headers"
    assert original["Content-Description"] == "Message Headers"
    assert "the body" not in original.get_payload()
    # the recipients got the message once each
    assert len(p.wait_mbox("mailtest", 1)) == 1
    p.barrier()
    assert len(notices(p, "mailtest2", "report please")) == 1      # va@ -> mailtest2
    assert len(notices(p, "mailtest2", "Successful Mail Delivery Report")) == 1

    # RET=FULL: the whole message
    write_queue_file(p.spool, SENDER, [Rcpt("mailtest@example.test", notify="SUCCESS")],
                     "Subject: full report\n\nall of it\n", ret="FULL")
    (_, (raw, m)) = wait_notices(p, "mailtest2", "Successful Mail Delivery Report", 2)
    original = report(m)[3]
    assert original.get_content_type() == "message/rfc822"
    assert original["Content-Description"] == "Message"
    assert "all of it" in original.get_payload()[0].get_payload()


def test_success_notice_due_after_a_crash(postern):
    """A D record of a NOTIFY=SUCCESS recipient with no Y record after it (a
    crash before the notice was queued): the next attempt sends the notice,
    also when nothing else is left to deliver; with the Y record, never."""
    p = start(postern)
    now = int(time.time())
    due = write_queue_file(p.spool, SENDER, [Rcpt("mailtest@example.test", notify="SUCCESS"),
                                             Rcpt("other@discarded.test")],
                           "Subject: delivered before the crash\n\nx\n",
                           trailer=b"D0 %d delivered to mailbox\n" % now)
    done = write_queue_file(p.spool, SENDER, [Rcpt("mailtest@example.test", notify="SUCCESS")],
                            "Subject: notified before the crash\n\nx\n",
                            trailer=b"D0 %d delivered to mailbox\nY%d\n" % (now, now))
    ((raw, m),) = wait_notices(p, "mailtest2", "Successful Mail Delivery Report")
    human, per_message, per_rcpt, original = report(m)
    (r,) = per_rcpt
    assert r["Final-Recipient"] == "rfc822; mailtest@example.test"
    assert r["Action"] == "delivered"
    assert per_message["X-Postfix-Queue-ID"] == due
    assert "Subject: delivered before the crash" in original.get_payload()
    p.qmgr.wait_log(r"%s: removed" % due)
    p.qmgr.wait_log(r"%s: removed" % done)
    assert p.mbox("mailtest") == []             # delivered before: not again
    p.barrier()
    assert len(notices(p, "mailtest2", "Successful Mail Delivery Report")) == 1


def test_success_notice_relayed(postern, peer):
    """Relayed to a server without DSN: the success notice ("relayed") is
    ours to send (RFC 3461 section 5.2.2)."""
    start_peer(peer, smtpd_discard_ehlo_keywords="dsn")
    p = start(postern, relayhost="[127.0.0.1]:%d" % peer.port)
    write_queue_file(p.spool, SENDER, [Rcpt("mailtest@remote.test", notify="SUCCESS")],
                     "Subject: one over smtp\n\nx\n")
    ((raw, m),) = wait_notices(p, "mailtest2", "Successful Mail Delivery Report")
    (r,) = report(m)[2]
    assert (r["Action"], r["Status"]) == ("relayed", "2.0.0")
    assert re.match(r"smtp; 250 2\.0\.0 Ok: queued as [0-9A-F]+$", r["Diagnostic-Code"]), r
    # two recipients of one route go in one session: relayed as well
    write_queue_file(p.spool, SENDER, [Rcpt("mailtest@remote.test", notify="SUCCESS"),
                                       Rcpt("mailtest2@remote.test", notify="SUCCESS")],
                     "Subject: two over smtp\n\nx\n")
    (_, (raw, m)) = wait_notices(p, "mailtest2", "Successful Mail Delivery Report", 2)
    assert [r["Action"] for r in report(m)[2]] == ["relayed", "relayed"]
    peer.wait_mbox("mailtest", 2)


def test_no_success_notice_when_the_next_hop_takes_dsn(postern, peer):
    """Relayed to a server that offers DSN: NOTIFY=SUCCESS goes along and
    the success notice is the final server's to send, not ours (Postfix
    does the same): the peer queues a "delivered" notice, we queue none,
    alone or in a session with others."""
    start_peer(peer)
    p = start(postern, relayhost="[127.0.0.1]:%d" % peer.port)
    one = write_queue_file(p.spool, SENDER, [Rcpt("mailtest@remote.test", notify="SUCCESS")],
                           "Subject: one over smtp\n\nx\n")
    p.qmgr.wait_log(r"%s: to=<mailtest@remote\.test>, relay=127\.0\.0\.1.*status=sent" % one)
    two = write_queue_file(p.spool, SENDER, [Rcpt("mailtest@remote.test", notify="SUCCESS"),
                                             Rcpt("mailtest2@remote.test", notify="SUCCESS")],
                           "Subject: two over smtp\n\nx\n")
    p.qmgr.wait_log(r"%s: removed" % two)
    p.qmgr.wait_log(r"%s: removed" % one)
    peer.wait_mbox("mailtest", 2)
    # the peer delivered them with NOTIFY=SUCCESS and notifies the sender itself
    peer.qmgr.wait_log(r"sender delivery status notification: ")
    assert len(re.findall(r"sender delivery status notification", peer.qmgr.log())) == 2
    assert "delivery status notification" not in p.qmgr.log()


def test_notify_never_and_failure_with_envid_and_orcpt(postern):
    p = start(postern)
    qid = write_queue_file(p.spool, SENDER, [
        Rcpt("a@closed.test", notify="NEVER"),
        Rcpt("b@closed.test", notify="FAILURE", orcpt="rfc822;B@Closed.TEST"),
        Rcpt("c@closed.test", notify="SUCCESS"),
        Rcpt("d@closed.test", orig="d"),
    ], "Subject: mixed\n\nx\n", envid="ENV-7")
    ((raw, m),) = wait_notices(p, "mailtest2", "Undelivered Mail Returned to Sender")
    human, per_message, per_rcpt, original = report(m)
    assert per_message["Original-Envelope-Id"] == "ENV-7"
    rcpts = by_recipient(per_rcpt)
    assert sorted(rcpts) == ["rfc822; b@closed.test", "rfc822; d@closed.test"]
    assert rcpts["rfc822; b@closed.test"]["Original-Recipient"] == "rfc822;B@Closed.TEST"
    assert rcpts["rfc822; d@closed.test"]["Original-Recipient"] == "rfc822; d"
    assert "<a@closed.test>" not in human and "<c@closed.test>" not in human
    assert "<d@closed.test> (expanded from <d>): we do not deliver there" in human
    p.qmgr.wait_log(r"%s: removed" % qid)

    # NOTIFY=NEVER alone: no notice at all
    never = write_queue_file(p.spool, SENDER, [Rcpt("e@closed.test", notify="NEVER")],
                             "Subject: never tell\n\nx\n")
    p.qmgr.wait_log(r"%s: to=<e@closed\.test>, .*status=bounced" % never)
    p.qmgr.wait_log(r"%s: removed" % never)
    p.barrier()
    assert len(notices(p, "mailtest2", "Undelivered Mail Returned to Sender")) == 1
    assert "%s: sender non-delivery" % never not in p.qmgr.log()


def test_ret_hdrs_and_full(postern):
    p = start(postern, bounce_size_limit="1000")
    body = "the secret body\n"
    write_queue_file(p.spool, SENDER, ["x@closed.test"], "Subject: hdrs\n\n" + body, ret="HDRS")
    got = wait_notices(p, "mailtest2", "Undelivered Mail Returned to Sender", 1)
    original = report(got[0][1])[3]
    assert original.get_content_type() == "text/rfc822-headers"
    assert original["Content-Description"] == "Undelivered Message Headers"
    assert "Subject: hdrs" in original.get_payload() and "secret" not in original.get_payload()

    write_queue_file(p.spool, SENDER, ["x@closed.test"], "Subject: full\n\n" + body, ret="FULL")
    got = wait_notices(p, "mailtest2", "Undelivered Mail Returned to Sender", 2)
    original = report(got[1][1])[3]
    assert original.get_content_type() == "message/rfc822"
    assert original["Content-Description"] == "Undelivered Message"
    inner = original.get_payload()[0]
    assert inner["Subject"] == "full" and inner.get_payload() == body

    # RET=FULL is still bounded by bounce_size_limit, as in Postfix
    write_queue_file(p.spool, SENDER, ["x@closed.test"],
                     "Subject: too big\n\n" + "y" * 70 + "\n" + body * 100, ret="FULL")
    got = wait_notices(p, "mailtest2", "Undelivered Mail Returned to Sender", 3)
    original = report(got[2][1])[3]
    assert original.get_content_type() == "text/rfc822-headers"
    assert "Subject: too big" in original.get_payload()
    assert "secret" not in original.get_payload()


def test_smtputf8_notice(postern):
    p = start(postern)
    write_queue_file(p.spool, SENDER, ["j\u00fcrgen@closed.test"],
                     "Subject: gr\u00fc\u00dfe\n\nx\n", smtputf8=True)
    ((raw, m),) = wait_notices(p, "mailtest2", "Undelivered Mail Returned to Sender")
    human, status, original = m.get_payload()
    assert human.get_param("charset") == "utf-8"
    assert status.get_content_type() == "message/global-delivery-status"
    assert original.get_content_type() == "message/global"
    assert "Final-Recipient: utf-8; j\u00fcrgen@closed.test".encode() in raw
    assert "<j\u00fcrgen@closed.test>: we do not deliver there".encode() in raw


# ---------------------------------------------------------------- alias expansions

def test_expansion_reports_each_address_that_bounces(postern):
    """A virtual alias expands to a mailbox and an unknown user: the mailbox
    gets the message and the sender hears of the other address alone
    ("expanded from"), not nothing because a sibling was delivered."""
    p = postern
    aliases = p.tmp / "virtual"
    aliases.write_text("team@example.test mailtest@example.test, nosuchuser@example.test\n")
    os.chmod(aliases, 0o644)
    p = start(p, virtual_alias_maps="texthash:%s" % aliases)
    qid = write_queue_file(p.spool, SENDER, [Rcpt("team@example.test")],
                           "Subject: to the team\n\nx\n")
    assert b"Subject: to the team" in p.wait_mbox("mailtest", 1)[0]
    ((raw, m),) = wait_notices(p, "mailtest2", "Undelivered Mail Returned to Sender")
    human, per_message, per_rcpt, original = report(m)
    (r,) = per_rcpt
    assert r["Final-Recipient"] == "rfc822; nosuchuser@example.test"
    assert r["Action"] == "failed" and r["Status"] == "5.1.1", r
    assert "<nosuchuser@example.test> (expanded from <team@example.test>): " in human
    assert per_message["X-Postfix-Queue-ID"] == qid
    p.qmgr.wait_log(r"%s: removed" % qid)
    p.barrier()
    assert len(notices(p, "mailtest2", "Undelivered Mail Returned to Sender")) == 1
    assert len(p.mbox("mailtest")) == 1


def test_owner_alias_hears_of_the_expansions_bounces(postern, peer):
    """list has owner-list: the addresses of its expansion that bounce (a
    local unknown user, a remote one the peer refuses) are reported to
    owner-list in one notice, not to the sender; the remote delivery's
    MAIL FROM is owner-list too."""
    start_peer(peer)
    p = postern.configure()
    p.write_aliases("list: mailtest, nosuchuser, gone@remote.test\nowner-list: mailtest2\n")
    start(p, relayhost="[127.0.0.1]:%d" % peer.port)
    p.send("list@example.test", sender="someone@client.example.test", subject="list post")
    assert b"Subject: list post" in p.wait_mbox("mailtest", 1)[0]
    ((raw, m),) = wait_notices(p, "mailtest2", "Undelivered Mail Returned to Sender")
    human, per_message, per_rcpt, original = report(m)
    rcpts = by_recipient(per_rcpt)
    assert sorted(rcpts) == ["rfc822; gone@remote.test", "rfc822; nosuchuser@mail.example.test"]
    assert rcpts["rfc822; gone@remote.test"]["Status"] == "5.1.1"
    assert m["To"] == "owner-list@mail.example.test"
    peer.smtpd.wait_log(r"reject: RCPT from .* <gone@remote\.test>: .*"
                        r"from=<owner-list@mail\.example\.test> to=<gone@remote\.test>")
    p.barrier()
    # nothing went to the sender
    assert not re.search(r"to=<someone@client\.example\.test>", p.qmgr.log()), p.qmgr.log()


# ---------------------------------------------------------------- bounce_template_file

TEMPLATES = """# site templates (bounce(5) format)
failure_template = <<EOF
Charset: us-ascii
From: Mail Robot <MAILER-DAEMON>
Subject: Your mail came back
Postmaster-Subject: Copy: mail came back

Host $myhostname could not deliver your mail; we would have tried for
$maximal_queue_lifetime_days days (${delay_warning_time_hours} h), and $$5 is money.
EOF

verify_template = <<END
Subject: address verification (unused here)

x
END
"""


def test_bounce_template_file(postern):
    """bounce_template_file's failure_template gives the failure notice its
    From:, Subject: and text (main.cf names and TIME_days expanded, $$ a
    dollar); the report parts stay the same."""
    p = postern
    tpl = p.tmp / "bounce.cf"
    tpl.write_text(TEMPLATES)
    os.chmod(tpl, 0o644)
    p = start(p, bounce_template_file=str(tpl), maximal_queue_lifetime="3d",
              delay_warning_time="4h")
    write_queue_file(p.spool, SENDER, [Rcpt("x@closed.test")], "Subject: refused\n\nx\n")
    ((raw, m),) = wait_notices(p, "mailtest2", "Your mail came back")
    assert m["From"] == "Mail Robot <MAILER-DAEMON@mail.example.test>"
    human, per_message, per_rcpt, original = report(m)
    assert human.startswith(
        "Host mail.example.test could not deliver your mail; we would have tried for\n"
        "3 days (4 h), and $5 is money.\n"), human
    assert "<x@closed.test>: we do not deliver there" in human
    (r,) = per_rcpt
    assert r["Action"] == "failed" and r["Status"] == "5.7.1"
    assert "Subject: refused" in original.as_string()



def test_bounce_template_file_with_an_error(postern):
    """A template file with an error: logged with file and line, and the
    built-in texts serve."""
    p = postern
    tpl = p.tmp / "bounce.cf"
    tpl.write_text("failure_template = <<EOF\nSubject: x\nBogus-Header: y\n\ntext\nEOF\n")
    os.chmod(tpl, 0o644)
    p = start(p, bounce_template_file=str(tpl))
    p.qmgr.wait_log(r"warning: bounce_template_file: %s, line 3: not a template header"
                    % re.escape(str(tpl)))
    write_queue_file(p.spool, SENDER, [Rcpt("y@closed.test")], "Subject: refused 2\n\nx\n")
    ((raw, m),) = wait_notices(p, "mailtest2", "Undelivered Mail Returned to Sender")
    assert "This is the mail system at host mail.example.test." in report(m)[0]
