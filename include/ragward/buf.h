/*
 * Capped growable byte buffer, used for every untrusted byte stream.
 *
 * The hard maximum is fixed at init. An append that would exceed it, or an
 * allocation failure, makes the error sticky: later appends do nothing and
 * return the same code, so a caller may append in a loop and check once.
 * The contents are always NUL-terminated (the terminator is not counted).
 */
#ifndef RAGWARD_BUF_H
#define RAGWARD_BUF_H

#include <stddef.h>
#include <stdarg.h>
#include "ragward/error.h"

typedef struct {
	char *ptr;  /* owned; NULL until the first append */
	size_t len; /* bytes used, excluding the terminator */
	size_t cap; /* bytes allocated */
	size_t max; /* hard maximum of len */
	int err;    /* sticky: 0, WARD_ETOOBIG or WARD_ENOMEM */
} ward_buf;

void ward_buf_init(ward_buf *b, size_t max);
void ward_buf_dispose(ward_buf *b); /* frees, zeroes; NULL-safe */
void ward_buf_reset(ward_buf *b);   /* len = 0, clears err, keeps memory */

int ward_buf_append(ward_buf *b, const void *data, size_t n) WARD_MUST_CHECK;
int ward_buf_puts(ward_buf *b, const char *s) WARD_MUST_CHECK;
int ward_buf_putc(ward_buf *b, char c) WARD_MUST_CHECK;
int ward_buf_printf(ward_buf *b, const char *fmt, ...) WARD_PRINTF(2, 3) WARD_MUST_CHECK;

/* Takes ownership of the contents (NUL-terminated, never NULL on success);
 * the buffer is left empty. Fails with the sticky error if one is set. */
int ward_buf_detach(ward_buf *b, char **out, size_t *len_out) WARD_MUST_CHECK;

/* Overwrites the contents with zeros before freeing (for key material). */
void ward_buf_dispose_secure(ward_buf *b);

#endif
