/*
 * The log sink. The library never prints; the application installs a sink.
 * The sink is process-global and meant to be installed once at start-up,
 * before any threads exist, so it is read without locking.
 */
#include <stdarg.h>
#include <stdio.h>

#include "ragward/log.h"
#include "core/banned.h"

#define LOG_LINE_MAX 1024

static ward_log_fn sink_fn;
static void *sink_ctx;
static ward_log_level sink_min = WARD_LOG_INFO;

void ward_log_set_sink(ward_log_fn fn, void *ctx, ward_log_level min_level)
{
	sink_fn = fn;
	sink_ctx = ctx;
	sink_min = min_level;
}

void ward_log(ward_log_level level, const char *fmt, ...)
{
	/* A fixed stack buffer: logging must work when allocation is failing. */
	char line[LOG_LINE_MAX];
	va_list ap;
	char *p;

	if (sink_fn == NULL || level < sink_min || fmt == NULL)
		return;
	va_start(ap, fmt);
	if (vsnprintf(line, sizeof(line), fmt, ap) < 0)
		line[0] = '\0';
	va_end(ap);
	/* One record per call: a newline from an input would forge a second one. */
	for (p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	sink_fn(sink_ctx, level, line);
}

const char *ward_log_level_name(ward_log_level level)
{
	switch (level) {
	case WARD_LOG_DEBUG:
		return "debug";
	case WARD_LOG_INFO:
		return "info";
	case WARD_LOG_WARN:
		return "warn";
	case WARD_LOG_SECURITY:
		return "security";
	case WARD_LOG_ERROR:
		return "error";
	}
	return "unknown";
}
