/* sendmail-addr.c - RFC 5322 address lists as sendmail(1) reads them:
 * command-line recipients ("a@b, Name <c@d>"), the -f sender, and the
 * To:/Cc:/Bcc: headers of "sendmail -t".  Pure; no I/O.
 *
 * Tokens: quoted strings, domain literals and atoms are kept as written;
 * comments and white space (folding included) are dropped; "<", ">",
 * ",", ";", ":" and "@" are structure.  An address is what lies between
 * "<" and ">" when there is a "<" (a phrase before it is dropped), else
 * the tokens up to the next "," or ";" joined; the name of a group
 * ("name:") is dropped.
 */
#include <string.h>

#include "sendmail.h"

typedef enum { TOK_WORD, TOK_SPECIAL } TokKind;

typedef struct {
  TokKind kind;
  char special;   /* TOK_SPECIAL */
  GString *text;  /* TOK_WORD: atom, "quoted" or [literal], as written */
} Tok;

static void
tok_free(gpointer p)
{
  Tok *t = p;
  if (t->text != NULL)
    g_string_free(t->text, TRUE);
  g_free(t);
}

/* Appends a word token: an atom (dots included), a quoted string or a
 * domain literal, as written. */
static void
tok_word(GPtrArray *toks, const char *s, gsize n)
{
  Tok *t = g_new0(Tok, 1);
  t->kind = TOK_WORD;
  t->text = g_string_new_len(s, n);
  g_ptr_array_add(toks, t);
}

static void
tok_special(GPtrArray *toks, char c)
{
  Tok *t = g_new0(Tok, 1);
  t->kind = TOK_SPECIAL;
  t->special = c;
  g_ptr_array_add(toks, t);
}

static GPtrArray *
tokenize(const char *p)
{
  GPtrArray *toks = g_ptr_array_new_with_free_func(tok_free);
  while (*p != '\0') {
    if (g_ascii_isspace(*p)) {
      p++;
    } else if (*p == '(') {
      int depth = 0;
      for (; *p != '\0'; p++) {
        if (*p == '\\' && p[1] != '\0')
          p++;
        else if (*p == '(')
          depth++;
        else if (*p == ')' && --depth == 0) {
          p++;
          break;
        }
      }
    } else if (*p == '"' || *p == '[') {
      char close = *p == '"' ? '"' : ']';
      const char *start = p++;
      while (*p != '\0' && *p != close) {
        if (*p == '\\' && p[1] != '\0')
          p++;
        p++;
      }
      if (*p == close)
        p++;
      tok_word(toks, start, p - start);
    } else if (strchr("<>,;:@", *p) != NULL) {
      tok_special(toks, *p++);
    } else {
      const char *start = p;
      while (*p != '\0' && !g_ascii_isspace(*p) && strchr("<>,;:@()\"[", *p) == NULL)
        p++;
      tok_word(toks, start, p - start);
    }
  }
  return toks;
}

/* Joins toks[from..to) into an address; a source route "@a,@b:" is dropped. */
static char *
join(GPtrArray *toks, guint from, guint to)
{
  for (guint i = from; i < to; i++) {
    Tok *t = toks->pdata[i];
    if (t->kind == TOK_SPECIAL && t->special == ':')
      from = i + 1;   /* <@route:user@domain> */
  }
  GString *s = g_string_new(NULL);
  for (guint i = from; i < to; i++) {
    Tok *t = toks->pdata[i];
    if (t->kind == TOK_WORD)
      g_string_append_len(s, t->text->str, t->text->len);
    else if (t->special == '@')
      g_string_append_c(s, '@');
    /* a stray "," inside <> (a route list) is dropped */
  }
  return g_string_free(s, FALSE);
}

GPtrArray *
sendmail_addr_list(const char *text)
{
  GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GPtrArray) toks = tokenize(text != NULL ? text : "");
  guint start = 0;   /* first token of the current address */
  guint i = 0;

  while (i <= toks->len) {
    Tok *t = i < toks->len ? toks->pdata[i] : NULL;
    if (t != NULL && t->kind == TOK_SPECIAL && t->special == '<') {
      /* phrase <route-addr>: the address is inside */
      guint j = i + 1;
      while (j < toks->len &&
             !(((Tok *) toks->pdata[j])->kind == TOK_SPECIAL &&
               ((Tok *) toks->pdata[j])->special == '>'))
        j++;
      g_ptr_array_add(out, join(toks, i + 1, j));
      /* skip to the end of this address */
      i = j + 1;
      while (i < toks->len && !(((Tok *) toks->pdata[i])->kind == TOK_SPECIAL &&
                                strchr(",;", ((Tok *) toks->pdata[i])->special) != NULL))
        i++;
      start = i + 1;
      i++;
      continue;
    }
    if (t != NULL && t->kind == TOK_SPECIAL && t->special == ':') {
      start = i + 1;   /* "group name:" */
      i++;
      continue;
    }
    if (t == NULL || (t->kind == TOK_SPECIAL && (t->special == ',' || t->special == ';'))) {
      if (i > start)
        g_ptr_array_add(out, join(toks, start, i));
      start = i + 1;
      i++;
      continue;
    }
    i++;
  }
  return out;
}

/* RFC 5322 specials, plus Postfix's "!%" address operators. */
static gboolean
needs_quotes(const char *name)
{
  for (const char *p = name; *p != '\0'; p++)
    if (strchr("()<>[]:;@\\,.\"!%", *p) != NULL)
      return TRUE;
  return FALSE;
}

char *
sendmail_addr_phrase(const char *name)
{
  if (!needs_quotes(name))
    return g_strdup(name);
  GString *s = g_string_new("\"");
  for (const char *p = name; *p != '\0'; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_c(s, '\\');
    g_string_append_c(s, *p);
  }
  g_string_append_c(s, '"');
  return g_string_free(s, FALSE);
}

char *
sendmail_addr_comment(const char *name)
{
  GString *s = g_string_new("(");
  for (const char *p = name; *p != '\0'; p++) {
    if (*p == '(' || *p == ')' || *p == '\\')
      g_string_append_c(s, '\\');
    g_string_append_c(s, *p);
  }
  g_string_append_c(s, ')');
  return g_string_free(s, FALSE);
}
