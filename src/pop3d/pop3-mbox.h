/* pop3-mbox.h - an mbox file as a POP3 drop: locked for the whole
 * session as the delivery agent locks it, messages split at From_ lines,
 * UIDLs kept in a side file so that they survive new deliveries and other
 * messages' deletion, and UPDATE as a crash-safe rewrite (a temporary file
 * renamed over the mbox).  Blocking file I/O, run as the mailbox's owner.
 */
#pragma once

#include <glib.h>

#include "pop3-maildir.h"     /* Pop3Message */

typedef struct {
  char *path;
  char *lock_path;          /* PATH.lock, held while open */
  char *uidl_path;          /* DIR/.BASE.postern-uidl */
  int fd;                   /* read-only; fcntl-locked */
  dev_t dev;
  ino_t ino;
  goffset size;             /* at open: what the drop holds */
  GPtrArray *messages;      /* Pop3Message *; name: the SHA-256 of its From_ line and first KiB */
  GArray *spans;            /* Pop3MboxSpan, one per message: where it is */
  guint64 uidvalidity, next_uid;
} Pop3Mbox;

typedef struct {
  goffset from_line;        /* offset of its From_ line */
  goffset start, end;       /* the message after the From_ line, without the blank separator */
} Pop3MboxSpan;

/* Locks path (dotlock, then fcntl; waiting up to wait_ms for a deliverer)
 * and reads it.  A missing mbox is an empty drop.  POSTERN_ERROR_TEMPORARY
 * when it cannot be locked ("[IN-USE]" for the client). */
Pop3Mbox *pop3_mbox_open(const char *path, guint wait_ms, GError **error);
/* Unlocks (no change to the mbox). */
void pop3_mbox_free(Pop3Mbox *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Pop3Mbox, pop3_mbox_free)

/* Keeps the dotlock fresh (deliverers break one older than 300 s). */
void pop3_mbox_touch(Pop3Mbox *m);

/* Message i in wire form (as pop3_maildir_read). */
gboolean pop3_mbox_read(Pop3Mbox *m, guint i, guint max_body_lines, GString *out,
                        GError **error);

/* UPDATE: writes the kept messages (and whatever was appended since
 * open) to a temporary file, fsyncs it and renames it over the mbox;
 * rewrites the UIDL file.  Nothing deleted: nothing written. */
gboolean pop3_mbox_commit(Pop3Mbox *m, GError **error);
