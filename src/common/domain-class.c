/* domain-class.c - builds the domain lists of the four address classes
 * from a Config and resolves a domain to its class in Postfix's order.
 * A list that failed to build is kept as its error message, so that
 * resolution through it is a temporary failure rather than a wrong
 * class.  Never logs.
 */
#include "domain-class.h"

#include <string.h>

enum { LIST_MYDEST, LIST_ALIAS, LIST_VIRTUAL, LIST_RELAY, N_LISTS };

static const char *const list_params[N_LISTS] = {
  [LIST_MYDEST] = "mydestination",
  [LIST_ALIAS] = "virtual_alias_domains",
  [LIST_VIRTUAL] = "virtual_mailbox_domains",
  [LIST_RELAY] = "relay_domains",
};

static const DomainClass list_classes[N_LISTS] = {
  [LIST_MYDEST] = DOMAIN_CLASS_LOCAL,
  [LIST_ALIAS] = DOMAIN_CLASS_ALIAS,
  [LIST_VIRTUAL] = DOMAIN_CLASS_VIRTUAL,
  [LIST_RELAY] = DOMAIN_CLASS_RELAY,
};

struct _DomainClasses {
  DomainList *lists[N_LISTS];   /* NULL: empty, or failed (error set) */
  char *errors[N_LISTS];        /* "parameter: why" of a list that failed */
  const char *error_list[N_LISTS + 1];
};

DomainClasses *
domain_classes_new(const Config *config)
{
  DomainClasses *dc = g_new0(DomainClasses, 1);
  const char *const *parent = config_list(config, "parent_domain_matches_subdomains");
  guint n_errors = 0;

  for (guint i = 0; i < N_LISTS; i++) {
    const char *const *entries = config_list(config, list_params[i]);
    DomainMatchStyle style;
    g_autoptr(GError) error = NULL;

    if (entries == NULL || entries[0] == NULL)
      continue;
    if (i == LIST_ALIAS || i == LIST_VIRTUAL)
      style = DOMAIN_MATCH_EXACT;
    else
      style = g_strv_contains(parent, list_params[i]) ? DOMAIN_MATCH_PARENT : DOMAIN_MATCH_DOT;
    dc->lists[i] = domain_list_new(list_params[i], entries, style, &error);
    if (dc->lists[i] == NULL) {
      dc->errors[i] = g_strdup(error->message);
      dc->error_list[n_errors++] = dc->errors[i];
    }
  }
  return dc;
}

void
domain_classes_free(DomainClasses *dc)
{
  if (dc == NULL)
    return;
  for (guint i = 0; i < N_LISTS; i++) {
    domain_list_free(dc->lists[i]);
    g_free(dc->errors[i]);
  }
  g_free(dc);
}

const char *const *
domain_classes_errors(const DomainClasses *dc)
{
  return dc->error_list;
}

/* One list: a failed list answers with its build error. */
static MatchResult
domain_classes_match(const DomainClasses *dc, guint i, const char *domain, GError **error)
{
  if (dc->errors[i] != NULL) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "%s", dc->errors[i]);
    return MATCH_TEMPFAIL;
  }
  return domain_list_match(dc->lists[i], domain, error);
}

MatchResult
domain_classes_local(const DomainClasses *dc, const char *domain, GError **error)
{
  if (domain == NULL || *domain == '\0')
    return MATCH_FOUND;
  return domain_classes_match(dc, LIST_MYDEST, domain, error);
}

gboolean
domain_classes_resolve(const DomainClasses *dc, const char *domain, DomainClass *cls,
                       GError **error)
{
  if (domain == NULL || *domain == '\0') {
    *cls = DOMAIN_CLASS_LOCAL;
    return TRUE;
  }
  for (guint i = 0; i < N_LISTS; i++) {
    switch (domain_classes_match(dc, i, domain, error)) {
    case MATCH_FOUND:
      *cls = list_classes[i];
      return TRUE;
    case MATCH_TEMPFAIL:
      return FALSE;
    case MATCH_NONE:
      break;
    }
  }
  *cls = DOMAIN_CLASS_DEFAULT;
  return TRUE;
}
