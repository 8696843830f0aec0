/* The normalizer and decoders: UTF-8 validation, NFKC case-fold, confusable
 * skeleton, the recursive base64/hex/percent/rot13/tag decoders and the
 * invisible-character inventory. */
#include "fuzz_common.h"
#include "core/limits.h"
#include "ragward/normalize.h"

#define FUZZ_MAX_INPUT (64 * 1024)

static void check_view(const ward_view *v, size_t rawlen)
{
	size_t i, prev = 0, step;

	FUZZ_CHECK(v->text != NULL);
	FUZZ_CHECK(v->text[v->len] == '\0');
	FUZZ_CHECK(ward_utf8_valid(v->text, v->len, NULL));
	step = v->len / 64 + 1;
	for (i = 0; i <= v->len; i += step) {
		size_t o = ward_offmap_lookup(&v->map, i);

		FUZZ_CHECK(o <= rawlen);
		FUZZ_CHECK(o >= prev);
		prev = o;
	}
	FUZZ_CHECK(ward_offmap_lookup(&v->map, v->len) <= rawlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	ward_normalized *n = NULL;
	size_t bad = (size_t)-1, i;
	int valid, rc;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	valid = ward_utf8_valid(s, size, &bad);
	FUZZ_CHECK(valid == 0 || valid == 1);
	if (!valid)
		FUZZ_CHECK(bad < size);
	rc = ward_normalize(&n, s, size);
	if (!valid) {
		FUZZ_CHECK(rc == WARD_EINVAL);
		FUZZ_CHECK(n == NULL);
		return 0;
	}
	if (rc != 0) {
		/* Valid input fails only by adversarial expansion. */
		FUZZ_CHECK(rc == WARD_ETOOBIG);
		FUZZ_CHECK(n == NULL);
		return 0;
	}
	FUZZ_CHECK(n != NULL);
	for (i = 0; i < WARD_VIEW_COUNT; i++) {
		FUZZ_CHECK(n->views[i].kind == (ward_view_kind)i);
		check_view(&n->views[i], size);
	}
	/* The raw view is the input. */
	FUZZ_CHECK(n->views[WARD_VIEW_RAW].len == size);
	FUZZ_CHECK(size == 0 || memcmp(n->views[WARD_VIEW_RAW].text, s, size) == 0);
	if (n->ascii_only) {
		for (i = 0; i < size; i++)
			FUZZ_CHECK(data[i] < 0x80);
		FUZZ_CHECK(n->ninvisible == 0);
	}
	FUZZ_CHECK(n->ninvisible <= WARD_MAX_INVISIBLE_RUNS);
	for (i = 0; i < n->ninvisible; i++) {
		const ward_invisible *iv = &n->invisible[i];

		FUZZ_CHECK(iv->start <= iv->end && iv->end <= size);
		FUZZ_CHECK(iv->count >= 1);
		FUZZ_CHECK(iv->count <= iv->end - iv->start);
		FUZZ_CHECK(ward_invisible_name(iv->kind) != NULL);
		if (iv->decoded)
			FUZZ_CHECK(ward_utf8_valid(iv->decoded, strlen(iv->decoded), NULL));
	}
	FUZZ_CHECK(n->views[WARD_VIEW_FOLDED].len <= (size_t)WARD_NORMALIZE_MAX_GROWTH * size + 64);
	ward_normalized_free(n);
	return 0;
}
