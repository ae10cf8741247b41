"""TLS in smtpd: STARTTLS (RFC 3207) and the smtps listener (implicit TLS),
smtpd_tls_security_level, protocols, the Received: header, reload, bad
certificates, and the STARTTLS command injection (CVE-2011-0411).

Certificates come from a throwaway CA made here with the openssl command;
the clients are Python's ssl module (smtplib), openssl s_client and
swaks."""

import re
import signal
import smtplib
import ssl
import subprocess
import time

import pytest

from conftest import DEFAULT_TIMEOUT, SMTPD, RawSmtp, free_port, listening_socket
from tls_fixture import HOST, client_context, tls_params


def ehlo_keywords(s):
    code, text = s.ehlo()
    assert code == 250
    return [l.split()[0].upper() for l in text.decode().split("\n")[1:]]


def received_headers(msg):
    text = msg.decode(errors="replace")
    head = text.split("\n\n", 1)[0]
    return re.findall(r"^Received:.*(?:\n[ \t].*)*", head, re.M)


# ---------------------------------------------------------------- STARTTLS

def test_starttls_with_smtplib_delivers_and_marks_received(postern, certs):
    p = postern.start(**tls_params(certs, smtpd_tls_received_header="yes"))
    with p.smtp() as s:
        assert "STARTTLS" in ehlo_keywords(s)
        code, text = s.starttls(context=client_context(certs))
        assert (code, text) == (220, b"2.0.0 Ready to start TLS")
        assert s.sock.version() == "TLSv1.3"
        kw = ehlo_keywords(s)
        assert "STARTTLS" not in kw and "PIPELINING" in kw
        s.sendmail("sender@client.example.test", ["mailtest@example.test"],
                   b"From: <sender@client.example.test>\r\nSubject: over tls\r\n\r\nhello\r\n")
    (msg,) = p.wait_mbox("mailtest")
    rec = received_headers(msg)[0]
    assert rec.startswith("Received: from client.example.test (unknown [127.0.0.1])\n"
                          "\t(using TLSv1.3 with cipher TLS_"), rec
    assert re.search(r"\(\d+/\d+ bits\)\n\t key-exchange \S+ server-signature RSA-PSS "
                     r"\(2048 bits\) server-digest SHA256\)\n\t\(No client certificate requested\)\n"
                     r"\tby mail\.example\.test \(Postern\) with ESMTPS id ", rec), rec
    p.smtpd.wait_log(r"Anonymous TLS connection established from unknown\[127\.0\.0\.1\]: "
                     r"TLSv1\.3 with cipher TLS_\S+ \(\d+/\d+ bits\) key-exchange")
    p.smtpd.wait_log(r"disconnect from unknown\[127\.0\.0\.1\] ehlo=2 starttls=1 mail=1 rcpt=1 "
                     r"data=1 quit=1 commands=7")


def test_received_header_without_tls_details_by_default(postern, certs):
    p = postern.start(**tls_params(certs))
    with p.smtp() as s:
        s.starttls(context=client_context(certs))
        s.sendmail("sender@client.example.test", ["mailtest@example.test"], b"Subject: x\r\n\r\nx\r\n")
    (msg,) = p.wait_mbox("mailtest")
    rec = received_headers(msg)[0]
    assert "using" not in rec and " with ESMTPS id " in rec, rec


def test_openssl_s_client_verifies_the_certificate(postern, certs):
    p = postern.start(**tls_params(certs))
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % p.port,
                        "-starttls", "smtp", "-name", "client.example.test",
                        "-CAfile", str(certs["ca"]), "-verify_hostname", HOST,
                        "-verify_return_error", "-brief", "-ign_eof"],
                       input="EHLO client.example.test\r\nQUIT\r\n", capture_output=True,
                       text=True, timeout=DEFAULT_TIMEOUT)
    out = r.stdout + r.stderr
    assert "Verification: OK" in out and "Protocol version: TLSv1.3" in out, out
    assert "250-8BITMIME" in out and "250 CHUNKING" in out and "221 2.0.0 Bye" in out, out


def test_swaks_tls(postern, certs):
    p = postern.start(**tls_params(certs))
    r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % p.port, "--tls", "--from",
                        "sender@client.example.test", "--to", "mailtest@example.test",
                        "--helo", "client.example.test", "--header", "Subject: swaks"],
                       capture_output=True, text=True, timeout=DEFAULT_TIMEOUT * 2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert " -> STARTTLS\n<-  220 2.0.0 Ready to start TLS\n=== TLS started" in r.stdout, r.stdout
    assert re.search(r"<~  250 2\.0\.0 Ok: queued as \S+", r.stdout), r.stdout
    (msg,) = p.wait_mbox("mailtest")
    assert b"Subject: swaks" in msg


def tls_over(raw, certs, **kw):
    """Wraps a RawSmtp's socket in TLS (client side) after its STARTTLS."""
    ctx = client_context(certs, **kw)
    raw.sock.settimeout(DEFAULT_TIMEOUT)
    raw.sock = ctx.wrap_socket(raw.sock, server_hostname=HOST)
    raw.buf = b""
    return raw


def test_plaintext_pipelined_after_starttls_is_discarded(postern, certs):
    """CVE-2011-0411: commands sent in the same packet as STARTTLS must not
    be executed inside the TLS session."""
    p = postern.start(**tls_params(certs))
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.send("STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\nRCPT TO:<mailtest@example.test>\r\n")
    r = c.reply()
    assert r.code == 220 and r.text == "220 2.0.0 Ready to start TLS", r
    assert c.buf == b""     # no reply to the injected commands before TLS
    tls_over(c, certs)
    # a fresh session: the injected MAIL was never seen, EHLO is needed again
    r = c.cmd("RCPT TO:<mailtest@example.test>")
    assert r.text == "503 5.5.1 Error: need MAIL command", r
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<sender@client.example.test>", 250)
    c.expect("QUIT", 221)
    c.close()
    assert "injected" not in p.smtpd.log()


def test_starttls_state_errors(postern, certs):
    p = postern.start(**tls_params(certs))
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    assert c.cmd("STARTTLS now").text == "501 5.5.4 Syntax: STARTTLS"
    c.expect("MAIL FROM:<sender@client.example.test>", 250)
    assert c.cmd("STARTTLS").text == "503 5.5.1 Error: MAIL transaction in progress"
    c.expect("RSET", 250)
    c.expect("STARTTLS", 220)
    tls_over(c, certs)
    c.expect("EHLO client.example.test", 250)
    assert c.cmd("STARTTLS").text == "554 5.5.1 Error: TLS already active"
    c.expect("QUIT", 221)
    c.close()


def test_legacy_use_tls_offers_starttls(postern, certs):
    p = postern.start(smtpd_tls_cert_file=certs["crt"], smtpd_tls_key_file=certs["key"],
                      smtpd_use_tls="yes")
    with p.smtp() as s:
        assert "STARTTLS" in ehlo_keywords(s)
        s.starttls(context=client_context(certs))
        assert s.mail("sender@client.example.test")[0] == 250


def test_no_starttls_without_tls(postern, certs):
    """Level none (the default) offers nothing, even with a certificate."""
    p = postern.start(smtpd_tls_cert_file=certs["crt"], smtpd_tls_key_file=certs["key"])
    with p.smtp() as s:
        assert "STARTTLS" not in ehlo_keywords(s)
        assert s.docmd("STARTTLS") == (502, b"5.5.1 Error: command not implemented")


@pytest.mark.parametrize("params", [{"smtpd_tls_security_level": "encrypt"},
                                    {"smtpd_enforce_tls": "yes", "smtpd_use_tls": "yes"}],
                         ids=["level", "legacy"])
def test_encrypt_requires_starttls_before_mail(postern, certs, params):
    tls = tls_params(certs, level="")
    tls.pop("smtpd_tls_security_level")
    p = postern.start(**tls, **params)
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    for cmd in ("MAIL FROM:<sender@client.example.test>", "RCPT TO:<mailtest@example.test>",
                "DATA", "VRFY mailtest"):
        assert c.cmd(cmd).text == "530 5.7.0 Must issue a STARTTLS command first", cmd
    c.expect("NOOP", 250)
    c.expect("STARTTLS", 220)
    tls_over(c, certs)
    c.expect("EHLO client.example.test", 250)
    c.expect("MAIL FROM:<sender@client.example.test>", 250)
    c.expect("QUIT", 221)
    c.close()


def test_old_protocols_are_refused(postern, certs):
    """TLS 1.2 at least by default: a TLS 1.0 or 1.1 client fails the
    handshake, the server logs why, and keeps serving."""
    p = postern.start(**tls_params(certs))
    for flag in ("-tls1", "-tls1_1"):
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % p.port,
                            "-starttls", "smtp", flag, "-cipher", "DEFAULT@SECLEVEL=0"],
                           input="QUIT\r\n", capture_output=True, text=True,
                           timeout=DEFAULT_TIMEOUT)
        assert r.returncode != 0
        assert "Cipher is (NONE)" in r.stdout or "alert" in r.stderr, r.stdout + r.stderr
    p.smtpd.wait_log(r"SSL_accept error from unknown\[127\.0\.0\.1\]: -1")
    p.smtpd.wait_log(r"warning: TLS library problem: .*(unsupported protocol|version)")
    p.smtpd.wait_log(r"lost connection after STARTTLS from unknown\[127\.0\.0\.1\]")
    # a TLS 1.2 client is fine
    with p.smtp() as s:
        s.starttls(context=client_context(certs, maximum_version=ssl.TLSVersion.TLSv1_2))
        assert s.sock.version() == "TLSv1.2"
        assert s.noop()[0] == 250
    # for TLS 1.2, Postfix's line names the cipher only
    p.smtpd.wait_log(r"Anonymous TLS connection established from unknown\[127\.0\.0\.1\]: "
                     r"TLSv1\.2 with cipher \S+ \(\d+/\d+ bits\)$")


def test_protocols_parameter_is_honoured(postern, certs):
    p = postern.start(**tls_params(certs, smtpd_tls_protocols="!SSLv2, !SSLv3, !TLSv1, !TLSv1.1, "
                                                              "!TLSv1.3"))
    with p.smtp() as s:
        s.starttls(context=client_context(certs))
        assert s.sock.version() == "TLSv1.2"


def test_handshake_timeout_and_garbage(postern, certs):
    p = postern.start(**tls_params(certs, smtpd_starttls_timeout="1s"))
    c = p.connect()
    c.expect("STARTTLS", 220)
    time.sleep(1.5)
    assert c.read_to_eof(5) == (b"", True)      # dropped without a plaintext reply
    c.close()
    p.smtpd.wait_log(r"timeout after STARTTLS from unknown\[127\.0\.0\.1\]")
    c = p.connect()
    c.expect("STARTTLS", 220)
    c.send("this is not a ClientHello\r\n")
    data, closed = c.read_to_eof(5)
    assert closed and data[:1] in (b"", b"\x15"), data   # nothing, or a TLS alert
    c.close()
    p.smtpd.wait_log(r"SSL_accept error from unknown\[127\.0\.0\.1\]")
    assert p.smtpd.alive()


# ---------------------------------------------------------------- smtps

def test_smtps_listener_is_implicit_tls(postern, certs):
    p = postern.configure(**tls_params(certs, level="none"))
    p.start_qmgr()
    sock = listening_socket()
    port = sock.getsockname()[1]
    p.start_smtpd(listeners=[("smtps", sock)])
    with smtplib.SMTP_SSL("127.0.0.1", port, local_hostname="client.example.test",
                          context=client_context(certs), timeout=DEFAULT_TIMEOUT) as s:
        kw = ehlo_keywords(s)
        assert "STARTTLS" not in kw
        s.sendmail("sender@client.example.test", ["mailtest@example.test"], b"Subject: smtps\r\n\r\nx\r\n")
    (msg,) = p.wait_mbox("mailtest")
    assert " with ESMTPS id " in received_headers(msg)[0]
    # a plaintext client on the smtps port gets no greeting
    c = RawSmtp.connect(port)
    c.send("EHLO plain\r\n")
    data, closed = c.read_to_eof(5)
    assert closed and data[:1] in (b"", b"\x15"), data
    c.close()
    p.smtpd.wait_log(r"SSL_accept error from unknown\[127\.0\.0\.1\]")
    sock.close()


def test_smtps_without_certificate_closes(postern, certs):
    p = postern.configure()
    p.start_qmgr()
    sock = listening_socket()
    p.start_smtpd(listeners=[("smtps", sock)])
    c = RawSmtp.connect(sock.getsockname()[1])
    assert c.read_to_eof(5) == (b"", True)
    c.close()
    p.smtpd.wait_log(r"warning: smtps listener \(fd \d+\): TLS is not available")
    p.smtpd.wait_log(r"warning: smtps listener: TLS is not available .*closing the connection")
    sock.close()


# ---------------------------------------------------------------- configuration

def test_bad_certificates(postern, certs):
    """encrypt without a certificate, or with a key that does not match,
    keeps smtpd from starting with the parameter and file named; under
    may it serves without TLS and says so."""
    p = postern

    def smtpd_fails(**params):
        p.configure(**params)
        r = subprocess.run([str(SMTPD), "--config-dir", str(p.confdir), "--listen",
                            "smtp=127.0.0.1:%d" % free_port()], capture_output=True, text=True,
                           env=p.env, timeout=DEFAULT_TIMEOUT)
        assert r.returncode != 0, r.stderr
        return r.stderr

    err = smtpd_fails(smtpd_tls_security_level="encrypt")
    assert "smtpd_tls_security_level = encrypt needs smtpd_tls_cert_file" in err, err
    err = smtpd_fails(smtpd_tls_security_level="encrypt", smtpd_tls_cert_file=certs["crt"],
                      smtpd_tls_key_file=certs["stray"])
    assert "smtpd_tls_key_file: %s: the private key does not match the certificate" % certs["stray"] \
        in err, err
    err = smtpd_fails(smtpd_tls_security_level="sometimes")
    assert re.search(r"main\.cf:\d+: parameter smtpd_tls_security_level: bad value 'sometimes'",
                     err), err
    err = smtpd_fails(smtpd_tls_security_level="none", smtpd_tls_wrappermode="yes",
                      smtpd_tls_cert_file=None, smtpd_tls_key_file=None)
    assert "smtpd_tls_wrappermode = yes needs smtpd_tls_cert_file" in err, err
    p.configure(smtpd_tls_wrappermode=None, smtpd_tls_security_level="may",
                smtpd_tls_cert_file=certs["dir"] / "missing.crt", smtpd_tls_key_file=certs["key"])
    p.start_qmgr()
    p.start_smtpd()
    p.smtpd.wait_log(r"warning: smtpd_tls_cert_file: .*missing\.crt: No such file or directory; "
                     r"TLS is disabled")
    with p.smtp() as s:
        assert "STARTTLS" not in ehlo_keywords(s)


def reload_smtpd(p):
    """SIGHUP, then wait for the next "reloaded configuration" line."""
    n = p.smtpd.log().count("reloaded configuration")
    p.smtpd.signal(signal.SIGHUP)
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while p.smtpd.log().count("reloaded configuration") <= n:
        assert time.monotonic() < deadline, p.smtpd.log()
        time.sleep(0.02)


def peer_cn(port, certs):
    ctx = ssl.create_default_context(cafile=str(certs["ca"]))
    ctx.check_hostname = False
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example.test",
                      timeout=DEFAULT_TIMEOUT) as s:
        s.starttls(context=ctx)
        return dict(x[0] for x in s.sock.getpeercert()["subject"])["commonName"]


def test_reload_swaps_the_certificate(postern, certs):
    p = postern.start(**tls_params(certs))
    assert peer_cn(p.port, certs) == HOST
    p.configure(smtpd_tls_cert_file=certs["crt2"], smtpd_tls_key_file=certs["key2"])
    reload_smtpd(p)
    assert peer_cn(p.port, certs) == "other.example.test"


def resumed(port, certs, version):
    """Two STARTTLS sessions; whether the second resumed the first's."""
    ctx = client_context(certs, maximum_version=version)
    session = None
    reused = []
    for _ in range(2):
        c = RawSmtp.connect(port)
        c.reply()
        c.expect("EHLO client.example.test", 250)
        c.expect("STARTTLS", 220)
        c.sock = ctx.wrap_socket(c.sock, server_hostname=HOST, session=session)
        c.expect("NOOP", 250)          # TLS 1.3 tickets arrive after the handshake
        reused.append(c.sock.session_reused)
        session = c.sock.session
        c.expect("QUIT", 221)
        c.close()
    return reused


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3],
                         ids=["tls1.2", "tls1.3"])
def test_session_resumption(postern, certs, version):
    """Sessions are resumed (cache and tickets) unless the cache timeout
    is 0."""
    p = postern.start(**tls_params(certs))
    assert resumed(p.port, certs, version) == [False, True]
    p.configure(smtpd_tls_session_cache_timeout="0")
    reload_smtpd(p)
    assert resumed(p.port, certs, version) == [False, False]


def test_reload_keeps_certificates_it_cannot_read(postern, certs):
    """smtpd reloads as mail_owner: a key only root can read (Postfix's
    usual 0600) keeps the certificates loaded before, with a warning."""
    import shutil
    own = postern.tmp / "tls"
    own.mkdir()
    own.chmod(0o755)
    crt, key = own / "server.crt", own / "server.key"
    shutil.copy(certs["crt"], crt)
    shutil.copy(certs["key"], key)
    crt.chmod(0o644)
    key.chmod(0o644)
    p = postern.start(**tls_params(certs, smtpd_tls_cert_file=crt, smtpd_tls_key_file=key))
    key.chmod(0o600)
    reload_smtpd(p)
    p.smtpd.wait_log(r"warning: cannot re-read %s as postern \(Permission denied\); keeping the "
                     r"TLS certificates loaded before" % re.escape(str(key)))
    assert peer_cn(p.port, certs) == HOST


def test_chain_files_and_cipher_exclusions(postern, certs):
    """smtpd_tls_chain_files (key and chain in one file) instead of
    cert/key; smtpd_tls_exclude_ciphers removes what it names (TLS 1.2)."""
    chain = postern.tmp / "chain.pem"
    chain.write_bytes(certs["key"].read_bytes() + certs["crt"].read_bytes())
    chain.chmod(0o644)
    p = postern.start(smtpd_tls_security_level="may", smtpd_tls_chain_files=chain,
                      smtpd_tls_exclude_ciphers="AESGCM")
    assert peer_cn(p.port, certs) == HOST
    ctx = client_context(certs, maximum_version=ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers("ECDHE-RSA-AES256-GCM-SHA384")
    with p.smtp() as s:
        with pytest.raises(ssl.SSLError):
            s.starttls(context=ctx)
    ctx = client_context(certs, maximum_version=ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers("ECDHE-RSA-CHACHA20-POLY1305")
    with p.smtp() as s:
        s.starttls(context=ctx)
        assert s.sock.cipher()[0] == "ECDHE-RSA-CHACHA20-POLY1305"


def test_encrypt_uses_the_mandatory_protocols(postern, certs):
    p = postern.start(**tls_params(certs, level="encrypt",
                                   smtpd_tls_mandatory_protocols=">=TLSv1.3",
                                   smtpd_tls_protocols=">=TLSv1.2"))
    with p.smtp() as s:
        with pytest.raises(ssl.SSLError):
            s.starttls(context=client_context(certs, maximum_version=ssl.TLSVersion.TLSv1_2))
    with p.smtp() as s:
        s.starttls(context=client_context(certs))
        assert s.sock.version() == "TLSv1.3"


def test_large_message_and_pipelining_over_tls(postern, certs):
    """A 3 MB message and a pipelined transaction inside TLS arrive intact
    (OpenSSL holds decrypted input that no poll event announces)."""
    p = postern.start(**tls_params(certs))
    body = b"".join(b"line %07d abcdefghijklmnopqrstuvwxyz0123456789\r\n" % i for i in range(60000))
    with p.smtp() as s:
        s.starttls(context=client_context(certs))
        s.sendmail("sender@client.example.test", ["mailtest@example.test"],
                   b"Subject: big\r\n\r\n" + body)
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.expect("STARTTLS", 220)
    c.sock = client_context(certs).wrap_socket(c.sock, server_hostname=HOST)
    c.expect("EHLO client.example.test", 250)
    c.send("MAIL FROM:<sender@client.example.test>\r\nRCPT TO:<mailtest@example.test>\r\n"
           "DATA\r\n")
    assert [r.code for r in c.replies(3)] == [250, 250, 354]
    c.send("Subject: piped\r\n\r\nsmall\r\n.\r\nQUIT\r\n")
    assert [r.code for r in c.replies(2)] == [250, 221]
    c.close()
    msgs = p.wait_mbox("mailtest", 2)
    big = [m for m in msgs if b"Subject: big" in m][0]
    assert big.split(b"\n\n", 1)[1].rstrip(b"\n") == body.replace(b"\r\n", b"\n").rstrip(b"\n")
    assert any(b"Subject: piped" in m and m.rstrip().endswith(b"small") for m in msgs)


def test_sigterm_during_a_handshake(postern, certs):
    """A client stuck between STARTTLS and its ClientHello does not hold up
    a stop: the connection is closed without a plaintext 421."""
    p = postern.start(**tls_params(certs))
    c = p.connect()
    c.expect("STARTTLS", 220)
    t0 = time.monotonic()
    code, killed = p.smtpd.stop()
    assert not killed and code == 0 and time.monotonic() - t0 < 5
    assert c.read_to_eof(5) == (b"", True)
    c.close()
