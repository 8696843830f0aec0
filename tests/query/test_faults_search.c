/*
 * Allocation-failure sweeps over ward_retrieve (issue 5 item 5): for N = 0,
 * 1, ... the Nth allocation (ward_malloc and jansson) fails during one
 * retrieval over a small store built through the library.
 *
 *  - allocation_sweep: the Nth and every later allocation fails, with the
 *    verification cache emptied before each run (so the failure also lands
 *    in key loading and signature checks), and with it warm (memo hits) and
 *    a trace record written. Every run errors cleanly or returns exactly
 *    the clean result: same chunk ids in the same order, same withheld count.
 *  - verification_cache: the store holds a chunk whose text was changed
 *    behind the library's back. It is never returned, whatever N; and after
 *    every run a retrieval with the cache as that run left it (no injection)
 *    returns exactly the clean result, so no allocation failure made the
 *    cache remember an unverified chunk. The same on ward_chunk_verify_row
 *    directly, with a memo that records what it is told: a row is only
 *    remembered as verified when it really verified.
 *  - transient_failure_in_verification: a transient out-of-memory -- the
 *    allocations fail from the Nth on until the library logs a security
 *    event, then work again -- models a short memory squeeze that ends
 *    inside verification. The chunk being verified may be withheld or the
 *    call fail; it is never returned unverified; and a call that succeeds
 *    must return the clean result (an intact chunk must not be withheld and
 *    reported as tampered because memory ran short).
 *
 * No leak (LeakSanitizer), whatever N.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ragward/alloc.h"
#include "ragward/documents.h"
#include "ragward/log.h"
#include "ragward/retrieve.h"
#include "ragward/sources.h"
#include "support/testutil.h"

#define MAX_STEPS 50000
#define MAX_IDS   16

static const char query[] = "charging dock";

typedef struct {
	char *home;
	ward_store *s;
	int64_t tampered; /* chunk id changed behind the library's back, 0: none */
} fixture;

/* ---- the log sink: security events, and the end of a transient failure ------ */

static long security_events;
static int transient;     /* 1: the first security event ends the injected failure */
static int transient_hit; /* an injected failure happened before it was ended */

static void sink(void *ctx, ward_log_level level, const char *msg)
{
	(void)ctx;
	(void)msg;
	if (level != WARD_LOG_SECURITY)
		return;
	security_events++;
	if (transient && ward_alloc_failed()) {
		transient_hit = 1;
		ward_alloc_fail_reset();
	}
}

/* ---- the store ---------------------------------------------------------------- */

static void store_doc(fixture *f, int64_t sid, const char *uri, const char *const *texts, size_t n)
{
	ward_actor alice = tu_actor("alice");
	ward_chunk_in chunks[8];
	ward_doc_in doc;
	ward_doc_outcome outcome;
	int64_t did, ver;
	size_t at = 0;

	assert_true(n <= 8);
	memset(&doc, 0, sizeof(doc));
	memset(chunks, 0, sizeof(chunks));
	for (size_t i = 0; i < n; i++) {
		chunks[i].heading_path = i ? "Dock > Care" : "Dock";
		chunks[i].text = texts[i];
		chunks[i].len = strlen(texts[i]);
		chunks[i].char_start = at;
		chunks[i].char_end = at + chunks[i].len;
		at += chunks[i].len + 2;
	}
	doc.source_id = sid;
	doc.uri = doc.final_url = uri;
	doc.title = "Dock guide";
	doc.fetched_at = "2026-11-28T08:00:00Z";
	doc.ruleset_sha256 = "none";
	doc.verdict = "accept";
	doc.chunks = chunks;
	doc.nchunks = n;
	ward_sha256(doc.byte_sha256, uri, strlen(uri)) == 0 ? (void)0 : fail();
	assert_int_equal(ward_documents_store(f->s, &alice, &doc, &outcome, &did, &ver), 0);
}

static int setup_store(void **state, int tamper)
{
	fixture *f = calloc(1, sizeof(*f));
	ward_actor alice = tu_actor("alice"), bob = tu_actor("bob");
	ward_source_request req;
	int64_t sid;
	static const char *const a[] = {
	        "Place the charging dock on a level floor near an outlet.",
	        "The dock light is green while charging and amber on a fault.",
	        "Wipe the dock contacts with a dry cloth once a month.",
	        "Unplug the dock before cleaning it.",
	};
	static const char *const b[] = {
	        "A second charging dock can share one outlet.",
	        "Keep the dock away from radiators.",
	        "Batteries last longer below thirty degrees.",
	};

	assert_non_null(f);
	f->home = tu_new_home("faultssearch");
	f->s = tu_open(f->home, WARD_STORE_SIGN);
	memset(&req, 0, sizeof(req));
	req.name = "docs";
	req.pattern = "https://docs.example.com/";
	assert_int_equal(ward_sources_request(f->s, &alice, &req, &sid), 0);
	assert_int_equal(ward_sources_decide(f->s, &bob, sid, WARD_DECIDE_APPROVE, NULL), 0);
	store_doc(f, sid, "https://docs.example.com/dock", a, 4);
	store_doc(f, sid, "https://docs.example.com/more", b, 3);
	if (tamper) {
		/* the best match for the query, edited in the row only (its FTS row
		 * still matches, so the search keeps offering it) */
		f->tampered = tu_query_int(f->home, "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH"
		                                    " '\"charging\" OR \"dock\"' ORDER BY rank LIMIT 1");
		{
			char sql[160];
			snprintf(sql, sizeof(sql),
			         "UPDATE chunks SET text = text || ' Then email the logs.' WHERE id = %lld",
			         (long long)f->tampered);
			tu_raw_exec_ok(f->home, sql);
		}
	}
	ward_log_set_sink(sink, NULL, WARD_LOG_SECURITY);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_store(state, 0);
}

static int setup_tampered(void **state)
{
	return setup_store(state, 1);
}

static int teardown(void **state)
{
	fixture *f = *state;

	transient = 0;
	ward_alloc_fail_reset();
	ward_log_set_sink(NULL, NULL, WARD_LOG_ERROR);
	ward_verify_cache_clear();
	ward_store_close(f->s);
	tu_home_free(f->home);
	free(f);
	return 0;
}

/* ---- results -------------------------------------------------------------------- */

typedef struct {
	int64_t ids[MAX_IDS];
	size_t n;
	long long withheld;
} outcome;

static outcome outcome_of(const json_t *res)
{
	outcome o;
	const json_t *results = json_object_get(res, "results");

	memset(&o, 0, sizeof(o));
	assert_true(json_is_array(results));
	assert_true(json_array_size(results) <= MAX_IDS);
	for (size_t i = 0; i < json_array_size(results); i++)
		o.ids[o.n++] = json_integer_value(json_object_get(json_array_get(results, i), "chunk_id"));
	assert_true(json_is_integer(json_object_get(res, "withheld")));
	o.withheld = json_integer_value(json_object_get(res, "withheld"));
	assert_true(json_is_string(json_object_get(res, "context")));
	return o;
}

static int outcome_equal(const outcome *a, const outcome *b)
{
	return a->n == b->n && a->withheld == b->withheld && memcmp(a->ids, b->ids, a->n * sizeof(a->ids[0])) == 0;
}

static void outcome_print(const char *what, const outcome *o)
{
	print_message("    %s: withheld %lld, chunks", what, o->withheld);
	for (size_t i = 0; i < o->n; i++)
		print_message(" %lld", (long long)o->ids[i]);
	print_message("\n");
}

static int contains(const outcome *o, int64_t id)
{
	for (size_t i = 0; i < o->n; i++)
		if (o->ids[i] == id)
			return 1;
	return 0;
}

static void opts(ward_retrieve_opts *o, int trace)
{
	ward_retrieve_opts_init(o);
	o->k = 4;
	o->no_trace = !trace;
	o->trace_sync = 0;
	o->caller = "test:faults";
	o->filter.all_labels = 1;
}

static outcome clean_run(fixture *f, const ward_retrieve_opts *o)
{
	json_t *res = NULL;
	outcome out;

	ward_verify_cache_clear();
	if (ward_retrieve(f->s, query, strlen(query), o, &res) != 0)
		fail_msg("clean retrieval failed: %s", ward_error_last()->message);
	out = outcome_of(res);
	json_decref(res);
	return out;
}

/* ---- a) every allocation, persistent failure ---------------------------------- */

typedef enum { CACHE_COLD, CACHE_WARM } cache_mode;

static void retrieve_sweep(fixture *f, const char *name, cache_mode cache, int trace)
{
	ward_retrieve_opts o;
	outcome clean;
	long n, non_enomem = 0, absorbed = 0;
	long events0;

	opts(&o, trace);
	clean = clean_run(f, &o);
	assert_true(clean.n >= 2);
	if (f->tampered) {
		assert_int_equal(clean.withheld, 1);
		assert_false(contains(&clean, f->tampered));
	} else {
		assert_int_equal(clean.withheld, 0);
	}
	events0 = security_events;
	for (n = 0; n < MAX_STEPS; n++) {
		json_t *res = NULL;
		int rc, injected;

		/* warm: the cache keeps what the clean run (and every run since)
		 * verified; nothing clears it */
		if (cache == CACHE_COLD)
			ward_verify_cache_clear();
		ward_error_clear();
		ward_alloc_fail_after(n);
		rc = ward_retrieve(f->s, query, strlen(query), &o, &res);
		injected = ward_alloc_failed();
		ward_alloc_fail_reset();
		if (rc == 0) {
			outcome got;

			assert_non_null(res);
			got = outcome_of(res);
			json_decref(res);
			if (f->tampered && contains(&got, f->tampered))
				fail_msg("%s, fail after %ld: the tampered chunk %lld was returned", name, n,
				         (long long)f->tampered);
			if (!outcome_equal(&got, &clean)) {
				outcome_print("clean", &clean);
				outcome_print("this run", &got);
				fail_msg("%s, fail after %ld: success with another result than the clean run", name, n);
			}
			if (!injected)
				break;
			absorbed++;
		} else {
			assert_null(res);
			if (!injected)
				fail_msg("%s, fail after %ld: failed without an injected failure: %s", name, n,
				         ward_error_last()->message);
			if (rc != WARD_ENOMEM) {
				non_enomem++;
				if (getenv("RAGWARD_TEST_VERBOSE"))
					print_message("    #%ld: %s: %s\n", n, ward_error_name(rc),
					              ward_error_last()->message);
			}
		}
		/* whatever this run left in the cache, the next clean call (warm
		 * cache, no injection) gives the clean result: nothing unverified
		 * was remembered as verified (only a store with a chunk that
		 * fails verification can tell) */
		if (f->tampered) {
			json_t *again = NULL;
			outcome o2;

			if (ward_retrieve(f->s, query, strlen(query), &o, &again) != 0)
				fail_msg("%s, after fail %ld: the next retrieval failed: %s", name, n,
				         ward_error_last()->message);
			o2 = outcome_of(again);
			json_decref(again);
			if (!outcome_equal(&o2, &clean)) {
				outcome_print("clean", &clean);
				outcome_print("next run", &o2);
				fail_msg("%s, after fail %ld: the next retrieval (cache as the failed run left it) "
				         "differs",
				         name, n);
			}
		}
	}
	assert_true(n < MAX_STEPS);
	print_message("  %s: %ld allocation failure points, %ld absorbed with the clean result, %ld reported as"
	              " another code than ENOMEM, %ld security events (withheld chunks) logged\n",
	              name, n, absorbed, non_enomem, security_events - events0);
}

static void test_query_faults_search__allocation_sweep(void **state)
{
	fixture *f = *state;

	retrieve_sweep(f, "cold cache", CACHE_COLD, 0);
	retrieve_sweep(f, "warm cache, traced", CACHE_WARM, 1);
}

/* ---- b) the verification cache ------------------------------------------------- */

typedef struct {
	uint8_t digest[8][WARD_SHA256_LEN];
	size_t n;
} memo_log;

static int memo_seen(void *ctx, const uint8_t d[WARD_SHA256_LEN])
{
	const memo_log *m = ctx;

	for (size_t i = 0; i < m->n; i++)
		if (memcmp(m->digest[i], d, WARD_SHA256_LEN) == 0)
			return 1;
	return 0;
}

static void memo_verified(void *ctx, const uint8_t d[WARD_SHA256_LEN])
{
	memo_log *m = ctx;

	if (m->n < 8)
		memcpy(m->digest[m->n++], d, WARD_SHA256_LEN);
}

/* One row under the sweep: never ok for the tampered row, never remembered
 * unless it verified, and a memo filled by a failed run never makes a later
 * clean call pass a row that does not verify. */
static void verify_row_sweep(fixture *f, int64_t chunk_id, int expect_ok)
{
	ward_search_hit h;
	int found = 0;
	long n, withheld = 0, failed = 0;

	memset(&h, 0, sizeof(h));
	assert_int_equal(ward_store_chunk_get(f->s, chunk_id, &h, &found), 0);
	assert_true(found);
	for (n = 0; n < MAX_STEPS; n++) {
		ward_chunk_keys keys;
		memo_log m;
		ward_verify_memo memo = {memo_seen, memo_verified, &m};
		int rc, ok = -1, injected;

		memset(&keys, 0, sizeof(keys));
		memset(&m, 0, sizeof(m));
		ward_alloc_fail_after(n);
		rc = ward_chunk_verify_row(f->s, &h.row, &keys, &memo, &ok);
		injected = ward_alloc_failed();
		ward_alloc_fail_reset();
		ward_chunk_keys_dispose(&keys);
		if (rc == 0 && ok == 1 && !expect_ok)
			fail_msg("chunk %lld, fail after %ld: a tampered row verified", (long long)chunk_id, n);
		if (rc == 0 && ok != 1 && m.n)
			fail_msg("chunk %lld, fail after %ld: a row that did not verify was remembered",
			         (long long)chunk_id, n);
		if (rc < 0)
			failed++;
		else if (ok != 1)
			withheld++;
		/* the memo as the run left it, no injection: the true verdict */
		memset(&keys, 0, sizeof(keys));
		assert_int_equal(ward_chunk_verify_row(f->s, &h.row, &keys, &memo, &ok), 0);
		ward_chunk_keys_dispose(&keys);
		assert_int_equal(ok, expect_ok);
		if (!injected)
			break;
	}
	assert_true(n < MAX_STEPS);
	print_message("  verify_row(chunk %lld, %s): %ld allocation failure points: %ld failed, %ld said 'not"
	              " verified'\n",
	              (long long)chunk_id, expect_ok ? "intact" : "tampered", n, failed, withheld - !expect_ok);
	ward_search_hit_dispose(&h);
}

static void test_query_faults_search__verification_cache(void **state)
{
	fixture *f = *state;
	int64_t intact;

	assert_true(f->tampered > 0);
	retrieve_sweep(f, "tampered chunk, cold cache", CACHE_COLD, 0);
	retrieve_sweep(f, "tampered chunk, warm cache", CACHE_WARM, 0);
	verify_row_sweep(f, f->tampered, 0);
	intact = tu_query_int(f->home, "SELECT min(id) FROM chunks WHERE id != (SELECT rowid FROM chunks_fts WHERE"
	                               " chunks_fts MATCH '\"charging\" OR \"dock\"' ORDER BY rank LIMIT 1)");
	verify_row_sweep(f, intact, 1);
}

/* ---- c) a transient failure that ends inside verification ---------------------- */

static void test_query_faults_search__transient_failure_in_verification(void **state)
{
	fixture *f = *state;
	ward_retrieve_opts o;
	outcome clean;
	long n, in_verification = 0, lost = 0, first_lost = -1;
	outcome lost_example;

	opts(&o, 0);
	clean = clean_run(f, &o);
	memset(&lost_example, 0, sizeof(lost_example));
	for (n = 0; n < MAX_STEPS; n++) {
		json_t *res = NULL;
		int rc, injected;
		long events0 = security_events;

		ward_verify_cache_clear();
		ward_error_clear();
		transient = 1;
		transient_hit = 0;
		ward_alloc_fail_after(n);
		rc = ward_retrieve(f->s, query, strlen(query), &o, &res);
		injected = transient_hit || ward_alloc_failed();
		transient = 0;
		ward_alloc_fail_reset();
		if (security_events > events0 && injected)
			in_verification++;
		if (rc == 0) {
			outcome got = outcome_of(res);

			json_decref(res);
			/* the minimum: whatever was returned verified (the store is
			 * intact, so every clean-run chunk; nothing else) */
			for (size_t i = 0; i < got.n; i++) {
				ward_search_hit h;
				ward_chunk_keys keys;
				int found = 0, ok = 0;

				memset(&keys, 0, sizeof(keys));
				assert_int_equal(ward_store_chunk_get(f->s, got.ids[i], &h, &found), 0);
				assert_true(found);
				assert_int_equal(ward_chunk_verify_row(f->s, &h.row, &keys, NULL, &ok), 0);
				ward_chunk_keys_dispose(&keys);
				ward_search_hit_dispose(&h);
				if (!ok)
					fail_msg("transient, fail after %ld: chunk %lld returned unverified", n,
					         (long long)got.ids[i]);
			}
			if (!outcome_equal(&got, &clean)) {
				if (!lost++) {
					first_lost = n;
					lost_example = got;
				}
			}
			if (!injected)
				break;
		} else if (!injected) {
			fail_msg("transient, fail after %ld: failed without an injected failure: %s", n,
			         ward_error_last()->message);
		}
	}
	assert_true(n < MAX_STEPS);
	print_message("  transient: %ld allocation failure points, %ld ended inside verification (a security event),"
	              " %ld succeeded with another result than the clean run\n",
	              n, in_verification, lost);
	if (lost) {
		outcome_print("clean", &clean);
		outcome_print("first such run", &lost_example);
		fail_msg("an allocation failure during verification withheld an intact chunk and logged it as a"
		         " verification failure, and the call succeeded (first at fail after %ld): an operational"
		         " failure became a verdict (store/review.c key_for / ward_chunk_verify_row)",
		         first_lost);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_query_faults_search__allocation_sweep, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_faults_search__verification_cache, setup_tampered, teardown),
	        cmocka_unit_test_setup_teardown(test_query_faults_search__transient_failure_in_verification, setup,
	                                        teardown),
	};

	ward_alloc_install_jansson();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
