/* qmgr-stream.c - StreamMessages: a queue listing written into a socket
 * whose other end the caller got in the method reply, the way showq
 * streams the queue to postqueue.  A listing of any size then costs the
 * bus one small reply, and neither side holds the whole listing.
 *
 * The stream (dbus/org.postern.Mail1.xml, docs/dbus.md) is a sequence of
 * frames: a 4-byte little-endian payload length, one byte of kind, the
 * payload, a serialized GVariant "a{sv}" in little-endian byte order.
 * 'h' comes first ("version", "candidates", "id-width"), then one 'm'
 * per message (the ListMessages entry), then 'e' ("count") when the
 * listing is complete or 'x' ("message") when it was cut short.  A
 * stream that ends without 'e' is incomplete.
 *
 * Each stream has its own thread, which reads the queue files (through
 * the queue's directory fds, as qmgr-list.c does) and blocks in send()
 * while the reader is slow, at most QMGR_STREAM_SEND_TIMEOUT_S per
 * send.  At most QMGR_STREAM_MAX run or are being set up at once.
 * qmgr_stream_stop_all(), once the D-Bus thread has finished, cuts them
 * short (shutdown() wakes a blocked send) and waits for them, so no
 * stream outlives the service.
 */
#include "qmgr-dbus-private.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

#define QMGR_STREAM_MAX 4
#define QMGR_STREAM_SEND_TIMEOUT_S 60
#define QMGR_STREAM_FLUSH_BYTES (128 * 1024)
#define QMGR_STREAM_VERSION 1

struct _QmgrStream {
  QmgrDbus *d;
  int fd;                       /* our end */
  QmgrListScan *scan;
  QmgrListFilter filter;
  GHashTable *snapshot;
  GByteArray *buf;              /* frames not sent yet */
  gboolean failed;              /* the reader is gone, or stopping */
};

gboolean
qmgr_stream_reserve(QmgrDbus *d)
{
  gboolean ok;

  g_mutex_lock(&d->lock);
  ok = d->n_streams < QMGR_STREAM_MAX && !d->streams_stopping;
  if (ok)
    d->n_streams++;
  g_mutex_unlock(&d->lock);
  return ok;
}

void
qmgr_stream_unreserve(QmgrDbus *d)
{
  g_mutex_lock(&d->lock);
  g_assert(d->n_streams > 0);
  d->n_streams--;
  g_mutex_unlock(&d->lock);
}

static void
qmgr_stream_send(QmgrStream *s)
{
  gsize done = 0;

  while (!s->failed && done < s->buf->len) {
    ssize_t n = send(s->fd, s->buf->data + done, s->buf->len - done, MSG_NOSIGNAL);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        log_warning("D-Bus: StreamMessages: the reader took more than %d s, listing cut short",
                    QMGR_STREAM_SEND_TIMEOUT_S);
      s->failed = TRUE;     /* EPIPE: the reader went away; nothing to tell */
      break;
    }
    done += (gsize) n;
  }
  g_byte_array_set_size(s->buf, 0);
}

/* Appends one frame of kind with payload (floating or not; consumed). */
static void
qmgr_stream_frame(QmgrStream *s, char kind, GVariant *payload)
{
  g_autoptr(GVariant) value = g_variant_ref_sink(payload);
  g_autoptr(GVariant) le = NULL;
  guint8 head[5];
  guint32 len;

  if (G_BYTE_ORDER == G_BIG_ENDIAN) {
    le = g_variant_byteswap(value);
    g_clear_pointer(&value, g_variant_unref);
    value = g_steal_pointer(&le);
  }
  len = (guint32) g_variant_get_size(value);
  head[0] = (guint8) len;
  head[1] = (guint8) (len >> 8);
  head[2] = (guint8) (len >> 16);
  head[3] = (guint8) (len >> 24);
  head[4] = (guint8) kind;
  g_byte_array_append(s->buf, head, sizeof head);
  /* (not g_variant_store(): the serialiser wants an aligned buffer) */
  g_byte_array_append(s->buf, g_variant_get_data(value), len);
  if (s->buf->len >= QMGR_STREAM_FLUSH_BYTES)
    qmgr_stream_send(s);
}

static GVariant *
qmgr_stream_dict1(const char *key, GVariant *value)
{
  GVariantBuilder b;

  g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add(&b, "{sv}", key, value);
  return g_variant_builder_end(&b);
}

static gpointer
qmgr_stream_thread(gpointer data)
{
  QmgrStream *s = data;
  QmgrDbus *d = s->d;
  const int *dir_fds = qmgr_dbus_dir_fds(d);
  GVariantBuilder head;
  GVariant *entry;
  guint32 count = 0;

  g_variant_builder_init(&head, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add(&head, "{sv}", "version", g_variant_new_uint32(QMGR_STREAM_VERSION));
  g_variant_builder_add(&head, "{sv}", "candidates",
                        g_variant_new_uint32(qmgr_list_scan_size(s->scan)));
  g_variant_builder_add(&head, "{sv}", "id-width",
                        g_variant_new_uint32(qmgr_list_scan_width(s->scan)));
  qmgr_stream_frame(s, 'h', g_variant_builder_end(&head));
  while (!s->failed && (entry = qmgr_list_scan_next(s->scan, dir_fds, s->snapshot, &s->filter))) {
    qmgr_stream_frame(s, 'm', entry);
    count++;
    if (g_atomic_int_get(&d->streams_stopping))
      break;
  }
  if (g_atomic_int_get(&d->streams_stopping))
    qmgr_stream_frame(s, 'x', qmgr_stream_dict1("message",
                                                g_variant_new_string("postern-qmgr is stopping")));
  else
    qmgr_stream_frame(s, 'e', qmgr_stream_dict1("count", g_variant_new_uint32(count)));
  qmgr_stream_send(s);

  qmgr_list_scan_free(s->scan);
  qmgr_list_filter_clear(&s->filter);
  g_clear_pointer(&s->snapshot, g_hash_table_unref);
  g_byte_array_unref(s->buf);
  /* Out of the list before the fd closes: qmgr_stream_stop_all() may
   * shut it down meanwhile.  The unlock is the last use of d. */
  g_mutex_lock(&d->lock);
  g_ptr_array_remove_fast(d->streams, s);
  close(s->fd);
  d->n_streams--;
  g_cond_broadcast(&d->streams_cond);
  g_mutex_unlock(&d->lock);
  g_free(s);
  return NULL;
}

int
qmgr_stream_start(QmgrDbus *d, QmgrListScan *scan, QmgrListFilter *filter, GHashTable *snapshot,
                  GError **error)
{
  struct timeval tv = { .tv_sec = QMGR_STREAM_SEND_TIMEOUT_S };
  QmgrStream *s;
  GThread *thread;
  int fds[2];

  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_FAILED, "socketpair: %s", g_strerror(errno));
    qmgr_list_scan_free(scan);
    qmgr_stream_unreserve(d);
    return -1;
  }
  /* Nothing comes back from the reader; a slow one costs at most the
   * timeout per send. */
  shutdown(fds[0], SHUT_RD);
  shutdown(fds[1], SHUT_WR);
  setsockopt(fds[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  s = g_new0(QmgrStream, 1);
  s->d = d;
  s->fd = fds[0];
  s->scan = scan;
  s->filter = *filter;
  *filter = (QmgrListFilter) { 0 };
  s->snapshot = snapshot ? g_hash_table_ref(snapshot) : NULL;
  s->buf = g_byte_array_sized_new(QMGR_STREAM_FLUSH_BYTES + 4096);
  g_mutex_lock(&d->lock);
  g_ptr_array_add(d->streams, s);     /* its reservation is its slot now */
  g_mutex_unlock(&d->lock);
  thread = g_thread_new("stream", qmgr_stream_thread, s);
  g_thread_unref(thread);
  return fds[1];
}

void
qmgr_stream_stop_all(QmgrDbus *d)
{
  g_mutex_lock(&d->lock);
  g_atomic_int_set(&d->streams_stopping, 1);
  for (guint i = 0; i < d->streams->len; i++) {
    QmgrStream *s = d->streams->pdata[i];
    shutdown(s->fd, SHUT_RDWR);     /* wakes a send() that waits for the reader */
  }
  while (d->streams->len > 0)
    g_cond_wait(&d->streams_cond, &d->lock);
  g_mutex_unlock(&d->lock);
}
