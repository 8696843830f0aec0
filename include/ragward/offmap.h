/*
 * Offset maps: from positions in a derived text (extracted text, a normalized
 * view) back to positions in the text it came from, so a finding or a
 * citation can point at the original bytes.
 *
 * A map is a list of anchors (dst, src) with both coordinates non-decreasing.
 * A position p in the derived text maps to src + (p - dst) of the last anchor
 * with dst <= p, clamped to the next anchor's src: runs copied verbatim map
 * exactly, replaced runs map to the start of what they replaced.
 */
#ifndef RAGWARD_OFFMAP_H
#define RAGWARD_OFFMAP_H

#include <stddef.h>
#include "ragward/error.h"

typedef struct {
	size_t dst;
	size_t src;
} ward_anchor;

typedef struct {
	ward_anchor *a;
	size_t n, cap;
	size_t src_len; /* length of the source text, the upper clamp */
} ward_offmap;

void ward_offmap_init(ward_offmap *m, size_t src_len);
void ward_offmap_dispose(ward_offmap *m);
/* Appends an anchor; anchors must be added in non-decreasing order of both
 * coordinates (WARD_EINVAL otherwise). Consecutive anchors on the same
 * diagonal are merged. */
int ward_offmap_add(ward_offmap *m, size_t dst, size_t src) WARD_MUST_CHECK;
size_t ward_offmap_lookup(const ward_offmap *m, size_t dst);
/* Composes: result maps a position of `outer`'s derived text through `outer`
 * and then through `inner` (outer's source is inner's derived text). */
int ward_offmap_compose(ward_offmap *out, const ward_offmap *outer, const ward_offmap *inner) WARD_MUST_CHECK;

#endif
