/* workpool.h - run blocking work off the event loop.
 *
 * work() runs in one of the pool's threads; done() runs afterwards in the
 * event loop's thread (posted through an eventfd), so results are handed
 * back without locks.  Order of done() calls follows completion.
 *
 * A work() that waits a long time on something outside the process (a
 * remote SMTP server, a command) brackets the wait with
 * workpool_blocking_begin()/end(): while it waits, the pool may start
 * another thread (up to max_threads in all), so the items behind it do
 * not queue up behind a slow peer.  Threads beyond n_threads that find
 * nothing to do exit.
 */
#pragma once

#include <glib.h>
#include <systemd/sd-event.h>

typedef struct _WorkPool WorkPool;
typedef void (*WorkFunc)(gpointer data);
typedef void (*WorkDone)(gpointer data);

WorkPool *workpool_new(sd_event *event, guint n_threads, GError **error);
/* Lets blocked items' threads be stood in for, up to max_threads threads. */
void workpool_set_max_threads(WorkPool *pool, guint max_threads);
/* Called in the loop thread when a worker starts a long wait: room for
 * more work (the caller may submit more). */
void workpool_set_blocked_callback(WorkPool *pool, void (*blocked)(gpointer data),
                                   gpointer data);
/* From inside work(): the thread is about to wait / is back.  No-ops
 * outside a pool's thread. */
void workpool_blocking_begin(void);
void workpool_blocking_end(void);
/* Threads waiting between blocking_begin and blocking_end. */
guint workpool_blocked(WorkPool *pool);
/* Runs work(data) in a thread, then done(data) in the loop (done may be NULL). */
void workpool_submit(WorkPool *pool, WorkFunc work, WorkDone done, gpointer data);
/* Items submitted but whose done() has not run yet. */
guint workpool_pending(const WorkPool *pool);
/* Waits for all work, runs the remaining done()s, frees. */
void workpool_free(WorkPool *pool);
