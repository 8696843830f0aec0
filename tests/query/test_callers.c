/*
 * Tests for store/callers.c: add, list, revoke, authenticate (T52's token
 * cases: wrong token, one byte off, wrong length, revoked), the hash-only
 * storage and the audit events of every change.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "ragward/audit.h"
#include "ragward/callers.h"
#include "ragward/crypto.h"
#include "ragward/store.h"
#include "tests/support/testutil.h"
#include "core/banned.h"

typedef struct {
	char *home;
	ward_store *s;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->home = tu_new_home("callers");
	f->s = tu_open(f->home, WARD_STORE_SIGN);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	ward_store_close(f->s);
	tu_home_free(f->home);
	free(f);
	return 0;
}

static void add_ok(fixture *f, const char *name, const char *labels, char token[WARD_CALLER_TOKEN_LEN + 1],
                   ward_caller *c)
{
	ward_actor admin = tu_actor("admin");

	if (ward_callers_add(f->s, &admin, name, labels, token, c) != 0)
		fail_msg("add '%s': %s", name, ward_error_last()->message);
}

static void test_query_callers__add_token_format_and_hash_only(void **state)
{
	fixture *f = *state;
	char token[WARD_CALLER_TOKEN_LEN + 1], sql[256];
	uint8_t h[32];
	char hex[65];
	ward_caller c;

	add_ok(f, "agent-1", "team-b,team-a,team-a", token, &c);
	assert_int_equal(strlen(token), WARD_CALLER_TOKEN_LEN);
	assert_memory_equal(token, "rwd_", 4);
	for (size_t i = 4; i < WARD_CALLER_TOKEN_LEN; i++)
		assert_non_null(strchr("0123456789abcdef", token[i]));
	assert_string_equal(c.name, "agent-1");
	assert_string_equal(c.labels, "[\"team-a\",\"team-b\"]"); /* sorted, deduplicated */
	assert_string_equal(c.state, "active");
	/* Only the hash is stored: the token's text appears nowhere. */
	assert_int_equal(ward_sha256(h, token, strlen(token)), 0);
	ward_hex_encode_to(hex, h, 32);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM callers WHERE hex(token_sha256) = upper('%s')", hex);
	assert_int_equal(tu_query_int(f->home, sql), 1);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit_events WHERE details LIKE '%%%s%%'", token + 4);
	assert_int_equal(tu_query_int(f->home, sql), 0);
	ward_caller_dispose(&c);
}

static void test_query_callers__two_tokens_differ(void **state)
{
	fixture *f = *state;
	char t1[WARD_CALLER_TOKEN_LEN + 1], t2[WARD_CALLER_TOKEN_LEN + 1];

	add_ok(f, "a", NULL, t1, NULL);
	add_ok(f, "b", NULL, t2, NULL);
	assert_string_not_equal(t1, t2);
}

static void test_query_callers__bad_input(void **state)
{
	fixture *f = *state;
	ward_actor admin = tu_actor("admin");
	char token[WARD_CALLER_TOKEN_LEN + 1];

	assert_int_equal(ward_callers_add(f->s, &admin, "", NULL, token, NULL), WARD_EINVAL);
	assert_int_equal(ward_callers_add(f->s, &admin, "has space", NULL, token, NULL), WARD_EINVAL);
	assert_int_equal(ward_callers_add(f->s, &admin, "7up", NULL, token, NULL), WARD_EINVAL);
	assert_int_equal(ward_callers_add(f->s, &admin, "x", "UPPER", token, NULL), WARD_EINVAL);
	assert_int_equal(ward_callers_add(f->s, &admin, "x", "a,,b", token, NULL), WARD_EINVAL);
	add_ok(f, "x", "a", token, NULL);
	assert_int_equal(ward_callers_add(f->s, &admin, "x", NULL, token, NULL), WARD_EEXISTS);
	assert_string_equal(token, "");
	assert_int_equal(tu_count_rows(f->home, "callers"), 1);
}

static void test_query_callers__authenticate(void **state)
{
	fixture *f = *state;
	char token[WARD_CALLER_TOKEN_LEN + 1], other[WARD_CALLER_TOKEN_LEN + 1], bad[WARD_CALLER_TOKEN_LEN + 2];
	ward_caller c;

	add_ok(f, "reader", "docs", token, NULL);
	add_ok(f, "other", NULL, other, NULL);
	assert_int_equal(ward_callers_authenticate(f->s, token, strlen(token), &c), 0);
	assert_string_equal(c.name, "reader");
	assert_string_equal(c.labels, "[\"docs\"]");
	ward_caller_dispose(&c);

	/* the last byte differs */
	memcpy(bad, token, sizeof(token));
	bad[WARD_CALLER_TOKEN_LEN - 1] = bad[WARD_CALLER_TOKEN_LEN - 1] == 'a' ? 'b' : 'a';
	assert_int_equal(ward_callers_authenticate(f->s, bad, strlen(bad), &c), WARD_EPOLICY);
	assert_null(c.name);
	/* the first byte differs */
	memcpy(bad, token, sizeof(token));
	bad[0] = 'R';
	assert_int_equal(ward_callers_authenticate(f->s, bad, strlen(bad), &c), WARD_EPOLICY);
	/* wrong length: one byte short, one byte long */
	assert_int_equal(ward_callers_authenticate(f->s, token, strlen(token) - 1, &c), WARD_EPOLICY);
	memcpy(bad, token, sizeof(token));
	bad[WARD_CALLER_TOKEN_LEN] = 'a';
	bad[WARD_CALLER_TOKEN_LEN + 1] = '\0';
	assert_int_equal(ward_callers_authenticate(f->s, bad, strlen(bad), &c), WARD_EPOLICY);
	/* nothing, garbage, huge */
	assert_int_equal(ward_callers_authenticate(f->s, "", 0, &c), WARD_EPOLICY);
	assert_int_equal(ward_callers_authenticate(f->s, NULL, 0, &c), WARD_EPOLICY);
	assert_int_equal(ward_callers_authenticate(f->s, "rwd_", 4, &c), WARD_EPOLICY);
	{
		char *huge = malloc(1024 * 1024);
		assert_non_null(huge);
		memset(huge, 'a', 1024 * 1024);
		assert_int_equal(ward_callers_authenticate(f->s, huge, 1024 * 1024, &c), WARD_EPOLICY);
		free(huge);
	}
	/* the message never says why */
	assert_true(tu_error_has("caller token not accepted"));
	/* the other caller's token authenticates as the other caller */
	assert_int_equal(ward_callers_authenticate(f->s, other, strlen(other), &c), 0);
	assert_string_equal(c.name, "other");
	ward_caller_dispose(&c);
}

static void test_query_callers__revoke(void **state)
{
	fixture *f = *state;
	ward_actor admin = tu_actor("admin");
	char token[WARD_CALLER_TOKEN_LEN + 1], idbuf[24];
	ward_caller c, r;

	add_ok(f, "leaver", NULL, token, &c);
	snprintf(idbuf, sizeof(idbuf), "%lld", (long long)c.id);
	assert_int_equal(ward_callers_revoke(f->s, &admin, idbuf, &r), 0);
	assert_string_equal(r.state, "revoked");
	assert_non_null(r.revoked_at);
	ward_caller_dispose(&r);
	assert_int_equal(ward_callers_authenticate(f->s, token, strlen(token), &r), WARD_EPOLICY);
	assert_int_equal(ward_callers_revoke(f->s, &admin, "leaver", NULL), WARD_ESTATE);
	assert_int_equal(ward_callers_revoke(f->s, &admin, "nobody", NULL), WARD_ENOTFOUND);
	assert_int_equal(ward_callers_revoke(f->s, &admin, "99", NULL), WARD_ENOTFOUND);
	ward_caller_dispose(&c);
}

static void test_query_callers__list_never_tokens(void **state)
{
	fixture *f = *state;
	char t[WARD_CALLER_TOKEN_LEN + 1];
	ward_caller *list = NULL;
	size_t n = 0;

	add_ok(f, "one", NULL, t, NULL);
	add_ok(f, "two", "x", t, NULL);
	assert_int_equal(ward_callers_list(f->s, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "one");
	assert_string_equal(list[1].name, "two");
	assert_string_equal(list[1].labels, "[\"x\"]");
	ward_callers_free(list, n);
}

static void test_query_callers__audit_events(void **state)
{
	fixture *f = *state;
	ward_actor admin = tu_actor("admin");
	char token[WARD_CALLER_TOKEN_LEN + 1];
	ward_audit_event *ev = NULL;
	size_t n = 0;

	add_ok(f, "audited", "a", token, NULL);
	assert_int_equal(ward_callers_revoke(f->s, &admin, "audited", NULL), 0);
	assert_int_equal(ward_audit_list(f->s, 2, &ev, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ev[0].action, "caller.add");
	assert_string_equal(ev[0].subject, "caller:1");
	assert_non_null(strstr(ev[0].details, "\"token_sha256\""));
	assert_null(strstr(ev[0].details, token + 4));
	assert_string_equal(ev[1].action, "caller.revoke");
	assert_string_equal(ev[1].actor, "admin");
	ward_audit_events_free(ev, n);
	assert_int_equal(tu_verify(f->s, NULL, NULL), 0);
}

static void test_query_callers__needs_signing_store(void **state)
{
	fixture *f = *state;
	char token[WARD_CALLER_TOKEN_LEN + 1];
	ward_actor admin = tu_actor("admin");
	ward_store *ro = tu_open(f->home, 0);

	assert_true(ward_callers_add(ro, &admin, "nope", NULL, token, NULL) < 0);
	ward_store_close(ro);
	assert_int_equal(tu_count_rows(f->home, "callers"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_query_callers__add_token_format_and_hash_only, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_callers__two_tokens_differ, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_callers__bad_input, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_callers__authenticate, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_callers__revoke, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_callers__list_never_tokens, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_callers__audit_events, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_callers__needs_signing_store, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
