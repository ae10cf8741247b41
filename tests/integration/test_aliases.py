"""aliases(5) destinations beyond addresses: "|command", "/file" and
":include:" in a root-owned alias file, run as default_privs (nobody)."""

import os
import pwd
import shutil
import tempfile
import time
from pathlib import Path

import pytest

SENDER = "sender@client.example.test"


@pytest.fixture
def outdir():
    """A directory nobody can write to (mode 1777, reachable by all)."""
    d = Path(tempfile.mkdtemp(prefix="postern-test-out-", dir="/tmp"))
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def wait_file(path, timeout=10):
    deadline = time.monotonic() + timeout
    while not path.exists() or path.stat().st_size == 0:
        if time.monotonic() > deadline:
            raise AssertionError("%s never appeared" % path)
        time.sleep(0.02)
    time.sleep(0.1)   # let the writer finish
    return path.read_bytes()


def test_command_gets_message_and_environment(postern, outdir):
    p = postern.configure()
    p.write_aliases('pipe: "|cat > %s/stdin; env > %s/env; id -un > %s/id"\n'
                    % (outdir, outdir, outdir))
    p.start()
    p.send("pipe@example.test", subject="via pipe", body=b"line one\r\nFrom here\r\n")
    p.qmgr.wait_log(r"to=<pipe@example\.test>, relay=local, .*status=sent "
                    r"\(delivered to command: cat > ")
    data = wait_file(outdir / "stdin")
    assert data.startswith(b"Return-Path: <sender@client.example.test>\n"
                           b"X-Original-To: pipe@example.test\n"
                           b"Delivered-To: pipe@example.test\n"), data
    assert b"\nSubject: via pipe\n" in data
    assert data.endswith(b"\n\nline one\nFrom here\n"), data   # no From_ quoting for commands
    env = dict(line.split("=", 1) for line in wait_file(outdir / "env").decode().splitlines()
               if "=" in line)
    nobody = pwd.getpwnam("nobody")
    assert env["USER"] == "nobody" and env["LOGNAME"] == "nobody"
    assert env["HOME"] == nobody.pw_dir
    assert env["PATH"] == "/usr/bin:/bin"
    assert env["SENDER"] == SENDER
    assert env["RECIPIENT"] == "pipe@example.test"
    assert env["ORIGINAL_RECIPIENT"] == "pipe@example.test"
    assert env["LOCAL"] == "pipe" and env["DOMAIN"] == "example.test"
    assert env["PWD"] == "/"
    assert wait_file(outdir / "id") == b"nobody\n"
    assert (outdir / "stdin").stat().st_uid == nobody.pw_uid


def test_command_failure_bounces_with_output(postern, outdir):
    p = postern.configure()
    p.write_aliases('fail: "|echo no such list here; exit 1"\n')
    p.start()
    p.send("fail@example.test", sender="mailtest2@example.test")
    p.qmgr.wait_log(r"to=<fail@example\.test>, relay=local, .*dsn=5\.3\.0, status=bounced "
                    r"\(Command died with status 1: \"echo no such list here; exit 1\"\. "
                    r"Command output: no such list here\)")
    # the sender (local here) gets the notice with the command's output
    notice = p.wait_mbox("mailtest2", 1)[0]
    assert b"Subject: Undelivered Mail Returned to Sender" in notice
    assert b"Command output: no such list here" in notice
    assert b"Status: 5.3.0" in notice
    p.wait_queue_empty()


def test_command_tempfail_defers(postern, outdir):
    p = postern.configure()
    p.write_aliases('temp: "|exit 75"\n')
    p.start()
    p.send("temp@example.test")
    p.qmgr.wait_log(r"to=<temp@example\.test>, relay=local, .*dsn=4\.3\.0, status=deferred "
                    r"\(Command died with status 75: \"exit 75\"\)")
    assert p.queue_files()


def test_command_time_limit(postern, outdir):
    p = postern.configure(command_time_limit="1s")
    p.write_aliases('slow: "|sleep 30"\n')
    p.start()
    t0 = time.monotonic()
    p.send("slow@example.test")
    p.qmgr.wait_log(r"to=<slow@example\.test>, relay=local, .*dsn=4\.3\.0, status=deferred "
                    r"\(Command time limit exceeded: \"sleep 30\"\)")
    assert time.monotonic() - t0 < 10
    assert p.queue_files()


def test_file_destination_mbox(postern, outdir):
    p = postern.configure()
    archive = outdir / "archive"
    p.write_aliases("archive: %s\n" % archive)
    p.start()
    p.send("archive@example.test", subject="one", body=b"From the top\r\n")
    p.qmgr.wait_log(r"to=<archive@example\.test>, .*status=sent \(delivered to file: ")
    p.send("archive@example.test", subject="two")
    p.qmgr.wait_log(r"(?s)delivered to file: .*delivered to file: ")
    data = archive.read_bytes()
    assert data.startswith(b"From sender@client.example.test  ")
    assert b"\nDelivered-To: archive@example.test\n" in data
    assert b"\n>From the top\n\nFrom sender@client.example.test  " in data
    assert data.count(b"\nSubject: ") == 2
    assert archive.stat().st_uid == pwd.getpwnam("nobody").pw_uid


def test_include(postern, outdir):
    p = postern.configure()
    inc = p.tmp / "list.inc"
    inc.write_text("# the members\nmailtest\n\n  mailtest2, \"|cat > %s/inc\"\n" % outdir)
    os.chmod(inc, 0o644)
    p.write_aliases("list: :include:%s\n" % inc)
    p.start()
    p.send("list@example.test", subject="to the list")
    (m1,) = p.wait_mbox("mailtest")
    (m2,) = p.wait_mbox("mailtest2")
    assert b"Subject: to the list\n" in m1 and b"Subject: to the list\n" in m2
    # commands in :include: files need "include" in allow_mail_to_commands
    p.qmgr.wait_log(r"to=<list@example\.test>, .*dsn=5\.7\.1, status=bounced "
                    r"\(mail to command is restricted\)")
    assert not (outdir / "inc").exists()


def test_include_world_writable_refused(postern):
    p = postern.configure()
    inc = p.tmp / "open.inc"
    inc.write_text("mailtest\n")
    os.chmod(inc, 0o666)
    p.write_aliases("open: :include:%s\n" % inc)
    p.start()
    p.send("open@example.test")
    p.qmgr.wait_log(r"to=<open@example\.test>, .*status=deferred \(cannot open include file")
    assert p.mbox("mailtest") == []


def test_redhat_chain_with_command(postern, outdir):
    """The seed notes' "redhat: hadoop" chain, now with a command beside it."""
    p = postern.configure()
    p.write_aliases('redhat: hadoop\nhadoop: mailtest, "|cat > %s/hadoop"\n' % outdir)
    p.start()
    p.send("redhat@example.test", subject="via alias")
    (msg,) = p.wait_mbox("mailtest")
    assert b"X-Original-To: redhat@example.test\n" in msg
    data = wait_file(outdir / "hadoop")
    assert data.startswith(b"Return-Path: <sender@client.example.test>\n"
                           b"X-Original-To: redhat@example.test\n"
                           b"Delivered-To: hadoop@mail.example.test\n"), data


def test_owner_alias_is_envelope_sender(postern):
    p = postern.configure()
    p.write_aliases("list: mailtest\nowner-list: mailtest2\n")
    p.start()
    p.send("list@example.test", subject="owned")
    (msg,) = p.wait_mbox("mailtest")
    assert msg.startswith(b"From owner-list@mail.example.test  "), msg[:80]
    assert b"\nReturn-Path: <owner-list@mail.example.test>\n" in msg


# ---------------------------------------------------------------- .forward

def write_forward(p, user, text, name=".forward", mode=0o644):
    pw = pwd.getpwnam(user)
    path = p.home(user) / name
    path.write_text(text)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    os.chmod(path, mode)
    return path


def test_dot_forward(postern, outdir):
    """~/.forward (forward_path) takes the user's mail: another user, the
    user's own mailbox by "\\user" or by its own name (no loop), and a
    command run as the user; a .forward others can write is passed over
    (the mailbox gets the mail), as in Postfix."""
    p = postern.configure()
    p.start()
    write_forward(p, "mailtest", "# forward\nmailtest2, \\mailtest\n")
    p.send("mailtest@example.test", subject="forwarded")
    assert b"Subject: forwarded" in p.wait_mbox("mailtest2", 1)[0]
    assert b"Subject: forwarded" in p.wait_mbox("mailtest", 1)[0]
    p.qmgr.wait_log(r"to=<mailtest2@mail\.example\.test>, orig_to=<mailtest@example\.test>, "
                    r"relay=local, .*status=sent \(delivered to mailbox\)")

    write_forward(p, "mailtest2", 'mailtest2, "|id -un > %s/fwd-id"\n' % outdir)
    p.send("mailtest2@example.test", subject="self and command")
    assert wait_file(outdir / "fwd-id") == b"mailtest2\n"
    msgs = p.wait_mbox("mailtest2", 2)
    assert b"Subject: self and command" in msgs[1]

    write_forward(p, "mailtest", "mailtest2\n", mode=0o664)
    p.send("mailtest@example.test", subject="unsafe forward")
    p.qmgr.wait_log(r"warning: .*file %s/\.forward: writable by others; not used for "
                    r"forwarding" % p.home("mailtest"))
    assert b"Subject: unsafe forward" in p.wait_mbox("mailtest", 2)[1]
    p.barrier()
    assert len(p.mbox("mailtest2")) == 3             # 2 above + the barrier


def test_dot_forward_extension_and_restrictions(postern, outdir):
    """forward_path's default looks for ~/.forward+EXT first when the
    address has an extension; allow_mail_to_commands without "forward"
    refuses a .forward's command (5.7.1)."""
    p = postern.configure(recipient_delimiter="+", allow_mail_to_commands="alias")
    p.start()
    write_forward(p, "mailtest", "mailtest2\n", name=".forward+lists")
    write_forward(p, "mailtest", '"|id -un > %s/never"\n' % outdir)
    p.send("mailtest+lists@example.test", subject="by extension")
    assert b"Subject: by extension" in p.wait_mbox("mailtest2", 1)[0]
    p.send("mailtest@example.test", subject="no commands")
    p.qmgr.wait_log(r"to=<mailtest@example\.test>, relay=local, .*dsn=5\.7\.1, status=bounced "
                    r"\(mail to command is restricted\)")
    assert not (outdir / "never").exists()
    assert p.mbox("mailtest") == []


def test_mailbox_command(postern, outdir):
    """mailbox_command takes system users' mail instead of the mailbox
    (procmail, dovecot-lda), run as the user with Postfix's environment
    ($USER, $EXTENSION ...: shell syntax, never $-expanded by us); its
    exit status decides (EX_NOUSER bounces)."""
    p = postern.configure(recipient_delimiter="+", mailbox_command=(
        'test "$LOGNAME" != mailtest2 || exit 67; cat > %s/$USER-${EXTENSION:-none}.msg '
        '&& id -un > %s/$USER.id' % (outdir, outdir)))
    p.start()
    p.send("mailtest+box@example.test", subject="to the command")
    data = wait_file(outdir / "mailtest-box.msg")
    assert b"Subject: to the command" in data and b"Delivered-To: mailtest+box@" in data
    assert wait_file(outdir / "mailtest.id") == b"mailtest\n"
    p.qmgr.wait_log(r"to=<mailtest\+box@example\.test>, relay=local, .*status=sent "
                    r"\(delivered to command: ")
    assert p.mbox("mailtest") == []
    p.send("mailtest2@example.test", subject="refused by it")
    p.qmgr.wait_log(r"to=<mailtest2@example\.test>, relay=local, .*dsn=5\.1\.1, "
                    r"status=bounced")
