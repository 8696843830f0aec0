/*
 * Extraction: from fetched bytes to the text a model would see, plus the
 * hidden channels an attacker can use, each mapped back to byte offsets of the
 * original document.
 *
 * HTML and XML are parsed from memory by libxml2 with the network off, no DTD
 * loading and no entity substitution; XML with a DOCTYPE is refused. Scripts
 * and styles never become text.
 */
#ifndef RAGWARD_EXTRACT_H
#define RAGWARD_EXTRACT_H

#include <stddef.h>
#include "ragward/error.h"
#include "ragward/offmap.h"

typedef enum {
	WARD_TYPE_UNKNOWN = 0,
	WARD_TYPE_HTML,
	WARD_TYPE_XHTML,
	WARD_TYPE_XML,  /* generic XML */
	WARD_TYPE_FEED, /* RSS or Atom */
	WARD_TYPE_TEXT,
	WARD_TYPE_MARKDOWN,
} ward_doctype;

const char *ward_doctype_name(ward_doctype t); /* "html", "xhtml", "xml", "feed", "text", "markdown" */
int ward_doctype_parse(ward_doctype *out, const char *s) WARD_MUST_CHECK;

/* Where a piece of text sits. The scanner weighs findings by channel. */
typedef enum {
	WARD_CH_VISIBLE = 0, /* what a reader of the rendered page sees */
	WARD_CH_HIDDEN,      /* hidden by markup or CSS, <noscript>, <template> */
	WARD_CH_ATTRIBUTE,   /* alt, title, aria-label, meta description, og:* */
	WARD_CH_COMMENT,     /* HTML/XML comments */
	WARD_CH_DECODED,     /* produced by decoding (base64, hex, tag characters...) */
	WARD_CH_INVISIBLE,   /* invisible Unicode (tag characters, zero-width...) */
	WARD_CH_COUNT
} ward_channel;

const char *ward_channel_name(ward_channel c); /* "visible", "hidden", ... */
int ward_channel_parse(ward_channel *out, const char *s) WARD_MUST_CHECK;

typedef enum {
	WARD_BLOCK_TITLE = 0,
	WARD_BLOCK_HEADING,
	WARD_BLOCK_PARAGRAPH,
	WARD_BLOCK_LIST_ITEM,
	WARD_BLOCK_TABLE_ROW,
	WARD_BLOCK_CODE, /* <pre>, <code> blocks, fenced Markdown code */
	WARD_BLOCK_QUOTE,
} ward_block_kind;

/* A structural block of the visible text: [start, end) bytes of `text`. */
typedef struct {
	ward_block_kind kind;
	int level; /* heading level 1..6, list nesting depth, else 0 */
	size_t start, end;
} ward_block;

/* A piece of text outside the visible flow (hidden element, comment,
 * attribute), with where it came from. */
typedef struct {
	ward_channel channel;
	char *text; /* UTF-8, NUL-terminated */
	size_t len;
	size_t src_start, src_end; /* byte range in the original document */
	char *why;  /* "display:none", "comment", "alt", "aria-hidden", "class .sr-x" ... */
} ward_segment;

/* A link or image URL a model could be made to render or follow. */
typedef struct {
	char *url;
	char *text;       /* link text or image alt, may be "" */
	int is_image;
	size_t src_start; /* byte offset in the original */
} ward_link;

typedef struct {
	ward_doctype type;
	char *title;        /* "" when none */
	char *text;         /* visible text, UTF-8, blocks separated by "\n\n" */
	size_t len;
	ward_offmap map;    /* text offsets -> original byte offsets */
	ward_block *blocks;
	size_t nblocks;
	ward_segment *segments; /* hidden, attribute and comment channels */
	size_t nsegments;
	ward_link *links;
	size_t nlinks;
} ward_extracted;

/*
 * Extracts `len` bytes of type `type`. The input must already be UTF-8 (the
 * caller converts after the type gate); invalid UTF-8 is WARD_EINVAL.
 * Feeds are extracted as one document here (items: see ward_extract_feed).
 * Caps: WARD_MAX_DOC_BYTES input, WARD_MAX_DOM_DEPTH nesting.
 */
int ward_extract(ward_extracted **out, const char *bytes, size_t len, ward_doctype type) WARD_MUST_CHECK;
void ward_extracted_free(ward_extracted *x);

/*
 * Re-bases every offset of `x` (its text map, segment ranges, link offsets)
 * from the bytes it was extracted from onto the bytes those came from, given
 * the map between them (the type gate's conversion to UTF-8: a BOM removed, a
 * charset converted), so that offsets point at the document as fetched.
 */
int ward_extracted_rebase(ward_extracted *x, const ward_offmap *inner) WARD_MUST_CHECK;

/* An RSS/Atom item: its own document. */
typedef struct {
	char *link;
	char *title;
	char *date;
	ward_extracted *content;
} ward_feed_item;

int ward_extract_feed(ward_feed_item **items, size_t *n, const char *bytes, size_t len) WARD_MUST_CHECK;
void ward_feed_items_free(ward_feed_item *items, size_t n);

#endif
