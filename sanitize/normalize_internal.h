/*
 * Internals shared by sanitize/normalize.c and sanitize/decode.c, and exposed
 * to their unit tests. Not part of the public API.
 */
#ifndef RAGWARD_SANITIZE_NORMALIZE_INTERNAL_H
#define RAGWARD_SANITIZE_NORMALIZE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ragward/buf.h"
#include "ragward/error.h"
#include "ragward/offmap.h"

/* Decodes the UTF-8 sequence at s[*i] of text already checked with
 * ward_utf8_valid and advances *i past it. */
static inline uint32_t ward_utf8_next(const unsigned char *s, size_t *i)
{
	uint32_t c = s[*i];

	if (c < 0x80) {
		*i += 1;
		return c;
	}
	if (c < 0xE0) {
		c = (c & 0x1F) << 6 | (s[*i + 1] & 0x3Fu);
		*i += 2;
		return c;
	}
	if (c < 0xF0) {
		c = (c & 0x0F) << 12 | (s[*i + 1] & 0x3Fu) << 6 | (s[*i + 2] & 0x3Fu);
		*i += 3;
		return c;
	}
	c = (c & 0x07) << 18 | (s[*i + 1] & 0x3Fu) << 12 | (s[*i + 2] & 0x3Fu) << 6 | (s[*i + 3] & 0x3Fu);
	*i += 4;
	return c;
}

/* Encodes cp (a scalar value) into out (4 bytes room); returns the length. */
static inline size_t ward_utf8_put(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Offset of the first byte >= 0x80 in s[from..len), or len. */
size_t ward_ascii_span(const char *s, size_t from, size_t len);

/* 1 when the tag run s[0..n) (4-byte tag characters), preceded by U+1F3F4
 * (`after_flag_base`), is an RGI subdivision flag such as England's: 2..6 tag
 * digits or lowercase letters, then CANCEL TAG. */
int ward_tag_run_is_flag(const char *s, size_t n, int after_flag_base);

/* The ASCII a tag run spells (U+E0020..E007E -> cp - 0xE0000; other tag
 * characters are dropped). Writes at most n / 4 bytes to out; returns the
 * number written. */
size_t ward_tag_run_ascii(char *out, const char *s, size_t n);

/* Decoder heuristics: 1 when s[0..n) is strict UTF-8 that reads as text: at
 * least `min_chars` code points, >= 85% of them printable and at least half
 * letters, digits or spaces. A decoded blob (image, hash, random bytes) fails. */
int ward_decode_is_text(const char *s, size_t n, size_t min_chars);

/*
 * Builds the decoded view of raw[0..len): every base64, hex, percent-encoded,
 * rot13-wrapped and tag-character run that decodes to text, recursively to
 * WARD_DECODE_MAX_DEPTH, pieces separated by '\n'. `out` must be initialised
 * (its max caps the view: decoding stops, and *truncated is set, when the
 * next piece would not fit); `map` receives view -> raw anchors, every piece
 * mapping into the raw run it came from. Fails only on allocation failure.
 */
int ward_decode_view(ward_buf *out, ward_offmap *map, int *truncated, const char *raw, size_t len) WARD_MUST_CHECK;

#endif
