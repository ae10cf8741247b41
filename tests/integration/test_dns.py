"""DNS-based restrictions against a real DNS server: dnsmasq, started by
the module fixture on a private port with test zones, plus a responder
that answers SERVFAIL for the zones that must fail temporarily.  The
daemons ask it through POSTERN_DNS_SERVER (the resolver's test hook:
glibc's per-thread resolver state, used by res_query, getaddrinfo and
getnameinfo alike).  Clients connect from chosen 127.0.0.x addresses so
that each has its own PTR record.

Covers reject_unknown_{client,reverse_client,helo}_hostname,
reject_unknown_{sender,recipient}_domain (incl. null MX and the seed
notes' recipient restriction list), reject_rbl_client / reject_rhsbl_* /
permit_dnswl_client with reply filters, default_rbl_reply and
rbl_reply_maps, check_*_mx_access / check_*_ns_access, and temporary
failures (defer_if_permit, DNSBL benefit of the doubt)."""

import re
import socket
import threading

import pytest

from conftest import DEFAULT_TIMEOUT, RawSmtp
from dnsmasq_fixture import dnsmasq

ZONES = """\
local=/test/
local=/127.in-addr.arpa/
host-record=good.test,127.0.0.5
ptr-record=5.0.0.127.in-addr.arpa,good.test
ptr-record=6.0.0.127.in-addr.arpa,liar.test
host-record=liar.test,127.0.0.66
host-record=helo.good.test,192.0.2.10
mx-host=mxonly.test,mx.remote.test,10
mx-host=remote.test,mx.remote.test,10
host-record=mx.remote.test,192.0.2.25
mx-host=blocked.test,mx.blocked.test,10
host-record=mx.blocked.test,192.0.2.66
mx-host=nullmx.test,.,0
host-record=aonly.test,192.0.2.30
host-record=2.0.0.127.zen.test,127.0.0.2
txt-record=2.0.0.127.zen.test,"listed by zen.test"
host-record=3.0.0.127.zen.test,127.0.0.10
host-record=bad.test.dbl.test,127.0.1.2
host-record=2.0.0.127.wl.test,127.0.2.1
server=/broken.test/127.0.0.1#{servfail}
server=/9.0.0.127.in-addr.arpa/127.0.0.1#{servfail}
server=/zenbroken.test/127.0.0.1#{servfail}
"""


class ServfailResponder:
    """Answers every DNS query with SERVFAIL, at once."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.stopped = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopped:
            try:
                data, addr = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) < 12:
                continue
            head = bytearray(data[:12])
            head[2] = (data[2] | 0x80) & 0xF9     # response, keep opcode and RD
            head[3] = 0x82                        # RA, rcode SERVFAIL
            head[6:12] = bytes(6)                 # no answers
            self.sock.sendto(bytes(head) + data[12:], addr)

    def stop(self):
        self.stopped = True
        self.thread.join(2)
        self.sock.close()


@pytest.fixture(scope="module")
def dns():
    """dnsmasq with the test zones; yields its "127.0.0.1:PORT"."""
    sf = ServfailResponder()
    try:
        with dnsmasq(ZONES.format(servfail=sf.port), "good.test", "127.0.0.5") as server:
            yield server
    finally:
        sf.stop()


def start(p, dns, **params):
    p.env["POSTERN_DNS_SERVER"] = dns
    params.setdefault("smtpd_peername_lookup", "yes")
    p.start(**params)


def connect_from(p, addr):
    """An SMTP session whose client address is addr (127.0.0.x)."""
    sock = socket.create_connection(("127.0.0.1", p.port), timeout=DEFAULT_TIMEOUT,
                                    source_address=(addr, 0))
    c = RawSmtp(sock)
    assert c.reply().code == 220
    return c


def rcpt_reply(c, helo="client.remote.test", sender="alice@remote.test",
               rcpt="mailtest@example.test"):
    c.expect("ehlo %s" % helo, 250)
    c.expect("mail from:<%s>" % sender, 250)
    return c.cmd("rcpt to:<%s>" % rcpt).text


# ---------------------------------------------------------------- client names

def test_unknown_client_hostname(postern, dns):
    p = postern
    start(p, dns, smtpd_client_restrictions="reject_unknown_client_hostname")
    c = connect_from(p, "127.0.0.5")          # PTR good.test, A 127.0.0.5: confirmed
    assert rcpt_reply(c).startswith("250 ")
    c = connect_from(p, "127.0.0.6")          # PTR liar.test, whose A is elsewhere
    assert rcpt_reply(c) == \
        "450 4.7.1 Client host rejected: cannot find your hostname, [127.0.0.6]"
    c = connect_from(p, "127.0.0.7")          # no PTR at all
    assert rcpt_reply(c) == \
        "450 4.7.1 Client host rejected: cannot find your hostname, [127.0.0.7]"
    p.smtpd.wait_log(re.escape("connect from good.test[127.0.0.5]"))
    p.smtpd.wait_log(re.escape("connect from unknown[127.0.0.6]"))
    p.smtpd.wait_log(re.escape(
        "NOQUEUE: reject: RCPT from unknown[127.0.0.7]: 450 4.7.1 Client host rejected: "
        "cannot find your hostname, [127.0.0.7]; from=<alice@remote.test> "
        "to=<mailtest@example.test> proto=ESMTP helo=<client.remote.test>"))


def test_unknown_reverse_client_hostname_and_code(postern, dns):
    p = postern
    start(p, dns, smtpd_client_restrictions="reject_unknown_reverse_client_hostname",
          unknown_client_reject_code=550)
    c = connect_from(p, "127.0.0.6")          # has a PTR, even if it lies
    assert rcpt_reply(c).startswith("250 ")
    c = connect_from(p, "127.0.0.7")
    assert rcpt_reply(c) == \
        "550 5.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.7]"
    # a PTR lookup that fails temporarily is always 450, whatever the code says
    c = connect_from(p, "127.0.0.9")
    assert rcpt_reply(c) == \
        "450 4.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.9]"


# ---------------------------------------------------------------- HELO names

def test_unknown_helo_hostname(postern, dns):
    p = postern
    start(p, dns, smtpd_helo_restrictions="reject_unknown_helo_hostname")
    for helo in ("helo.good.test", "mxonly.test", "[192.0.2.1]"):
        c = p.connect()
        assert rcpt_reply(c, helo=helo).startswith("250 "), helo
    c = p.connect()
    assert rcpt_reply(c, helo="nosuch.test") == \
        "450 4.7.1 <nosuch.test>: Helo command rejected: Host not found"
    c = p.connect()
    assert rcpt_reply(c, helo="[300.1.2.3]") == \
        "501 5.5.2 <[300.1.2.3]>: Helo command rejected: invalid ip address"


def test_helo_tempfail_defers_only_what_would_pass(postern, dns):
    p = postern
    start(p, dns, smtpd_helo_restrictions="reject_unknown_helo_hostname",
          smtpd_recipient_restrictions="check_recipient_access inline:{ reject@example.test=REJECT }, "
                                       "permit_mynetworks, reject_unauth_destination")
    c = p.connect()
    assert rcpt_reply(c, helo="mx.broken.test") == \
        "450 4.7.1 <mx.broken.test>: Helo command rejected: Host not found"
    # a later reject wins over the deferral (defer_if_permit)
    c = p.connect()
    assert rcpt_reply(c, helo="mx.broken.test", rcpt="reject@example.test") == \
        "554 5.7.1 <reject@example.test>: Recipient address rejected: Access denied"


# ---------------------------------------------------------------- sender / recipient domains

SEED_RESTRICTIONS = ("permit_mynetworks, permit_sasl_authenticated, reject_invalid_hostname, "
                     "reject_non_fqdn_hostname, reject_unknown_sender_domain, "
                     "reject_non_fqdn_sender, reject_non_fqdn_recipient, "
                     "reject_unknown_recipient_domain, reject_unauth_pipelining, "
                     "reject_unauth_destination")


def test_seed_notes_recipient_restrictions(postern, dns):
    """The seed notes' smtpd_recipient_restrictions, for a client outside
    mynetworks.  The notes are from Postfix 2.9, before
    smtpd_relay_restrictions: empty, it leaves every decision to this list,
    as there (with the default one, relaying is denied before the domain
    is looked up, as in Postfix 2.10 and later)."""
    p = postern
    start(p, dns, mynetworks="10.0.0.0/8", smtpd_relay_restrictions="",
          smtpd_recipient_restrictions=SEED_RESTRICTIONS)
    cases = [
        ("root@remote.test", "hadoop@aol.test",
         "450 4.1.2 <hadoop@aol.test>: Recipient address rejected: Domain not found"),
        ("root@remote.test", "hello@remote.test", "554 5.7.1 <hello@remote.test>: Relay access denied"),
        ("root@nosuch.test", "mailtest@example.test",
         "450 4.1.8 <root@nosuch.test>: Sender address rejected: Domain not found"),
        ("root@nullmx.test", "mailtest@example.test",
         "550 5.7.27 <root@nullmx.test>: Sender address rejected: "
         "Domain nullmx.test does not accept mail (nullMX)"),
        ("root@remote.test", "x@nullmx.test",
         "556 5.1.10 <x@nullmx.test>: Recipient address rejected: "
         "Domain nullmx.test does not accept mail (nullMX)"),
        ("root@aonly.test", "bbb@example.test",
         "550 5.1.1 <bbb@example.test>: Recipient address rejected: "
         "User unknown in local recipient table"),
        ("root@magedu", "mailtest@example.test",
         "504 5.5.2 <root@magedu>: Sender address rejected: need fully-qualified address"),
    ]
    for sender, rcpt, want in cases:
        c = p.connect()
        assert rcpt_reply(c, sender=sender, rcpt=rcpt) == want, (sender, rcpt)
        c.expect("quit", 221)
    # a sender in one of our own domains is not looked up
    c = p.connect()
    assert rcpt_reply(c, sender="mailtest2@example.test").startswith("250 ")


def test_default_relay_restrictions_come_first(postern, dns):
    p = postern
    start(p, dns, mynetworks="10.0.0.0/8", smtpd_recipient_restrictions=SEED_RESTRICTIONS)
    c = p.connect()
    assert rcpt_reply(c, sender="root@remote.test", rcpt="hadoop@aol.test") == \
        "554 5.7.1 <hadoop@aol.test>: Relay access denied"


def test_unknown_sender_domain_tempfail(postern, dns):
    p = postern
    start(p, dns, smtpd_sender_restrictions="reject_unknown_sender_domain")
    c = p.connect()
    assert rcpt_reply(c, sender="a@x.broken.test") == \
        "450 4.1.8 <a@x.broken.test>: Sender address rejected: Domain not found"
    c.expect("quit", 221)
    # nothing was queued
    assert not any(p.committed_queue_files().values())


def test_delay_reject_no_carries_deferral_to_rcpt(postern, dns):
    """smtpd_delay_reject = no: a temporary DNS failure at MAIL defers the
    first RCPT (Postfix's defer_if_permit_sender), MAIL itself passes."""
    p = postern
    start(p, dns, smtpd_delay_reject="no",
          smtpd_sender_restrictions="reject_unknown_sender_domain")
    c = p.connect()
    c.expect("ehlo client.remote.test", 250)
    c.expect("mail from:<a@x.broken.test>", 250)
    assert c.cmd("rcpt to:<mailtest@example.test>").text == \
        "450 4.1.8 <a@x.broken.test>: Sender address rejected: Domain not found"
    c.expect("rset", 250)
    c.expect("mail from:<a@remote.test>", 250)
    c.expect("rcpt to:<mailtest@example.test>", 250)


# ---------------------------------------------------------------- DNSBL / DNSWL

def test_rbl_client(postern, dns):
    p = postern
    start(p, dns, smtpd_client_restrictions="reject_rbl_client zen.test")
    c = connect_from(p, "127.0.0.2")
    assert rcpt_reply(c) == ("554 5.7.1 Service unavailable; Client host [127.0.0.2] "
                             "blocked using zen.test; listed by zen.test")
    c = connect_from(p, "127.0.0.3")          # listed, no TXT record
    assert rcpt_reply(c) == \
        "554 5.7.1 Service unavailable; Client host [127.0.0.3] blocked using zen.test"
    c = connect_from(p, "127.0.0.4")          # not listed
    assert rcpt_reply(c).startswith("250 ")
    # (dnsmasq answers the PTR of 127.0.0.2 with its own DNSBL record name)
    p.smtpd.wait_log(r"NOQUEUE: reject: RCPT from \S+\[127\.0\.0\.2\]: " + re.escape(
        "554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using zen.test; "
        "listed by zen.test; from=<alice@remote.test> to=<mailtest@example.test>"))


def test_rbl_reply_filter_and_templates(postern, dns):
    p = postern
    maps = p.tmp / "rbl_reply"
    maps.write_text("zen.test 450 4.7.1 $client_address is on $rbl_domain "
                    "(${rbl_reason?$rbl_reason}${rbl_reason:no reason})\n")
    start(p, dns, smtpd_client_restrictions="reject_rbl_client zen.test=127.0.0.[9..11]",
          rbl_reply_maps="texthash:%s" % maps)
    c = connect_from(p, "127.0.0.2")          # answers 127.0.0.2: outside the filter
    assert rcpt_reply(c).startswith("250 ")
    c = connect_from(p, "127.0.0.3")          # answers 127.0.0.10: inside it
    assert rcpt_reply(c) == "450 4.7.1 127.0.0.3 is on zen.test (no reason)"


def test_rhsbl_sender_and_dnswl(postern, dns):
    p = postern
    start(p, dns, smtpd_sender_restrictions="reject_rhsbl_sender dbl.test",
          smtpd_client_restrictions="permit_dnswl_client wl.test, reject_rbl_client zen.test")
    c = p.connect()
    assert rcpt_reply(c, sender="spam@bad.test") == \
        "554 5.7.1 Service unavailable; Sender address [spam@bad.test] blocked using dbl.test"
    # 127.0.0.2 is on zen.test, but wl.test lists it first: permitted
    c = connect_from(p, "127.0.0.2")
    assert rcpt_reply(c).startswith("250 ")


def test_rbl_lookup_failure_gives_benefit_of_doubt(postern, dns):
    p = postern
    start(p, dns, smtpd_client_restrictions="reject_rbl_client zenbroken.test")
    c = p.connect()
    assert rcpt_reply(c).startswith("250 ")
    p.smtpd.wait_log(r"warning: 1\.0\.0\.127\.zenbroken\.test: RBL lookup error: ")


# ---------------------------------------------------------------- MX / NS access

def test_sender_mx_access(postern, dns):
    p = postern
    table = p.tmp / "mx_access"
    table.write_text("mx.blocked.test REJECT mail exchanger not welcome\n"
                     "192.0.2.25 REJECT mx address not welcome\n")
    start(p, dns, smtpd_sender_restrictions="check_sender_mx_access texthash:%s" % table)
    c = p.connect()
    assert rcpt_reply(c, sender="a@blocked.test") == \
        "554 5.7.1 <a@blocked.test>: Sender address rejected: mail exchanger not welcome"
    c = p.connect()                            # MX mx.remote.test, at 192.0.2.25
    assert rcpt_reply(c, sender="a@remote.test") == \
        "554 5.7.1 <a@remote.test>: Sender address rejected: mx address not welcome"
    c = p.connect()                            # no MX: the domain itself (192.0.2.30)
    assert rcpt_reply(c, sender="a@aonly.test").startswith("250 ")


def test_mx_access_ok_is_refused(postern, dns):
    p = postern
    table = p.tmp / "mx_access"
    table.write_text("mx.remote.test OK\n")
    start(p, dns, smtpd_sender_restrictions="check_sender_mx_access texthash:%s" % table)
    c = p.connect()
    assert rcpt_reply(c, sender="a@remote.test") == "451 4.3.5 Server configuration error"
    p.smtpd.wait_log(re.escape("warning: restriction check_sender_mx_access returns OK for "
                               "a@remote.test"))
