/* pop3-mbox.c - an mbox file as a POP3 drop (pop3-mbox.h).
 *
 * Messages begin at lines that start with "From " (the delivery agent
 * quotes such lines in bodies as ">From "; they are sent as stored).  The
 * blank line a delivery writes after each message is not part of it.
 *
 * UIDLs: "<uidvalidity>.<n>" in hex, kept in DIR/.BASE.postern-uidl, one
 * line per message: its UIDL and the SHA-256 of its From_ line and first
 * KiB.  At open the file's entries are matched to the messages in order
 * (another reader may have removed some, deliveries only append), a
 * message without a match gets the next number, and the file is
 * rewritten when that happened.  Two identical messages keep their own
 * UIDLs because the matching goes in order.  A missing or unreadable
 * UIDL file starts a new uidvalidity (clients then fetch anew, which is
 * safe; reusing a UIDL for another message would not be).
 *
 * UPDATE copies the messages that stay into DIR/.BASE.postern-new,
 * followed by anything a deliverer appended after the open (possible only
 * if our dotlock was broken as stale), fsyncs, and renames it over the
 * mbox while the locks are still held; a crash leaves the old mbox or the
 * new one, never a mix.
 */
#include "pop3-mbox.h"

#include "config.h"
#include "mbox-lock.h"
#include "pop3-proto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define POP3_MBOX_DIGEST_BYTES 1024
#define POP3_MBOX_CHUNK (64 * 1024)

static char *
pop3_mbox_side_path(const char *path, const char *suffix)
{
  g_autofree char *dir = g_path_get_dirname(path);
  g_autofree char *base = g_path_get_basename(path);
  g_autofree char *name = g_strdup_printf(".%s.%s", base, suffix);

  return g_build_filename(dir, name, NULL);
}

void
pop3_mbox_free(Pop3Mbox *m)
{
  if (m == NULL)
    return;
  if (m->fd >= 0)
    close(m->fd);       /* releases the fcntl lock */
  if (m->lock_path)
    unlink(m->lock_path);
  g_free(m->path);
  g_free(m->lock_path);
  g_free(m->uidl_path);
  if (m->messages)
    g_ptr_array_unref(m->messages);
  if (m->spans)
    g_array_unref(m->spans);
  g_free(m);
}

void
pop3_mbox_touch(Pop3Mbox *m)
{
  if (m->lock_path)
    utimensat(AT_FDCWD, m->lock_path, NULL, 0);
}

static gboolean
pop3_mbox_pread(int fd, char *buf, gsize len, goffset off, GError **error)
{
  gsize done = 0;

  while (done < len) {
    ssize_t n = pread(fd, buf + done, len - done, off + (goffset) done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "read: %s",
                  n < 0 ? g_strerror(errno) : "the mbox became shorter");
      return FALSE;
    }
    done += (gsize) n;
  }
  return TRUE;
}

/* Ends span at end, without the blank line a delivery writes after each
 * message (the separator belongs to no message). */
static void
pop3_mbox_close_span(Pop3Mbox *m, const char *data, Pop3MboxSpan *span, goffset end)
{
  span->end = end;
  if (span->end > span->start && data[span->end - 1] == '\n'
      && (span->end - 1 == span->start || data[span->end - 2] == '\n'))
    span->end--;
  g_array_append_val(m->spans, *span);
}

/* Splits the file into messages, with their sizes and digests.  The file
 * is mapped, not copied: a large mbox costs address space, not memory. */
static gboolean
pop3_mbox_split(Pop3Mbox *m, GError **error)
{
  const char *data;
  goffset line = 0;
  Pop3MboxSpan span = { .from_line = -1 };

  if (m->size == 0)
    return TRUE;
  data = mmap(NULL, (gsize) m->size, PROT_READ, MAP_PRIVATE, m->fd, 0);
  if (data == MAP_FAILED) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "%s: mmap: %s", m->path,
                g_strerror(errno));
    return FALSE;
  }
  while (line < m->size) {
    const char *nl = memchr(data + line, '\n', (gsize) (m->size - line));
    goffset next = nl ? (goffset) (nl - data) + 1 : m->size;

    if (m->size - line >= 5 && memcmp(data + line, "From ", 5) == 0) {
      if (span.from_line >= 0)
        pop3_mbox_close_span(m, data, &span, line);
      span = (Pop3MboxSpan) { .from_line = line, .start = next };
    }
    line = next;
  }
  if (span.from_line >= 0)
    pop3_mbox_close_span(m, data, &span, m->size);
  for (guint i = 0; i < m->spans->len; i++) {
    Pop3MboxSpan *sp = &g_array_index(m->spans, Pop3MboxSpan, i);
    Pop3Message *msg = g_new0(Pop3Message, 1);
    Pop3Encoder e;
    goffset n = MIN(sp->end - sp->from_line, (goffset) POP3_MBOX_DIGEST_BYTES);

    pop3_encoder_init(&e, G_MAXUINT);
    pop3_encoder_feed(&e, data + sp->start, (gsize) (sp->end - sp->start), NULL);
    pop3_encoder_finish(&e, NULL);
    msg->octets = e.octets;
    msg->name = g_compute_checksum_for_data(G_CHECKSUM_SHA256,
                                            (const guchar *) data + sp->from_line, (gsize) n);
    g_ptr_array_add(m->messages, msg);
  }
  munmap((void *) data, (gsize) m->size);
  return TRUE;
}

/* Writes the UIDL file (temp + rename). */
static gboolean
pop3_mbox_save_uidls(Pop3Mbox *m, gboolean skip_deleted, GError **error)
{
  g_autoptr(GString) out = g_string_new(NULL);

  g_string_append_printf(out, "postern-uidl 1 %" G_GINT64_MODIFIER "x %" G_GINT64_MODIFIER "x\n",
                         m->uidvalidity, m->next_uid);
  for (guint i = 0; i < m->messages->len; i++) {
    const Pop3Message *msg = g_ptr_array_index(m->messages, i);
    if (!(skip_deleted && msg->deleted))
      g_string_append_printf(out, "%s %s\n", msg->uidl, msg->name);
  }
  return g_file_set_contents_full(m->uidl_path, out->str, (gssize) out->len,
                                  G_FILE_SET_CONTENTS_CONSISTENT, 0600, error);
}

/* Gives each message its UIDL from the side file, or a new one. */
static void
pop3_mbox_assign_uidls(Pop3Mbox *m)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  gboolean changed = FALSE;
  guint j = 1;

  if (g_file_get_contents(m->uidl_path, &text, NULL, NULL))
    lines = g_strsplit(text, "\n", -1);
  if (lines && lines[0]
      && sscanf(lines[0], "postern-uidl 1 %" G_GINT64_MODIFIER "x %" G_GINT64_MODIFIER "x",
                &m->uidvalidity, &m->next_uid) == 2) {
    for (guint i = 0; i < m->messages->len; i++) {
      Pop3Message *msg = g_ptr_array_index(m->messages, i);

      /* the next entry with this digest, in order */
      for (guint k = j; lines[k] && *lines[k]; k++) {
        char *sp = strchr(lines[k], ' ');
        if (sp && strcmp(sp + 1, msg->name) == 0) {
          msg->uidl = g_strndup(lines[k], (gsize) (sp - lines[k]));
          j = k + 1;
          break;
        }
      }
    }
  } else {
    m->uidvalidity = (guint64) g_get_real_time() / G_USEC_PER_SEC;
    m->next_uid = 1;
    changed = TRUE;
  }
  for (guint i = 0; i < m->messages->len; i++) {
    Pop3Message *msg = g_ptr_array_index(m->messages, i);
    if (msg->uidl == NULL) {
      msg->uidl = g_strdup_printf("%" G_GINT64_MODIFIER "x.%" G_GINT64_MODIFIER "x",
                                  m->uidvalidity, m->next_uid++);
      changed = TRUE;
    }
  }
  if (changed)
    pop3_mbox_save_uidls(m, FALSE, NULL);   /* best effort: a failure only costs new UIDLs */
}

Pop3Mbox *
pop3_mbox_open(const char *path, guint wait_ms, GError **error)
{
  Pop3Mbox *m = g_new0(Pop3Mbox, 1);
  gint64 deadline = g_get_monotonic_time() + (gint64) wait_ms * 1000;
  g_autofree char *lock_path = g_strconcat(path, ".lock", NULL);
  struct stat st;

  m->fd = -1;
  m->path = g_strdup(path);
  m->uidl_path = pop3_mbox_side_path(path, "postern-uidl");
  m->messages = g_ptr_array_new_with_free_func(pop3_message_free);
  m->spans = g_array_new(FALSE, FALSE, sizeof(Pop3MboxSpan));
  if (!mbox_dotlock(lock_path, deadline, error)) {
    pop3_mbox_free(m);
    return NULL;
  }
  m->lock_path = g_steal_pointer(&lock_path);
  m->fd = open(path, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
  if (m->fd < 0 && errno == ENOENT)
    return m;     /* no mail yet */
  if (m->fd < 0 || fstat(m->fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY,
                "%s: not a regular file with one link (%s)", path,
                m->fd < 0 ? g_strerror(errno) : "refused");
    pop3_mbox_free(m);
    return NULL;
  }
  if (!mbox_fcntl_lock(m->fd, deadline, error)) {
    pop3_mbox_free(m);
    return NULL;
  }
  m->dev = st.st_dev;
  m->ino = st.st_ino;
  m->size = st.st_size;
  if (!pop3_mbox_split(m, error)) {
    pop3_mbox_free(m);
    return NULL;
  }
  pop3_mbox_assign_uidls(m);
  return m;
}

gboolean
pop3_mbox_read(Pop3Mbox *m, guint i, guint max_body_lines, GString *out, GError **error)
{
  const Pop3MboxSpan *sp = &g_array_index(m->spans, Pop3MboxSpan, i);
  g_autofree char *buf = g_malloc(POP3_MBOX_CHUNK);
  Pop3Encoder e;

  pop3_encoder_init(&e, max_body_lines);
  for (goffset off = sp->start; off < sp->end && !e.done; off += POP3_MBOX_CHUNK) {
    gsize n = (gsize) MIN((goffset) POP3_MBOX_CHUNK, sp->end - off);

    if (!pop3_mbox_pread(m->fd, buf, n, off, error))
      return FALSE;
    pop3_encoder_feed(&e, buf, n, out);
  }
  pop3_encoder_finish(&e, out);
  return TRUE;
}

/* Copies [from, to) of the mbox to out_fd. */
static gboolean
pop3_mbox_copy(Pop3Mbox *m, int out_fd, goffset from, goffset to, GError **error)
{
  g_autofree char *buf = g_malloc(POP3_MBOX_CHUNK);

  for (goffset off = from; off < to; off += POP3_MBOX_CHUNK) {
    gsize n = (gsize) MIN((goffset) POP3_MBOX_CHUNK, to - off), done = 0;

    if (!pop3_mbox_pread(m->fd, buf, n, off, error))
      return FALSE;
    while (done < n) {
      ssize_t w = write(out_fd, buf + done, n - done);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0) {
        g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "write: %s", g_strerror(errno));
        return FALSE;
      }
      done += (gsize) w;
    }
  }
  return TRUE;
}

gboolean
pop3_mbox_commit(Pop3Mbox *m, GError **error)
{
  g_autofree char *tmp = NULL;
  gboolean any = FALSE;
  struct stat st;
  int out;

  for (guint i = 0; i < m->messages->len; i++)
    any |= ((Pop3Message *) g_ptr_array_index(m->messages, i))->deleted;
  if (!any || m->fd < 0)
    return TRUE;
  if (fstat(m->fd, &st) < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "%s: %s", m->path,
                g_strerror(errno));
    return FALSE;
  }
  tmp = pop3_mbox_side_path(m->path, "postern-new");
  unlink(tmp);
  out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 07777);
  if (out < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "%s: %s", tmp, g_strerror(errno));
    return FALSE;
  }
  /* The old mode exactly (the umask applied at open), then the owner. */
  if ((fchown(out, st.st_uid, st.st_gid) < 0 && errno != EPERM)
      || fchmod(out, st.st_mode & 07777) < 0)
    goto fail_errno;
  for (guint i = 0; i < m->messages->len; i++) {
    const Pop3Message *msg = g_ptr_array_index(m->messages, i);
    const Pop3MboxSpan *sp = &g_array_index(m->spans, Pop3MboxSpan, i);
    goffset end = i + 1 < m->spans->len ? g_array_index(m->spans, Pop3MboxSpan, i + 1).from_line
                                         : m->size;

    /* a message that stays keeps its From_ line and separator */
    if (!msg->deleted && !pop3_mbox_copy(m, out, sp->from_line, end, error))
      goto fail;
  }
  /* mail a deliverer appended after our open (a broken stale lock) */
  if (st.st_size > m->size && !pop3_mbox_copy(m, out, m->size, st.st_size, error))
    goto fail;
  if (fsync(out) < 0 || close(out) < 0) {
    out = -1;
    goto fail_errno;
  }
  out = -1;
  if (rename(tmp, m->path) < 0)
    goto fail_errno;
  {
    g_autofree char *dir = g_path_get_dirname(m->path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
  }
  pop3_mbox_save_uidls(m, TRUE, NULL);
  return TRUE;

fail_errno:
  g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_TEMPORARY, "%s: %s", tmp, g_strerror(errno));
fail:
  if (out >= 0)
    close(out);
  unlink(tmp);
  return FALSE;
}
