"""Compiled lookup tables and the commands that build them: mailctl table
rebuild / query (postmap, postmap -q), mailctl aliases rebuild and
newaliases, and smtpd using a rebuilt hash: table."""

import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BUILD

MAILCTL = BUILD / "src" / "mailctl" / "mailctl"
NEWALIASES = BUILD / "src" / "sendmail" / "newaliases"   # sendmail(1) under that name


@pytest.fixture
def tmp():
    if not MAILCTL.exists():
        pytest.fail("%s is not built (POSTERN_BUILD_DIR=%s)" % (MAILCTL, BUILD))
    d = Path(tempfile.mkdtemp(prefix="postern-tables-", dir="/tmp"))
    yield d
    for root, dirs, files in os.walk(d, topdown=False):
        for f in files:
            os.unlink(os.path.join(root, f))
        for sub in dirs:
            os.rmdir(os.path.join(root, sub))
    os.rmdir(d)


def mailctl(*args, env=None):
    return subprocess.run([str(MAILCTL), *map(str, args)], capture_output=True, text=True,
                          timeout=30, env=env)


def test_rebuild_and_query(tmp):
    src = tmp / "access"
    src.write_text("# access\nWhiteHouse.com REJECT\nexample.org  OK\n")
    r = mailctl("table", "rebuild", "hash:%s" % src)
    assert r.returncode == 0, r.stderr
    assert (tmp / "access.cdb").is_file()
    assert not [p for p in tmp.iterdir() if ".tmp." in p.name]

    src.unlink()     # the query must read the compiled file
    r = mailctl("table", "query", "whitehouse.com", "hash:%s" % src)
    assert (r.returncode, r.stdout) == (0, "REJECT\n")
    r = mailctl("table", "query", "EXAMPLE.ORG", "hash:%s" % src)
    assert (r.returncode, r.stdout) == (0, "OK\n")
    r = mailctl("table", "query", "missing.example", "hash:%s" % src)
    assert (r.returncode, r.stdout) == (1, "")


def test_rebuild_errors(tmp):
    src = tmp / "access"
    src.write_text("ok.example OK\n")
    assert mailctl("table", "rebuild", "hash:%s" % src).returncode == 0
    src.write_text("ok.example OK\nbroken.example\n")
    r = mailctl("table", "rebuild", "hash:%s" % src)
    assert r.returncode == 2
    assert "%s:2: " % src in r.stderr
    # the old compiled table is intact
    r = mailctl("table", "query", "ok.example", "hash:%s" % src)
    assert (r.returncode, r.stdout) == (0, "OK\n")

    r = mailctl("table", "rebuild", "texthash:%s" % src)
    assert r.returncode == 2 and "needs no rebuild" in r.stderr
    r = mailctl("table", "query", "x", "hash:%s" % (tmp / "nonexistent"))
    assert r.returncode == 2 and "nonexistent" in r.stderr
    assert mailctl("no-such-command").returncode == 2


def mailctl_stdin(data, *args):
    return subprocess.run([str(MAILCTL), *map(str, args)], input=data, capture_output=True,
                          timeout=30)


def test_query_stdin(tmp):
    """query - is postmap -q -: a key per line (only the newline is removed),
    "key<TAB>value" as read for each key found, exit 0 if any was found."""
    src = tmp / "access"
    src.write_text("WhiteHouse.com REJECT\nexample.org  OK\n"
                   "1.2.3.4 550 5.7.1 Go away\nuser@example.net DUNNO\n")
    assert mailctl("table", "rebuild", "hash:%s" % src).returncode == 0
    src.unlink()
    keys = (b"whitehouse.com\n"
            b"EXAMPLE.Org\n"
            b"missing.example\n"
            b"\n"
            b" example.org\n"          # white space is part of the key
            b"example.org \n"
            b"example.org\r\n"         # so is a CR
            b"User@Example.NET\n"
            b"1.2.3.4")                 # last line without a newline
    r = mailctl_stdin(keys, "table", "query", "-", "hash:%s" % src)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"whitehouse.com\tREJECT\n"
                                                     b"EXAMPLE.Org\tOK\n"
                                                     b"User@Example.NET\tDUNNO\n"
                                                     b"1.2.3.4\t550 5.7.1 Go away\n", b"")

    # nothing found, or nothing asked: exit 1 and no output
    r = mailctl_stdin(b"missing.example\nexample\n", "table", "query", "-", "hash:%s" % src)
    assert (r.returncode, r.stdout, r.stderr) == (1, b"", b"")
    r = mailctl_stdin(b"", "table", "query", "-", "hash:%s" % src)
    assert (r.returncode, r.stdout, r.stderr) == (1, b"", b"")

    # a larger run: every answer, in input order, nothing lost in the buffer
    lines = [b"example.org" if i % 3 else b"nothere%d" % i for i in range(30000)]
    r = mailctl_stdin(b"\n".join(lines) + b"\n", "table", "query", "-", "hash:%s" % src)
    assert r.returncode == 0
    assert r.stdout == b"".join(b"example.org\tOK\n" for k in lines if k == b"example.org")


def test_query_stdin_tables(tmp):
    """Several tables: the first that knows the key wins; a table that
    cannot answer stops the run with exit 2 after the answers before it."""
    a, b = tmp / "a", tmp / "b"
    a.write_text("shared.example FROM-A\nonly-a.example A\n")
    b.write_text("shared.example FROM-B\nonly-b.example B\n")
    for t in (a, b):
        assert mailctl("table", "rebuild", "hash:%s" % t).returncode == 0
    keys = b"shared.example\nonly-b.example\nonly-a.example\nnone.example\n"
    r = mailctl_stdin(keys, "table", "query", "-", "hash:%s" % a, "hash:%s" % b)
    assert (r.returncode, r.stdout) == (0, b"shared.example\tFROM-A\n"
                                           b"only-b.example\tB\n"
                                           b"only-a.example\tA\n")
    # the single-key form searches the same way
    r = mailctl("table", "query", "only-b.example", "hash:%s" % a, "hash:%s" % b)
    assert (r.returncode, r.stdout) == (0, "B\n")

    missing = tmp / "missing"
    r = mailctl_stdin(b"only-a.example\nnot-in-a.example\nonly-a.example\n",
                      "table", "query", "-", "hash:%s" % a, "hash:%s" % missing)
    assert (r.returncode, r.stdout) == (2, b"only-a.example\tA\n")
    assert r.stderr == ("mailctl: table hash:%s: open %s: No such file or directory\n"
                        % (missing, missing)).encode()

    # aliases(5) source: postalias -q - prints "key:<TAB>value"; usage errors
    aliases = tmp / "aliases"
    aliases.write_text("postmaster: root\nroot: alice,\n  bob\n")
    assert mailctl("table", "rebuild", "--aliases", "hash:%s" % aliases).returncode == 0
    r = mailctl_stdin(b"ROOT\npostmaster\n", "table", "query", "--aliases", "-", "hash:%s" % aliases)
    assert (r.returncode, r.stdout) == (0, b"ROOT:\talice, bob\npostmaster:\troot\n")
    r = mailctl_stdin(b"x\n", "table", "query", "-")
    assert r.returncode == 2 and r.stdout == b"" and b"usage:" in r.stderr
    r = mailctl_stdin(b"x\n", "table", "query", "-", "nonsense")
    assert (r.returncode, r.stderr) == (2, b'mailctl: table "nonsense": expected type:name\n')


def test_aliases_rebuild(tmp):
    (tmp / "etc").mkdir()
    aliases = tmp / "aliases"
    aliases.write_text("redhat: hadoop\nroot: alice,\n  bob\n")
    (tmp / "etc" / "main.cf").write_text("alias_database = hash:%s\n" % aliases)
    r = mailctl("--config-dir", tmp / "etc", "aliases", "rebuild")
    assert r.returncode == 0, r.stderr
    assert (tmp / "aliases.cdb").is_file()
    r = mailctl("table", "query", "--aliases", "root", "hash:%s" % aliases)
    assert (r.returncode, r.stdout) == (0, "alice, bob\n")

    # newaliases does the same, reading POSTERN_CONFIG_DIR
    aliases.write_text("redhat: openstack\n")
    env = dict(os.environ, POSTERN_CONFIG_DIR=str(tmp / "etc"))
    r = subprocess.run([str(NEWALIASES)], capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode == 0, r.stderr
    r = mailctl("table", "query", "-a", "redhat", "hash:%s" % aliases)
    assert (r.returncode, r.stdout) == (0, "openstack\n")


def test_smtpd_uses_rebuilt_table(postern):
    p = postern
    src = p.tmp / "access"
    src.write_text("nobody.example REJECT\n")
    assert mailctl("table", "rebuild", "hash:%s" % src).returncode == 0
    p.configure(smtpd_sender_restrictions="check_sender_access hash:%s" % src)
    p.start_smtpd()

    def rcpt_reply():
        c = p.connect()
        c.expect("ehlo client.example.test", 250)
        c.expect("mail from:<obama@whitehouse.com>", 250)
        text = c.cmd("rcpt to:<mailtest@example.test>").text
        c.expect("quit", 221)
        return text

    assert not rcpt_reply().startswith("554")
    # The source changes; smtpd reads the compiled table, so nothing
    # changes until it is rebuilt.
    src.write_text("whitehouse.com REJECT\n")
    time.sleep(1.2)
    assert not rcpt_reply().startswith("554")
    assert mailctl("table", "rebuild", "hash:%s" % src).returncode == 0
    want = "554 5.7.1 <obama@whitehouse.com>: Sender address rejected: Access denied"
    deadline = time.monotonic() + 5
    while (got := rcpt_reply()) != want and time.monotonic() < deadline:
        time.sleep(0.2)
    assert got == want


def test_table_types():
    """mailctl table types lists what postconf -m would, for this build."""
    r = subprocess.run([str(MAILCTL), "table", "types"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "cdb\ncidr\nhash\ninline\nmysql\npcre\nproxy\nregexp\nstatic\ntexthash\nunix\n"
