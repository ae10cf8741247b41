/* test-template.c - $name expansion of per-use templates (mac_expand forms). */
#include "template.h"

#include <string.h>

static const char *
lookup(const char *name, gpointer data)
{
  (void) data;
  if (strcmp(name, "home") == 0)
    return "/home/u";
  if (strcmp(name, "ext") == 0)
    return "lists";
  if (strcmp(name, "empty") == 0)
    return "";
  return NULL;
}

static void
check(const char *template, const char *want, gboolean want_undefined)
{
  gboolean undefined = !want_undefined;
  g_autofree char *got = template_expand(template, lookup, NULL, &undefined);

  g_assert_cmpstr(got, ==, want);
  g_assert_cmpint(undefined, ==, want_undefined);
}

static void
test_forms(void)
{
  check("$home/.forward", "/home/u/.forward", FALSE);
  check("${home}/x $(home)/y", "/home/u/x /home/u/y", FALSE);
  check("$home/.forward+${ext}", "/home/u/.forward+lists", FALSE);
  check("$home/.forward${ext?+$ext}", "/home/u/.forward+lists", FALSE);
  check("$home/.forward${empty?+$empty}", "/home/u/.forward", FALSE);
  check("${empty:none}${ext:none}", "none", FALSE);
  check("cost: $$5", "cost: $5", FALSE);
  /* a plain name without a value: empty, and flagged */
  check("$home/.forward+$empty", "/home/u/.forward+", TRUE);
  check("$home/.forward${nosuch}", "/home/u/.forward", TRUE);
  /* unterminated braces stop the expansion */
  check("a${home", "a", FALSE);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/template/forms", test_forms);
  return g_test_run();
}
