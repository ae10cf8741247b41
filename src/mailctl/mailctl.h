/* mailctl.h - what mailctl's subcommand groups share with its main.
 *
 * Each group (mailctl-table.c, mailctl-aliases.c: local files;
 * mailctl-status.c, mailctl-queue.c, mailctl-watch.c, mailctl-config.c:
 * the D-Bus API through mailctl-bus.c) takes the arguments after its name
 * and returns an exit status.  Messages go to stderr as "PROGRAM: ...".
 *
 * Exit status (mailctl(1)):
 *   0  success
 *   1  the request failed: access denied, no such message, a bad
 *      parameter or value, a table error; "table query": key not found
 *   2  usage errors; table and aliases commands: any error
 *   3  postern-qmgr is not running (no bus, or org.postern.Mail1 has no
 *      owner)
 */
#pragma once

#include <gio/gio.h>
#include <gio/gunixfdlist.h>

#define MAILCTL_EXIT_OK          0
#define MAILCTL_EXIT_NOTFOUND    1
#define MAILCTL_EXIT_FAILED      1
#define MAILCTL_EXIT_ERROR       2
#define MAILCTL_EXIT_USAGE       2
#define MAILCTL_EXIT_NOT_RUNNING 3

/* D-Bus calls that do not ask an agent wait this long. */
#define MAILCTL_CALL_TIMEOUT_MS (120 * 1000)

#define MAILCTL_IFACE_MANAGER "org.postern.Mail1.Manager"
#define MAILCTL_IFACE_QUEUE   "org.postern.Mail1.Queue"

typedef struct {
  const char *config_dir;   /* --config-dir, or NULL for $POSTERN_CONFIG_DIR / default */
  const char *alias_database; /* newaliases -oA: instead of alias_database, or NULL */
  const char *bus_address;  /* --bus-address */
  const char *host;         /* -H/--host */
  gboolean json;            /* --json */
  gboolean no_ask_password; /* --no-ask-password */
} MailctlOptions;

/* "mailctl table rebuild|query ..." */
int mailctl_table_main(const MailctlOptions *opts, int argc, char **argv);
/* "mailctl aliases rebuild" */
int mailctl_aliases_main(const MailctlOptions *opts, int argc, char **argv);
/* Rebuilds every hash:/cdb: table named by alias_database (newaliases). */
int mailctl_aliases_rebuild(const MailctlOptions *opts);

/* "mailctl status" */
int mailctl_status_main(const MailctlOptions *opts, int argc, char **argv);
/* "mailctl queue list|show|delete|hold|release|requeue|flush ..." */
int mailctl_queue_main(const MailctlOptions *opts, int argc, char **argv);
/* Prints the listing of filter (a{sv}, ListMessages' criteria) as
 * postqueue -p, or as JSON (mailctl-queue-list.c); an exit status. */
int mailctl_queue_list_print(const MailctlOptions *opts, GDBusConnection *bus, GVariant *filter,
                             gboolean json);
/* "mailctl watch" */
int mailctl_watch_main(const MailctlOptions *opts, int argc, char **argv);
/* "mailctl config get|list|set ...", "mailctl reload" */
int mailctl_config_main(const MailctlOptions *opts, int argc, char **argv);
int mailctl_reload_main(const MailctlOptions *opts, int argc, char **argv);
int mailctl_check_main(const MailctlOptions *opts, int argc, char **argv);

/* Prints "PROGRAM: MESSAGE" (mailctl or newaliases) to stderr and returns MAILCTL_EXIT_ERROR. */
int mailctl_fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* ---- mailctl-bus.c ---- */
/* The bus that opts names; NULL with the message printed (exit 3). */
GDBusConnection *mailctl_bus_connect(const MailctlOptions *opts);
/* Calls a method of org.postern.Mail1; NULL with the message printed
 * and *status set when it fails. */
GVariant *mailctl_bus_call(GDBusConnection *connection, const MailctlOptions *opts,
                           const char *interface, const char *method, GVariant *args,
                           const char *reply_type, int *status);
/* The same with the error left to the caller, and the file descriptors
 * of the reply in *out_fds (when not NULL). */
GVariant *mailctl_bus_call_full(GDBusConnection *connection, const MailctlOptions *opts,
                                const char *interface, const char *method, GVariant *args,
                                const char *reply_type, GUnixFDList **out_fds, GError **error);
/* Reads a property (no authorization needed). */
GVariant *mailctl_bus_get_property(GDBusConnection *connection, const char *interface,
                                   const char *name, int *status);
/* Prints what error means and returns the exit status. */
int mailctl_bus_error(const GError *error);

/* ---- mailctl-json.c ---- */
/* Appends value as JSON: dictionaries as objects, arrays and tuples as
 * arrays, numbers, booleans, strings (escaped). */
void mailctl_json_append(GString *out, GVariant *value);
/* Prints value as one line of JSON to stdout. */
void mailctl_json_print(GVariant *value);

/* ---- shared formatting ---- */
/* "Mon Jan  1 12:00:00" (local time) of microseconds since the epoch. */
void mailctl_format_time(char *buf, gsize len, guint64 usec, gboolean with_year);
