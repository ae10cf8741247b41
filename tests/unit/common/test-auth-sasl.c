/* test-auth-sasl.c - auth-sasl.c: strict base64 and the security option
 * words (the exchanges themselves run against real SASL backends in
 * tests/integration/test_sasl.py). */
#include "auth-sasl.h"

#include <sasl/sasl.h>
#include <string.h>

static void
test_decode(void)
{
  static const struct {
    const char *text;
    const char *data;   /* NULL: malformed */
    gsize len;
  } cases[] = {
    { "", "", 0 },
    { "AGFsaWNlAHNlY3JldA==", "\0alice\0secret", 13 },
    { "dXNlcg==", "user", 4 },
    { "dXNlcg=x", NULL, 0 },      /* padding in the middle */
    { "dXNlcg", NULL, 0 },        /* not a multiple of 4 */
    { "dXN lcg==", NULL, 0 },     /* space */
    { "!!!!", NULL, 0 },
    { "dXNl\ncg==", NULL, 0 },
    { "====", NULL, 0 },
  };

  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    gsize len = 99;
    g_autofree guchar *got = auth_sasl_decode(cases[i].text, &len);

    if (cases[i].data == NULL) {
      if (got != NULL)
        g_error("case %u (%s) decoded", i, cases[i].text);
      continue;
    }
    g_assert_nonnull(got);
    g_assert_cmpmem(got, len, cases[i].data, cases[i].len);
  }
}

static void
test_security_flags(void)
{
  const char *const good[] = { "noanonymous", "NOPLAINTEXT", "nodictionary", NULL };
  const char *const bad[] = { "noanonymous", "nothing", NULL };
  const char *const none[] = { NULL };
  g_autoptr(GError) error = NULL;
  guint flags = 0;

  g_assert_true(auth_sasl_security_flags(good, &flags, &error));
  g_assert_cmphex(flags, ==, SASL_SEC_NOANONYMOUS | SASL_SEC_NOPLAINTEXT | SASL_SEC_NODICTIONARY);
  g_assert_true(auth_sasl_security_flags(none, &flags, &error));
  g_assert_cmphex(flags, ==, 0);
  g_assert_false(auth_sasl_security_flags(bad, &flags, &error));
  g_assert_error(error, POSTERN_ERROR, POSTERN_ERROR_CONFIG);
  g_assert_nonnull(strstr(error->message, "unknown SASL security option \"nothing\""));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/auth-sasl/decode", test_decode);
  g_test_add_func("/auth-sasl/security-flags", test_security_flags);
  return g_test_run();
}
