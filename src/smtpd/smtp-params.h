/* smtp-params.h - pure parsing of ESMTP parameter values: RFC 3461
 * xtext and the DSN parameters (RET, ENVID, NOTIFY, ORCPT), RFC 6533
 * utf-8-addr-xtext for ORCPT=utf-8;..., and the UTF-8 checks that RFC
 * 6531 (SMTPUTF8) asks of an address.
 *
 * No sockets, no state, no logging; a value is either accepted (decoded,
 * allocated) or refused, and the caller picks the reply text.  Decoded
 * values go into queue file records, so nothing accepted here ever holds
 * a control character, CR, LF or NUL.  Unit-tested
 * (tests/unit/smtpd/test-smtp-params.c).
 */
#pragma once

#include <glib.h>

#include "queue-file.h"

/* RFC 3461 section 4.2: ENVID= is at most 100 characters (of xtext). */
#define SMTP_ENVID_MAX 100

/* Decodes RFC 3461 xtext strictly: characters 33..126 except "+" and
 * "=", and "+XX" with two upper-case hex digits.  The decoded value must
 * be printable ASCII (32..126): one that decodes to a control character,
 * CR, LF, NUL or a byte over 126 is refused.  FALSE for an empty value
 * or bad syntax; *out is set only on success. */
gboolean smtp_xtext_decode(const char *xtext, char **out);

/* RET=FULL|HDRS (case-insensitive). */
gboolean smtp_param_ret(const char *value, QueueRet *ret);

/* ENVID=<xtext> of at most SMTP_ENVID_MAX characters; *envid decoded. */
gboolean smtp_param_envid(const char *value, char **envid);

/* NOTIFY=NEVER or a comma list of SUCCESS, FAILURE, DELAY
 * (case-insensitive, non-empty items, NEVER alone). */
gboolean smtp_param_notify(const char *value, guint *notify);

/* ORCPT=addr-type;xtext.  addr-type is an atom (RFC 5322 atext);
 * "rfc822" (any case) is stored as "rfc822".  "utf-8" (RFC 6533) takes
 * utf-8-addr-xtext instead: printable ASCII but "+", "=" and "\", UTF-8
 * characters, and "\x{HEX}" for a code point (no control characters).
 * *orcpt is "type;decoded" as the queue file's "o" record keeps it. */
gboolean smtp_param_orcpt(const char *value, char **orcpt);

/* TRUE when s holds a byte over 127. */
gboolean smtp_has_8bit(const char *s);
