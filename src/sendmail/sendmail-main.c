/* sendmail-main.c - the sendmail(1), mailq(1) and newaliases(1)
 * commands: one binary, the mode chosen by the name it runs under and by
 * -bm/-bs/-bp/-bi, options parsed as Postfix's sendmail does (getopt
 * with Postfix's option list; -q handled by hand).  Never set-uid or
 * set-gid: smtpd learns who submits from the socket's credentials.
 *
 *   sendmail [-t] [-i] [-f sender] [-F name] [-bm|-bs] [recipient ...]
 *   mailq [ARGS...]      = mailctl queue list ARGS...
 *   newaliases           = mailctl aliases rebuild
 *
 * Errors go to stderr as "sendmail: fatal: ..." with a sysexits status.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "mailctl.h"
#include "sendmail.h"

typedef enum {
  MODE_ENQUEUE,
  MODE_NEWALIAS,
  MODE_MAILQ,
  MODE_USER,      /* -bs */
  MODE_FLUSHQ,    /* -q */
  MODE_IGNORE,    /* -bh, -bH */
} Mode;

static const char *progname = "sendmail";

static void G_GNUC_NORETURN G_GNUC_PRINTF(2, 3)
fatal(int status, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: fatal: ", progname);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(status);
}

static void G_GNUC_PRINTF(1, 2)
warn(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: warning: ", progname);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* Postfix's dsn_notify_mask(): "never", or some of success, failure, delay. */
static gboolean
dsn_notify_valid(const char *text)
{
  g_auto(GStrv) words = g_strsplit_set(text, ", \t", -1);
  gboolean any = FALSE, never = FALSE;
  for (char **w = words; *w != NULL; w++) {
    if (**w == '\0')
      continue;
    if (g_ascii_strcasecmp(*w, "never") == 0)
      never = TRUE;
    else if (g_ascii_strcasecmp(*w, "success") != 0 && g_ascii_strcasecmp(*w, "failure") != 0 &&
             g_ascii_strcasecmp(*w, "delay") != 0)
      return FALSE;
    any = TRUE;
  }
  return any && !(never && g_strv_length(words) > 1);
}

/* Replaces this process with mailctl: next to the name we were run as,
 * next to this binary, or from $PATH. */
static void G_GNUC_NORETURN
exec_mailctl(const char *argv0, const char *config_dir, const char *const *args)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  g_ptr_array_add(argv, "mailctl");
  if (config_dir != NULL) {
    g_ptr_array_add(argv, "--config-dir");
    g_ptr_array_add(argv, (char *) config_dir);
  }
  for (const char *const *a = args; *a != NULL; a++)
    g_ptr_array_add(argv, (char *) *a);
  g_ptr_array_add(argv, NULL);

  g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
  const char *dirs[] = { strchr(argv0, '/') != NULL ? argv0 : NULL, self };
  for (guint i = 0; i < G_N_ELEMENTS(dirs); i++) {
    if (dirs[i] == NULL)
      continue;
    g_autofree char *dir = g_path_get_dirname(dirs[i]);
    g_autofree char *path = g_build_filename(dir, "mailctl", NULL);
    if (access(path, X_OK) == 0) {
      execv(path, (char **) argv->pdata);
      fatal(EX_UNAVAILABLE, "cannot execute %s: %s", path, g_strerror(errno));
    }
  }
  execvp("mailctl", (char **) argv->pdata);
  fatal(EX_UNAVAILABLE, "cannot execute mailctl: %s", g_strerror(errno));
}

/* The login name of the real uid (Postfix's username()). */
static char *
login_name(uid_t uid)
{
  struct passwd *pw = getpwuid(uid);
  if (pw == NULL)
    fatal(EX_OSERR, "no login name found for user ID %lu", (unsigned long) uid);
  return g_strdup(pw->pw_name);
}

/* The full name: -F, else $NAME, else the passwd GECOS field up to its
 * first comma, "&" standing for the capitalized login (Postfix's
 * fullname()).  NULL when there is none. */
static char *
full_name(const char *opt, uid_t uid)
{
  if (opt != NULL)
    return *opt != '\0' ? g_strdup(opt) : NULL;
  const char *env = getenv("NAME");
  if (env != NULL)
    return *env != '\0' ? g_strdup(env) : NULL;
  struct passwd *pw = getpwuid(uid);
  if (pw == NULL || pw->pw_gecos == NULL)
    return NULL;
  GString *out = g_string_new(NULL);
  for (const char *p = pw->pw_gecos; *p != '\0' && *p != ','; p++) {
    if (*p == '&') {
      g_string_append_c(out, g_ascii_toupper(pw->pw_name[0]));
      g_string_append(out, pw->pw_name[0] != '\0' ? pw->pw_name + 1 : "");
    } else {
      g_string_append_c(out, *p);
    }
  }
  if (out->len == 0) {
    g_string_free(out, TRUE);
    return NULL;
  }
  return g_string_free(out, FALSE);
}

/* "[Resent-]From: name <sender>" as cleanup would write it, or NULL. */
static char *
from_header(const Config *config, const char *prefix, const char *sender, const char *name)
{
  if (name == NULL || *sender == '\0')
    return NULL;   /* Postfix: From: without a name; smtpd adds that one */
  g_autofree char *addr = strchr(sender, '@') == NULL && config_bool(config, "append_at_myorigin")
      ? g_strdup_printf("%s@%s", sender, config_str(config, "myorigin"))
      : g_strdup(sender);
  if (strcmp(config_str(config, "header_from_format"), "obsolete") == 0) {
    g_autofree char *comment = sendmail_addr_comment(name);
    return g_strdup_printf("%sFrom: %s %s", prefix, addr, comment);
  }
  g_autofree char *phrase = sendmail_addr_phrase(name);
  return g_strdup_printf("%sFrom: %s <%s>", prefix, phrase, addr);
}

int
main(int argc, char **argv)
{
  Mode mode = MODE_ENQUEUE;
  const char *config_dir = NULL, *sender = NULL, *fname = NULL, *body_type = NULL;
  const char *alias_database = NULL;
  g_autofree char *config_dir_buf = NULL, *alias_buf = NULL;
  gboolean extract = FALSE, dot_ends = TRUE, qtime = FALSE;
  int verbose = 0, c;

  signal(SIGPIPE, SIG_IGN);
  const char *argv0 = argv[0];
  const char *base = strrchr(argv0, '/') != NULL ? strrchr(argv0, '/') + 1 : argv0;
  argv[0] = (char *) base;   /* getopt's messages name the command, as Postfix's */
  if (strcmp(base, "mailq") == 0) {
    /* mailq: the queue listing, arguments passed on unchanged. */
    progname = "mailq";
    g_autoptr(GPtrArray) args = g_ptr_array_new();
    g_ptr_array_add(args, "queue");
    g_ptr_array_add(args, "list");
    for (int i = 1; i < argc; i++)
      g_ptr_array_add(args, argv[i]);
    g_ptr_array_add(args, NULL);
    exec_mailctl(argv0, NULL, (const char *const *) args->pdata);
  }
  if (strcmp(base, "newaliases") == 0) {
    progname = "newaliases";
    mode = MODE_NEWALIAS;
  }
  g_set_prgname(progname);

  /* Postfix's option list; "+": options end at the first operand. */
  opterr = 1;
  while (optind < argc) {
    if (strcmp(argv[optind], "-q") == 0) {   /* not getopt compatible */
      mode = MODE_FLUSHQ;
      optind++;
      continue;
    }
    if ((c = getopt(argc, argv, "+A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q:tvx")) == -1)
      break;
    switch (c) {
    default:
      break;   /* -A, -G, -L, -O, -R, -U, -c, -e, -h, -m, -p, -x: ignored, as Postfix */
    case 'n':
      fatal(EX_USAGE, "-%c option not supported", c);
    case 'B':
      if (strcmp(optarg, "8BITMIME") != 0 && strcmp(optarg, "7BIT") != 0)
        fatal(EX_USAGE, "-B option needs 8BITMIME or 7BIT");
      body_type = optarg;
      break;
    case 'C':
      /* the configuration directory, or its main.cf (Postfix) */
      g_clear_pointer(&config_dir_buf, g_free);
      {
        g_autofree char *b = g_path_get_basename(optarg);
        config_dir = strcmp(b, "main.cf") == 0 ? (config_dir_buf = g_path_get_dirname(optarg))
                                               : optarg;
      }
      break;
    case 'F':
      fname = optarg;
      break;
    case 'I':
      mode = MODE_NEWALIAS;
      break;
    case 'N':
      if (!dsn_notify_valid(optarg))
        warn("bad -N option value -- ignored");
      break;
    case 'V':
      if (strlen(optarg) > 100)
        warn("too long -V option value -- ignored");
      else
        for (const char *p = optarg; *p != '\0'; p++)
          if (!g_ascii_isprint(*p)) {
            warn("bad syntax in -V option value -- ignored");
            break;
          }
      break;
    case 'X':
      fatal(EX_USAGE, "unsupported: -%c%c", c, *optarg);
    case 'b':
      switch (*optarg) {
      case 'h':
      case 'H':
        mode = MODE_IGNORE;
        break;
      case 'i':
        mode = MODE_NEWALIAS;
        break;
      case 'm':
        mode = MODE_ENQUEUE;
        break;
      case 'p':
        mode = MODE_MAILQ;
        break;
      case 's':
        mode = MODE_USER;
        break;
      default:
        fatal(EX_USAGE, "unsupported: -%c%c", c, *optarg);
      }
      break;
    case 'f':
    case 'r':
      sender = optarg;
      break;
    case 'i':
      dot_ends = FALSE;
      break;
    case 'o':
      switch (*optarg) {
      case 'A':
        if (optarg[1] == '\0')
          fatal(EX_USAGE, "-oA requires pathname");
        /* without a type, Postfix's default_database_type (hash) */
        g_clear_pointer(&alias_buf, g_free);
        alias_database = strchr(optarg + 1, ':') != NULL
            ? optarg + 1 : (alias_buf = g_strconcat("hash:", optarg + 1, NULL));
        break;
      case 'i':
        dot_ends = FALSE;
        break;
      default:
        break;   /* -o7, -o8, -om, -oX...: ignored, as Postfix */
      }
      break;
    case 'q':
      if (g_ascii_isdigit(optarg[0]))
        qtime = TRUE;
      else
        fatal(EX_USAGE, "-q%c is not implemented", optarg[0]);
      break;
    case 't':
      extract = TRUE;
      break;
    case 'v':
      verbose++;
      break;
    case '?':
      fatal(EX_USAGE, "usage: %s [options]", progname);
    }
  }
  char **operands = argv + optind;

  if (extract && mode != MODE_ENQUEUE)
    fatal(EX_USAGE, "-t can be used only in delivery mode");
  if (qtime)
    return EX_OK;   /* -q<interval>: the queue manager has its own schedule */
  if (mode == MODE_IGNORE)
    return EX_OK;

  /* Configuration: -C, else $POSTERN_CONFIG_DIR, else /etc/postern.  As
   * Postfix's sendmail, a configuration that cannot be read is a
   * temporary failure. */
  if (config_dir != NULL && !g_file_test(config_dir, G_FILE_TEST_IS_DIR))
    fatal(EX_TEMPFAIL, "open %s/main.cf: %s", config_dir, g_strerror(ENOENT));
  g_autoptr(GError) error = NULL;
  g_autoptr(Config) config = config_load(config_dir_resolve(config_dir), NULL, &error);
  if (config == NULL)
    fatal(EX_TEMPFAIL, "%s", error->message);

  switch (mode) {
  case MODE_MAILQ: {
    if (*operands != NULL)
      fatal(EX_USAGE, "display queue mode requires no recipient");
    const char *args[] = { "queue", "list", NULL };
    exec_mailctl(argv0, config_dir, args);
  }
  case MODE_FLUSHQ: {
    if (*operands != NULL)
      fatal(EX_USAGE, "flush queue mode requires no recipient");
    const char *args[] = { "queue", "flush", NULL };
    exec_mailctl(argv0, config_dir, args);
  }
  case MODE_NEWALIAS: {
    if (*operands != NULL)
      fatal(EX_USAGE, "alias initialization mode requires no recipient");
    MailctlOptions opts = { .config_dir = config_dir, .alias_database = alias_database };
    return mailctl_aliases_rebuild(&opts);
  }
  case MODE_USER: {
    if (*operands != NULL)
      fatal(EX_USAGE, "stand-alone mode requires no recipient");
    g_autofree char *message = NULL;
    int status = sendmail_relay(config_str(config, "local_submission_socket"), verbose > 0,
                                &message);
    if (message != NULL)
      fatal(status, "%s", message);
    return status;
  }
  default:
    break;
  }

  /* MODE_ENQUEUE */
  SendmailCrMode cr_mode;
  const char *fix = config_str(config, "sendmail_fix_line_endings");
  if (!sendmail_cr_mode_parse(fix, &cr_mode))
    fatal(EX_USAGE, "invalid sendmail_fix_line_endings value: %s", fix);
  uid_t uid = getuid();
  g_autofree char *login = login_name(uid);
  g_autofree char *envelope = NULL;
  if (sender != NULL) {
    /* The first address of -f, as an address list ("Name <a@b>" works). */
    g_autoptr(GPtrArray) list = sendmail_addr_list(sender);
    if (list->len > 1)
      warn("-f option specified malformed sender: %s", sender);
    envelope = g_strdup(list->len > 0 ? list->pdata[0] : "");
  } else {
    envelope = g_strdup(login);
  }
  g_autofree char *name = full_name(fname, uid);
  g_autofree char *ident = g_strdup_printf("%s(%lu)", envelope, (unsigned long) uid);
  SendmailSubmit sub = {
    .socket_path = config_str(config, "local_submission_socket"),
    .sender = envelope,
    .ident = ident,
    .recipients = operands,
    .extract = extract,
    .dot_ends = dot_ends,
    .verbose = verbose > 0,
    .cr_mode = cr_mode,
    .header_limit = config_size(config, "header_size_limit"),
    .body_type = body_type,
    .from_header = from_header(config, "", envelope, name),
    .resent_from_header = from_header(config, "Resent-", envelope, name),
  };
  g_autofree char *message = NULL;
  int status = sendmail_submit(&sub, stdin, &message);
  g_free(sub.from_header);
  g_free(sub.resent_from_header);
  if (status != EX_OK)
    fatal(status, "%s", message);
  return EX_OK;
}
