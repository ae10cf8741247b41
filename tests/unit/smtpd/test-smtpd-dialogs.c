/* test-smtpd-dialogs.c - golden SMTP dialogs replayed against a real
 * session object over a socketpair (no network): dialogs/NAME.in is what
 * the client sends, dialogs/NAME.out what the server must answer.
 *
 * .in syntax: each line is sent with CRLF; "\n", "\r" and "\\" inside a
 * line are a bare LF, a bare CR and a backslash; a line ending in "\c"
 * is sent without line end.  "# " lines are comments.  Directives:
 *   #! peer ADDR        client address (default 192.0.2.10, not in mynetworks)
 *   #! local            the client comes over the local (unix) listener
 *   #! set NAME=VALUE   a main.cf override (-o)
 *   #! bytewise         send the input one byte at a time
 *   #! wait SECONDS     keep the connection open this long after sending
 * .out: the server's replies with CRLF shown as LF; queue IDs read "QID".
 * Every dialog also checks that each "queued as" reply has a committed
 * queue file and that no temp file is left behind.
 * POSTERN_DIALOG_UPDATE=1 rewrites the .out files (review the diff!).
 */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "log.h"
#include "smtpd.h"

static char *dialog_dir;

typedef struct {
  GString *input;
  GPtrArray *overrides;
  char *peer;
  gboolean local, bytewise;
  double wait;
} Dialog;

/* Unescapes one .in line into d->input. */
static void
dialog_add_line(Dialog *d, const char *line)
{
  gboolean eol = TRUE;
  for (const char *p = line; *p != '\0'; p++) {
    if (*p == '\\' && p[1] != '\0') {
      p++;
      if (*p == 'n')
        g_string_append_c(d->input, '\n');
      else if (*p == 'r')
        g_string_append_c(d->input, '\r');
      else if (*p == 'c' && p[1] == '\0')
        eol = FALSE;
      else
        g_string_append_c(d->input, *p);
    } else {
      g_string_append_c(d->input, *p);
    }
  }
  if (eol)
    g_string_append(d->input, "\r\n");
}

static void
dialog_parse(Dialog *d, const char *text)
{
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  guint n = g_strv_length(lines);
  if (n > 0 && *lines[n - 1] == '\0')
    n--;   /* the file's final newline */
  for (guint i = 0; i < n; i++) {
    const char *l = lines[i];
    if (g_str_has_prefix(l, "#! peer "))
      d->peer = g_strdup(l + 8);
    else if (strcmp(l, "#! local") == 0)
      d->local = TRUE;
    else if (strcmp(l, "#! bytewise") == 0)
      d->bytewise = TRUE;
    else if (g_str_has_prefix(l, "#! set "))
      g_ptr_array_add(d->overrides, g_strdup(l + 7));
    else if (g_str_has_prefix(l, "#! wait "))
      d->wait = g_ascii_strtod(l + 8, NULL);
    else if (g_str_has_prefix(l, "# ") || strcmp(l, "#") == 0)
      continue;
    else
      dialog_add_line(d, l);
  }
}

/* Counts committed queue files and temp files in incoming/. */
static void
count_queue(const char *queue_dir, guint *committed, guint *temp)
{
  g_autofree char *incoming = g_build_filename(queue_dir, "incoming", NULL);
  g_autoptr(GDir) dir = g_dir_open(incoming, 0, NULL);
  const char *name;
  *committed = *temp = 0;
  while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
    if (name[0] == '.')
      (*temp)++;
    else
      (*committed)++;
  }
}

/* Replaces the id after "queued as " with QID. */
static char *
normalize_output(const char *text)
{
  g_autoptr(GRegex) re = g_regex_new("queued as [0-9A-Za-z]+", 0, 0, NULL);
  g_autofree char *lf = NULL;
  g_auto(GStrv) parts = g_strsplit(text, "\r\n", -1);
  lf = g_strjoinv("\n", parts);
  return g_regex_replace_literal(re, lf, -1, 0, "queued as QID", 0, NULL);
}

static void
run_dialog(gconstpointer data)
{
  const char *name = data;
  g_autofree char *in_path = g_strdup_printf("%s/%s.in", dialog_dir, name);
  g_autofree char *out_path = g_strdup_printf("%s/%s.out", dialog_dir, name);
  g_autofree char *text = NULL;
  g_assert_true(g_file_get_contents(in_path, &text, NULL, NULL));

  Dialog d = { g_string_new(NULL), g_ptr_array_new_with_free_func(g_free), NULL, FALSE, FALSE, 0 };
  dialog_parse(&d, text);

  /* A private configuration and queue. */
  g_autofree char *tmp = g_dir_make_tmp("smtpd-dialog-XXXXXX", NULL);
  g_autofree char *queue = g_build_filename(tmp, "queue", NULL);
  g_autofree char *users = g_build_filename(tmp, "users", NULL);
  g_autofree char *maincf = g_build_filename(tmp, "main.cf", NULL);
  g_assert_true(g_file_set_contents(users, "alice x\nhadoop x\npostmaster x\n", -1, NULL));
  g_autofree char *cf = g_strdup_printf(
      "myhostname = mx.example.com\n"
      "mydomain = example.com\n"
      "myorigin = $mydomain\n"
      "mydestination = $myhostname, localhost, $mydomain\n"
      "mynetworks = 127.0.0.0/8\n"
      "queue_directory = %s\n"
      "local_recipient_maps = texthash:%s\n"
      "smtpd_peername_lookup = no\n"
      "message_size_limit = 2000\n"
      "smtpd_recipient_limit = 3\n"
      "smtpd_error_sleep_time = 0\n",
      queue, users);
  g_assert_true(g_file_set_contents(maincf, cf, -1, NULL));
  g_ptr_array_add(d.overrides, NULL);

  g_autoptr(GError) error = NULL;
  SmtpdSettings *settings = smtpd_settings_load(tmp, (const char *const *)d.overrides->pdata,
                                                &error);
  g_assert_no_error(error);
  g_assert_true(queue_dirs_ensure(queue, (uid_t)-1, (gid_t)-1, &error));

  sd_event *event = NULL;
  g_assert_cmpint(sd_event_new(&event), >=, 0);
  SmtpdServer *server = smtpd_server_new(event, settings, &error);
  g_assert_no_error(error);

  int sv[2];
  g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), ==, 0);
  struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(40000) };
  inet_pton(AF_INET, d.peer != NULL ? d.peer : "192.0.2.10", &peer.sin_addr);
  smtpd_session_new(server, sv[0], d.local ? SMTPD_LISTENER_LOCAL : SMTPD_LISTENER_SMTP,
                    (struct sockaddr *)&peer, sizeof peer);

  /* Send (all at once or bytewise) while running the loop; collect the
   * output until the server closes or the time is up. */
  GString *output = g_string_new(NULL);
  gsize sent = 0;
  gint64 end = g_get_monotonic_time() + (gint64)((d.wait + 5) * G_USEC_PER_SEC);
  gint64 quiet_end = 0;
  gboolean closed = FALSE;
  while (!closed && g_get_monotonic_time() < end) {
    if (sent < d.input->len) {
      gsize n = d.bytewise ? 1 : d.input->len - sent;
      ssize_t w = write(sv[1], d.input->str + sent, n);
      if (w > 0)
        sent += w;
      if (sent == d.input->len)
        quiet_end = g_get_monotonic_time() + (gint64)((d.wait + 1) * G_USEC_PER_SEC);
    }
    sd_event_run(event, 2000);
    char buf[4096];
    ssize_t r;
    while ((r = read(sv[1], buf, sizeof buf)) > 0)
      g_string_append_len(output, buf, r);
    if (r == 0 || (r < 0 && errno != EAGAIN))
      closed = TRUE;
    if (quiet_end != 0 && g_get_monotonic_time() > quiet_end && server->n_sessions > 0 &&
        d.wait == 0)
      break;   /* the dialog did not end the session: stop after a quiet second */
  }
  close(sv[1]);
  for (int i = 0; i < 50 && server->n_sessions > 0; i++)
    sd_event_run(event, 10000);

  g_autofree char *got = normalize_output(output->str);
  if (g_getenv("POSTERN_DIALOG_UPDATE") != NULL) {
    g_assert_true(g_file_set_contents(out_path, got, -1, NULL));
  } else {
    g_autofree char *want = NULL;
    g_assert_true(g_file_get_contents(out_path, &want, NULL, NULL));
    g_assert_cmpstr(got, ==, want);
  }

  guint committed, temp;
  count_queue(queue, &committed, &temp);
  guint queued = 0;
  for (const char *p = got; (p = strstr(p, "queued as QID")) != NULL; p++)
    queued++;
  g_assert_cmpuint(committed, ==, queued);

  smtpd_server_free(server);
  sd_event_unref(event);
  count_queue(queue, &committed, &temp);
  g_assert_cmpuint(temp, ==, 0);
  smtpd_settings_unref(settings);

  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmp);
  g_assert_cmpint(system(cmd), ==, 0);
  g_string_free(output, TRUE);
  g_string_free(d.input, TRUE);
  g_ptr_array_unref(d.overrides);
  g_free(d.peer);
}

static gint
compare_names(gconstpointer a, gconstpointer b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  log_init("test-smtpd-dialogs", TRUE);
  dialog_dir = g_strdup(g_getenv("POSTERN_DIALOG_DIR") ? g_getenv("POSTERN_DIALOG_DIR")
                                                       : DIALOG_DIR);
  g_autoptr(GDir) dir = g_dir_open(dialog_dir, 0, NULL);
  g_assert_nonnull(dir);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  const char *entry;
  while ((entry = g_dir_read_name(dir)) != NULL) {
    if (g_str_has_suffix(entry, ".in"))
      g_ptr_array_add(names, g_strndup(entry, strlen(entry) - 3));
  }
  g_ptr_array_sort(names, compare_names);
  for (guint i = 0; i < names->len; i++) {
    g_autofree char *path = g_strdup_printf("/smtpd-dialogs/%s", (char *)names->pdata[i]);
    g_test_add_data_func(path, names->pdata[i], run_dialog);
  }
  return g_test_run();
}
