/*
 * Plain text and Markdown extraction.
 *
 * Plain text: paragraphs split on blank lines, whitespace collapsed.
 *
 * Markdown: a small line-based block parser (Debian 12 ships libcmark, but
 * it gives no source offsets for inline text and is not among ragward's
 * dependencies; what we need is headings for the heading path, code blocks,
 * and every link and image URL for the scanner). Supported: ATX and setext
 * headings, bullet and ordered list items (level from indentation), fenced
 * and indented code, blockquotes (their content is quote text, not nested
 * blocks), paragraphs with lazy continuation, inline links and images with
 * titles, autolinks, reference definitions and code spans. Emphasis markers
 * and inline HTML tags stay in the text as written.
 *
 * HTML comments are blanked out of a working copy before the block parse
 * (same length, newlines kept), so offsets into the copy are offsets into the
 * original and no second map is needed; each comment becomes a
 * WARD_CH_COMMENT segment.
 */
#include <string.h>

#include "core/limits.h"
#include "ingest/extract_internal.h"
#include "ragward/alloc.h"
#include "ragward/error.h"
#include "core/banned.h"

#define MD_INLINE_DEPTH 3 /* link text inside link text ... */

typedef struct {
	xb *b;
	const char *s; /* the working copy: offsets equal the original's */
	size_t n;
} md;

/* ---- plain text ---------------------------------------------------------------- */

static int line_blank(const char *s, size_t a, size_t e)
{
	for (; a < e; a++)
		if (!xb_is_space((unsigned char)s[a]))
			return 0;
	return 1;
}

int extract_text(ward_extracted **out, const char *s, size_t n)
{
	xb b;
	size_t i = 0;

	xb_init(&b, n);
	while (i < n && b.err == 0) {
		const char *nl = memchr(s + i, '\n', n - i);
		size_t e = nl != NULL ? (size_t)(nl - s) : n;

		if (line_blank(s, i, e))
			xb_block(&b, WARD_BLOCK_PARAGRAPH, 0);
		else
			xb_text(&b, s + i, (e < n ? e + 1 : e) - i, i, 1, 0);
		i = e + 1;
	}
	return xb_finish(&b, out, WARD_TYPE_TEXT);
}

/* ---- Markdown inline ------------------------------------------------------------- */

static int is_punct(char c)
{
	return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') || (c >= '{' && c <= '~');
}

/* Index of the ']' closing the '[' at i (nesting, escapes), or e. */
static size_t md_close_bracket(const char *s, size_t i, size_t e)
{
	int depth = 0;

	for (; i < e; i++) {
		if (s[i] == '\\' && i + 1 < e) {
			i++;
			continue;
		}
		if (s[i] == '[')
			depth++;
		else if (s[i] == ']' && --depth == 0)
			return i;
	}
	return e;
}

/* Parses "(dest "title")" at i. Returns the index after ')' or 0. */
static size_t md_dest(const char *s, size_t i, size_t e, size_t *ds, size_t *de, size_t *ts, size_t *te)
{
	int depth = 0;

	if (i >= e || s[i] != '(')
		return 0;
	i++;
	while (i < e && xb_is_space((unsigned char)s[i]))
		i++;
	*ts = *te = 0;
	if (i < e && s[i] == '<') {
		*ds = ++i;
		while (i < e && s[i] != '>' && s[i] != '\n')
			i++;
		if (i >= e || s[i] != '>')
			return 0;
		*de = i++;
	} else {
		*ds = i;
		while (i < e && !xb_is_space((unsigned char)s[i])) {
			if (s[i] == '\\' && i + 1 < e)
				i++;
			else if (s[i] == '(')
				depth++;
			else if (s[i] == ')') {
				if (depth == 0)
					break;
				depth--;
			}
			i++;
		}
		*de = i;
	}
	while (i < e && xb_is_space((unsigned char)s[i]))
		i++;
	if (i < e && (s[i] == '"' || s[i] == '\'' || s[i] == '(')) {
		char close = s[i] == '(' ? ')' : s[i];

		*ts = ++i;
		while (i < e && s[i] != close) {
			if (s[i] == '\\' && i + 1 < e)
				i++;
			i++;
		}
		if (i >= e)
			return 0;
		*te = i++;
		while (i < e && xb_is_space((unsigned char)s[i]))
			i++;
	}
	if (i >= e || s[i] != ')')
		return 0;
	return i + 1;
}

static void md_inline(md *m, size_t a, size_t e, int depth);

static void md_emit(md *m, size_t a, size_t e)
{
	if (e > a)
		xb_text(m->b, m->s + a, e - a, a, 1, 0);
}

/* A link or image starting at i ('[' or "!["). Returns the index after it,
 * or 0 when it is not one (the bracket is then literal text). */
static size_t md_link(md *m, size_t i, size_t e, int depth)
{
	const char *s = m->s;
	int image = s[i] == '!';
	size_t lb = image ? i + 1 : i;
	size_t rb = md_close_bracket(s, lb, e);
	size_t ds, de, ts, te, next;

	if (rb >= e)
		return 0;
	next = md_dest(s, rb + 1, e, &ds, &de, &ts, &te);
	if (next == 0) {
		/* [text][ref]: the text is shown, the reference definition
		 * carries the URL (see md_refdef). A lone [text] stays literal:
		 * definitions are not matched to their uses. */
		size_t r2;

		if (image || rb + 1 >= e || s[rb + 1] != '[')
			return 0;
		r2 = md_close_bracket(s, rb + 1, e);
		if (r2 >= e)
			return 0;
		if (depth < MD_INLINE_DEPTH)
			md_inline(m, lb + 1, rb, depth + 1);
		return r2 + 1;
	}
	xb_link(m->b, s + ds, de - ds, s + lb + 1, rb - lb - 1, image, i);
	if (image)
		xb_segment(m->b, WARD_CH_ATTRIBUTE, s + lb + 1, rb - lb - 1, lb + 1, rb, "alt");
	else if (depth < MD_INLINE_DEPTH)
		md_inline(m, lb + 1, rb, depth + 1);
	if (te > ts)
		xb_segment(m->b, WARD_CH_ATTRIBUTE, s + ts, te - ts, ts, te, "title");
	return next;
}

/* Inline content of [a, e): text runs go out verbatim with exact offsets;
 * links keep their text, images contribute nothing visible. */
static void md_inline(md *m, size_t a, size_t e, int depth)
{
	const char *s = m->s;
	size_t run = a;
	size_t i = a;

	while (i < e && m->b->err == 0) {
		char c = s[i];

		if (c == '\\' && i + 1 < e && is_punct(s[i + 1])) {
			md_emit(m, run, i);
			run = i + 1;
			i += 2;
		} else if (c == '`') {
			size_t k = i;
			size_t close;

			while (k < e && s[k] == '`')
				k++;
			for (close = k; close < e; close++) {
				size_t q = close;

				while (q < e && s[q] == '`')
					q++;
				if (q - close == k - i)
					break;
				close = q > close ? q - 1 : close;
			}
			if (close >= e) {
				i = k;
				continue;
			}
			md_emit(m, run, i);
			md_emit(m, k, close);
			i = close + (k - i);
			run = i;
		} else if (c == '[' || (c == '!' && i + 1 < e && s[i + 1] == '[')) {
			size_t next;

			md_emit(m, run, i);
			next = md_link(m, i, e, depth);
			if (next == 0) {
				run = i;
				i += c == '!' ? 2 : 1;
				continue;
			}
			i = run = next;
		} else if (c == '<') {
			size_t k = i + 1;
			int colon = 0;

			while (k < e && s[k] != '>' && !xb_is_space((unsigned char)s[k]) && s[k] != '<') {
				colon |= s[k] == ':' || s[k] == '@';
				k++;
			}
			if (k < e && s[k] == '>' && colon && k > i + 1) {
				md_emit(m, run, i);
				xb_link(m->b, s + i + 1, k - i - 1, s + i + 1, k - i - 1, 0, i);
				md_emit(m, i + 1, k);
				i = run = k + 1;
			} else {
				i++;
			}
		} else {
			i++;
		}
	}
	md_emit(m, run, e);
}

/* ---- Markdown blocks ---------------------------------------------------------------- */

/* "[label]: url "title"" on its own line: a link target the text refers to.
 * Anything else on the line makes it an ordinary paragraph, as in CommonMark
 * (a renderer shows it, so it must stay in the visible text: a line that
 * only looked like a definition must not vanish from every channel). A
 * footnote definition "[^1]: text" is shown too. */
static int md_refdef(md *m, size_t p, size_t e)
{
	const char *s = m->s;
	size_t rb;
	size_t ds, de, ts = 0, te = 0;
	size_t i;
	int title = 0;

	if (p >= e || s[p] != '[' || (p + 1 < e && s[p + 1] == '^'))
		return 0;
	rb = md_close_bracket(s, p, e);
	if (rb >= e || rb + 1 >= e || s[rb + 1] != ':' || rb == p + 1)
		return 0;
	i = rb + 2;
	while (i < e && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i < e && s[i] == '<')
		i++;
	ds = i;
	while (i < e && !xb_is_space((unsigned char)s[i]) && s[i] != '>')
		i++;
	de = i;
	if (de == ds)
		return 0;
	if (i < e && s[i] == '>')
		i++;
	while (i < e && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i < e && (s[i] == '"' || s[i] == '\'' || s[i] == '(')) {
		char close = s[i] == '(' ? ')' : s[i];

		ts = ++i;
		while (i < e && s[i] != close)
			i++;
		if (i >= e)
			return 0; /* unclosed title: a paragraph */
		te = i++;
		title = 1;
	}
	while (i < e && xb_is_space((unsigned char)s[i]))
		i++;
	if (i < e)
		return 0; /* more text after the definition: a paragraph */
	xb_link(m->b, s + ds, de - ds, s + p + 1, rb - p - 1, 0, p);
	if (title)
		xb_segment(m->b, WARD_CH_ATTRIBUTE, s + ts, te - ts, ts, te, "title");
	return 1;
}

/* Fence opener at p: returns its length (>= 3) and char, else 0. */
static size_t md_fence(const char *s, size_t p, size_t e, char *ch)
{
	size_t k = p;

	if (p >= e || (s[p] != '`' && s[p] != '~'))
		return 0;
	while (k < e && s[k] == s[p])
		k++;
	if (k - p < 3)
		return 0;
	if (s[p] == '`' && memchr(s + k, '`', e - k) != NULL)
		return 0; /* an info string may not hold backticks */
	*ch = s[p];
	return k - p;
}

/* Blanks HTML comments out of the working copy (outside fenced code) and
 * records them as segments. */
static void md_comments(md *m, char *w)
{
	size_t i = 0;
	size_t fence = 0;
	char fch = 0;

	while (i < m->n && m->b->err == 0) {
		const char *nl = memchr(w + i, '\n', m->n - i);
		size_t e = nl != NULL ? (size_t)(nl - w) : m->n;
		size_t p = i;
		size_t k;
		char c;

		while (p < e && p - i < 4 && w[p] == ' ')
			p++;
		k = md_fence(w, p, e, &c);
		if (fence > 0) {
			if (k >= fence && c == fch && line_blank(w, p + k, e))
				fence = 0;
			i = e + 1;
			continue;
		}
		if (k > 0 && p - i < 4) {
			fence = k;
			fch = c;
			i = e + 1;
			continue;
		}
		{
			const char *open = extract_memmem(w + i, e - i, "<!--", 4);
			const char *close;
			size_t a;
			size_t z;
			size_t q;

			if (open == NULL) {
				i = e + 1;
				continue;
			}
			a = (size_t)(open - w);
			close = extract_memmem(w + a + 4, m->n - a - 4, "-->", 3);
			z = close != NULL ? (size_t)(close - w) + 3 : m->n;
			xb_segment_raw(m->b, WARD_CH_COMMENT, m->s + a + 4,
			               (close != NULL ? (size_t)(close - w) : m->n) - a - 4, a, z, "comment");
			for (q = a; q < z; q++)
				if (w[q] != '\n')
					w[q] = ' ';
			i = a; /* rescan the rest of this (now blanked) line */
		}
	}
}

enum { MD_NONE, MD_PARA, MD_LIST, MD_QUOTE, MD_FENCE, MD_INDENT };

int extract_markdown(ward_extracted **out, const char *bytes, size_t n)
{
	xb b;
	md m;
	char *w = NULL;
	int state = MD_NONE;
	size_t fence = 0;
	char fch = 0;
	size_t i = 0;
	int rc;

	xb_init(&b, n);
	w = ward_malloc(n + 1);
	if (w == NULL) {
		xb_dispose(&b);
		return ward_error_set(WARD_ENOMEM, "markdown: out of memory");
	}
	memcpy(w, bytes, n);
	w[n] = '\0';
	m.b = &b;
	m.s = w;
	m.n = n;
	md_comments(&m, w);

	while (i < n && b.err == 0) {
		const char *nl = memchr(w + i, '\n', n - i);
		size_t e = nl != NULL ? (size_t)(nl - w) : n;
		size_t next = e + 1;
		size_t p = i;
		size_t col = 0;
		size_t k;
		char c = 0;

		while (p < e && (w[p] == ' ' || w[p] == '\t')) {
			col += w[p] == '\t' ? 4 - col % 4 : 1;
			p++;
		}
		if (state == MD_FENCE) {
			k = md_fence(w, p, e, &c);
			if (k >= fence && c == fch && col < 4 && line_blank(w, p + k, e)) {
				xb_close(&b);
				state = MD_NONE;
			} else {
				xb_text(&b, w + i, (e < n ? e + 1 : e) - i, i, 1, 1);
			}
			i = next;
			continue;
		}
		if (p == e) { /* blank line */
			if (state == MD_INDENT)
				xb_text(&b, "\n", 1, i, 0, 1);
			else if (state != MD_NONE) {
				xb_close(&b);
				state = MD_NONE;
			}
			i = next;
			continue;
		}
		if (col >= 4 && (state == MD_NONE || state == MD_INDENT)) {
			size_t a = i;
			size_t cc = 0;

			while (a < e && cc < 4 && (w[a] == ' ' || w[a] == '\t')) {
				cc += w[a] == '\t' ? 4 - cc % 4 : 1;
				a++;
			}
			if (state != MD_INDENT)
				xb_block(&b, WARD_BLOCK_CODE, 0);
			state = MD_INDENT;
			xb_text(&b, w + a, (e < n ? e + 1 : e) - a, a, 1, 1);
			i = next;
			continue;
		}
		if (state == MD_INDENT) {
			xb_close(&b);
			state = MD_NONE;
		}
		if (col < 4 && (k = md_fence(w, p, e, &c)) > 0) {
			xb_block(&b, WARD_BLOCK_CODE, 0);
			state = MD_FENCE;
			fence = k;
			fch = c;
			i = next;
			continue;
		}
		if (col < 4 && w[p] == '#') {
			size_t h = p;

			while (h < e && w[h] == '#')
				h++;
			if (h - p <= 6 && (h == e || w[h] == ' ' || w[h] == '\t')) {
				size_t ce = e;

				while (ce > h && xb_is_space((unsigned char)w[ce - 1]))
					ce--;
				/* closing sequence: spaces then #s */
				{
					size_t q = ce;

					while (q > h && w[q - 1] == '#')
						q--;
					if (q == h || w[q - 1] == ' ' || w[q - 1] == '\t')
						ce = q;
				}
				xb_block(&b, WARD_BLOCK_HEADING, (int)(h - p));
				md_inline(&m, h, ce, 0);
				xb_block(&b, WARD_BLOCK_PARAGRAPH, 0);
				state = MD_NONE;
				i = next;
				continue;
			}
		}
		if (col < 4 && (w[p] == '=' || w[p] == '-')) {
			size_t q = p;

			while (q < e && w[q] == w[p])
				q++;
			if (line_blank(w, q, e) && state == MD_PARA) {
				xb_retag(&b, WARD_BLOCK_HEADING, w[p] == '=' ? 1 : 2);
				xb_block(&b, WARD_BLOCK_PARAGRAPH, 0);
				state = MD_NONE;
				i = next;
				continue;
			}
		}
		if (col < 4 && (w[p] == '-' || w[p] == '*' || w[p] == '_')) {
			size_t q;
			size_t cnt = 0;
			int only = 1;

			for (q = p; q < e; q++) {
				if (w[q] == w[p])
					cnt++;
				else if (w[q] != ' ' && w[q] != '\t')
					only = 0;
			}
			if (only && cnt >= 3) {
				xb_block(&b, WARD_BLOCK_PARAGRAPH, 0);
				state = MD_NONE;
				i = next;
				continue;
			}
		}
		if (col < 4 && w[p] == '>') {
			size_t a = p + 1;

			if (a < e && w[a] == ' ')
				a++;
			if (state != MD_QUOTE) {
				xb_block(&b, WARD_BLOCK_QUOTE, 0);
				state = MD_QUOTE;
			} else {
				xb_text(&b, " ", 1, p, 0, 0);
			}
			md_inline(&m, a, e, 0);
			i = next;
			continue;
		}
		{
			size_t q = p;
			int bullet = 0;

			if (w[p] == '-' || w[p] == '*' || w[p] == '+')
				bullet = p + 1 == e || w[p + 1] == ' ' || w[p + 1] == '\t';
			else {
				while (q < e && q - p < 9 && w[q] >= '0' && w[q] <= '9')
					q++;
				bullet = q > p && q < e && (w[q] == '.' || w[q] == ')') &&
				         (q + 1 == e || w[q + 1] == ' ' || w[q + 1] == '\t');
				if (bullet)
					p = q;
			}
			if (bullet) {
				size_t a = p + 1;
				int level = 1 + (int)(col / 2);

				while (a < e && (w[a] == ' ' || w[a] == '\t'))
					a++;
				xb_block(&b, WARD_BLOCK_LIST_ITEM, level > 9 ? 9 : level);
				state = MD_LIST;
				md_inline(&m, a, e, 0);
				i = next;
				continue;
			}
		}
		if (state == MD_NONE && col < 4 && md_refdef(&m, p, e)) {
			i = next;
			continue;
		}
		if (state == MD_NONE) {
			xb_block(&b, WARD_BLOCK_PARAGRAPH, 0);
			state = MD_PARA;
		} else {
			xb_text(&b, "\n", 1, i, 0, 0); /* a soft line break: one space */
		}
		md_inline(&m, p, e, 0);
		i = next;
	}
	rc = xb_finish(&b, out, WARD_TYPE_MARKDOWN);
	ward_free(w);
	return rc;
}
