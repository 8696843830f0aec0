/*
 * Vectorscan databases: one block-mode database per view with every pattern
 * of the rules scanning that view, used only as a prefilter (PCRE2 confirms).
 *
 * Vectorscan runs in byte mode, never HS_FLAG_UTF8 (performance.md §2), while
 * PCRE2 runs with UTF and UCP. A prefilter must never miss what PCRE2 would
 * find, so each pattern is first converted to a byte expression whose
 * language is a superset of PCRE2's:
 *   - a single-character item (., classes, \w \s \d \p{..} ...) becomes a byte
 *     class with the ASCII members PCRE2 itself reports plus \x80-\xff, and
 *     its repeat count is scaled by 4 (a code point is 1..4 bytes);
 *   - a literal in a caseless pattern gets every code point PCRE2 treats as
 *     its case variant (k → K, U+212A KELVIN SIGN; é → É) as alternatives;
 *   - assertions (\b ^ $ lookarounds) are dropped, atomic groups opened up;
 *   - what the conversion does not handle (back-references, recursion,
 *     conditionals, option settings, verbs, \X) is "always confirm".
 * Patterns Vectorscan refuses as converted get HS_FLAG_PREFILTER; if it
 * refuses them even so, they are "always confirm" too.
 *
 * Databases are cached in cache_dir as <ruleset-sha>-<engine-key>-<view>.hsdb
 * with a header (magic, format, view, rule-set hash, engine key, counts,
 * SHA-256 of the rest); anything that does not verify is ignored and rebuilt.
 * The same directory holds the validated-set records of rules.c; both go
 * through ward_cache_read / ward_cache_write below.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <unicode/uchar.h>

#ifdef RAGWARD_HAVE_VECTORSCAN
#include <hs/hs.h>
#endif

#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "ragward/crypto.h"
#include "core/limits.h"
#include "core/yaml.h"
#include "sanitize/scan_internal.h"
#include "core/banned.h"

/* Bump when the conversion changes: it is part of the cache key. */
#define CONVERTER_VERSION 1

/* --- case variants, as PCRE2 sees them */

static uint32_t *cased; /* candidates: ASCII letters and cased / case-mapped code points */
static size_t ncased;
static pthread_once_t cased_once = PTHREAD_ONCE_INIT;

static void cased_init(void)
{
	size_t cap = 4096;

	if (!(cased = malloc(cap * sizeof(*cased))))
		return;
	for (uint32_t c = 'A'; c <= 'z'; c++)
		if ((c <= 'Z' || c >= 'a'))
			cased[ncased++] = c;
	for (uint32_t c = 0x80; c < 0x20000; c++) {
		if (!u_hasBinaryProperty((UChar32)c, UCHAR_CASED) &&
		    !u_hasBinaryProperty((UChar32)c, UCHAR_CHANGES_WHEN_CASEMAPPED))
			continue;
		if (ncased == cap) {
			uint32_t *n = realloc(cased, 2 * cap * sizeof(*cased));
			if (!n)
				return;
			cased = n;
			cap *= 2;
		}
		cased[ncased++] = c;
	}
}

static size_t utf8_put(char *out, uint32_t c)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | (c >> 6));
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | (c >> 12));
		out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (c >> 18));
	out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* Matches `pat` anchored against exactly the bytes of `subj`. */
static int whole_match(pcre2_code *code, pcre2_match_data *md, const char *subj, size_t len)
{
	int rc = pcre2_match(code, (PCRE2_SPTR)subj, len, 0, PCRE2_ANCHORED, md, NULL);
	return rc >= 0 && pcre2_get_ovector_pointer(md)[1] == len;
}

typedef struct {
	const ward_pattern *p;
	const char *s;
	size_t n, i;
	ward_buf *out;
	int exact;
	int unsupported;
	int caseless;
	pcre2_match_data *md;
} conv;

static void put(conv *c, const char *s)
{
	if (ward_buf_puts(c->out, s) < 0)
		c->unsupported = 1;
}

static void put_byte(conv *c, unsigned b)
{
	char tmp[8];

	if ((b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')) {
		tmp[0] = (char)b;
		tmp[1] = 0;
	} else {
		snprintf(tmp, sizeof(tmp), "\\x%02x", b & 0xff);
	}
	put(c, tmp);
}

static void put_cp_bytes(conv *c, uint32_t cp)
{
	char u[4];
	size_t n = utf8_put(u, cp);

	for (size_t k = 0; k < n; k++)
		put_byte(c, (unsigned char)u[k]);
}

/* A literal code point: one character of the text, so a following repeat
 * keeps its count. */
static void emit_literal(conv *c, uint32_t cp)
{
	pcre2_code *code = NULL;
	char pat[32], u[4];
	int err;
	PCRE2_SIZE off;

	if (!c->caseless) {
		if (cp < 0x80) {
			put_byte(c, cp);
			return;
		}
		put(c, "(?:");
		put_cp_bytes(c, cp);
		put(c, ")");
		return;
	}
	pthread_once(&cased_once, cased_init);
	if (!cased) {
		c->unsupported = 1;
		return;
	}
	put(c, "(?:");
	put_cp_bytes(c, cp);
	snprintf(pat, sizeof(pat), "\\x{%x}", (unsigned)cp);
	code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, c->p->options, &err, &off, NULL);
	if (!code) {
		c->unsupported = 1;
		return;
	}
	/* Vectorscan's caseless flag covers ASCII variants of ASCII letters; every
	 * other variant PCRE2 accepts is listed. A code point with no case has
	 * no variant, so the search is skipped for most scripts. */
	if (cp >= 0x80 || (cp | 0x20) == 'k' || (cp | 0x20) == 's' || (cp | 0x20) == 'i') {
		if (cp < 0x80 || u_hasBinaryProperty((UChar32)cp, UCHAR_CASED) ||
		    u_hasBinaryProperty((UChar32)cp, UCHAR_CHANGES_WHEN_CASEMAPPED)) {
			for (size_t k = 0; k < ncased; k++) {
				uint32_t y = cased[k];
				if (y == cp || (cp < 0x80 && y < 0x80))
					continue;
				if (whole_match(code, c->md, u, utf8_put(u, y))) {
					put(c, "|");
					put_cp_bytes(c, y);
				}
			}
		}
	}
	put(c, ")");
	pcre2_code_free(code);
}

/* A single-character item given by its PCRE2 text (".", "[a-z]", "\\w"...):
 * the byte class of its ASCII members, plus every non-ASCII byte (or sets
 * unsupported). */
static void emit_class(conv *c, const char *item, size_t len)
{
	pcre2_code *code;
	int err, in = 0;
	PCRE2_SIZE off;
	uint8_t member[128];

	code = pcre2_compile((PCRE2_SPTR)item, len, c->p->options, &err, &off, NULL);
	if (!code) {
		c->unsupported = 1;
		return;
	}
	for (unsigned b = 0; b < 128; b++) {
		char ch = (char)b;
		member[b] = (uint8_t)whole_match(code, c->md, &ch, 1);
	}
	pcre2_code_free(code);
	put(c, "[");
	for (unsigned b = 0; b < 128; b++) {
		if (member[b] && !in) {
			char tmp[16];
			unsigned e = b;
			while (e + 1 < 128 && member[e + 1])
				e++;
			if (e == b)
				snprintf(tmp, sizeof(tmp), "\\x%02x", b);
			else
				snprintf(tmp, sizeof(tmp), "\\x%02x-\\x%02x", b, e);
			put(c, tmp);
			b = e;
		}
	}
	put(c, "\\x80-\\xff]");
}

/* Parses a repeat at c->i, if any (with its lazy/possessive suffix). */
static int parse_quant(conv *c, unsigned long *min, unsigned long *max, int *inf)
{
	size_t i = c->i;

	*inf = 0;
	if (i >= c->n)
		return 0;
	if (c->s[i] == '*' || c->s[i] == '+' || c->s[i] == '?') {
		*min = c->s[i] == '+';
		*max = c->s[i] == '?';
		*inf = c->s[i] != '?';
		i++;
	} else if (c->s[i] == '{') {
		unsigned long a = 0, b = 0;
		size_t j = i + 1, d0 = j;
		while (j < c->n && c->s[j] >= '0' && c->s[j] <= '9' && j - d0 < 6)
			a = a * 10 + (unsigned long)(c->s[j++] - '0');
		if (j == d0 || j >= c->n)
			return 0;
		if (c->s[j] == '}') {
			b = a;
		} else if (c->s[j] == ',') {
			size_t d1 = ++j;
			while (j < c->n && c->s[j] >= '0' && c->s[j] <= '9' && j - d1 < 6)
				b = b * 10 + (unsigned long)(c->s[j++] - '0');
			if (j >= c->n || c->s[j] != '}')
				return 0;
			if (j == d1)
				*inf = 1;
		} else {
			return 0;
		}
		*min = a;
		*max = b;
		i = j + 1;
	} else {
		return 0;
	}
	if (i < c->n && (c->s[i] == '?' || c->s[i] == '+'))
		i++;
	c->i = i;
	return 1;
}

static void put_quant(conv *c, unsigned long min, unsigned long max, int inf)
{
	char tmp[48];

	if (inf)
		snprintf(tmp, sizeof(tmp), "{%lu,}", min);
	else if (min == max)
		snprintf(tmp, sizeof(tmp), "{%lu}", min);
	else
		snprintf(tmp, sizeof(tmp), "{%lu,%lu}", min, max);
	put(c, tmp);
}

/* After an item: a fixed-width item keeps its repeat; a single-character
 * byte class gets it scaled; a dropped item drops it. */
enum { ITEM_FIXED, ITEM_SCALED, ITEM_DROPPED };

static void after_item(conv *c, int kind)
{
	unsigned long min = 1, max = 1;
	int inf = 0, has = parse_quant(c, &min, &max, &inf);

	if (kind == ITEM_DROPPED)
		return;
	if (kind == ITEM_SCALED) {
		c->exact = 0;
		if (!has) {
			put(c, "{1,4}");
			return;
		}
		if (min == 0 && inf)
			put(c, "*");
		else if (min == 1 && inf)
			put(c, "+");
		else
			put_quant(c, min, max * 4, inf);
		return;
	}
	if (has)
		put_quant(c, min, max, inf);
}

static uint32_t decode_cp(conv *c)
{
	const unsigned char *s = (const unsigned char *)c->s + c->i;
	size_t left = c->n - c->i;
	uint32_t cp = s[0];
	size_t n = 1;

	if (s[0] >= 0xc0 && left >= 2 && s[0] < 0xe0) {
		cp = ((uint32_t)(s[0] & 0x1f) << 6) | (s[1] & 0x3f);
		n = 2;
	} else if (s[0] >= 0xe0 && s[0] < 0xf0 && left >= 3) {
		cp = ((uint32_t)(s[0] & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
		n = 3;
	} else if (s[0] >= 0xf0 && left >= 4) {
		cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) |
		     ((uint32_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
		n = 4;
	}
	c->i += n;
	return cp;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Reads hex or octal digits inside braces at c->i ("{...}"). */
static int braced_number(conv *c, int base, uint32_t *out)
{
	uint32_t v = 0;
	size_t j = c->i;

	if (j >= c->n || c->s[j] != '{')
		return -1;
	for (j++; j < c->n && c->s[j] != '}'; j++) {
		int d = base == 16 ? hexval(c->s[j]) : (c->s[j] >= '0' && c->s[j] <= '7' ? c->s[j] - '0' : -1);
		if (d < 0 || v > 0x10ffff)
			return -1;
		v = v * (uint32_t)base + (uint32_t)d;
	}
	if (j >= c->n)
		return -1;
	c->i = j + 1;
	*out = v;
	return 0;
}

static void conv_seq(conv *c, int depth);

/* One escape at c->i (just after the backslash). */
static void conv_escape(conv *c)
{
	size_t start = c->i - 1;
	char e;
	uint32_t cp;

	if (c->i >= c->n) {
		c->unsupported = 1;
		return;
	}
	e = c->s[c->i];
	if (strchr("dDsSwWhHvVR", e)) {
		c->i++;
		emit_class(c, c->s + start, 2);
		after_item(c, ITEM_SCALED);
		return;
	}
	if (e == 'N' && !(c->i + 1 < c->n && c->s[c->i + 1] == '{')) {
		c->i++;
		emit_class(c, c->s + start, 2);
		after_item(c, ITEM_SCALED);
		return;
	}
	if (e == 'p' || e == 'P') {
		c->i++;
		if (c->i < c->n && c->s[c->i] == '{') {
			const char *close = memchr(c->s + c->i, '}', c->n - c->i);
			if (!close) {
				c->unsupported = 1;
				return;
			}
			c->i = (size_t)(close - c->s) + 1;
		} else {
			c->i++;
		}
		emit_class(c, c->s + start, c->i - start);
		after_item(c, ITEM_SCALED);
		return;
	}
	if (strchr("bBAzZGK", e)) {
		c->i++;
		c->exact = 0;
		after_item(c, ITEM_DROPPED);
		return;
	}
	if (e == 'Q') {
		c->i++;
		while (c->i < c->n) {
			if (c->s[c->i] == '\\' && c->i + 1 < c->n && c->s[c->i + 1] == 'E') {
				c->i += 2;
				return;
			}
			emit_literal(c, decode_cp(c));
			/* only the last character of \Q..\E can carry a repeat */
			if (!(c->s[c->i] == '\\' && c->i + 1 < c->n && c->s[c->i + 1] == 'E'))
				continue;
			c->i += 2;
			after_item(c, ITEM_FIXED);
			return;
		}
		return;
	}
	if (e == 'E') {
		c->i++;
		return;
	}
	c->i++;
	switch (e) {
	case 'a':
		cp = 7;
		break;
	case 'e':
		cp = 27;
		break;
	case 'f':
		cp = 12;
		break;
	case 'n':
		cp = 10;
		break;
	case 'r':
		cp = 13;
		break;
	case 't':
		cp = 9;
		break;
	case '0':
		cp = 0;
		for (int k = 0; k < 2 && c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '7'; k++)
			cp = cp * 8 + (uint32_t)(c->s[c->i++] - '0');
		break;
	case 'o':
		if (braced_number(c, 8, &cp) < 0) {
			c->unsupported = 1;
			return;
		}
		break;
	case 'x':
		if (c->i < c->n && c->s[c->i] == '{') {
			if (braced_number(c, 16, &cp) < 0) {
				c->unsupported = 1;
				return;
			}
		} else {
			cp = 0;
			for (int k = 0; k < 2 && c->i < c->n && hexval(c->s[c->i]) >= 0; k++)
				cp = cp * 16 + (uint32_t)hexval(c->s[c->i++]);
		}
		break;
	case 'N': /* \N{U+hhhh}: read "{+hhhh}" as hex after skipping the "U" */
		if (c->i + 2 < c->n && c->s[c->i] == '{' && c->s[c->i + 1] == 'U' && c->s[c->i + 2] == '+') {
			size_t j = c->i + 3;
			cp = 0;
			for (; j < c->n && c->s[j] != '}'; j++) {
				if (hexval(c->s[j]) < 0 || cp > 0x10ffff) {
					c->unsupported = 1;
					return;
				}
				cp = cp * 16 + (uint32_t)hexval(c->s[j]);
			}
			if (j >= c->n) {
				c->unsupported = 1;
				return;
			}
			c->i = j + 1;
		} else {
			c->unsupported = 1;
			return;
		}
		break;
	case 'c':
		if (c->i >= c->n || (unsigned char)c->s[c->i] >= 0x80) {
			c->unsupported = 1;
			return;
		}
		cp = (uint32_t)((c->s[c->i] >= 'a' && c->s[c->i] <= 'z' ? c->s[c->i] - 32 : c->s[c->i]) ^ 0x40);
		c->i++;
		break;
	default:
		if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '1' && e <= '9')) {
			/* back-references, \g, \k, \X, \u...: not converted */
			c->unsupported = 1;
			return;
		}
		c->i--;
		cp = decode_cp(c);
		break;
	}
	emit_literal(c, cp);
	after_item(c, ITEM_FIXED);
}

/* A character class at c->i ('['): its extent, then emit_class on it. */
static void conv_class(conv *c)
{
	size_t start = c->i, j = c->i + 1;

	if (j < c->n && c->s[j] == '^')
		j++;
	if (j < c->n && c->s[j] == ']')
		j++;
	while (j < c->n && c->s[j] != ']') {
		if (c->s[j] == '\\') {
			if (j + 1 < c->n && c->s[j + 1] == 'Q') {
				c->unsupported = 1;
				return;
			}
			j += 2;
		} else if (c->s[j] == '[' && j + 1 < c->n &&
		           (c->s[j + 1] == ':' || c->s[j + 1] == '.' || c->s[j + 1] == '=')) {
			const char *close = NULL;
			for (size_t k = j + 2; k + 1 < c->n; k++)
				if (c->s[k] == c->s[j + 1] && c->s[k + 1] == ']') {
					close = c->s + k;
					break;
				}
			if (!close) {
				c->unsupported = 1;
				return;
			}
			j = (size_t)(close - c->s) + 2;
		} else {
			j++;
		}
	}
	if (j >= c->n) {
		c->unsupported = 1;
		return;
	}
	c->i = j + 1;
	emit_class(c, c->s + start, c->i - start);
	after_item(c, ITEM_SCALED);
}

/* A group at c->i ('('). */
static void conv_group(conv *c, int depth)
{
	int drop = 0;
	ward_buf trash, *saved = c->out;

	c->i++;
	if (depth > WARD_MAX_PATTERN_NEST + 2 || (c->i < c->n && c->s[c->i] == '*')) {
		c->unsupported = 1; /* verbs and alpha assertions */
		return;
	}
	if (c->i < c->n && c->s[c->i] == '?') {
		char k = c->i + 1 < c->n ? c->s[c->i + 1] : 0;
		char k2 = c->i + 2 < c->n ? c->s[c->i + 2] : 0;
		if (k == ':' || k == '>' || k == '|') {
			c->i += 2;
			if (k == '>')
				c->exact = 0;
		} else if (k == '=' || k == '!') {
			c->i += 2;
			drop = 1;
		} else if (k == '<' && (k2 == '=' || k2 == '!')) {
			c->i += 3;
			drop = 1;
		} else if (k == '<' || k == '\'' || (k == 'P' && k2 == '<')) {
			char close = k == '\'' ? '\'' : '>';
			size_t from = c->i + (k == 'P' ? 3 : 2); /* after "?<", "?'" or "?P<" */
			const char *q = from < c->n ? memchr(c->s + from, close, c->n - from) : NULL;
			if (!q) {
				c->unsupported = 1;
				return;
			}
			c->i = (size_t)(q - c->s) + 1;
		} else if (k == '#') {
			const char *q = memchr(c->s + c->i, ')', c->n - c->i);
			if (!q) {
				c->unsupported = 1;
				return;
			}
			c->i = (size_t)(q - c->s) + 1;
			return;
		} else {
			c->unsupported = 1; /* options, conditionals, recursion, callouts */
			return;
		}
	}
	if (drop) {
		ward_buf_init(&trash, WARD_MAX_PATTERN_LEN * 64);
		c->out = &trash;
		c->exact = 0;
	} else {
		put(c, "(?:");
	}
	conv_seq(c, depth + 1);
	if (c->i >= c->n || c->s[c->i] != ')')
		c->unsupported = 1;
	else
		c->i++;
	if (drop) {
		c->out = saved;
		ward_buf_dispose(&trash);
		after_item(c, ITEM_DROPPED);
		return;
	}
	put(c, ")");
	after_item(c, ITEM_FIXED);
}

static void conv_seq(conv *c, int depth)
{
	while (c->i < c->n && !c->unsupported) {
		char ch = c->s[c->i];
		switch (ch) {
		case ')':
			return;
		case '|':
			put(c, "|");
			c->i++;
			break;
		case '(':
			conv_group(c, depth);
			break;
		case '[':
			conv_class(c);
			break;
		case '.':
			c->i++;
			emit_class(c, ".", 1);
			after_item(c, ITEM_SCALED);
			break;
		case '^':
		case '$':
			c->i++;
			c->exact = 0;
			after_item(c, ITEM_DROPPED);
			break;
		case '\\':
			c->i++;
			conv_escape(c);
			break;
		case '*':
		case '+':
		case '?':
			c->unsupported = 1; /* a repeat with nothing before it */
			return;
		default:
			emit_literal(c, decode_cp(c));
			after_item(c, ITEM_FIXED);
			break;
		}
	}
}

int ward_hs_convert(char **out, int *exact, const ward_pattern *p)
{
	ward_buf b;
	conv c;
	int rc = 0;

	*out = NULL;
	*exact = 0;
	memset(&c, 0, sizeof(c));
	ward_buf_init(&b, WARD_MAX_PATTERN_LEN * 64);
	c.p = p;
	c.s = p->src;
	c.n = p->len;
	c.out = &b;
	c.exact = 1;
	c.caseless = (p->options & PCRE2_CASELESS) != 0;
	if (!(c.md = pcre2_match_data_create(1, NULL))) {
		ward_buf_dispose(&b);
		return ward_error_set(WARD_ENOMEM, "out of memory");
	}
	conv_seq(&c, 0);
	if (c.i != c.n)
		c.unsupported = 1;
	if (!c.unsupported && b.err == 0 && ward_buf_detach(&b, out, NULL) == 0)
		*exact = c.exact;
	else
		rc = 1;
	pcre2_match_data_free(c.md);
	ward_buf_dispose(&b);
	return rc;
}

/* --- the cache directory (databases here, validated-set records of rules.c) */

/* What is read from the cache decides what PCRE2 gets to confirm, or which
 * checks a load skips: only a directory and files of this user that nobody
 * else may write are considered at all. */
int ward_cache_dir_ok(const char *dir)
{
	struct stat sb;

	if (stat(dir, &sb) != 0 && (errno != ENOENT || mkdir(dir, 0700) != 0 || stat(dir, &sb) != 0))
		return 0;
	return S_ISDIR(sb.st_mode) && sb.st_uid == geteuid() && !(sb.st_mode & 022);
}

int ward_cache_read(char **out, size_t *len, const char *path, size_t max)
{
	struct stat sb;
	ward_buf b;
	char chunk[8192];
	ssize_t n;
	int fd, rc = 1;

	*out = NULL;
	*len = 0;
	/* O_NOFOLLOW: a symlink planted in the cache is refused, not followed;
	 * the checks are on the opened file, not on the name. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? 2 : 1;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != geteuid() || (sb.st_mode & 022) ||
	    (unsigned long long)sb.st_size > max) {
		close(fd);
		return 1;
	}
	ward_buf_init(&b, max);
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || ward_buf_append(&b, chunk, (size_t)n) < 0)
			goto done;
	}
	if (ward_buf_detach(&b, out, len) == 0)
		rc = 0;
done:
	close(fd);
	ward_buf_dispose(&b);
	ward_error_clear();
	return rc;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

void ward_cache_write(const char *dir, const char *path, const void *data, size_t len)
{
	char *tmp = NULL;
	ward_buf tb;
	int fd = -1;

	ward_buf_init(&tb, WARD_MAX_PATH_LEN);
	if (ward_buf_printf(&tb, "%s/.cache-XXXXXX", dir) < 0 || ward_buf_detach(&tb, &tmp, NULL) < 0) {
		ward_buf_dispose(&tb);
		goto done;
	}
	if ((fd = mkstemp(tmp)) < 0) /* 0600, O_EXCL */
		goto done;
	if (write_all(fd, data, len) < 0 || fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		unlink(tmp);
		goto done;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		unlink(tmp);
done:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	ward_free(tmp);
	ward_error_clear();
}

#ifndef RAGWARD_HAVE_VECTORSCAN

int ward_hsdb_build_all(ward_ruleset *rs, const char *cache_dir)
{
	(void)cache_dir;
	rs->prefilter = 0;
	return 0;
}

void ward_hsdb_free_all(ward_ruleset *rs)
{
	for (int v = 0; v < WARD_VIEW_COUNT; v++) {
		ward_free(rs->confirm[v]);
		rs->confirm[v] = NULL;
		rs->nconfirm[v] = 0;
	}
}

int ward_hsdb_scan(const ward_ruleset *rs, ward_view_kind v, const char *text, size_t len, uint8_t *cand)
{
	(void)rs, (void)v, (void)text, (void)len, (void)cand;
	return WARD_EINVAL;
}

const void *ward_hsdb_database(const ward_ruleset *rs, ward_view_kind v)
{
	(void)rs, (void)v;
	return NULL;
}

#else

struct ward_hsdb {
	hs_database_t *db;
};

/* --- per-thread scratch, grown to fit every set the thread scans with */

typedef struct {
	hs_scratch_t *scratch;
	unsigned long long generation;
} hs_tls;

static pthread_key_t hs_key;
static pthread_once_t hs_once = PTHREAD_ONCE_INIT;
static int hs_key_ok;

static void hs_tls_free(void *p)
{
	hs_tls *t = p;

	if (!t)
		return;
	hs_free_scratch(t->scratch);
	free(t);
}

static void hs_make_key(void)
{
	hs_key_ok = pthread_key_create(&hs_key, hs_tls_free) == 0;
}

static hs_scratch_t *thread_scratch(const ward_ruleset *rs)
{
	hs_tls *t;

	pthread_once(&hs_once, hs_make_key);
	if (!hs_key_ok)
		return NULL;
	if (!(t = pthread_getspecific(hs_key))) {
		if (!(t = calloc(1, sizeof(*t))))
			return NULL;
		if (pthread_setspecific(hs_key, t) != 0) {
			free(t);
			return NULL;
		}
	}
	if (t->generation == rs->generation && t->scratch)
		return t->scratch;
	if (!t->scratch) {
		if (hs_clone_scratch(rs->hs_scratch_proto, &t->scratch) != HS_SUCCESS)
			return NULL;
	} else {
		/* another set was used on this thread: grow the scratch to fit */
		for (int v = 0; v < WARD_VIEW_COUNT; v++)
			if (rs->hs[v] && hs_alloc_scratch(rs->hs[v]->db, &t->scratch) != HS_SUCCESS)
				return NULL;
	}
	t->generation = rs->generation;
	return t->scratch;
}

typedef struct {
	uint8_t *cand;
	size_t n;
} cand_ctx;

static int on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags, void *ctx)
{
	cand_ctx *c = ctx;

	(void)from, (void)to, (void)flags;
	if (id < c->n)
		c->cand[id] = 1;
	return 0;
}

/*
 * Differential fuzzing of the conversion against PCRE2 found Vectorscan
 * 5.4.9 (Debian 12) missing literal matches near the end of buffers shorter
 * than about 32 bytes (e.g. `\xc5\xbf[\x80-\xff]|\xc4\xb1` misses "\xc4\xb1"
 * after 16..30 bytes), the class of bug of VectorCamp/vectorscan #317 and
 * #358. Short texts are therefore scanned inside NUL padding: the converted
 * expressions have no anchors, so padding can only add candidates.
 */
#define PAD_SHORT 256
#define PAD_LEN   64

int ward_hs_scan_bytes(const void *db, void *scratch, const char *text, size_t len, uint8_t *cand, size_t ncand)
{
	char padded[PAD_LEN + PAD_SHORT + PAD_LEN];
	cand_ctx cc = {cand, ncand};

	if (len > 0xffffffffu)
		return WARD_ETOOBIG;
	if (len <= PAD_SHORT) {
		memset(padded, 0, sizeof(padded));
		memcpy(padded + PAD_LEN, text, len);
		text = padded;
		len += 2 * PAD_LEN;
	}
	if (hs_scan(db, text, (unsigned int)len, 0, scratch, on_match, &cc) != HS_SUCCESS)
		return WARD_EIO;
	return 0;
}

int ward_hsdb_scan(const ward_ruleset *rs, ward_view_kind v, const char *text, size_t len, uint8_t *cand)
{
	hs_scratch_t *s;

	if (!rs->hs[v] || !(s = thread_scratch(rs)))
		return WARD_ENOMEM;
	return ward_hs_scan_bytes(rs->hs[v]->db, s, text, len, cand, rs->npats);
}

const void *ward_hsdb_database(const ward_ruleset *rs, ward_view_kind v)
{
	return rs->hs[v] ? rs->hs[v]->db : NULL;
}

void ward_hsdb_free_all(ward_ruleset *rs)
{
	for (int v = 0; v < WARD_VIEW_COUNT; v++) {
		if (rs->hs[v]) {
			hs_free_database(rs->hs[v]->db);
			ward_free(rs->hs[v]);
			rs->hs[v] = NULL;
		}
		ward_free(rs->confirm[v]);
		rs->confirm[v] = NULL;
		rs->nconfirm[v] = 0;
	}
	if (rs->hs_scratch_proto) {
		hs_free_scratch(rs->hs_scratch_proto);
		rs->hs_scratch_proto = NULL;
	}
}

/* --- one view's database */

typedef struct {
	uint32_t *ids;   /* pattern indices in the database */
	uint32_t *flags; /* their HS flags */
	size_t nids;
	size_t *confirm; /* pattern indices left to PCRE2 */
	size_t nconfirm;
	hs_database_t *db;
} view_build;

static void view_build_dispose(view_build *b)
{
	ward_free(b->ids);
	ward_free(b->flags);
	ward_free(b->confirm);
	if (b->db)
		hs_free_database(b->db);
	memset(b, 0, sizeof(*b));
}

#define APPROX_BIT 0x80000000u

static int compile_view(ward_ruleset *rs, ward_view_kind v, char **exprs, const int *exact, view_build *b)
{
	size_t n = 0, attempts = 0;
	const char **ex = NULL;
	int rc = 0;

	b->ids = ward_calloc(rs->npats + 1, sizeof(uint32_t));
	b->flags = ward_calloc(rs->npats + 1, sizeof(uint32_t));
	b->confirm = ward_calloc(rs->npats + 1, sizeof(size_t));
	ex = ward_calloc(rs->npats + 1, sizeof(*ex));
	if (!b->ids || !b->flags || !b->confirm || !ex) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < rs->npats; i++) {
		const ward_rule *r = &rs->rules[rs->pats[i].rule];
		hs_expr_info_t *info = NULL;
		hs_compile_error_t *err = NULL;
		uint32_t fl;
		if (!(r->views & (1u << v)))
			continue;
		if (!exprs[i]) {
			b->confirm[b->nconfirm++] = i;
			continue;
		}
		fl = HS_FLAG_SINGLEMATCH | (r->caseless ? HS_FLAG_CASELESS : 0);
		/* Parse-level refusals are cheap to find alone; size refusals
		 * show up in the multi compile below. */
		if (hs_expression_info(exprs[i], fl, &info, &err) != HS_SUCCESS) {
			hs_free_compile_error(err);
			fl |= HS_FLAG_PREFILTER;
			if (hs_expression_info(exprs[i], fl, &info, &err) != HS_SUCCESS) {
				hs_free_compile_error(err);
				b->confirm[b->nconfirm++] = i;
				continue;
			}
		}
		free(info);
		b->ids[n] = (uint32_t)i;
		b->flags[n] = fl;
		n++;
	}
	while (n > 0 && attempts++ < rs->npats * 2 + 4) {
		hs_compile_error_t *err = NULL;
		for (size_t k = 0; k < n; k++)
			ex[k] = exprs[b->ids[k]];
		if (hs_compile_multi(ex, b->flags, b->ids, (unsigned)n, HS_MODE_BLOCK, NULL, &b->db, &err) ==
		    HS_SUCCESS)
			break;
		b->db = NULL;
		if (err && err->expression >= 0 && (size_t)err->expression < n) {
			size_t k = (size_t)err->expression;
			if (!(b->flags[k] & HS_FLAG_PREFILTER)) {
				b->flags[k] |= HS_FLAG_PREFILTER;
			} else {
				b->confirm[b->nconfirm++] = b->ids[k];
				memmove(b->ids + k, b->ids + k + 1, (n - k - 1) * sizeof(*b->ids));
				memmove(b->flags + k, b->flags + k + 1, (n - k - 1) * sizeof(*b->flags));
				n--;
			}
		} else {
			/* the database as a whole was refused: PCRE2 for all */
			for (size_t k = 0; k < n; k++)
				b->confirm[b->nconfirm++] = b->ids[k];
			n = 0;
		}
		hs_free_compile_error(err);
	}
	if (!b->db) {
		for (size_t k = 0; k < n; k++)
			b->confirm[b->nconfirm++] = b->ids[k];
		n = 0;
	}
	b->nids = n;
	/* Bit 31 (unused by Vectorscan) records an approximate conversion, so a
	 * database loaded from the cache reports the same statistics. */
	for (size_t k = 0; k < n; k++)
		if (!exact[b->ids[k]])
			b->flags[k] |= APPROX_BIT;
done:
	ward_free(ex);
	return rc;
}

/* --- the cache file */

#define CACHE_MAGIC  "RWHSDB1\n"
#define CACHE_HEADER 144

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Vectorscan version and converter version: a database built by another
 * engine or another conversion is a different file. */
static void engine_key(char out[17])
{
	char text[256];
	uint8_t d[WARD_SHA256_LEN];

	snprintf(text, sizeof(text), "vectorscan %s; converter %d; ptr %zu", hs_version(), CONVERTER_VERSION,
	         sizeof(void *));
	if (ward_sha256(d, text, strlen(text)) < 0)
		memset(d, 0, sizeof(d));
	ward_hex_encode_to(out, d, 8);
}

static int cache_path(char **out, const ward_ruleset *rs, const char *dir, ward_view_kind v)
{
	char key[17];
	ward_buf b;

	engine_key(key);
	ward_buf_init(&b, WARD_MAX_PATH_LEN);
	if (ward_buf_printf(&b, "%s/%s-%s-%s.hsdb", dir, rs->sha256, key, ward_view_name(v)) < 0 ||
	    ward_buf_detach(&b, out, NULL) < 0) {
		ward_buf_dispose(&b);
		return ward_error_set(WARD_ETOOBIG, "cache path too long under '%s'", dir);
	}
	return 0;
}

/* Loads a cached view database; any mismatch returns 1 (ignore and rebuild). */
static int cache_load(const ward_ruleset *rs, const char *path, ward_view_kind v, view_build *b)
{
	char *data = NULL, key[17];
	size_t len = 0, nids, nconf, plen, body;
	const uint8_t *p;
	uint8_t d[WARD_SHA256_LEN];
	int bad = 1, rr;

	if ((rr = ward_cache_read(&data, &len, path, WARD_MAX_HSDB_FILE)) != 0)
		return rr; /* 2, missing, is not a rejection */
	p = (const uint8_t *)data;
	engine_key(key);
	if (len < CACHE_HEADER || memcmp(p, CACHE_MAGIC, 8) || get32(p + 8) != 1 || get32(p + 12) != (uint32_t)v ||
	    memcmp(p + 16, rs->sha256, 64) || memcmp(p + 80, key, 16))
		goto done;
	nids = get32(p + 96);
	nconf = get32(p + 100);
	plen = (size_t)get64(p + 104);
	if (nids > rs->npats || nconf > rs->npats || plen > len)
		goto done;
	body = nids * 8 + nconf * 4 + plen;
	if (body != len - CACHE_HEADER)
		goto done;
	if (ward_sha256(d, p + CACHE_HEADER, body) < 0 || !ward_ct_equal(d, p + 112, sizeof(d)))
		goto done;
	b->ids = ward_calloc(nids + 1, sizeof(uint32_t));
	b->flags = ward_calloc(nids + 1, sizeof(uint32_t));
	b->confirm = ward_calloc(nconf + 1, sizeof(size_t));
	if (!b->ids || !b->flags || !b->confirm)
		goto done;
	for (size_t k = 0; k < nids; k++) {
		b->ids[k] = get32(p + CACHE_HEADER + 4 * k);
		b->flags[k] = get32(p + CACHE_HEADER + 4 * nids + 4 * k);
		if (b->ids[k] >= rs->npats || !(rs->rules[rs->pats[b->ids[k]].rule].views & (1u << v)))
			goto done;
	}
	for (size_t k = 0; k < nconf; k++) {
		b->confirm[k] = get32(p + CACHE_HEADER + 8 * nids + 4 * k);
		if (b->confirm[k] >= rs->npats || !(rs->rules[rs->pats[b->confirm[k]].rule].views & (1u << v)))
			goto done;
	}
	b->nids = nids;
	b->nconfirm = nconf;
	if (nids > 0 && hs_deserialize_database((const char *)p + CACHE_HEADER + 8 * nids + 4 * nconf, plen, &b->db) !=
	                        HS_SUCCESS) {
		b->db = NULL;
		goto done;
	}
	if (nids > 0 && !b->db)
		goto done;
	bad = 0;
done:
	if (bad)
		view_build_dispose(b);
	ward_free(data);
	return bad;
}

/* Writes the cache file atomically (temp + fsync + rename). Failing to
 * write a cache is not an error: the next start compiles again. */
static void cache_store(const ward_ruleset *rs, const char *dir, const char *path, ward_view_kind v,
                        const view_build *b)
{
	char *ser = NULL, key[17];
	size_t slen = 0, body;
	uint8_t *buf = NULL;

	if (b->nids > 0 && hs_serialize_database(b->db, &ser, &slen) != HS_SUCCESS)
		return;
	body = b->nids * 8 + b->nconfirm * 4 + slen;
	if (!(buf = ward_malloc(CACHE_HEADER + body)))
		goto done;
	engine_key(key);
	memset(buf, 0, CACHE_HEADER);
	memcpy(buf, CACHE_MAGIC, 8);
	put32(buf + 8, 1);
	put32(buf + 12, (uint32_t)v);
	memcpy(buf + 16, rs->sha256, 64);
	memcpy(buf + 80, key, 16);
	put32(buf + 96, (uint32_t)b->nids);
	put32(buf + 100, (uint32_t)b->nconfirm);
	put64(buf + 104, slen);
	for (size_t k = 0; k < b->nids; k++) {
		put32(buf + CACHE_HEADER + 4 * k, b->ids[k]);
		put32(buf + CACHE_HEADER + 4 * b->nids + 4 * k, b->flags[k]);
	}
	for (size_t k = 0; k < b->nconfirm; k++)
		put32(buf + CACHE_HEADER + 8 * b->nids + 4 * k, (uint32_t)b->confirm[k]);
	if (slen)
		memcpy(buf + CACHE_HEADER + 8 * b->nids + 4 * b->nconfirm, ser, slen);
	if (ward_sha256(buf + 112, buf + CACHE_HEADER, body) < 0)
		goto done;
	ward_cache_write(dir, path, buf, CACHE_HEADER + body);
done:
	ward_free(buf);
	free(ser); /* hs_serialize_database allocates with the misc allocator (malloc) */
	ward_error_clear();
}

int ward_hsdb_build_all(ward_ruleset *rs, const char *cache_dir)
{
	char **exprs = NULL;
	int *exact = NULL, rc = 0, converted = 0;
	unsigned used = 0;

	rs->prefilter = 0;
	for (size_t i = 0; i < rs->nrules; i++)
		used |= rs->rules[i].views;
	for (int v = 0; v < WARD_VIEW_COUNT; v++) {
		view_build b;
		char *path = NULL;
		int loaded = 0;

		memset(&b, 0, sizeof(b));
		if (!(used & (1u << v)))
			continue;
		if (cache_dir && ward_cache_dir_ok(cache_dir) &&
		    (rc = cache_path(&path, rs, cache_dir, (ward_view_kind)v)) < 0)
			goto fail;
		if (path) {
			int lr = cache_load(rs, path, (ward_view_kind)v, &b);
			if (lr == 0) {
				loaded = 1;
				rs->stats.dbs_cached++;
			} else if (lr == 1) {
				rs->stats.cache_rejected++;
			}
		}
		if (!loaded) {
			if (!converted) {
				exprs = ward_calloc(rs->npats + 1, sizeof(*exprs));
				exact = ward_calloc(rs->npats + 1, sizeof(*exact));
				if (!exprs || !exact) {
					ward_free(path);
					rc = ward_error_set(WARD_ENOMEM, "out of memory");
					goto fail;
				}
				for (size_t i = 0; i < rs->npats; i++) {
					int r = ward_hs_convert(&exprs[i], &exact[i], &rs->pats[i]);
					if (r < 0) {
						ward_free(path);
						rc = r;
						goto fail;
					}
				}
				converted = 1;
			}
			if ((rc = compile_view(rs, (ward_view_kind)v, exprs, exact, &b)) < 0) {
				view_build_dispose(&b);
				ward_free(path);
				goto fail;
			}
			if (b.nids > 0)
				rs->stats.dbs_built++;
			if (path)
				cache_store(rs, cache_dir, path, (ward_view_kind)v, &b);
		}
		ward_free(path);
		for (size_t k = 0; k < b.nids; k++) {
			if (b.flags[k] & (HS_FLAG_PREFILTER | APPROX_BIT))
				rs->stats.hs_prefilter++;
			else
				rs->stats.hs_exact++;
		}
		rs->stats.always_confirm += b.nconfirm;
		if (b.db) {
			if (!(rs->hs[v] = ward_calloc(1, sizeof(*rs->hs[v])))) {
				view_build_dispose(&b);
				rc = ward_error_set(WARD_ENOMEM, "out of memory");
				goto fail;
			}
			rs->hs[v]->db = b.db;
			b.db = NULL;
			if (hs_alloc_scratch(rs->hs[v]->db, (hs_scratch_t **)&rs->hs_scratch_proto) != HS_SUCCESS) {
				view_build_dispose(&b);
				rc = ward_error_set(WARD_ENOMEM, "vectorscan: cannot allocate scratch");
				goto fail;
			}
		}
		rs->confirm[v] = b.confirm;
		rs->nconfirm[v] = b.nconfirm;
		b.confirm = NULL;
		view_build_dispose(&b);
	}
	rs->prefilter = 1;
	goto done;
fail:
	ward_hsdb_free_all(rs);
done:
	if (exprs)
		for (size_t i = 0; i < rs->npats; i++)
			ward_free(exprs[i]);
	ward_free(exprs);
	ward_free(exact);
	return rc;
}

#endif
