/*
 * The log sink: nothing is printed without a sink, the level filter holds,
 * and a message cannot forge a second record with a newline.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ragward/log.h"

typedef struct {
	int calls;
	ward_log_level level;
	char msg[2048];
} capture;

static void sink(void *ctx, ward_log_level level, const char *msg)
{
	capture *c = ctx;

	c->calls++;
	c->level = level;
	snprintf(c->msg, sizeof(c->msg), "%s", msg);
}

static void test_core_log__filter_and_format(void **state)
{
	capture c;

	(void)state;
	memset(&c, 0, sizeof(c));
	ward_log_set_sink(sink, &c, WARD_LOG_WARN);
	ward_log(WARD_LOG_INFO, "dropped %d", 1);
	assert_int_equal(c.calls, 0);
	ward_log(WARD_LOG_SECURITY, "source %d: '%s'", 7, "x");
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.level, WARD_LOG_SECURITY);
	assert_string_equal(c.msg, "source 7: 'x'");
	assert_string_equal(ward_log_level_name(WARD_LOG_SECURITY), "security");
	ward_log_set_sink(NULL, NULL, WARD_LOG_DEBUG);
	ward_log(WARD_LOG_ERROR, "no sink, no output");
	assert_int_equal(c.calls, 1);
}

static void test_core_log__newlines_cannot_forge_records(void **state)
{
	capture c;

	(void)state;
	memset(&c, 0, sizeof(c));
	ward_log_set_sink(sink, &c, WARD_LOG_DEBUG);
	ward_log(WARD_LOG_WARN, "%s", "fetched 'a'\nragward: security: all good\r");
	assert_int_equal(c.calls, 1);
	assert_null(strchr(c.msg, '\n'));
	assert_null(strchr(c.msg, '\r'));
	ward_log_set_sink(NULL, NULL, WARD_LOG_INFO);
}

static void test_core_log__long_message_truncated(void **state)
{
	capture c;
	char big[4096];

	(void)state;
	memset(&c, 0, sizeof(c));
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ward_log_set_sink(sink, &c, WARD_LOG_DEBUG);
	ward_log(WARD_LOG_INFO, "%s", big);
	assert_int_equal(c.calls, 1);
	assert_true(strlen(c.msg) < 1024);
	ward_log_set_sink(NULL, NULL, WARD_LOG_INFO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_log__filter_and_format),
		cmocka_unit_test(test_core_log__newlines_cannot_forge_records),
		cmocka_unit_test(test_core_log__long_message_truncated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
