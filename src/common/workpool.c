/* workpool.c - worker threads whose results come back to the event loop.
 *
 * Each item runs work() in a GThreadPool thread, then is pushed on a
 * completion queue and the loop is woken through an eventfd; the loop
 * thread pops completed items and runs done().  The loop thread never
 * blocks here, and done() never runs concurrently with the loop.
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
  GThreadPool *threads;
  GAsyncQueue *completed;
  sd_event_source *source;
  int efd;
  guint pending;        /* touched only by the loop thread */
};

static void
workpool_run(gpointer item_ptr, gpointer pool_ptr)
{
  WorkItem *item = item_ptr;
  WorkPool *pool = pool_ptr;
  uint64_t one = 1;

  item->work(item->data);
  g_async_queue_push(pool->completed, item);
  while (write(pool->efd, &one, sizeof one) < 0 && errno == EINTR)
    ;
}

/* Runs done() for every completed item. */
static void
workpool_drain(WorkPool *pool)
{
  WorkItem *item;

  while ((item = g_async_queue_try_pop(pool->completed)) != NULL) {
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
  g_autofree WorkPool *pool = g_new0(WorkPool, 1);
  int r;

  pool->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (pool->efd < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "eventfd: %s", g_strerror(errno));
    return NULL;
  }
  r = sd_event_add_io(event, &pool->source, pool->efd, EPOLLIN, workpool_on_event, pool);
  if (r < 0) {
    close(pool->efd);
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "sd_event_add_io: %s", g_strerror(-r));
    return NULL;
  }
  pool->completed = g_async_queue_new();
  pool->threads = g_thread_pool_new(workpool_run, pool, (int) MAX(n_threads, 1), FALSE, error);
  if (pool->threads == NULL) {
    sd_event_source_unref(pool->source);
    g_async_queue_unref(pool->completed);
    close(pool->efd);
    return NULL;
  }
  return g_steal_pointer(&pool);
}

void
workpool_submit(WorkPool *pool, WorkFunc work, WorkDone done, gpointer data)
{
  WorkItem *item = g_new(WorkItem, 1);

  item->work = work;
  item->done = done;
  item->data = data;
  pool->pending++;
  g_thread_pool_push(pool->threads, item, NULL);
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
  g_thread_pool_free(pool->threads, FALSE, TRUE);
  workpool_drain(pool);
  sd_event_source_disable_unref(pool->source);
  g_async_queue_unref(pool->completed);
  close(pool->efd);
  g_free(pool);
}
