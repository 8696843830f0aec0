/*
 * Tests for the trace flusher of query/http.c: a running server syncs the
 * trace records a batch left pending within its timer period, without any
 * further traffic, and its stop syncs what is left.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <jansson.h>

#include "ragward/retrieve.h"
#include "ragward/server.h"
#include "ragward/store.h"
#include "ragward/traces.h"
#include "tests/support/testutil.h"
#include "core/banned.h"

typedef struct {
	char *home;
	ward_store *s;
	ward_server *srv;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	ward_server_opts o;

	if (!f)
		return -1;
	f->home = tu_new_home("http-traces");
	f->s = tu_open(f->home, 0);
	ward_server_opts_init(&o);
	o.listen = "127.0.0.1:0";
	o.threads = 1;
	o.drain_s = 1;
	if (ward_server_start(&f->srv, f->home, &o) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	ward_server_stop(f->srv);
	ward_store_close(f->s);
	tu_home_free(f->home);
	free(f);
	return 0;
}

/* Appends batched records (as the server's requests do; the trace state is
 * per process) until one is left unsynced by the batch. */
static void leave_unsynced(fixture *f)
{
	json_t *rec = json_pack("{s:s, s:i}", "trace_id", "00000000000000000000000000000000", "withheld", 0);

	assert_non_null(rec);
	for (int i = 0; i < 50 && ward_trace_unsynced() == 0; i++)
		assert_int_equal(ward_trace_append(f->s, rec, WARD_TRACE_SYNC_BATCH), 0);
	json_decref(rec);
	assert_true(ward_trace_unsynced() > 0);
}

static void nap_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&t, NULL);
}

/* Must fail without the timer: nothing else would sync them. */
static void test_query_http_traces__quiet_server_syncs(void **state)
{
	fixture *f = *state;
	int waited = 0;

	leave_unsynced(f);
	while (ward_trace_unsynced() > 0 && waited < 3000) {
		nap_ms(50);
		waited += 50;
	}
	assert_int_equal(ward_trace_unsynced(), 0);
	assert_true(waited <= 1500); /* one timer period (1 s) and some slack */
}

static void test_query_http_traces__stop_syncs(void **state)
{
	fixture *f = *state;

	leave_unsynced(f);
	ward_server_stop(f->srv);
	f->srv = NULL;
	assert_int_equal(ward_trace_unsynced(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_query_http_traces__quiet_server_syncs, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_http_traces__stop_syncs, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
