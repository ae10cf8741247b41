/* smtpd-anvil.c - per-client connection count and rate (see
 * smtpd-anvil.h).  Entries whose count is zero are forgotten once their
 * rate window is over; a sweep runs every few hundred connects so a
 * stream of one-shot clients cannot grow the table without bound. */
#include "smtpd-anvil.h"

#define SWEEP_EVERY 256

typedef struct {
  guint count;          /* concurrent connections */
  guint rate;           /* connections in the current window */
  guint auth_rate;      /* AUTH commands in the current window */
  gint64 window_start;  /* microseconds */
  gint64 window_us;
} AnvilEntry;

struct _SmtpdAnvil {
  GHashTable *clients;  /* addr -> AnvilEntry */
  guint connects;
};

SmtpdAnvil *
smtpd_anvil_new(void)
{
  SmtpdAnvil *anvil = g_new0(SmtpdAnvil, 1);
  anvil->clients = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  return anvil;
}

void
smtpd_anvil_free(SmtpdAnvil *anvil)
{
  if (anvil == NULL)
    return;
  g_hash_table_destroy(anvil->clients);
  g_free(anvil);
}

/* Drops idle entries whose window has passed. */
static void
anvil_sweep(SmtpdAnvil *anvil, gint64 now_us)
{
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, anvil->clients);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    AnvilEntry *e = value;
    if (e->count == 0 && now_us - e->window_start >= e->window_us)
      g_hash_table_iter_remove(&iter);
  }
}

guint
smtpd_anvil_connect(SmtpdAnvil *anvil, const char *addr, gint64 now_us, gint64 window_us,
                    guint *rate)
{
  if (++anvil->connects % SWEEP_EVERY == 0)
    anvil_sweep(anvil, now_us);

  AnvilEntry *e = g_hash_table_lookup(anvil->clients, addr);
  if (e == NULL) {
    e = g_new0(AnvilEntry, 1);
    e->window_start = now_us;
    g_hash_table_insert(anvil->clients, g_strdup(addr), e);
  }
  if (window_us <= 0)
    window_us = 1;
  e->window_us = window_us;
  if (now_us - e->window_start >= window_us) {
    e->window_start = now_us;
    e->rate = 0;
    e->auth_rate = 0;
  }
  e->count++;
  e->rate++;
  *rate = e->rate;
  return e->count;
}

guint
smtpd_anvil_auth(SmtpdAnvil *anvil, const char *addr, gint64 now_us, gint64 window_us)
{
  AnvilEntry *e = g_hash_table_lookup(anvil->clients, addr);

  if (e == NULL)
    return 1;   /* not counted as connected (exempt): nothing to compare */
  if (now_us - e->window_start >= MAX(window_us, 1)) {
    e->window_start = now_us;
    e->rate = 0;
    e->auth_rate = 0;
  }
  return ++e->auth_rate;
}

void
smtpd_anvil_disconnect(SmtpdAnvil *anvil, const char *addr)
{
  AnvilEntry *e = g_hash_table_lookup(anvil->clients, addr);
  if (e != NULL && e->count > 0)
    e->count--;
}

guint
smtpd_anvil_size(const SmtpdAnvil *anvil)
{
  return g_hash_table_size(anvil->clients);
}
