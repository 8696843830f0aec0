/*
 * The thread-local error slot. Each thread sees only its own last error, so a
 * server worker never reports another request's failure.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ragward/error.h"
#include "core/banned.h"

static _Thread_local ward_error last_error;

/* vsnprintf truncates safely but may leave a half-written multi-byte UTF-8
 * sequence at the end; cut back to a character boundary so the message stays
 * valid UTF-8 when it ends up in JSON output. */
static void trim_partial_utf8(char *s, size_t len)
{
	size_t i = len;
	size_t cont = 0;
	size_t need;
	unsigned char lead;

	while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80 && cont < 3) {
		i--;
		cont++;
	}
	if (i == 0 || ((unsigned char)s[i - 1] & 0x80) == 0)
		return;
	lead = (unsigned char)s[i - 1];
	if ((lead & 0xE0) == 0xC0)
		need = 1;
	else if ((lead & 0xF0) == 0xE0)
		need = 2;
	else if ((lead & 0xF8) == 0xF0)
		need = 3;
	else
		need = 0;
	if (need != cont)
		s[i - 1] = '\0';
}

/* Messages are one line by contract; a newline smuggled in from an input
 * (a file name, a server reply) would split log records. */
static void flatten(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

static void format_into(char *dst, size_t size, const char *fmt, va_list ap)
{
	int n = vsnprintf(dst, size, fmt, ap);

	if (n < 0) {
		dst[0] = '\0';
		return;
	}
	if ((size_t)n >= size)
		trim_partial_utf8(dst, size - 1);
	flatten(dst);
}

int ward_error_vset(int code, const char *fmt, va_list ap)
{
	last_error.code = code;
	if (fmt == NULL)
		last_error.message[0] = '\0';
	else
		format_into(last_error.message, sizeof(last_error.message), fmt, ap);
	return code;
}

int ward_error_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ward_error_vset(code, fmt, ap);
	va_end(ap);
	return code;
}

int ward_error_wrap(const char *fmt, ...)
{
	char context[sizeof(last_error.message)];
	char previous[sizeof(last_error.message)];
	va_list ap;
	int n;

	/* The arguments may point into last_error.message itself, so format the
	 * context before touching the slot. */
	va_start(ap, fmt);
	format_into(context, sizeof(context), fmt, ap);
	va_end(ap);

	memcpy(previous, last_error.message, sizeof(previous));
	previous[sizeof(previous) - 1] = '\0';

	if (previous[0] == '\0')
		n = snprintf(last_error.message, sizeof(last_error.message), "%s", context);
	else
		n = snprintf(last_error.message, sizeof(last_error.message), "%s: %s", context, previous);
	if (n < 0)
		last_error.message[0] = '\0';
	else if ((size_t)n >= sizeof(last_error.message))
		trim_partial_utf8(last_error.message, sizeof(last_error.message) - 1);
	return last_error.code;
}

const ward_error *ward_error_last(void)
{
	return &last_error;
}

void ward_error_clear(void)
{
	last_error.code = WARD_OK;
	last_error.message[0] = '\0';
}

const char *ward_error_name(int code)
{
	switch (code) {
	case WARD_OK:
		return "OK";
	case WARD_ENOMEM:
		return "ENOMEM";
	case WARD_EINVAL:
		return "EINVAL";
	case WARD_EIO:
		return "EIO";
	case WARD_EDB:
		return "EDB";
	case WARD_ETOOBIG:
		return "ETOOBIG";
	case WARD_EPOLICY:
		return "EPOLICY";
	case WARD_EVERIFY:
		return "EVERIFY";
	case WARD_ENOTFOUND:
		return "ENOTFOUND";
	case WARD_EEXISTS:
		return "EEXISTS";
	case WARD_ESTATE:
		return "ESTATE";
	case WARD_EKEY:
		return "EKEY";
	case WARD_ECRYPTO:
		return "ECRYPTO";
	case WARD_ESCHEMA:
		return "ESCHEMA";
	case WARD_EBUSY:
		return "EBUSY";
	case WARD_EVERSION:
		return "EVERSION";
	case WARD_ENET:
		return "ENET";
	case WARD_ETIMEOUT:
		return "ETIMEOUT";
	}
	return "EUNKNOWN";
}
