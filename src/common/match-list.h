/* match-list.h - the entry syntax that Postfix match lists share
 * (util/match_list.c): domain lists (domain-list.h) and network lists
 * (inet.h NetList).
 *
 * A list parameter arrives split (config_list()).  Each entry is a
 * pattern, "!pattern" (negated; "!!" cancels out), a lookup table
 * "type:name" (opened by the list's owner), or "/file/name": the
 * patterns in that file, read here once when the list is built, one or
 * more per line separated by white space or commas, "#" starting a
 * comment; "!/file/name" negates each of them.  Files may name other
 * files and tables.  No logging.
 */
#pragma once

#include <glib.h>

/* What asking a match list gives: first match wins, and a table that
 * cannot answer stops the search (never a silent "not listed"). */
typedef enum {
  MATCH_NONE = 0,   /* not listed, or excluded by a "!" entry */
  MATCH_FOUND,      /* listed */
  MATCH_TEMPFAIL,   /* a table of the list could not answer; error set */
} MatchResult;

/* Called for each pattern ("!" and files already resolved), in list
 * order.  An error it sets for a pattern read from a file gets a
 * "PATH:LINE: " prefix. */
typedef gboolean (*MatchListFunc)(const char *pattern, gboolean negate, gpointer data,
                                  GError **error);

/* Walks entries, expanding "/file/name" entries in place.  A file that
 * cannot be read is a POSTERN_ERROR_CONFIG "open file PATH: why" error;
 * so are files nested more than a few levels deep (a loop). */
gboolean match_list_walk(const char *const *entries, MatchListFunc fn, gpointer data,
                         GError **error);

/* TRUE when pattern names a lookup table "type:name": a ':' after a
 * table type word (letters, digits, '_', '-').  IPv6 addresses never
 * qualify: their first group is hex digits only and is followed by a
 * hex digit or ':'. */
gboolean match_list_is_table(const char *pattern);
