/* notify-class.c - notify_classes (see notify-class.h). */
#include "notify-class.h"

#include "log.h"

static const struct {
  const char *name;
  guint bit;
} notify_class_names[] = {
  { "bounce", NOTIFY_CLASS_BOUNCE | NOTIFY_CLASS_2BOUNCE },
  { "2bounce", NOTIFY_CLASS_2BOUNCE },
  { "data", NOTIFY_CLASS_DATA },
  { "delay", NOTIFY_CLASS_DELAY },
  { "policy", NOTIFY_CLASS_POLICY },
  { "protocol", NOTIFY_CLASS_PROTOCOL },
  { "resource", NOTIFY_CLASS_RESOURCE },
  { "software", NOTIFY_CLASS_SOFTWARE },
};

guint
notify_classes_mask(const Config *config)
{
  const char *const *names = config_list(config, "notify_classes");
  guint mask = 0;

  for (guint i = 0; names && names[i]; i++) {
    gsize k;

    for (k = 0; k < G_N_ELEMENTS(notify_class_names); k++)
      if (g_ascii_strcasecmp(names[i], notify_class_names[k].name) == 0)
        break;
    if (k == G_N_ELEMENTS(notify_class_names))
      log_warning("notify_classes: unknown class \"%s\", ignoring", names[i]);
    else
      mask |= notify_class_names[k].bit;
  }
  return mask;
}
