"""smtpd's session transcripts for postmaster (notify_classes, as Postfix's
smtpd_chat_notify; src/smtpd/smtpd-notify.c): a session with an error of a
class notify_classes names sends error_notice_recipient the chat, from
double_bounce_sender; other sessions send nothing; AUTH credentials never
appear; smtpd_history_flush_threshold starts the chat over."""

import email
import os
import re
from email import policy

from conftest import RawSmtp


def transcripts(p, user="mailtest2"):
    return [email.message_from_bytes(raw, policy=policy.compat32) for raw in p.mbox(user)
            if b"SMTP server: errors from" in raw]


def session(p, *lines):
    """One session: the greeting, EHLO, each line with its reply, QUIT."""
    c = RawSmtp.connect(p.port)
    c.reply()
    c.expect("EHLO client.example.test", 250)
    for line in lines:
        c.cmd(line)
    c.expect("QUIT", 221)
    c.close()


def bad_table(p):
    table = p.tmp / "rcpt-access"
    table.write_text("bogus@example.test NO_SUCH_ACTION\n")
    os.chmod(table, 0o644)
    return "check_recipient_access texthash:%s" % table


def test_software_error_sends_a_transcript_by_default(postern):
    """notify_classes' default (resource, software): an access table entry
    smtpd cannot act on ("451 4.3.5 Server configuration error") sends the
    transcript; a session with only a bad command sends none."""
    p = postern
    p.start(smtpd_recipient_restrictions=bad_table(p) + ", permit_mynetworks, "
            "reject_unauth_destination", error_notice_recipient="mailtest2")
    session(p, "FOO")
    session(p, "MAIL FROM:<sender@client.example.test>", "RCPT TO:<bogus@example.test>")
    p.smtpd.wait_log(r"postmaster notification: mailtest2@mail\.example\.test \(errors from "
                     r"unknown\[127\.0\.0\.1\]\)")
    (m,) = p.wait_mbox("mailtest2", 1)
    msg = email.message_from_bytes(m, policy=policy.compat32)
    assert msg["Subject"] == "Postern SMTP server: errors from unknown[127.0.0.1]"
    assert msg["Return-Path"] == "<double-bounce@mail.example.test>"
    assert msg["Auto-Submitted"] == "auto-generated"
    body = msg.get_payload()
    assert body.startswith("Transcript of session follows.\n\n Out: 220 "), body
    for line in (" In:  EHLO client.example.test", " Out: 250-mail.example.test",
                 " In:  MAIL FROM:<sender@client.example.test>", " Out: 250 2.1.0 Ok",
                 " In:  RCPT TO:<bogus@example.test>",
                 " Out: 451 4.3.5 Server configuration error", " In:  QUIT", " Out: 221 2.0.0 Bye"):
        assert line + "\n" in body, (line, body)
    assert "FOO" not in body                     # the other session
    assert body.rstrip().endswith("For other details, see the local mail logfile")
    p.barrier()
    assert len(transcripts(p)) == 1


def test_protocol_class_and_hidden_credentials(postern):
    """notify_classes = protocol: an unknown command and a refused AUTH send
    the transcript, with AUTH's credentials as ****; a policy refusal
    alone sends nothing (policy is not named)."""
    p = postern
    table = p.tmp / "rcpt-access"
    table.write_text("x@blocked.test REJECT\n")
    os.chmod(table, 0o644)
    p.start(notify_classes="protocol", error_notice_recipient="mailtest2",
            smtpd_recipient_restrictions="check_recipient_access texthash:%s" % table)
    session(p, "MAIL FROM:<sender@client.example.test>", "RCPT TO:<x@blocked.test>")
    session(p, "AUTH PLAIN AHRlc3QAc2VjcmV0", "XYZZY")
    p.smtpd.wait_log(r"postmaster notification: ")
    (msg,) = [email.message_from_bytes(m, policy=policy.compat32)
              for m in p.wait_mbox("mailtest2", 1)]
    body = msg.get_payload()
    assert " In:  AUTH PLAIN ****\n" in body and "AHRlc3QAc2VjcmV0" not in body, body
    assert re.search(r"^ Out: 503 5\.5\.1 ", body, re.M), body
    assert " In:  XYZZY\n Out: 502 5.5.2 Error: command not recognized\n" in body, body
    assert "blocked.test" not in body
    p.barrier()
    assert len(transcripts(p)) == 1


def test_policy_class_and_history_flush(postern):
    """notify_classes = policy: a recipient an access table rejects sends
    the transcript.
    With smtpd_history_flush_threshold = 8 the chat starts over every 8
    lines: the lines before the refusal's batch are not in it."""
    p = postern
    table = p.tmp / "rcpt-access"
    table.write_text("x@blocked.test REJECT\n")
    os.chmod(table, 0o644)
    p.start(notify_classes="policy", error_notice_recipient="mailtest2",
            smtpd_history_flush_threshold="8",
            smtpd_recipient_restrictions="check_recipient_access texthash:%s" % table)
    session(p, "NOOP", "NOOP", "NOOP", "MAIL FROM:<sender@client.example.test>",
            "RCPT TO:<x@blocked.test>")
    p.smtpd.wait_log(r"postmaster notification: ")
    (msg,) = [email.message_from_bytes(m, policy=policy.compat32)
              for m in p.wait_mbox("mailtest2", 1)]
    body = msg.get_payload()
    assert (" In:  RCPT TO:<x@blocked.test>\n Out: 554 5.7.1 <x@blocked.test>: Recipient "
            "address rejected: Access denied\n") in body, body
    # greeting + EHLO (1 + 1 + 7 lines of its reply or so) went out in an
    # earlier batch without an error: dropped, not sent
    assert " Out: 220 " not in body, body
    chat = [line for line in body.split("\n") if line.startswith((" In:", " Out:"))]
    assert 0 < len(chat) <= 8, chat
    p.barrier()
    assert len(transcripts(p)) == 1
