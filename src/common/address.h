/* address.h - RFC 5321 mailbox syntax and address helpers.
 *
 * Addresses are kept in their external (RFC 5321) form: a local part
 * that needs quoting stays quoted.  The empty string is the null sender.
 * Nothing here does I/O.
 */
#pragma once

#include <glib.h>

#define ADDRESS_MAX 1024   /* longest address we accept (RFC: 256 path) */

/* Parses an SMTP path as it follows "MAIL FROM:" / "RCPT TO:" (after the
 * colon, leading white space already skipped): "<local@domain>",
 * "<@route,@route:local@domain>" (source route dropped), "<>" when
 * allow_null, and, when allow_bare, an address without angle brackets (a
 * common client error Postfix accepts).  On success *address receives the
 * mailbox (newly allocated, "" for <>) and *rest points just past the
 * path (at the ESMTP parameters, leading blanks not skipped).  Bytes over
 * 127 are accepted in the local part and in the domain's labels (RFC 6531
 * addresses); that they are UTF-8, and allowed, is the caller's check.
 * Errors: POSTERN_ERROR_SYNTAX with a message fit for a 501 reply text. */
gboolean address_parse_path(const char *text, gboolean allow_null, gboolean allow_bare,
                            char **address, const char **rest, GError **error);

/* Checks a whole mailbox "local@domain" (or "local" without domain when
 * allow_no_domain): dot-atom or quoted-string local part, domain name
 * or address literal [1.2.3.4] / [IPv6:...].  No CR, LF or NUL anywhere.
 * 8-bit bytes as for address_parse_path. */
gboolean address_is_valid(const char *address, gboolean allow_no_domain);

/* Position of the '@' separating local part and domain (the last one
 * outside a quoted string), or NULL. */
const char *address_at_sign(const char *address);

/* Domain (after '@'), lower-cased, newly allocated; "" if none. */
char *address_domain(const char *address);

/* Local part with quoting removed (e.g. "\"a b\"" -> "a b"). */
char *address_local_unquoted(const char *address);

/* Quotes a local part if it is not a dot-atom and joins it with domain
 * (domain may be NULL or ""). */
char *address_join(const char *local, const char *domain);

/* Splits "user+ext" at the first delimiter character from delimiters
 * (recipient_delimiter may list several); returns the base (newly
 * allocated) and sets *extension (may be NULL). */
char *address_strip_extension(const char *local, const char *delimiters, char **extension);

/* Host name syntax check (ASCII letters, digits, hyphens, dots; labels
 * <= 63; total <= 255) or address literal. */
gboolean address_domain_is_valid(const char *domain);

/* TRUE when domain matches one entry of a list (case-insensitive; no
 * subdomain matching). */
gboolean address_domain_in_list(const char *domain, const char *const *list);
