/* pop3-maildir.h - a maildir as a POP3 drop: the messages of new/ and
 * cur/ in delivery order with their sizes and unique ids, RETR/TOP in wire
 * form, and the UPDATE state's changes (RFC 1939 6: deletions happen only
 * there).  Blocking file I/O; the caller runs it as the mailbox owner.
 */
#pragma once

#include <glib.h>

typedef struct {
  char *name;           /* file name in its directory */
  char *uidl;           /* the base name before ":2,", or its digest when unusable */
  gboolean in_new;      /* in new/ (else cur/) */
  guint64 octets;       /* LIST's size: CRLF line ends */
  gboolean deleted;     /* DELE (until RSET) */
  gboolean retrieved;   /* RETR'd: moves to cur/ with the S flag at UPDATE */
} Pop3Message;

/* Frees a Pop3Message (a GDestroyNotify). */
void pop3_message_free(gpointer msg);

typedef struct {
  char *path;
  int dir_fd;
  GPtrArray *messages;  /* Pop3Message *, oldest first */
} Pop3Maildir;

/* Scans path/new and path/cur (a missing new/ or cur/ is an empty one).
 * Sizes come from a ",W=N" field of the name when present (what Dovecot
 * and Postern's delivery write), else from reading the file. */
Pop3Maildir *pop3_maildir_open(const char *path, GError **error);
void pop3_maildir_free(Pop3Maildir *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Pop3Maildir, pop3_maildir_free)

/* Appends message i (0-based) in wire form to out, ".\r\n" included:
 * the whole of it, or the header and max_body_lines body lines (TOP).
 * A message that vanished meanwhile is an error (POSTERN_ERROR_NOT_FOUND). */
gboolean pop3_maildir_read(Pop3Maildir *m, guint i, guint max_body_lines, GString *out,
                           GError **error);

/* UPDATE: unlinks the deleted messages and moves retrieved ones from new/
 * to cur/ with ":2,S" (seen); syncs the directories.  Goes on past a
 * failure and reports the first. */
gboolean pop3_maildir_commit(Pop3Maildir *m, GError **error);
