/*
 * The capped growable buffer (curl's dynbuf, git's strbuf). The cap is a hard
 * limit on len; the error is sticky so a producer may append in a loop and the
 * caller checks once.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "ragward/crypto.h"
#include "ragward/error.h"
#include "core/banned.h"

#define BUF_MIN_CAP 64

/* Re-records the message on every refused call, so the caller that checks once
 * at the end still finds a matching ward_error. */
static int buf_fail(ward_buf *b, int code)
{
	b->err = code;
	if (code == WARD_ETOOBIG)
		return ward_error_set(code, "buffer: exceeds its limit of %zu bytes", b->max);
	return ward_error_set(code, "buffer: out of memory");
}

/* Makes room for `extra` more bytes plus the terminator. Growth doubles but
 * never past max + 1, the most the buffer can ever need. */
static int buf_grow(ward_buf *b, size_t extra)
{
	size_t need;
	size_t limit;
	size_t cap;
	char *p;

	if (extra > b->max - b->len)
		return buf_fail(b, WARD_ETOOBIG);
	if (b->len + extra == SIZE_MAX)
		return buf_fail(b, WARD_ETOOBIG);
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	limit = b->max == SIZE_MAX ? SIZE_MAX : b->max + 1;
	cap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
	while (cap < need && cap <= limit / 2)
		cap *= 2;
	/* need <= limit always holds here, so clamping keeps room for need. */
	if (cap < need || cap > limit)
		cap = limit;
	p = ward_realloc(b->ptr, cap);
	if (p == NULL)
		return buf_fail(b, WARD_ENOMEM);
	b->ptr = p;
	b->cap = cap;
	return 0;
}

void ward_buf_init(ward_buf *b, size_t max)
{
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->err = 0;
}

void ward_buf_dispose(ward_buf *b)
{
	if (b == NULL)
		return;
	ward_free(b->ptr);
	memset(b, 0, sizeof(*b));
}

void ward_buf_dispose_secure(ward_buf *b)
{
	if (b == NULL)
		return;
	ward_free_secure(b->ptr, b->cap);
	memset(b, 0, sizeof(*b));
}

void ward_buf_reset(ward_buf *b)
{
	b->len = 0;
	b->err = 0;
	if (b->ptr != NULL)
		b->ptr[0] = '\0';
}

int ward_buf_append(ward_buf *b, const void *data, size_t n)
{
	int rc;

	if (b->err != 0)
		return buf_fail(b, b->err);
	if (n == 0)
		return 0;
	if (data == NULL)
		return ward_error_set(WARD_EINVAL, "buffer: append of %zu bytes from a null pointer", n);
	rc = buf_grow(b, n);
	if (rc != 0)
		return rc;
	memcpy(b->ptr + b->len, data, n);
	b->len += n;
	b->ptr[b->len] = '\0';
	return 0;
}

int ward_buf_puts(ward_buf *b, const char *s)
{
	if (s == NULL) {
		if (b->err != 0)
			return buf_fail(b, b->err);
		return ward_error_set(WARD_EINVAL, "buffer: puts of a null string");
	}
	return ward_buf_append(b, s, strlen(s));
}

int ward_buf_putc(ward_buf *b, char c)
{
	return ward_buf_append(b, &c, 1);
}

int ward_buf_printf(ward_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	int rc;

	if (b->err != 0)
		return buf_fail(b, b->err);
	/* First pass measures, so the cap is checked before anything is written
	 * and a refused printf leaves the contents untouched. */
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return ward_error_set(WARD_EINVAL, "buffer: cannot format '%s'", fmt);
	if (n == 0)
		return 0;
	rc = buf_grow(b, (size_t)n);
	if (rc != 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int ward_buf_detach(ward_buf *b, char **out, size_t *len_out)
{
	*out = NULL;
	if (len_out != NULL)
		*len_out = 0;
	if (b->err != 0)
		return buf_fail(b, b->err);
	if (b->ptr == NULL) {
		b->ptr = ward_malloc(1);
		if (b->ptr == NULL)
			return ward_error_set(WARD_ENOMEM, "buffer: out of memory");
		b->ptr[0] = '\0';
		b->cap = 1;
	}
	*out = b->ptr;
	if (len_out != NULL)
		*len_out = b->len;
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
	return 0;
}
