/* mailctl-queue-list.c - "mailctl queue list": fetching the listing and
 * printing it as postqueue -p (or JSON) while it arrives.
 *
 * The listing comes through StreamMessages: the reply carries a socket
 * and the entries come through it in frames (dbus/org.postern.Mail1.xml),
 * printed one by one, so a queue of any size lists in constant memory.
 * When the connection cannot pass file descriptors (-H over ssh) or the
 * service has no StreamMessages, it pages through ListMessages with
 * "limit" and "after" instead.
 *
 * The text layout is postqueue -p's long-queue-id layout with the id
 * column as wide as the longest id plus its mark: "*" after an active
 * id, "!" after a held one, each deferral reason in parentheses above
 * the recipients it applies to, "-- N Kbytes in M Requests." at the
 * end, or "Mail queue is empty".  --json prints one array of the
 * ListMessages dictionaries.
 */
#include "mailctl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>

#define MAILCTL_LIST_PAGE 2000            /* entries per ListMessages page */
#define MAILCTL_LIST_MAX_FRAME (256u << 20) /* no entry is anywhere near this */
#define MAILCTL_LIST_READ (256 * 1024)

typedef struct {
  gboolean json;
  int width;            /* the id column; 0 until the first entry */
  guint64 total;        /* bytes of the messages listed */
  guint64 count;
  const char *last_id;  /* of the entry printed last (valid during the call) */
} MailctlListing;

/* The fields of an entry the text layout shows, in one pass. */
typedef struct {
  const char *id, *queue, *sender, *error;
  guint64 size, arrival;
  gboolean have_arrival;
  GVariant *recipients;   /* owned; NULL when absent */
} MailctlEntry;

static void
mailctl_entry_parse(GVariant *dict, MailctlEntry *e)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  *e = (MailctlEntry) { .id = "?", .queue = "", .sender = "" };
  g_variant_iter_init(&iter, dict);
  while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
    gboolean is_str = g_variant_is_of_type(value, G_VARIANT_TYPE_STRING);
    gboolean is_t = g_variant_is_of_type(value, G_VARIANT_TYPE_UINT64);

    /* Strings point into dict, which outlives e. */
    if (is_str && strcmp(key, "id") == 0)
      e->id = g_variant_get_string(value, NULL);
    else if (is_str && strcmp(key, "queue") == 0)
      e->queue = g_variant_get_string(value, NULL);
    else if (is_str && strcmp(key, "sender") == 0)
      e->sender = g_variant_get_string(value, NULL);
    else if (is_str && strcmp(key, "error") == 0)
      e->error = g_variant_get_string(value, NULL);
    else if (is_t && strcmp(key, "size") == 0)
      e->size = g_variant_get_uint64(value);
    else if (is_t && strcmp(key, "arrival-time") == 0) {
      e->arrival = g_variant_get_uint64(value);
      e->have_arrival = TRUE;
    } else if (strcmp(key, "recipients") == 0
               && g_variant_is_of_type(value, G_VARIANT_TYPE("aa{sv}")) && e->recipients == NULL)
      e->recipients = g_variant_ref(value);
    g_variant_unref(value);
  }
}

static void
mailctl_entry_clear(MailctlEntry *e)
{
  g_clear_pointer(&e->recipients, g_variant_unref);
}

static const char *
mailctl_entry_mark(const MailctlEntry *e)
{
  if (strcmp(e->queue, "active") == 0)
    return "*";
  if (strcmp(e->queue, "hold") == 0)
    return "!";
  return "";
}

/* A reason line, right-aligned at column 76 as postqueue does. */
static void
mailctl_print_reason(const char *why)
{
  printf("%*s(%s)\n", MAX(0, 76 - (int) strlen(why)), "", why);
}

static void
mailctl_print_recipients(GVariant *rcpts, int width)
{
  g_autofree char *saved = g_strdup("");
  GVariantIter iter;
  GVariant *rcpt;

  g_variant_iter_init(&iter, rcpts);
  while ((rcpt = g_variant_iter_next_value(&iter)) != NULL) {
    const char *address = "", *state = "pending", *why = "", *key;
    GVariantIter fields;
    GVariant *value;

    g_variant_iter_init(&fields, rcpt);
    while (g_variant_iter_next(&fields, "{&sv}", &key, &value)) {
      if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)) {
        if (strcmp(key, "address") == 0)
          address = g_variant_get_string(value, NULL);
        else if (strcmp(key, "state") == 0)
          state = g_variant_get_string(value, NULL);
        else if (strcmp(key, "reason") == 0)
          why = g_variant_get_string(value, NULL);
      }
      g_variant_unref(value);
    }
    if (strcmp(state, "pending") == 0) {
      /* A reason line when it differs from the previous recipient's;
       * "reason unavailable" when this one has none after one that had. */
      if (strcmp(saved, why) != 0) {
        g_free(saved);
        saved = g_strdup(why);
        mailctl_print_reason(*why ? why : "reason unavailable");
      }
      printf("%-*s %8s %-19s %s\n", width, "", "", "", address);
    }
    g_variant_unref(rcpt);
  }
}

/* One message; id_width is the longest id the listing has (0: unknown,
 * this entry's). */
static void
mailctl_listing_add(MailctlListing *l, GVariant *dict, guint id_width)
{
  MailctlEntry e;
  char when[64];

  if (l->json) {
    g_autoptr(GString) out = g_string_sized_new(512);

    g_string_append_c(out, l->count == 0 ? '[' : ',');
    mailctl_json_append(out, dict);
    fwrite(out->str, 1, out->len, stdout);
    l->count++;
    return;
  }
  mailctl_entry_parse(dict, &e);
  if (l->count == 0) {
    /* Postfix's long id column (17), widened to the ids and a mark. */
    l->width = MAX(17, (int) MAX(id_width, (guint) strlen(e.id)) + 1);
    printf("%-*s %8s %-19s %s\n", l->width, "----Queue ID-----", "--Size--",
           "---Arrival Time----", "--Sender/Recipient------");
  } else {
    printf("\n");
  }
  if (e.have_arrival)
    mailctl_format_time(when, sizeof when, e.arrival, FALSE);
  else
    g_strlcpy(when, "??", sizeof when);
  printf("%s%-*s %8" G_GUINT64_FORMAT " %19.19s %s\n", e.id,
         MAX(0, l->width - (int) strlen(e.id)), mailctl_entry_mark(&e), e.size, when,
         *e.sender ? e.sender : "MAILER-DAEMON");
  if (e.recipients)
    mailctl_print_recipients(e.recipients, l->width);
  else if (e.error)
    mailctl_print_reason(e.error);
  l->total += e.size;
  l->count++;
  mailctl_entry_clear(&e);
}

static void
mailctl_listing_finish(MailctlListing *l)
{
  if (l->json)
    fputs(l->count == 0 ? "[]\n" : "]\n", stdout);
  else if (l->count == 0)
    printf("Mail queue is empty\n");
  else
    printf("\n-- %" G_GUINT64_FORMAT " Kbytes in %" G_GUINT64_FORMAT " Request%s.\n",
           l->total / 1024, l->count, l->count == 1 ? "" : "s");
}

/* ---------------------------------------------------------------- the stream */

/* One frame's payload as an a{sv} (copied: GVariant wants it aligned). */
static GVariant *
mailctl_frame_dict(const guint8 *data, guint32 len)
{
  gpointer copy = g_memdup2(data, len);

  return g_variant_new_from_data(G_VARIANT_TYPE_VARDICT, copy, len, FALSE, g_free, copy);
}

typedef enum { MAILCTL_STREAM_MORE, MAILCTL_STREAM_DONE, MAILCTL_STREAM_FAILED } MailctlStreamState;

/* Handles the frames complete in buf[0..len); *used says how far. */
static MailctlStreamState
mailctl_stream_frames(MailctlListing *l, const guint8 *buf, gsize len, gsize *used,
                      gboolean *have_head, guint *id_width, GString *why)
{
  gsize off = 0;

  while (len - off >= 5) {
    guint32 n = (guint32) buf[off] | (guint32) buf[off + 1] << 8 | (guint32) buf[off + 2] << 16
                | (guint32) buf[off + 3] << 24;
    char kind = (char) buf[off + 4];
    g_autoptr(GVariant) dict = NULL;

    if (n > MAILCTL_LIST_MAX_FRAME) {
      g_string_assign(why, "malformed listing stream (frame too large)");
      return MAILCTL_STREAM_FAILED;
    }
    if (len - off - 5 < n)
      break;
    dict = g_variant_ref_sink(mailctl_frame_dict(buf + off + 5, n));
    if (G_BYTE_ORDER == G_BIG_ENDIAN) {
      GVariant *swapped = g_variant_byteswap(dict);
      g_variant_unref(dict);
      dict = g_variant_ref_sink(swapped);
    }
    off += 5 + n;
    if (!*have_head) {
      guint32 version = 0;

      if (kind != 'h' || !g_variant_lookup(dict, "version", "u", &version) || version != 1) {
        g_string_assign(why, "unsupported listing stream (wrong version or no header)");
        return MAILCTL_STREAM_FAILED;
      }
      g_variant_lookup(dict, "id-width", "u", id_width);
      *have_head = TRUE;
      continue;
    }
    switch (kind) {
    case 'm':
      mailctl_listing_add(l, dict, *id_width);
      break;
    case 'e':
      *used = off;
      return MAILCTL_STREAM_DONE;
    case 'x': {
      const char *text = "no reason given";
      g_variant_lookup(dict, "message", "&s", &text);
      g_string_printf(why, "the listing was cut short: %s", text);
      return MAILCTL_STREAM_FAILED;
    }
    default:
      g_string_printf(why, "malformed listing stream (frame kind 0x%02x)", (guint8) kind);
      return MAILCTL_STREAM_FAILED;
    }
  }
  *used = off;
  return MAILCTL_STREAM_MORE;
}

static int
mailctl_stream_read(MailctlListing *l, int fd)
{
  g_autoptr(GByteArray) buf = g_byte_array_sized_new(2 * MAILCTL_LIST_READ);
  g_autoptr(GString) why = g_string_new(NULL);
  gboolean have_head = FALSE;
  guint id_width = 0;
  gsize start = 0;

  for (;;) {
    MailctlStreamState state;
    gsize used = 0;
    ssize_t n;

    g_byte_array_set_size(buf, buf->len + MAILCTL_LIST_READ);
    n = read(fd, buf->data + buf->len - MAILCTL_LIST_READ, MAILCTL_LIST_READ);
    if (n < 0 && errno == EINTR) {
      g_byte_array_set_size(buf, buf->len - MAILCTL_LIST_READ);
      continue;
    }
    g_byte_array_set_size(buf, buf->len - MAILCTL_LIST_READ + (n > 0 ? (gsize) n : 0));
    if (n <= 0) {
      if (n < 0)
        mailctl_fail("reading the listing: %s", g_strerror(errno));
      else
        mailctl_fail("the listing ended early (%" G_GUINT64_FORMAT " messages received); "
                     "postern-qmgr stopped or cut a slow reader off", l->count);
      return MAILCTL_EXIT_FAILED;
    }
    state = mailctl_stream_frames(l, buf->data + start, buf->len - start, &used, &have_head,
                                  &id_width, why);
    start += used;
    if (state == MAILCTL_STREAM_DONE)
      return MAILCTL_EXIT_OK;
    if (state == MAILCTL_STREAM_FAILED) {
      mailctl_fail("%s", why->str);
      return MAILCTL_EXIT_FAILED;
    }
    if (start > 0 && start >= buf->len / 2) {
      g_byte_array_remove_range(buf, 0, (guint) start);
      start = 0;
    }
  }
}

/* ---------------------------------------------------------------- paging */

/* ListMessages a page at a time; limit 0 is all. */
static int
mailctl_list_paged(MailctlListing *l, GDBusConnection *bus, const MailctlOptions *opts,
                   GVariant *filter, guint64 limit)
{
  g_autofree char *after = NULL;

  for (;;) {
    guint64 want = limit ? MIN(limit - l->count, MAILCTL_LIST_PAGE) : MAILCTL_LIST_PAGE;
    g_autoptr(GVariant) reply = NULL;
    g_autoptr(GVariant) page = NULL;
    GVariantBuilder b;
    GVariantIter iter;
    const char *key;
    GVariant *value, *entry;
    gsize n;
    int status;

    if (want == 0)
      return MAILCTL_EXIT_OK;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_iter_init(&iter, filter);
    while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
      if (strcmp(key, "limit") != 0)
        g_variant_builder_add(&b, "{sv}", key, value);
      g_variant_unref(value);
    }
    g_variant_builder_add(&b, "{sv}", "limit", g_variant_new_uint32((guint32) want));
    if (after)
      g_variant_builder_add(&b, "{sv}", "after", g_variant_new_string(after));
    reply = mailctl_bus_call(bus, opts, MAILCTL_IFACE_QUEUE, "ListMessages",
                             g_variant_new("(a{sv})", &b), "(aa{sv})", &status);
    if (reply == NULL)
      return status;
    page = g_variant_get_child_value(reply, 0);
    n = g_variant_n_children(page);
    g_variant_iter_init(&iter, page);
    while ((entry = g_variant_iter_next_value(&iter)) != NULL) {
      const char *id;

      if (g_variant_lookup(entry, "id", "&s", &id)) {
        g_free(after);
        after = g_strdup(id);
      }
      mailctl_listing_add(l, entry, 0);
      g_variant_unref(entry);
    }
    if (n < want || after == NULL)
      return MAILCTL_EXIT_OK;
  }
}

/* ---------------------------------------------------------------- entry point */

int
mailctl_queue_list_print(const MailctlOptions *opts, GDBusConnection *bus, GVariant *filter,
                         gboolean json)
{
  MailctlListing listing = { .json = json };
  guint32 limit = 0;
  int status;

  g_variant_lookup(filter, "limit", "u", &limit);
  if (!isatty(STDOUT_FILENO))
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  if (g_dbus_connection_get_capabilities(bus) & G_DBUS_CAPABILITY_FLAGS_UNIX_FD_PASSING) {
    g_autoptr(GUnixFDList) fds = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = mailctl_bus_call_full(bus, opts, MAILCTL_IFACE_QUEUE,
                                                      "StreamMessages",
                                                      g_variant_new("(@a{sv})", filter), "(h)",
                                                      &fds, &error);
    gint32 index = -1;
    int fd;

    /* A postern-qmgr from before StreamMessages: page instead. */
    if (reply == NULL && !g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD))
      return mailctl_bus_error(error);
    if (reply != NULL) {
      g_variant_get(reply, "(h)", &index);
      fd = fds && index >= 0 && index < g_unix_fd_list_get_length(fds)
           ? g_unix_fd_list_get(fds, index, NULL) : -1;
      if (fd < 0) {
        mailctl_fail("StreamMessages gave no stream");
        return MAILCTL_EXIT_FAILED;
      }
      status = mailctl_stream_read(&listing, fd);
      close(fd);
      if (status != MAILCTL_EXIT_OK) {
        fflush(stdout);
        return status;
      }
      mailctl_listing_finish(&listing);
      return fflush(stdout) == 0 ? MAILCTL_EXIT_OK : MAILCTL_EXIT_FAILED;
    }
  }
  status = mailctl_list_paged(&listing, bus, opts, filter, limit);
  if (status != MAILCTL_EXIT_OK) {
    fflush(stdout);
    return status;
  }
  mailctl_listing_finish(&listing);
  return fflush(stdout) == 0 ? MAILCTL_EXIT_OK : MAILCTL_EXIT_FAILED;
}
