/*
 * Log sink. The library never prints: it reports through the sink the
 * application installs (the CLI writes to stderr; the server may use syslog).
 */
#ifndef RAGWARD_LOG_H
#define RAGWARD_LOG_H

#include "ragward/error.h"

typedef enum {
	WARD_LOG_DEBUG = 0,
	WARD_LOG_INFO = 1,
	WARD_LOG_WARN = 2,
	WARD_LOG_SECURITY = 3, /* tamper found, signature failure, refused input */
	WARD_LOG_ERROR = 4,
} ward_log_level;

typedef void (*ward_log_fn)(void *ctx, ward_log_level level, const char *msg);

/* Installs the sink (NULL: discard everything) and the lowest level passed on. */
void ward_log_set_sink(ward_log_fn fn, void *ctx, ward_log_level min_level);
void ward_log(ward_log_level level, const char *fmt, ...) WARD_PRINTF(2, 3);
const char *ward_log_level_name(ward_log_level level);

#endif
