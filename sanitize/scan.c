/*
 * The scan engine: per view, Vectorscan finds which patterns can match (one
 * pass over the bytes), PCRE2 confirms each candidate and finds every match
 * with its offsets. Without a database every pattern of the view runs on
 * PCRE2; both paths walk the patterns in the same order, so they produce the
 * same findings.
 *
 * PCRE2 always runs with match, depth and heap limits and a bounded JIT stack;
 * a limit hit becomes a "scan.incomplete" finding, never a silent pass.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "core/limits.h"
#include "sanitize/scan_internal.h"
#include "core/banned.h"

/* --- per-thread PCRE2 state: the JIT stack must not be shared (pcre2jit.3) */

typedef struct {
	pcre2_match_context *mctx;
	pcre2_jit_stack *jit;
	pcre2_match_data *md;
	/* squashed variants of the patterns of one rule set (see scan_squashed),
	 * compiled on the first text that needs them */
	unsigned long long sq_gen; /* 0: none */
	ward_pattern *sq;          /* sq[i].code NULL: no variant for pattern i */
	size_t nsq;
} tls_state;

static void sq_free(tls_state *t)
{
	for (size_t i = 0; i < t->nsq; i++)
		pcre2_code_free(t->sq[i].code);
	free(t->sq);
	t->sq = NULL;
	t->nsq = 0;
	t->sq_gen = 0;
}

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_key_ok;

static void tls_free(void *p)
{
	tls_state *t = p;

	if (!t)
		return;
	sq_free(t);
	pcre2_match_data_free(t->md);
	pcre2_jit_stack_free(t->jit);
	pcre2_match_context_free(t->mctx);
	free(t); /* plain free: the thread may exit after a fault-injection test armed the hook */
}

static void tls_make_key(void)
{
	tls_key_ok = pthread_key_create(&tls_key, tls_free) == 0;
}

static tls_state *tls_get(void)
{
	tls_state *t;

	pthread_once(&tls_once, tls_make_key);
	if (!tls_key_ok)
		return NULL;
	if ((t = pthread_getspecific(tls_key)) != NULL)
		return t;
	if (!(t = calloc(1, sizeof(*t))))
		return NULL;
	t->mctx = pcre2_match_context_create(NULL);
	t->jit = pcre2_jit_stack_create(32 * 1024, WARD_PCRE2_JIT_STACK_MAX, NULL);
	t->md = pcre2_match_data_create(1, NULL);
	if (!t->mctx || !t->md || pthread_setspecific(tls_key, t) != 0) {
		tls_free(t);
		return NULL;
	}
	pcre2_set_match_limit(t->mctx, WARD_PCRE2_MATCH_LIMIT);
	pcre2_set_depth_limit(t->mctx, WARD_PCRE2_DEPTH_LIMIT);
	pcre2_set_heap_limit(t->mctx, WARD_PCRE2_HEAP_LIMIT_KIB);
	if (t->jit) /* without it the JIT uses 32 KiB of machine stack and reports JIT_STACKLIMIT */
		pcre2_jit_stack_assign(t->mctx, NULL, t->jit);
	return t;
}

static int is_limit(int rc)
{
	return rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
	       rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_NOMEMORY;
}

/* `utf_checked` = 1 only from scan_view, which validated the buffer itself. */
static int match1(const ward_pattern *p, int no_jit, const char *subj, size_t len, size_t start, size_t *ms, size_t *me,
                  int *prc, int utf_checked)
{
	tls_state *t = tls_get();
	uint32_t opts = (no_jit || !p->jit ? PCRE2_NO_JIT : 0) | (utf_checked ? PCRE2_NO_UTF_CHECK : 0);
	int rc;

	if (!t)
		return ward_error_set(WARD_ENOMEM, "out of memory (PCRE2 match state)");
	rc = pcre2_match(p->code, (PCRE2_SPTR)subj, len, start, opts, t->md, t->mctx);
	*prc = rc;
	if (rc >= 0) {
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
		*ms = ov[0];
		*me = ov[1] < ov[0] ? ov[0] : ov[1]; /* \K can put the start after the end */
		return 1;
	}
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	if (is_limit(rc))
		return WARD_LIMIT_HIT;
	{
		PCRE2_UCHAR msg[128];
		pcre2_get_error_message(rc, msg, sizeof(msg));
		return ward_error_set(WARD_EINVAL, "pattern '%.40s': match failed: %s", p->src, (const char *)msg);
	}
}

int ward_scan_match1(const ward_pattern *p, int no_jit, const char *subj, size_t len, size_t start, size_t *ms,
                     size_t *me, int *prc)
{
	return match1(p, no_jit, subj, len, start, ms, me, prc, 0);
}

int ward_scan_rule_matches(const ward_ruleset *rs, const ward_rule *r, const char *text, size_t len)
{
	ward_normalized *norm = NULL;
	int rc, result = 0;

	if ((rc = ward_normalize(&norm, text, len)) < 0)
		return rc;
	for (int v = 0; v < WARD_VIEW_COUNT && result != 1; v++) {
		const ward_view *view = &norm->views[v];
		if (!(r->views & (1u << v)) || view->len == 0)
			continue;
		for (size_t k = 0; k < r->npats; k++) {
			size_t s = 0, e = 0;
			int prc, m = match1(&rs->pats[r->first_pat + k], rs->no_jit, view->text, view->len, 0, &s, &e,
			                    &prc, 0);
			if (m < 0) {
				result = m;
				goto done;
			}
			if (m == WARD_LIMIT_HIT)
				result = WARD_LIMIT_HIT;
			else if (m == 1) {
				result = 1;
				break;
			}
		}
	}
done:
	ward_normalized_free(norm);
	return result;
}

/* --- findings */

void ward_findings_init(ward_findings *f)
{
	memset(f, 0, sizeof(*f));
}

static void finding_dispose(ward_finding *x)
{
	ward_free(x->rule_id);
	ward_free(x->category);
	ward_free(x->excerpt);
}

void ward_findings_dispose(ward_findings *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		finding_dispose(&f->items[i]);
	ward_free(f->items);
	memset(f, 0, sizeof(*f));
}

/* Characters a reviewer must see as escapes: controls, bidi, invisible,
 * tag characters, variation selectors, private use. */
static int must_escape(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0xad || cp == 0x34f || cp == 0x61c || cp == 0x115f ||
	       cp == 0x1160 || cp == 0x17b4 || cp == 0x17b5 || cp == 0x180e || (cp >= 0x180b && cp <= 0x180f) ||
	       (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x206f) ||
	       cp == 0x3164 || (cp >= 0xe000 && cp <= 0xf8ff) || (cp >= 0xfe00 && cp <= 0xfe0f) || cp == 0xfeff ||
	       cp == 0xffa0 || (cp >= 0xfff0 && cp <= 0xfffb) || (cp >= 0x1d173 && cp <= 0x1d17a) ||
	       (cp >= 0xe0000 && cp <= 0xe0fff) || cp >= 0xf0000;
}

/* Decodes one code point of valid UTF-8; returns its length. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	if (s[0] < 0x80 || n < 2) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		*cp = ((uint32_t)(s[0] & 0x1f) << 6) | (s[1] & 0x3f);
		return 2;
	}
	if ((s[0] & 0xf0) == 0xe0 && n >= 3) {
		*cp = ((uint32_t)(s[0] & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
		return 3;
	}
	if (n >= 4) {
		*cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) |
		      ((uint32_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
		return 4;
	}
	*cp = s[0];
	return 1;
}

/* Up to WARD_EXCERPT_LEN bytes of raw around [s, e), cut on UTF-8
 * boundaries, with dangerous characters escaped as \uXXXX (\UXXXXXXXX above
 * the BMP). */
static char *make_excerpt(const char *raw, size_t rlen, size_t s, size_t e)
{
	size_t a, b, mlen = e - s;
	ward_buf out;
	char *res = NULL;

	if (mlen >= WARD_EXCERPT_LEN) {
		a = s;
		b = s + WARD_EXCERPT_LEN;
	} else {
		size_t pad = (WARD_EXCERPT_LEN - mlen) / 2;
		a = s > pad ? s - pad : 0;
		b = e + (WARD_EXCERPT_LEN - mlen - (s - a));
	}
	if (b > rlen)
		b = rlen;
	while (a < b && ((unsigned char)raw[a] & 0xc0) == 0x80)
		a++;
	while (b > a && b < rlen && ((unsigned char)raw[b] & 0xc0) == 0x80)
		b--;
	ward_buf_init(&out, WARD_EXCERPT_LEN * 10 + 16);
	for (size_t i = a; i < b;) {
		uint32_t cp;
		size_t n = utf8_next((const unsigned char *)raw + i, b - i, &cp);
		int rc;
		if (must_escape(cp))
			rc = cp > 0xffff ? ward_buf_printf(&out, "\\U%08X", (unsigned)cp)
			                 : ward_buf_printf(&out, "\\u%04X", (unsigned)cp);
		else
			rc = ward_buf_append(&out, raw + i, n);
		if (rc < 0)
			break;
		i += n;
	}
	if (ward_buf_detach(&out, &res, NULL) < 0)
		res = NULL;
	ward_buf_dispose(&out);
	return res;
}

typedef struct {
	const ward_ruleset *rs;
	ward_channel channel;
	const ward_scan_context *ctx;
	const ward_normalized *norm;
	ward_findings *out;
	size_t base;     /* first finding of this call */
	size_t nregular; /* rule findings of this call */
	int incomplete_added;
	int stop; /* too many findings: stop scanning */
} scan_state;

static int push(scan_state *st, ward_finding *f)
{
	ward_findings *o = st->out;

	if (o->n == o->cap) {
		size_t ncap = o->cap ? o->cap * 2 : 16;
		ward_finding *ni = ward_realloc(o->items, ncap * sizeof(*ni));
		if (!ni) {
			finding_dispose(f);
			return ward_error_set(WARD_ENOMEM, "out of memory");
		}
		o->items = ni;
		o->cap = ncap;
	}
	o->items[o->n++] = *f;
	return 0;
}

static int add_special(scan_state *st, const char *id, ward_view_kind v, const char *why)
{
	const ward_view *raw = &st->norm->views[WARD_VIEW_RAW];
	ward_finding f;

	memset(&f, 0, sizeof(f));
	f.rule_id = ward_strdup(id);
	f.category = ward_strdup("scan-incomplete");
	f.excerpt = ward_strdup(why);
	f.severity = f.base_severity = 4;
	f.channel = st->channel;
	f.view = v;
	f.start = 0;
	f.end = raw->len;
	f.action = WARD_ACTION_QUARANTINE;
	st->out->incomplete = 1;
	if (!f.rule_id || !f.category || !f.excerpt) {
		finding_dispose(&f);
		return ward_error_set(WARD_ENOMEM, "out of memory");
	}
	return push(st, &f);
}

static size_t map_off(const ward_view *view, size_t off, size_t raw_len)
{
	size_t r = view->kind == WARD_VIEW_RAW || view->map.n == 0 ? off : ward_offmap_lookup(&view->map, off);
	return r > raw_len ? raw_len : r;
}

static int in_quoted(const ward_scan_context *ctx, size_t s, size_t e)
{
	if (!ctx)
		return 0;
	for (size_t i = 0; i < ctx->nquoted; i++)
		if (ctx->quoted[i].start <= s && e <= ctx->quoted[i].end)
			return 1;
	return 0;
}

static int add_match(scan_state *st, const ward_rule *r, const ward_view *view, size_t vs, size_t ve)
{
	const ward_view *raw = &st->norm->views[WARD_VIEW_RAW];
	size_t s = map_off(view, vs, raw->len), e = map_off(view, ve, raw->len);
	ward_finding f;

	/* A replaced run maps to the start of what it replaced: make the end
	 * cover at least the character the match ends in. */
	if (e <= s && ve > vs) {
		e = map_off(view, ve - 1, raw->len);
		if (e < raw->len)
			e++;
		while (e < raw->len && ((unsigned char)raw->text[e] & 0xc0) == 0x80)
			e++;
		if (e < s)
			e = s;
	}
	for (size_t i = st->base; i < st->out->n; i++) {
		const ward_finding *x = &st->out->items[i];
		if (x->start == s && x->end == e && !strcmp(x->rule_id, r->id))
			return 0;
	}
	if (st->nregular >= WARD_MAX_FINDINGS) {
		char why[96];
		st->stop = 1;
		snprintf(why, sizeof(why), "more than %d findings in one text; the rest was not scanned",
		         WARD_MAX_FINDINGS);
		return add_special(st, "scan.too-many-findings", view->kind, why);
	}
	memset(&f, 0, sizeof(f));
	f.rule_id = ward_strdup(r->id);
	f.category = ward_strdup(r->category);
	f.excerpt = make_excerpt(raw->text, raw->len, s, e);
	f.base_severity = f.severity = r->severity;
	f.quoted = in_quoted(st->ctx, s, e);
	if (f.quoted && (r->context & WARD_CTX_NOT_IN_CODE))
		f.severity = f.severity > 2 ? f.severity - 2 : 1;
	f.channel = st->channel;
	f.view = view->kind;
	f.start = s;
	f.end = e;
	f.action = r->action;
	if (!f.rule_id || !f.category || !f.excerpt) {
		finding_dispose(&f);
		return ward_error_set(WARD_ENOMEM, "out of memory");
	}
	st->nregular++;
	return push(st, &f);
}

/* Every match of one pattern over one view. */
static int run_pattern(scan_state *st, const ward_pattern *p, const ward_view *view)
{
	const ward_rule *r = &st->rs->rules[p->rule];
	size_t pos = 0;
	int rc;

	while (pos <= view->len && !st->stop) {
		size_t s = 0, e = 0;
		int prc, m = match1(p, st->rs->no_jit, view->text, view->len, pos, &s, &e, &prc, 1);
		if (m < 0)
			return m;
		if (m == 0)
			break;
		if (m == WARD_LIMIT_HIT) {
			PCRE2_UCHAR msg[128];
			char why[256];
			pcre2_get_error_message(prc, msg, sizeof(msg));
			snprintf(why, sizeof(why), "rule '%s' on view %s: %s", r->id, ward_view_name(view->kind),
			         (const char *)msg);
			if (!st->incomplete_added && (rc = add_special(st, "scan.incomplete", view->kind, why)) < 0)
				return rc;
			st->incomplete_added = 1;
			st->out->incomplete = 1;
			break;
		}
		if (e > s && (rc = add_match(st, r, view, s, e)) < 0)
			return rc;
		if (e > s) {
			pos = e;
		} else {
			pos = e + 1;
			while (pos < view->len && ((unsigned char)view->text[pos] & 0xc0) == 0x80)
				pos++;
		}
	}
	return 0;
}

/*
 * Homoglyphs: the skeleton view spells "іgnоrе" (Cyrillic і, о, е) as
 * "ignore" and leaves ASCII as it is, so every rule written for the folded
 * view also runs over the skeleton view — with the folded view's database
 * for candidates — when the text has words that mix scripts. A rule
 * need not list `skeleton` to see through confusables. Matches that the
 * folded view already found (same rule, same raw span) are not repeated
 * (add_match).
 */

/* The candidate patterns of view v's rules for text (cand[i] = 1) through
 * the view's Vectorscan database, plus the patterns it cannot confirm.
 * Returns 1 when every pattern must run (no database, or its scan failed). */
static int prefilter(const ward_ruleset *rs, ward_view_kind v, const char *text, size_t len, uint8_t *cand)
{
	int all;

	if (!rs->hs[v])
		return 1;
	memset(cand, 0, rs->npats);
	all = ward_hsdb_scan(rs, v, text, len, cand) < 0;
	for (size_t k = 0; k < rs->nconfirm[v]; k++)
		cand[rs->confirm[v][k]] = 1;
	return all;
}
static int scan_skeleton_with_folded_rules(scan_state *st, uint8_t *cand)
{
	const ward_ruleset *rs = st->rs;
	const ward_view *sk = &st->norm->views[WARD_VIEW_SKELETON];
	const ward_view *fo = &st->norm->views[WARD_VIEW_FOLDED];
	unsigned chbit = 1u << (unsigned)st->channel;
	int all, rc;

	/* Only a text with words that mix scripts ("іgnore": Cyrillic і in a
	 * Latin word) can spell a Latin phrase with look-alikes; ordinary French,
	 * Russian or Chinese text, curly quotes and dashes differ from folded in
	 * their skeleton too, but give a folded rule nothing new to find. */
	if (st->norm->mixed_script_words == 0 || sk->len == 0 || !sk->text ||
	    (sk->len == fo->len && memcmp(sk->text, fo->text, sk->len) == 0))
		return 0;
	all = prefilter(rs, WARD_VIEW_FOLDED, sk->text, sk->len, cand);
	for (size_t i = 0; i < rs->npats && !st->stop; i++) {
		const ward_rule *r = &rs->rules[rs->pats[i].rule];
		unsigned both = (1u << WARD_VIEW_FOLDED) | (1u << WARD_VIEW_SKELETON);

		/* rules naming skeleton ran in scan_view already */
		if ((r->views & both) != (1u << WARD_VIEW_FOLDED) || !(r->channels & chbit) || (!all && !cand[i]))
			continue;
		if ((rc = run_pattern(st, &rs->pats[i], sk)) < 0)
			return rc;
	}
	return 0;
}

static int scan_view(scan_state *st, ward_view_kind v, uint8_t *cand)
{
	const ward_ruleset *rs = st->rs;
	const ward_view *view = &st->norm->views[v];
	unsigned chbit = 1u << (unsigned)st->channel;
	size_t bad = 0;
	int all, rc;

	if (view->len == 0 || !view->text)
		return 0;
	/* Validated here, in the function that passes PCRE2_NO_UTF_CHECK on. */
	if (!ward_utf8_valid(view->text, view->len, &bad))
		return ward_error_set(WARD_EINVAL, "view %s: invalid UTF-8 at byte %zu", ward_view_name(v), bad);
	all = prefilter(rs, v, view->text, view->len, cand);
	for (size_t i = 0; i < rs->npats && !st->stop; i++) {
		const ward_rule *r = &rs->rules[rs->pats[i].rule];
		if (!(r->views & (1u << v)) || !(r->channels & chbit) || (!all && !cand[i]))
			continue;
		if ((rc = run_pattern(st, &rs->pats[i], view)) < 0)
			return rc;
	}
	if (v == WARD_VIEW_SKELETON)
		return scan_skeleton_with_folded_rules(st, cand);
	return 0;
}

/*
 * Letter-spaced runs spaced uniformly ("i g n o r e a l l p r e v i o u s
 * instructions") rejoin to one word in the folded view ("ignoreallprevious
 * instructions"): nothing tells their word gaps from their letter gaps. The
 * squashed pass runs every folded rule again, around those runs only
 * (ward_normalized.squashed), with a variant of each pattern in which a
 * space between words is optional and \b is dropped ("\bignore (?:all )?
 * previous" -> "ignore ?(?:all ?)?previous", "\s+" -> "\s*"). A match counts when
 * it overlaps a run and the same rule found nothing overlapping it already.
 * No Vectorscan database: the windows are short, and rare.
 */
#define SQ_HEAD   48           /* window bytes before a run: words that precede it */
#define SQ_TAIL   200          /* and after it */
#define SQ_BUDGET (256 * 1024) /* window bytes per text; past it: scan.incomplete */

#define SQ_PUT(p, n)                                                                                                   \
	do {                                                                                                           \
		if (ward_buf_append(out, (p), (n)) != 0)                                                               \
			return -1;                                                                                     \
	} while (0)

/* After a class or a class escape: its greedy quantifier made possessive
 * ("[^ ]+ ?" repeated would otherwise split one squashed word every way:
 * (a+)+ backtracking). */
static int possessive(const char *src, size_t len, size_t *pi, ward_buf *out)
{
	size_t i = *pi, q = i;

	if (i >= len)
		return 0;
	if (src[i] == '+' || src[i] == '*' || src[i] == '?')
		q = i + 1;
	else if (src[i] == '{') {
		const char *e = memchr(src + i, '}', len - i);
		if (!e)
			return 1;
		q = (size_t)(e - src) + 1;
	} else {
		return 0;
	}
	SQ_PUT(src + i, q - i);
	if (q >= len || (src[q] != '+' && src[q] != '?'))
		SQ_PUT("+", 1);
	*pi = q;
	return 0;
}

/* The squashed variant of a pattern's source into out: 0; 1 when there is
 * none (nothing to change, or a construct the rewrite does not handle); -1
 * when out failed. */
static int squash_source(const char *src, size_t len, ward_buf *out)
{
	int changed = 0, rc;
	size_t i = 0;

	while (i < len) {
		char c = src[i];

		if (c == '\\' && i + 1 < len) {
			char d = src[i + 1];

			if (d == 'Q' || d == 'E')
				return 1;
			if (d == 'b') {
				i += 2;
				changed = 1;
				continue;
			}
			if (d == 's' && i + 2 < len && src[i + 2] == '+') {
				SQ_PUT("\\s*", 3);
				i += 3;
				changed = 1;
				continue;
			}
			SQ_PUT(src + i, 2);
			i += 2;
			if (d == 'p' || d == 'P') { /* \pL, \p{Latin} */
				if (i < len && src[i] == '{') {
					const char *e = memchr(src + i, '}', len - i);
					if (!e)
						return 1;
					SQ_PUT(src + i, (size_t)(e - src) + 1 - i);
					i = (size_t)(e - src) + 1;
				} else if (i < len) {
					SQ_PUT(src + i, 1);
					i++;
				}
			}
			if (strchr("wWsSdDpPhHvVN", d) && (rc = possessive(src, len, &i, out)) != 0)
				return rc;
			continue;
		}
		if (c == '[') { /* a class, copied as it is */
			size_t j = i + 1;

			if (j < len && src[j] == '^')
				j++;
			if (j < len && src[j] == ']')
				j++;
			while (j < len && src[j] != ']') {
				if (src[j] == '\\')
					j++;
				else if (src[j] == '[' && j + 1 < len && src[j + 1] == ':') {
					const char *e = memchr(src + j + 2, ']', len - j - 2);
					if (!e)
						return 1;
					j = (size_t)(e - src);
				}
				j++;
			}
			if (j >= len)
				return 1;
			SQ_PUT(src + i, j + 1 - i);
			i = j + 1;
			if ((rc = possessive(src, len, &i, out)) != 0)
				return rc;
			continue;
		}
		if (c == '(' && i + 3 < len && src[i + 1] == '?' && src[i + 2] == '<' &&
		    (src[i + 3] == '!' || src[i + 3] == '=')) {
			/* a lookbehind is copied as it is: it must keep a fixed length */
			size_t j = i + 4;
			int depth = 1;

			while (j < len && depth > 0) {
				if (src[j] == '\\')
					j++;
				else if (src[j] == '[')
					return 1; /* rare: not worth a second class walker */
				else if (src[j] == '(')
					depth++;
				else if (src[j] == ')')
					depth--;
				j++;
			}
			if (depth > 0)
				return 1;
			SQ_PUT(src + i, j - i);
			i = j;
			continue;
		}
		if (c == '(' && i + 2 < len && src[i + 1] == '?') {
			/* (?x) would make the rewrite's spaces meaningless */
			size_t j = i + 2;
			while (j < len && ((src[j] >= 'a' && src[j] <= 'z') || (src[j] >= 'A' && src[j] <= 'Z') ||
			                   src[j] == '-')) {
				if (src[j] == 'x')
					return 1;
				j++;
			}
		}
		if (c == '#')
			return 1;
		if (c == ' ') {
			/* " " -> " ?"; " ?" and " *" stay; " +" and " {m,n}" -> " *"
			 * (an optional group made optional again would double the
			 * ways to match nothing, and the backtracking with them) */
			changed = 1;
			i++;
			if (i < len && (src[i] == '?' || src[i] == '*')) {
				SQ_PUT(" ", 1);
				continue;
			}
			if (i < len && src[i] == '+') {
				SQ_PUT(" *", 2);
				i++;
				continue;
			}
			if (i < len && src[i] == '{') {
				const char *e = memchr(src + i, '}', len - i);
				if (!e)
					return 1;
				SQ_PUT(" *", 2);
				i = (size_t)(e - src) + 1;
				continue;
			}
			SQ_PUT(" ?", 2);
			continue;
		}
		SQ_PUT(&c, 1);
		i++;
	}
	return changed ? 0 : 1;
}
#undef SQ_PUT

/* Compiles the squashed variants of rs's folded patterns into t, once per set. */
static int sq_prepare(tls_state *t, const ward_ruleset *rs)
{
	if (t->sq_gen == rs->generation)
		return 0;
	sq_free(t);
	if (!(t->sq = calloc(rs->npats ? rs->npats : 1, sizeof(*t->sq))))
		return ward_error_set(WARD_ENOMEM, "out of memory (squashed patterns)");
	t->nsq = rs->npats;
	for (size_t i = 0; i < rs->npats; i++) {
		const ward_pattern *p = &rs->pats[i];
		const ward_rule *r = &rs->rules[p->rule];
		ward_buf b;
		int err = 0;
		PCRE2_SIZE erroff = 0;

		t->sq[i] = *p;
		t->sq[i].code = NULL;
		t->sq[i].jit = 0;
		if (!(r->views & (1u << WARD_VIEW_FOLDED)))
			continue;
		ward_buf_init(&b, (size_t)WARD_MAX_PATTERN_LEN * 8);
		if (squash_source(p->src, p->len, &b) == 0 && b.err == 0 && b.len > 0) {
			t->sq[i].code = pcre2_compile((PCRE2_SPTR)b.ptr, b.len, p->options, &err, &erroff, NULL);
			if (t->sq[i].code)
				t->sq[i].jit = pcre2_jit_compile(t->sq[i].code, PCRE2_JIT_COMPLETE) == 0;
		}
		/* out of memory is an error; a variant that does not compile is
		 * left out (the pattern still runs on the folded view) */
		if (b.err == WARD_ENOMEM || (!t->sq[i].code && err == PCRE2_ERROR_HEAP_FAILED)) {
			ward_buf_dispose(&b);
			sq_free(t);
			return ward_error_set(WARD_ENOMEM, "out of memory (squashed patterns)");
		}
		ward_buf_dispose(&b);
	}
	t->sq_gen = rs->generation;
	return 0;
}

/* 1 when rule r already has a finding overlapping raw [s, e). */
static int rule_found_near(const scan_state *st, const ward_rule *r, size_t s, size_t e)
{
	for (size_t i = st->base; i < st->out->n; i++) {
		const ward_finding *x = &st->out->items[i];
		if (x->start < e && s < x->end && !strcmp(x->rule_id, r->id))
			return 1;
	}
	return 0;
}

static int scan_squashed(scan_state *st)
{
	const ward_ruleset *rs = st->rs;
	const ward_normalized *nz = st->norm;
	const ward_view *fo = &nz->views[WARD_VIEW_FOLDED];
	const ward_view *raw = &nz->views[WARD_VIEW_RAW];
	unsigned chbit = 1u << (unsigned)st->channel;
	size_t budget = SQ_BUDGET, k = 0;
	tls_state *t;
	int rc;

	if (nz->nsquashed == 0 || fo->len == 0 || !fo->text)
		return 0;
	if (!ward_utf8_valid(fo->text, fo->len, NULL))
		return ward_error_set(WARD_EINVAL, "view folded: invalid UTF-8");
	if (!(t = tls_get()))
		return ward_error_set(WARD_ENOMEM, "out of memory (PCRE2 match state)");
	if ((rc = sq_prepare(t, rs)) < 0)
		return rc;
	while (k < nz->nsquashed && !st->stop) {
		size_t k0 = k, ws, we;

		/* one window: runs whose surroundings overlap, merged */
		ws = nz->squashed[k].start > SQ_HEAD ? nz->squashed[k].start - SQ_HEAD : 0;
		we = nz->squashed[k].end + SQ_TAIL;
		while (++k < nz->nsquashed && nz->squashed[k].start < we + SQ_HEAD)
			we = nz->squashed[k].end + SQ_TAIL;
		if (we > fo->len)
			we = fo->len;
		while (ws > 0 && ((unsigned char)fo->text[ws] & 0xc0) == 0x80)
			ws--;
		while (we < fo->len && ((unsigned char)fo->text[we] & 0xc0) == 0x80)
			we++;
		if (we - ws > budget) {
			if (!st->incomplete_added &&
			    (rc = add_special(st, "scan.incomplete", WARD_VIEW_FOLDED,
			                      "too many letter-spaced runs: the squashed pass stopped")) < 0)
				return rc;
			st->incomplete_added = 1;
			return 0;
		}
		budget -= we - ws;
		for (size_t i = 0; i < t->nsq && i < rs->npats && !st->stop; i++) {
			const ward_pattern *p = &t->sq[i];
			const ward_rule *r = &rs->rules[p->rule];
			size_t pos = ws;

			if (!p->code || !(r->channels & chbit))
				continue;
			while (pos < we && !st->stop) {
				size_t s = 0, e = 0;
				int prc, m = match1(p, rs->no_jit, fo->text, we, pos, &s, &e, &prc, 1), hit = 0;

				if (m < 0)
					return m;
				if (m == 0)
					break;
				if (m == WARD_LIMIT_HIT) {
					PCRE2_UCHAR msg[128];
					char why[256];
					pcre2_get_error_message(prc, msg, sizeof(msg));
					snprintf(why, sizeof(why), "rule '%s' on view folded (squashed): %s", r->id,
					         (const char *)msg);
					if (!st->incomplete_added &&
					    (rc = add_special(st, "scan.incomplete", WARD_VIEW_FOLDED, why)) < 0)
						return rc;
					st->incomplete_added = 1;
					break;
				}
				for (size_t j = k0; j < k && !hit; j++)
					hit = s < nz->squashed[j].end && nz->squashed[j].start < e;
				if (hit && e > s) {
					size_t rs0 = map_off(fo, s, raw->len), re0 = map_off(fo, e, raw->len);
					if (!rule_found_near(st, r, rs0, re0 > rs0 ? re0 : rs0 + 1) &&
					    (rc = add_match(st, r, fo, s, e)) < 0)
						return rc;
				}
				pos = e > s ? e : e + 1;
				while (pos < we && ((unsigned char)fo->text[pos] & 0xc0) == 0x80)
					pos++;
			}
		}
	}
	return 0;
}

static int cmp_findings(const void *pa, const void *pb)
{
	const ward_finding *a = pa, *b = pb;
	int c;

	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	if (a->end != b->end)
		return a->end < b->end ? -1 : 1;
	if ((c = strcmp(a->rule_id, b->rule_id)) != 0)
		return c;
	if (a->view != b->view)
		return a->view < b->view ? -1 : 1;
	return 0;
}

int ward_scan_normalized_ex(const ward_ruleset *rs, ward_channel channel, const ward_scan_context *ctx,
                            const ward_normalized *norm, ward_findings *out)
{
	scan_state st;
	uint8_t *cand = NULL;
	int rc = 0;

	if ((unsigned)channel >= WARD_CH_COUNT)
		return ward_error_set(WARD_EINVAL, "scan: bad channel %d", (int)channel);
	if (norm->views[WARD_VIEW_RAW].len > WARD_MAX_SCAN_BYTES)
		return ward_error_set(WARD_ETOOBIG, "scan: text of %zu bytes is over the %d-byte cap",
		                      norm->views[WARD_VIEW_RAW].len, WARD_MAX_SCAN_BYTES);
	memset(&st, 0, sizeof(st));
	st.rs = rs;
	st.channel = channel;
	st.ctx = ctx;
	st.norm = norm;
	st.out = out;
	st.base = out->n;
	if (rs->prefilter && !(cand = ward_malloc(rs->npats + 1)))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	for (int v = 0; v < WARD_VIEW_COUNT && !st.stop; v++)
		if ((rc = scan_view(&st, (ward_view_kind)v, cand)) < 0)
			break;
	if (rc == 0 && !st.stop)
		rc = scan_squashed(&st);
	ward_free(cand);
	if (out->n > st.base)
		qsort(out->items + st.base, out->n - st.base, sizeof(*out->items), cmp_findings);
	return rc;
}

int ward_scan_normalized(const ward_ruleset *rs, ward_channel channel, const ward_normalized *norm, ward_findings *out)
{
	return ward_scan_normalized_ex(rs, channel, NULL, norm, out);
}

int ward_scan_text_ex(const ward_ruleset *rs, ward_channel channel, const ward_scan_context *ctx, const char *text,
                      size_t len, ward_findings *out)
{
	ward_normalized *norm = NULL;
	int rc;

	if ((rc = ward_normalize(&norm, text, len)) < 0)
		return rc;
	rc = ward_scan_normalized_ex(rs, channel, ctx, norm, out);
	ward_normalized_free(norm);
	return rc;
}

int ward_scan_text(const ward_ruleset *rs, ward_channel channel, const char *text, size_t len, ward_findings *out)
{
	return ward_scan_text_ex(rs, channel, NULL, text, len, out);
}
