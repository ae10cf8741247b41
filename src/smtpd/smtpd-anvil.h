/* smtpd-anvil.h - per-client connection counting inside smtpd (what
 * Postfix's anvil server does): concurrent connections and connection
 * rate per client address, in fixed windows of anvil_rate_time_unit.
 * Loop thread only; no I/O. */
#pragma once

#include <glib.h>

typedef struct _SmtpdAnvil SmtpdAnvil;

SmtpdAnvil *smtpd_anvil_new(void);
void smtpd_anvil_free(SmtpdAnvil *anvil);

/* Counts a new connection from addr at now_us (window length window_us);
 * returns the number of concurrent connections (including this one) and,
 * in *rate, the connections in the current window. */
guint smtpd_anvil_connect(SmtpdAnvil *anvil, const char *addr, gint64 now_us, gint64 window_us,
                          guint *rate);

/* Counts an AUTH command from addr (a connected client) in the same
 * windows; returns the AUTH commands in the current window. */
guint smtpd_anvil_auth(SmtpdAnvil *anvil, const char *addr, gint64 now_us, gint64 window_us);

/* Ends one connection counted by smtpd_anvil_connect. */
void smtpd_anvil_disconnect(SmtpdAnvil *anvil, const char *addr);

/* Number of client addresses remembered (for tests). */
guint smtpd_anvil_size(const SmtpdAnvil *anvil);
