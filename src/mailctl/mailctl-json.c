/* mailctl-json.c - GVariant as JSON for --json output (one object or
 * array per line), and the time format of the listings.
 *
 * Dictionaries (a{sv}, a{ss}, a{su}, ...) become objects, arrays and
 * tuples become arrays, variants are unwrapped, 64-bit integers stay
 * integers (JSON has no limit; consumers such as Python read them
 * exactly), strings are escaped per RFC 8259.
 */
#include "mailctl.h"

#include <stdio.h>
#include <time.h>

static void
mailctl_json_string(GString *out, const char *s)
{
  g_string_append_c(out, '"');
  for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
    switch (*p) {
    case '"': g_string_append(out, "\\\""); break;
    case '\\': g_string_append(out, "\\\\"); break;
    case '\n': g_string_append(out, "\\n"); break;
    case '\r': g_string_append(out, "\\r"); break;
    case '\t': g_string_append(out, "\\t"); break;
    default:
      if (*p < 0x20)
        g_string_append_printf(out, "\\u%04x", *p);
      else
        g_string_append_c(out, (char) *p);
    }
  }
  g_string_append_c(out, '"');
}

void
mailctl_json_append(GString *out, GVariant *floating_or_not)
{
  g_autoptr(GVariant) value = g_variant_ref_sink(floating_or_not);
  const GVariantType *type = g_variant_get_type(value);

  if (g_variant_is_of_type(value, G_VARIANT_TYPE_VARIANT)) {
    g_autoptr(GVariant) inner = g_variant_get_variant(value);
    mailctl_json_append(out, inner);
  } else if (g_variant_is_of_type(value, G_VARIANT_TYPE_BOOLEAN)) {
    g_string_append(out, g_variant_get_boolean(value) ? "true" : "false");
  } else if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)
             || g_variant_is_of_type(value, G_VARIANT_TYPE_OBJECT_PATH)
             || g_variant_is_of_type(value, G_VARIANT_TYPE_SIGNATURE)) {
    mailctl_json_string(out, g_variant_get_string(value, NULL));
  } else if (g_variant_is_of_type(value, G_VARIANT_TYPE_BYTE)) {
    g_string_append_printf(out, "%u", g_variant_get_byte(value));
  } else if (g_variant_is_of_type(value, G_VARIANT_TYPE_INT16)) {
    g_string_append_printf(out, "%d", g_variant_get_int16(value));
  } else if (g_variant_is_of_type(value, G_VARIANT_TYPE_UINT16)) {
    g_string_append_printf(out, "%u", g_variant_get_uint16(value));
  } else if (g_variant_is_of_type(value, G_VARIANT_TYPE_INT32)) {
    g_string_append_printf(out, "%d", g_variant_get_int32(value));
  } else if (g_variant_is_of_type(value, G_VARIANT_TYPE_UINT32)) {
    g_string_append_printf(out, "%u", g_variant_get_uint32(value));
  } else if (g_variant_is_of_type(value, G_VARIANT_TYPE_INT64)) {
    g_string_append_printf(out, "%" G_GINT64_FORMAT, g_variant_get_int64(value));
  } else if (g_variant_is_of_type(value, G_VARIANT_TYPE_UINT64)) {
    g_string_append_printf(out, "%" G_GUINT64_FORMAT, g_variant_get_uint64(value));
  } else if (g_variant_is_of_type(value, G_VARIANT_TYPE_DOUBLE)) {
    g_string_append_printf(out, "%.17g", g_variant_get_double(value));
  } else if (g_variant_type_is_array(type)
             && g_variant_type_is_dict_entry(g_variant_type_element(type))) {
    GVariantIter iter;
    GVariant *entry;
    gboolean first = TRUE;

    g_string_append_c(out, '{');
    g_variant_iter_init(&iter, value);
    while ((entry = g_variant_iter_next_value(&iter)) != NULL) {
      g_autoptr(GVariant) key = g_variant_get_child_value(entry, 0);
      g_autoptr(GVariant) val = g_variant_get_child_value(entry, 1);

      if (!first)
        g_string_append_c(out, ',');
      first = FALSE;
      if (g_variant_is_of_type(key, G_VARIANT_TYPE_STRING))
        mailctl_json_string(out, g_variant_get_string(key, NULL));
      else {
        GString *k = g_string_new(NULL);
        mailctl_json_append(k, key);
        mailctl_json_string(out, k->str);
        g_string_free(k, TRUE);
      }
      g_string_append_c(out, ':');
      mailctl_json_append(out, val);
      g_variant_unref(entry);
    }
    g_string_append_c(out, '}');
  } else if (g_variant_is_container(value)) {
    GVariantIter iter;
    GVariant *child;
    gboolean first = TRUE;

    g_string_append_c(out, '[');
    g_variant_iter_init(&iter, value);
    while ((child = g_variant_iter_next_value(&iter)) != NULL) {
      if (!first)
        g_string_append_c(out, ',');
      first = FALSE;
      mailctl_json_append(out, child);
      g_variant_unref(child);
    }
    g_string_append_c(out, ']');
  } else {
    g_string_append(out, "null");
  }
}

void
mailctl_json_print(GVariant *value)
{
  g_autoptr(GString) out = g_string_new(NULL);

  mailctl_json_append(out, value);
  g_string_append_c(out, '\n');
  fputs(out->str, stdout);
}

void
mailctl_format_time(char *buf, gsize len, guint64 usec, gboolean with_year)
{
  time_t t = (time_t) (usec / G_USEC_PER_SEC);
  struct tm tm;

  if (localtime_r(&t, &tm) == NULL || strftime(buf, len, with_year ? "%a %b %e %H:%M:%S %Y"
                                                                   : "%a %b %e %H:%M:%S", &tm) == 0)
    g_strlcpy(buf, "??", len);
}
