/* queue-private.h - what queue-file.c and queue-read.c share.
 * Internal to src/common. */
#pragma once

#include "queue-file.h"

#define QUEUE_SIZE_DIGITS   20      /* the Z record: zero-padded decimal */
#define QUEUE_END_MARK      "E\n"   /* first trailer record, right after the content */

/* Sets a POSTERN_ERROR_TEMPORARY "WHAT NAME: strerror" error; FALSE. */
gboolean queue_errno(GError **error, int err, const char *what, const char *name);

/* TRUE when a field can be stored in one record (no CR or LF). */
gboolean queue_field_ok(const char *value);
