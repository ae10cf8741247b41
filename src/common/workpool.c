/* workpool.c - worker threads whose results come back to the event loop.
 *
 * A fixed set of threads takes items from one queue (mutex + condition);
 * each item runs work() in a thread, then goes on a completion list, and
 * the loop is woken through an eventfd only when that list was empty, so
 * a busy loop is not woken once per item.  The loop thread pops every
 * completed item and runs done(): it never blocks here, and done() never
 * runs concurrently with the loop.
 *
 * The pool keeps n_threads threads ready for work.  A thread inside
 * workpool_blocking_begin()/end() does not count: while it waits, another
 * is started for the queue behind it (up to max_threads), and a thread
 * that finds itself one too many once the wait is over leaves when it has
 * finished its item.  A thread that leaves is joined by the loop thread
 * at its next submit (or at free).
 */
#include "workpool.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "config.h"

typedef struct {
  WorkFunc work;
  WorkDone done;
  gpointer data;
} WorkItem;

struct _WorkPool {
  GMutex lock;
  GCond wake;              /* signalled when todo gets an item or stopping */
  GQueue todo;             /* of WorkItem*, under lock */
  GQueue finished;         /* of WorkItem*, under lock */
  gboolean stopping;
  GPtrArray *threads;      /* GThread *, running; under lock */
  GPtrArray *exited;       /* GThread *, left, to be joined; under lock */
  guint n_base, n_max;     /* threads to keep ready; most threads at all */
  guint n_alive, n_idle, n_blocked;   /* under lock */
  gboolean blocked_note;   /* a thread began to wait since the last drain */
  void (*blocked)(gpointer data);
  gpointer blocked_data;
  sd_event_source *source;
  int efd;
  guint pending;           /* touched only by the loop thread */
};

static _Thread_local WorkPool *workpool_current;
static gpointer workpool_thread(gpointer data);

static void
workpool_wake_loop(WorkPool *pool)
{
  uint64_t one = 1;

  while (write(pool->efd, &one, sizeof one) < 0 && errno == EINTR)
    ;
}

/* Threads that are not waiting in a blocking section. Under lock. */
static guint
workpool_ready(const WorkPool *pool)
{
  return pool->n_alive - pool->n_blocked;
}

/* Starts a thread; FALSE (error set) when that fails.  Under lock. */
static gboolean
workpool_spawn(WorkPool *pool, GError **error)
{
  GThread *t = g_thread_try_new("postern-worker", workpool_thread, pool, error);

  if (t == NULL)
    return FALSE;
  g_ptr_array_add(pool->threads, t);
  pool->n_alive++;
  return TRUE;
}

/* Starts a thread for waiting work that no ready thread can take because
 * others are blocked.  Under lock. */
static void
workpool_stand_in(WorkPool *pool)
{
  g_autoptr(GError) error = NULL;

  if (pool->stopping || pool->n_idle > 0 || g_queue_is_empty(&pool->todo)
      || workpool_ready(pool) >= pool->n_base || pool->n_alive >= pool->n_max)
    return;
  if (!workpool_spawn(pool, &error))
    g_warning("cannot start a worker thread: %s", error->message);
}

/* The calling thread leaves the pool.  Under lock. */
static void
workpool_leave(WorkPool *pool)
{
  GThread *self = g_thread_self();

  pool->n_alive--;
  /* free() may have taken it already, to join it */
  if (g_ptr_array_remove_fast(pool->threads, self))
    g_ptr_array_add(pool->exited, self);
}

/* Joins the threads that left.  Loop thread, not under lock. */
static void
workpool_join_exited(WorkPool *pool)
{
  g_autoptr(GPtrArray) exited = NULL;

  g_mutex_lock(&pool->lock);
  if (pool->exited->len > 0) {
    exited = pool->exited;
    pool->exited = g_ptr_array_new();
  }
  g_mutex_unlock(&pool->lock);
  for (guint i = 0; exited != NULL && i < exited->len; i++)
    g_thread_join(exited->pdata[i]);
}

static gpointer
workpool_thread(gpointer data)
{
  WorkPool *pool = data;

  workpool_current = pool;
  g_mutex_lock(&pool->lock);
  for (;;) {
    WorkItem *item;
    gboolean was_empty;

    while (g_queue_is_empty(&pool->todo) && !pool->stopping) {
      pool->n_idle++;
      g_cond_wait(&pool->wake, &pool->lock);
      pool->n_idle--;
    }
    item = g_queue_pop_head(&pool->todo);
    if (item == NULL)
      break;                        /* stopping and nothing left to do */
    workpool_stand_in(pool);
    g_mutex_unlock(&pool->lock);

    item->work(item->data);

    g_mutex_lock(&pool->lock);
    was_empty = g_queue_is_empty(&pool->finished);
    g_queue_push_tail(&pool->finished, item);
    if (was_empty)
      workpool_wake_loop(pool);     /* the loop drains the whole list on one wake-up */
    if (workpool_ready(pool) > pool->n_base && !pool->stopping)
      break;                        /* one too many, now that a wait is over */
  }
  workpool_leave(pool);
  g_mutex_unlock(&pool->lock);
  return NULL;
}

/* Runs done() for every completed item. */
static void
workpool_drain(WorkPool *pool)
{
  GQueue batch = G_QUEUE_INIT;
  WorkItem *item;
  gboolean blocked;

  g_mutex_lock(&pool->lock);
  batch = pool->finished;
  g_queue_init(&pool->finished);
  blocked = pool->blocked_note;
  pool->blocked_note = FALSE;
  g_mutex_unlock(&pool->lock);
  while ((item = g_queue_pop_head(&batch)) != NULL) {
    pool->pending--;
    if (item->done)
      item->done(item->data);
    g_free(item);
  }
  if (blocked && pool->blocked != NULL)
    pool->blocked(pool->blocked_data);
}

static int
workpool_on_event(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
  uint64_t count;

  while (read(fd, &count, sizeof count) < 0 && errno == EINTR)
    ;
  workpool_drain(userdata);
  return 0;
}

WorkPool *
workpool_new(sd_event *event, guint n_threads, GError **error)
{
  WorkPool *pool = g_new0(WorkPool, 1);
  int r;

  pool->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (pool->efd < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "eventfd: %s", g_strerror(errno));
    g_free(pool);
    return NULL;
  }
  r = sd_event_add_io(event, &pool->source, pool->efd, EPOLLIN, workpool_on_event, pool);
  if (r < 0) {
    close(pool->efd);
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "sd_event_add_io: %s", g_strerror(-r));
    g_free(pool);
    return NULL;
  }
  g_mutex_init(&pool->lock);
  g_cond_init(&pool->wake);
  g_queue_init(&pool->todo);
  g_queue_init(&pool->finished);
  pool->threads = g_ptr_array_new();
  pool->exited = g_ptr_array_new();
  pool->n_base = pool->n_max = MAX(n_threads, 1);
  g_mutex_lock(&pool->lock);
  for (guint i = 0; i < pool->n_base; i++) {
    if (!workpool_spawn(pool, error)) {
      g_mutex_unlock(&pool->lock);
      workpool_free(pool);
      return NULL;
    }
  }
  g_mutex_unlock(&pool->lock);
  return pool;
}

void
workpool_set_max_threads(WorkPool *pool, guint max_threads)
{
  g_mutex_lock(&pool->lock);
  pool->n_max = MAX(max_threads, pool->n_base);
  g_mutex_unlock(&pool->lock);
}

void
workpool_set_blocked_callback(WorkPool *pool, void (*blocked)(gpointer data), gpointer data)
{
  pool->blocked = blocked;
  pool->blocked_data = data;
}

void
workpool_blocking_begin(void)
{
  WorkPool *pool = workpool_current;

  if (pool == NULL)
    return;
  g_mutex_lock(&pool->lock);
  pool->n_blocked++;
  workpool_stand_in(pool);
  if (!pool->blocked_note && pool->blocked != NULL) {
    pool->blocked_note = TRUE;
    workpool_wake_loop(pool);
  }
  g_mutex_unlock(&pool->lock);
}

void
workpool_blocking_end(void)
{
  WorkPool *pool = workpool_current;

  if (pool == NULL)
    return;
  g_mutex_lock(&pool->lock);
  pool->n_blocked--;
  g_mutex_unlock(&pool->lock);
}

guint
workpool_blocked(WorkPool *pool)
{
  guint n;

  g_mutex_lock(&pool->lock);
  n = pool->n_blocked;
  g_mutex_unlock(&pool->lock);
  return n;
}

void
workpool_submit(WorkPool *pool, WorkFunc work, WorkDone done, gpointer data)
{
  WorkItem *item = g_new(WorkItem, 1);

  item->work = work;
  item->done = done;
  item->data = data;
  pool->pending++;
  workpool_join_exited(pool);
  g_mutex_lock(&pool->lock);
  g_queue_push_tail(&pool->todo, item);
  g_cond_signal(&pool->wake);
  workpool_stand_in(pool);
  g_mutex_unlock(&pool->lock);
}

guint
workpool_pending(const WorkPool *pool)
{
  return pool->pending;
}

void
workpool_free(WorkPool *pool)
{
  if (pool == NULL)
    return;
  pool->blocked = NULL;        /* nothing more is submitted from here */
  g_mutex_lock(&pool->lock);
  pool->stopping = TRUE;
  g_cond_broadcast(&pool->wake);
  /* No thread starts once stopping; each running one is in threads or
   * (having left) in exited. */
  for (;;) {
    GPtrArray *from = pool->threads->len > 0 ? pool->threads : pool->exited;
    GThread *t;

    if (from->len == 0)
      break;
    t = g_ptr_array_steal_index_fast(from, from->len - 1);
    g_mutex_unlock(&pool->lock);
    g_thread_join(t);
    g_mutex_lock(&pool->lock);
  }
  g_mutex_unlock(&pool->lock);
  g_ptr_array_unref(pool->threads);
  g_ptr_array_unref(pool->exited);
  workpool_drain(pool);
  sd_event_source_disable_unref(pool->source);
  close(pool->efd);
  g_cond_clear(&pool->wake);
  g_mutex_clear(&pool->lock);
  g_free(pool);
}
