/* workpool.c - worker threads whose results come back to the event loop.
 *
 * A fixed set of threads takes items from one queue (mutex + condition);
 * each item runs work() in a thread, then goes on a completion list, and
 * the loop is woken through an eventfd only when that list was empty, so
 * a busy loop is not woken once per item.  The loop thread pops every
 * completed item and runs done(): it never blocks here, and done() never
 * runs concurrently with the loop.
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
  GPtrArray *threads;
  sd_event_source *source;
  int efd;
  guint pending;           /* touched only by the loop thread */
};

static gpointer
workpool_thread(gpointer data)
{
  WorkPool *pool = data;
  uint64_t one = 1;

  g_mutex_lock(&pool->lock);
  for (;;) {
    WorkItem *item;
    gboolean was_empty;

    while (g_queue_is_empty(&pool->todo) && !pool->stopping)
      g_cond_wait(&pool->wake, &pool->lock);
    item = g_queue_pop_head(&pool->todo);
    if (item == NULL)
      break;                        /* stopping and nothing left to do */
    g_mutex_unlock(&pool->lock);

    item->work(item->data);

    g_mutex_lock(&pool->lock);
    was_empty = g_queue_is_empty(&pool->finished);
    g_queue_push_tail(&pool->finished, item);
    if (was_empty) {
      /* The loop drains the whole list on one wake-up. */
      while (write(pool->efd, &one, sizeof one) < 0 && errno == EINTR)
        ;
    }
  }
  g_mutex_unlock(&pool->lock);
  return NULL;
}

/* Runs done() for every completed item. */
static void
workpool_drain(WorkPool *pool)
{
  GQueue batch = G_QUEUE_INIT;
  WorkItem *item;

  g_mutex_lock(&pool->lock);
  batch = pool->finished;
  g_queue_init(&pool->finished);
  g_mutex_unlock(&pool->lock);
  while ((item = g_queue_pop_head(&batch)) != NULL) {
    pool->pending--;
    if (item->done)
      item->done(item->data);
    g_free(item);
  }
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
  for (guint i = 0; i < MAX(n_threads, 1); i++) {
    GThread *t = g_thread_try_new("postern-worker", workpool_thread, pool, error);
    if (t == NULL) {
      workpool_free(pool);
      return NULL;
    }
    g_ptr_array_add(pool->threads, t);
  }
  return pool;
}

void
workpool_submit(WorkPool *pool, WorkFunc work, WorkDone done, gpointer data)
{
  WorkItem *item = g_new(WorkItem, 1);

  item->work = work;
  item->done = done;
  item->data = data;
  pool->pending++;
  g_mutex_lock(&pool->lock);
  g_queue_push_tail(&pool->todo, item);
  g_cond_signal(&pool->wake);
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
  g_mutex_lock(&pool->lock);
  pool->stopping = TRUE;
  g_cond_broadcast(&pool->wake);
  g_mutex_unlock(&pool->lock);
  for (guint i = 0; i < pool->threads->len; i++)
    g_thread_join(pool->threads->pdata[i]);
  g_ptr_array_unref(pool->threads);
  workpool_drain(pool);
  sd_event_source_disable_unref(pool->source);
  close(pool->efd);
  g_cond_clear(&pool->wake);
  g_mutex_clear(&pool->lock);
  g_free(pool);
}
