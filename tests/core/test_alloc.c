#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "ragward/alloc.h"
#include "core/banned.h"

static int teardown(void **state)
{
	(void)state;
	ward_alloc_fail_reset();
	return 0;
}

static void test_core_alloc__count(void **state)
{
	void *a;
	void *b;

	(void)state;
	ward_alloc_fail_reset();
	assert_int_equal(ward_alloc_count(), 0);
	a = ward_malloc(10);
	b = ward_calloc(2, 8);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(ward_alloc_count(), 2);
	ward_free(a);
	ward_free(b);
	assert_int_equal(ward_alloc_count(), 2);
	ward_alloc_fail_reset();
	assert_int_equal(ward_alloc_count(), 0);
}

static void test_core_alloc__fail_after_counts_then_fails_all(void **state)
{
	void *p[2];
	char *s;

	(void)state;
	ward_alloc_fail_reset();
	ward_alloc_fail_after(2);
	p[0] = ward_malloc(1);
	assert_false(ward_alloc_failed());
	p[1] = ward_malloc(1);
	assert_non_null(p[0]);
	assert_non_null(p[1]);
	assert_false(ward_alloc_failed());
	assert_null(ward_malloc(1));
	assert_true(ward_alloc_failed());
	assert_null(ward_calloc(1, 1));
	assert_null(ward_realloc(p[0], 100)); /* p[0] stays valid */
	assert_null(ward_strdup("x"));
	assert_null(ward_strndup("xyz", 2));
	ward_alloc_fail_reset();
	assert_false(ward_alloc_failed());
	s = ward_strdup("ok");
	assert_string_equal(s, "ok");
	ward_free(s);
	ward_free(p[0]);
	ward_free(p[1]);
}

static void test_core_alloc__fail_after_zero_fails_first(void **state)
{
	(void)state;
	ward_alloc_fail_after(0);
	assert_null(ward_malloc(1));
	assert_true(ward_alloc_failed());
	ward_alloc_fail_after(-1);
	assert_false(ward_alloc_failed());
	{
		void *p = ward_malloc(1);
		assert_non_null(p);
		ward_free(p);
	}
}

static void test_core_alloc__calloc_overflow(void **state)
{
	(void)state;
	assert_null(ward_calloc(SIZE_MAX / 2 + 1, 2));
	assert_null(ward_calloc(2, SIZE_MAX / 2 + 1));
	assert_null(ward_calloc(SIZE_MAX, SIZE_MAX));
}

static void test_core_alloc__calloc_zeroes(void **state)
{
	unsigned char zero[64] = {0};
	unsigned char *p;

	(void)state;
	p = ward_calloc(8, 8);
	assert_non_null(p);
	assert_memory_equal(p, zero, sizeof(zero));
	ward_free(p);
}

static void test_core_alloc__zero_size_is_not_null(void **state)
{
	void *p;
	void *q;

	(void)state;
	p = ward_malloc(0);
	assert_non_null(p);
	q = ward_realloc(p, 0);
	assert_non_null(q);
	ward_free(q);
	p = ward_calloc(0, 5);
	assert_non_null(p);
	ward_free(p);
	ward_free(NULL);
}

static void test_core_alloc__strdup_strndup(void **state)
{
	char *a;
	char *b;
	char *c;

	(void)state;
	a = ward_strdup("hello");
	b = ward_strndup("hello", 3);
	c = ward_strndup("hi", 10);
	assert_string_equal(a, "hello");
	assert_string_equal(b, "hel");
	assert_string_equal(c, "hi");
	assert_null(ward_strdup(NULL));
	ward_free(a);
	ward_free(b);
	ward_free(c);
}

static void test_core_alloc__realloc_keeps_contents(void **state)
{
	char *p;

	(void)state;
	p = ward_malloc(4);
	assert_non_null(p);
	memcpy(p, "abc", 4);
	p = ward_realloc(p, 4096);
	assert_non_null(p);
	assert_string_equal(p, "abc");
	ward_free(p);
}

static void test_core_alloc__jansson_goes_through_hook(void **state)
{
	json_t *o;
	long before;

	(void)state;
	ward_alloc_install_jansson();
	ward_alloc_fail_reset();
	before = ward_alloc_count();
	o = json_pack("{s:s}", "k", "v");
	assert_non_null(o);
	assert_true(ward_alloc_count() > before);
	json_decref(o);

	ward_alloc_fail_after(0);
	o = json_object();
	assert_null(o);
	assert_true(ward_alloc_failed());
	ward_alloc_fail_reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_core_alloc__count, teardown),
		cmocka_unit_test_teardown(test_core_alloc__fail_after_counts_then_fails_all, teardown),
		cmocka_unit_test_teardown(test_core_alloc__fail_after_zero_fails_first, teardown),
		cmocka_unit_test_teardown(test_core_alloc__calloc_overflow, teardown),
		cmocka_unit_test_teardown(test_core_alloc__calloc_zeroes, teardown),
		cmocka_unit_test_teardown(test_core_alloc__zero_size_is_not_null, teardown),
		cmocka_unit_test_teardown(test_core_alloc__strdup_strndup, teardown),
		cmocka_unit_test_teardown(test_core_alloc__realloc_keeps_contents, teardown),
		cmocka_unit_test_teardown(test_core_alloc__jansson_goes_through_hook, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
