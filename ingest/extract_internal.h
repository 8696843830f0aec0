/*
 * Shared internals of the extractors: the builder every extractor writes
 * into (visible text with its offset map, blocks, segments, links), the UTF-8
 * check, and the per-format entry points ward_extract() dispatches to.
 */
#ifndef RAGWARD_INGEST_EXTRACT_INTERNAL_H
#define RAGWARD_INGEST_EXTRACT_INTERNAL_H

#include <stddef.h>

#include "ragward/buf.h"
#include "ragward/extract.h"
#include "ragward/offmap.h"

/*
 * The builder. Text arrives in pieces with the source offset of their first
 * byte; the builder opens a block lazily at the first non-blank byte (so empty
 * elements leave no empty block), separates blocks with "\n\n", collapses
 * whitespace to single spaces (unless told to keep it) and records one anchor
 * wherever the copy stops being verbatim. Errors are sticky in `err`: callers
 * append freely and check once.
 */
typedef struct {
	size_t src_len;
	ward_buf text;
	ward_offmap map;
	ward_block *blocks;
	size_t nblocks, capblocks;
	ward_segment *segs;
	size_t nsegs, capsegs;
	ward_link *links;
	size_t nlinks, caplinks;
	char *title;
	int err;

	int in_block;         /* a block is open in `text` */
	ward_block_kind kind; /* kind of the open (or next) block */
	int level;
	size_t block_start;
	int pending_space; /* a collapsed whitespace run waits for the next word */
	size_t space_src;
	const char *pending_sep; /* replaces the pending space (table cells: " | ") */
	size_t last_src;         /* source offsets handed to the map never go back */
} xb;

void xb_init(xb *b, size_t src_len);
void xb_dispose(xb *b);
/* Closes the open block (if any); the next text opens a block of `kind`. */
void xb_block(xb *b, ward_block_kind kind, int level);
/* Changes the kind of the open block (Markdown setext headings). */
void xb_retag(xb *b, ward_block_kind kind, int level);
void xb_close(xb *b);
/* Appends n bytes whose first byte is at `src` in the original. exact: byte
 * i is at src + i (else every byte maps to src). keep_ws: copy whitespace
 * verbatim (code blocks), else collapse it. */
void xb_text(xb *b, const char *s, size_t n, size_t src, int exact, int keep_ws);
/* A separator used instead of the next collapsed space in this block. */
void xb_sep(xb *b, const char *sep);
/* Copies text (whitespace collapsed and trimmed); empty text adds nothing.
 * More than WARD_MAX_SEGMENTS is WARD_ETOOBIG: a hidden channel is never
 * silently dropped. */
void xb_segment(xb *b, ward_channel ch, const char *text, size_t len, size_t src_start, size_t src_end,
                const char *why);
/* Like xb_segment but keeps the text as is (comments, code). */
void xb_segment_raw(xb *b, ward_channel ch, const char *text, size_t len, size_t src_start, size_t src_end,
                    const char *why);
void xb_link(xb *b, const char *url, size_t url_len, const char *text, size_t text_len, int is_image, size_t src_start);
/* Sets the title if none is set yet (whitespace collapsed). */
void xb_title(xb *b, const char *s, size_t n);
/* Appends another extraction's blocks, segments and links, shifting its
 * source offsets by `shift` (a feed item's content inside the feed). When
 * exact is 0 every offset maps to `shift`. */
void xb_append_extracted(xb *b, const ward_extracted *x, size_t shift, int exact);
/* Hands the result over; the builder is disposed either way. */
int xb_finish(xb *b, ward_extracted **out, ward_doctype type);
/* Records an error in the builder (first one wins) and returns it. */
int xb_fail(xb *b, int code);

/* ward_buf errors are sticky and checked once at the end; this marks the
 * appends whose result is deliberately read later. */
static inline void xb_sticky(int rc)
{
	(void)rc;
}

/* Whitespace as HTML and Markdown collapse it (not NBSP). */
static inline int xb_is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Appends s to a buffer collapsing whitespace runs into one space (none at
 * the start). *pending carries a trailing run across calls. */
void ws_append(ward_buf *out, const char *s, size_t n, int *pending);

/* Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. Returns
 * the offset of the first bad byte, or len when valid. NUL bytes are refused
 * too: they truncate C strings downstream. */
size_t extract_utf8_invalid_at(const char *s, size_t len);

/* memmem without _GNU_SOURCE. */
const char *extract_memmem(const char *hay, size_t hlen, const char *needle, size_t nlen);

/* Per-format extractors: the input is already checked (size, UTF-8). */
int extract_html(ward_extracted **out, const char *bytes, size_t len, ward_doctype type);
int extract_xml(ward_extracted **out, const char *bytes, size_t len, ward_doctype type);
int extract_text(ward_extracted **out, const char *bytes, size_t len);
int extract_markdown(ward_extracted **out, const char *bytes, size_t len);
int extract_feed(ward_feed_item **items, size_t *n, const char *bytes, size_t len);

/* libxml2 set-up shared by the HTML and XML extractors: xmlInitParser and the
 * refuse-everything entity loader, once per process (pthread_once). */
void extract_libxml_init(void);
/* How many times the refusing loader was asked for something (tests). */
unsigned long extract_denied_loads(void);

#endif
