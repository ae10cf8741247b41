/* qmgr-inject.c - writes queue files the way smtpd does (QueueWriter),
 * for trying postern-qmgr by hand and for measuring it.  Not a test.
 *
 *   qmgr-inject QUEUE_DIR COUNT SIZE THREADS SENDER RCPT...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue-file.h"

static const char *queue_dir, *sender;
static char **rcpts;
static int n_rcpts;
static gsize size;
static gint remaining;

static gpointer
inject_thread(gpointer data)
{
  g_autoptr(GString) body = g_string_new(NULL);

  while (g_atomic_int_add(&remaining, -1) > 0) {
    g_autoptr(GError) error = NULL;
    g_autoptr(QueueWriter) w = NULL;
    g_autoptr(QueueEnvelope) env = queue_envelope_new();
    w = queue_writer_new(queue_dir, &error);
    if (w == NULL)
      g_error("%s", error->message);
    env->sender = g_strdup(sender);
    env->client_name = g_strdup("localhost");
    env->client_addr = g_strdup("127.0.0.1");
    env->protocol = g_strdup("ESMTP");
    env->arrival_us = g_get_real_time();
    for (int i = 0; i < n_rcpts; i++)
      queue_envelope_add_recipient(env, rcpts[i], NULL);
    g_string_printf(body, "Received: from localhost by qmgr-inject; id %s\n"
                          "From: <%s>\nSubject: test %s\n\nFrom the injector\n",
                    queue_writer_id(w), sender, queue_writer_id(w));
    while (body->len < size)
      g_string_append(body, "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqr\n");
    if (!queue_writer_envelope(w, env, &error)
        || !queue_writer_content(w, body->str, body->len, &error)
        || !queue_writer_commit(w, &error))
      g_error("%s", error->message);
  }
  return NULL;
}

int
main(int argc, char **argv)
{
  GPtrArray *threads = g_ptr_array_new();
  gint64 start;
  int n_threads;

  if (argc < 7) {
    fprintf(stderr, "usage: %s QUEUE_DIR COUNT SIZE THREADS SENDER RCPT...\n", argv[0]);
    return 2;
  }
  queue_dir = argv[1];
  remaining = atoi(argv[2]);
  size = (gsize) atol(argv[3]);
  n_threads = MAX(atoi(argv[4]), 1);
  sender = argv[5];
  rcpts = argv + 6;
  n_rcpts = argc - 6;
  {
    g_autoptr(GError) error = NULL;
    if (!queue_dirs_ensure(queue_dir, (uid_t) -1, (gid_t) -1, &error))
      g_error("%s", error->message);
  }
  start = g_get_monotonic_time();
  for (int i = 0; i < n_threads; i++)
    g_ptr_array_add(threads, g_thread_new("inject", inject_thread, NULL));
  for (guint i = 0; i < threads->len; i++)
    g_thread_join(threads->pdata[i]);
  fprintf(stderr, "injected %s messages in %.3f s\n", argv[2],
          (double) (g_get_monotonic_time() - start) / G_USEC_PER_SEC);
  g_ptr_array_free(threads, TRUE);
  return 0;
}
