"""SMTP AUTH (RFC 4954) through Cyrus SASL, as the seed notes set it up:
sasldb (saslpasswd2), saslauthd (its own mux, started here) and the sql
auxprop plugin on a private MariaDB; PLAIN and LOGIN, with and without an
initial response, over STARTTLS and smtps; permit_sasl_authenticated for
relaying, smtpd_sender_login_maps, the failure delay and limits."""

import os
import re
import smtplib
import subprocess
import time

import pytest

from conftest import DEFAULT_TIMEOUT, listening_socket
from mariadb_server import mariadb  # noqa: F401 (a fixture)
from sasl_fixture import PASSWORD, REALM, USER, b64, make_sasldb, sasl_dir  # noqa: F401
from tls_fixture import HOST, client_context, tls_params

SENDER = "sender@client.example.test"


def sasl_params(certs, d, **more):
    params = tls_params(certs)
    params.update(smtpd_sasl_auth_enable="yes", cyrus_sasl_config_path=str(d),
                  smtpd_sasl_local_domain=REALM, mynetworks="192.0.2.0/24",
                  smtpd_relay_restrictions="permit_mynetworks, permit_sasl_authenticated, "
                                           "reject_unauth_destination")
    params.update(more)
    return params


def start(postern, certs, sasl_dir, **more):
    make_sasldb(sasl_dir)
    return postern.start(**sasl_params(certs, sasl_dir, **more))


def tls_session(p, certs):
    """A RawSmtp after EHLO, STARTTLS and EHLO again; returns (conn, EHLO reply)."""
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    c.expect("STARTTLS", 220)
    c.sock = client_context(certs).wrap_socket(c.sock, server_hostname=HOST)
    return c, c.expect("EHLO client.example.test", 250)


# ---------------------------------------------------------------- sasldb

def test_auth_with_smtplib_relays_and_is_recorded(postern, certs, sasl_dir):
    p = start(postern, certs, sasl_dir, smtpd_sasl_authenticated_header="yes")
    with p.smtp() as s:
        s.ehlo()
        assert not s.has_extn("auth")        # never before TLS once TLS is configured
        s.starttls(context=client_context(certs))
        s.ehlo()
        assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        # not authenticated: no relaying
        s.mail(SENDER)
        code, text = s.rcpt("nobody@remote.example")
        assert (code, text) == (554, b"5.7.1 <nobody@remote.example>: Relay access denied")
        s.rset()
        assert s.login(USER, PASSWORD) == (235, b"2.7.0 Authentication successful")
        s.sendmail(SENDER, ["mailtest@example.test"], b"Subject: authenticated\r\n\r\nhi\r\n")
        s.mail(SENDER)
        assert s.rcpt("nobody@remote.example")[0] == 250      # relaying for our user
        s.rset()
    (msg,) = p.wait_mbox("mailtest")
    head = msg.decode().split("\n\n")[0]
    # with smtpd_sasl_local_domain, the login carries the realm (as in Postfix)
    assert "\n\t(Authenticated sender: alice@example.test)\n\tby mail.example.test (Postern) " \
           "with ESMTPSA id " in head, head
    p.smtpd.wait_log(r"client=unknown\[127\.0\.0\.1\], sasl_method=(PLAIN|LOGIN), "
                     r"sasl_username=alice@example\.test")
    p.smtpd.wait_log(r"disconnect from unknown\[127\.0\.0\.1\] ehlo=2 starttls=1 auth=1 mail=3 "
                     r"rcpt=2/3 data=1 rset=2 quit=1 commands=13/14")


def test_auth_exchanges_and_errors(postern, certs, sasl_dir):
    p = start(postern, certs, sasl_dir)
    plain = b64("\0%s\0%s" % (USER, PASSWORD))
    # PLAIN with an initial response, and with the user@realm form
    c, ehlo = tls_session(p, certs)
    assert "250-AUTH PLAIN LOGIN" in ehlo.lines
    assert c.cmd("AUTH PLAIN " + plain).text == "235 2.7.0 Authentication successful"
    assert c.cmd("AUTH PLAIN " + plain).text == "503 5.5.1 Error: already authenticated"
    c.close()
    c, _ = tls_session(p, certs)
    assert c.cmd("AUTH PLAIN " + b64("\0%s@%s\0%s" % (USER, REALM, PASSWORD))).code == 235
    c.close()
    # PLAIN with an empty challenge, LOGIN with its two challenges
    c, _ = tls_session(p, certs)
    assert c.cmd("AUTH PLAIN").text == "334 "
    assert c.cmd(plain).code == 235
    c.close()
    c, _ = tls_session(p, certs)
    assert c.cmd("AUTH LOGIN").text == "334 VXNlcm5hbWU6"
    assert c.cmd(b64(USER)).text == "334 UGFzc3dvcmQ6"
    assert c.cmd(b64(PASSWORD)).code == 235
    c.close()
    # cancel, bad base64, syntax, unknown mechanism, state errors
    c, _ = tls_session(p, certs)
    assert c.cmd("AUTH LOGIN").code == 334
    assert c.cmd("*").text == "501 5.7.0 Authentication aborted"
    assert c.cmd("AUTH PLAIN !!notbase64").text == "501 5.5.2 Cannot decode response"
    assert c.cmd("AUTH LOGIN").code == 334
    assert c.cmd("dXNlcg=x").text == "501 5.5.2 Cannot decode response"
    assert c.cmd("AUTH").text == "501 5.5.4 Syntax: AUTH mechanism"
    assert c.cmd("AUTH PLAIN a b").text == "501 5.5.4 Syntax: AUTH mechanism"
    # Postfix's texts for an unknown mechanism and a malformed exchange
    assert c.cmd("AUTH CRAM-MD5").text == \
        "535 5.7.8 Error: authentication failed: no mechanism available"
    assert c.cmd("AUTH PLAIN " + b64("%s\0%s" % (USER, PASSWORD))).text == \
        "535 5.7.8 Error: authentication failed: bad protocol / cancel"
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    assert c.cmd("AUTH PLAIN " + plain).text == "503 5.5.1 Error: MAIL transaction in progress"
    c.expect("RSET", 250)
    # no proxy authorization: PLAIN's authzid must be the user itself
    assert c.cmd("AUTH PLAIN " + b64("bob@%s\0%s\0%s" % (REALM, USER, PASSWORD))).code == 535
    # an over-long response line
    assert c.cmd("AUTH PLAIN").code == 334
    assert c.cmd("A" * 13000).text == "500 5.5.6 SASL response limit exceeded"
    # AUTH= on MAIL (RFC 4954 5) is accepted
    c.expect("MAIL FROM:<%s> AUTH=<>" % SENDER, 250)
    c.expect("QUIT", 221)
    c.close()
    p.smtpd.wait_log(r"warning: unknown\[127\.0\.0\.1\]: SASL LOGIN authentication aborted")
    c = p.connect()
    c.expect("STARTTLS", 220)
    c.sock = client_context(certs).wrap_socket(c.sock, server_hostname=HOST)
    assert c.cmd("AUTH PLAIN " + plain).text == "503 5.5.1 Error: send HELO/EHLO first"
    c.close()


def test_no_auth_on_plaintext_once_tls_is_configured(postern, certs, sasl_dir):
    p = start(postern, certs, sasl_dir)
    c = p.connect()
    r = c.expect("EHLO client.example.test", 250)
    assert not any("AUTH" in l for l in r.lines), r.lines
    assert c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (USER, PASSWORD))).text == \
        "503 5.5.1 Error: authentication not enabled"
    c.close()
    # smtpd_tls_auth_only = no: offered in plaintext as well (the admin's choice)
    p.configure(smtpd_tls_auth_only="no")
    p.smtpd.signal(1)
    p.smtpd.wait_log("reloaded configuration")
    with p.smtp() as s:
        s.ehlo()
        assert s.has_extn("auth")
        assert s.login(USER, PASSWORD)[0] == 235


def test_auth_without_tls_configured_and_broken_clients(postern, sasl_dir):
    make_sasldb(sasl_dir)
    p = postern.start(smtpd_sasl_auth_enable="yes", cyrus_sasl_config_path=str(sasl_dir),
                      smtpd_sasl_local_domain=REALM, broken_sasl_auth_clients="yes")
    c = p.connect()
    r = c.expect("EHLO client.example.test", 250)
    assert "250-AUTH PLAIN LOGIN" in r.lines and "250-AUTH=PLAIN LOGIN" in r.lines, r.lines
    assert c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (USER, PASSWORD))).code == 235
    c.close()
    # without SASL, AUTH= on MAIL is refused as Postfix does
    p.configure(smtpd_sasl_auth_enable="no")
    p.smtpd.signal(1)
    p.smtpd.wait_log("reloaded configuration")
    c = p.connect()
    c.expect("EHLO client.example.test", 250)
    assert c.cmd("MAIL FROM:<%s> AUTH=<>" % SENDER).text == "503 5.7.4 Error: authentication disabled"
    c.close()


def test_wrong_passwords_cost_more_each_time_then_close(postern, certs, sasl_dir):
    p = start(postern, certs, sasl_dir, smtpd_sasl_failure_delay="1s")
    c, _ = tls_session(p, certs)
    bad = "AUTH PLAIN " + b64("\0%s\0wrong" % USER)
    times = []
    for _ in range(2):
        t0 = time.monotonic()
        r = c.cmd(bad)
        times.append(time.monotonic() - t0)
        assert r.text == "535 5.7.8 Error: authentication failed: authentication failure", r
    assert 0.9 <= times[0] < 1.8 and 1.9 <= times[1] < 3.0, times
    r = c.cmd(bad)
    assert r.code == 535
    assert c.reply().text == "421 4.7.0 mail.example.test Error: too many failed authentications"
    c.close()
    p.smtpd.wait_log(r"warning: unknown\[127\.0\.0\.1\]: SASL PLAIN authentication failed: "
                     r"authentication failure, sasl_username=alice@example\.test")
    p.smtpd.wait_log(r"too many failed AUTH commands from unknown\[127\.0\.0\.1\] \(3\)")
    # an unknown user is the same failure (no user enumeration)
    c, _ = tls_session(p, certs)
    assert c.cmd("AUTH PLAIN " + b64("\0nobody\0x")).text == \
        "535 5.7.8 Error: authentication failed: authentication failure"
    c.close()


def test_auth_rate_limit_across_connections(postern, certs, sasl_dir):
    p = start(postern, certs, sasl_dir, smtpd_client_auth_rate_limit=2, anvil_rate_time_unit="60s")
    plain = "AUTH PLAIN " + b64("\0%s\0%s" % (USER, PASSWORD))
    for _ in range(2):
        c, _ = tls_session(p, certs)
        assert c.cmd(plain).code == 235
        c.close()
    c, _ = tls_session(p, certs)
    assert c.cmd(plain).text == "450 4.7.1 Error: too many AUTH commands from 127.0.0.1"
    c.close()
    p.smtpd.wait_log(r"warning: AUTH command rate limit exceeded: 3 from unknown\[127\.0\.0\.1\] "
                     r"for service smtp")


def test_sender_login_maps(postern, certs, sasl_dir):
    make_sasldb(sasl_dir, [(USER, PASSWORD), ("bob", "bob-secret")])
    maps = sasl_dir / "senders"
    maps.write_text("alice@example.test alice@example.test\n"
                    "@shared.test alice@example.test, bob@example.test\n")
    p = postern.start(**sasl_params(
        certs, sasl_dir, smtpd_sender_login_maps="texthash:%s" % maps,
        smtpd_sender_restrictions="reject_sender_login_mismatch", recipient_delimiter="+"))

    def mail(user, sender):
        c, _ = tls_session(p, certs)
        if user:
            pw = PASSWORD if user == USER else "bob-secret"
            assert c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, pw))).code == 235
        c.expect("MAIL FROM:<%s>" % sender, 250)
        r = c.cmd("RCPT TO:<mailtest@example.test>")
        c.close()
        return r.text

    assert mail("alice", "alice@example.test").startswith("250")
    assert mail("alice", "alice+tag@example.test").startswith("250")
    assert mail("bob", "bob@shared.test").startswith("250")
    assert mail("bob", "alice@example.test") == \
        "553 5.7.1 <alice@example.test>: Sender address rejected: not owned by user bob@example.test"
    assert mail("bob", "bob@elsewhere.test") == \
        "553 5.7.1 <bob@elsewhere.test>: Sender address rejected: not owned by user bob@example.test"
    assert mail(None, "alice@example.test") == \
        "553 5.7.1 <alice@example.test>: Sender address rejected: not logged in"
    assert mail(None, "someone@elsewhere.test").startswith("250")


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks_auth(postern, certs, sasl_dir, mech):
    p = start(postern, certs, sasl_dir)
    r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % p.port, "--tls", "--auth", mech,
                        "--auth-user", USER, "--auth-password", PASSWORD, "--from", SENDER,
                        "--to", "nobody@remote.example", "--helo", "client.example.test"],
                       capture_output=True, text=True, timeout=DEFAULT_TIMEOUT * 2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<~  235 2.7.0 Authentication successful" in r.stdout
    assert re.search(r"<~  250 2\.0\.0 Ok: queued as \S+", r.stdout), r.stdout


def test_smtps_auth(postern, certs, sasl_dir):
    make_sasldb(sasl_dir)
    p = postern.configure(**sasl_params(certs, sasl_dir, smtpd_tls_security_level="none"))
    p.start_qmgr()
    sock = listening_socket()
    p.start_smtpd(listeners=[("smtps", sock)])
    with smtplib.SMTP_SSL("127.0.0.1", sock.getsockname()[1], local_hostname="client.example.test",
                          context=client_context(certs), timeout=DEFAULT_TIMEOUT) as s:
        s.ehlo()
        assert s.has_extn("auth")
        assert s.login(USER, PASSWORD)[0] == 235
    sock.close()


# ---------------------------------------------------------------- saslauthd

@pytest.fixture
def saslauthd(sasl_dir):
    """saslauthd -a shadow on a private mux; mailtest's password set for it.
    (saslauthd kills its process group on SIGTERM: it gets its own session.)"""
    subprocess.run(["chpasswd"], input="mailtest:mailtest-pw\n", text=True, check=True)
    mux = sasl_dir / "mux"
    mux.mkdir()
    mux.chmod(0o755)
    proc = subprocess.Popen(["saslauthd", "-a", "shadow", "-m", str(mux), "-n", "2", "-d"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while not (mux / "mux").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "saslauthd did not start"
        time.sleep(0.05)
    yield mux / "mux"
    # TERM, and KILL if its workers do not follow soon (seen on a busy machine)
    os.killpg(proc.pid, 15)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(DEFAULT_TIMEOUT)


def test_saslauthd_backend(postern, certs, sasl_dir, saslauthd):
    (sasl_dir / "smtpd.conf").write_text("pwcheck_method: saslauthd\nsaslauthd_path: %s\n"
                                         "mech_list: PLAIN LOGIN\n" % saslauthd)
    p = postern.start(**sasl_params(certs, sasl_dir, smtpd_sasl_local_domain=""))
    c, _ = tls_session(p, certs)
    assert c.cmd("AUTH PLAIN " + b64("\0mailtest\0mailtest-pw")).code == 235
    c.close()
    c, _ = tls_session(p, certs)
    assert c.cmd("AUTH LOGIN").code == 334
    assert c.cmd(b64("mailtest")).code == 334
    assert c.cmd(b64("wrong")).code == 535
    c.close()


# ---------------------------------------------------------------- sql auxprop

def test_sql_auxprop_on_mariadb(postern, certs, sasl_dir, mariadb):
    """The virtual users of the MySQL notes: Cyrus's sql plugin reads the
    passwords from MariaDB."""
    mariadb.sql("CREATE TABLE mail.sasl_users (username VARCHAR(64), realm VARCHAR(64), "
                "password VARCHAR(128));"
                "INSERT INTO mail.sasl_users VALUES ('carol', 'virt.test', 'carol-pw');"
                "GRANT SELECT ON mail.sasl_users TO 'postern'@'127.0.0.1';")
    (sasl_dir / "smtpd.conf").write_text(
        "pwcheck_method: auxprop\nauxprop_plugin: sql\nmech_list: PLAIN LOGIN\n"
        "sql_engine: mysql\nsql_hostnames: 127.0.0.1:%d\nsql_user: postern\n"
        "sql_passwd: sec'ret\nsql_database: mail\n"
        "sql_select: SELECT password FROM sasl_users WHERE username = '%%u' AND realm = '%%r'\n"
        % mariadb.port)
    p = postern.start(**sasl_params(certs, sasl_dir, smtpd_sasl_local_domain="virt.test"))
    c, _ = tls_session(p, certs)
    assert c.cmd("AUTH PLAIN " + b64("\0carol\0carol-pw")).code == 235
    c.close()
    c, _ = tls_session(p, certs)
    assert c.cmd("AUTH PLAIN " + b64("\0carol\0nope")).code == 535
    c.close()
