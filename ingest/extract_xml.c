/*
 * XML extraction: generic XML as text, RSS 2.0 / RSS 1.0 / Atom feeds as
 * items.
 *
 * Safety comes from three layers (security-controls.md §2): an option mask
 * without NOENT, DTDLOAD, DTDATTR, DTDVALID, HUGE, XINCLUDE or RECOVER
 * (checked at compile time); any DOCTYPE refused, stopping the parser at the
 * DOCTYPE itself, before an entity is declared, so XXE, external DTDs and
 * entity bombs never get to run (doc->intSubset/extSubset are checked again
 * after the parse); and the refuse-everything entity loader of extract.c.
 * libxml2's default limits (depth 256, text 10 MB, names 50 KB) stay in force.
 *
 * Offsets: the tree carries no byte positions, so each text node is looked
 * for in the original from the last mapped position onwards (within a bounded
 * window). Text that was not written verbatim (entities, CRLF) maps to the
 * last known position.
 */
#include <stdint.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "core/limits.h"
#include "ingest/extract_internal.h"
#include "ragward/alloc.h"
#include "ragward/error.h"
#include "core/banned.h"

#define XML_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_IGNORE_ENC)
#define XML_FORBIDDEN                                                                                                  \
	(XML_PARSE_NOENT | XML_PARSE_DTDLOAD | XML_PARSE_DTDATTR | XML_PARSE_DTDVALID | XML_PARSE_HUGE |               \
	 XML_PARSE_XINCLUDE | XML_PARSE_RECOVER)
_Static_assert((XML_OPTIONS & XML_FORBIDDEN) == 0, "a dangerous libxml2 option is in the XML option mask");

#define LOCATE_WINDOW 4096 /* bytes past the expected place a text node is looked for */

typedef struct {
	int doctype;
	unsigned long nerrors;
	int first_code;
	char first[200];
} xx_state;

static void xx_error(void *data, xmlErrorPtr err)
{
	xmlParserCtxtPtr ctxt = data;
	xx_state *st = ctxt != NULL ? ctxt->_private : NULL;

	if (st == NULL || err == NULL)
		return;
	if (st->nerrors++ == 0) {
		size_t k;

		st->first_code = err->code;
		(void)snprintf(st->first, sizeof(st->first), "line %d: %s", err->line,
		               err->message != NULL ? err->message : "error");
		for (k = 0; st->first[k] != '\0'; k++)
			if (st->first[k] == '\n')
				st->first[k] = '\0';
	}
}

/* Called when the parser meets <!DOCTYPE, before the internal subset. */
static void xx_doctype(void *data, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
	xmlParserCtxtPtr ctxt = data;
	xx_state *st = ctxt->_private;

	(void)name;
	(void)ext;
	(void)sys;
	st->doctype = 1;
	xmlStopParser(ctxt);
}

static void silent_generic(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

/* Parses with the hardened set-up; *out is a well-formed document without a
 * DOCTYPE, or an error is returned. */
static int xx_parse(xmlDocPtr *out, const char *bytes, size_t len)
{
	xmlParserCtxtPtr ctxt = NULL;
	xmlDocPtr doc = NULL;
	xx_state st;
	xmlGenericErrorFunc prev_generic = xmlGenericError;
	void *prev_generic_ctx = xmlGenericErrorContext;
	xmlStructuredErrorFunc prev_structured = xmlStructuredError;
	void *prev_structured_ctx = xmlStructuredErrorContext;
	int rc = 0;

	*out = NULL;
	memset(&st, 0, sizeof(st));
	extract_libxml_init();
	xmlSetGenericErrorFunc(NULL, silent_generic);
	xmlSetStructuredErrorFunc(NULL, NULL);
	if (len > (size_t)0x7fffffff) {
		rc = ward_error_set(WARD_ETOOBIG, "xml: document too large");
		goto done;
	}
	ctxt = xmlNewParserCtxt();
	if (ctxt == NULL) {
		rc = ward_error_set(WARD_ENOMEM, "xml: cannot create a parser");
		goto done;
	}
	ctxt->_private = &st;
	ctxt->sax->internalSubset = xx_doctype;
	ctxt->sax->serror = xx_error;
	ctxt->sax->initialized = XML_SAX2_MAGIC;
	ctxt->vctxt.error = NULL;
	ctxt->vctxt.warning = NULL;
	xmlSetStructuredErrorFunc(ctxt, xx_error);
	/* No encoding name: checked UTF-8 is the default, IGNORE_ENC makes the
	 * XML declaration's encoding="..." powerless (naming "UTF-8" would
	 * open an iconv handler that 2.9.14 leaks on allocation failure). */
	doc = xmlCtxtReadMemory(ctxt, len > 0 ? bytes : " ", len > 0 ? (int)len : 1, NULL, NULL, XML_OPTIONS);
	if (st.doctype || (doc != NULL && (doc->intSubset != NULL || doc->extSubset != NULL))) {
		rc = ward_error_set(WARD_EPOLICY, "xml: DOCTYPE not allowed (DTDs and entities are refused)");
		goto done;
	}
	if (doc == NULL || !ctxt->wellFormed || st.nerrors > 0) {
		if (ctxt->errNo == XML_ERR_NO_MEMORY)
			rc = ward_error_set(WARD_ENOMEM, "xml: out of memory in the parser");
		else if (st.first_code == XML_ERR_INTERNAL_ERROR && strstr(st.first, "depth") != NULL)
			rc = ward_error_set(WARD_ETOOBIG, "xml: elements nested deeper than %d (%s)",
			                    WARD_MAX_DOM_DEPTH, st.first);
		else if (st.first_code == XML_ERR_NO_MEMORY)
			rc = ward_error_set(WARD_ENOMEM, "xml: out of memory");
		else
			rc = ward_error_set(WARD_EINVAL, "xml: not well-formed: %s",
			                    st.first[0] != '\0' ? st.first : "no document");
		goto done;
	}
	if (xmlDocGetRootElement(doc) == NULL) {
		rc = ward_error_set(WARD_EINVAL, "xml: no root element");
		goto done;
	}
	*out = doc;
	doc = NULL;
done:
	xmlSetGenericErrorFunc(prev_generic_ctx, prev_generic);
	xmlSetStructuredErrorFunc(prev_structured_ctx, prev_structured);
	if (doc != NULL)
		xmlFreeDoc(doc);
	if (ctxt != NULL)
		xmlFreeParserCtxt(ctxt);
	return rc;
}

/* Finds text in the source from *cursor on (bounded); returns 1 and its
 * offset when found verbatim, else 0 with *cursor as the best guess. */
static int xx_locate(const char *src, size_t n, size_t *cursor, const char *text, size_t len, size_t *at)
{
	size_t win = len > SIZE_MAX / 4 - LOCATE_WINDOW ? SIZE_MAX : 4 * len + LOCATE_WINDOW;
	size_t avail = n - *cursor;
	const char *p;

	if (len == 0) {
		*at = *cursor;
		return 0;
	}
	p = extract_memmem(src + *cursor, avail < win ? avail : win, text, len);
	if (p == NULL) {
		*at = *cursor;
		return 0;
	}
	*at = (size_t)(p - src);
	*cursor = *at + len;
	return 1;
}

static int name_is(const xmlNode *n, const char *local)
{
	return n != NULL && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, local) == 0;
}

static int ns_is(const xmlNode *n, const char *prefix)
{
	return n->ns != NULL && n->ns->prefix != NULL && strcmp((const char *)n->ns->prefix, prefix) == 0;
}

/* Generic XML: every text node in document order, a new block whenever the
 * parent element changes; comments become segments. Iterative walk. */
static int xx_generic(xb *b, xmlDocPtr doc, const char *src, size_t n)
{
	xmlNode *node = xmlDocGetRootElement(doc);
	const xmlNode *block_parent = NULL;
	size_t depth = 1;
	size_t cursor = 0;

	while (node != NULL && b->err == 0) {
		if (node->type == XML_TEXT_NODE || node->type == XML_CDATA_SECTION_NODE) {
			const char *t = (const char *)node->content;
			size_t tl = t != NULL ? strlen(t) : 0;
			size_t at;
			int exact = xx_locate(src, n, &cursor, t, tl, &at);

			if (node->parent != block_parent) {
				xb_block(b, WARD_BLOCK_PARAGRAPH, 0);
				block_parent = node->parent;
			}
			xb_text(b, t != NULL ? t : "", tl, at, exact, 0);
		} else if (node->type == XML_COMMENT_NODE) {
			const char *t = (const char *)node->content;
			size_t tl = t != NULL ? strlen(t) : 0;
			size_t at;

			(void)xx_locate(src, n, &cursor, t, tl, &at);
			xb_segment_raw(b, WARD_CH_COMMENT, t != NULL ? t : "", tl, at, at + tl, "comment");
		}
		if (node->type == XML_ELEMENT_NODE && node->children != NULL) {
			if (++depth > WARD_MAX_DOM_DEPTH) {
				ward_error_set(WARD_ETOOBIG, "xml: elements nested deeper than %d", WARD_MAX_DOM_DEPTH);
				return xb_fail(b, WARD_ETOOBIG);
			}
			node = node->children;
			continue;
		}
		while (node != NULL && node->next == NULL) {
			node = node->parent;
			depth--;
			if (node == NULL || node->type == XML_DOCUMENT_NODE || depth == 0)
				return b->err;
		}
		if (node != NULL)
			node = node->next;
	}
	return b->err;
}

/* ---- feeds -------------------------------------------------------------------- */

typedef struct {
	xmlNode *channel; /* RSS channel or Atom feed (title source) */
	xmlNode *first;   /* the first candidate item node */
	const char *item; /* "item" or "entry" */
	int atom;
} feed_shape;

static int feed_detect(xmlDocPtr doc, feed_shape *f)
{
	xmlNode *root = xmlDocGetRootElement(doc);
	xmlNode *c;

	memset(f, 0, sizeof(*f));
	if (name_is(root, "rss")) {
		for (c = root->children; c != NULL; c = c->next)
			if (name_is(c, "channel"))
				break;
		if (c == NULL)
			return 0;
		f->channel = c;
		f->first = c->children;
		f->item = "item";
		return 1;
	}
	if (name_is(root, "RDF")) {
		for (c = root->children; c != NULL; c = c->next)
			if (name_is(c, "channel"))
				f->channel = c;
		f->first = root->children;
		f->item = "item";
		return 1;
	}
	if (name_is(root, "feed")) {
		f->channel = root;
		f->first = root->children;
		f->item = "entry";
		f->atom = 1;
		return 1;
	}
	return 0;
}

static xmlNode *child(const xmlNode *n, const char *local, const char *prefix)
{
	xmlNode *c;

	for (c = n->children; c != NULL; c = c->next)
		if (name_is(c, local) && (prefix == NULL || ns_is(c, prefix)))
			return c;
	return NULL;
}

/* Text content of a node, as a ward_strdup'd string ("" for none). */
static char *node_text(const xmlNode *n)
{
	xmlChar *t;
	char *r;

	if (n == NULL)
		return ward_strdup("");
	t = xmlNodeGetContent(n);
	r = ward_strdup(t != NULL ? (const char *)t : "");
	xmlFree(t);
	return r;
}

static char *atom_link(const xmlNode *entry)
{
	xmlNode *c;

	for (c = entry->children; c != NULL; c = c->next) {
		xmlChar *rel;
		xmlChar *href;
		int ok;
		char *r;

		if (!name_is(c, "link"))
			continue;
		rel = xmlGetProp(c, (const xmlChar *)"rel");
		ok = rel == NULL || strcmp((const char *)rel, "alternate") == 0;
		xmlFree(rel);
		if (!ok)
			continue;
		href = xmlGetProp(c, (const xmlChar *)"href");
		if (href == NULL)
			continue;
		r = ward_strdup((const char *)href);
		xmlFree(href);
		return r;
	}
	return ward_strdup("");
}

/* The node holding an item's body, and whether it is HTML. */
static xmlNode *item_body(const xmlNode *it, int atom, int *is_html)
{
	xmlNode *c;
	xmlChar *type;

	*is_html = 1;
	if ((c = child(it, "encoded", "content")) != NULL)
		return c;
	if (!atom)
		return child(it, "description", NULL);
	c = child(it, "content", NULL);
	if (c == NULL)
		c = child(it, "summary", NULL);
	if (c == NULL)
		return NULL;
	type = xmlGetProp(c, (const xmlChar *)"type");
	*is_html = type != NULL &&
	           (strcmp((const char *)type, "html") == 0 || strcmp((const char *)type, "text/html") == 0);
	xmlFree(type);
	return c;
}

/* Extracts an item body and re-bases its offsets onto the feed's bytes. */
static int item_content(ward_extracted **out, const xmlNode *body, int is_html, const char *src, size_t n,
                        size_t *cursor)
{
	char *text = NULL;
	ward_extracted *sub = NULL;
	xb b;
	size_t at = *cursor;
	int exact;
	int rc;

	*out = NULL;
	xb_init(&b, n);
	text = node_text(body);
	if (text == NULL) {
		rc = ward_error_set(WARD_ENOMEM, "feed: out of memory");
		goto done;
	}
	exact = xx_locate(src, n, cursor, text, strlen(text), &at);
	rc = is_html ? extract_html(&sub, text, strlen(text), WARD_TYPE_HTML) : extract_text(&sub, text, strlen(text));
	if (rc != 0)
		goto done;
	xb_append_extracted(&b, sub, at, exact);
	rc = xb_finish(&b, out, is_html ? WARD_TYPE_HTML : WARD_TYPE_TEXT);
done:
	xb_dispose(&b);
	ward_extracted_free(sub);
	ward_free(text);
	return rc;
}

/* Moves the cursor to the next "<item"/"<entry" so that locating text of
 * this item starts inside it. */
static void seek_tag(const char *src, size_t n, size_t *cursor, const char *name)
{
	char pat[16];
	int k = snprintf(pat, sizeof(pat), "<%s", name);
	const char *p;

	if (k <= 0 || (size_t)k >= sizeof(pat))
		return;
	p = extract_memmem(src + *cursor, n - *cursor, pat, (size_t)k);
	if (p != NULL)
		*cursor = (size_t)(p - src);
}

int extract_feed(ward_feed_item **items, size_t *nitems, const char *bytes, size_t len)
{
	xmlDocPtr doc = NULL;
	feed_shape f;
	ward_feed_item *arr = NULL;
	size_t count = 0;
	size_t cap = 0;
	size_t cursor = 0;
	xmlNode *it;
	int rc;

	rc = xx_parse(&doc, bytes, len);
	if (rc != 0)
		goto done;
	if (!feed_detect(doc, &f)) {
		rc = ward_error_set(WARD_EINVAL, "feed: the root element is not rss, rdf:RDF or feed");
		goto done;
	}
	for (it = f.first; it != NULL; it = it->next) {
		ward_feed_item *item;
		xmlNode *body;
		int is_html;

		if (!name_is(it, f.item))
			continue;
		if (count >= WARD_MAX_FEED_ITEMS) {
			rc = ward_error_set(WARD_ETOOBIG, "feed: more than %d items", WARD_MAX_FEED_ITEMS);
			goto done;
		}
		if (count == cap) {
			size_t ncap = cap == 0 ? 16 : cap * 2;
			ward_feed_item *p = ward_realloc(arr, ncap * sizeof(*arr));

			if (p == NULL) {
				rc = ward_error_set(WARD_ENOMEM, "feed: out of memory");
				goto done;
			}
			arr = p;
			cap = ncap;
		}
		item = &arr[count++];
		memset(item, 0, sizeof(*item));
		seek_tag(bytes, len, &cursor, f.item);
		item->title = node_text(child(it, "title", NULL));
		item->link = f.atom ? atom_link(it) : node_text(child(it, "link", NULL));
		{
			xmlNode *d = child(it, "pubDate", NULL);

			if (d == NULL)
				d = child(it, "published", NULL);
			if (d == NULL)
				d = child(it, "updated", NULL);
			if (d == NULL)
				d = child(it, "date", NULL);
			item->date = node_text(d);
		}
		if (item->title == NULL || item->link == NULL || item->date == NULL) {
			rc = ward_error_set(WARD_ENOMEM, "feed: out of memory");
			goto done;
		}
		body = item_body(it, f.atom, &is_html);
		if (body != NULL) {
			rc = item_content(&item->content, body, is_html, bytes, len, &cursor);
			if (rc != 0)
				goto done;
			ward_free(item->content->title);
			item->content->title = ward_strdup(item->title);
			if (item->content->title == NULL) {
				rc = ward_error_set(WARD_ENOMEM, "feed: out of memory");
				goto done;
			}
		} else {
			xb b;

			xb_init(&b, len);
			rc = xb_finish(&b, &item->content, WARD_TYPE_TEXT);
			if (rc != 0)
				goto done;
		}
	}
	*items = arr;
	*nitems = count;
	arr = NULL;
	count = 0;
done:
	ward_feed_items_free(arr, count);
	if (doc != NULL)
		xmlFreeDoc(doc);
	return rc;
}

/* The whole feed as one document: channel title, then per item its title
 * as a heading and its body. */
static int xx_feed_doc(xb *b, xmlDocPtr doc, const feed_shape *f, const char *src, size_t n)
{
	size_t cursor = 0;
	xmlNode *it;
	xmlNode *t;
	int rc = 0;

	t = f->channel != NULL ? child(f->channel, "title", NULL) : NULL;
	if (t != NULL) {
		char *s = node_text(t);
		size_t at;
		int exact;

		if (s == NULL)
			return xb_fail(b, ward_error_set(WARD_ENOMEM, "feed: out of memory"));
		exact = xx_locate(src, n, &cursor, s, strlen(s), &at);
		xb_title(b, s, strlen(s));
		xb_block(b, WARD_BLOCK_TITLE, 0);
		xb_text(b, s, strlen(s), at, exact, 0);
		ward_free(s);
	}
	for (it = f->first; it != NULL && b->err == 0; it = it->next) {
		xmlNode *body;
		int is_html;

		if (!name_is(it, f->item))
			continue;
		seek_tag(src, n, &cursor, f->item);
		t = child(it, "title", NULL);
		if (t != NULL) {
			char *s = node_text(t);
			size_t at;
			int exact;

			if (s == NULL)
				return xb_fail(b, ward_error_set(WARD_ENOMEM, "feed: out of memory"));
			exact = xx_locate(src, n, &cursor, s, strlen(s), &at);
			xb_block(b, WARD_BLOCK_HEADING, 2);
			xb_text(b, s, strlen(s), at, exact, 0);
			ward_free(s);
		}
		body = item_body(it, f->atom, &is_html);
		if (body != NULL) {
			ward_extracted *sub = NULL;

			rc = item_content(&sub, body, is_html, src, n, &cursor);
			if (rc != 0)
				return xb_fail(b, rc);
			/* already re-based onto the feed: shift 0, exact */
			xb_append_extracted(b, sub, 0, 1);
			ward_extracted_free(sub);
		}
	}
	return b->err;
}

int extract_xml(ward_extracted **out, const char *bytes, size_t len, ward_doctype type)
{
	xmlDocPtr doc = NULL;
	feed_shape f;
	xb b;
	int rc;

	xb_init(&b, len);
	rc = xx_parse(&doc, bytes, len);
	if (rc != 0)
		goto done;
	if (type == WARD_TYPE_FEED && feed_detect(doc, &f))
		rc = xx_feed_doc(&b, doc, &f, bytes, len);
	else
		rc = xx_generic(&b, doc, bytes, len);
	if (rc != 0)
		goto done;
	rc = xb_finish(&b, out, type);
done:
	xb_dispose(&b);
	if (doc != NULL)
		xmlFreeDoc(doc);
	return rc;
}
