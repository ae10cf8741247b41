/* workpool.h - run blocking work off the event loop.
 *
 * work() runs in one of the pool's threads; done() runs afterwards in the
 * event loop's thread (posted through an eventfd), so results are handed
 * back without locks.  Order of done() calls follows completion.
 */
#pragma once

#include <glib.h>
#include <systemd/sd-event.h>

typedef struct _WorkPool WorkPool;
typedef void (*WorkFunc)(gpointer data);
typedef void (*WorkDone)(gpointer data);

WorkPool *workpool_new(sd_event *event, guint n_threads, GError **error);
/* Runs work(data) in a thread, then done(data) in the loop (done may be NULL). */
void workpool_submit(WorkPool *pool, WorkFunc work, WorkDone done, gpointer data);
/* Items submitted but whose done() has not run yet. */
guint workpool_pending(const WorkPool *pool);
/* Waits for all work, runs the remaining done()s, frees. */
void workpool_free(WorkPool *pool);
