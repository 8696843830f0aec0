/*
 * The type gate: what a document is, decided from its bytes (libmagic with a
 * reduced check set) and compared with what it claims to be (the HTTP
 * Content-Type or the file name), and its conversion to UTF-8.
 */
#ifndef RAGWARD_TYPEGATE_H
#define RAGWARD_TYPEGATE_H

#include <stddef.h>
#include "ragward/error.h"
#include "ragward/extract.h"
#include "ragward/offmap.h"

typedef enum {
	WARD_GATE_ACCEPT = 0, /* type decided; text converted to UTF-8 */
	WARD_GATE_QUARANTINE, /* declared and detected disagree, or type not allowed for the source */
	WARD_GATE_REJECT,     /* empty, binary, archive, executable, undecodable */
} ward_gate_decision;

typedef struct {
	ward_gate_decision decision;
	ward_doctype type;      /* the decided type (WARD_TYPE_UNKNOWN unless accepted) */
	char detected[128];     /* libmagic MIME type, e.g. "text/html" */
	char declared[128];     /* normalized declared MIME type, "" when none */
	char charset[64];       /* the charset converted from, e.g. "utf-8", "iso-8859-1" */
	char reason[256];       /* why, when not accepted */
	char *utf8;             /* the document as UTF-8 (BOM removed), ward_malloc'd; NULL unless accepted */
	size_t utf8_len;
	ward_offmap map;        /* utf8 offsets -> offsets in the original bytes (BOM, charset) */
	int sniffed;            /* 1 when the cheap sniff decided and libmagic was not run */
} ward_gate_result;

/*
 * Decides the type of `len` bytes. `content_type` is the HTTP header value (or
 * NULL), `name` a file name or URL path used for the extension when no header
 * was given (or NULL). `allowed` is a bit set of (1 << ward_doctype) the source
 * accepts; 0 means the default (HTML, XHTML, XML, feeds, text, Markdown).
 * Returns 0 with the decision in *out, or an error when the gate itself failed.
 */
int ward_typegate(ward_gate_result *out, const char *bytes, size_t len, const char *content_type, const char *name,
		  unsigned allowed) WARD_MUST_CHECK;
void ward_gate_result_dispose(ward_gate_result *r);

#endif
