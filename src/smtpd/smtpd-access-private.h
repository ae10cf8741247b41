/* smtpd-access-private.h - what the restriction evaluators share
 * (smtpd-access.c: lists, tables, built-ins; smtpd-access-dns.c: the
 * restrictions that ask the DNS).  Worker threads only. */
#pragma once

#include "smtpd.h"

/* The names inside smtpd-access.c. */
#define ctx_event smtpd_access_event
#define ctx_reject smtpd_access_reject
#define check_access smtpd_access_check_keys
#define server_error smtpd_access_server_error
#define lookup_retry smtpd_access_lookup_retry

/* Queues a log line for the loop ("warning", or an action such as
 * "warn", "hold": a NOQUEUE line). */
void ctx_event(SmtpdAccessCtx *ctx, const char *action, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
/* Sets ctx->reply and returns SMTPD_ACCESS_REJECT. */
SmtpdAccess ctx_reject(SmtpdAccessCtx *ctx, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* 451 4.3.0 <name>: Temporary lookup failure (error, if any, logged). */
SmtpdAccess lookup_retry(SmtpdAccessCtx *ctx, const char *name, const GError *error);
/* 451 4.3.5 Server configuration error. */
SmtpdAccess server_error(SmtpdAccessCtx *ctx);
/* Looks keys up in the access table spec; the first found decides
 * (access(5) actions), name/what make the reply.  Pattern tables see only
 * keys[0] and full (another whole key among keys, or NULL). */
SmtpdAccess check_access(SmtpdAccessCtx *ctx, const char *spec, GPtrArray *keys,
                         const char *full, const char *name, const char *what);
/* Remembers a deferral: if_permit = TRUE applies when the verdict would
 * be "permit" (smtpd_access_finish), else it replaces a later 5xx. */
void smtpd_access_defer_if(SmtpdAccessCtx *ctx, gboolean if_permit, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

/* The DNS-based restriction r at *p (its argument, if any, follows);
 * TRUE when r is one, with the verdict in *result and *p moved past the
 * argument.  name/what are the stage's reply name and class. */
gboolean smtpd_access_dns(SmtpdAccessCtx *ctx, const char *const **p, const char *name,
                          const char *what, SmtpdAccess *result);
