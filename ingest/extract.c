/*
 * Extraction, the shared pieces: type and channel names, the strict UTF-8
 * gate, the builder the format extractors write into, the libxml2 set-up and
 * the dispatcher.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include <libxml/parser.h>

#include "core/limits.h"
#include "ingest/extract_internal.h"
#include "ragward/alloc.h"
#include "ragward/error.h"
#include "ragward/extract.h"
#include "core/banned.h"

static const char *const doctype_names[] = {
        [WARD_TYPE_UNKNOWN] = "unknown",   [WARD_TYPE_HTML] = "html", [WARD_TYPE_XHTML] = "xhtml",
        [WARD_TYPE_XML] = "xml",           [WARD_TYPE_FEED] = "feed", [WARD_TYPE_TEXT] = "text",
        [WARD_TYPE_MARKDOWN] = "markdown",
};

static const char *const channel_names[] = {
        [WARD_CH_VISIBLE] = "visible", [WARD_CH_HIDDEN] = "hidden",   [WARD_CH_ATTRIBUTE] = "attribute",
        [WARD_CH_COMMENT] = "comment", [WARD_CH_DECODED] = "decoded", [WARD_CH_INVISIBLE] = "invisible",
};

const char *ward_doctype_name(ward_doctype t)
{
	if ((unsigned)t >= sizeof(doctype_names) / sizeof(doctype_names[0]))
		return "unknown";
	return doctype_names[t];
}

int ward_doctype_parse(ward_doctype *out, const char *s)
{
	size_t i;

	if (s != NULL)
		for (i = 1; i < sizeof(doctype_names) / sizeof(doctype_names[0]); i++)
			if (strcmp(s, doctype_names[i]) == 0) {
				*out = (ward_doctype)i;
				return 0;
			}
	return ward_error_set(WARD_EINVAL, "document type '%s': unknown", s != NULL ? s : "");
}

const char *ward_channel_name(ward_channel c)
{
	if ((unsigned)c >= WARD_CH_COUNT)
		return "unknown";
	return channel_names[c];
}

int ward_channel_parse(ward_channel *out, const char *s)
{
	int i;

	if (s != NULL)
		for (i = 0; i < WARD_CH_COUNT; i++)
			if (strcmp(s, channel_names[i]) == 0) {
				*out = (ward_channel)i;
				return 0;
			}
	return ward_error_set(WARD_EINVAL, "channel '%s': unknown", s != NULL ? s : "");
}

/* ---- UTF-8 ---------------------------------------------------------------- */

size_t extract_utf8_invalid_at(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t need;
		uint32_t cp;
		uint32_t min;
		size_t k;

		if (c >= 0x01 && c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			need = 1;
			cp = c & 0x1F;
			min = 0x80;
		} else if (c >= 0xE0 && c <= 0xEF) {
			need = 2;
			cp = c & 0x0F;
			min = 0x800;
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return i; /* NUL, continuation byte, C0/C1, F5..FF */
		}
		if (len - i <= need)
			return i;
		for (k = 1; k <= need; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return i;
		i += need + 1;
	}
	return len;
}

const char *extract_memmem(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
	const char *p = hay;
	const char *end;

	if (nlen == 0)
		return hay;
	if (hlen < nlen)
		return NULL;
	end = hay + (hlen - nlen) + 1;
	while (p < end) {
		p = memchr(p, needle[0], (size_t)(end - p));
		if (p == NULL)
			return NULL;
		if (memcmp(p, needle, nlen) == 0)
			return p;
		p++;
	}
	return NULL;
}

void ws_append(ward_buf *out, const char *s, size_t n, int *pending)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i;

		if (xb_is_space((unsigned char)s[i])) {
			while (i < n && xb_is_space((unsigned char)s[i]))
				i++;
			if (out->len > 0)
				*pending = 1;
			continue;
		}
		while (j < n && !xb_is_space((unsigned char)s[j]))
			j++;
		if (*pending) {
			xb_sticky(ward_buf_putc(out, ' '));
			*pending = 0;
		}
		xb_sticky(ward_buf_append(out, s + i, j - i));
		i = j;
	}
}

/* ---- builder ---------------------------------------------------------------- */

void xb_init(xb *b, size_t src_len)
{
	memset(b, 0, sizeof(*b));
	b->src_len = src_len;
	/* The visible text can outgrow the input only by separators; twice the
	 * document cap bounds it with room to spare. */
	ward_buf_init(&b->text, 2 * (size_t)WARD_MAX_DOC_BYTES);
	ward_offmap_init(&b->map, src_len);
	b->kind = WARD_BLOCK_PARAGRAPH;
}

static void segment_dispose(ward_segment *s)
{
	ward_free(s->text);
	ward_free(s->why);
}

static void link_dispose(ward_link *l)
{
	ward_free(l->url);
	ward_free(l->text);
}

void xb_dispose(xb *b)
{
	size_t i;

	ward_buf_dispose(&b->text);
	ward_offmap_dispose(&b->map);
	ward_free(b->blocks);
	for (i = 0; i < b->nsegs; i++)
		segment_dispose(&b->segs[i]);
	ward_free(b->segs);
	for (i = 0; i < b->nlinks; i++)
		link_dispose(&b->links[i]);
	ward_free(b->links);
	ward_free(b->title);
	memset(b, 0, sizeof(*b));
}

int xb_fail(xb *b, int code)
{
	if (b->err == 0)
		b->err = code;
	return b->err;
}

/* Grows one of the builder's arrays by one slot (doubling), under `max`. */
static int xb_reserve(xb *b, void **arr, size_t *cap, size_t n, size_t size, size_t max, const char *what)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	if (n >= max) {
		ward_error_set(WARD_ETOOBIG, "document: more than %zu %s", max, what);
		return xb_fail(b, WARD_ETOOBIG);
	}
	ncap = *cap == 0 ? 16 : *cap * 2;
	if (ncap > max)
		ncap = max;
	p = ward_realloc(*arr, ncap * size);
	if (p == NULL) {
		ward_error_set(WARD_ENOMEM, "document: out of memory");
		return xb_fail(b, WARD_ENOMEM);
	}
	*arr = p;
	*cap = ncap;
	return 0;
}

static void xb_anchor(xb *b, size_t src)
{
	if (src < b->last_src)
		src = b->last_src;
	if (src > b->src_len)
		src = b->src_len;
	b->last_src = src;
	if (ward_offmap_add(&b->map, b->text.len, src) != 0)
		xb_fail(b, WARD_ENOMEM);
}

void xb_close(xb *b)
{
	size_t end;

	if (!b->in_block)
		return;
	b->in_block = 0;
	b->pending_space = 0;
	b->pending_sep = NULL;
	end = b->text.len;
	/* Code blocks keep whitespace; their trailing newlines are noise. */
	while (end > b->block_start && xb_is_space((unsigned char)b->text.ptr[end - 1]))
		end--;
	if (end < b->text.len) {
		b->text.len = end;
		b->text.ptr[end] = '\0';
		while (b->map.n > 0 && b->map.a[b->map.n - 1].dst > end)
			b->map.n--;
	}
	if (end == b->block_start)
		return;
	if (b->err != 0 || b->text.err != 0)
		return;
	if (xb_reserve(b, (void **)&b->blocks, &b->capblocks, b->nblocks, sizeof(ward_block), SIZE_MAX / 64,
	               "blocks") != 0)
		return;
	b->blocks[b->nblocks].kind = b->kind;
	b->blocks[b->nblocks].level = b->level;
	b->blocks[b->nblocks].start = b->block_start;
	b->blocks[b->nblocks].end = end;
	b->nblocks++;
}

void xb_block(xb *b, ward_block_kind kind, int level)
{
	xb_close(b);
	b->kind = kind;
	b->level = level;
}

void xb_retag(xb *b, ward_block_kind kind, int level)
{
	b->kind = kind;
	b->level = level;
}

void xb_sep(xb *b, const char *sep)
{
	if (b->in_block && b->text.len > b->block_start)
		b->pending_sep = sep;
}

static void xb_open(xb *b, size_t src)
{
	if (b->in_block)
		return;
	if (b->text.len > 0) {
		xb_anchor(b, src);
		xb_sticky(ward_buf_append(&b->text, "\n\n", 2));
	}
	b->in_block = 1;
	b->block_start = b->text.len;
	b->pending_space = 0;
	b->pending_sep = NULL;
}

void xb_text(xb *b, const char *s, size_t n, size_t src, int exact, int keep_ws)
{
	size_t i = 0;

	if (b->err != 0)
		return;
	if (keep_ws) {
		/* Leading blank lines of a code block are dropped, the rest is
		 * copied verbatim. */
		if (!b->in_block) {
			size_t k = 0;

			while (k < n && xb_is_space((unsigned char)s[k]))
				k++;
			if (k == n)
				return;
			while (i < k && (s[i] == '\n' || s[i] == '\r'))
				i++;
			/* keep the indentation of the first line */
			{
				size_t nl = i;

				for (size_t t = i; t < k; t++)
					if (s[t] == '\n')
						nl = t + 1;
				i = nl;
			}
			xb_open(b, exact ? src + i : src);
		}
		xb_anchor(b, exact ? src + i : src);
		xb_sticky(ward_buf_append(&b->text, s + i, n - i));
		goto check;
	}
	while (i < n) {
		size_t j = i;

		if (xb_is_space((unsigned char)s[i])) {
			size_t at = i;

			while (i < n && xb_is_space((unsigned char)s[i]))
				i++;
			if (b->in_block && b->text.len > b->block_start && !b->pending_space) {
				b->pending_space = 1;
				b->space_src = exact ? src + at : src;
			}
			continue;
		}
		while (j < n && !xb_is_space((unsigned char)s[j]))
			j++;
		xb_open(b, exact ? src + i : src);
		if (b->pending_sep != NULL) {
			xb_anchor(b, b->pending_space ? b->space_src : (exact ? src + i : src));
			xb_sticky(ward_buf_puts(&b->text, b->pending_sep));
			b->pending_sep = NULL;
			b->pending_space = 0;
		} else if (b->pending_space) {
			xb_anchor(b, b->space_src);
			xb_sticky(ward_buf_putc(&b->text, ' '));
			b->pending_space = 0;
		}
		xb_anchor(b, exact ? src + i : src);
		xb_sticky(ward_buf_append(&b->text, s + i, j - i));
		i = j;
	}
check:
	if (b->text.err != 0)
		xb_fail(b, b->text.err);
}

/* Shared tail of the two segment adders: takes ownership of text. */
static void xb_segment_take(xb *b, ward_channel ch, char *text, size_t len, size_t src_start, size_t src_end,
                            const char *why)
{
	ward_segment *s;
	char *w = NULL;

	if (xb_reserve(b, (void **)&b->segs, &b->capsegs, b->nsegs, sizeof(ward_segment), WARD_MAX_SEGMENTS,
	               "hidden, attribute or comment segments") != 0)
		goto fail;
	w = ward_strdup(why != NULL ? why : "");
	if (w == NULL) {
		ward_error_set(WARD_ENOMEM, "document: out of memory");
		xb_fail(b, WARD_ENOMEM);
		goto fail;
	}
	s = &b->segs[b->nsegs++];
	s->channel = ch;
	s->text = text;
	s->len = len;
	s->src_start = src_start < b->src_len ? src_start : b->src_len;
	s->src_end = src_end < s->src_start ? s->src_start : (src_end < b->src_len ? src_end : b->src_len);
	s->why = w;
	return;
fail:
	ward_free(text);
}

void xb_segment(xb *b, ward_channel ch, const char *text, size_t len, size_t src_start, size_t src_end, const char *why)
{
	ward_buf t;
	int pending = 0;
	char *s = NULL;
	size_t n = 0;

	if (b->err != 0)
		return;
	ward_buf_init(&t, len + 1);
	ws_append(&t, text, len, &pending);
	if (t.len == 0 && t.err == 0) {
		ward_buf_dispose(&t);
		return;
	}
	if (ward_buf_detach(&t, &s, &n) != 0) {
		ward_buf_dispose(&t);
		xb_fail(b, WARD_ENOMEM);
		return;
	}
	xb_segment_take(b, ch, s, n, src_start, src_end, why);
}

void xb_segment_raw(xb *b, ward_channel ch, const char *text, size_t len, size_t src_start, size_t src_end,
                    const char *why)
{
	char *s;

	if (b->err != 0)
		return;
	while (len > 0 && xb_is_space((unsigned char)*text)) {
		text++;
		len--;
	}
	while (len > 0 && xb_is_space((unsigned char)text[len - 1]))
		len--;
	if (len == 0)
		return;
	s = ward_strndup(text, len);
	if (s == NULL) {
		ward_error_set(WARD_ENOMEM, "document: out of memory");
		xb_fail(b, WARD_ENOMEM);
		return;
	}
	xb_segment_take(b, ch, s, len, src_start, src_end, why);
}

void xb_link(xb *b, const char *url, size_t url_len, const char *text, size_t text_len, int is_image, size_t src_start)
{
	ward_buf t;
	int pending = 0;
	char *u = NULL;
	char *tx = NULL;
	size_t n;

	if (b->err != 0)
		return;
	while (url_len > 0 && xb_is_space((unsigned char)*url)) {
		url++;
		url_len--;
	}
	while (url_len > 0 && xb_is_space((unsigned char)url[url_len - 1]))
		url_len--;
	if (url_len == 0)
		return;
	if (xb_reserve(b, (void **)&b->links, &b->caplinks, b->nlinks, sizeof(ward_link), WARD_MAX_LINKS, "links") != 0)
		return;
	ward_buf_init(&t, text_len + 1);
	ws_append(&t, text != NULL ? text : "", text != NULL ? text_len : 0, &pending);
	u = ward_strndup(url, url_len);
	if (u == NULL || ward_buf_detach(&t, &tx, &n) != 0) {
		ward_free(u);
		ward_buf_dispose(&t);
		ward_error_set(WARD_ENOMEM, "document: out of memory");
		xb_fail(b, WARD_ENOMEM);
		return;
	}
	b->links[b->nlinks].url = u;
	b->links[b->nlinks].text = tx;
	b->links[b->nlinks].is_image = is_image;
	b->links[b->nlinks].src_start = src_start < b->src_len ? src_start : b->src_len;
	b->nlinks++;
}

void xb_title(xb *b, const char *s, size_t n)
{
	ward_buf t;
	int pending = 0;
	size_t len;

	if (b->err != 0 || b->title != NULL)
		return;
	ward_buf_init(&t, n + 1);
	ws_append(&t, s, n, &pending);
	if (t.len == 0 || ward_buf_detach(&t, &b->title, &len) != 0) {
		ward_buf_dispose(&t);
		if (t.err != 0)
			xb_fail(b, WARD_ENOMEM);
	}
}

void xb_append_extracted(xb *b, const ward_extracted *x, size_t shift, int exact)
{
	size_t i;
	size_t k;

	for (i = 0; i < x->nblocks && b->err == 0; i++) {
		const ward_block *bl = &x->blocks[i];
		size_t p = bl->start;

		xb_block(b, bl->kind, bl->level);
		/* Copy piecewise between the inner map's anchors so each piece
		 * keeps its own source offset. */
		while (p < bl->end) {
			size_t q = bl->end;

			for (k = 0; k < x->map.n; k++)
				if (x->map.a[k].dst > p) {
					if (x->map.a[k].dst < q)
						q = x->map.a[k].dst;
					break;
				}
			xb_text(b, x->text + p, q - p, exact ? shift + ward_offmap_lookup(&x->map, p) : shift, exact,
			        1);
			p = q;
		}
	}
	xb_close(b);
	for (i = 0; i < x->nsegments && b->err == 0; i++) {
		const ward_segment *s = &x->segments[i];

		xb_segment_raw(b, s->channel, s->text, s->len, exact ? shift + s->src_start : shift,
		               exact ? shift + s->src_end : shift, s->why);
	}
	for (i = 0; i < x->nlinks && b->err == 0; i++) {
		const ward_link *l = &x->links[i];

		xb_link(b, l->url, strlen(l->url), l->text, strlen(l->text), l->is_image,
		        exact ? shift + l->src_start : shift);
	}
}

int xb_finish(xb *b, ward_extracted **out, ward_doctype type)
{
	ward_extracted *x = NULL;
	int rc;

	xb_close(b);
	if (b->err == 0 && b->text.err != 0)
		xb_fail(b, b->text.err);
	if (b->err != 0) {
		rc = b->err;
		goto done;
	}
	x = ward_calloc(1, sizeof(*x));
	if (x == NULL) {
		rc = ward_error_set(WARD_ENOMEM, "document: out of memory");
		goto done;
	}
	if (b->title == NULL) {
		b->title = ward_strdup("");
		if (b->title == NULL) {
			rc = ward_error_set(WARD_ENOMEM, "document: out of memory");
			goto done;
		}
	}
	rc = ward_buf_detach(&b->text, &x->text, &x->len);
	if (rc != 0)
		goto done;
	x->type = type;
	x->title = b->title;
	b->title = NULL;
	x->map = b->map;
	ward_offmap_init(&b->map, b->src_len);
	x->blocks = b->blocks;
	x->nblocks = b->nblocks;
	b->blocks = NULL;
	b->nblocks = 0;
	x->segments = b->segs;
	x->nsegments = b->nsegs;
	b->segs = NULL;
	b->nsegs = 0;
	x->links = b->links;
	x->nlinks = b->nlinks;
	b->links = NULL;
	b->nlinks = 0;
	*out = x;
	x = NULL;
	rc = 0;
done:
	ward_extracted_free(x);
	xb_dispose(b);
	return rc;
}

/* ---- results ---------------------------------------------------------------- */

void ward_extracted_free(ward_extracted *x)
{
	size_t i;

	if (x == NULL)
		return;
	ward_free(x->title);
	ward_free(x->text);
	ward_offmap_dispose(&x->map);
	ward_free(x->blocks);
	for (i = 0; i < x->nsegments; i++)
		segment_dispose(&x->segments[i]);
	ward_free(x->segments);
	for (i = 0; i < x->nlinks; i++)
		link_dispose(&x->links[i]);
	ward_free(x->links);
	ward_free(x);
}

void ward_feed_items_free(ward_feed_item *items, size_t n)
{
	size_t i;

	if (items == NULL)
		return;
	for (i = 0; i < n; i++) {
		ward_free(items[i].link);
		ward_free(items[i].title);
		ward_free(items[i].date);
		ward_extracted_free(items[i].content);
	}
	ward_free(items);
}

/* ---- libxml2 set-up ---------------------------------------------------------- */

static pthread_once_t libxml_once = PTHREAD_ONCE_INIT;
static atomic_ulong denied_loads;

/* Second line of defence behind "no DOCTYPE" and the option mask: whatever
 * libxml2 would fetch (external DTD, external entity, XInclude) is refused
 * before any file or socket is opened. */
static xmlParserInputPtr deny_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
	(void)url;
	(void)id;
	(void)ctxt;
	atomic_fetch_add(&denied_loads, 1);
	return NULL;
}

static void libxml_init_once(void)
{
	xmlInitParser();
	xmlSetExternalEntityLoader(deny_loader);
}

void extract_libxml_init(void)
{
	(void)pthread_once(&libxml_once, libxml_init_once);
}

unsigned long extract_denied_loads(void)
{
	return atomic_load(&denied_loads);
}

/* ---- dispatcher ------------------------------------------------------------- */

/* Checks shared by every format; the format extractors trust them. */
static int check_input(const char *bytes, size_t len, const char *what)
{
	size_t bad;

	if (bytes == NULL && len > 0)
		return ward_error_set(WARD_EINVAL, "%s: null input", what);
	if (len > WARD_MAX_DOC_BYTES)
		return ward_error_set(WARD_ETOOBIG, "%s: %zu bytes exceeds the limit of %d", what, len,
		                      WARD_MAX_DOC_BYTES);
	bad = extract_utf8_invalid_at(bytes != NULL ? bytes : "", len);
	if (bad < len)
		return ward_error_set(WARD_EINVAL, "%s: invalid UTF-8 at byte %zu", what, bad);
	return 0;
}

int ward_extract(ward_extracted **out, const char *bytes, size_t len, ward_doctype type)
{
	int rc;

	*out = NULL;
	rc = check_input(bytes, len, ward_doctype_name(type));
	if (rc != 0)
		return rc;
	if (bytes == NULL)
		bytes = "";
	switch (type) {
	case WARD_TYPE_HTML:
	case WARD_TYPE_XHTML:
		return extract_html(out, bytes, len, type);
	case WARD_TYPE_XML:
	case WARD_TYPE_FEED:
		return extract_xml(out, bytes, len, type);
	case WARD_TYPE_TEXT:
		return extract_text(out, bytes, len);
	case WARD_TYPE_MARKDOWN:
		return extract_markdown(out, bytes, len);
	case WARD_TYPE_UNKNOWN:
	default:
		break;
	}
	return ward_error_set(WARD_EINVAL, "document type '%s': cannot extract", ward_doctype_name(type));
}

int ward_extract_feed(ward_feed_item **items, size_t *n, const char *bytes, size_t len)
{
	int rc;

	*items = NULL;
	*n = 0;
	rc = check_input(bytes, len, "feed");
	if (rc != 0)
		return rc;
	return extract_feed(items, n, bytes != NULL ? bytes : "", len);
}

int ward_extracted_rebase(ward_extracted *x, const ward_offmap *inner)
{
	ward_offmap composed;
	int rc;

	if (!inner || inner->n == 0)
		return 0;
	if ((rc = ward_offmap_compose(&composed, &x->map, inner)) < 0)
		return rc;
	ward_offmap_dispose(&x->map);
	x->map = composed;
	for (size_t i = 0; i < x->nsegments; i++) {
		x->segments[i].src_start = ward_offmap_lookup(inner, x->segments[i].src_start);
		x->segments[i].src_end = ward_offmap_lookup(inner, x->segments[i].src_end);
	}
	for (size_t i = 0; i < x->nlinks; i++)
		x->links[i].src_start = ward_offmap_lookup(inner, x->links[i].src_start);
	return 0;
}
