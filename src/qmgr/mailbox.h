/* mailbox.h - mailbox writers: mbox files and maildirs.
 *
 * A writer appends one message to one mailbox with the credentials the
 * calling thread already has (qmgr-local.c switches them); it never
 * leaves a half message behind.  The content is streamed from the queue
 * file, never loaded whole.  Errors: POSTERN_ERROR_TEMPORARY (defer),
 * POSTERN_ERROR_FAILED (permanent, e.g. mailbox_size_limit), with the
 * text Postfix uses after "cannot update mailbox ...".
 */
#pragma once

#include <glib.h>
#include <sys/types.h>
#include <time.h>

typedef struct {
  int fd;                    /* queue file */
  gint64 offset;             /* content start in fd */
  gint64 size;               /* content bytes */
  const char *sender;        /* "" = null sender */
  const char *orig_rcpt;     /* X-Original-To */
  const char *delivered_to;  /* Delivered-To (lower-cased by the writer) */
  const char *hostname;      /* for maildir file names */
  gint64 size_limit;         /* mailbox_size_limit; 0 = none */
} MailboxMessage;

/* How long to wait for the dotlock and the fcntl lock (milliseconds). */
#define MBOX_LOCK_WAIT_MS 5000

/* Appends to the mbox file at path (created mode 0600 when missing;
 * then chowned to create_uid/create_gid unless they are -1), with a
 * "<path>.lock" dotlock and an fcntl write lock, From_ line, ">From "
 * quoting and a blank line after the message.  On failure the file is
 * truncated back to its old size. */
gboolean mailbox_mbox_deliver(const char *path, const MailboxMessage *msg, uid_t create_uid,
                              gid_t create_gid, GError **error);

/* Delivers into the maildir dir (with or without trailing slash):
 * creates dir/{tmp,new,cur} when missing, writes tmp/, fsyncs, links to
 * new/<unique>, fsyncs new/.  *name (may be NULL) gets the new/ name. */
gboolean mailbox_maildir_deliver(const char *dir, const MailboxMessage *msg, char **name,
                                 GError **error);

/* The three headers both formats prepend:
 * Return-Path, X-Original-To, Delivered-To. */
void mailbox_append_headers(GString *out, const MailboxMessage *msg);

/* The From_ line: "From <sender or MAILER-DAEMON>  <asctime>\n". */
void mailbox_append_from_line(GString *out, const char *sender, time_t when);

/* Copies the content (mailbox.c) to out_fd after the bytes already in
 * prefix: with mbox set, ">From " quoting and a blank line after the
 * message; always a final newline.  Fails before writing more than
 * max_bytes (-1 = no limit).  Used by both writers.  wire_size (may be
 * NULL): the size with CRLF line ends (every LF not after a CR counted
 * twice), what POP3 reports and maildir names carry as ",W=". */
gboolean mailbox_copy(int out_fd, GString *prefix, const MailboxMessage *msg, gboolean mbox,
                      gint64 max_bytes, gint64 *wire_size, GError **error);
