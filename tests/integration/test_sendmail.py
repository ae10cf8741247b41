"""sendmail(1), mailq and newaliases end to end: the message on stdin, the
SMTP submission over smtpd's local listener (a unix socket handed to smtpd by
socket activation, named "local"), the bytes in the mailbox; the submitting
user as the kernel names it (SO_PEERCRED), run as root and as the
unprivileged test user; exit codes and "nothing queued" after failures."""

import os
import pwd
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import BUILD, DEFAULT_TIMEOUT, SANITIZER_MARKERS

SENDMAIL = BUILD / "src" / "sendmail" / "sendmail"
HOST = "mail.example.test"          # myhostname = myorigin of the fixture

EX_USAGE, EX_DATAERR, EX_NOUSER, EX_TEMPFAIL, EX_NOPERM = 64, 65, 67, 75, 77


def uid_of(user):
    return pwd.getpwnam(user).pw_uid


def unix_listener(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    os.chmod(path, 0o666)           # every local user submits here
    s.listen(64)
    return s


@pytest.fixture
def local(postern):
    """A Postern instance with qmgr and smtpd; smtpd also has the local
    listener, which local_submission_socket names for sendmail."""
    if not SENDMAIL.exists():
        pytest.fail("%s is not built (POSTERN_BUILD_DIR=%s)" % (SENDMAIL, BUILD))
    p = postern
    p.local_path = p.tmp / "local.sock"
    p.local_sock = unix_listener(p.local_path)
    p.configure(local_submission_socket=str(p.local_path))
    yield p
    p.local_sock.close()


def start(p, **params):
    p.configure(**params)
    p.start_qmgr()
    p.start_smtpd(listeners=[("local", p.local_sock)])
    return p


def run(p, args, data=b"", user=None, env=None, argv0=None, timeout=DEFAULT_TIMEOUT):
    """Runs sendmail (as user, with setpriv: no setuid anywhere) and returns
    the CompletedProcess.  A sanitizer report on its stderr fails the test."""
    argv = [str(argv0 or SENDMAIL)] + list(args)
    if user is not None:
        pw = pwd.getpwnam(user)
        argv = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                "--init-groups", "--"] + argv
    e = dict(p.env)
    e.pop("NAME", None)
    e.update(env or {})
    if isinstance(data, str):
        data = data.encode()
    r = subprocess.run(argv, input=data, capture_output=True, env=e, timeout=timeout,
                       cwd="/")
    err = r.stderr.decode("utf-8", "replace")
    assert not any(m in err for m in SANITIZER_MARKERS), err
    return r


def split_message(msg):
    """An mbox message -> (From_ line, header lines (folded ones joined with
    their continuations), body)."""
    from_line, rest = msg.split(b"\n", 1)
    head, body = rest.split(b"\n\n", 1)
    headers = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and headers:
            headers[-1] += b"\n" + line
        else:
            headers.append(line)
    return from_line.decode(), [h.decode("utf-8", "replace") for h in headers], body


def header(headers, name):
    vals = [h.split(":", 1)[1].strip() for h in headers if h.lower().startswith(name.lower() + ":")]
    return vals


def delivered(p, user, n=1):
    return p.wait_mbox(user, n)


def assert_nothing_queued(p):
    """No queue file, committed or temporary, once the marker is delivered."""
    p.wait_queue_empty()
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while True:
        files = p.queue_files()
        if not any(files[d] for d in ("incoming", "active", "deferred", "hold")):
            return
        assert time.monotonic() < deadline, files
        time.sleep(0.02)


# ---------------------------------------------------------------- cron-like use

def test_cron_as_root_t(local):
    """echo ... | sendmail -t as root (what cron does): To: from the header,
    envelope sender root@$myorigin, pickup's Received: with uid 0, and the
    headers cleanup adds for local mail."""
    p = start(local)
    r = run(p, ["-t"], "To: mailtest@example.test\nSubject: cron job\n\nall went well\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"" and r.stderr == b""
    (msg,) = delivered(p, "mailtest")
    from_line, headers, body = split_message(msg)
    assert from_line.startswith("From root@%s  " % HOST)
    assert headers[0] == "Return-Path: <root@%s>" % HOST
    assert headers[1:3] == ["X-Original-To: mailtest@example.test",
                            "Delivered-To: mailtest@example.test"]
    m = re.match(r"^Received: by mail\.example\.test \(Postern, from userid 0\)\n"
                 r"\tid ([0-9A-F]+); \w{3}, [ \d]\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4} \(\S+\)$",
                 headers[3])
    assert m, headers[3]
    qid = m.group(1)
    assert headers[4:6] == ["To: mailtest@example.test", "Subject: cron job"]
    # root's GECOS is "root": sendmail writes From: with it; smtpd adds the rest
    assert headers[6] == "From: root <root@%s>" % HOST
    assert re.match(r"^Message-Id: <\d{14}\.%s@mail\.example\.test>$" % qid, headers[7]), headers[7]
    assert re.match(r"^Date: \w{3}, [ \d]\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4} \(\S+\)$",
                    headers[8]), headers[8]
    assert len(headers) == 9
    assert body == b"all went well\n\n"
    p.smtpd.wait_log(r"%s: uid=0 from=<root>" % qid)
    p.smtpd.wait_log(r"connect from localhost\[127\.0\.0\.1\] uid=0 gid=0 pid=\d+")


def test_cron_as_user(local):
    """The same as the unprivileged user mailtest: its login@$myorigin is the
    sender, its uid is in Received:, whatever the message claims."""
    p = start(local)
    uid = uid_of("mailtest")
    r = run(p, ["-t"], "From: Somebody Else <boss@example.org>\nTo: mailtest2@example.test\n"
            "Subject: from a user\n\nhi\n", user="mailtest")
    assert r.returncode == 0, r.stderr
    (msg,) = delivered(p, "mailtest2")
    from_line, headers, body = split_message(msg)
    assert headers[0] == "Return-Path: <mailtest@%s>" % HOST
    assert headers[3].startswith("Received: by mail.example.test (Postern, from userid %d)\n\tid "
                                 % uid), headers[3]
    # a From: of its own is kept as it is; no second one
    assert header(headers, "From") == ["Somebody Else <boss@example.org>"]
    assert len(header(headers, "Message-Id")) == 1
    assert body == b"hi\n\n"
    p.smtpd.wait_log(r": uid=%d from=<mailtest>" % uid)


def test_recipients_from_to_cc(local):
    p = start(local)
    r = run(p, ["-t"], "To: Mail Test <mailtest@example.test>\n"
            "Cc: mailtest2@example.test (second)\nSubject: two ways\n\nbody\n")
    assert r.returncode == 0, r.stderr
    for user in ("mailtest", "mailtest2"):
        (m,) = delivered(p, user)
        _, headers, body = split_message(m)
        assert header(headers, "To") == ["Mail Test <mailtest@example.test>"]
        assert header(headers, "Cc") == ["mailtest2@example.test (second)"]
        assert body == b"body\n\n"


def test_bcc_recipient_and_header_removed(local):
    """Bcc: names a recipient with -t and is removed from the message, with
    its continuation lines (Postfix's cleanup drops it)."""
    p = start(local)
    r = run(p, ["-t"], "To: mailtest@example.test\nBcc: mailtest2@example.test,\n"
            " (the hidden one)\nSubject: hidden\n\nbody\n")
    assert r.returncode == 0, r.stderr
    for user in ("mailtest", "mailtest2"):
        (m,) = delivered(p, user)
        _, headers, body = split_message(m)
        assert header(headers, "Bcc") == []
        assert not any("hidden one" in h for h in headers), headers
        assert header(headers, "Subject") == ["hidden"]
        assert body == b"body\n\n"


def test_command_line_recipients(local):
    """Command-line recipients are address lists (mail(1) passes them so)."""
    p = start(local)
    r = run(p, ["Mail Test <mailtest@example.test>, mailtest2@example.test"],
            "Subject: args\n\nx\n", user="mailtest")
    assert r.returncode == 0, r.stderr
    delivered(p, "mailtest")
    delivered(p, "mailtest2")


def test_t_adds_to_command_line_recipients(local):
    p = start(local)
    r = run(p, ["-t", "mailtest2"], "To: mailtest\nSubject: both\n\nx\n")
    assert r.returncode == 0, r.stderr
    delivered(p, "mailtest")
    (m,) = delivered(p, "mailtest2")
    # a bare name is completed with @$myorigin, as any local address
    assert b"\nX-Original-To: mailtest2@mail.example.test\n" in m


# ---------------------------------------------------------------- message content

def test_lone_dot_ends_input_without_i(local):
    p = start(local)
    r = run(p, ["mailtest"], "Subject: dot\n\nline one\n.\nline two\n")
    assert r.returncode == 0, r.stderr
    (m,) = delivered(p, "mailtest")
    assert split_message(m)[2] == b"line one\n\n"


@pytest.mark.parametrize("flag", ["-i", "-oi"])
def test_i_keeps_lone_dot(local, flag):
    p = start(local)
    r = run(p, [flag, "mailtest"], "Subject: dot\n\nline one\n.\n..two\n.\nline two\n")
    assert r.returncode == 0, r.stderr
    (m,) = delivered(p, "mailtest")
    assert split_message(m)[2] == b"line one\n.\n..two\n.\nline two\n\n"


def test_lf_crlf_bare_cr_nul_delivered_exactly(local):
    """LF-only input is not a bare-LF violation (sendmail sends CRLF); CRLF
    input loses its CRs (sendmail_fix_line_endings = always); a CR inside a
    line and a NUL are message data, as in Postfix."""
    p = start(local)
    data = (b"Subject: line ends\r\n\nlf only\ncrlf\r\nbare\rcr inside\n"
            b"nul\x00byte\n8bit \xc3\xa4\n.leading dot\nno newline at the end")
    r = run(p, ["mailtest"], data)
    assert r.returncode == 0, r.stderr
    (m,) = delivered(p, "mailtest")
    _, headers, body = split_message(m)
    assert "Subject: line ends" in headers
    assert body == (b"lf only\ncrlf\nbare\rcr inside\nnul\x00byte\n8bit \xc3\xa4\n"
                    b".leading dot\nno newline at the end\n\n")


def test_from_lines_at_the_top_are_dropped(local):
    p = start(local)
    r = run(p, ["mailtest"], "From someone  Mon Jan  1 00:00:00 2024\n>From x\nSubject: s\n\n"
            "From inside\n")
    assert r.returncode == 0, r.stderr
    (m,) = delivered(p, "mailtest")
    _, headers, body = split_message(m)
    assert header(headers, "Subject") == ["s"]
    assert not any(h.startswith(">From") or h.startswith("From ") for h in headers)
    assert body == b">From inside\n\n"     # mbox quoting of the body line


@pytest.mark.parametrize("args,env,want", [
    (["-F", "Joe Q. Public"], {}, '"Joe Q. Public" <mailtest@%s>' % HOST),
    (["-F", "Joe Public"], {}, "Joe Public <mailtest@%s>" % HOST),
    ([], {"NAME": "From Env"}, "From Env <mailtest@%s>" % HOST),
    (["-F", "Opt", "-f", "other@example.org"], {"NAME": "Env"}, "Opt <other@example.org>"),
])
def test_full_name(local, args, env, want):
    p = start(local)
    r = run(p, args + ["mailtest"], "Subject: name\n\nx\n", user="mailtest", env=env)
    assert r.returncode == 0, r.stderr
    (m,) = delivered(p, "mailtest")
    assert header(split_message(m)[1], "From") == [want]


def test_full_name_obsolete_format(local):
    p = start(local, header_from_format="obsolete")
    r = run(p, ["-F", "Joe (the) Public", "mailtest"], "Subject: name\n\nx\n", user="mailtest")
    assert r.returncode == 0, r.stderr
    (m,) = delivered(p, "mailtest")
    assert header(split_message(m)[1], "From") == ["mailtest@%s (Joe \\(the\\) Public)" % HOST]


def test_f_sets_envelope_sender(local):
    p = start(local)
    r = run(p, ["-f", "bounces@example.org", "mailtest"], "Subject: s\n\nx\n", user="mailtest")
    assert r.returncode == 0, r.stderr
    (m,) = delivered(p, "mailtest")
    assert m.startswith(b"From bounces@example.org  ")
    assert b"\nReturn-Path: <bounces@example.org>\n" in m
    r = run(p, ["-f", "<>", "mailtest"], "Subject: null\n\nx\n", user="mailtest")
    assert r.returncode == 0, r.stderr
    m = delivered(p, "mailtest", 2)[1]
    assert b"\nReturn-Path: <>\n" in m
    assert header(split_message(m)[1], "From") == ["MAILER-DAEMON"]


# ---------------------------------------------------------------- -bs

def test_bs_dialogue(local):
    p = start(local)
    pw = pwd.getpwnam("mailtest")
    proc = subprocess.Popen(["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                             "--init-groups", "--", str(SENDMAIL), "-bs"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=p.env)
    try:
        out = proc.stdout

        def reply():
            lines = []
            while True:
                line = out.readline()
                assert line.endswith(b"\r\n"), line
                lines.append(line.decode())
                if line[3:4] == b" ":
                    return lines

        def cmd(text):
            proc.stdin.write(text.encode() + b"\r\n")
            proc.stdin.flush()
            return reply()

        assert reply()[0].startswith("220 %s ESMTP" % HOST)
        assert cmd("EHLO client")[0] == "250-%s\r\n" % HOST
        assert cmd("MAIL FROM:<mailtest>") == ["250 2.1.0 Ok\r\n"]
        assert cmd("RCPT TO:<mailtest2@example.test>") == ["250 2.1.5 Ok\r\n"]
        assert cmd("DATA")[0].startswith("354 ")
        r = cmd("Subject: via -bs\r\n\r\nhello\r\n.")
        assert r[0].startswith("250 2.0.0 Ok: queued as "), r
        assert cmd("QUIT") == ["221 2.0.0 Bye\r\n"]
        proc.stdin.close()
        assert proc.wait(DEFAULT_TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    (m,) = delivered(p, "mailtest2")
    _, headers, body = split_message(m)
    assert headers[3].startswith("Received: by %s (Postern, from userid %d)" % (HOST, pw.pw_uid))
    assert body == b"hello\n\n"


# ---------------------------------------------------------------- failures

def test_server_down_is_tempfail_and_nothing_queued(local):
    p = local
    p.configure(local_submission_socket=str(p.tmp / "nowhere.sock"))
    r = run(p, ["mailtest"], "Subject: s\n\nx\n")
    assert r.returncode == EX_TEMPFAIL
    assert r.stderr.decode() == (
        "sendmail: fatal: root(0): cannot connect to the mail system at %s: No such file or "
        "directory (is postern-smtpd running with a local listener?)\n" % (p.tmp / "nowhere.sock"))
    # a socket nobody accepts on (smtpd stopped, socket file left behind)
    p.configure(local_submission_socket=str(p.local_path))
    p.local_sock.close()
    r = run(p, ["mailtest"], "Subject: s\n\nx\n", user="mailtest")
    assert r.returncode == EX_TEMPFAIL
    assert b"Connection refused" in r.stderr
    assert not (p.spool / "incoming").exists() or not os.listdir(p.spool / "incoming")


@pytest.mark.parametrize("args,text", [
    (["-z"], "sendmail: invalid option -- 'z'\nsendmail: fatal: usage: sendmail [options]\n"),
    (["-bz"], "sendmail: fatal: unsupported: -bz\n"),
    (["-B", "9BIT"], "sendmail: fatal: -B option needs 8BITMIME or 7BIT\n"),
    (["-n"], "sendmail: fatal: -n option not supported\n"),
    (["-bp", "someone"], "sendmail: fatal: display queue mode requires no recipient\n"),
    (["-bs", "someone"], "sendmail: fatal: stand-alone mode requires no recipient\n"),
    (["-bi", "-t"], "sendmail: fatal: -t can be used only in delivery mode\n"),
    (["-f"], "sendmail: option requires an argument -- 'f'\nsendmail: fatal: usage: sendmail [options]\n"),
])
def test_bad_options_exit_64(local, args, text):
    r = run(local, args, "Subject: s\n\nx\n")
    assert (r.returncode, r.stderr.decode()) == (EX_USAGE, text)


def test_no_recipients(local):
    p = start(local)
    r = run(p, [], "Subject: s\n\nx\n", user="mailtest")
    assert r.returncode == EX_USAGE
    assert r.stderr.decode() == ("sendmail: fatal: mailtest(%d): Recipient addresses must be "
                                 "specified on the command line or via the -t option\n"
                                 % uid_of("mailtest"))
    r = run(p, ["-t"], "Subject: s\nTo: undisclosed-recipients:;\n\nx\n", user="mailtest")
    assert r.returncode == EX_USAGE
    assert r.stderr.decode() == ("sendmail: fatal: mailtest(%d): No recipient addresses found in "
                                 "message header\n" % uid_of("mailtest"))
    p.barrier()
    assert p.mbox("mailtest") == []
    assert_nothing_queued(p)


def test_rejected_recipient_queues_nothing(local):
    """One unknown recipient fails the whole submission: no half-submitted
    message for the others."""
    p = start(local)
    r = run(p, ["mailtest", "nosuchuser@example.test"], "Subject: s\n\nx\n", user="mailtest")
    assert r.returncode == EX_NOUSER
    assert r.stderr.decode() == (
        "sendmail: fatal: mailtest(%d): 550 5.1.1 <nosuchuser@example.test>: Recipient address "
        "rejected: User unknown in local recipient table\n" % uid_of("mailtest"))
    p.barrier()
    assert p.mbox("mailtest") == []
    assert_nothing_queued(p)


def test_killed_mid_message_queues_nothing(local):
    p = start(local)
    proc = subprocess.Popen([str(SENDMAIL), "mailtest"], stdin=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=p.env)
    proc.stdin.write(b"Subject: half\n\n" + b"part of a body\n" * 2000)
    proc.stdin.flush()
    # wait until smtpd has the transaction in DATA, then kill sendmail
    p.smtpd.wait_log(r": uid=0 from=<root>")
    proc.send_signal(signal.SIGKILL)
    proc.wait(DEFAULT_TIMEOUT)
    p.smtpd.wait_log(r"lost connection after DATA from localhost\[127\.0\.0\.1\]")
    p.barrier()
    assert p.mbox("mailtest") == []
    assert_nothing_queued(p)


# ---------------------------------------------------------------- who may submit what

def test_authorized_submit_users(local):
    p = start(local, authorized_submit_users="!mailtest, static:anyone")
    uid = uid_of("mailtest")
    r = run(p, ["mailtest2"], "Subject: s\n\nx\n", user="mailtest")
    assert r.returncode == EX_NOPERM
    assert r.stderr.decode() == ("sendmail: fatal: mailtest(%d): 554 5.7.1 User mailtest(%d) is "
                                 "not allowed to submit mail\n" % (uid, uid))
    p.smtpd.wait_log(r"User mailtest\(%d\) is not allowed to submit mail" % uid)
    # everybody else still may
    r = run(p, ["mailtest2"], "Subject: from root\n\nx\n")
    assert r.returncode == 0, r.stderr
    (m,) = delivered(p, "mailtest2")
    assert b"\nSubject: from root\n" in m
    assert_nothing_queued(p)


def test_authorized_submit_users_empty_denies_all(local):
    p = start(local, authorized_submit_users="")
    r = run(p, ["mailtest2"], "Subject: s\n\nx\n")
    assert r.returncode == EX_NOPERM
    assert b"554 5.7.1 User root(0) is not allowed to submit mail" in r.stderr


LOGIN_MAPS = "inline:{ { root = * }, { mailtest = mailtest, mailtest@%s, @example.org } }" % HOST


@pytest.mark.parametrize("user,sender,ok", [
    ("mailtest", None, True),                        # the login itself
    ("mailtest", "mailtest@%s" % HOST, True),
    ("mailtest", "MailTest+list@%s" % HOST, True),   # case and extension do not matter
    ("mailtest", "anyone@example.org", True),        # @domain
    ("mailtest", "other@example.com", False),
    ("mailtest", "<>", False),                       # no "<>" pattern
    ("mailtest2", None, False),                      # no entry: nothing allowed
    ("root", "whoever@example.com", True),           # "*"
])
def test_local_login_sender_maps(local, user, sender, ok):
    p = start(local, local_login_sender_maps=LOGIN_MAPS, recipient_delimiter="+")
    args = ["-f", sender] if sender is not None else []
    r = run(p, args + ["mailtest2@example.test"], "Subject: s\n\nx\n", user=user)
    if ok:
        assert r.returncode == 0, r.stderr
        delivered(p, "mailtest2")
        return
    shown = "" if sender == "<>" else (sender or user)
    assert r.returncode == EX_NOPERM
    assert r.stderr.decode() == (
        "sendmail: fatal: %s(%d): 553 5.7.1 <%s>: Sender address rejected: not owned by user %s\n"
        % (shown, uid_of(user), shown, user))
    p.smtpd.wait_log(r"NOQUEUE: reject: MAIL from localhost\[127\.0\.0\.1\]: 553 5\.7\.1 ")
    p.barrier("mailtest")
    assert p.mbox("mailtest2") == []
    assert_nothing_queued(p)


def test_local_submission_may_relay(local):
    """The local listener is this host: it relays like $mynetworks (the
    SMTP client that would deliver it comes later: the mail stays queued)."""
    p = start(local, mynetworks="192.0.2.0/24")
    r = run(p, ["someone@remote.example"], "Subject: out\n\nx\n", user="mailtest")
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while not any(p.committed_queue_files()[d] for d in ("incoming", "active", "deferred")):
        assert time.monotonic() < deadline, "nothing queued"
        time.sleep(0.02)


# ---------------------------------------------------------------- other options

def test_verbose_shows_the_dialogue(local):
    p = start(local)
    r = run(p, ["-v", "mailtest"], "Subject: s\n\nsecret body\n")
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    assert ">>> EHLO localhost\n" in err
    assert ">>> MAIL FROM:<root>\n" in err
    assert ">>> RCPT TO:<mailtest>\n" in err
    assert re.search(r"<<< 250 2\.0\.0 Ok: queued as [0-9A-F]+\n", err), err
    assert "secret body" not in err
    delivered(p, "mailtest")


def test_dsn_and_ignored_options(local):
    p = start(local)
    r = run(p, ["-N", "success,delay", "-V", "envid-1", "-R", "hdrs", "-oem", "-om", "-o7",
                "-U", "-G", "-h", "10", "-L", "label", "-Am", "-x", "--", "mailtest"],
            "Subject: s\n\nx\n")
    assert (r.returncode, r.stderr) == (0, b"")
    r = run(p, ["-N", "bogus", "-V", "x" * 101, "mailtest"], "Subject: s\n\nx\n")
    assert r.returncode == 0
    assert r.stderr.decode() == ("sendmail: warning: bad -N option value -- ignored\n"
                                 "sendmail: warning: too long -V option value -- ignored\n")
    delivered(p, "mailtest", 2)


def test_config_dir_option(local):
    """-C names the configuration directory or its main.cf; without it
    $POSTERN_CONFIG_DIR, as the daemons."""
    p = start(local)
    env = {"POSTERN_CONFIG_DIR": "/nonexistent"}
    r = run(p, ["-C", str(p.confdir / "main.cf"), "mailtest"], "Subject: one\n\nx\n", env=env)
    assert r.returncode == 0, r.stderr
    r = run(p, ["-C", str(p.confdir), "mailtest"], "Subject: two\n\nx\n", env=env)
    assert r.returncode == 0, r.stderr
    delivered(p, "mailtest", 2)
    r = run(p, ["-C", str(p.tmp / "missing"), "mailtest"], "Subject: s\n\nx\n")
    assert r.returncode == EX_TEMPFAIL
    assert r.stderr.decode() == ("sendmail: fatal: open %s/main.cf: No such file or directory\n"
                                 % (p.tmp / "missing"))


def fake_mailctl(p):
    """A mailctl that records its arguments: mailq must exec it."""
    bindir = p.tmp / "bin"
    bindir.mkdir(exist_ok=True)
    script = bindir / "mailctl"
    script.write_text('#!/bin/sh\nprintf "%%s\\n" "$@" > %s\necho fake mailctl output\nexit 3\n'
                      % (p.tmp / "mailctl.args"))
    os.chmod(script, 0o755)
    return bindir


def mailctl_args(p):
    return (p.tmp / "mailctl.args").read_text().splitlines()


def test_mailq_execs_mailctl_queue_list(local):
    p = local
    bindir = fake_mailctl(p)
    # mailq next to mailctl (the installed layout: /usr/bin/mailq, /usr/bin/mailctl)
    os.symlink(SENDMAIL, bindir / "mailq")
    r = run(p, ["--json", "-x"], argv0=bindir / "mailq")
    assert (r.returncode, r.stdout) == (3, b"fake mailctl output\n"), r.stderr
    assert mailctl_args(p) == ["queue", "list", "--json", "-x"]
    # sendmail -bp finds it on $PATH
    path = "%s:/usr/bin:/bin" % bindir
    r = run(p, ["-bp"], env={"PATH": path})
    assert r.returncode == 3, r.stderr
    assert mailctl_args(p) == ["queue", "list"]
    r = run(p, ["-bp", "-C", str(p.confdir)], env={"PATH": path})
    assert mailctl_args(p) == ["--config-dir", str(p.confdir), "queue", "list"]
    # -q flushes; -q<interval> is the queue manager's business
    r = run(p, ["-q"], env={"PATH": path})
    assert r.returncode == 3 and mailctl_args(p) == ["queue", "flush"]
    os.unlink(p.tmp / "mailctl.args")
    r = run(p, ["-q30m"], env={"PATH": path})
    assert r.returncode == 0 and not (p.tmp / "mailctl.args").exists()


def test_mailq_without_mailctl(local):
    r = run(local, ["-bp"], env={"PATH": str(local.tmp)})
    assert r.returncode == 69
    assert r.stderr.decode() == "sendmail: fatal: cannot execute mailctl: No such file or directory\n"


def test_newaliases_modes(local):
    """newaliases, sendmail -bi and -I rebuild alias_database; -oA names
    another one (hash: when no type is given)."""
    p = local
    p.aliases.write_text("postmaster: root\nfirst: mailtest\n")
    for args, argv0 in (([], SENDMAIL.parent / "newaliases"), (["-bi"], None), (["-I"], None)):
        db = p.tmp / "aliases.cdb"
        if db.exists():
            db.unlink()
        r = run(p, args, argv0=argv0)
        assert (r.returncode, r.stderr) == (0, b""), (args, r.stderr)
        assert db.exists(), args
    other = p.tmp / "other-aliases"
    other.write_text("second: mailtest2\n")
    r = run(p, ["-bi", "-oA%s" % other])
    assert (r.returncode, r.stderr) == (0, b"")
    assert (p.tmp / "other-aliases.cdb").exists()
    r = run(p, ["-bi", "someone"])
    assert (r.returncode, r.stderr) == (
        EX_USAGE, b"sendmail: fatal: alias initialization mode requires no recipient\n")
    r = run(p, ["-bi"], env={"POSTERN_CONFIG_DIR": str(p.confdir)}, user="mailtest")
    assert r.returncode == 2     # mailctl's error status: mailtest may not write there
    assert r.stderr.startswith(b"sendmail: ")


def test_too_big_after_the_dot_queues_nothing(local):
    p = start(local, message_size_limit=2000)
    r = run(p, ["-B", "8BITMIME", "-v", "mailtest"], "Subject: big\n\n" + "x" * 80 + "\n" * 1 +
            ("y" * 70 + "\n") * 60)
    assert r.returncode == EX_DATAERR
    err = r.stderr.decode()
    assert ">>> MAIL FROM:<root> BODY=8BITMIME\n" in err
    assert err.endswith("sendmail: fatal: root(0): 552 5.3.4 Error: message file too big\n"), err
    p.barrier()
    assert p.mbox("mailtest") == []
    assert_nothing_queued(p)
