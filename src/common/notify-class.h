/* notify-class.h - Postfix's notify_classes: which problems postmaster
 * hears of.  bounce, 2bounce and delay are qmgr's notices; policy,
 * protocol, resource and software are smtpd's session transcripts (data
 * is accepted, as Postfix's, and never acted on: there is no header or
 * body check that could report it). */
#pragma once

#include <glib.h>

#include "config.h"

#define NOTIFY_CLASS_BOUNCE   (1u << 0)
#define NOTIFY_CLASS_2BOUNCE  (1u << 1)
#define NOTIFY_CLASS_DELAY    (1u << 2)
#define NOTIFY_CLASS_RESOURCE (1u << 3)
#define NOTIFY_CLASS_SOFTWARE (1u << 4)
#define NOTIFY_CLASS_POLICY   (1u << 5)
#define NOTIFY_CLASS_PROTOCOL (1u << 6)
#define NOTIFY_CLASS_DATA     (1u << 7)

/* notify_classes as a NOTIFY_CLASS_* mask ("bounce" includes 2bounce, as
 * in Postfix); unknown names are warned about and ignored. */
guint notify_classes_mask(const Config *config);
