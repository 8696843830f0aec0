#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "ragward/error.h"
#include "core/banned.h"

static void test_core_error__set_returns_code_and_message(void **state)
{
	(void)state;
	assert_int_equal(ward_error_set(WARD_EPOLICY, "source '%s': not approved", "x"), WARD_EPOLICY);
	assert_int_equal(ward_error_last()->code, WARD_EPOLICY);
	assert_string_equal(ward_error_last()->message, "source 'x': not approved");
	ward_error_clear();
	assert_int_equal(ward_error_last()->code, WARD_OK);
	assert_string_equal(ward_error_last()->message, "");
}

static void test_core_error__wrap_prefixes_and_keeps_code(void **state)
{
	(void)state;
	ward_error_set(WARD_EDB, "disk full");
	assert_int_equal(ward_error_wrap("opening store '%s'", "a.db"), WARD_EDB);
	assert_int_equal(ward_error_last()->code, WARD_EDB);
	assert_string_equal(ward_error_last()->message, "opening store 'a.db': disk full");
	ward_error_clear();
}

static void test_core_error__wrap_with_own_message_as_argument(void **state)
{
	(void)state;
	ward_error_set(WARD_EIO, "inner");
	ward_error_wrap("outer [%s]", ward_error_last()->message);
	assert_string_equal(ward_error_last()->message, "outer [inner]: inner");
	ward_error_clear();
}

static void test_core_error__wrap_truncates_safely(void **state)
{
	char big[600];
	const ward_error *e;

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ward_error_set(WARD_EINVAL, "%s", big);
	e = ward_error_last();
	assert_int_equal(strlen(e->message), sizeof(e->message) - 1);
	ward_error_wrap("ctx");
	assert_int_equal(strlen(e->message), sizeof(e->message) - 1);
	assert_memory_equal(e->message, "ctx: aaa", 8);
	assert_int_equal(e->code, WARD_EINVAL);
	ward_error_clear();
}

static void test_core_error__truncation_keeps_utf8_whole(void **state)
{
	char big[520];
	const ward_error *e;
	size_t len;

	(void)state;
	/* 510 ASCII bytes, then a 2-byte character straddling the 511-byte limit. */
	memset(big, 'a', 510);
	big[510] = (char)0xC3;
	big[511] = (char)0xA9;
	big[512] = '\0';
	ward_error_set(WARD_EINVAL, "%s", big);
	e = ward_error_last();
	len = strlen(e->message);
	assert_int_equal(len, 510);
	assert_int_equal((unsigned char)e->message[len - 1], 'a');
	ward_error_clear();
}

static void test_core_error__message_is_one_line(void **state)
{
	(void)state;
	ward_error_set(WARD_EINVAL, "bad name '%s'", "a\nb\rc");
	assert_string_equal(ward_error_last()->message, "bad name 'a b c'");
	ward_error_clear();
}

static void test_core_error__wrap_without_previous_message(void **state)
{
	(void)state;
	ward_error_clear();
	ward_error_wrap("context");
	assert_string_equal(ward_error_last()->message, "context");
	assert_int_equal(ward_error_last()->code, WARD_OK);
}

static void test_core_error__names(void **state)
{
	static const struct {
		int code;
		const char *name;
	} names[] = {
		{WARD_OK, "OK"},           {WARD_ENOMEM, "ENOMEM"},       {WARD_EINVAL, "EINVAL"},
		{WARD_EIO, "EIO"},         {WARD_EDB, "EDB"},             {WARD_ETOOBIG, "ETOOBIG"},
		{WARD_EPOLICY, "EPOLICY"}, {WARD_EVERIFY, "EVERIFY"},     {WARD_ENOTFOUND, "ENOTFOUND"},
		{WARD_EEXISTS, "EEXISTS"}, {WARD_ESTATE, "ESTATE"},       {WARD_EKEY, "EKEY"},
		{WARD_ECRYPTO, "ECRYPTO"}, {WARD_ESCHEMA, "ESCHEMA"},     {WARD_EBUSY, "EBUSY"},
		{WARD_EVERSION, "EVERSION"}, {WARD_ENET, "ENET"},         {WARD_ETIMEOUT, "ETIMEOUT"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_string_equal(ward_error_name(names[i].code), names[i].name);
	assert_string_equal(ward_error_name(-999), "EUNKNOWN");
	assert_string_equal(ward_error_name(1), "EUNKNOWN");
}

static void *other_thread(void *arg)
{
	(void)arg;
	ward_error_set(WARD_ENET, "other thread");
	return NULL;
}

static void test_core_error__thread_local(void **state)
{
	pthread_t t;

	(void)state;
	ward_error_set(WARD_EIO, "main thread");
	assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(ward_error_last()->code, WARD_EIO);
	assert_string_equal(ward_error_last()->message, "main thread");
	ward_error_clear();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_error__set_returns_code_and_message),
		cmocka_unit_test(test_core_error__wrap_prefixes_and_keeps_code),
		cmocka_unit_test(test_core_error__wrap_with_own_message_as_argument),
		cmocka_unit_test(test_core_error__wrap_truncates_safely),
		cmocka_unit_test(test_core_error__truncation_keeps_utf8_whole),
		cmocka_unit_test(test_core_error__message_is_one_line),
		cmocka_unit_test(test_core_error__wrap_without_previous_message),
		cmocka_unit_test(test_core_error__names),
		cmocka_unit_test(test_core_error__thread_local),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
