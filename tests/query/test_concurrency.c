/*
 * Readers and a writer at once (T36, T40 and T55 in part). These tests are
 * also what the ThreadSanitizer build runs (`scripts/test tsan`): the point
 * is as much the data-race check over the server's pool, the process-wide
 * caches and the trace writer as the assertions below.
 *
 * 1. The server, 4 worker threads, answers 3 client threads' searches while
 *    the test ingests documents, revokes a source and reloads: every answer
 *    is a 200, nothing is withheld, no request sent after the revocation
 *    committed gets the revoked source's chunks, and the new documents are
 *    all served at the end.
 * 2. The library: 2 threads, each with its own read-only store handle (a
 *    handle is one thread's at a time), call ward_retrieve while the test
 *    ingests. The term-statistics and verification caches and the trace
 *    writer are shared by the threads.
 *
 * cmocka's assertions may only run on the test's own thread: the workers
 * count what they see, and the test asserts on the counts after joining.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "ragward/buf.h"
#include "ragward/callers.h"
#include "ragward/retrieve.h"
#include "ragward/server.h"
#include "ragward/sources.h"
#include "ragward/store.h"
#include "tests/support/testutil.h"
#include "core/banned.h"

#define NDOCS_BEFORE 10 /* per source */
#define NDOCS_DURING 20 /* source B, while the readers run */

typedef struct {
	char *home;
	ward_store *s; /* the writer */
	int64_t src_a, src_b;
} fixture;

/* What one reader thread saw. */
typedef struct {
	uint16_t port;          /* HTTP readers */
	const char *token;
	ward_store *store;      /* library readers: their own handle */
	const atomic_int *stop;
	const atomic_int *revoked; /* 1 once the revocation of source A committed */
	int64_t src_a;
	atomic_long requests;   /* read by the test's thread while running */
	long failures, violations, withheld;
	char first_error[256];
} reader;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	char uri[128], text[160];

	if (!f)
		return -1;
	f->home = tu_new_home("concurrency");
	f->s = tu_open(f->home, WARD_STORE_SIGN);
	f->src_a = tu_add_source(f->s, "alpha", "https://a.example.com/", NULL);
	f->src_b = tu_add_source(f->s, "beta", "https://b.example.com/", NULL);
	for (int i = 0; i < NDOCS_BEFORE; i++) {
		snprintf(uri, sizeof(uri), "https://a.example.com/walrus/%d", i);
		snprintf(text, sizeof(text), "walrus tusk migration notes, alpha edition %d", i);
		tu_add_doc(f->s, f->src_a, uri, "Walrus A", text);
		snprintf(uri, sizeof(uri), "https://b.example.com/walrus/%d", i);
		snprintf(text, sizeof(text), "walrus tusk migration notes, beta edition %d", i);
		tu_add_doc(f->s, f->src_b, uri, "Walrus B", text);
	}
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

static void note_error(reader *r, const char *fmt, ...)
{
	va_list ap;

	r->failures++;
	if (r->first_error[0])
		return;
	va_start(ap, fmt);
	vsnprintf(r->first_error, sizeof(r->first_error), fmt, ap);
	va_end(ap);
}

/* Counts, in a search result, the chunks of `src` (and adds up withheld). */
static void tally(reader *r, const json_t *res, int after_revocation)
{
	json_t *item;
	size_t i;

	r->withheld += (long)json_integer_value(json_object_get(res, "withheld"));
	json_array_foreach(json_object_get(res, "results"), i, item) {
		json_int_t src = json_integer_value(json_object_get(json_object_get(item, "citation"), "source_id"));
		if (after_revocation && src == r->src_a)
			r->violations++;
	}
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	return ward_buf_append(ud, p, sz * n) == 0 ? sz * n : 0;
}

static void *http_reader(void *arg)
{
	static const char body[] = "{\"query\": \"walrus tusk migration\", \"k\": 10}";
	reader *r = arg;
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[64], auth[128];

	if (!c) {
		note_error(r, "curl_easy_init failed");
		return NULL;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/search", r->port);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", r->token);
	h = curl_slist_append(h, auth);
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	while (!atomic_load(r->stop)) {
		ward_buf resp;
		int after = atomic_load(r->revoked);
		long status = 0;
		CURLcode cc;
		json_t *res;

		ward_buf_init(&resp, 1 << 20);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
		cc = curl_easy_perform(c);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		atomic_fetch_add(&r->requests, 1);
		if (cc != CURLE_OK || status != 200) {
			note_error(r, "request %ld: curl %d, status %ld: %.120s", atomic_load(&r->requests), (int)cc, status,
			           resp.ptr ? resp.ptr : "");
		} else if (!(res = json_loadb(resp.ptr ? resp.ptr : "", resp.len, 0, NULL))) {
			note_error(r, "request %ld: the answer is not JSON", atomic_load(&r->requests));
		} else {
			tally(r, res, after);
			json_decref(res);
		}
		ward_buf_dispose(&resp);
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return NULL;
}

static void *library_reader(void *arg)
{
	static const char q[] = "walrus tusk migration";
	reader *r = arg;
	ward_retrieve_opts o;

	ward_retrieve_opts_init(&o);
	o.k = 10;
	o.filter.all_labels = 1;
	o.caller = "concurrency-test";
	while (!atomic_load(r->stop)) {
		int after = atomic_load(r->revoked);
		json_t *res = NULL;

		atomic_fetch_add(&r->requests, 1);
		if (ward_retrieve(r->store, q, strlen(q), &o, &res) != 0) {
			note_error(r, "retrieve %ld: %s", atomic_load(&r->requests), ward_error_last()->message);
			continue;
		}
		tally(r, res, after);
		json_decref(res);
	}
	return NULL;
}

static long total_requests(reader *r, size_t n)
{
	long sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += atomic_load(&r[i].requests);
	return sum;
}

/* Lets the readers run until they have made `more` requests beyond `from`
 * (bounded: 60 s, far above what a loaded 2-core machine needs). */
static void let_readers_run(reader *r, size_t n, long more)
{
	long from = total_requests(r, n);
	struct timespec ts = {0, 20 * 1000 * 1000};

	for (int i = 0; i < 3000 && total_requests(r, n) < from + more; i++)
		nanosleep(&ts, NULL);
}

/* The writer's part, the same for both tests: ingest, revoke source A half
 * way (then set *revoked), reload the server now and then. */
static void write_while_reading(fixture *f, ward_server *srv, atomic_int *revoked, reader *r, size_t n)
{
	ward_actor carol = tu_actor("carol");
	char uri[128], text[160];

	for (int i = 0; i < NDOCS_DURING; i++) {
		snprintf(uri, sizeof(uri), "https://b.example.com/walrus/new-%d", i);
		snprintf(text, sizeof(text), "walrus tusk migration notes, late beta edition %d", i);
		tu_add_doc(f->s, f->src_b, uri, "Walrus B late", text);
		if (i == NDOCS_DURING / 2) {
			if (ward_sources_decide(f->s, &carol, f->src_a, WARD_DECIDE_REVOKE, "compromised") != 0)
				fail_msg("revoke: %s", ward_error_last()->message);
			atomic_store(revoked, 1);
		}
		if (srv && i % 5 == 0)
			ward_server_reload(srv);
		let_readers_run(r, n, 2);
	}
	let_readers_run(r, n, 20);
}

static void check_readers(reader *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (r[i].failures)
			fail_msg("reader %zu: %ld of %ld requests failed; first: %s", i, r[i].failures, atomic_load(&r[i].requests),
			         r[i].first_error);
		assert_int_equal(r[i].violations, 0);
		assert_int_equal(r[i].withheld, 0);
		assert_true(atomic_load(&r[i].requests) > 0);
	}
}

static void test_query_concurrency__server_readers_and_a_writer(void **state)
{
	fixture *f = *state;
	ward_actor admin = tu_actor("admin");
	char token[WARD_CALLER_TOKEN_LEN + 1];
	ward_server_opts o;
	ward_server *srv = NULL;
	atomic_int stop = 0, revoked = 0;
	reader r[3];
	pthread_t th[3];
	ward_retrieve_opts qo;
	json_t *res = NULL, *item;
	size_t i, nb = 0;

	if (ward_callers_add(f->s, &admin, "load", NULL, token, NULL) != 0)
		fail_msg("callers: %s", ward_error_last()->message);
	ward_server_opts_init(&o);
	o.listen = "127.0.0.1:0";
	o.threads = 4;
	o.timeout_s = 5;
	o.drain_s = 5;
	if (ward_server_start(&srv, f->home, &o) != 0)
		fail_msg("server start: %s", ward_error_last()->message);
	memset(r, 0, sizeof(r));
	for (i = 0; i < 3; i++) {
		r[i].port = ward_server_port(srv);
		r[i].token = token;
		r[i].stop = &stop;
		r[i].revoked = &revoked;
		r[i].src_a = f->src_a;
		assert_int_equal(pthread_create(&th[i], NULL, http_reader, &r[i]), 0);
	}
	write_while_reading(f, srv, &revoked, r, 3);
	atomic_store(&stop, 1);
	for (i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	ward_server_stop(srv);
	check_readers(r, 3);

	/* Every document of B is served, none of A. */
	ward_retrieve_opts_init(&qo);
	qo.k = 50;
	qo.filter.all_labels = 1;
	qo.no_trace = 1;
	assert_int_equal(ward_retrieve(f->s, "walrus", 6, &qo, &res), 0);
	json_array_foreach(json_object_get(res, "results"), i, item) {
		json_int_t src = json_integer_value(json_object_get(json_object_get(item, "citation"), "source_id"));
		assert_true(src != f->src_a);
		nb++;
	}
	assert_int_equal(nb, NDOCS_BEFORE + NDOCS_DURING);
	json_decref(res);
}

static void test_query_concurrency__library_readers_and_a_writer(void **state)
{
	fixture *f = *state;
	atomic_int stop = 0, revoked = 0;
	reader r[2];
	pthread_t th[2];

	memset(r, 0, sizeof(r));
	for (size_t i = 0; i < 2; i++) {
		if (ward_store_open(&r[i].store, f->home, 0) != 0)
			fail_msg("open: %s", ward_error_last()->message);
		r[i].stop = &stop;
		r[i].revoked = &revoked;
		r[i].src_a = f->src_a;
		assert_int_equal(pthread_create(&th[i], NULL, library_reader, &r[i]), 0);
	}
	write_while_reading(f, NULL, &revoked, r, 2);
	atomic_store(&stop, 1);
	for (size_t i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		ward_store_close(r[i].store);
	}
	check_readers(r, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_query_concurrency__server_readers_and_a_writer, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_concurrency__library_readers_and_a_writer, setup, teardown),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
