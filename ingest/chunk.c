/*
 * Structure-aware chunking of extracted text.
 *
 * Rules, in the order they apply:
 * - Blocks are walked in order. A TITLE block (level 0) or a HEADING block
 *   (level L) updates the heading stack: a heading pops every entry of level
 *   >= L, a title replaces the whole stack. x->title, when not empty, is the
 *   level-0 entry until a TITLE block replaces it. The path is the stack
 *   joined with " > ", each heading whitespace-collapsed and cut to
 *   WARD_CHUNK_HEADING_MAX bytes.
 * - A heading closes the chunk being built (when it holds any body) and opens
 *   the next one: the heading text is the chunk's first line, so every chunk
 *   says what it is about even without its heading_path. Consecutive headings
 *   stay together ("Part 2\n\nSetup\n\nbody..."), and a heading is never left
 *   alone at the end of a chunk.
 * - Body blocks (paragraphs, list items, table rows, code, quotes) accumulate
 *   until the next one would take the chunk past `target`; the first body
 *   block after a heading always joins it (up to `max`).
 * - A block never splits unless it alone exceeds `max`. Then it is cut at the
 *   last sentence end (". ", "! ", "? ", "。", "！", "？") before `max` that
 *   leaves a piece of at least max/4, else at the last whitespace, else at a
 *   UTF-8 boundary. Code is cut at the last newline first.
 * - Ranges are byte offsets into x->text, trimmed of ASCII whitespace; the
 *   "\n\n" between two chunks belongs to neither. Text outside every block
 *   (there should be none) is chunked as paragraphs split at "\n\n", so no
 *   visible text is silently dropped.
 *
 * Deterministic: no state outside the call.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "ragward/chunk.h"
#include "ragward/error.h"
#include "core/limits.h"
#include "core/banned.h"

#define STACK_MAX 8 /* the title and heading levels 1..6 */

typedef struct {
	int level;
	const char *s;
	size_t n;
} heading;

typedef struct {
	const char *t;
	size_t len;
	size_t target, max;

	int open;     /* a chunk [cs, ce) is being built */
	int has_body; /* it holds more than headings */
	size_t cs, ce;

	heading stack[STACK_MAX];
	int depth;

	ward_buf out; /* ward_chunk records; its cap is WARD_MAX_CHUNKS of them */
	size_t nout;
} chunker;

static int is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int is_cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

/* Appends a heading to the path: whitespace runs become one space, and at
 * most WARD_CHUNK_HEADING_MAX bytes are kept, cut at a code point. */
static size_t path_put(char *dst, size_t at, const char *s, size_t n)
{
	size_t i, start = at;
	int space = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (is_ws(c)) {
			space = at > start;
			continue;
		}
		if (at - start + (space ? 1 : 0) + 1 > WARD_CHUNK_HEADING_MAX)
			break;
		if (space) {
			dst[at++] = ' ';
			space = 0;
		}
		dst[at++] = (char)c;
	}
	/* Do not leave half a code point when the cap cut the heading. */
	if (i < n && at > start) {
		size_t k = at;

		while (k > start && is_cont((unsigned char)dst[k - 1]))
			k--;
		if (k > start) {
			unsigned char lead = (unsigned char)dst[k - 1];
			size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;

			if (at - (k - 1) < need)
				at = k - 1;
		}
	}
	return at;
}

static char *path_string(const chunker *c)
{
	char buf[STACK_MAX * (WARD_CHUNK_HEADING_MAX + 3) + 1];
	size_t at = 0;
	int i;

	for (i = 0; i < c->depth; i++) {
		size_t before = at;

		if (at > 0) {
			memcpy(buf + at, " > ", 3);
			at += 3;
		}
		at = path_put(buf, at, c->stack[i].s, c->stack[i].n);
		if (at == before + (before > 0 ? 3 : 0))
			at = before; /* an empty heading adds nothing */
	}
	buf[at] = '\0';
	return ward_strdup(buf);
}

static int emit(chunker *c, size_t start, size_t end)
{
	ward_chunk rec;

	rec.ordinal = c->nout;
	rec.start = start;
	rec.end = end;
	if ((rec.heading_path = path_string(c)) == NULL)
		return ward_error_set(WARD_ENOMEM, "chunk: out of memory");
	if (ward_buf_append(&c->out, &rec, sizeof(rec)) < 0) {
		ward_free(rec.heading_path);
		if (c->out.err == WARD_ETOOBIG)
			return ward_error_set(WARD_ETOOBIG, "chunk: the document needs more than %d chunks",
					      WARD_MAX_CHUNKS);
		return ward_error_set(WARD_ENOMEM, "chunk: out of memory");
	}
	c->nout++;
	return 0;
}

static int close_open(chunker *c)
{
	if (!c->open)
		return 0;
	c->open = 0;
	return emit(c, c->cs, c->ce);
}

/* 1 when a sentence ends just before offset p (the cut goes at p). */
static int sentence_end_at(const chunker *c, size_t p)
{
	const unsigned char *t = (const unsigned char *)c->t;

	if (p >= 1 && p < c->len && (t[p - 1] == '.' || t[p - 1] == '!' || t[p - 1] == '?') && is_ws(t[p]))
		return 1;
	if (p >= 3 && ((t[p - 3] == 0xE3 && t[p - 2] == 0x80 && t[p - 1] == 0x82) ||     /* 。 */
		       (t[p - 3] == 0xEF && t[p - 2] == 0xBC && (t[p - 1] == 0x81 ||     /* ！ */
								  t[p - 1] == 0x9F)))) /* ？ */
		return 1;
	return 0;
}

/*
 * Where to cut a piece starting at ps that may not pass `limit`, nor end
 * before `lo`. Tries the preferred cut points with a floor that keeps the
 * piece at least max/4 long, then without it, then falls back to the last
 * code point boundary.
 */
static size_t find_cut(const chunker *c, size_t ps, size_t lo, size_t limit, ward_block_kind kind)
{
	const unsigned char *t = (const unsigned char *)c->t;
	size_t floors[2], p;
	int pass;

	floors[0] = ps + c->max / 4 > lo ? ps + c->max / 4 : lo;
	floors[1] = lo;
	for (pass = 0; pass < 2; pass++) {
		size_t fl = floors[pass];

		if (kind == WARD_BLOCK_CODE)
			for (p = limit; p >= fl && p > ps; p--)
				if (t[p] == '\n')
					return p;
		if (kind != WARD_BLOCK_CODE)
			for (p = limit; p >= fl && p > ps; p--)
				if (sentence_end_at(c, p))
					return p;
		for (p = limit; p >= fl && p > ps; p--)
			if (is_ws(t[p]))
				return p;
	}
	p = limit;
	while (p > ps + 1 && is_cont(t[p]))
		p--;
	return p;
}

/* Emits pieces of [from, e) of at most max bytes; the first one keeps
 * everything before body_start (the headings) and at least one byte after.
 * The last piece stays open so the next small block may join it. */
static int split_range(chunker *c, size_t from, size_t body_start, size_t e, ward_block_kind kind)
{
	size_t ps = from, lo = body_start + 1;
	int rc;

	while (e - ps > c->max) {
		size_t cut = find_cut(c, ps, lo > ps + 1 ? lo : ps + 1, ps + c->max, kind);
		size_t end = cut;

		while (end > ps && is_ws((unsigned char)c->t[end - 1]))
			end--;
		if ((rc = emit(c, ps, end)) < 0)
			return rc;
		ps = cut;
		while (ps < e && is_ws((unsigned char)c->t[ps]))
			ps++;
		if (ps >= e) {
			c->open = 0;
			return 0;
		}
	}
	c->open = 1;
	c->has_body = 1;
	c->cs = ps;
	c->ce = e;
	return 0;
}

static int add_body(chunker *c, ward_block_kind kind, size_t s, size_t e)
{
	int rc;

	if (c->open && c->has_body) {
		if (e - c->cs <= c->target) {
			c->ce = e;
			return 0;
		}
		if ((rc = close_open(c)) < 0)
			return rc;
	} else if (c->open) {
		/* Only headings so far: they stay with this block. */
		if (e - c->cs <= c->max) {
			c->ce = e;
			c->has_body = 1;
			return 0;
		}
		if (s - c->cs < c->max / 2) {
			c->open = 0;
			return split_range(c, c->cs, s, e, kind);
		}
		if ((rc = close_open(c)) < 0)
			return rc;
	}
	if (e - s <= c->max) {
		c->open = 1;
		c->has_body = 1;
		c->cs = s;
		c->ce = e;
		return 0;
	}
	return split_range(c, s, s, e, kind);
}

static void push_heading(chunker *c, ward_block_kind kind, int level, size_t s, size_t e)
{
	if (kind == WARD_BLOCK_TITLE) {
		c->stack[0].level = 0;
		c->stack[0].s = c->t + s;
		c->stack[0].n = e - s;
		c->depth = 1;
		return;
	}
	if (level < 1)
		level = 1;
	if (level > 6)
		level = 6;
	while (c->depth > 0 && c->stack[c->depth - 1].level >= level && c->stack[c->depth - 1].level != 0)
		c->depth--;
	c->stack[c->depth].level = level;
	c->stack[c->depth].s = c->t + s;
	c->stack[c->depth].n = e - s;
	c->depth++;
}

static int add_block(chunker *c, ward_block_kind kind, int level, size_t s, size_t e)
{
	int rc;

	while (s < e && is_ws((unsigned char)c->t[s]))
		s++;
	while (e > s && is_ws((unsigned char)c->t[e - 1]))
		e--;
	if (s >= e)
		return 0;
	if (kind != WARD_BLOCK_TITLE && kind != WARD_BLOCK_HEADING)
		return add_body(c, kind, s, e);

	/* Close first: the closed chunk keeps the path it was built under. */
	if (c->open && (c->has_body || e - c->cs > c->max) && (rc = close_open(c)) < 0)
		return rc;
	push_heading(c, kind, level, s, e);
	if (c->open) {
		c->ce = e;
		return 0;
	}
	if (e - s > c->max)
		return split_range(c, s, s, e, WARD_BLOCK_PARAGRAPH); /* absurd heading: cut like prose */
	c->open = 1;
	c->has_body = 0;
	c->cs = s;
	c->ce = e;
	return 0;
}

/* Text between blocks: paragraphs separated by blank lines. */
static int add_gap(chunker *c, size_t s, size_t e)
{
	int rc;

	while (s < e) {
		size_t p = s;

		while (p < e && !(p + 1 < e && c->t[p] == '\n' && c->t[p + 1] == '\n'))
			p++;
		if ((rc = add_block(c, WARD_BLOCK_PARAGRAPH, 0, s, p)) < 0)
			return rc;
		s = p + 2 <= e ? p + 2 : e;
	}
	return 0;
}

static void records_free(ward_buf *b, size_t n)
{
	ward_chunk *recs = (ward_chunk *)(void *)b->ptr;
	size_t i;

	for (i = 0; i < n; i++)
		ward_free(recs[i].heading_path);
	ward_buf_dispose(b);
}

int ward_chunk_text(ward_chunk **out, size_t *n, const ward_extracted *x, const ward_chunk_opts *opts)
{
	chunker c;
	size_t i, pos = 0, bytes;
	char *raw = NULL;
	int rc = 0;

	if (out == NULL || n == NULL)
		return ward_error_set(WARD_EINVAL, "chunk: no output");
	*out = NULL;
	*n = 0;
	if (x == NULL || (x->text == NULL && x->len > 0) || (x->blocks == NULL && x->nblocks > 0))
		return ward_error_set(WARD_EINVAL, "chunk: no extracted text");
	memset(&c, 0, sizeof(c));
	c.t = x->text;
	c.len = x->len;
	c.target = opts != NULL && opts->target ? opts->target : WARD_CHUNK_TARGET;
	c.max = opts != NULL && opts->max ? opts->max : WARD_CHUNK_MAX;
	if (c.max < WARD_CHUNK_MIN_MAX || c.target > c.max)
		return ward_error_set(WARD_EINVAL, "chunk: target %zu and max %zu: need %d <= max and target <= max",
				      c.target, c.max, WARD_CHUNK_MIN_MAX);
	ward_buf_init(&c.out, (size_t)WARD_MAX_CHUNKS * sizeof(ward_chunk));
	if (x->title != NULL && x->title[0] != '\0') {
		c.stack[0].level = 0;
		c.stack[0].s = x->title;
		c.stack[0].n = strlen(x->title);
		c.depth = 1;
	}

	for (i = 0; i < x->nblocks; i++) {
		const ward_block *b = &x->blocks[i];
		size_t s = b->start;

		if (b->start > b->end || b->end > c.len ||
		    (b->start < c.len && is_cont((unsigned char)c.t[b->start])) ||
		    (b->end < c.len && is_cont((unsigned char)c.t[b->end]))) {
			rc = ward_error_set(WARD_EINVAL, "chunk: block %zu [%zu, %zu) is outside the text or splits a character",
					    i, b->start, b->end);
			goto fail;
		}
		/* Nested or overlapping blocks: only the part not yet chunked. */
		if (b->end <= pos)
			continue;
		if (s < pos)
			s = pos;
		if (s > pos && (rc = add_gap(&c, pos, s)) < 0)
			goto fail;
		if ((rc = add_block(&c, b->kind, b->level, s, b->end)) < 0)
			goto fail;
		pos = b->end;
	}
	if (pos < c.len && (rc = add_gap(&c, pos, c.len)) < 0)
		goto fail;
	if ((rc = close_open(&c)) < 0)
		goto fail;

	if (c.nout == 0) {
		ward_buf_dispose(&c.out);
		return 0;
	}
	if ((rc = ward_buf_detach(&c.out, &raw, &bytes)) < 0) {
		rc = ward_error_set(WARD_ENOMEM, "chunk: out of memory");
		goto fail;
	}
	*out = (ward_chunk *)(void *)raw;
	*n = bytes / sizeof(ward_chunk);
	return 0;
fail:
	records_free(&c.out, c.nout);
	return rc;
}

void ward_chunks_free(ward_chunk *c, size_t n)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < n; i++)
		ward_free(c[i].heading_path);
	ward_free(c);
}
