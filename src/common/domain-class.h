/* domain-class.h - the address class of a recipient domain, decided as
 * Postfix's trivial-rewrite resolver does (resolve.c): mydestination
 * first (local), then virtual_alias_domains, virtual_mailbox_domains,
 * relay_domains, else the default (remote) class.  smtpd (relay control,
 * recipient validation) and qmgr (delivery) ask the same question the
 * same way.
 *
 * mydestination and relay_domains are domain lists whose names cover
 * subdomains per parent_domain_matches_subdomains; the two virtual
 * lists match whole domain names only (Postfix string lists).  Built
 * once per configuration load, read-only afterwards: any thread may
 * resolve.
 */
#pragma once

#include <glib.h>

#include "config.h"
#include "domain-list.h"

typedef enum {
  DOMAIN_CLASS_LOCAL,     /* mydestination, or no domain at all */
  DOMAIN_CLASS_ALIAS,     /* virtual_alias_domains: every address must be an alias */
  DOMAIN_CLASS_VIRTUAL,   /* virtual_mailbox_domains */
  DOMAIN_CLASS_RELAY,     /* relay_domains */
  DOMAIN_CLASS_DEFAULT,   /* anywhere else */
} DomainClass;

typedef struct _DomainClasses DomainClasses;

/* Builds the four lists.  Never fails: a list that cannot be built (a
 * "/file/name" that cannot be read, a table that cannot be opened)
 * makes every resolution that reaches it a temporary failure, and its
 * error is kept for the daemon to log. */
DomainClasses *domain_classes_new(const Config *config);
void domain_classes_free(DomainClasses *dc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomainClasses, domain_classes_free)

/* Why lists could not be built, "parameter: reason" each; NULL-terminated. */
const char *const *domain_classes_errors(const DomainClasses *dc);

/* The class of domain (lower or mixed case, no "@"; "" is local).  The
 * lists are asked in order and only as far as needed.  FALSE with a
 * POSTERN_ERROR_TEMPORARY error naming the list when a list could not
 * answer: the caller defers, never guesses. */
gboolean domain_classes_resolve(const DomainClasses *dc, const char *domain, DomainClass *cls,
                                GError **error);

/* Only the first question: is domain in mydestination ("" is)? */
MatchResult domain_classes_local(const DomainClasses *dc, const char *domain, GError **error);
