/*
 * The decoded view: text hidden in base64, hex, percent-encoding, rot13 and
 * Unicode tag characters, decoded so that the injection rules can read it.
 *
 * Decoding here is lenient on purpose (unpadded and URL-safe base64, mixed
 * case hex, "\x41" and "0x41" escapes): the input is an attacker's text, not
 * a key or a hash, so the strict core/encoding.c decoders would miss payloads
 * and would record an error for every ordinary long word they were tried on.
 * What keeps the view clean is the other side: a decoding is kept only when
 * it reads as text (ward_decode_is_text), so images, hashes and random blobs
 * never produce output.
 */
#include <pthread.h>
#include <string.h>

#include <unicode/uchar.h>

#include "ragward/alloc.h"
#include "ragward/normalize.h"
#include "core/limits.h"
#include "sanitize/normalize_internal.h"
#include "core/banned.h"

/* Pieces that are shorter than this are noise (a base64 run of 16 characters
 * already decodes to 12 bytes). */
#define DECODE_MIN_CHARS 8
/* rot13 is decoded only where the text says so: the payload must start within
 * this many bytes of the "rot13" marker, and runs to the end of its line. */
#define ROT13_WINDOW 40
#define ROT13_MAX 2048
/* "\x41" / "0x41" escapes needed before an escaped run is decoded. */
#define ESCAPE_MIN_PAIRS 8
/* %XX escapes needed in one token before it is percent-decoded. */
#define PERCENT_MIN 3
/* Shorter tokens hold no marker, escape run, percent run or base64 run. */
#define SHORTEST_ENCODED 5

typedef struct {
	ward_buf *out;
	ward_offmap *map;
	int *truncated;
	int stop;       /* the output cap was reached */
	size_t gs, ge;  /* raw range every piece of the current group maps to */
} dctx;

static int scan_text(dctx *c, const char *t, size_t n, int level);

/* Byte classes for the token loop, which sees every byte of every text. */
enum { C_TOKEN = 1, C_B64 = 2, C_MARK = 4 };
static uint8_t cls[256];
static pthread_once_t cls_once = PTHREAD_ONCE_INIT;

static int b64val(unsigned char ch);

static void cls_build(void)
{
	int ch;

	for (ch = 0x21; ch < 0x7F; ch++) {
		cls[ch] = C_TOKEN;
		if (b64val((unsigned char)ch) >= 0)
			cls[ch] |= C_B64;
		if (ch == '%' || ch == 'x' || ch == 'X' || ch == 'r' || ch == 'R')
			cls[ch] |= C_MARK;
	}
}

static int hexval(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Both base64 alphabets at once: a run mixing them is rare enough that
 * accepting it costs nothing, and it saves guessing. */
static int b64val(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+' || ch == '-')
		return 62;
	if (ch == '/' || ch == '_')
		return 63;
	return -1;
}

static int is_ascii_alpha(unsigned char ch)
{
	return (ch | 0x20) >= 'a' && (ch | 0x20) <= 'z';
}

static int is_tag_at(const unsigned char *s, size_t i, size_t n)
{
	return i + 3 < n && s[i] == 0xF3 && s[i + 1] == 0xA0 && (s[i + 2] == 0x80 || s[i + 2] == 0x81);
}

int ward_tag_run_is_flag(const char *s, size_t n, int after_flag_base)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t k = n / 4;
	size_t i;

	if (!after_flag_base || n % 4 != 0 || k < 3 || k > 7)
		return 0;
	for (i = 0; i < k; i++) {
		size_t j = 4 * i;
		uint32_t cp = ward_utf8_next(u, &j);
		if (i == k - 1)
			return cp == 0xE007F;
		if (!((cp >= 0xE0030 && cp <= 0xE0039) || (cp >= 0xE0061 && cp <= 0xE007A)))
			return 0;
	}
	return 0;
}

size_t ward_tag_run_ascii(char *out, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	size_t w = 0;

	while (i + 4 <= n) {
		uint32_t cp = ward_utf8_next(u, &i);

		if (cp >= 0xE0020 && cp <= 0xE007E)
			out[w++] = (char)(cp - 0xE0000);
	}
	return w;
}

int ward_decode_is_text(const char *s, size_t n, size_t min_chars)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t bad;
	size_t i = 0;
	size_t count = 0, printable = 0, wordish = 0;

	if (n == 0 || !ward_utf8_valid(s, n, &bad))
		return 0;
	while (i < n) {
		uint32_t cp = ward_utf8_next(u, &i);

		count++;
		if (cp < 0x80) {
			if ((cp >= 0x20 && cp < 0x7F) || cp == '\t' || cp == '\n' || cp == '\r')
				printable++;
			if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') || cp == ' ')
				wordish++;
		} else {
			if (u_isprint((UChar32)cp))
				printable++;
			if (u_isalnum((UChar32)cp) || u_isUWhiteSpace((UChar32)cp) ||
			    u_charType((UChar32)cp) == U_NON_SPACING_MARK || u_charType((UChar32)cp) == U_COMBINING_SPACING_MARK)
				wordish++;
		}
	}
	return count >= min_chars && printable * 100 >= count * 85 && wordish * 2 >= count;
}

/* Appends one piece: a '\n' separator, then the text, anchored at the start
 * of the group's raw run. Past the output cap decoding stops for good. */
static int put_piece(dctx *c, const char *d, size_t n)
{
	int rc;

	if (c->stop)
		return 0;
	if (n + 1 > c->out->max - c->out->len) {
		*c->truncated = 1;
		c->stop = 1;
		return 0;
	}
	if (c->out->len > 0 && ward_buf_putc(c->out, '\n') != 0)
		return c->out->err;
	rc = ward_offmap_add(c->map, c->out->len, c->gs);
	if (rc != 0)
		return rc;
	return ward_buf_append(c->out, d, n);
}

/* Keeps a decoding that reads as text, then looks inside it for the next
 * layer. Takes ownership of d. Pieces found at level 0 open a group: the
 * piece and everything decoded from it map to the raw run [rs, re). */
static int keep(dctx *c, char *d, size_t n, size_t min_chars, int level, size_t rs, size_t re)
{
	int rc = 0;

	if (c->stop || !ward_decode_is_text(d, n, min_chars))
		goto done;
	if (level == 0) {
		c->gs = rs;
		c->ge = re;
	}
	rc = put_piece(c, d, n);
	if (rc != 0 || c->stop)
		goto done;
	if (level + 1 < WARD_DECODE_MAX_DEPTH) {
		rc = scan_text(c, d, n, level + 1);
		if (rc != 0)
			goto done;
	}
	/* Close the group: the separator that follows maps to the run's end, so
	 * the last piece's positions stay inside [rs, re]. */
	if (level == 0)
		rc = ward_offmap_add(c->map, c->out->len, c->ge);
done:
	ward_free(d);
	return rc;
}

static char *scratch(size_t n)
{
	char *d = ward_malloc(n + 1);

	if (d == NULL)
		ward_error_set(WARD_ENOMEM, "decode: out of memory");
	return d;
}

static int do_tags(dctx *c, const char *t, size_t i, size_t j, int level)
{
	const unsigned char *u = (const unsigned char *)t;
	int flag_base = i >= 4 && u[i - 4] == 0xF0 && u[i - 3] == 0x9F && u[i - 2] == 0x8F && u[i - 1] == 0xB4;
	char *d;
	size_t n;

	if (ward_tag_run_is_flag(t + i, j - i, flag_base))
		return 0;
	d = scratch((j - i) / 4);
	if (d == NULL)
		return WARD_ENOMEM;
	n = ward_tag_run_ascii(d, t + i, j - i);
	/* Tag characters are never there by accident: keep even a short text. */
	return keep(c, d, n, 1, level, i, j);
}

static int do_hex(dctx *c, const char *t, size_t a, size_t b, int level, size_t rs, size_t re)
{
	char *d = scratch((b - a) / 2);
	size_t k;

	if (d == NULL)
		return WARD_ENOMEM;
	for (k = 0; a + 2 * k + 1 < b; k++)
		d[k] = (char)(hexval((unsigned char)t[a + 2 * k]) << 4 | hexval((unsigned char)t[a + 2 * k + 1]));
	return keep(c, d, k, DECODE_MIN_CHARS, level, rs, re);
}

static int do_base64(dctx *c, const char *t, size_t a, size_t b, int level, size_t rs, size_t re)
{
	char *d;
	size_t n = b - a;
	size_t k = 0, i;
	uint32_t acc = 0;
	int bits = 0;

	if (n % 4 == 1)
		n--; /* a stray character; the rest may still be the payload */
	d = scratch(n / 4 * 3 + 3);
	if (d == NULL)
		return WARD_ENOMEM;
	for (i = 0; i < n; i++) {
		acc = acc << 6 | (uint32_t)b64val((unsigned char)t[a + i]);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			d[k++] = (char)(acc >> bits & 0xFF);
		}
	}
	return keep(c, d, k, DECODE_MIN_CHARS, level, rs, re);
}

static int do_percent(dctx *c, const char *t, size_t a, size_t b, int level)
{
	char *d = scratch(b - a);
	size_t i = a, k = 0;

	if (d == NULL)
		return WARD_ENOMEM;
	while (i < b) {
		if (t[i] == '%' && i + 2 < b && hexval((unsigned char)t[i + 1]) >= 0 &&
		    hexval((unsigned char)t[i + 2]) >= 0) {
			d[k++] = (char)(hexval((unsigned char)t[i + 1]) << 4 | hexval((unsigned char)t[i + 2]));
			i += 3;
		} else {
			d[k++] = t[i++];
		}
	}
	return keep(c, d, k, DECODE_MIN_CHARS, level, a, b);
}

/* "\x69\x67..." or "0x69,0x67,...": every escaped pair in the token, in
 * order; the rest of the token is punctuation between them. */
static int do_escapes(dctx *c, const char *t, size_t a, size_t b, int level)
{
	char *d = scratch((b - a) / 3);
	size_t i = a, k = 0;

	if (d == NULL)
		return WARD_ENOMEM;
	while (i < b) {
		if (i + 4 <= b && (t[i] == '\\' || t[i] == '0') && (t[i + 1] == 'x' || t[i + 1] == 'X') &&
		    hexval((unsigned char)t[i + 2]) >= 0 && hexval((unsigned char)t[i + 3]) >= 0 &&
		    (i + 4 >= b || t[i] == '\\' || hexval((unsigned char)t[i + 4]) < 0)) {
			d[k++] = (char)(hexval((unsigned char)t[i + 2]) << 4 | hexval((unsigned char)t[i + 3]));
			i += 4;
		} else {
			i++;
		}
	}
	return keep(c, d, k, DECODE_MIN_CHARS, level, a, b);
}

static int count_escapes(const char *t, size_t a, size_t b)
{
	size_t i;
	int n = 0;

	for (i = a; i + 4 <= b; i++)
		if ((t[i] == '\\' || t[i] == '0') && (t[i + 1] == 'x' || t[i + 1] == 'X') &&
		    hexval((unsigned char)t[i + 2]) >= 0 && hexval((unsigned char)t[i + 3]) >= 0)
			n++;
	return n;
}

/* Base64 and hex runs inside one token: maximal runs of the base64 alphabet
 * (both variants), '=' padding allowed at the end. An all-hex run of even
 * length is tried as hex first: hex digits are base64 characters too. */
static int do_runs(dctx *c, const char *t, size_t a, size_t b, int level)
{
	size_t i = a;
	int rc = 0;

	while (i < b && !c->stop) {
		size_t s, e, pe;
		int allhex = 1;

		while (i < b && b64val((unsigned char)t[i]) < 0)
			i++;
		s = i;
		while (i < b && b64val((unsigned char)t[i]) >= 0) {
			if (hexval((unsigned char)t[i]) < 0)
				allhex = 0;
			i++;
		}
		e = i;
		pe = e;
		while (pe < b && pe - e < 2 && t[pe] == '=')
			pe++;
		i = pe;
		if (e - s < WARD_DECODE_MIN_RUN)
			continue;
		if (e - s > 2 && t[s] == '0' && (t[s + 1] == 'x' || t[s + 1] == 'X')) {
			size_t k;
			int hx = 1;

			for (k = s + 2; k < e && hx; k++)
				hx = hexval((unsigned char)t[k]) >= 0;
			if (hx && (e - s - 2) % 2 == 0 && e - s - 2 >= WARD_DECODE_MIN_RUN) {
				size_t before = c->out->len;

				rc = do_hex(c, t, s + 2, e, level, s, pe);
				if (rc != 0)
					return rc;
				if (c->out->len != before)
					continue;
			}
		}
		if (allhex && (e - s) % 2 == 0) {
			size_t before = c->out->len;

			rc = do_hex(c, t, s, e, level, s, pe);
			if (rc != 0)
				return rc;
			if (c->out->len != before)
				continue;
		}
		rc = do_base64(c, t, s, e, level, s, pe);
		if (rc != 0)
			return rc;
	}
	return rc;
}

/* Case-insensitive "rot13", "rot-13" or "rot_13" at t[i], not inside a word.
 * Returns the length of the marker or 0. */
static size_t rot13_marker(const char *t, size_t i, size_t n)
{
	static const char *const forms[] = {"rot13", "rot-13", "rot_13"};
	size_t f;

	if (i > 0 && is_ascii_alpha((unsigned char)t[i - 1]))
		return 0;
	for (f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
		size_t l = strlen(forms[f]);
		size_t k;

		if (n - i < l)
			continue;
		for (k = 0; k < l; k++)
			if ((t[i + k] | 0x20) != forms[f][k] && t[i + k] != forms[f][k])
				break;
		if (k == l)
			return l;
	}
	return 0;
}

/* The payload announced by a rot13 marker ending at m: it starts within
 * ROT13_WINDOW bytes (after punctuation, quotes and line breaks) and runs to
 * the end of its line, or of the next line when the marker's line ends within
 * the window. The words around the payload decode to noise, which no rule
 * matches. Returns the end of what was consumed. */
static int do_rot13(dctx *c, const char *t, size_t n, size_t tok, size_t m, int level, size_t *next)
{
	size_t p = m, q, k;
	char *d;

	*next = m;
	while (p < n && p - m <= ROT13_WINDOW && !is_ascii_alpha((unsigned char)t[p]) && (unsigned char)t[p] < 0x80)
		p++;
	if (p >= n || p - m > ROT13_WINDOW)
		return 0;
	q = p;
	while (q < n && q - p < ROT13_MAX && t[q] != '\n' && !is_tag_at((const unsigned char *)t, q, n))
		q++;
	/* "rot13 encoded message follows:" and the payload on the next line */
	if (q < n && t[q] == '\n' && q - m < ROT13_WINDOW) {
		q++;
		while (q < n && q - p < ROT13_MAX && t[q] != '\n' && !is_tag_at((const unsigned char *)t, q, n))
			q++;
	}
	d = scratch(q - p);
	if (d == NULL)
		return WARD_ENOMEM;
	for (k = 0; k < q - p; k++) {
		char ch = t[p + k];

		if (ch >= 'a' && ch <= 'z')
			ch = (char)('a' + (ch - 'a' + 13) % 26);
		else if (ch >= 'A' && ch <= 'Z')
			ch = (char)('A' + (ch - 'A' + 13) % 26);
		d[k] = ch;
	}
	*next = q;
	return keep(c, d, q - p, DECODE_MIN_CHARS, level, tok, q);
}

/* A token too short for a base64, hex or escape run (those need
 * WARD_DECODE_MIN_RUN characters) can still hold a rot13 marker ("rot13",
 * "rot-13", "rot_13": all contain "13") or a percent run. Both are rare
 * bytes, so most words are ruled out with two compares per byte. */
static int short_token_marked(const unsigned char *u, size_t i, size_t j)
{
	unsigned m = 0;

	for (size_t k = i; k < j; k++)
		m |= (u[k] == '%') | ((u[k] == '1') & (k + 1 < j) && u[k + 1] == '3');
	return m != 0;
}

/* The end of the token of printable ASCII (0x21..0x7E) starting at i: eight
 * bytes at a time, with the usual bit tricks for "some byte below 0x21",
 * "some byte equal to 0x7F" and "some byte >= 0x80". The lowest flagged byte
 * is exact for each (borrows only run upwards), so its index is the end. */
static size_t token_end(const unsigned char *u, size_t i, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;

	for (; i + 8 <= n; i += 8) {
		uint64_t x, del, m;

		memcpy(&x, u + i, 8);
		del = x ^ (0x7F * ones);
		m = ((x - 0x21 * ones) & ~x & highs) | (x & highs) | ((del - ones) & ~del & highs);
		if (m != 0)
			return i + (size_t)(__builtin_ctzll(m) >> 3);
	}
#endif
	while (i < n && (cls[u[i]] & C_TOKEN))
		i++;
	return i;
}

/* One pass over a text: tag runs anywhere, everything else per token of
 * printable ASCII (the characters every encoding here is written in). */
static int scan_text(dctx *c, const char *t, size_t n, int level)
{
	const unsigned char *u = (const unsigned char *)t;
	size_t i = 0;
	int rc = 0;

	while (i < n && !c->stop) {
		size_t j, rot = 0;
		int pct = 0, esc = 0;
		size_t run = 0, maxrun = 0;

		if (u[i] <= 0x20 || u[i] >= 0x7F) {
			if (is_tag_at(u, i, n)) {
				j = i;
				while (is_tag_at(u, j, n))
					j += 4;
				rc = do_tags(c, t, i, j, level);
				if (rc != 0)
					return rc;
				i = j;
			} else {
				i++;
			}
			continue;
		}
		j = token_end(u, i, n);
		/* Most tokens are words shorter than the shortest thing decoded
		 * here (the marker "rot13"): skip them without looking inside. */
		if (j - i < SHORTEST_ENCODED || (j - i < WARD_DECODE_MIN_RUN && !short_token_marked(u, i, j))) {
			i = j;
			continue;
		}
		for (j = i; j < n && (cls[u[j]] & C_TOKEN); j++) {
			unsigned char ch = u[j];

			if (cls[ch] & C_B64) {
				if (++run > maxrun)
					maxrun = run;
			} else {
				run = 0;
			}
			if (!(cls[ch] & C_MARK))
				continue;
			if (ch == '%')
				pct++;
			else if ((ch == 'x' || ch == 'X') && j > i && (u[j - 1] == '\\' || u[j - 1] == '0'))
				esc++;
			else if ((ch | 0x20) == 'r' && rot == 0) {
				size_t l = rot13_marker(t, j, n);

				if (l > 0)
					rot = j + l;
			}
		}
		if (rot != 0) {
			size_t next;

			rc = do_rot13(c, t, n, i, rot, level, &next);
			if (rc != 0)
				return rc;
			i = next > j ? next : j;
			continue;
		}
		if (pct >= PERCENT_MIN && count_escapes(t, i, j) < ESCAPE_MIN_PAIRS) {
			size_t k;
			int valid = 0;

			for (k = i; k + 2 < j; k++)
				if (t[k] == '%' && hexval(u[k + 1]) >= 0 && hexval(u[k + 2]) >= 0)
					valid++;
			if (valid >= PERCENT_MIN) {
				rc = do_percent(c, t, i, j, level);
				if (rc != 0)
					return rc;
				i = j;
				continue;
			}
		}
		if (esc >= ESCAPE_MIN_PAIRS && count_escapes(t, i, j) >= ESCAPE_MIN_PAIRS) {
			rc = do_escapes(c, t, i, j, level);
			if (rc != 0)
				return rc;
			i = j;
			continue;
		}
		if (maxrun >= WARD_DECODE_MIN_RUN) {
			rc = do_runs(c, t, i, j, level);
			if (rc != 0)
				return rc;
		}
		i = j;
	}
	return rc;
}

int ward_decode_view(ward_buf *out, ward_offmap *map, int *truncated, const char *raw, size_t len)
{
	dctx c;

	pthread_once(&cls_once, cls_build);
	memset(&c, 0, sizeof(c));
	c.out = out;
	c.map = map;
	c.truncated = truncated;
	*truncated = 0;
	return scan_text(&c, raw, len, 0);
}
