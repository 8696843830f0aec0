/*
 * Normalization views and the invisible-character inventory (see
 * include/ragward/normalize.h for what each view holds).
 *
 * Speed matters: every channel of every document passes through here before
 * the rules run. So ASCII is handled in bulk (a word-at-a-time scan finds the
 * non-ASCII code points; ASCII runs are lowercased and whitespace-collapsed
 * inline), per-code-point Unicode properties come from a 64 Ki table built
 * once from ICU, and ICU's normalizer is called only on the short segments
 * (between normalization boundaries) that are not already NFKC_Casefold-
 * inert. Offset-map anchors are added only where a view leaves the diagonal
 * of the raw text.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/uscript.h>
#include <unicode/uspoof.h>
#include <unicode/utf16.h>

#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "ragward/normalize.h"
#include "core/limits.h"
#include "sanitize/normalize_internal.h"
#include "core/banned.h"

/* ---- process-wide ICU state, built once ---------------------------------- */

enum {
	F_INERT = 1,    /* NFKC_Casefold leaves it alone and it never combines */
	F_SPACE = 2,    /* White_Space: collapses to one ' ' */
	F_WORD = 4,     /* alphabetic, mark or decimal digit */
	F_BOUNDARY = 8, /* a normalization boundary precedes it */
	F_ALPHA = 16,   /* Alphabetic */
};

/* A skeleton that some printable ASCII character has, and that character:
 * lets a look-alike map back to ASCII instead of to ICU's prototype. */
typedef struct {
	char key[16];
	size_t klen;
	char ch;
	int prio;
} skel_rev;

static struct {
	const UNormalizer2 *nfkc_cf;
	USpoofChecker *spoof;
	uint8_t bmp[0x10000];
	skel_rev rev[128];
	size_t nrev;
	int ready;
	UErrorCode err;
	const char *what;
} T;
static pthread_once_t T_once = PTHREAD_ONCE_INIT;

static int icu_fail(const char *what, UErrorCode e)
{
	return ward_error_set(e == U_MEMORY_ALLOCATION_ERROR ? WARD_ENOMEM : WARD_EINVAL,
			      "normalize: %s: ICU error %s", what, u_errorName(e));
}

static unsigned compute_flags(UChar32 c)
{
	unsigned f = 0;
	int8_t t = u_charType(c);

	if (unorm2_isInert(T.nfkc_cf, c))
		f |= F_INERT;
	if (unorm2_hasBoundaryBefore(T.nfkc_cf, c))
		f |= F_BOUNDARY;
	if (u_isUWhiteSpace(c))
		f |= F_SPACE;
	if (u_hasBinaryProperty(c, UCHAR_ALPHABETIC))
		f |= F_ALPHA | F_WORD;
	if (t == U_NON_SPACING_MARK || t == U_COMBINING_SPACING_MARK || t == U_ENCLOSING_MARK ||
	    t == U_DECIMAL_DIGIT_NUMBER)
		f |= F_WORD;
	return f;
}

static inline unsigned cp_flags(uint32_t cp)
{
	return cp < 0x10000 ? T.bmp[cp] : compute_flags((UChar32)cp);
}

/* Raw ICU skeleton of one code point as UTF-8, marks after an ASCII base
 * dropped. Returns the length, 0 when ICU fails (the caller keeps the code
 * point). */
static size_t icu_skeleton(uint32_t cp, char *out, size_t cap)
{
	UChar in[2], sk[32];
	int32_t nin = 0, nsk, p = 0;
	size_t w = 0;
	UErrorCode e = U_ZERO_ERROR;

	U16_APPEND_UNSAFE(in, nin, cp);
	nsk = uspoof_getSkeleton(T.spoof, 0, in, nin, sk, 32, &e);
	if (U_FAILURE(e) || nsk <= 0)
		return 0;
	if (sk[0] < 0x80) {
		int32_t k;
		int marks = 1;

		for (k = 1; k < nsk && marks; k++) {
			int8_t t = u_charType(sk[k]);

			marks = t == U_NON_SPACING_MARK || t == U_ENCLOSING_MARK;
		}
		if (marks)
			nsk = 1;
	}
	while (p < nsk) {
		UChar32 c;

		U16_NEXT(sk, p, nsk, c);
		if (w + 4 > cap)
			return 0;
		w += ward_utf8_put(out + w, (uint32_t)c);
	}
	return w;
}

static int ascii_prio(char c)
{
	if (c >= 'a' && c <= 'z')
		return 3;
	if (c >= '0' && c <= '9')
		return 2;
	if (c >= 'A' && c <= 'Z')
		return 0;
	return 1;
}

static void tables_build(void)
{
	UErrorCode e = U_ZERO_ERROR;
	uint32_t c;

	T.nfkc_cf = unorm2_getNFKCCasefoldInstance(&e);
	if (U_FAILURE(e)) {
		T.err = e;
		T.what = "loading NFKC_Casefold";
		return;
	}
	T.spoof = uspoof_open(&e);
	if (U_SUCCESS(e))
		uspoof_setChecks(T.spoof, USPOOF_CONFUSABLE, &e);
	if (U_FAILURE(e)) {
		T.err = e;
		T.what = "opening the spoof checker";
		return;
	}
	for (c = 0; c < 0x10000; c++)
		T.bmp[c] = (c >= 0xD800 && c <= 0xDFFF) ? 0 : (uint8_t)compute_flags((UChar32)c);
	for (c = 0x21; c < 0x7F; c++) {
		char k[16];
		size_t kl = icu_skeleton(c, k, sizeof(k)), r;

		if (kl == 0)
			continue;
		for (r = 0; r < T.nrev; r++)
			if (T.rev[r].klen == kl && memcmp(T.rev[r].key, k, kl) == 0)
				break;
		if (r == T.nrev) {
			memcpy(T.rev[r].key, k, kl);
			T.rev[r].klen = kl;
			T.rev[r].prio = -1;
			T.nrev++;
		}
		if (ascii_prio((char)c) > T.rev[r].prio) {
			T.rev[r].ch = (char)c;
			T.rev[r].prio = ascii_prio((char)c);
		}
	}
	T.ready = 1;
}

static int tables_get(void)
{
	pthread_once(&T_once, tables_build);
	if (!T.ready)
		return icu_fail(T.what ? T.what : "initialising", T.err);
	return 0;
}

/* ---- names --------------------------------------------------------------- */

static const char *const view_names[WARD_VIEW_COUNT] = {"raw", "folded", "skeleton", "decoded"};

const char *ward_view_name(ward_view_kind v)
{
	return (unsigned)v < WARD_VIEW_COUNT ? view_names[v] : "unknown";
}

int ward_view_parse(ward_view_kind *out, const char *s)
{
	int v;

	for (v = 0; v < WARD_VIEW_COUNT; v++)
		if (s != NULL && strcmp(s, view_names[v]) == 0) {
			*out = (ward_view_kind)v;
			return 0;
		}
	return ward_error_set(WARD_EINVAL, "view '%s': unknown (raw, folded, skeleton, decoded)", s ? s : "");
}

const char *ward_invisible_name(ward_invisible_kind k)
{
	switch (k) {
	case WARD_INV_TAG:
		return "tag";
	case WARD_INV_ZERO_WIDTH:
		return "zero-width";
	case WARD_INV_BIDI:
		return "bidi";
	case WARD_INV_BIDI_UNBALANCED:
		return "bidi-unbalanced";
	case WARD_INV_VARIATION_RUN:
		return "variation-run";
	case WARD_INV_PRIVATE_USE:
		return "private-use";
	}
	return "unknown";
}

/* ---- UTF-8 --------------------------------------------------------------- */

size_t ward_ascii_span(const char *s, size_t i, size_t len)
{
	while (i + 8 <= len) {
		uint64_t w;

		memcpy(&w, s + i, 8);
		if (w & UINT64_C(0x8080808080808080))
			break;
		i += 8;
	}
	while (i < len && (unsigned char)s[i] < 0x80)
		i++;
	return i;
}

/* The ranges of Unicode Table 3-7 (well-formed UTF-8 byte sequences). */
int ward_utf8_valid(const char *str, size_t len, size_t *bad_offset)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned char c;
		size_t need, k;
		unsigned char lo = 0x80, hi = 0xBF;

		i = ward_ascii_span(str, i, len);
		if (i >= len)
			break;
		c = s[i];
		if (c < 0xC2 || c > 0xF4)
			goto bad;
		need = c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		else if (c == 0xED)
			hi = 0x9F; /* surrogates */
		else if (c == 0xF0)
			lo = 0x90; /* overlong */
		else if (c == 0xF4)
			hi = 0x8F; /* above U+10FFFF */
		if (len - i <= need)
			goto bad;
		if (s[i + 1] < lo || s[i + 1] > hi)
			goto bad;
		for (k = 2; k <= need; k++)
			if ((s[i + k] & 0xC0) != 0x80)
				goto bad;
		i += need + 1;
	}
	return 1;
bad:
	if (bad_offset != NULL)
		*bad_offset = i;
	return 0;
}

/* ---- output sink: a view under construction ------------------------------ */

#define STAGE 4096

typedef struct {
	ward_buf buf;
	ward_offmap map;
	size_t ldst, lsrc; /* the last anchor, to skip ones on its diagonal */
	int have;
	int last_space;    /* the view ends with a collapsed space */
	int broken;        /* the diagonal may have moved since the last anchor */
	size_t sn;
	char stage[STAGE]; /* batches small writes into buf */
} sink;

static void sink_init(sink *k, size_t max, size_t src_len)
{
	ward_buf_init(&k->buf, max);
	ward_offmap_init(&k->map, src_len);
	k->ldst = k->lsrc = 0;
	k->have = 0;
	k->last_space = 0;
	k->broken = 1;
	k->sn = 0;
}

static void sink_dispose(sink *k)
{
	ward_buf_dispose(&k->buf);
	ward_offmap_dispose(&k->map);
}

static inline size_t sink_pos(const sink *k)
{
	return k->buf.len + k->sn;
}

static int sink_flush(sink *k)
{
	if (k->sn > 0 && ward_buf_append(&k->buf, k->stage, k->sn) != 0)
		return k->buf.err;
	k->sn = 0;
	return 0;
}

static int sink_anchor(sink *k, size_t src)
{
	size_t dst = sink_pos(k);
	int rc;

	if (k->have && dst - k->ldst == src - k->lsrc)
		return 0;
	rc = ward_offmap_add(&k->map, dst, src);
	k->ldst = dst;
	k->lsrc = src;
	k->have = 1;
	return rc;
}

static int sink_put(sink *k, const char *b, size_t n)
{
	int rc;

	if (n > STAGE - k->sn) {
		rc = sink_flush(k);
		if (rc != 0)
			return rc;
		if (n > STAGE)
			return ward_buf_append(&k->buf, b, n) != 0 ? k->buf.err : 0;
	}
	memcpy(k->stage + k->sn, b, n);
	k->sn += n;
	return 0;
}

/* One code point of output taken from raw offset src; whitespace collapses. */
static int emit_cp(sink *k, const char *b, size_t n, size_t src, int space)
{
	int rc;

	if (space) {
		if (k->last_space)
			return 0;
		b = " ";
		n = 1;
	}
	rc = sink_anchor(k, src);
	if (rc != 0)
		return rc;
	k->last_space = space;
	return sink_put(k, b, n);
}

/* Final anchor: the end of the view maps to the end of its source. */
static int sink_finish(sink *k, size_t src_len)
{
	int rc = sink_flush(k);

	if (rc == 0 && k->buf.len > 0 && (!k->have || k->buf.len > k->ldst))
		rc = ward_offmap_add(&k->map, k->buf.len, src_len);
	return rc;
}

/* ---- folded -------------------------------------------------------------- */

static inline int ascii_space(unsigned char ch)
{
	return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

/* The hot loop: s[i..end) is ASCII, which NFKC_Casefold only lowercases. */
static int fold_ascii(sink *k, const unsigned char *s, size_t i, size_t end)
{
	int rc;

	k->broken = 1;
	while (i < end) {
		size_t lim;
		char *o;

		if (k->sn == STAGE && (rc = sink_flush(k)) != 0)
			return rc;
		lim = end - i < STAGE - k->sn ? end : i + (STAGE - k->sn);
		o = k->stage + k->sn;
		for (; i < lim; i++) {
			unsigned char ch = s[i];

			if (ascii_space(ch)) {
				if (k->last_space) {
					k->broken = 1;
					continue;
				}
				ch = ' ';
				k->last_space = 1;
			} else {
				k->last_space = 0;
				if ((unsigned)(ch - 'A') < 26u)
					ch = (unsigned char)(ch + 32);
			}
			if (k->broken) {
				k->sn = (size_t)(o - k->stage);
				rc = sink_anchor(k, i);
				if (rc != 0)
					return rc;
				k->broken = 0;
			}
			*o++ = (char)ch;
		}
		k->sn = (size_t)(o - k->stage);
	}
	return 0;
}

/* Longest segment handed to ICU at once. A longer run without boundaries
 * (hundreds of stacked combining marks) is cut: its marks may then not be
 * reordered canonically, which costs nothing in a detection view. */
#define SEG_MAX 64

/* Normalizes one segment starting at *pi: its first code point and those
 * following it up to the next normalization boundary. Its output maps to the
 * segment's start. */
static int fold_segment(sink *k, const unsigned char *s, size_t len, size_t *pi)
{
	UChar in[SEG_MAX * 2];
	UChar out[SEG_MAX * 2 * 18 + 32];
	size_t i = *pi, start = *pi;
	int32_t nin = 0, nout, p = 0;
	int ncp = 0;
	UErrorCode e = U_ZERO_ERROR;
	int rc;

	for (;;) {
		uint32_t cp = ward_utf8_next(s, &i);
		size_t t = i;

		U16_APPEND_UNSAFE(in, nin, cp);
		if (++ncp >= SEG_MAX || i >= len)
			break;
		if (cp_flags(ward_utf8_next(s, &t)) & F_BOUNDARY)
			break;
	}
	nout = unorm2_normalize(T.nfkc_cf, in, nin, out, (int32_t)(sizeof(out) / sizeof(out[0])), &e);
	if (U_FAILURE(e))
		return icu_fail("NFKC_Casefold", e);
	while (p < nout) {
		UChar32 c;
		char b[4];

		U16_NEXT(out, p, nout, c);
		rc = emit_cp(k, b, ward_utf8_put(b, (uint32_t)c), start, (cp_flags((uint32_t)c) & F_SPACE) != 0);
		if (rc != 0)
			return rc;
	}
	*pi = i;
	return 0;
}

static int fold_text(sink *k, const char *raw, size_t len, int ascii)
{
	const unsigned char *s = (const unsigned char *)raw;
	size_t i = 0;
	int rc = 0;

	if (ascii)
		return fold_ascii(k, s, 0, len);
	while (i < len) {
		size_t j = ward_ascii_span(raw, i, len), aend = j, t;
		uint32_t cp;
		unsigned f;

		/* An ASCII letter followed by a combining mark composes with it. */
		if (j < len && j > i) {
			t = j;
			if (!(cp_flags(ward_utf8_next(s, &t)) & F_BOUNDARY))
				aend = j - 1;
		}
		if (aend > i) {
			rc = fold_ascii(k, s, i, aend);
			if (rc != 0)
				return rc;
			i = aend;
		}
		if (i >= len)
			break;
		t = i;
		cp = ward_utf8_next(s, &t);
		f = cp_flags(cp);
		if (cp >= 0x80 && (f & F_SPACE)) {
			rc = emit_cp(k, " ", 1, i, 1);
			i = t;
		} else if (cp >= 0x80 && (f & F_INERT)) {
			rc = emit_cp(k, raw + i, t - i, i, 0);
			i = t;
		} else {
			rc = fold_segment(k, s, len, &i);
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- separator-split words ----------------------------------------------- */

static inline int is_sep(unsigned char ch)
{
	/* one test for the common case: every separator is below '`' */
	return ch < 0x60 && (ch == '.' || ch == ' ' || ch == '-' || ch == '_' || ch == '*' || ch == '/');
}

static inline int cp_letter(uint32_t cp)
{
	if (cp < 0x80)
		return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
	return (cp_flags(cp) & F_ALPHA) != 0;
}

static inline int cp_word(uint32_t cp)
{
	if (cp < 0x80)
		return ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') || (cp >= '0' && cp <= '9');
	return (cp_flags(cp) & F_WORD) != 0;
}

/* Word status of the code point that ends just before s[pos] (0 at the
 * start of the text); *start receives where it begins. */
static int word_before(const unsigned char *s, size_t pos, size_t *start)
{
	size_t k = pos;

	if (pos == 0) {
		*start = 0;
		return 0;
	}
	k--;
	while (k > 0 && (s[k] & 0xC0) == 0x80)
		k--;
	*start = k;
	{
		size_t q = k;

		return cp_word(ward_utf8_next(s, &q));
	}
}

/* Finds the next "i.g.n.o.r.e": >= 4 one-letter pieces joined by one
 * repeated separator, not touching other word characters. [*ws, *we) spans
 * from the first letter to the end of the last. The scan looks for a
 * separator repeated two bytes later (or around a non-ASCII letter) and only
 * then decodes code points, so ordinary text costs a byte compare. */
static int find_spaced(const unsigned char *s, size_t n, size_t from, size_t *ws, size_t *we, unsigned char *sep_out)
{
	size_t j;

	for (j = from + 1; j + 1 < n; j++) {
		unsigned char sep = s[j];
		size_t i, e, pst, dummy, cnt = 1, last, p;
		uint32_t cp;

		/* the rare test first: the same byte two later (or a multi-byte
		 * letter between), then whether that byte is a separator */
		if ((j + 2 >= n || s[j + 2] != sep) && s[j + 1] < 0x80)
			continue;
		if (!is_sep(sep))
			continue;
		/* the letter before this separator starts the candidate */
		(void)word_before(s, j, &i);
		if (i < from)
			continue;
		e = i;
		cp = ward_utf8_next(s, &e);
		if (e != j || !cp_letter(cp))
			continue;
		if (word_before(s, i, &pst))
			continue;
		/* After "word." the chain began with a longer piece ("ab.c.d.e");
		 * only spaces separate ordinary words from a spaced-out one. */
		if (sep != ' ' && i > 0 && s[i - 1] == sep && word_before(s, i - 1, &dummy))
			continue;
		last = e;
		p = e;
		while (p + 1 < n && s[p] == sep) {
			size_t le = p + 1, q;
			uint32_t c2 = ward_utf8_next(s, &le);

			if (!cp_letter(c2))
				break;
			if (le < n && s[le] != sep) {
				q = le;
				if (cp_word(ward_utf8_next(s, &q)))
					break;
			}
			cnt++;
			last = le;
			p = le;
		}
		if (sep != ' ' && last + 1 < n && s[last] == sep) {
			size_t q = last + 1;

			if (cp_word(ward_utf8_next(s, &q)))
				cnt = 0; /* ... or ends with one ("a.b.c.d.ef") */
		}
		if (cnt >= 4) {
			*ws = i;
			*we = last;
			*sep_out = sep;
			return 1;
		}
	}
	return 0;
}

static inline int ascii_letter(unsigned char ch)
{
	return (unsigned)((ch | 0x20) - 'a') < 26u;
}

/* After a letter-spaced run ending at s[from] (separator `sep`): a gap of
 * punctuation between letter groups (" / ", "_", " | ", " - ", or spaces
 * around a run spaced with dots) and another group of one or more spaced
 * letters ("i g n o r e / a l l"). [from, *ge) is the gap, [*ge, *gend) the
 * group; *space: the gap holds a space (a word gap; otherwise the groups
 * join). " . " between space-separated letters is not a gap: it ends a
 * sentence more often than it separates words, and rules read sentence
 * ends ("c o n v e r s a t i o n . Y O U"). */
static int next_group(const unsigned char *s, size_t n, size_t from, unsigned char sep, size_t *ge, size_t *gend,
                      int *space)
{
	size_t g = from, np = 0, nsp = 0, q;

	while (g < n && g - from < 4) {
		unsigned char c = s[g];

		if (c == ' ')
			nsp++;
		else if (c != sep &&
		         (c == '/' || c == '_' || c == '|' || c == '-' || c == '*' || (c == '.' && sep != ' ')))
			np++;
		else
			break;
		g++;
	}
	if (sep == ' ' ? np == 0 : np + nsp == 0)
		return 0;
	if (g >= n || !ascii_letter(s[g]))
		return 0;
	q = g + 1;
	if (q < n && s[q] != sep && cp_word(s[q] < 0x80 ? s[q] : 0x41)) /* a word, not a spaced letter */
		return 0;
	while (q + 1 < n && s[q] == sep && ascii_letter(s[q + 1]) &&
	       (q + 2 >= n || s[q + 2] == sep || !cp_word(s[q + 2] < 0x80 ? s[q + 2] : 0x41)))
		q += 2;
	*ge = g;
	*gend = q;
	*space = nsp > 0;
	return 1;
}

/* Byte ranges of folded text that the rewrite drops, in order. */
typedef struct {
	ward_folded_span *v;
	size_t n, cap;
} span_list;

static int spans_push(span_list *l, size_t a, size_t b)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		ward_folded_span *nv = ward_realloc(l->v, nc * sizeof(*nv));

		if (nv == NULL)
			return ward_error_set(WARD_ENOMEM, "normalize: out of memory");
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n].start = a;
	l->v[l->n].end = b;
	l->n++;
	return 0;
}

/* 1 when the raw text between the letters around folded offset q (a space
 * of a letter-spaced run) is a word gap: two or more whitespace characters
 * ("\r\n" counts as one). "i g n o r e   a l l" has one after the 'e'. */
static int wide_gap(const ward_offmap *map, const unsigned char *raw, size_t rlen, size_t q)
{
	size_t r0 = ward_offmap_lookup(map, q), r1 = ward_offmap_lookup(map, q + 1), nsp = 0;

	if (r1 > rlen)
		r1 = rlen;
	if (r1 < r0 + 2)
		return 0;
	while (r0 < r1) {
		uint32_t cp;

		if (raw[r0] == '\r' && r0 + 1 < r1 && raw[r0 + 1] == '\n')
			r0++;
		cp = ward_utf8_next(raw, &r0);
		if (cp < 0x80 ? ascii_space((unsigned char)cp) : (cp_flags(cp) & F_SPACE) != 0)
			nsp++;
	}
	return nsp >= 2;
}

/* Words the injection rules are made of, for joining a word split by
 * hyphens ("i-nstruction", "ig-nore", "in-struc-tions"). A hyphenated chain
 * is joined only when its letters spell one of these (plus at most four more
 * letters: "instructions") with every hyphen inside it; "state-of-the-art",
 * "e-mail", "system-prompt" or "ki-assistent" stay as they are. A hyphen at
 * a line break inside a word ("instruc-" newline "tions") is joined whatever
 * the word. */
static const char *const split_words[] = {
	"ignore", "disregard", "forget", "neglect", "override", "bypass", "circumvent", "abandon", "previous",
	"preceding", "prior", "earlier", "above", "instruction", "direction", "directive", "guideline", "guidance",
	"command", "constraint", "restriction", "limitation", "unrestricted", "unfiltered", "uncensored",
	"prompt", "system", "developer", "assistant", "conversation", "context", "message", "following",
	"everything", "anything", "reveal", "repeat", "verbatim", "confidential", "password", "credential",
	"secret", "jailbreak", "pretend", "roleplay", "respond", "response", "reply", "answer", "output",
	"translate", "execute", "obey", "include", "inclusion", "incorporate", "insert", "snippet",
	"implementation", "summary", "exfiltrate", "administrator", "important", "immediately", "instead",
};

/* Length of the vocabulary word that `w` (n letters) spells, or 0. */
static size_t split_word_match(const char *w, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(split_words) / sizeof(split_words[0]); i++) {
		size_t sl;

		if (split_words[i][0] != w[0])
			continue;
		sl = strlen(split_words[i]);
		if (sl <= n && n <= sl + 4 && memcmp(split_words[i], w, sl) == 0)
			return sl;
	}
	return 0;
}

static inline int lower_ascii(unsigned char ch)
{
	return ch >= 'a' && ch <= 'z';
}

/* 1 when the raw text behind folded s[q] (a collapsed space) holds a line break. */
static int gap_has_newline(const ward_offmap *map, const unsigned char *raw, size_t rlen, size_t q)
{
	size_t r0 = ward_offmap_lookup(map, q), r1 = ward_offmap_lookup(map, q + 1);

	if (r1 > rlen)
		r1 = rlen;
	return r0 < r1 && memchr(raw + r0, '\n', r1 - r0) != NULL;
}

/* Finds hyphen-split words in folded text s[0..n): adds the hyphens (and
 * the space after one at a line break) to `del`. */
static int find_hyphen_splits(const unsigned char *s, size_t n, const ward_offmap *map, const unsigned char *raw,
                              size_t rlen, span_list *del)
{
	const unsigned char *h = memchr(s, '-', n);

	while (h != NULL) {
		size_t p = (size_t)(h - s), w0 = p, q, len = 0, cuts[8], ncut = 0, sl, c;
		char word[40];
		int ok = 1, rc;

		/* the cheap test first: a letter on both sides ("x-y", "x- y") */
		if (p == 0 || !lower_ascii(s[p - 1]) ||
		    !(p + 1 < n &&
		      (lower_ascii(s[p + 1]) || (s[p + 1] == ' ' && p + 2 < n && lower_ascii(s[p + 2]))))) {
			h = p + 1 < n ? memchr(s + p + 1, '-', n - p - 1) : NULL;
			continue;
		}
		while (w0 > 0 && lower_ascii(s[w0 - 1]))
			w0--;
		if (w0 == p || (w0 > 0 && (s[w0 - 1] >= 0x80 || s[w0 - 1] == '-' || s[w0 - 1] == '_' ||
		                           (s[w0 - 1] >= '0' && s[w0 - 1] <= '9')))) {
			h = p + 1 < n ? memchr(s + p + 1, '-', n - p - 1) : NULL;
			continue;
		}
		/* the chain: letters, then ("-" or "- ") letters, ... */
		q = w0;
		for (;;) {
			while (q < n && lower_ascii(s[q])) {
				if (len < sizeof(word))
					word[len] = (char)s[q];
				len++;
				q++;
			}
			if (q + 1 < n && s[q] == '-' && lower_ascii(s[q + 1])) {
				if (ncut < 8)
					cuts[ncut] = len;
				ncut++;
				q += 1;
			} else if (q + 2 < n && s[q] == '-' && s[q + 1] == ' ' && lower_ascii(s[q + 2])) {
				if (ncut < 8)
					cuts[ncut] = len;
				ncut++;
				q += 2;
			} else {
				break;
			}
		}
		/* it must end the word: not "x-ray2", "ig-nore_x", "in-strüction" */
		if (q < n && (s[q] >= 0x80 || s[q] == '_' || s[q] == '-' || (s[q] >= '0' && s[q] <= '9')))
			ok = 0;
		if (ok && ncut > 0 && ncut <= 8 && len <= sizeof(word) && (sl = split_word_match(word, len)) > 0) {
			for (c = 0; c < ncut; c++)
				if (cuts[c] >= sl)
					ok = 0;
			/* every hyphen inside the word: drop them */
			for (c = w0; ok && c < q; c++) {
				if (s[c] != '-')
					continue;
				if ((rc = spans_push(del, c, s[c + 1] == ' ' ? c + 2 : c + 1)) != 0)
					return rc;
			}
			if (ok)
				goto next;
		}
		/* any other word: only a hyphen at a line break, letters both sides */
		for (c = w0 + 1; c + 2 < q; c++) {
			if (s[c] == '-' && s[c + 1] == ' ' && lower_ascii(s[c - 1]) && lower_ascii(s[c + 2]) &&
			    gap_has_newline(map, raw, rlen, c + 1) && (rc = spans_push(del, c, c + 2)) != 0)
				return rc;
		}
next:
		if (q <= p) /* "utf-8": the chain ended at this hyphen */
			q = p + 1;
		h = q < n ? memchr(s + q, '-', n - q) : NULL;
	}
	return 0;
}

static int cmp_span(const void *a, const void *b)
{
	const ward_folded_span *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* One group of letter-spaced text [from, to): each separator is either a
 * word gap kept (wide in the raw text: *gaps) or a letter gap deleted
 * (*letters). */
static int join_group(const unsigned char *s, size_t from, size_t to, unsigned char sep, const ward_offmap *map,
                      const unsigned char *raw, size_t rlen, span_list *del, size_t *gaps, size_t *letters)
{
	int rc;

	for (size_t q = from; q < to; q++) {
		if (s[q] != sep)
			continue;
		if (sep == ' ' && wide_gap(map, raw, rlen, q)) {
			(*gaps)++;
			continue;
		}
		(*letters)++;
		if ((rc = spans_push(del, q, q + 1)) != 0)
			return rc;
	}
	return 0;
}

/* Rewrites folded text without the separators of spaced-out words (keeping
 * the word gaps of wide-spaced ones) and the hyphens of split vocabulary
 * words; rare, so it is a second pass whose map is composed with folded's.
 * Runs spaced uniformly go to *sq (offsets in the rewritten text). */
static int rejoin(sink *k, const char *raw, size_t rlen, ward_folded_span **sq, size_t *nsq)
{
	const unsigned char *s = (const unsigned char *)k->buf.ptr, *r = (const unsigned char *)raw;
	size_t n = k->buf.len, pos = 0, ws, we, i, removed = 0, last = 0;
	unsigned char sep;
	ward_buf nb;
	ward_offmap rm, composed;
	span_list del = {NULL, 0, 0}, runs = {NULL, 0, 0};
	int rc = 0;

	if (s == NULL || n == 0)
		return 0;
	while (find_spaced(s, n, pos, &ws, &we, &sep)) {
		size_t gaps = 0, letters = 1;

		if ((rc = join_group(s, ws, we, sep, &k->map, r, rlen, &del, &gaps, &letters)) != 0)
			goto done;
		/* more groups behind punctuation gaps: "i g n o r e / a l l" */
		for (;;) {
			size_t ge, gend, c;
			int space;

			if (!next_group(s, n, we, sep, &ge, &gend, &space))
				break;
			if (space) { /* keep one space of the gap */
				for (c = we; s[c] != ' '; c++)
					;
				if ((c > we && (rc = spans_push(&del, we, c)) != 0) ||
				    (ge > c + 1 && (rc = spans_push(&del, c + 1, ge)) != 0))
					goto done;
				gaps++;
			} else {
				if ((rc = spans_push(&del, we, ge)) != 0)
					goto done;
				letters++;
			}
			if ((rc = join_group(s, ge, gend, sep, &k->map, r, rlen, &del, &gaps, &letters)) != 0)
				goto done;
			we = gend;
		}
		/* five letters or more, no word gap: the words may run together */
		if (gaps == 0 && letters >= 5 && (rc = spans_push(&runs, ws, we)) != 0)
			goto done;
		pos = we;
	}
	if ((rc = find_hyphen_splits(s, n, &k->map, r, rlen, &del)) != 0)
		goto done;
	if (del.n == 0)
		goto done;
	qsort(del.v, del.n, sizeof(*del.v), cmp_span);
	/* clip overlaps ("I-G-N-O-R-E" is both a spaced run and a split word) */
	for (i = 0, pos = 0; i < del.n; i++) {
		ward_folded_span d = del.v[i];

		if (d.start < pos)
			d.start = pos;
		if (d.end <= d.start)
			continue;
		del.v[last++] = d;
		pos = d.end;
	}
	del.n = last;
	/* the runs, in rewritten offsets (no cut falls inside a letter) */
	for (i = 0, last = 0; i < runs.n; i++) {
		for (; last < del.n && del.v[last].end <= runs.v[i].start; last++)
			removed += del.v[last].end - del.v[last].start;
		runs.v[i].start -= removed;
		{
			size_t rm_in = 0, j;

			for (j = last; j < del.n && del.v[j].end <= runs.v[i].end; j++)
				rm_in += del.v[j].end - del.v[j].start;
			runs.v[i].end -= removed + rm_in;
		}
	}
	ward_buf_init(&nb, k->buf.max);
	ward_offmap_init(&rm, n);
	ward_offmap_init(&composed, k->map.src_len);
	pos = 0;
	for (i = 0; i < del.n; i++) {
		if (del.v[i].start > pos) {
			rc = ward_offmap_add(&rm, nb.len, pos);
			if (rc == 0)
				rc = ward_buf_append(&nb, s + pos, del.v[i].start - pos);
			if (rc != 0)
				goto fail;
		}
		pos = del.v[i].end;
	}
	if (pos < n) {
		rc = ward_offmap_add(&rm, nb.len, pos);
		if (rc == 0)
			rc = ward_buf_append(&nb, s + pos, n - pos);
		if (rc != 0)
			goto fail;
	}
	rc = ward_offmap_compose(&composed, &rm, &k->map);
	if (rc != 0)
		goto fail;
	ward_buf_dispose(&k->buf);
	k->buf = nb;
	ward_buf_init(&nb, 0);
	ward_offmap_dispose(&k->map);
	k->map = composed;
	ward_offmap_init(&composed, 0);
	k->have = 0; /* the last anchor is now unknown; sink_finish checks length only */
fail:
	ward_offmap_dispose(&composed);
	ward_offmap_dispose(&rm);
	ward_buf_dispose(&nb);
done:
	ward_free(del.v);
	if (rc == 0 && runs.n > 0) {
		*sq = runs.v;
		*nsq = runs.n;
	} else {
		ward_free(runs.v);
	}
	return rc;
}

/* ---- skeleton and mixed scripts ------------------------------------------ */

#define SKC_SIZE 1024
#define SKC_PROBES 8

/* Per-call cache of code point -> ASCII-anchored skeleton: non-Latin text
 * repeats a small alphabet, and a uspoof call costs about a microsecond. */
typedef struct {
	uint32_t cp; /* 0: empty slot */
	uint8_t len;
	char s[19];
} skc_entry;

static size_t skeleton_of(skc_entry *cache, uint32_t cp, char *out)
{
	size_t h = (size_t)((cp * UINT32_C(2654435761)) >> 22) & (SKC_SIZE - 1), k, n, r;
	char buf[64];

	for (k = 0; k < SKC_PROBES; k++) {
		skc_entry *c = &cache[(h + k) & (SKC_SIZE - 1)];

		if (c->cp == cp) {
			memcpy(out, c->s, c->len);
			return c->len;
		}
		if (c->cp == 0)
			break;
	}
	n = icu_skeleton(cp, buf, sizeof(buf));
	if (n == 0)
		n = ward_utf8_put(buf, cp);
	for (r = 0; r < n && (unsigned char)buf[r] < 0x80; r++)
		;
	if (r == n) {
		/* All ASCII: the ASCII character with this skeleton, if any. */
		for (r = 0; r < T.nrev; r++)
			if (T.rev[r].klen == n && memcmp(T.rev[r].key, buf, n) == 0) {
				buf[0] = T.rev[r].ch;
				n = 1;
				break;
			}
		for (r = 0; r < n; r++)
			if ((unsigned)(buf[r] - 'A') < 26u)
				buf[r] = (char)(buf[r] + 32);
	}
	if (n <= sizeof(cache[0].s) && k < SKC_PROBES) {
		skc_entry *c = &cache[(h + k) & (SKC_SIZE - 1)];

		c->cp = cp;
		c->len = (uint8_t)n;
		memcpy(c->s, buf, n);
	}
	memcpy(out, buf, n);
	return n;
}

/* Scripts of one word, Common and Inherited ignored. */
typedef struct {
	UScriptCode sc[4];
	int n;
	int overflow;
	int nonascii;
	int in_word;
} word_scripts;

static void ws_add(word_scripts *w, UScriptCode s)
{
	int i;

	if (s == USCRIPT_COMMON || s == USCRIPT_INHERITED || s == USCRIPT_UNKNOWN)
		return;
	for (i = 0; i < w->n; i++)
		if (w->sc[i] == s)
			return;
	if (w->n < 4)
		w->sc[w->n++] = s;
	else
		w->overflow = 1;
}

/* UTS #39 "highly restrictive": one script, or Latin with Han and kana, with
 * Han and Bopomofo, or with Han and Hangul. Anything else is a mix. */
static int ws_mixed(const word_scripts *w)
{
	int jpan = 0, kore = 0, hanb = 0, i;

	if (w->overflow)
		return 1;
	if (w->n <= 1)
		return 0;
	for (i = 0; i < w->n; i++) {
		switch (w->sc[i]) {
		case USCRIPT_LATIN:
		case USCRIPT_HAN:
			break;
		case USCRIPT_HIRAGANA:
		case USCRIPT_KATAKANA:
			jpan = 1;
			break;
		case USCRIPT_HANGUL:
			kore = 1;
			break;
		case USCRIPT_BOPOMOFO:
			hanb = 1;
			break;
		default:
			return 1;
		}
	}
	return jpan + kore + hanb > 1;
}

static int skeleton_text(sink *k, const char *f, size_t n, size_t *mixed)
{
	const unsigned char *s = (const unsigned char *)f;
	skc_entry *cache = NULL;
	word_scripts w;
	size_t i = 0;
	int rc = 0;

	memset(&w, 0, sizeof(w));
	cache = ward_calloc(SKC_SIZE, sizeof(*cache));
	if (cache == NULL) {
		rc = ward_error_set(WARD_ENOMEM, "normalize: out of memory");
		goto done;
	}
	while (i < n) {
		size_t j = ward_ascii_span(f, i, n), q;

		if (j > i) {
			rc = sink_anchor(k, i);
			if (rc == 0)
				rc = sink_put(k, f + i, j - i);
			if (rc != 0)
				goto done;
			/* Only the words at the ends of an ASCII run can touch a
			 * non-ASCII letter: finish the open word, then look at the
			 * run's last word; the middle is all-Latin words. */
			q = i;
			if (w.in_word) {
				int latin = 0;

				for (; q < j && cp_word(s[q]); q++)
					latin |= s[q] > '9';
				if (latin)
					ws_add(&w, USCRIPT_LATIN);
				if (q < j) {
					if (w.nonascii && ws_mixed(&w))
						(*mixed)++;
					memset(&w, 0, sizeof(w));
				}
			}
			if (q < j) {
				size_t r = j;
				int latin = 0;

				while (r > q && cp_word(s[r - 1]))
					latin |= s[--r] > '9';
				if (r < j) {
					w.in_word = 1;
					if (latin)
						ws_add(&w, USCRIPT_LATIN);
				}
			}
			i = j;
		}
		if (i < n) {
			char b[64];
			size_t start = i, bl;
			uint32_t cp = ward_utf8_next(s, &i);
			UErrorCode e = U_ZERO_ERROR;

			if (cp_word(cp)) {
				w.nonascii = 1;
				w.in_word = 1;
				ws_add(&w, uscript_getScript((UChar32)cp, &e));
			} else {
				if (w.nonascii && ws_mixed(&w))
					(*mixed)++;
				memset(&w, 0, sizeof(w));
			}
			bl = skeleton_of(cache, cp, b);
			rc = sink_anchor(k, start);
			if (rc == 0)
				rc = sink_put(k, b, bl);
			if (rc != 0)
				goto done;
		}
	}
	if (w.nonascii && ws_mixed(&w))
		(*mixed)++;
done:
	ward_free(cache);
	return rc;
}

/* ---- invisible-character inventory --------------------------------------- */

static int inv_add(ward_normalized *nz, size_t *cap, ward_invisible_kind kind, size_t start, size_t end,
		   size_t count, char *decoded)
{
	ward_invisible *v;

	if (nz->ninvisible >= WARD_MAX_INVISIBLE_RUNS) {
		nz->invisible_dropped++;
		ward_free(decoded);
		return 0;
	}
	if (nz->ninvisible == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;

		v = ward_realloc(nz->invisible, nc * sizeof(*v));
		if (v == NULL) {
			ward_free(decoded);
			return ward_error_set(WARD_ENOMEM, "normalize: out of memory");
		}
		nz->invisible = v;
		*cap = nc;
	}
	v = &nz->invisible[nz->ninvisible++];
	v->kind = kind;
	v->start = start;
	v->end = end;
	v->count = count;
	v->decoded = decoded;
	return 0;
}

/* The characters the brief of this scanner names as zero-width. */
static int is_zero_width(uint32_t c)
{
	return c == 0x200B || c == 0x200C || c == 0x200D || c == 0x2060 || c == 0xFEFF || c == 0x180E ||
	       (c >= 0x2062 && c <= 0x2064);
}

static int is_bidi_control(uint32_t c)
{
	return (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069);
}

static int is_variation_selector(uint32_t c)
{
	return (c >= 0xFE00 && c <= 0xFE0F) || (c >= 0xE0100 && c <= 0xE01EF);
}

static int is_private_use(uint32_t c)
{
	return (c >= 0xE000 && c <= 0xF8FF) || (c >= 0xF0000 && c <= 0xFFFFD) || (c >= 0x100000 && c <= 0x10FFFD);
}

static int is_tag(uint32_t c)
{
	return c >= 0xE0000 && c <= 0xE007F;
}

/* ZWNJ/ZWJ are spelling in cursive (Arabic, Persian, Syriac, ...) and
 * Brahmic scripts: they choose letter forms and conjuncts. */
static int joiner_script(uint32_t cp)
{
	if (cp < 0x80)
		return 0;
	return u_getIntPropertyValue((UChar32)cp, UCHAR_JOINING_TYPE) != U_JT_NON_JOINING ||
	       u_getIntPropertyValue((UChar32)cp, UCHAR_INDIC_SYLLABIC_CATEGORY) != U_INSC_OTHER;
}

/* ZWSP marks word boundaries in scripts written without spaces (Thai, Lao,
 * Khmer, Myanmar, ...). */
static int breaks_between_letters(uint32_t cp)
{
	UErrorCode e = U_ZERO_ERROR;
	UScriptCode sc;

	if (cp < 0x80)
		return 0;
	sc = uscript_getScript((UChar32)cp, &e);
	return U_SUCCESS(e) && uscript_breaksBetweenLetters(sc);
}

#define BIDI_MAX_DEPTH 125 /* UAX #9 max_depth */

typedef struct {
	size_t off[BIDI_MAX_DEPTH];
	uint8_t isolate[BIDI_MAX_DEPTH];
	int depth;
	size_t overflow;
} bidi_stack;

static void bidi_push(bidi_stack *b, size_t off, int isolate)
{
	if (b->depth == BIDI_MAX_DEPTH) {
		b->overflow++;
		return;
	}
	b->off[b->depth] = off;
	b->isolate[b->depth++] = (uint8_t)isolate;
}

static void bidi_pop(bidi_stack *b, uint32_t c)
{
	if (b->overflow > 0) {
		b->overflow--;
		return;
	}
	if (c == 0x202C) {
		if (b->depth > 0 && !b->isolate[b->depth - 1])
			b->depth--;
		return;
	}
	/* PDI closes the innermost isolate and the embeddings inside it. */
	{
		int d = b->depth;

		while (d > 0 && !b->isolate[d - 1])
			d--;
		if (d > 0)
			b->depth = d - 1;
	}
}

/* End of a paragraph at raw offset `at`: what is still open is unbalanced. */
static int bidi_close(ward_normalized *nz, size_t *cap, bidi_stack *b, size_t at)
{
	int rc = 0;

	if (b->depth > 0)
		rc = inv_add(nz, cap, WARD_INV_BIDI_UNBALANCED, b->off[0], at, (size_t)b->depth + b->overflow, NULL);
	b->depth = 0;
	b->overflow = 0;
	return rc;
}

static inline int ascii_para_sep(unsigned char ch)
{
	return ch == '\n' || ch == '\r' || (ch >= 0x1C && ch <= 0x1E);
}

static int take_inventory(ward_normalized *nz, const char *raw, size_t len)
{
	const unsigned char *s = (const unsigned char *)raw;
	size_t cap = 0, i = 0;
	uint32_t prev = 0;
	bidi_stack *bs;
	int rc = 0;

	bs = ward_calloc(1, sizeof(*bs));
	if (bs == NULL)
		return ward_error_set(WARD_ENOMEM, "normalize: out of memory");
	/* A leading BOM is an encoding signature, not content. */
	if (len >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF)
		i = 3;
	while (i < len) {
		size_t start = i, j;
		uint32_t cp;

		if (s[i] < 0x80) {
			j = ward_ascii_span(raw, i, len);
			if (bs->depth > 0) {
				size_t p;

				for (p = i; p < j && !ascii_para_sep(s[p]); p++)
					;
				if (p < j && (rc = bidi_close(nz, &cap, bs, p)) != 0)
					goto done;
			}
			prev = s[j - 1];
			i = j;
			continue;
		}
		cp = ward_utf8_next(s, &i);
		if (cp < 0x061C) {
			prev = cp;
			if (cp == 0x0085 && (rc = bidi_close(nz, &cap, bs, start)) != 0)
				goto done;
			continue;
		}
		if (is_tag(cp)) {
			char *dec;

			for (j = i; j < len;) {
				size_t t = j;

				if (!is_tag(ward_utf8_next(s, &t)))
					break;
				j = t;
			}
			if (!ward_tag_run_is_flag(raw + start, j - start, prev == 0x1F3F4)) {
				dec = ward_malloc((j - start) / 4 + 1);
				if (dec == NULL) {
					rc = ward_error_set(WARD_ENOMEM, "normalize: out of memory");
					goto done;
				}
				dec[ward_tag_run_ascii(dec, raw + start, j - start)] = '\0';
				rc = inv_add(nz, &cap, WARD_INV_TAG, start, j, (j - start) / 4, dec);
				if (rc != 0)
					goto done;
			}
			prev = 0xE007F;
			i = j;
			continue;
		}
		if (is_zero_width(cp)) {
			size_t n = 1, t = i;
			uint32_t next = 0, last = cp;
			int feff = cp == 0xFEFF, only_joiners = cp == 0x200C || cp == 0x200D, only_zwsp = cp == 0x200B;
			int flag;

			while (t < len) {
				size_t u = t;
				uint32_t c2 = ward_utf8_next(s, &u);

				if (!is_zero_width(c2)) {
					next = c2;
					break;
				}
				feff |= c2 == 0xFEFF;
				only_joiners &= c2 == 0x200C || c2 == 0x200D;
				only_zwsp &= c2 == 0x200B;
				last = c2;
				n++;
				t = u;
			}
			flag = feff;
			if (!flag && cp_word(prev) && cp_word(next)) {
				int legit = (only_joiners && (joiner_script(prev) || joiner_script(next))) ||
					    (only_zwsp && breaks_between_letters(prev) && breaks_between_letters(next));

				flag = !legit;
			}
			if (flag && (rc = inv_add(nz, &cap, WARD_INV_ZERO_WIDTH, start, t, n, NULL)) != 0)
				goto done;
			prev = last;
			i = t;
			continue;
		}
		if (is_bidi_control(cp)) {
			size_t n = 0, t = start;

			while (t < len) {
				size_t u = t;
				uint32_t c2 = ward_utf8_next(s, &u);

				if (!is_bidi_control(c2))
					break;
				if (c2 == 0x202C || c2 == 0x2069)
					bidi_pop(bs, c2);
				else
					bidi_push(bs, t, c2 >= 0x2066);
				n++;
				t = u;
			}
			rc = inv_add(nz, &cap, WARD_INV_BIDI, start, t, n, NULL);
			if (rc != 0)
				goto done;
			i = t;
			continue;
		}
		if (cp == 0x2029) {
			rc = bidi_close(nz, &cap, bs, start);
			if (rc != 0)
				goto done;
			prev = cp;
			continue;
		}
		if (is_variation_selector(cp) || is_private_use(cp)) {
			int vs = is_variation_selector(cp);
			size_t n = 1, t = i;

			while (t < len) {
				size_t u = t;
				uint32_t c2 = ward_utf8_next(s, &u);

				if (vs ? !is_variation_selector(c2) : !is_private_use(c2))
					break;
				n++;
				t = u;
			}
			/* One selector after a base is ordinary (emoji presentation,
			 * CJK ideographic variants); a run of them carries data. */
			if (!vs || n > 1) {
				rc = inv_add(nz, &cap, vs ? WARD_INV_VARIATION_RUN : WARD_INV_PRIVATE_USE, start, t, n, NULL);
				if (rc != 0)
					goto done;
			}
			i = t;
			continue;
		}
		prev = cp;
	}
	rc = bidi_close(nz, &cap, bs, len);
done:
	ward_free(bs);
	return rc;
}

/* ---- entry points -------------------------------------------------------- */

void ward_normalized_free(ward_normalized *nz)
{
	size_t i;

	if (nz == NULL)
		return;
	for (i = 0; i < WARD_VIEW_COUNT; i++) {
		ward_free(nz->views[i].text);
		ward_offmap_dispose(&nz->views[i].map);
	}
	for (i = 0; i < nz->ninvisible; i++)
		ward_free(nz->invisible[i].decoded);
	ward_free(nz->invisible);
	ward_free(nz->squashed);
	ward_free(nz);
}

/* Moves a finished sink into a view. */
static int sink_to_view(ward_view *v, sink *k, size_t src_len)
{
	int rc = sink_finish(k, src_len);

	if (rc == 0)
		rc = ward_buf_detach(&k->buf, &v->text, &v->len);
	if (rc != 0)
		return rc;
	ward_offmap_dispose(&v->map);
	v->map = k->map;
	ward_offmap_init(&k->map, src_len);
	return 0;
}

static int copy_map(ward_offmap *dst, const ward_offmap *src)
{
	size_t i;
	int rc;

	for (i = 0; i < src->n; i++)
		if ((rc = ward_offmap_add(dst, src->a[i].dst, src->a[i].src)) != 0)
			return rc;
	return 0;
}

int ward_normalize(ward_normalized **out, const char *text, size_t len)
{
	ward_normalized *nz = NULL;
	sink *k = NULL;
	ward_buf db;
	ward_offmap skmap;
	size_t bad = 0, i, grow_max;
	int rc = 0;

	ward_buf_init(&db, 0);
	ward_offmap_init(&skmap, 0);
	*out = NULL;
	if (text == NULL && len > 0)
		return ward_error_set(WARD_EINVAL, "normalize: no text");
	if (len > WARD_MAX_SCAN_BYTES)
		return ward_error_set(WARD_ETOOBIG, "normalize: text of %zu bytes exceeds the limit of %zu", len,
				      (size_t)WARD_MAX_SCAN_BYTES);
	if (len > 0 && !ward_utf8_valid(text, len, &bad))
		return ward_error_set(WARD_EINVAL, "normalize: invalid UTF-8 at byte offset %zu", bad);
	rc = tables_get();
	if (rc != 0)
		return rc;
	grow_max = len * WARD_NORMALIZE_MAX_GROWTH + 64;

	nz = ward_calloc(1, sizeof(*nz));
	k = ward_malloc(sizeof(*k));
	if (nz == NULL || k == NULL) {
		rc = ward_error_set(WARD_ENOMEM, "normalize: out of memory");
		goto done;
	}
	for (i = 0; i < WARD_VIEW_COUNT; i++) {
		nz->views[i].kind = (ward_view_kind)i;
		ward_offmap_init(&nz->views[i].map, len);
	}
	sink_init(k, grow_max, len);
	nz->ascii_only = ward_ascii_span(text, 0, len) == len;

	/* raw */
	nz->views[WARD_VIEW_RAW].text = ward_malloc(len + 1);
	if (nz->views[WARD_VIEW_RAW].text == NULL) {
		rc = ward_error_set(WARD_ENOMEM, "normalize: out of memory");
		goto done;
	}
	if (len > 0)
		memcpy(nz->views[WARD_VIEW_RAW].text, text, len);
	nz->views[WARD_VIEW_RAW].text[len] = '\0';
	nz->views[WARD_VIEW_RAW].len = len;
	if (len > 0 && (rc = ward_offmap_add(&nz->views[WARD_VIEW_RAW].map, 0, 0)) != 0)
		goto done;

	/* inventory, before normalization removes the evidence */
	if (!nz->ascii_only && (rc = take_inventory(nz, text, len)) != 0)
		goto done;

	/* folded */
	rc = fold_text(k, text, len, nz->ascii_only);
	if (rc == 0)
		rc = sink_flush(k);
	if (rc == 0)
		rc = rejoin(k, text, len, &nz->squashed, &nz->nsquashed);
	if (rc == 0)
		rc = sink_to_view(&nz->views[WARD_VIEW_FOLDED], k, len);
	if (rc != 0) {
		ward_error_wrap("normalize: folded view");
		goto done;
	}

	/* skeleton: ASCII is its own skeleton here (see normalize.h) */
	if (nz->ascii_only) {
		ward_view *f = &nz->views[WARD_VIEW_FOLDED], *sv = &nz->views[WARD_VIEW_SKELETON];

		sv->text = ward_malloc(f->len + 1);
		if (sv->text == NULL) {
			rc = ward_error_set(WARD_ENOMEM, "normalize: out of memory");
			goto done;
		}
		memcpy(sv->text, f->text, f->len + 1);
		sv->len = f->len;
		if ((rc = copy_map(&sv->map, &f->map)) != 0)
			goto done;
	} else {
		ward_view *f = &nz->views[WARD_VIEW_FOLDED];
		ward_view tmp;

		memset(&tmp, 0, sizeof(tmp));
		sink_dispose(k);
		sink_init(k, grow_max, f->len);
		rc = skeleton_text(k, f->text, f->len, &nz->mixed_script_words);
		if (rc == 0)
			rc = sink_to_view(&tmp, k, f->len);
		if (rc == 0) {
			rc = ward_offmap_compose(&skmap, &tmp.map, &f->map);
			ward_offmap_dispose(&tmp.map);
		}
		if (rc != 0) {
			ward_free(tmp.text);
			ward_error_wrap("normalize: skeleton view");
			goto done;
		}
		nz->views[WARD_VIEW_SKELETON].text = tmp.text;
		nz->views[WARD_VIEW_SKELETON].len = tmp.len;
		ward_offmap_dispose(&nz->views[WARD_VIEW_SKELETON].map);
		nz->views[WARD_VIEW_SKELETON].map = skmap;
		ward_offmap_init(&skmap, 0);
	}

	/* decoded */
	ward_buf_init(&db, len * WARD_DECODE_MAX_GROWTH + 1024);
	rc = ward_decode_view(&db, &nz->views[WARD_VIEW_DECODED].map, &nz->decoded_truncated, text, len);
	if (rc == 0)
		rc = ward_buf_detach(&db, &nz->views[WARD_VIEW_DECODED].text, &nz->views[WARD_VIEW_DECODED].len);
	if (rc != 0) {
		ward_error_wrap("normalize: decoded view");
		goto done;
	}

	*out = nz;
	nz = NULL;
done:
	ward_buf_dispose(&db);
	ward_offmap_dispose(&skmap);
	if (k != NULL)
		sink_dispose(k);
	ward_free(k);
	ward_normalized_free(nz);
	return rc;
}
