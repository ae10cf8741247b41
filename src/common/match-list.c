/* match-list.c - walks the entries of a Postfix match list: negation,
 * "/file/name" expansion, and telling tables from patterns.
 *
 * Follows Postfix's match_list_parse(): a file is replaced by its
 * contents, read once (the list is built once per configuration load),
 * and "!" in front of a file negates every pattern in it.  Unlike
 * Postfix, a "#" at the start of a word also ends a line there, so
 * "10.0.0.0/8  # office" is one pattern.  Never logs.
 */
#include "match-list.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define MATCH_LIST_MAX_DEPTH 10         /* files naming files */
#define MATCH_LIST_FILE_MAX (16 << 20)  /* bytes read from one file */

static gboolean match_list_walk_one(const char *entry, gboolean negate, guint depth,
                                    MatchListFunc fn, gpointer data, GError **error);

gboolean
match_list_is_table(const char *pattern)
{
  const char *p = pattern;
  gboolean all_hex = TRUE;

  if (!g_ascii_isalpha(*p))
    return FALSE;
  for (; g_ascii_isalnum(*p) || *p == '_' || *p == '-'; p++)
    all_hex = all_hex && g_ascii_isxdigit(*p);
  if (*p != ':')
    return FALSE;
  /* "dead:beef::1", "fe80::1": an IPv6 address, not "type:name". */
  return !(all_hex && (g_ascii_isxdigit(p[1]) || p[1] == ':'));
}

/* Reads a whole pattern file; POSTERN_ERROR_CONFIG naming it if it cannot. */
static char *
match_list_read(const char *path, GError **error)
{
  g_autoptr(GString) text = g_string_new(NULL);
  char buf[8192];
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

  if (fd < 0) {
    int e = errno;
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "open file %s: %s", path,
                g_strerror(e));
    return NULL;
  }
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 || text->len + (gsize) MAX(n, 0) > MATCH_LIST_FILE_MAX) {
      int e = n < 0 ? errno : EFBIG;
      close(fd);
      g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "read file %s: %s", path,
                  g_strerror(e));
      return NULL;
    }
    if (n == 0)
      break;
    g_string_append_len(text, buf, n);
  }
  close(fd);
  if (memchr(text->str, '\0', text->len)) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "file %s contains a NUL byte", path);
    return NULL;
  }
  return g_string_free(g_steal_pointer(&text), FALSE);
}

/* Cuts line at a "#" that starts a word. */
static void
match_list_strip_comment(char *line)
{
  for (char *p = line; *p; p++) {
    if (*p == '#' && (p == line || strchr(" \t\r,", p[-1]))) {
      *p = '\0';
      return;
    }
  }
}

/* The patterns of one file, each line split as a list value. */
static gboolean
match_list_walk_file(const char *path, gboolean negate, guint depth, MatchListFunc fn,
                     gpointer data, GError **error)
{
  g_autofree char *text = NULL;
  guint lineno = 0;

  if (depth >= MATCH_LIST_MAX_DEPTH) {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG,
                "file %s: files nested too deeply (a file that names itself?)", path);
    return FALSE;
  }
  text = match_list_read(path, error);
  if (text == NULL)
    return FALSE;
  for (char *line = text; line != NULL;) {
    char *nl = strchr(line, '\n');
    g_auto(GStrv) words = NULL;

    if (nl != NULL)
      *nl = '\0';
    lineno++;
    match_list_strip_comment(line);
    words = config_split_list(line);
    for (guint i = 0; words[i] != NULL; i++) {
      if (!match_list_walk_one(words[i], negate, depth + 1, fn, data, error)) {
        g_prefix_error(error, "%s:%u: ", path, lineno);
        return FALSE;
      }
    }
    line = nl != NULL ? nl + 1 : NULL;
  }
  return TRUE;
}

static gboolean
match_list_walk_one(const char *entry, gboolean negate, guint depth, MatchListFunc fn,
                    gpointer data, GError **error)
{
  const char *p = entry;

  while (*p == '!') {
    negate = !negate;
    p++;
  }
  if (*p == '\0') {
    g_set_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG, "empty pattern \"%s\"", entry);
    return FALSE;
  }
  if (*p == '/')
    return match_list_walk_file(p, negate, depth, fn, data, error);
  return fn(p, negate, data, error);
}

gboolean
match_list_walk(const char *const *entries, MatchListFunc fn, gpointer data, GError **error)
{
  for (; entries != NULL && *entries != NULL; entries++) {
    if (**entries != '\0' && !match_list_walk_one(*entries, FALSE, 0, fn, data, error))
      return FALSE;
  }
  return TRUE;
}
