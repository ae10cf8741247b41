/* pop3-maildir.c - a maildir as a POP3 drop (pop3-maildir.h).
 *
 * Order: by the delivery time at the start of each name (seconds, then
 * the rest of the name), which is the order mail arrived in, new/ and cur/
 * together.  UIDL: the base name (up to ":2,"), which stays the same when
 * a message moves from new/ to cur/ or gains flags; a name that is not a
 * valid UIDL (longer than 70 octets, or with octets outside 0x21-0x7E,
 * RFC 1939 7) is replaced by the SHA-256 of the base name, cut to 64 hex
 * digits.  Files are opened with O_NOFOLLOW: a symlink in a maildir is
 * never followed to somebody else's file.
 */
#include "pop3-maildir.h"

#include "config.h"
#include "pop3-proto.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define POP3_READ_CHUNK (64 * 1024)

void
pop3_message_free(gpointer data)
{
  Pop3Message *msg = data;

  g_free(msg->name);
  g_free(msg->uidl);
  g_free(msg);
}

void
pop3_maildir_free(Pop3Maildir *m)
{
  if (m == NULL)
    return;
  if (m->dir_fd >= 0)
    close(m->dir_fd);
  g_ptr_array_unref(m->messages);
  g_free(m->path);
  g_free(m);
}

static char *
pop3_uidl_of(const char *name)
{
  gsize len = strcspn(name, ":");
  gboolean ok = len > 0 && len <= 70;

  for (gsize i = 0; ok && i < len; i++)
    ok = (guchar) name[i] >= 0x21 && (guchar) name[i] <= 0x7e;
  if (ok)
    return g_strndup(name, len);
  {
    g_autofree char *digest = g_compute_checksum_for_data(G_CHECKSUM_SHA256,
                                                          (const guchar *) name, len);
    return g_strndup(digest, 64);
  }
}

/* ",W=1234" in the name (before ":2,"): the size with CRLF line ends. */
static gboolean
pop3_size_from_name(const char *name, guint64 *octets)
{
  gsize base = strcspn(name, ":");
  const char *w = g_strstr_len(name, (gssize) base, ",W=");
  char *end;
  guint64 v;

  if (w == NULL)
    return FALSE;
  v = g_ascii_strtoull(w + 3, &end, 10);
  if (end == w + 3 || (end < name + base && *end != ','))
    return FALSE;
  *octets = v;
  return TRUE;
}

static gboolean
pop3_size_from_file(int fd, guint64 *octets, GError **error)
{
  g_autofree char *buf = g_malloc(POP3_READ_CHUNK);
  Pop3Encoder e;
  ssize_t n;

  pop3_encoder_init(&e, G_MAXUINT);
  while ((n = read(fd, buf, POP3_READ_CHUNK)) > 0)
    pop3_encoder_feed(&e, buf, (gsize) n, NULL);
  if (n < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "read: %s", g_strerror(errno));
    return FALSE;
  }
  pop3_encoder_finish(&e, NULL);
  *octets = e.octets;
  return TRUE;
}

static gint
pop3_message_compare(gconstpointer a, gconstpointer b)
{
  const Pop3Message *x = *(const Pop3Message *const *) a, *y = *(const Pop3Message *const *) b;
  guint64 tx = g_ascii_strtoull(x->name, NULL, 10), ty = g_ascii_strtoull(y->name, NULL, 10);

  if (tx != ty)
    return tx < ty ? -1 : 1;
  return strcmp(x->uidl, y->uidl);
}

static gboolean
pop3_maildir_scan(Pop3Maildir *m, const char *sub, GError **error)
{
  int fd = openat(m->dir_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  DIR *d;
  struct dirent *de;

  if (fd < 0) {
    if (errno == ENOENT)
      return TRUE;
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "%s/%s: %s", m->path, sub,
                g_strerror(errno));
    return FALSE;
  }
  d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "%s/%s: %s", m->path, sub,
                g_strerror(errno));
    return FALSE;
  }
  while ((de = readdir(d)) != NULL) {
    Pop3Message *msg;
    struct stat st;

    if (de->d_name[0] == '.')
      continue;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
      continue;   /* gone meanwhile, or not a message */
    msg = g_new0(Pop3Message, 1);
    msg->name = g_strdup(de->d_name);
    msg->uidl = pop3_uidl_of(de->d_name);
    msg->in_new = strcmp(sub, "new") == 0;
    if (!pop3_size_from_name(de->d_name, &msg->octets)) {
      int mfd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      gboolean ok = mfd >= 0 && pop3_size_from_file(mfd, &msg->octets, NULL);

      if (mfd >= 0)
        close(mfd);
      if (!ok) {
        pop3_message_free(msg);
        continue;
      }
    }
    g_ptr_array_add(m->messages, msg);
  }
  closedir(d);
  return TRUE;
}

Pop3Maildir *
pop3_maildir_open(const char *path, GError **error)
{
  Pop3Maildir *m = g_new0(Pop3Maildir, 1);

  m->path = g_strdup(path);
  m->messages = g_ptr_array_new_with_free_func(pop3_message_free);
  m->dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (m->dir_fd < 0) {
    g_set_error(error, POSTERN_ERROR, errno == ENOENT ? POSTERN_ERROR_NOT_FOUND
                                                      : POSTERN_ERROR_TEMPORARY,
                "%s: %s", path, g_strerror(errno));
    pop3_maildir_free(m);
    return NULL;
  }
  if (!pop3_maildir_scan(m, "cur", error) || !pop3_maildir_scan(m, "new", error)) {
    pop3_maildir_free(m);
    return NULL;
  }
  g_ptr_array_sort(m->messages, pop3_message_compare);
  return m;
}

static int
pop3_maildir_open_message(Pop3Maildir *m, const Pop3Message *msg)
{
  g_autofree char *rel = g_build_filename(msg->in_new ? "new" : "cur", msg->name, NULL);

  return openat(m->dir_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

gboolean
pop3_maildir_read(Pop3Maildir *m, guint i, guint max_body_lines, GString *out, GError **error)
{
  const Pop3Message *msg = g_ptr_array_index(m->messages, i);
  g_autofree char *buf = NULL;
  Pop3Encoder e;
  ssize_t n;
  int fd = pop3_maildir_open_message(m, msg);

  if (fd < 0) {
    g_set_error(error, POSTERN_ERROR, errno == ENOENT ? POSTERN_ERROR_NOT_FOUND
                                                      : POSTERN_ERROR_TEMPORARY,
                "%s: %s", msg->name, g_strerror(errno));
    return FALSE;
  }
  buf = g_malloc(POP3_READ_CHUNK);
  pop3_encoder_init(&e, max_body_lines);
  while (!e.done && (n = read(fd, buf, POP3_READ_CHUNK)) > 0)
    pop3_encoder_feed(&e, buf, (gsize) n, out);
  close(fd);
  pop3_encoder_finish(&e, out);
  return TRUE;
}

/* TRUE when a cur/ name lacks the S (seen) flag. */
static gboolean
pop3_maildir_unseen(const char *name)
{
  const char *info = strstr(name, ":2,");

  return info == NULL || strchr(info + 3, 'S') == NULL;
}

/* "cur/NAME:2,FLAGS" with S among the flags (in ASCII order, as the
 * maildir convention wants); NULL for a new/ name with an info part we
 * did not expect. */
static char *
pop3_maildir_seen_name(const Pop3Message *msg)
{
  const char *info = strstr(msg->name, ":2,");
  GString *flags;

  if (msg->in_new)
    return strlen(msg->name) == strlen(msg->uidl) ? g_strdup_printf("cur/%s:2,S", msg->uidl) : NULL;
  flags = g_string_new(info ? info + 3 : "");
  g_string_append_c(flags, 'S');
  for (gsize i = 1; i < flags->len; i++)      /* a handful of letters: insertion sort */
    for (gsize j = i; j > 0 && flags->str[j - 1] > flags->str[j]; j--) {
      char t = flags->str[j];
      flags->str[j] = flags->str[j - 1];
      flags->str[j - 1] = t;
    }
  {
    char *to = g_strdup_printf("cur/%.*s:2,%s", info ? (int) (info - msg->name)
                                                      : (int) strlen(msg->name),
                               msg->name, flags->str);
    g_string_free(flags, TRUE);
    return to;
  }
}

gboolean
pop3_maildir_commit(Pop3Maildir *m, GError **error)
{
  gboolean changed_new = FALSE, changed_cur = FALSE;
  GError *first = NULL;

  for (guint i = 0; i < m->messages->len; i++) {
    Pop3Message *msg = g_ptr_array_index(m->messages, i);
    g_autofree char *from = g_build_filename(msg->in_new ? "new" : "cur", msg->name, NULL);
    int r = 0;

    if (msg->deleted) {
      r = unlinkat(m->dir_fd, from, 0);
      if (r < 0 && errno == ENOENT)
        r = 0;      /* another session or client removed it: the same result */
      changed_new |= msg->in_new;
      changed_cur |= !msg->in_new;
    } else if (msg->retrieved && (msg->in_new || pop3_maildir_unseen(msg->name))) {
      g_autofree char *to = pop3_maildir_seen_name(msg);

      if (to != NULL)
        r = renameat(m->dir_fd, from, m->dir_fd, to);
      changed_new = changed_cur = TRUE;
      if (r == 0) {
        msg->in_new = FALSE;
        g_free(msg->name);
        msg->name = g_strdup(to + 4);
      } else if (errno == ENOENT) {
        r = 0;
      }
    }
    if (r < 0 && first == NULL)
      g_set_error(&first, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "%s/%s: %s", m->path, from,
                  g_strerror(errno));
  }
  for (guint k = 0; k < 2; k++) {
    gboolean changed = k == 0 ? changed_new : changed_cur;
    int fd;

    if (!changed)
      continue;
    fd = openat(m->dir_fd, k == 0 ? "new" : "cur", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      if (fsync(fd) < 0 && first == NULL)
        g_set_error(&first, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "fsync %s: %s", m->path,
                    g_strerror(errno));
      close(fd);
    }
  }
  if (first != NULL) {
    g_propagate_error(error, first);
    return FALSE;
  }
  return TRUE;
}
