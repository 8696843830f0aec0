/*
 * The invariants every extraction result keeps, whatever the input: offsets
 * inside the text or the original, valid UTF-8 out, NUL-terminated strings.
 */
#ifndef RAGWARD_FUZZ_EXTRACT_H
#define RAGWARD_FUZZ_EXTRACT_H

#include "fuzz_common.h"
#include "core/limits.h"
#include "ragward/extract.h"
#include "ragward/normalize.h"

static inline void fuzz_check_extracted(const ward_extracted *x, size_t srclen)
{
	size_t i;

	FUZZ_CHECK(x != NULL);
	FUZZ_CHECK(x->text != NULL && x->title != NULL);
	FUZZ_CHECK(x->text[x->len] == '\0');
	FUZZ_CHECK(ward_utf8_valid(x->text, x->len, NULL));
	FUZZ_CHECK(ward_utf8_valid(x->title, strlen(x->title), NULL));
	/* Every text position maps into the original, monotonically. */
	{
		size_t prev = 0, step = x->len / 64 + 1;

		for (i = 0; i <= x->len; i += step) {
			size_t o = ward_offmap_lookup(&x->map, i);

			FUZZ_CHECK(o <= srclen);
			FUZZ_CHECK(o >= prev);
			prev = o;
		}
		FUZZ_CHECK(ward_offmap_lookup(&x->map, x->len) <= srclen);
	}
	for (i = 0; i < x->nblocks; i++) {
		FUZZ_CHECK(x->blocks[i].start <= x->blocks[i].end);
		FUZZ_CHECK(x->blocks[i].end <= x->len);
	}
	FUZZ_CHECK(x->nsegments <= WARD_MAX_SEGMENTS);
	for (i = 0; i < x->nsegments; i++) {
		const ward_segment *sg = &x->segments[i];

		FUZZ_CHECK(sg->text != NULL && sg->why != NULL);
		FUZZ_CHECK(sg->text[sg->len] == '\0');
		FUZZ_CHECK((unsigned)sg->channel < WARD_CH_COUNT);
		FUZZ_CHECK(sg->src_start <= sg->src_end);
		FUZZ_CHECK(sg->src_end <= srclen);
		FUZZ_CHECK(ward_utf8_valid(sg->text, sg->len, NULL));
	}
	FUZZ_CHECK(x->nlinks <= WARD_MAX_LINKS);
	for (i = 0; i < x->nlinks; i++) {
		FUZZ_CHECK(x->links[i].url != NULL && x->links[i].text != NULL);
		FUZZ_CHECK(x->links[i].src_start <= srclen);
	}
}

#endif
