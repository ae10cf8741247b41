/* mailctl-queue.c - "mailctl queue": the mail queue over D-Bus
 * (org.postern.Mail1.Queue), as postqueue(1) and postsuper(1).
 *
 *   mailctl queue list [--json] [--queue Q] [--sender S] [--recipient R]
 *                      [--min-age T] [--max-age T] [--reason TEXT] [--limit N]
 *   mailctl queue show [--json] ID
 *   mailctl queue delete|hold|release|requeue ID...|ALL|-
 *   mailctl queue flush
 *
 * "list" prints postqueue -p's format (mailctl-queue-list.c, which also
 * fetches the listing).  The changing commands report like postsuper
 * ("mailctl: Deleted: 2 messages", nothing when none).
 */
#include "mailctl.h"
#include "config.h"

#include <stdio.h>
#include <string.h>

static const char mailctl_queue_usage[] =
  "usage: mailctl queue list [--json] [--queue QUEUE] [--sender TEXT] [--recipient TEXT]\n"
  "                          [--min-age TIME] [--max-age TIME] [--reason TEXT] [--limit N]\n"
  "       mailctl queue show [--json] ID\n"
  "       mailctl queue delete|hold|release|requeue ID...|ALL|-\n"
  "       mailctl queue flush\n";

static int
mailctl_queue_usage_error(const char *fmt, const char *arg)
{
  if (fmt)
    mailctl_fail(fmt, arg);
  fputs(mailctl_queue_usage, stderr);
  return MAILCTL_EXIT_USAGE;
}

/* ---------------------------------------------------------------- list */

static const char *
mailctl_lookup_str(GVariant *dict, const char *key, const char *fallback)
{
  const char *s;

  return g_variant_lookup(dict, key, "&s", &s) ? s : fallback;
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]; NULL when not this option. */
static const char *
mailctl_option_value(int argc, char **argv, int *i, const char *name, gboolean *missing)
{
  gsize len = strlen(name);

  if (strncmp(argv[*i], name, len) != 0)
    return NULL;
  if (argv[*i][len] == '=')
    return argv[*i] + len + 1;
  if (argv[*i][len] != '\0')
    return NULL;
  if (*i + 1 >= argc) {
    *missing = TRUE;
    return NULL;
  }
  return argv[++*i];
}

static int
mailctl_queue_list(const MailctlOptions *opts, int argc, char **argv)
{
  static const char *const text_keys[][2] = {
    { "--queue", "queue" }, { "--sender", "sender" }, { "--recipient", "recipient" },
    { "--reason", "reason" },
  };
  GVariantBuilder filter;
  gboolean json = opts->json;
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(GVariant) criteria = NULL;

  g_variant_builder_init(&filter, G_VARIANT_TYPE_VARDICT);
  for (int i = 0; i < argc; i++) {
    gboolean missing = FALSE, matched = FALSE;
    const char *v;

    if (strcmp(argv[i], "--json") == 0) {
      json = TRUE;
      continue;
    }
    for (guint k = 0; k < G_N_ELEMENTS(text_keys) && !matched; k++) {
      if ((v = mailctl_option_value(argc, argv, &i, text_keys[k][0], &missing)) != NULL) {
        g_variant_builder_add(&filter, "{sv}", text_keys[k][1], g_variant_new_string(v));
        matched = TRUE;
      }
    }
    if (!matched && !missing) {
      static const char *const age_keys[][2] = {
        { "--min-age", "min-age" }, { "--max-age", "max-age" }, { "--limit", "limit" },
      };
      for (guint k = 0; k < G_N_ELEMENTS(age_keys) && !matched && !missing; k++) {
        gint64 n;

        if ((v = mailctl_option_value(argc, argv, &i, age_keys[k][0], &missing)) == NULL)
          continue;
        if (k < 2 ? !config_parse_time(v, 's', &n) || n < 0 : !config_parse_int(v, &n) || n < 0) {
          g_variant_builder_clear(&filter);
          return mailctl_queue_usage_error(k < 2 ? "bad time \"%s\" (e.g. 90, 30m, 2h, 1d)"
                                                 : "bad number \"%s\"", v);
        }
        g_variant_builder_add(&filter, "{sv}", age_keys[k][1],
                              k < 2 ? g_variant_new_uint64((guint64) n)
                                    : g_variant_new_uint32((guint32) MIN(n, G_MAXUINT32)));
        matched = TRUE;
      }
    }
    if (!matched) {
      g_variant_builder_clear(&filter);
      return mailctl_queue_usage_error(missing ? "option %s needs a value" : "queue list: unknown "
                                       "argument \"%s\"", argv[i]);
    }
  }
  bus = mailctl_bus_connect(opts);
  if (bus == NULL) {
    g_variant_builder_clear(&filter);
    return MAILCTL_EXIT_NOT_RUNNING;
  }
  criteria = g_variant_ref_sink(g_variant_builder_end(&filter));
  return mailctl_queue_list_print(opts, bus, criteria, json);
}

/* ---------------------------------------------------------------- show */

static void
mailctl_queue_show_print(GVariant *m)
{
  static const char *const fields[][2] = {
    { "id", "Queue ID" }, { "queue", "Queue" }, { "client", "Client" }, { "helo", "HELO" },
    { "protocol", "Protocol" }, { "auth-user", "Login" }, { "redirect", "Redirect" },
    { "error", "Error" },
  };
  g_autofree const char **flags = NULL;
  g_autoptr(GVariant) rcpts = g_variant_lookup_value(m, "recipients", G_VARIANT_TYPE("aa{sv}"));
  g_autoptr(GVariant) headers = g_variant_lookup_value(m, "headers", G_VARIANT_TYPE("a(ss)"));
  guint64 t;
  guint32 attempts;
  char when[64];
  const char *s;

  for (guint i = 0; i < G_N_ELEMENTS(fields); i++)
    if (g_variant_lookup(m, fields[i][0], "&s", &s))
      printf("%-13s %s\n", fields[i][1], s);
  if (g_variant_lookup(m, "flags", "^a&s", &flags) && flags[0]) {
    g_autofree char *joined = g_strjoinv(", ", (char **) flags);
    printf("%-13s %s\n", "Flags", joined);
  }
  if (g_variant_lookup(m, "arrival-time", "t", &t)) {
    mailctl_format_time(when, sizeof when, t, TRUE);
    printf("%-13s %s\n", "Arrival", when);
  }
  if (g_variant_lookup(m, "size", "t", &t))
    printf("%-13s %" G_GUINT64_FORMAT "\n", "Size", t);
  if (g_variant_lookup(m, "sender", "&s", &s))
    printf("%-13s <%s>\n", "Sender", s);
  if (g_variant_lookup(m, "attempts", "u", &attempts))
    printf("%-13s %u\n", "Attempts", attempts);
  if (g_variant_lookup(m, "next-attempt", "t", &t)) {
    mailctl_format_time(when, sizeof when, t, TRUE);
    printf("%-13s %s\n", "Next attempt", when);
  }
  if (rcpts) {
    GVariantIter iter;
    GVariant *r;

    printf("Recipients:\n");
    g_variant_iter_init(&iter, rcpts);
    while ((r = g_variant_iter_next_value(&iter)) != NULL) {
      const char *orig = mailctl_lookup_str(r, "original-address", NULL);
      const char *why = mailctl_lookup_str(r, "reason", NULL);

      printf("  <%s>%s%s%s %s%s%s%s\n", mailctl_lookup_str(r, "address", ""),
             orig ? " (was <" : "", orig ? orig : "", orig ? ">)" : "",
             mailctl_lookup_str(r, "state", ""), why ? " (" : "", why ? why : "", why ? ")" : "");
      g_variant_unref(r);
    }
  }
  if (headers) {
    GVariantIter iter;
    const char *name, *value;

    printf("Headers:\n");
    g_variant_iter_init(&iter, headers);
    while (g_variant_iter_next(&iter, "(&s&s)", &name, &value))
      printf("  %s: %s\n", name, value);
  }
}

static int
mailctl_queue_show(const MailctlOptions *opts, int argc, char **argv)
{
  gboolean json = opts->json;
  const char *id = NULL;
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) message = NULL;
  int status;

  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0)
      json = TRUE;
    else if (id == NULL && argv[i][0] != '-')
      id = argv[i];
    else
      return mailctl_queue_usage_error("queue show: unexpected argument \"%s\"", argv[i]);
  }
  if (id == NULL)
    return mailctl_queue_usage_error("queue show: which message?%s", "");
  bus = mailctl_bus_connect(opts);
  if (bus == NULL)
    return MAILCTL_EXIT_NOT_RUNNING;
  reply = mailctl_bus_call(bus, opts, MAILCTL_IFACE_QUEUE, "GetMessage", g_variant_new("(s)", id),
                           "(a{sv})", &status);
  if (reply == NULL)
    return status;
  message = g_variant_get_child_value(reply, 0);
  if (json)
    mailctl_json_print(message);
  else
    mailctl_queue_show_print(message);
  return fflush(stdout) == 0 ? MAILCTL_EXIT_OK : MAILCTL_EXIT_FAILED;
}

/* ---------------------------------------------------------------- changes */

static const struct {
  const char *command;
  const char *method;
  const char *report;     /* postsuper's wording */
} mailctl_queue_ops[] = {
  { "delete", "DeleteMessages", "Deleted" },
  { "hold", "HoldMessages", "Placed on hold" },
  { "release", "ReleaseMessages", "Released from hold" },
  { "requeue", "RequeueMessages", "Requeued" },
};

/* Queue ids from stdin, one per line ("-", as postsuper). */
static void
mailctl_queue_read_ids(GPtrArray *ids)
{
  char line[256];

  while (fgets(line, sizeof line, stdin) != NULL) {
    g_strstrip(line);
    /* postqueue -p marks (* active, ! held) are dropped, as tr -d '*!' would. */
    g_strdelimit(line, "*!", ' ');
    g_strstrip(line);
    if (line[0])
      g_ptr_array_add(ids, g_strdup(line));
  }
}

static int
mailctl_queue_change(const MailctlOptions *opts, guint op, int argc, char **argv)
{
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree const char **done = NULL;
  int status;
  guint n;

  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "-") == 0)
      mailctl_queue_read_ids(ids);
    else if (argv[i][0] == '-')
      return mailctl_queue_usage_error("queue: unknown option \"%s\"", argv[i]);
    else
      g_ptr_array_add(ids, g_strdup(argv[i]));
  }
  if (ids->len == 0) {
    if (argc > 0)
      return MAILCTL_EXIT_OK;   /* "-" with nothing on stdin */
    return mailctl_queue_usage_error("queue %s: which messages? (ids, ALL or -)",
                                     mailctl_queue_ops[op].command);
  }
  g_ptr_array_add(ids, NULL);
  bus = mailctl_bus_connect(opts);
  if (bus == NULL)
    return MAILCTL_EXIT_NOT_RUNNING;
  reply = mailctl_bus_call(bus, opts, MAILCTL_IFACE_QUEUE, mailctl_queue_ops[op].method,
                           g_variant_new("(^as)", (char **) ids->pdata), "(as)", &status);
  if (reply == NULL)
    return status;
  g_variant_get(reply, "(^a&s)", &done);
  n = g_strv_length((char **) done);
  if (opts->json) {
    g_autoptr(GVariant) list = g_variant_get_child_value(reply, 0);
    mailctl_json_print(list);
  }
  if (n > 0)
    fprintf(stderr, "mailctl: %s: %u message%s\n", mailctl_queue_ops[op].report, n,
            n > 1 ? "s" : "");
  return MAILCTL_EXIT_OK;
}

static int
mailctl_queue_flush(const MailctlOptions *opts, int argc, char **argv)
{
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(GVariant) reply = NULL;
  int status;

  if (argc > 0)
    return mailctl_queue_usage_error("queue flush: unexpected argument \"%s\"", argv[0]);
  bus = mailctl_bus_connect(opts);
  if (bus == NULL)
    return MAILCTL_EXIT_NOT_RUNNING;
  reply = mailctl_bus_call(bus, opts, MAILCTL_IFACE_QUEUE, "Flush", NULL, "()", &status);
  return reply ? MAILCTL_EXIT_OK : status;
}

int
mailctl_queue_main(const MailctlOptions *opts, int argc, char **argv)
{
  if (argc == 0)
    return mailctl_queue_usage_error(NULL, NULL);
  if (strcmp(argv[0], "list") == 0)
    return mailctl_queue_list(opts, argc - 1, argv + 1);
  if (strcmp(argv[0], "show") == 0)
    return mailctl_queue_show(opts, argc - 1, argv + 1);
  if (strcmp(argv[0], "flush") == 0)
    return mailctl_queue_flush(opts, argc - 1, argv + 1);
  for (guint i = 0; i < G_N_ELEMENTS(mailctl_queue_ops); i++)
    if (strcmp(argv[0], mailctl_queue_ops[i].command) == 0)
      return mailctl_queue_change(opts, i, argc - 1, argv + 1);
  return mailctl_queue_usage_error("queue: unknown command \"%s\"", argv[0]);
}
