/* params.c - the parameter table: every main.cf parameter Postern knows.
 *
 * One sorted array, looked up by binary search.  Names, meanings and
 * defaults follow Postfix 3.7 except where Postern has a safer default
 * (see docs/configuration.md).  A NULL default means "computed at load
 * time" (config.c).  Keep the array sorted by strcmp(); the unit test
 * checks it.
 */
#include "params.h"

#include <string.h>

#define UNB G_MAXINT64

#define S(n, d, doc)                { n, PARAM_STR, d, 0, 0, 0, doc }
#define B(n, d, doc)                { n, PARAM_BOOL, d, 0, 0, 0, doc }
#define I(n, d, lo, hi, doc)        { n, PARAM_INT, d, lo, hi, 0, doc }
#define T(n, d, unit, lo, hi, doc)  { n, PARAM_TIME, d, lo, hi, unit, doc }
#define Z(n, d, lo, hi, doc)        { n, PARAM_SIZE, d, lo, hi, 0, doc }
#define L(n, d, doc)                { n, PARAM_LIST, d, 0, 0, 0, doc }
#define TB(n, d, doc)               { n, PARAM_TABLES, d, 0, 0, 0, doc }
#define R(n, d, doc)                { n, PARAM_TEMPLATE, d, 0, 0, 0, doc }

static const ParamDef param_defs[] = {
  S("2bounce_notice_recipient", "postmaster", "who receives undeliverable bounce notices"),
  I("access_map_defer_code", "450", 400, 599, "reply code for DEFER in access tables"),
  I("access_map_reject_code", "554", 400, 599, "reply code for REJECT in access tables"),
  S("alias_database", "hash:/etc/aliases", "alias databases that newaliases rebuilds"),
  TB("alias_maps", "hash:/etc/aliases", "alias tables for local delivery"),
  L("allow_mail_to_commands", "alias, forward", "where |command destinations are allowed (later work)"),
  L("allow_mail_to_files", "alias, forward", "where /file destinations are allowed (later work)"),
  B("allow_percent_hack", "no", "rewrite user%domain into user@domain"),
  T("anvil_rate_time_unit", "60s", 's', 1, UNB, "time unit of the per-client rate limits"),
  B("append_at_myorigin", "yes", "append @$myorigin to bare local-part addresses"),
  B("append_dot_mydomain", "no", "append .$mydomain to host-only domains"),
  L("authorized_submit_users", "static:anyone", "local users (login names) who may submit mail through the local listener (sendmail)"),
  B("biff", "no", "notify the comsat service on local delivery"),
  TB("body_checks", "", "body content inspection tables (later work)"),
  S("bounce_notice_recipient", "postmaster", "who receives copies of bounces (notify_classes=bounce)"),
  T("bounce_queue_lifetime", "5d", 'd', 0, UNB, "how long an undeliverable bounce stays queued"),
  Z("bounce_size_limit", "50000", 1, UNB, "the largest original message a bounce returns whole; larger ones return their headers"),
  B("broken_sasl_auth_clients", "no", "also advertise AUTH=mech for old clients (Outlook Express, Outlook 2003)"),
  TB("canonical_maps", "", "address rewriting for sender and recipient (later work)"),
  S("command_directory", "/usr/sbin", "where the administrative commands live"),
  T("command_time_limit", "1000s", 's', 1, UNB, "time limit for a delivery to an external command (|command aliases)"),
  S("compatibility_level", "3.6", "Postfix compatibility level the defaults follow"),
  S("config_directory", NULL, "the configuration directory being read (computed)"),
  L("cyrus_sasl_config_path", "", "where Cyrus SASL looks for APPLICATION.conf (empty: the library's default, /etc/sasl2 and /usr/lib/sasl2)"),
  S("daemon_directory", "/usr/libexec/postern", "where the daemon programs live"),
  S("data_directory", "/var/lib/postern", "directory for caches and other writable state"),
  I("debug_peer_level", "2", 1, 10, "extra verbosity for clients in debug_peer_list"),
  L("debug_peer_list", "", "clients that get debug_peer_level logging"),
  S("default_privs", "nobody", "user for deliveries to external files and commands"),
  R("default_rbl_reply", "$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using $rbl_domain${rbl_reason?; $rbl_reason}", "reply template for DNSBL rejects (expanded per reply: $rbl_code, $rbl_class, $rbl_what, $rbl_domain, $rbl_reason)"),
  S("default_transport", "smtp", "transport for destinations that are not local or virtual"),
  I("defer_code", "450", 400, 499, "reply code for the defer restriction"),
  S("delay_notice_recipient", "postmaster", "who receives delay notices (notify_classes=delay)"),
  T("delay_warning_time", "0h", 'h', 0, UNB, "send a delay warning after this time; 0 disables"),
  B("disable_vrfy_command", "no", "answer VRFY with 502; otherwise VRFY answers 252 without disclosing whether the user exists"),
  S("double_bounce_sender", "double-bounce", "sender of postmaster notices about undeliverable bounces; such notices that fail are discarded"),
  S("empty_address_local_login_sender_maps_lookup_key", "<>", "the local_login_sender_maps pattern that allows the null sender"),
  B("enable_original_recipient", "yes", "record the original recipient in queue files"),
  S("error_notice_recipient", "postmaster", "who receives error notices (notify_classes=software etc.)"),
  B("expand_owner_alias", "no", "deliver to owner-alias instead of alias for owner-listname"),
  TB("header_checks", "", "header content inspection tables (later work)"),
  S("header_from_format", "standard", "form of a From: header added with a full name: standard (name <address>) or obsolete (address (name))"),
  Z("header_size_limit", "102400", 1, UNB, "maximal size in bytes of one message header"),
  S("home_mailbox", "", "mailbox path relative to the home directory; Maildir/ for maildir"),
  S("html_directory", "no", "HTML documentation directory (informational)"),
  L("inet_interfaces", "all", "addresses smtpd listens on (port 25) when neither socket activation nor --listen gives listeners"),
  L("inet_protocols", "all", "IP protocols to use: all, ipv4, ipv6"),
  I("line_length_limit", "2048", 40, G_MAXINT32, "lines longer than this are split (content) or rejected (commands)"),
  TB("local_login_sender_maps", "static:*", "envelope senders each local login may use (patterns: *, <>, @domain, address)"),
  TB("local_recipient_maps", "unix:passwd.byname $alias_maps", "tables of valid local recipients; empty disables the check"),
  S("local_submission_socket", "/run/postern/local.sock", "the unix socket of smtpd's local listener, where sendmail submits"),
  S("local_transport", "local:$myhostname", "transport for mydestination recipients"),
  S("luser_relay", "", "where mail for unknown local recipients goes (later work)"),
  S("mail_name", "Postern", "the mail system name in banners and bounces"),
  S("mail_owner", "postern", "the unprivileged user that owns the queue and runs smtpd"),
  S("mail_spool_directory", "/var/mail", "directory with mbox files for local delivery"),
  S("mail_version", NULL, "the Postern version (computed)"),
  Z("mailbox_size_limit", "51200000", 0, UNB, "maximal size of a mailbox or maildir file; 0 is no limit"),
  S("mailq_path", "/usr/bin/mailq", "the mailq command (informational)"),
  S("manpage_directory", "/usr/share/man", "manual page directory (informational)"),
  I("maps_rbl_reject_code", "554", 400, 599, "reply code for reject_rbl_client and reject_rhsbl_*"),
  L("masquerade_domains", "", "domains whose subdomains are stripped from addresses (later work)"),
  L("masquerade_exceptions", "", "users not subject to masquerading (later work)"),
  T("maximal_backoff_time", "4000s", 's', 1, UNB, "longest retry interval for a deferred message"),
  T("maximal_queue_lifetime", "5d", 'd', 0, UNB, "how long a message is retried before it bounces"),
  Z("message_size_limit", "10240000", 0, UNB, "maximal message size in bytes; 0 is no limit"),
  T("minimal_backoff_time", "300s", 's', 1, UNB, "shortest retry interval for a deferred message"),
  L("mydestination", "$myhostname, localhost.$mydomain, localhost", "domains delivered locally"),
  S("mydomain", NULL, "the internet domain of this host (computed from myhostname)"),
  S("myhostname", NULL, "fully qualified host name (computed from gethostname())"),
  L("mynetworks", NULL, "trusted client networks allowed to relay (computed from mynetworks_style when not set)"),
  S("mynetworks_style", "host", "how mynetworks is computed when not set: host (loopback and this machine's addresses), subnet or class"),
  S("myorigin", "$myhostname", "domain appended to bare local parts of locally posted mail"),
  S("newaliases_path", "/usr/bin/newaliases", "the newaliases command (informational)"),
  L("notify_classes", "resource, software", "problem classes reported to postmaster"),
  B("owner_request_special", "yes", "treat owner-x and x-request specially"),
  L("parent_domain_matches_subdomains", "debug_peer_list, fast_flush_domains, mynetworks, permit_mx_backup_networks, qmqpd_authorized_clients, relay_domains, smtpd_access_maps", "where \"example.com\" also matches subdomains (else \".example.com\" does)"),
  I("pop3d_client_connection_limit", "50", 0, G_MAXINT32, "concurrent POP3 connections per client address; 0 is no limit"),
  I("pop3d_client_login_failure_limit", "10", 0, G_MAXINT32, "failed POP3 logins per client address and anvil_rate_time_unit after which its logins are refused; 0 is no limit"),
  S("pop3d_implementation", "", "the CAPA IMPLEMENTATION text; empty: not announced"),
  T("pop3d_login_timeout", "180s", 's', 1, UNB, "deadline for each command before the login"),
  L("pop3d_plaintext_auth_networks", "", "clients allowed USER/PASS and AUTH PLAIN without TLS even when TLS is available"),
  I("pop3d_process_limit", "1000", 1, G_MAXINT32, "concurrent POP3 connections in all (each has its own processes); over it a client is turned away"),
  S("pop3d_sasl_application_name", "pop3d", "Cyrus SASL application name: SASL reads NAME.conf"),
  T("pop3d_sasl_failure_delay", "1s", 's', 0, UNB, "a failed login is answered this much later, times the failures of the session so far"),
  I("pop3d_sasl_failure_limit", "3", 1, G_MAXINT32, "failed logins after which the session ends"),
  S("pop3d_sasl_local_domain", "", "realm for SASL user names"),
  T("pop3d_timeout", "600s", 's', 1, UNB, "deadline for each command after the login (RFC 1939: at least 10 minutes)"),
  S("pop3d_tls_CAfile", "$smtpd_tls_CAfile", "trusted CA file"),
  S("pop3d_tls_CApath", "$smtpd_tls_CApath", "trusted CA directory"),
  S("pop3d_tls_cert_file", "$smtpd_tls_cert_file", "server certificate (PEM)"),
  L("pop3d_tls_chain_files", "$smtpd_tls_chain_files", "server keys and certificate chains"),
  S("pop3d_tls_ciphers", "medium", "cipher grade for STLS"),
  L("pop3d_tls_exclude_ciphers", "", "ciphers to exclude"),
  S("pop3d_tls_key_file", "$smtpd_tls_key_file", "server private key (PEM)"),
  S("pop3d_tls_mandatory_ciphers", "medium", "cipher grade under pop3d_tls_security_level = encrypt"),
  L("pop3d_tls_mandatory_exclude_ciphers", "", "ciphers to exclude under encrypt"),
  L("pop3d_tls_mandatory_protocols", ">=TLSv1.2", "TLS protocols under encrypt"),
  L("pop3d_tls_protocols", ">=TLSv1.2", "TLS protocols for STLS"),
  S("pop3d_tls_security_level", "may", "POP3 TLS policy: none, may (STLS offered when a certificate is set), encrypt (login only after TLS)"),
  T("pop3d_tls_session_cache_timeout", "3600s", 's', 0, UNB, "lifetime of TLS session tickets"),
  L("propagate_unmatched_extensions", "canonical, virtual", "where address extensions are propagated (later work)"),
  I("qmgr_delivery_threads", "8", 1, 256, "concurrent deliveries in postern-qmgr"),
  S("queue_directory", "/var/spool/postern", "the mail queue directory"),
  T("queue_run_delay", "300s", 's', 1, UNB, "how often the deferred queue is scanned"),
  TB("rbl_reply_maps", "", "reply templates per DNSBL domain (default_rbl_reply syntax)"),
  S("readme_directory", "no", "README directory (informational)"),
  TB("recipient_canonical_maps", "", "recipient address rewriting (later work)"),
  S("recipient_delimiter", "", "characters that separate a local part from its extension"),
  I("reject_code", "554", 400, 599, "reply code for the reject restriction"),
  S("reject_tempfail_action", "defer_if_permit", "what a reject_* restriction does on a temporary DNS failure: defer_if_permit or defer"),
  L("relay_domains", "", "domains this host relays to (relay transport: later work)"),
  TB("relay_recipient_maps", "", "valid recipients in relay_domains; empty accepts any"),
  S("relay_transport", "relay", "transport for relay_domains"),
  S("relayhost", "", "default next-hop for non-local mail; empty means MX lookup"),
  S("sample_directory", "/etc/postern", "sample configuration directory (informational)"),
  TB("sender_canonical_maps", "", "sender address rewriting (later work)"),
  S("sendmail_fix_line_endings", "always", "how sendmail treats CR before LF in its input: always, strict or never strip it"),
  S("sendmail_path", "/usr/sbin/sendmail", "the sendmail command (informational)"),
  S("setgid_group", "postdrop", "Postfix's postdrop group; Postern has no setgid program (informational)"),
  T("smtp_connect_timeout", "30s", 's', 0, UNB, "SMTP client: time to set up a TCP connection"),
  T("smtp_data_done_timeout", "600s", 's', 1, UNB, "SMTP client: wait for the reply to the final dot"),
  T("smtp_data_init_timeout", "120s", 's', 1, UNB, "SMTP client: wait for the reply to DATA"),
  T("smtp_data_xfer_timeout", "180s", 's', 1, UNB, "SMTP client: time to send each chunk of the message"),
  S("smtp_helo_name", "$myhostname", "host name the SMTP client sends in EHLO/HELO"),
  T("smtp_helo_timeout", "300s", 's', 1, UNB, "SMTP client: wait for the greeting and the reply to EHLO/HELO"),
  T("smtp_mail_timeout", "300s", 's', 1, UNB, "SMTP client: wait for the reply to MAIL FROM"),
  T("smtp_quit_timeout", "300s", 's', 1, UNB, "SMTP client: wait for the reply to QUIT"),
  T("smtp_rcpt_timeout", "300s", 's', 1, UNB, "SMTP client: wait for the reply to RCPT TO"),
  B("smtp_sasl_auth_enable", "no", "SMTP client: authenticate (AUTH PLAIN or LOGIN) where smtp_sasl_password_maps has credentials"),
  TB("smtp_sasl_password_maps", "", "SMTP client credentials \"user:password\" by next hop ([host]:port as written, or host)"),
  L("smtp_sasl_security_options", "noplaintext, noanonymous", "SMTP client SASL restrictions: noplaintext keeps PLAIN and LOGIN to TLS sessions"),
  S("smtp_tls_CAfile", "", "SMTP client: trusted CAs for the verify and secure levels (else the system's)"),
  S("smtp_tls_CApath", "", "SMTP client: directory of trusted CAs for the verify and secure levels"),
  I("smtp_tls_loglevel", "0", 0, 4, "SMTP client TLS logging level (later work)"),
  L("smtp_tls_protocols", ">=TLSv1.2", "SMTP client TLS protocols"),
  S("smtp_tls_security_level", "", "SMTP client TLS policy: none, may (also what empty means in Postern), encrypt, verify, secure"),
  S("smtp_tls_session_cache_database", "", "SMTP client TLS session cache (later work)"),
  S("smtpd_banner", "$myhostname ESMTP $mail_name", "text after 220 in the SMTP greeting"),
  I("smtpd_client_auth_rate_limit", "0", 0, G_MAXINT32, "AUTH commands per client per anvil_rate_time_unit; 0 is no limit"),
  I("smtpd_client_connection_count_limit", "50", 0, G_MAXINT32, "concurrent connections per client; 0 is no limit"),
  L("smtpd_client_connection_limit_exceptions", "", "legacy name; when set it replaces $mynetworks in smtpd_client_event_limit_exceptions"),
  I("smtpd_client_connection_rate_limit", "0", 0, G_MAXINT32, "connections per client per anvil_rate_time_unit; 0 is no limit"),
  L("smtpd_client_event_limit_exceptions", "${smtpd_client_connection_limit_exceptions?{$smtpd_client_connection_limit_exceptions}:{$mynetworks}}", "clients exempt from the per-client limits"),
  I("smtpd_client_message_rate_limit", "0", 0, G_MAXINT32, "messages per client per anvil_rate_time_unit; 0 is no limit"),
  I("smtpd_client_recipient_rate_limit", "0", 0, G_MAXINT32, "recipients per client per anvil_rate_time_unit; 0 is no limit"),
  L("smtpd_client_restrictions", "", "restrictions at connect time"),
  I("smtpd_commit_threads", "8", 1, 256, "threads that fsync queue files (group commit)"),
  L("smtpd_data_restrictions", "", "restrictions at the DATA command"),
  B("smtpd_delay_reject", "yes", "apply client/helo/sender restrictions at RCPT TO"),
  L("smtpd_discard_ehlo_keywords", "", "EHLO keywords not to announce (and features then off: dsn, smtputf8, chunking, starttls, auth); silent-discard: do not log it"),
  L("smtpd_end_of_data_restrictions", "", "restrictions after the final dot"),
  B("smtpd_enforce_tls", "no", "obsolete: smtpd_tls_security_level = encrypt (used when that is empty)"),
  T("smtpd_error_sleep_time", "1s", 's', 0, UNB, "delay before each error reply once the soft limit is reached"),
  L("smtpd_etrn_restrictions", "", "restrictions at the ETRN command (later work)"),
  B("smtpd_forbid_bare_newline", "yes", "reject a message line that ends in bare LF or contains bare CR"),
  L("smtpd_forbid_bare_newline_exclusions", "", "clients exempt from smtpd_forbid_bare_newline"),
  I("smtpd_forbid_bare_newline_reject_code", "550", 400, 599, "reply code for bare newline violations"),
  I("smtpd_hard_error_limit", "20", 1, G_MAXINT32, "errors after which the session is closed"),
  B("smtpd_helo_required", "no", "require HELO or EHLO before MAIL FROM"),
  L("smtpd_helo_restrictions", "", "restrictions at HELO/EHLO"),
  I("smtpd_junk_command_limit", "100", 1, G_MAXINT32, "NOOP/VRFY/RSET/ETRN commands allowed before they count as errors"),
  I("smtpd_lookup_threads", "4", 1, 256, "threads for blocking table lookups"),
  I("smtpd_min_data_rate", "500", 0, G_MAXINT32, "minimal DATA rate in bytes/second under smtpd_per_record_deadline"),
  S("smtpd_null_access_lookup_key", "<>", "access table key for the null sender"),
  B("smtpd_peername_lookup", "yes", "look up the client's host name"),
  B("smtpd_per_record_deadline", "yes", "the timeout bounds each command line or DATA record, not each read"),
  I("smtpd_recipient_limit", "1000", 1, G_MAXINT32, "recipients per message"),
  I("smtpd_recipient_overshoot_limit", "1000", 1, G_MAXINT32, "recipients over the limit before they count as errors"),
  L("smtpd_recipient_restrictions", "", "restrictions at RCPT TO, after smtpd_relay_restrictions"),
  B("smtpd_reject_unlisted_recipient", "yes", "reject recipients not in the local/virtual recipient tables"),
  B("smtpd_reject_unlisted_sender", "no", "reject local senders not in the recipient tables"),
  L("smtpd_relay_restrictions", "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination", "relay control at RCPT TO"),
  L("smtpd_restriction_classes", "", "names of user-defined restriction classes"),
  S("smtpd_sasl_application_name", "smtpd", "Cyrus SASL application (config file) name"),
  B("smtpd_sasl_auth_enable", "no", "offer SMTP AUTH (RFC 4954) through Cyrus SASL"),
  B("smtpd_sasl_authenticated_header", "no", "show the SASL login in the Received: header"),
  L("smtpd_sasl_exceptions_networks", "", "clients that are not offered AUTH"),
  T("smtpd_sasl_failure_delay", "1s", 's', 0, UNB, "a failed AUTH is answered this much later, times the failures of the session so far (Postern)"),
  I("smtpd_sasl_failure_limit", "3", 1, G_MAXINT32, "failed AUTH commands after which the session ends (Postern)"),
  S("smtpd_sasl_local_domain", "", "realm for SASL user names"),
  S("smtpd_sasl_path", "smtpd", "Cyrus SASL application name: SASL reads PATH.conf"),
  I("smtpd_sasl_response_limit", "12288", 1, G_MAXINT32, "maximal length of one AUTH response line"),
  L("smtpd_sasl_security_options", "noanonymous", "SASL mechanism restrictions"),
  L("smtpd_sasl_tls_security_options", "$smtpd_sasl_security_options", "SASL mechanism restrictions under TLS"),
  S("smtpd_sasl_type", "cyrus", "SASL implementation"),
  TB("smtpd_sender_login_maps", "", "who may use which MAIL FROM address: address or @domain -> SASL logins"),
  L("smtpd_sender_restrictions", "", "restrictions at MAIL FROM"),
  I("smtpd_soft_error_limit", "10", 1, G_MAXINT32, "errors after which each reply is delayed by smtpd_error_sleep_time"),
  T("smtpd_starttls_timeout", "300s", 's', 1, UNB, "time limit for the TLS handshake (STARTTLS and smtps)"),
  T("smtpd_timeout", "300s", 's', 1, UNB, "deadline for the client's next command line or DATA record"),
  S("smtpd_tls_CAfile", "", "trusted CA file for client certificates"),
  S("smtpd_tls_CApath", "", "trusted CA directory for client certificates"),
  B("smtpd_tls_auth_only", "yes", "offer AUTH only after STARTTLS when TLS is configured"),
  S("smtpd_tls_cert_file", "", "server certificate (PEM)"),
  L("smtpd_tls_chain_files", "", "server keys and certificate chains"),
  S("smtpd_tls_ciphers", "medium", "cipher grade for opportunistic TLS"),
  L("smtpd_tls_exclude_ciphers", "", "ciphers to exclude"),
  S("smtpd_tls_key_file", "$smtpd_tls_cert_file", "server private key (PEM)"),
  I("smtpd_tls_loglevel", "0", 0, 4, "TLS logging level: not used; handshakes and failures are always logged"),
  S("smtpd_tls_mandatory_ciphers", "medium", "cipher grade for mandatory TLS"),
  L("smtpd_tls_mandatory_exclude_ciphers", "", "ciphers to exclude with mandatory TLS"),
  L("smtpd_tls_mandatory_protocols", ">=TLSv1.2", "TLS protocols with mandatory TLS"),
  L("smtpd_tls_protocols", ">=TLSv1.2", "TLS protocols with opportunistic TLS"),
  B("smtpd_tls_received_header", "no", "record TLS details in Received:"),
  S("smtpd_tls_security_level", "", "server TLS policy: none, may, encrypt"),
  S("smtpd_tls_session_cache_database", "", "server TLS session cache file: not used; sessions are cached in memory and by tickets"),
  T("smtpd_tls_session_cache_timeout", "3600s", 's', 0, UNB, "lifetime of cached TLS sessions"),
  B("smtpd_tls_wrappermode", "no", "TLS from the first byte (smtps)"),
  B("smtpd_use_tls", "no", "obsolete: smtpd_tls_security_level = may (used when that is empty)"),
  B("smtputf8_enable", "yes", "announce and accept SMTPUTF8 (RFC 6531): UTF-8 addresses in MAIL FROM:<...> SMTPUTF8 transactions; command lines must be UTF-8"),
  B("soft_bounce", "no", "turn permanent delivery failures into temporary ones"),
  B("strict_rfc821_envelopes", "no", "require <> around MAIL FROM/RCPT TO addresses"),
  B("strict_smtputf8", "yes", "accept a non-ASCII (UTF-8) MAIL FROM or RCPT TO address only in a transaction whose MAIL FROM had SMTPUTF8"),
  B("swap_bangpath", "no", "rewrite site!user into user@site"),
  S("syslog_name", "postern", "identifier in log lines"),
  TB("transport_maps", "", "per-destination transport and next-hop"),
  I("unknown_address_reject_code", "450", 400, 599, "reply code for reject_unknown_sender_domain / reject_unknown_recipient_domain"),
  S("unknown_address_tempfail_action", "$reject_tempfail_action", "reject_unknown_*_domain on a temporary DNS failure"),
  I("unknown_client_reject_code", "450", 400, 599, "reply code for reject_unknown_client_hostname / reject_unknown_reverse_client_hostname"),
  S("unknown_helo_hostname_tempfail_action", "$reject_tempfail_action", "reject_unknown_helo_hostname on a temporary DNS failure"),
  I("unknown_hostname_reject_code", "450", 400, 599, "reply code for reject_unknown_helo_hostname"),
  I("unknown_local_recipient_reject_code", "550", 400, 599, "reply code for unknown local recipients"),
  L("virtual_alias_domains", "$virtual_alias_maps", "domains whose every address is an alias"),
  TB("virtual_alias_maps", "", "address rewriting before delivery"),
  TB("virtual_gid_maps", "", "group id per virtual mailbox (later work)"),
  S("virtual_mailbox_base", "", "directory prefixed to virtual_mailbox_maps results"),
  L("virtual_mailbox_domains", "$virtual_mailbox_maps", "domains delivered to virtual mailboxes"),
  Z("virtual_mailbox_limit", "51200000", 0, UNB, "maximal size of a virtual mailbox; 0 is no limit"),
  TB("virtual_mailbox_maps", "", "mailbox path per virtual recipient"),
  I("virtual_minimum_uid", "100", 1, G_MAXINT32, "lowest uid virtual_uid_maps may return"),
  S("virtual_transport", "virtual", "transport for virtual_mailbox_domains"),
  TB("virtual_uid_maps", "", "user id per virtual mailbox (later work)"),
};

static int
param_compare(const void *key, const void *member)
{
  return strcmp(key, ((const ParamDef *) member)->name);
}

const ParamDef *
param_lookup(const char *name)
{
  return bsearch(name, param_defs, G_N_ELEMENTS(param_defs), sizeof param_defs[0],
                 param_compare);
}

const ParamDef *
param_table(gsize *n_params)
{
  if (n_params)
    *n_params = G_N_ELEMENTS(param_defs);
  return param_defs;
}

const char *
param_type_name(ParamType type)
{
  switch (type) {
  case PARAM_STR: return "string";
  case PARAM_BOOL: return "boolean";
  case PARAM_INT: return "integer";
  case PARAM_TIME: return "time";
  case PARAM_SIZE: return "size";
  case PARAM_LIST: return "list";
  case PARAM_TABLES: return "tables";
  case PARAM_TEMPLATE: return "template";
  }
  return "unknown";
}
