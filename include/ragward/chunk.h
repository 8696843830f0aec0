/*
 * Structure-aware chunking of extracted text: chunks follow headings,
 * paragraphs, list items and table rows, aim at a target size and never
 * exceed a maximum; each records its heading path, ordinal and byte range in
 * the extracted text. Deterministic: the same input gives the same chunks.
 */
#ifndef RAGWARD_CHUNK_H
#define RAGWARD_CHUNK_H

#include <stddef.h>
#include "ragward/error.h"
#include "ragward/extract.h"

typedef struct {
	size_t target; /* bytes; 0: WARD_CHUNK_TARGET */
	size_t max;    /* bytes; 0: WARD_CHUNK_MAX */
} ward_chunk_opts;

typedef struct {
	size_t ordinal;
	size_t start, end;  /* byte range in x->text; text is x->text + start */
	char *heading_path; /* "Title > Section > Subsection", "" when none */
} ward_chunk;

/* Chunks x->text along x->blocks. *out is ward_malloc'd (free with
 * ward_chunks_free). Never splits inside a UTF-8 sequence. */
int ward_chunk_text(ward_chunk **out, size_t *n, const ward_extracted *x, const ward_chunk_opts *opts) WARD_MUST_CHECK;
void ward_chunks_free(ward_chunk *c, size_t n);

#endif
