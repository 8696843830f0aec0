/*
 * Offset maps (see offmap.h). Anchors are kept sorted by construction, so a
 * lookup is one binary search; merging anchors that sit on the same diagonal
 * keeps a verbatim copy at one anchor however long it is.
 */
#include <stdint.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/error.h"
#include "ragward/offmap.h"
#include "core/banned.h"

#define OFFMAP_MIN_CAP 16

void ward_offmap_init(ward_offmap *m, size_t src_len)
{
	m->a = NULL;
	m->n = 0;
	m->cap = 0;
	m->src_len = src_len;
}

void ward_offmap_dispose(ward_offmap *m)
{
	if (m == NULL)
		return;
	ward_free(m->a);
	m->a = NULL;
	m->n = 0;
	m->cap = 0;
}

static int offmap_grow(ward_offmap *m)
{
	size_t cap;
	ward_anchor *p;

	if (m->n < m->cap)
		return 0;
	cap = m->cap < OFFMAP_MIN_CAP ? OFFMAP_MIN_CAP : m->cap;
	if (m->cap >= OFFMAP_MIN_CAP) {
		if (cap > SIZE_MAX / 2 / sizeof(ward_anchor))
			return ward_error_set(WARD_ENOMEM, "offset map: too many anchors");
		cap *= 2;
	}
	p = ward_realloc(m->a, cap * sizeof(ward_anchor));
	if (p == NULL)
		return ward_error_set(WARD_ENOMEM, "offset map: out of memory");
	m->a = p;
	m->cap = cap;
	return 0;
}

int ward_offmap_add(ward_offmap *m, size_t dst, size_t src)
{
	ward_anchor *last;

	if (m->n > 0) {
		last = &m->a[m->n - 1];
		if (dst < last->dst || src < last->src)
			return ward_error_set(WARD_EINVAL,
			                      "offset map: anchor (%zu, %zu) goes backwards from (%zu, %zu)", dst, src,
			                      last->dst, last->src);
		/* Already implied by the previous anchor's diagonal. */
		if (dst - last->dst == src - last->src)
			return 0;
		/* Two anchors at one position: the later one describes what
		 * follows, the earlier one covered nothing. */
		if (dst == last->dst) {
			last->src = src;
			if (m->n > 1 && last->dst - m->a[m->n - 2].dst == last->src - m->a[m->n - 2].src)
				m->n--;
			return 0;
		}
	}
	if (offmap_grow(m) != 0)
		return WARD_ENOMEM;
	m->a[m->n].dst = dst;
	m->a[m->n].src = src;
	m->n++;
	return 0;
}

/* Index of the last anchor with dst <= p, or m->n when there is none. */
static size_t offmap_find(const ward_offmap *m, size_t p)
{
	size_t lo = 0;
	size_t hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->a[mid].dst <= p)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == 0 ? m->n : lo - 1;
}

/* An empty map is the identity (clamped): a derived text that was never
 * changed needs no anchors. Positions before the first anchor map to its
 * source position. */
size_t ward_offmap_lookup(const ward_offmap *m, size_t dst)
{
	size_t i;
	size_t r;

	if (m->n == 0)
		return dst < m->src_len ? dst : m->src_len;
	i = offmap_find(m, dst);
	if (i == m->n)
		r = m->a[0].src;
	else {
		r = m->a[i].src + (dst - m->a[i].dst);
		if (r < m->a[i].src) /* overflow */
			r = SIZE_MAX;
		if (i + 1 < m->n && r > m->a[i + 1].src)
			r = m->a[i + 1].src;
	}
	return r < m->src_len ? r : m->src_len;
}

/* Each outer anchor starts a run that is (up to its clamp) a verbatim copy of
 * the middle text; inner anchors that fall inside that copied stretch must
 * reappear in the composition at the matching outer position, or exact runs
 * of the inner map would be lost. `out` is initialized here (a previous
 * content is not freed), so it may be an uninitialized struct; on failure it
 * is left untouched. */
int ward_offmap_compose(ward_offmap *out, const ward_offmap *outer, const ward_offmap *inner)
{
	ward_offmap r;
	size_t k;
	size_t j = 0;
	int rc = 0;

	ward_offmap_init(&r, inner->src_len);
	for (k = 0; k < outer->n; k++) {
		size_t d = outer->a[k].dst;
		size_t mpos = outer->a[k].src;
		size_t span = SIZE_MAX; /* how far the copied stretch reaches in the middle text */

		if (k + 1 < outer->n) {
			size_t dspan = outer->a[k + 1].dst - d;
			size_t mspan = outer->a[k + 1].src - mpos;

			span = dspan < mspan ? dspan : mspan;
		}
		rc = ward_offmap_add(&r, d, ward_offmap_lookup(inner, mpos));
		if (rc != 0)
			goto done;
		while (j < inner->n && inner->a[j].dst <= mpos)
			j++;
		while (j < inner->n && inner->a[j].dst - mpos < span) {
			rc = ward_offmap_add(&r, d + (inner->a[j].dst - mpos), inner->a[j].src);
			if (rc != 0)
				goto done;
			j++;
		}
	}
	*out = r;
	r.a = NULL;
done:
	ward_offmap_dispose(&r);
	return rc;
}
