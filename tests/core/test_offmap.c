#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ragward/alloc.h"
#include "ragward/error.h"
#include "ragward/offmap.h"
#include "core/banned.h"

static int teardown(void **state)
{
	(void)state;
	ward_alloc_fail_reset();
	ward_error_clear();
	return 0;
}

static void test_core_offmap__empty_is_clamped_identity(void **state)
{
	ward_offmap m;

	(void)state;
	ward_offmap_init(&m, 10);
	assert_int_equal(ward_offmap_lookup(&m, 3), 3);
	assert_int_equal(ward_offmap_lookup(&m, 99), 10);
	ward_offmap_dispose(&m);
}

static void test_core_offmap__verbatim_runs_map_exactly(void **state)
{
	ward_offmap m;

	(void)state;
	/* "ab<x>cd" -> "abcd": anchors (0,0) and (2,5) */
	ward_offmap_init(&m, 7);
	assert_int_equal(ward_offmap_add(&m, 0, 0), 0);
	assert_int_equal(ward_offmap_add(&m, 1, 1), 0); /* same diagonal: merged */
	assert_int_equal(ward_offmap_add(&m, 2, 5), 0);
	assert_int_equal(m.n, 2);
	assert_int_equal(ward_offmap_lookup(&m, 0), 0);
	assert_int_equal(ward_offmap_lookup(&m, 1), 1);
	assert_int_equal(ward_offmap_lookup(&m, 2), 5);
	assert_int_equal(ward_offmap_lookup(&m, 3), 6);
	assert_int_equal(ward_offmap_lookup(&m, 4), 7);
	assert_int_equal(ward_offmap_lookup(&m, 100), 7); /* clamped to src_len */
	ward_offmap_dispose(&m);
}

static void test_core_offmap__replaced_run_clamps_to_next_anchor(void **state)
{
	ward_offmap m;

	(void)state;
	/* "&amp;x" -> "&x": '&' replaces 5 bytes, then x at 5 */
	ward_offmap_init(&m, 6);
	assert_int_equal(ward_offmap_add(&m, 0, 0), 0);
	assert_int_equal(ward_offmap_add(&m, 1, 5), 0);
	assert_int_equal(ward_offmap_lookup(&m, 0), 0);
	assert_int_equal(ward_offmap_lookup(&m, 1), 5);
	ward_offmap_dispose(&m);
	/* expansion: 1 source byte became 3 derived bytes: clamp to the next src */
	ward_offmap_init(&m, 10);
	assert_int_equal(ward_offmap_add(&m, 0, 2), 0);
	assert_int_equal(ward_offmap_add(&m, 3, 3), 0);
	assert_int_equal(ward_offmap_lookup(&m, 1), 3);
	assert_int_equal(ward_offmap_lookup(&m, 2), 3);
	ward_offmap_dispose(&m);
}

static void test_core_offmap__backwards_is_einval(void **state)
{
	ward_offmap m;

	(void)state;
	ward_offmap_init(&m, 10);
	assert_int_equal(ward_offmap_add(&m, 5, 5), 0);
	assert_int_equal(ward_offmap_add(&m, 4, 6), WARD_EINVAL);
	assert_int_equal(ward_offmap_add(&m, 6, 4), WARD_EINVAL);
	/* same dst: the later anchor wins */
	assert_int_equal(ward_offmap_add(&m, 5, 8), 0);
	assert_int_equal(ward_offmap_lookup(&m, 5), 8);
	ward_offmap_dispose(&m);
}

/* Deletion maps compose exactly: brute force against two lookups. */
static void test_core_offmap__compose_matches_two_lookups(void **state)
{
	ward_offmap outer, inner, c;
	size_t p;

	(void)state;
	/* inner: source 0..40, derived drops [5,10) and [20,22) */
	ward_offmap_init(&inner, 40);
	assert_int_equal(ward_offmap_add(&inner, 0, 0), 0);
	assert_int_equal(ward_offmap_add(&inner, 5, 10), 0);
	assert_int_equal(ward_offmap_add(&inner, 15, 22), 0);
	/* outer over inner's derived text (33 long): drops [3,4) and [12,18) */
	ward_offmap_init(&outer, 33);
	assert_int_equal(ward_offmap_add(&outer, 0, 0), 0);
	assert_int_equal(ward_offmap_add(&outer, 3, 4), 0);
	assert_int_equal(ward_offmap_add(&outer, 11, 18), 0);
	assert_int_equal(ward_offmap_compose(&c, &outer, &inner), 0);
	assert_int_equal(c.src_len, 40);
	for (p = 0; p < 26; p++)
		assert_int_equal(ward_offmap_lookup(&c, p), ward_offmap_lookup(&inner, ward_offmap_lookup(&outer, p)));
	ward_offmap_dispose(&c);
	ward_offmap_dispose(&outer);
	ward_offmap_dispose(&inner);
}

static void test_core_offmap__add_out_of_memory(void **state)
{
	ward_offmap m;
	size_t i;
	int rc = 0;

	(void)state;
	ward_offmap_init(&m, 1000);
	ward_alloc_fail_after(0);
	for (i = 0; i < 100 && rc == 0; i++)
		rc = ward_offmap_add(&m, i * 2, i * 3);
	assert_int_equal(rc, WARD_ENOMEM);
	ward_alloc_fail_reset();
	ward_offmap_dispose(&m);
	ward_offmap_dispose(&m); /* idempotent */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_core_offmap__empty_is_clamped_identity, teardown),
	        cmocka_unit_test_teardown(test_core_offmap__verbatim_runs_map_exactly, teardown),
	        cmocka_unit_test_teardown(test_core_offmap__replaced_run_clamps_to_next_anchor, teardown),
	        cmocka_unit_test_teardown(test_core_offmap__backwards_is_einval, teardown),
	        cmocka_unit_test_teardown(test_core_offmap__compose_matches_two_lookups, teardown),
	        cmocka_unit_test_teardown(test_core_offmap__add_out_of_memory, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
