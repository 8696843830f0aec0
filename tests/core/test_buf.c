#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "ragward/error.h"
#include "core/banned.h"

static int teardown(void **state)
{
	(void)state;
	ward_alloc_fail_reset();
	ward_error_clear();
	return 0;
}

static void test_core_buf__init_is_empty(void **state)
{
	ward_buf b;
	char *s;
	size_t len = 99;

	(void)state;
	ward_buf_init(&b, 10);
	assert_null(b.ptr);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.err, 0);
	/* detach of an empty buffer still yields a string */
	assert_int_equal(ward_buf_detach(&b, &s, &len), 0);
	assert_non_null(s);
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	ward_free(s);
	ward_buf_dispose(&b);
}

static void test_core_buf__append_and_terminator(void **state)
{
	ward_buf b;

	(void)state;
	ward_buf_init(&b, 1024);
	assert_int_equal(ward_buf_append(&b, "ab", 2), 0);
	assert_int_equal(ward_buf_puts(&b, "cd"), 0);
	assert_int_equal(ward_buf_putc(&b, 'e'), 0);
	assert_int_equal(ward_buf_append(&b, "", 0), 0);
	assert_int_equal(b.len, 5);
	assert_string_equal(b.ptr, "abcde");
	/* binary data with an embedded NUL is kept and still terminated */
	assert_int_equal(ward_buf_append(&b, "x\0y", 3), 0);
	assert_int_equal(b.len, 8);
	assert_memory_equal(b.ptr, "abcdex\0y", 9);
	ward_buf_dispose(&b);
	assert_null(b.ptr);
	assert_int_equal(b.len, 0);
	ward_buf_dispose(NULL);
}

static void test_core_buf__cap_exact(void **state)
{
	ward_buf b;

	(void)state;
	ward_buf_init(&b, 8);
	assert_int_equal(ward_buf_append(&b, "12345678", 8), 0);
	assert_int_equal(b.len, 8);
	assert_true(b.cap <= 9);
	assert_string_equal(b.ptr, "12345678");

	assert_int_equal(ward_buf_putc(&b, '9'), WARD_ETOOBIG);
	assert_int_equal(ward_error_last()->code, WARD_ETOOBIG);
	assert_int_equal(b.err, WARD_ETOOBIG);
	assert_int_equal(b.len, 8);
	assert_string_equal(b.ptr, "12345678");

	/* sticky: even an append that would fit now fails, contents untouched */
	ward_error_clear();
	assert_int_equal(ward_buf_append(&b, "", 0), WARD_ETOOBIG);
	assert_int_equal(ward_buf_puts(&b, "x"), WARD_ETOOBIG);
	assert_int_equal(ward_buf_printf(&b, "%d", 1), WARD_ETOOBIG);
	assert_int_equal(ward_error_last()->code, WARD_ETOOBIG);
	assert_int_equal(b.len, 8);
	assert_string_equal(b.ptr, "12345678");

	ward_buf_reset(&b);
	assert_int_equal(b.err, 0);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.ptr, "");
	assert_int_equal(ward_buf_puts(&b, "again"), 0);
	assert_string_equal(b.ptr, "again");
	ward_buf_dispose(&b);
}

static void test_core_buf__cap_one_over_in_one_append(void **state)
{
	ward_buf b;
	char *s = NULL;
	size_t len = 0;

	(void)state;
	ward_buf_init(&b, 4);
	assert_int_equal(ward_buf_puts(&b, "ab"), 0);
	assert_int_equal(ward_buf_append(&b, "cde", 3), WARD_ETOOBIG);
	assert_string_equal(b.ptr, "ab");
	assert_int_equal(ward_buf_detach(&b, &s, &len), WARD_ETOOBIG);
	assert_null(s);
	ward_buf_dispose(&b);
}

static void test_core_buf__zero_max(void **state)
{
	ward_buf b;

	(void)state;
	ward_buf_init(&b, 0);
	assert_int_equal(ward_buf_append(&b, "", 0), 0);
	assert_int_equal(ward_buf_putc(&b, 'a'), WARD_ETOOBIG);
	ward_buf_dispose(&b);
}

static void test_core_buf__huge_append_does_not_overflow(void **state)
{
	ward_buf b;

	(void)state;
	ward_buf_init(&b, SIZE_MAX);
	assert_int_equal(ward_buf_puts(&b, "abc"), 0);
	/* len + n would wrap; must be refused, not wrapped into a small realloc */
	assert_int_equal(ward_buf_append(&b, "x", SIZE_MAX - 2), WARD_ETOOBIG);
	assert_string_equal(b.ptr, "abc");
	ward_buf_dispose(&b);
}

static void test_core_buf__growth_capped_at_max_plus_one(void **state)
{
	ward_buf b;
	size_t i;

	(void)state;
	ward_buf_init(&b, 1000);
	for (i = 0; i < 1000; i++)
		assert_int_equal(ward_buf_putc(&b, 'a'), 0);
	assert_int_equal(b.len, 1000);
	assert_true(b.cap >= 1001);
	assert_true(b.cap <= 1001);
	assert_int_equal(ward_buf_putc(&b, 'a'), WARD_ETOOBIG);
	ward_buf_dispose(&b);
}

static void test_core_buf__enomem_is_sticky(void **state)
{
	ward_buf b;

	(void)state;
	ward_buf_init(&b, 1 << 20);
	assert_int_equal(ward_buf_puts(&b, "keep"), 0);
	/* the first append allocated 64 bytes; force a realloc to fail */
	ward_alloc_fail_after(0);
	{
		char big[200];
		memset(big, 'z', sizeof(big));
		assert_int_equal(ward_buf_append(&b, big, sizeof(big)), WARD_ENOMEM);
	}
	assert_int_equal(ward_error_last()->code, WARD_ENOMEM);
	assert_int_equal(b.err, WARD_ENOMEM);
	assert_string_equal(b.ptr, "keep");
	ward_alloc_fail_reset();
	assert_int_equal(ward_buf_putc(&b, 'x'), WARD_ENOMEM);
	assert_string_equal(b.ptr, "keep");
	ward_buf_reset(&b);
	assert_int_equal(ward_buf_putc(&b, 'x'), 0);
	assert_string_equal(b.ptr, "x");
	ward_buf_dispose(&b);
}

static void test_core_buf__enomem_on_first_append(void **state)
{
	ward_buf b;

	(void)state;
	ward_buf_init(&b, 100);
	ward_alloc_fail_after(0);
	assert_int_equal(ward_buf_puts(&b, "a"), WARD_ENOMEM);
	assert_null(b.ptr);
	ward_alloc_fail_reset();
	ward_buf_dispose(&b);
}

static void test_core_buf__printf(void **state)
{
	ward_buf b;
	char *s = NULL;
	size_t len = 0;
	int i;

	(void)state;
	ward_buf_init(&b, 4096);
	assert_int_equal(ward_buf_printf(&b, "%s=%d", "n", 42), 0);
	assert_int_equal(ward_buf_printf(&b, "%s", ""), 0);
	for (i = 0; i < 100; i++)
		assert_int_equal(ward_buf_printf(&b, ",%03d", i), 0);
	assert_int_equal(b.len, 4 + 100 * 4);
	assert_memory_equal(b.ptr, "n=42,000,001", 12);
	assert_int_equal(ward_buf_detach(&b, &s, &len), 0);
	assert_int_equal(len, 404);
	assert_int_equal(strlen(s), 404);
	assert_null(b.ptr);
	assert_int_equal(b.len, 0);
	ward_free(s);
	ward_buf_dispose(&b);
}

static void test_core_buf__printf_cap(void **state)
{
	ward_buf b;

	(void)state;
	ward_buf_init(&b, 6);
	assert_int_equal(ward_buf_printf(&b, "%d", 123), 0);
	assert_int_equal(ward_buf_printf(&b, "%d", 456), 0); /* exactly max */
	assert_string_equal(b.ptr, "123456");
	ward_buf_reset(&b);
	assert_int_equal(ward_buf_printf(&b, "%s", "abcd"), 0);
	assert_int_equal(ward_buf_printf(&b, "%s", "efg"), WARD_ETOOBIG);
	assert_string_equal(b.ptr, "abcd");
	assert_int_equal(b.len, 4);
	assert_int_equal(ward_buf_printf(&b, "%s", ""), WARD_ETOOBIG);
	ward_buf_dispose(&b);
}

static void test_core_buf__dispose_secure(void **state)
{
	ward_buf b;

	(void)state;
	ward_buf_init(&b, 100);
	assert_int_equal(ward_buf_puts(&b, "secret"), 0);
	ward_buf_dispose_secure(&b);
	assert_null(b.ptr);
	assert_int_equal(b.len, 0);
	ward_buf_dispose_secure(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_core_buf__init_is_empty, teardown),
		cmocka_unit_test_teardown(test_core_buf__append_and_terminator, teardown),
		cmocka_unit_test_teardown(test_core_buf__cap_exact, teardown),
		cmocka_unit_test_teardown(test_core_buf__cap_one_over_in_one_append, teardown),
		cmocka_unit_test_teardown(test_core_buf__zero_max, teardown),
		cmocka_unit_test_teardown(test_core_buf__huge_append_does_not_overflow, teardown),
		cmocka_unit_test_teardown(test_core_buf__growth_capped_at_max_plus_one, teardown),
		cmocka_unit_test_teardown(test_core_buf__enomem_is_sticky, teardown),
		cmocka_unit_test_teardown(test_core_buf__enomem_on_first_append, teardown),
		cmocka_unit_test_teardown(test_core_buf__printf, teardown),
		cmocka_unit_test_teardown(test_core_buf__printf_cap, teardown),
		cmocka_unit_test_teardown(test_core_buf__dispose_secure, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
