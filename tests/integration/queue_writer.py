"""Writes queue files as smtpd does (docs/queue-format.md), for tests that
need envelope data no client can give yet (RFC 3461 NOTIFY, ORCPT, ENVID,
RET; the SMTPUTF8 flag) or an arrival time in the past.

The file is created as incoming/.t<pid>.<n> (mode 0600), named by its
queue id (13 hex digits of the arrival time in microseconds, then the
inode in hex), given to mail_owner, fsynced and renamed into incoming/,
then incoming/ is fsynced: qmgr sees it through inotify (IN_MOVED_TO),
exactly like a message smtpd committed.  qmgr must have created the spool
(started once) before a file is written.

    from queue_writer import Rcpt, write_queue_file
    qid = write_queue_file(p.spool, "mailtest2@example.test",
                           [Rcpt("mailtest@example.test", notify="SUCCESS",
                                 orcpt="rfc822;Mailtest@Example.TEST")],
                           b"Subject: hi\\n\\nbody\\n", envid="QQ1", ret="HDRS")
"""

import itertools
import os
import pwd
import time
from dataclasses import dataclass
from pathlib import Path

MAIL_OWNER = "postern"
_counter = itertools.count(1)


@dataclass
class Rcpt:
    """One envelope recipient: R, with O (orig), n (notify), o (orcpt)."""
    address: str
    orig: str = None          # as the client wrote it
    notify: str = None        # "NEVER" or a comma list of SUCCESS, FAILURE, DELAY
    orcpt: str = None         # xtext-decoded "type;address"


def _field(value):
    value = value if isinstance(value, bytes) else value.encode()
    assert b"\n" not in value and b"\r" not in value and b"\0" not in value, value
    return value


def queue_file_bytes(queue_id, arrival_us, sender, recipients, content, envid=None, ret=None,
                     smtputf8=False, client=("localhost", "127.0.0.1"), helo=None,
                     protocol="ESMTP", trailer=b""):
    """The bytes of a queue file (docs/queue-format.md, "Byte layout")."""
    recs = [b"I" + _field(queue_id), b"T%d" % arrival_us, b"Z%020d" % len(content),
            b"C" + _field(client[0]), b"A" + _field(client[1])]
    if helo:
        recs.append(b"H" + _field(helo))
    recs += [b"P" + _field(protocol), b"S" + _field(sender)]
    if smtputf8:
        recs.append(b"Lsmtputf8")
    if envid is not None:
        recs.append(b"e" + _field(envid))
    if ret is not None:
        recs.append(b"r" + _field(ret))
    for r in recipients:
        if isinstance(r, str):
            r = Rcpt(r)
        recs.append(b"R" + _field(r.address))
        if r.orig is not None and r.orig != r.address:
            recs.append(b"O" + _field(r.orig))
        if r.notify is not None:
            recs.append(b"n" + _field(r.notify))
        if r.orcpt is not None:
            recs.append(b"o" + _field(r.orcpt))
    return (b"POSTERN-QUEUE 1\n" + b"".join(x + b"\n" for x in recs) + b"X\n" + content
            + b"E\n" + trailer)


def write_queue_file(spool, sender, recipients, content, arrival=None, owner=MAIL_OWNER,
                     **kwargs):
    """Commits one message into spool's incoming/; returns its queue id.

    recipients: addresses or Rcpt; content: the message (bytes or str; CRLF
    becomes LF, as smtpd stores it); arrival: seconds since the epoch
    (default now); kwargs: envid, ret ("FULL"/"HDRS"), smtputf8, client,
    helo, protocol, trailer (raw records behind the end mark: extracted
    ones such as b"Rbcc@x\\n", then state records as qmgr writes them, e.g.
    b"D0 1700000000 delivered to mailbox\\n", to stage a crash)."""
    incoming = Path(spool) / "incoming"
    assert incoming.is_dir(), "%s: start qmgr first (it makes the spool)" % incoming
    if isinstance(content, str):
        content = content.encode()
    content = content.replace(b"\r\n", b"\n")
    arrival_us = int((time.time() if arrival is None else arrival) * 1_000_000)
    tmp = incoming / (".t%d.%d" % (os.getpid(), next(_counter)))
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600)
    try:
        queue_id = "%013X%05X" % (arrival_us, os.fstat(fd).st_ino)
        data = queue_file_bytes(queue_id, arrival_us, sender, recipients, content, **kwargs)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        pw = pwd.getpwnam(owner)
        os.fchown(fd, pw.pw_uid, pw.pw_gid)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.rename(tmp, incoming / queue_id)
    except BaseException:
        os.unlink(tmp)
        raise
    dfd = os.open(incoming, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return queue_id
