/* smtpd-access.c - evaluates smtpd_*_restrictions lists as Postfix's
 * smtpd_check does: the built-in restrictions, restriction classes, and
 * check_{client,helo,sender,recipient}_access with access(5) key order
 * and actions.  Reply texts are Postfix's word for word.
 *
 * Runs in lookup-pool threads on a snapshot (SmtpdAccessCtx): it never
 * touches a session and never logs; what should be logged is collected
 * in ctx->events for the loop.
 */
#include <string.h>

#include "address.h"
#include "config.h"
#include "inet.h"
#include "smtpd-access-private.h"

#define ACCESS_MAX_RECURSION 100

/* ---- lookup keys ---- */

static gboolean
is_numeric_addr(const char *name)
{
  return g_hostname_is_ip_address(name);
}

static void
add_domain_keys(GPtrArray *keys, const char *lower, gboolean parent_style)
{
  if (*lower == '\0')
    return;
  g_ptr_array_add(keys, g_strdup(lower));
  if (is_numeric_addr(lower))
    return;   /* no subdomain magic for numerical host names */
  for (const char *dot = strchr(lower + 1, '.'); dot != NULL && dot[1] != '\0';
       dot = strchr(dot + 1, '.'))
    g_ptr_array_add(keys, g_strdup(parent_style ? dot + 1 : dot));
}

GPtrArray *
smtpd_access_keys_domain(const char *name, gboolean parent_style)
{
  GPtrArray *keys = g_ptr_array_new_with_free_func(g_free);
  g_autofree char *lower = g_ascii_strdown(name, -1);
  add_domain_keys(keys, lower, parent_style);
  return keys;
}

GPtrArray *
smtpd_access_keys_client(const char *name, const char *addr, gboolean parent_style)
{
  GPtrArray *keys = smtpd_access_keys_domain(name, parent_style);
  g_autofree char *a = g_ascii_strdown(addr, -1);
  char delim = strchr(a, ':') != NULL ? ':' : '.';
  /* As Postfix's split_at_right(): "2001:db8::1" -> "2001:db8:" -> ... */
  for (;;) {
    g_ptr_array_add(keys, g_strdup(a));
    char *cut = strrchr(a, delim);
    if (cut == NULL)
      break;
    *cut = '\0';
  }
  return keys;
}

GPtrArray *
smtpd_access_keys_mail(const char *addr, const char *delimiters, gboolean parent_style)
{
  GPtrArray *keys = g_ptr_array_new_with_free_func(g_free);
  g_autofree char *lower = g_utf8_strdown(addr, -1);
  const char *at = address_at_sign(lower);
  g_autofree char *local = at != NULL ? g_strndup(lower, at - lower) : g_strdup(lower);
  const char *domain = at != NULL ? at + 1 : "";
  g_autofree char *base = NULL;
  if (delimiters != NULL && *delimiters != '\0') {
    char *ext = NULL;
    base = address_strip_extension(local, delimiters, &ext);
    if (ext == NULL || strcmp(base, local) == 0)
      g_clear_pointer(&base, g_free);
    g_free(ext);
  }
  if (*domain != '\0') {
    g_ptr_array_add(keys, g_strdup_printf("%s@%s", local, domain));
    if (base != NULL)
      g_ptr_array_add(keys, g_strdup_printf("%s@%s", base, domain));
    add_domain_keys(keys, domain, parent_style);
  }
  g_ptr_array_add(keys, g_strdup_printf("%s@", local));
  if (base != NULL)
    g_ptr_array_add(keys, g_strdup_printf("%s@", base));
  return keys;
}

/* ---- evaluation ---- */

void
smtpd_access_ctx_clear(SmtpdAccessCtx *ctx)
{
  g_free(ctx->client_name);
  g_free(ctx->client_reverse_name);
  g_free(ctx->client_addr);
  g_free(ctx->namaddr);
  g_free(ctx->helo);
  g_free(ctx->sender);
  g_free(ctx->sender_orig);
  g_free(ctx->sasl_username);
  g_free(ctx->rcpt);
  g_free(ctx->rcpt_orig);
  g_free(ctx->reply);
  g_free(ctx->defer_if_permit);
  g_free(ctx->defer_if_reject);
  g_free(ctx->redirect);
  g_clear_pointer(&ctx->prepend, g_ptr_array_unref);
  g_clear_pointer(&ctx->bcc, g_ptr_array_unref);
  g_clear_pointer(&ctx->events, g_ptr_array_unref);
  memset(ctx, 0, sizeof *ctx);
}

/* Queues a line for the loop to log: action "warning" is a plain warning,
 * any other is a "NOQUEUE: action: CMD from ...: text" line. */
void
ctx_event(SmtpdAccessCtx *ctx, const char *action, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *text = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  if (ctx->events == NULL)
    ctx->events = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(ctx->events, g_strdup_printf("%s\t%s", action, text));
}

void
smtpd_access_ctx_warn(SmtpdAccessCtx *ctx, const char *text)
{
  ctx_event(ctx, "warning", "%s", text);
}

/* Sets the reply.  A 5xx after an earlier defer_if_reject becomes that
 * deferral (Postfix's smtpd_check_reject). */
SmtpdAccess
ctx_reject(SmtpdAccessCtx *ctx, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_free(ctx->reply);
  ctx->reply = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  if (ctx->warn_if_reject && !ctx->config_error) {
    /* warn_if_reject: log what would have been the reply, go on */
    ctx_event(ctx, "reject_warning", "%s", ctx->reply);
    g_clear_pointer(&ctx->reply, g_free);
    return SMTPD_ACCESS_DUNNO;
  }
  if (ctx->reply[0] == '5' && ctx->defer_if_reject != NULL) {
    g_free(ctx->reply);
    ctx->reply = g_steal_pointer(&ctx->defer_if_reject);
  }
  return SMTPD_ACCESS_REJECT;
}

void
smtpd_access_defer_if(SmtpdAccessCtx *ctx, gboolean if_permit, const char *fmt, ...)
{
  char **slot = if_permit ? &ctx->defer_if_permit : &ctx->defer_if_reject;
  gboolean warn = if_permit && ctx->warn_if_reject;
  if (*slot != NULL && !warn)
    return;   /* the first reason is kept, to minimize confusion */
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *reply = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  if (warn)   /* Postfix: under warn_if_reject, logged as the reject it would be */
    ctx_event(ctx, "reject_warning", "%s", reply);
  else
    *slot = g_steal_pointer(&reply);
}

SmtpdAccess
smtpd_access_finish(SmtpdAccessCtx *ctx, SmtpdAccess result)
{
  if (result == SMTPD_ACCESS_REJECT || ctx->defer_if_permit == NULL)
    return result;
  g_free(ctx->reply);
  ctx->reply = g_strdup(ctx->defer_if_permit);
  return SMTPD_ACCESS_REJECT;
}

SmtpdAccess
server_error(SmtpdAccessCtx *ctx)
{
  ctx->config_error = TRUE;   /* never just a warning (Postfix) */
  SmtpdAccess r = ctx_reject(ctx, "451 4.3.5 Server configuration error");
  ctx->config_error = FALSE;
  return r;
}

/* A reply "CODE [D.D.D] text" with Postfix's defaults: the enhanced code
 * from the text when it has one (its class digit made the reply's).
 * defer_if > 0 keeps it as a defer_if_permit, < 0 as a defer_if_reject. */
static SmtpdAccess
reply_with_text_if(SmtpdAccessCtx *ctx, int code, const char *def_dsn, const char *text,
                   const char *name, const char *what, int defer_if)
{
  char dsn[16];
  g_strlcpy(dsn, def_dsn, sizeof dsn);
  const char *t = text;
  if (g_ascii_isdigit(t[0]) && t[1] == '.') {
    gsize n = strspn(t, "0123456789.");
    if (n < sizeof dsn && n >= 5 && (t[n] == ' ' || t[n] == '\0')) {
      memcpy(dsn, t, n);
      dsn[n] = '\0';
      t += n;
      while (*t == ' ' || *t == '\t')
        t++;
    }
  }
  dsn[0] = '0' + code / 100;
  if (defer_if != 0) {
    smtpd_access_defer_if(ctx, defer_if > 0, "%d %s <%s>: %s rejected: %s", code, dsn, name,
                          what, *t != '\0' ? t : "Service unavailable");
    return SMTPD_ACCESS_DUNNO;
  }
  return ctx_reject(ctx, "%d %s <%s>: %s rejected: %s", code, dsn, name, what,
                    *t != '\0' ? t : "Access denied");
}

static SmtpdAccess
reply_with_text(SmtpdAccessCtx *ctx, int code, const char *def_dsn, const char *text,
                const char *name, const char *what)
{
  return reply_with_text_if(ctx, code, def_dsn, text, name, what, 0);
}

static SmtpdAccess eval_list(SmtpdAccessCtx *ctx, const char *const *list, const char *name,
                             const char *what, const char *table_for_errors);

static gboolean
is_all_digits(const char *s, gsize len)
{
  if (len == 0)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isdigit(s[i]))
      return FALSE;
  return TRUE;
}

/* Actions that change the message need one: with smtpd_delay_reject = no
 * the client and helo stages run outside any transaction, and skip them
 * (Postfix's not_in_client_helo). */
static gboolean
in_transaction(SmtpdAccessCtx *ctx, const char *table, gsize cmd_len, const char *action)
{
  if (ctx->sender != NULL)
    return TRUE;
  ctx_event(ctx, "warning",
            "access table %s: with smtpd_delay_reject=no, action %.*s is always skipped in "
            "Client host or Helo command restrictions", table, (int)cmd_len, action);
  return FALSE;
}

/* REDIRECT and BCC take a user@domain (Postfix checks for the "@"). */
static gboolean
mail_target_ok(SmtpdAccessCtx *ctx, const char *table, const char *name, const char *target)
{
  if (strchr(target, '@') != NULL)
    return TRUE;
  ctx_event(ctx, "warning", "access table %s entry \"%s\" requires user@domain target", table,
            name);
  return FALSE;
}

/* An access(5) value -> decision (Postfix's check_table_result). */
static SmtpdAccess
table_result(SmtpdAccessCtx *ctx, const char *table, const char *value, const char *name,
             const char *what)
{
  const SmtpdSettings *st = ctx->settings;
  gsize cmd_len = strcspn(value, " \t");
  const char *text = value + cmd_len;
  while (*text == ' ' || *text == '\t')
    text++;
#define IS(word) (cmd_len == strlen(word) && g_ascii_strncasecmp(value, word, cmd_len) == 0)

  if (IS("DUNNO"))
    return SMTPD_ACCESS_DUNNO;
  if (IS("REJECT"))
    return reply_with_text(ctx, (int)st->map_reject_code, "5.7.1", text, name, what);
  if (IS("DEFER"))
    return reply_with_text(ctx, (int)st->map_defer_code, "4.7.1", text, name, what);
  if (IS("DEFER_IF_PERMIT") || IS("DEFER_IF_REJECT"))
    return reply_with_text_if(ctx, (int)st->map_defer_code, "4.7.1", text, name, what,
                              IS("DEFER_IF_PERMIT") ? 1 : -1);
  if (IS("INFO") || IS("WARN")) {
    ctx_event(ctx, IS("WARN") ? "warn" : "info", "%s", text);
    return SMTPD_ACCESS_DUNNO;
  }
  if (IS("FILTER")) {
    /* Content filters need the SMTP client (a later issue). */
    ctx_event(ctx, "warning", "access table %s: action %.*s is not supported yet, ignoring",
              table, (int)cmd_len, value);
    return SMTPD_ACCESS_DUNNO;
  }
  if (IS("HOLD")) {
    if (!in_transaction(ctx, table, cmd_len, value) || ctx->hold)
      return SMTPD_ACCESS_DUNNO;   /* held already: nothing new to say */
    ctx_event(ctx, "hold", "<%s>: %s %s", name, what, *text ? text : "triggers HOLD action");
    ctx->hold = TRUE;
    return SMTPD_ACCESS_DUNNO;
  }
  if (IS("DISCARD")) {
    if (!in_transaction(ctx, table, cmd_len, value))
      return SMTPD_ACCESS_DUNNO;
    ctx_event(ctx, "discard", "<%s>: %s %s", name, what,
              *text ? text : "triggers DISCARD action");
    ctx->discard = TRUE;
    return SMTPD_ACCESS_PERMIT;
  }
  if (IS("REDIRECT")) {
    /* After the message is queued, every recipient goes to this address
     * instead (the last REDIRECT wins). */
    if (!in_transaction(ctx, table, cmd_len, value) || !mail_target_ok(ctx, table, name, text))
      return SMTPD_ACCESS_DUNNO;
    ctx_event(ctx, "redirect", "<%s>: %s triggers REDIRECT %s", name, what, text);
    g_free(ctx->redirect);
    ctx->redirect = g_strdup(text);
    return SMTPD_ACCESS_DUNNO;
  }
  if (IS("BCC")) {
    /* One more recipient, a copy of the message (each address once). */
    if (!in_transaction(ctx, table, cmd_len, value) || !mail_target_ok(ctx, table, name, text))
      return SMTPD_ACCESS_DUNNO;
    ctx_event(ctx, "bcc", "<%s>: %s triggers BCC %s", name, what, text);
    if (ctx->bcc == NULL)
      ctx->bcc = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(ctx->bcc, g_strdup(text));
    return SMTPD_ACCESS_DUNNO;
  }
  if (IS("PREPEND")) {
    if (!in_transaction(ctx, table, cmd_len, value))
      return SMTPD_ACCESS_DUNNO;
    if (ctx->stage == SMTPD_STAGE_END_OF_DATA) {
      /* The header is long written by then. */
      ctx_event(ctx, "warning",
                "access table %s: action PREPEND must be used before "
                "smtpd_end_of_data_restrictions", table);
      return SMTPD_ACCESS_DUNNO;
    }
    /* A header: "name: value" with a printable name. */
    gsize n = strcspn(text, ":");
    gboolean header = n > 0 && text[n] == ':';
    for (gsize i = 0; header && i < n; i++)
      header = (guchar)text[i] > 0x20 && (guchar)text[i] < 0x7f;
    if (!header) {
      ctx_event(ctx, "warning", "access table %s entry \"%s\" requires header: text", table,
                value);
      return SMTPD_ACCESS_DUNNO;
    }
    if (ctx->prepend == NULL)
      ctx->prepend = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(ctx->prepend, g_strdup(text));
    return SMTPD_ACCESS_DUNNO;
  }
  if (is_all_digits(value, strlen(value)))
    return SMTPD_ACCESS_PERMIT;   /* "some out-of-band authentication" time stamps */
  if (cmd_len == 3 && *text != '\0' && (value[0] == '4' || value[0] == '5') &&
      g_ascii_isdigit(value[1]) && g_ascii_isdigit(value[2])) {
    char def_dsn[] = "5.7.1";
    def_dsn[0] = value[0];
    return reply_with_text(ctx, atoi(value), def_dsn, text, name, what);
  }
  if (IS("OK") || IS("RELAY") || IS("PERMIT"))
    return SMTPD_ACCESS_PERMIT;
#undef IS
  if (strchr(value, ':') != NULL) {
    ctx_event(ctx, "warning", "access table %s has entry with lookup table: %s", table, value);
    return server_error(ctx);
  }
  /* Anything else is a restriction list (a class name, typically). */
  g_auto(GStrv) list = config_split_list(value);
  if (list[0] == NULL)
    return SMTPD_ACCESS_PERMIT;   /* empty right-hand side: OK, as in the dark ages */
  return eval_list(ctx, (const char *const *)list, name, what, table);
}

/* Looks the keys up in order; the first key found decides.  keys[0] and
 * full (when not NULL: the client address among the client keys) are
 * whole keys, the rest partial ones, which pattern tables never see. */
SmtpdAccess
check_access(SmtpdAccessCtx *ctx, const char *spec, GPtrArray *keys, const char *full,
             const char *name, const char *what)
{
  Table *table = g_hash_table_lookup(ctx->settings->access_tables, spec);
  if (table == NULL) {
    ctx_event(ctx, "warning", "%s: table could not be opened", spec);
    return server_error(ctx);
  }
  gboolean pattern = table_is_pattern(table);
  for (guint i = 0; i < keys->len; i++) {
    if (pattern && i > 0 && (full == NULL || strcmp(keys->pdata[i], full) != 0))
      continue;
    g_autofree char *value = NULL;
    g_autoptr(GError) error = NULL;
    TableResult r = table_lookup(table, keys->pdata[i], &value, &error);
    if (r == TABLE_FOUND)
      return table_result(ctx, spec, value, name, what);
    if (r == TABLE_TEMPFAIL) {
      /* A table that cannot answer now (file unreadable, database down)
       * is a temporary failure: the client retries, nothing is accepted
       * on a guess.  The reply is Postfix's for an access table lookup
       * problem (check_access: "451 4.3.5 Server configuration error"
       * as the table's answer). */
      ctx_event(ctx, "warning", "%s: table lookup problem (\"%s\": %s)", spec,
                (char *)keys->pdata[i], error != NULL ? error->message : "failed");
      return table_result(ctx, spec, "451 4.3.5 Server configuration error", name, what);
    }
  }
  return SMTPD_ACCESS_DUNNO;
}

static GPtrArray *
mail_keys(SmtpdAccessCtx *ctx, const char *addr)
{
  const SmtpdSettings *st = ctx->settings;
  if (*addr == '\0') {
    GPtrArray *keys = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(keys, g_strdup(st->null_access_key));
    return keys;
  }
  return smtpd_access_keys_mail(addr, st->recipient_delimiter, st->access_parent_style);
}

/* The local_recipient_maps check for an address in a local domain.
 * Key: the local part, unquoted and case-folded; with an extension
 * ("user+ext") first as is, then without it. */
static TableResult
local_rcpt_lookup(const SmtpdSettings *st, const char *addr, GError **error)
{
  if (st->local_recipient_maps == NULL) {
    if (st->local_recipient_maps_error == NULL)
      return TABLE_FOUND;
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "local_recipient_maps: %s",
                st->local_recipient_maps_error);
    return TABLE_TEMPFAIL;
  }
  const char *at = address_at_sign(addr);
  g_autofree char *local = at != NULL ? g_strndup(addr, at - addr) : g_strdup(addr);
  g_autofree char *unquoted = address_local_unquoted(local);
  g_autofree char *folded = g_utf8_strdown(unquoted, -1);
  g_autofree char *base = NULL;
  if (st->recipient_delimiter != NULL && *st->recipient_delimiter != '\0') {
    char *ext = NULL;
    base = address_strip_extension(folded, st->recipient_delimiter, &ext);
    g_free(ext);
  }
  const char *keys[] = { folded, base != NULL && strcmp(base, folded) != 0 ? base : NULL };
  TableResult r = TABLE_NOTFOUND;
  for (guint i = 0; i < G_N_ELEMENTS(keys) && keys[i] != NULL; i++) {
    g_autofree char *value = NULL;
    r = table_list_lookup(st->local_recipient_maps, keys[i], &value, error);
    if (r != TABLE_NOTFOUND)
      break;
  }
  return r;
}

/* First match in list of addr's virtual keys: "user@domain", the same
 * without extension, "user" (local domains only: user_keys), "@domain". */
static TableResult
virtual_maps_lookup(const SmtpdSettings *st, TableList *list, const char *addr,
                    gboolean user_keys, GError **error)
{
  const char *at = address_at_sign(addr);
  g_autofree char *local = at != NULL ? g_strndup(addr, at - addr) : g_strdup(addr);
  g_autofree char *unquoted = address_local_unquoted(local);
  g_autofree char *folded = g_ascii_strdown(unquoted, -1);
  g_autofree char *domain = address_domain(addr);
  g_autofree char *ext = NULL, *full = NULL, *full_base = NULL, *at_domain = NULL;
  g_autofree char *base = address_strip_extension(folded, st->recipient_delimiter, &ext);
  TableResult r = TABLE_NOTFOUND;

  full = g_strconcat(folded, "@", domain, NULL);
  full_base = ext != NULL ? g_strconcat(base, "@", domain, NULL) : NULL;
  at_domain = g_strconcat("@", domain, NULL);
  const char *keys[] = { full, full_base ? full_base : "", user_keys ? folded : "",
                         user_keys && ext ? base : "", at_domain };
  for (guint i = 0; i < G_N_ELEMENTS(keys) && r == TABLE_NOTFOUND; i++) {
    g_autofree char *value = NULL;
    if (*keys[i] != '\0')
      r = table_list_lookup_key(list, keys[i], i > 0, &value, error);
  }
  return r;
}

TableResult
smtpd_access_recipient_known(const SmtpdSettings *st, const char *addr, const char **table,
                             GError **error)
{
  g_autofree char *domain = address_domain(addr);
  DomainClass cls;

  *table = "local recipient table";
  if (!domain_classes_resolve(st->domains, domain, &cls, error))
    return TABLE_TEMPFAIL;
  if (cls == DOMAIN_CLASS_DEFAULT ||
      (cls == DOMAIN_CLASS_RELAY && config_list(st->config, "relay_recipient_maps")[0] == NULL))
    return TABLE_FOUND;
  if (st->virtual_maps_error != NULL) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "%s", st->virtual_maps_error);
    return TABLE_TEMPFAIL;
  }
  if (st->virtual_alias_maps != NULL && *domain != '\0') {
    TableResult r = virtual_maps_lookup(st, st->virtual_alias_maps, addr,
                                        cls == DOMAIN_CLASS_LOCAL, error);
    if (r != TABLE_NOTFOUND)
      return r;
  }
  switch (cls) {
  case DOMAIN_CLASS_LOCAL:
    return local_rcpt_lookup(st, addr, error);
  case DOMAIN_CLASS_ALIAS:
    *table = "virtual alias table";
    return TABLE_NOTFOUND;
  case DOMAIN_CLASS_RELAY:
    *table = "relay recipient table";
    return virtual_maps_lookup(st, st->relay_recipient_maps, addr, FALSE, error);
  default:
    *table = "virtual mailbox table";
    return st->virtual_mailbox_maps != NULL
               ? virtual_maps_lookup(st, st->virtual_mailbox_maps, addr, FALSE, error)
               : TABLE_NOTFOUND;
  }
}

/* A list or table that cannot answer now (file unreadable, database
 * down): the client retries, nothing is accepted on a guess (Postfix's
 * reject_dict_retry). */
SmtpdAccess
lookup_retry(SmtpdAccessCtx *ctx, const char *name, const GError *error)
{
  if (error != NULL)
    ctx_event(ctx, "warning", "%s", error->message);
  return ctx_reject(ctx, "451 4.3.0 <%s>: Temporary lookup failure", name);
}

/* reject_unlisted_recipient / reject_unlisted_sender. */
static SmtpdAccess
check_unlisted(SmtpdAccessCtx *ctx, const char *addr, const char *orig, const char *what,
               const char *dsn)
{
  const char *table = NULL;
  g_autoptr(GError) error = NULL;
  switch (smtpd_access_recipient_known(ctx->settings, addr, &table, &error)) {
  case TABLE_FOUND:
    return SMTPD_ACCESS_DUNNO;
  case TABLE_TEMPFAIL:
    return lookup_retry(ctx, orig, error);
  default:
    return ctx_reject(ctx, "550 %s <%s>: %s rejected: User unknown in %s",
                      dsn, orig, what, table);
  }
}

/* permit_auth_destination / reject_unauth_destination: mail for a
 * domain of ours or one we relay to (any class but the default). */
static SmtpdAccess
check_auth_destination(SmtpdAccessCtx *ctx, const char *r)
{
  DomainClass cls;
  g_autoptr(GError) error = NULL;
  gboolean permit = strcmp(r, "permit_auth_destination") == 0;

  if (!smtpd_policy_domain_class(ctx->settings, ctx->rcpt, &cls, &error))
    return lookup_retry(ctx, ctx->rcpt_orig, error);
  if (cls != DOMAIN_CLASS_DEFAULT)
    return permit ? SMTPD_ACCESS_PERMIT : SMTPD_ACCESS_DUNNO;
  if (permit)
    return SMTPD_ACCESS_DUNNO;
  return ctx_reject(ctx, "%s <%s>: Relay access denied", r[0] == 'r' ? "554 5.7.1" : "450 4.7.1",
                    ctx->rcpt_orig);
}

/* reject_sender_login_mismatch and its three parts (Postfix): an
 * authenticated client must own the sender (smtpd_sender_login_maps
 * lists its login), an unauthenticated one must not use a sender that
 * has an owner. */
static SmtpdAccess
check_login_mismatch(SmtpdAccessCtx *ctx, const char *r, const char *context)
{
  const SmtpdSettings *st = ctx->settings;
  g_autoptr(GError) error = NULL;
  gboolean owned = FALSE, all = strcmp(r, "reject_sender_login_mismatch") == 0;
  gboolean authenticated = all || strcmp(r, "reject_authenticated_sender_login_mismatch") == 0;
  gboolean known = strcmp(r, "reject_known_sender_login_mismatch") == 0;
  gboolean unauthenticated = all || known
                             || strcmp(r, "reject_unauthenticated_sender_login_mismatch") == 0;
  TableResult found;

  if (!authenticated && !known && !unauthenticated) {
    ctx_event(ctx, "warning", "unknown smtpd restriction \"%s\" in %s", r, context);
    return server_error(ctx);
  }
  if (ctx->sender == NULL || *ctx->sender == '\0')
    return SMTPD_ACCESS_DUNNO;
  if (st->sender_login_maps_error != NULL) {
    ctx_event(ctx, "warning", "smtpd_sender_login_maps: %s", st->sender_login_maps_error);
    return server_error(ctx);
  }
  found = smtpd_auth_sender_owner(st, ctx->sender, ctx->sasl_username, &owned, &error);
  if (found == TABLE_TEMPFAIL)
    return lookup_retry(ctx, ctx->sender_orig, error);
  if (ctx->sasl_username != NULL) {
    if ((authenticated && !owned) || (known && found == TABLE_FOUND && !owned))
      return ctx_reject(ctx, "553 5.7.1 <%s>: Sender address rejected: not owned by user %s",
                        ctx->sender_orig, ctx->sasl_username);
  } else if (unauthenticated && found == TABLE_FOUND) {
    return ctx_reject(ctx, "553 5.7.1 <%s>: Sender address rejected: not logged in",
                      ctx->sender_orig);
  }
  return SMTPD_ACCESS_DUNNO;
}

/* TRUE for a syntactically valid host name (a trailing dot allowed). */
static gboolean
helo_valid(const char *helo, gboolean *fqdn)
{
  g_autofree char *name = g_strdup(helo);
  gsize len = strlen(name);
  if (len > 1 && name[len - 1] == '.' && name[len - 2] != '.')
    name[len - 1] = '\0';
  gboolean valid = address_domain_is_valid(name);
  *fqdn = valid && (name[0] == '[' || strchr(name, '.') != NULL);
  return valid;
}

static gboolean
addr_fqdn(const char *addr)
{
  g_autofree char *domain = address_domain(addr);
  return *domain != '\0' && (domain[0] == '[' || strchr(domain, '.') != NULL);
}

/* Evaluates a restriction list: the first PERMIT or REJECT decides. */
static SmtpdAccess
eval_list(SmtpdAccessCtx *ctx, const char *const *list, const char *name, const char *what,
          const char *context)
{
  const SmtpdSettings *st = ctx->settings;
  if (++ctx->recursion > ACCESS_MAX_RECURSION) {
    ctx_event(ctx, "warning", "%s causes unreasonable recursion", context);
    ctx->recursion--;
    return server_error(ctx);
  }
  SmtpdAccess result = SMTPD_ACCESS_DUNNO;
  /* warn_if_reject covers the one restriction after it (a whole class
   * included); the loop's step puts the outer setting back. */
  gboolean warn_outer = ctx->warn_if_reject, warn_next = FALSE;
  for (const char *const *p = list; p != NULL && *p != NULL && result == SMTPD_ACCESS_DUNNO;
       p++, ctx->warn_if_reject = warn_outer) {
    const char *r = *p;
    const char *const *class_list;
    g_autoptr(GPtrArray) keys = NULL;
    const char *arg = p[1];

    if (warn_next)
      ctx->warn_if_reject = TRUE, warn_next = FALSE;
    if (strcmp(r, "warn_if_reject") == 0) {
      warn_next = TRUE;
      continue;
    }
    if (smtpd_access_dns(ctx, &p, name, what, &result))
      continue;
    if (g_str_has_prefix(r, "check_") && g_str_has_suffix(r, "_access")) {
      if (arg == NULL) {
        ctx_event(ctx, "warning", "restriction %s requires a table argument", r);
        result = server_error(ctx);
        break;
      }
      p++;
      if (strcmp(r, "check_client_access") == 0) {
        keys = smtpd_access_keys_client(ctx->client_name, ctx->client_addr,
                                        st->access_parent_style);
        g_autofree char *addr = g_ascii_strdown(ctx->client_addr, -1);
        result = check_access(ctx, arg, keys, addr, ctx->namaddr, "Client host");
      } else if (strcmp(r, "check_helo_access") == 0) {
        if (ctx->helo == NULL)
          continue;
        keys = smtpd_access_keys_domain(ctx->helo, st->access_parent_style);
        result = check_access(ctx, arg, keys, NULL, ctx->helo, "Helo command");
      } else if (strcmp(r, "check_sender_access") == 0) {
        if (ctx->sender == NULL)
          continue;
        keys = mail_keys(ctx, ctx->sender);
        result = check_access(ctx, arg, keys, NULL, ctx->sender_orig, "Sender address");
      } else if (strcmp(r, "check_recipient_access") == 0) {
        if (ctx->rcpt == NULL)
          continue;
        keys = mail_keys(ctx, ctx->rcpt);
        result = check_access(ctx, arg, keys, NULL, ctx->rcpt_orig, "Recipient address");
      } else {
        ctx_event(ctx, "warning", "unknown smtpd restriction \"%s\" in %s", r, context);
        result = server_error(ctx);
      }
    } else if (strcmp(r, "permit_mynetworks") == 0) {
      if (ctx->trusted)
        result = SMTPD_ACCESS_PERMIT;
      else if (ctx->trust_tempfail)   /* a mynetworks table could not answer (Postfix) */
        result = ctx_reject(ctx, "451 4.3.0 <%s>: Temporary lookup failure", name);
    } else if (strcmp(r, "permit_sasl_authenticated") == 0) {
      if (ctx->sasl_username != NULL)
        result = SMTPD_ACCESS_PERMIT;
    } else if (g_str_has_suffix(r, "sender_login_mismatch") && g_str_has_prefix(r, "reject_")) {
      result = check_login_mismatch(ctx, r, context);
    } else if (strcmp(r, "dunno") == 0) {
      continue;
    } else if (strcmp(r, "permit") == 0) {
      result = SMTPD_ACCESS_PERMIT;
    } else if (strcmp(r, "reject") == 0) {
      result = ctx_reject(ctx, "%d 5.7.1 <%s>: %s rejected: Access denied", (int)st->reject_code,
                          name, what);
    } else if (strcmp(r, "defer_if_permit") == 0 || strcmp(r, "defer_if_reject") == 0) {
      smtpd_access_defer_if(ctx, r[9] == 'p', "450 4.7.0 <%s>: %s rejected: %s requested", name,
                            what, r);
    } else if (strcmp(r, "defer") == 0) {
      result = ctx_reject(ctx, "%d 4.3.2 <%s>: %s rejected: Try again later", (int)st->defer_code,
                          name, what);
    } else if (strcmp(r, "reject_unauth_destination") == 0 ||
               strcmp(r, "defer_unauth_destination") == 0 ||
               strcmp(r, "permit_auth_destination") == 0) {
      if (ctx->rcpt != NULL)
        result = check_auth_destination(ctx, r);
    } else if (strcmp(r, "reject_unlisted_recipient") == 0) {
      if (ctx->rcpt != NULL) {
        ctx->rcpt_checked = TRUE;
        result = check_unlisted(ctx, ctx->rcpt, ctx->rcpt_orig, "Recipient address", "5.1.1");
      }
    } else if (strcmp(r, "reject_unlisted_sender") == 0) {
      if (ctx->sender != NULL && *ctx->sender != '\0')
        result = check_unlisted(ctx, ctx->sender, ctx->sender_orig, "Sender address", "5.1.0");
    } else if (strcmp(r, "reject_invalid_helo_hostname") == 0 ||
               strcmp(r, "reject_invalid_hostname") == 0) {
      gboolean fqdn;
      if (ctx->helo != NULL && !helo_valid(ctx->helo, &fqdn))
        result = ctx_reject(ctx, "501 5.5.2 <%s>: Helo command rejected: Invalid name",
                            ctx->helo);
    } else if (strcmp(r, "reject_non_fqdn_helo_hostname") == 0 ||
               strcmp(r, "reject_non_fqdn_hostname") == 0) {
      gboolean fqdn;
      if (ctx->helo != NULL && (!helo_valid(ctx->helo, &fqdn) || !fqdn))
        result = ctx_reject(
            ctx, "504 5.5.2 <%s>: Helo command rejected: need fully-qualified hostname",
            ctx->helo);
    } else if (strcmp(r, "reject_non_fqdn_sender") == 0) {
      if (ctx->sender != NULL && *ctx->sender != '\0' && !addr_fqdn(ctx->sender))
        result = ctx_reject(
            ctx, "504 5.5.2 <%s>: Sender address rejected: need fully-qualified address",
            ctx->sender_orig);
    } else if (strcmp(r, "reject_non_fqdn_recipient") == 0) {
      if (ctx->rcpt != NULL && !addr_fqdn(ctx->rcpt))
        result = ctx_reject(
            ctx, "504 5.5.2 <%s>: Recipient address rejected: need fully-qualified address",
            ctx->rcpt_orig);
    } else if (strcmp(r, "reject_unauth_pipelining") == 0) {
      if (ctx->ill_pipelining)
        result = ctx_reject(
            ctx, "503 5.5.0 <%s>: %s rejected: Improper use of SMTP command pipelining", name,
            what);
    } else if (st->restriction_classes != NULL &&
               (class_list = g_hash_table_lookup(st->restriction_classes, r)) != NULL) {
      result = eval_list(ctx, class_list, name, what, r);
    } else {
      ctx_event(ctx, "warning", "unknown smtpd restriction \"%s\" in %s", r, context);
      result = server_error(ctx);
    }
  }
  ctx->recursion--;
  return result;
}

static const char *const stage_params[SMTPD_N_STAGES] = {
  [SMTPD_STAGE_CLIENT] = "smtpd_client_restrictions",
  [SMTPD_STAGE_HELO] = "smtpd_helo_restrictions",
  [SMTPD_STAGE_SENDER] = "smtpd_sender_restrictions",
  [SMTPD_STAGE_RELAY] = "smtpd_relay_restrictions",
  [SMTPD_STAGE_RECIPIENT] = "smtpd_recipient_restrictions",
  [SMTPD_STAGE_DATA] = "smtpd_data_restrictions",
  [SMTPD_STAGE_END_OF_DATA] = "smtpd_end_of_data_restrictions",
};

SmtpdAccess
smtpd_access_eval_stage(SmtpdAccessCtx *ctx, SmtpdStage stage)
{
  const SmtpdSettings *st = ctx->settings;
  const char *const *list = NULL;
  const char *name = NULL, *what = NULL;
  switch (stage) {
  case SMTPD_STAGE_CLIENT:
    list = st->client_restrictions, name = ctx->namaddr, what = "Client host";
    break;
  case SMTPD_STAGE_HELO:
    list = st->helo_restrictions, name = ctx->helo, what = "Helo command";
    break;
  case SMTPD_STAGE_SENDER:
    list = st->sender_restrictions, name = ctx->sender_orig, what = "Sender address";
    break;
  case SMTPD_STAGE_RELAY:
  case SMTPD_STAGE_RECIPIENT:
    list = stage == SMTPD_STAGE_RELAY ? st->relay_restrictions : st->recipient_restrictions;
    name = ctx->rcpt_orig, what = "Recipient address";
    break;
  case SMTPD_STAGE_DATA:
    list = st->data_restrictions, name = "DATA", what = "Data command";
    break;
  case SMTPD_STAGE_END_OF_DATA:
    list = st->end_of_data_restrictions, name = "END-OF-DATA", what = "End-of-data";
    break;
  default:
    return SMTPD_ACCESS_DUNNO;
  }
  if (name == NULL || list == NULL || list[0] == NULL)
    return SMTPD_ACCESS_DUNNO;
  ctx->stage = stage;
  return eval_list(ctx, list, name, what, stage_params[stage]);
}
