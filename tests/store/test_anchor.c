/*
 * The anchor outside the database: refreshed after every commit, or once at
 * flush/close when a batch run defers it; an older anchor stays consistent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "ragward/alloc.h"
#include "ragward/audit.h"
#include "ragward/sources.h"
#include "support/testutil.h"

static uint64_t anchor_size(const char *home)
{
	ward_checkpoint c;
	char *p = tu_path(home, "anchor.checkpoint");

	assert_int_equal(ward_checkpoint_read_file(&c, p), 0);
	ward_free(p);
	return c.size;
}

static void request(ward_store *s, const char *name)
{
	ward_source_request req;
	ward_actor alice = tu_actor("alice");
	int64_t id;

	memset(&req, 0, sizeof(req));
	req.name = name;
	req.pattern = "https://docs.example.com/";
	assert_int_equal(ward_sources_request(s, &alice, &req, &id), 0);
}

static void test_store_anchor__deferred_until_close(void **state)
{
	char *home = tu_new_home("anchor");
	ward_store *s = tu_open(home, WARD_STORE_SIGN);
	uint64_t before;

	(void)state;
	request(s, "a");
	before = anchor_size(home); /* refreshed right after that commit */
	assert_int_equal(before, (uint64_t)tu_count_rows(home, "audit_events"));

	ward_store_defer_anchor(s, 1);
	request(s, "b");
	request(s, "c");
	assert_int_equal(anchor_size(home), before); /* not yet */
	assert_int_equal(tu_verify_home(home, NULL, NULL), 0); /* an older anchor is consistent */
	ward_store_close(s);
	assert_int_equal(anchor_size(home), before + 2); /* close flushed it */
	assert_int_equal(tu_verify_home(home, NULL, NULL), 0);
	tu_home_free(home);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_anchor__deferred_until_close),
	};
	ward_alloc_install_jansson();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
