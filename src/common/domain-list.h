/* domain-list.h - Postfix domain match lists (mydestination,
 * relay_domains, virtual_alias_domains, virtual_mailbox_domains).
 *
 * Built once from a list parameter (entry syntax in match-list.h:
 * names, "!name", "/file/name", "type:table") and then matched many
 * times, from any thread.  Names compare case-insensitively; the first
 * entry that matches decides ("!" entries exclude).  How a name or a
 * table covers subdomains is the list's DomainMatchStyle.  A list
 * without tables never touches the table machinery.
 */
#pragma once

#include <glib.h>

#include "match-list.h"

typedef enum {
  /* Whole names only; a table is asked for the domain itself (Postfix's
   * string_list: virtual_alias_domains, virtual_mailbox_domains). */
  DOMAIN_MATCH_EXACT,
  /* ".example.com" matches its subdomains; a table is also asked for
   * ".sub.example.com"-style parents ".example.com", ".com". */
  DOMAIN_MATCH_DOT,
  /* "example.com" matches itself and its subdomains; a table is also
   * asked for "example.com", "com" (parameters listed in
   * parent_domain_matches_subdomains). */
  DOMAIN_MATCH_PARENT,
} DomainMatchStyle;

typedef struct _DomainList DomainList;

/* Builds the list (tables opened with table_open(), files read now).
 * Errors are POSTERN_ERROR_CONFIG and name the parameter:
 * "mydestination: open file /etc/postern/local-domains: No such file or
 * directory". */
DomainList *domain_list_new(const char *name, const char *const *entries,
                            DomainMatchStyle style, GError **error);
void domain_list_free(DomainList *list);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomainList, domain_list_free)

/* The parameter the list was built from. */
const char *domain_list_name(const DomainList *list);
/* TRUE when the list has no entries (a NULL list is empty). */
gboolean domain_list_is_empty(const DomainList *list);

/* Is domain (no "@") listed?  MATCH_TEMPFAIL sets a
 * POSTERN_ERROR_TEMPORARY error naming the parameter and the table. */
MatchResult domain_list_match(const DomainList *list, const char *domain, GError **error);
