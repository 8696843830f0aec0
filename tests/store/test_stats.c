/*
 * Tests for store/stats.c (`ragward stats`): per day, source and rule set
 * figures; rejects from document.reject events; findings per rule; average
 * chunk length; withheld-on-read counts from the traces; rule-set boundaries;
 * --since.
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

#include "ragward/crypto.h"
#include "ragward/documents.h"
#include "ragward/sources.h"
#include "ragward/store.h"
#include "ragward/verify.h"
#include "tests/support/testutil.h"
#include "core/banned.h"

#define RS_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define RS_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define DAY1 "1767261600" /* 2026-01-01T10:00:00Z */
#define DAY2 "1767348000" /* 2026-01-02T10:00:00Z */

typedef struct {
	char *home;
} fixture;

static void fill_doc(ward_doc_in *in, ward_chunk_in *cin, int64_t src, const char *uri, const char *verdict,
		     const char *rs, const char *const *texts, size_t n, const ward_finding_in *fi, size_t nf)
{
	memset(in, 0, sizeof(*in));
	for (size_t i = 0; i < n; i++) {
		memset(&cin[i], 0, sizeof(cin[i]));
		cin[i].heading_path = "";
		cin[i].text = texts[i];
		cin[i].len = strlen(texts[i]);
		cin[i].char_start = 0;
		cin[i].char_end = cin[i].len;
	}
	in->source_id = src;
	in->uri = in->final_url = uri;
	in->declared_type = in->detected_type = "text/plain";
	in->title = "T";
	in->bytes = (const uint8_t *)uri;
	in->len = strlen(uri);
	assert_int_equal(ward_sha256(in->byte_sha256, uri, strlen(uri)), 0);
	in->fetched_at = "2026-01-01T10:00:00Z";
	in->ruleset_sha256 = rs;
	in->verdict = verdict;
	in->chunks = cin;
	in->nchunks = n;
	in->findings = fi;
	in->nfindings = nf;
}

static void add_doc(ward_store *s, int64_t src, const char *uri, const char *verdict, const char *rs,
		    const char *const *texts, size_t n, const ward_finding_in *fi, size_t nf)
{
	ward_actor ing = tu_actor("ingester");
	ward_chunk_in cin[4];
	ward_doc_in in;
	ward_doc_outcome outcome;
	int64_t id, version;

	fill_doc(&in, cin, src, uri, verdict, rs, texts, n, fi, nf);
	if (ward_documents_store(s, &ing, &in, &outcome, &id, &version) != 0)
		fail_msg("store: %s", ward_error_last()->message);
}

static int setup(void **state)
{
	static const char *const two[] = {"1234567890", "12345"}; /* 10 and 5 characters */
	static const char *const one[] = {"abcdef"};
	static const ward_finding_in fi[] = {
		{"inj.ignore", "injection", 3, "visible", "nfkc", 0, 5, "ignore"},
		{"inj.ignore", "injection", 3, "visible", "nfkc", 6, 9, "ignore"},
		{"inj.role", "injection", 2, "hidden", "raw", 1, 2, "system"},
	};
	fixture *f = calloc(1, sizeof(*f));
	ward_actor admin = tu_actor("admin"), ing = tu_actor("ingester");
	ward_chunk_in cin[4];
	ward_doc_in in;
	ward_store *s;
	int64_t docs, web;
	int changed;

	if (!f)
		return -1;
	setenv("RAGWARD_FAKE_TIME", DAY1, 1);
	f->home = tu_new_home("stats");
	s = tu_open(f->home, WARD_STORE_SIGN);
	docs = tu_add_source(s, "docs", "/srv/docs", NULL);
	web = tu_add_source(s, "web", "/srv/web", NULL);
	assert_int_equal(ward_store_note_ruleset(s, &admin, RS_A, 10, "rules", &changed), 0);
	add_doc(s, docs, "file:///srv/docs/a", "accept", RS_A, two, 2, NULL, 0);
	add_doc(s, docs, "file:///srv/docs/q", "quarantine", RS_A, one, 1, fi, 2);
	add_doc(s, web, "file:///srv/web/f", "flag", RS_A, one, 1, fi + 2, 1);
	fill_doc(&in, cin, docs, "file:///srv/docs/r", "quarantine", RS_A, one, 1, fi, 1);
	assert_int_equal(ward_documents_record_reject(s, &ing, &in, "score"), 0);

	setenv("RAGWARD_FAKE_TIME", DAY2, 1);
	assert_int_equal(ward_store_note_ruleset(s, &admin, RS_B, 11, "rules", &changed), 0);
	assert_int_equal(changed, 1);
	add_doc(s, docs, "file:///srv/docs/b", "accept", RS_B, one, 1, NULL, 0);
	ward_store_close(s);
	unsetenv("RAGWARD_FAKE_TIME");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	tu_home_free(f->home);
	free(f);
	return 0;
}

static json_t *stats(const char *home, const char *since)
{
	ward_store *s = tu_open(home, 0);
	json_t *res = NULL;

	if (ward_store_stats(s, since, &res) != 0)
		fail_msg("stats: %s", ward_error_last()->message);
	ward_store_close(s);
	return res;
}

static json_int_t geti(const json_t *o, const char *path1, const char *path2)
{
	const json_t *v = json_object_get(o, path1);
	return json_integer_value(path2 ? json_object_get(v, path2) : v);
}

static void test_store_stats__rows_per_day_source_ruleset(void **state)
{
	fixture *f = *state;
	json_t *res = stats(f->home, NULL);
	const json_t *rows = json_object_get(res, "rows"), *r0, *r1, *r2;

	assert_int_equal(json_array_size(rows), 3);
	r0 = json_array_get(rows, 0);
	r1 = json_array_get(rows, 1);
	r2 = json_array_get(rows, 2);
	/* Day 1, source docs: one accept, one quarantine, one reject. */
	assert_string_equal(json_string_value(json_object_get(r0, "day")), "2026-01-01");
	assert_string_equal(json_string_value(json_object_get(r0, "source")), "docs");
	assert_string_equal(json_string_value(json_object_get(r0, "ruleset_sha256")), RS_A);
	assert_false(json_is_true(json_object_get(r0, "ruleset_changed")));
	assert_int_equal(geti(r0, "documents", NULL), 2);
	assert_int_equal(geti(r0, "verdicts", "accept"), 1);
	assert_int_equal(geti(r0, "verdicts", "quarantine"), 1);
	assert_int_equal(geti(r0, "verdicts", "reject"), 1);
	assert_int_equal(geti(r0, "verdicts", "flag"), 0);
	assert_int_equal(geti(r0, "chunks", NULL), 3);
	assert_true(json_real_value(json_object_get(r0, "avg_chunk_length")) > 6.99 &&
		    json_real_value(json_object_get(r0, "avg_chunk_length")) < 7.01);
	/* two stored findings + one listed in the rejection */
	assert_int_equal(geti(r0, "findings", "inj.ignore"), 3);
	/* Day 1, source web. */
	assert_string_equal(json_string_value(json_object_get(r1, "source")), "web");
	assert_int_equal(geti(r1, "verdicts", "flag"), 1);
	assert_int_equal(geti(r1, "findings", "inj.role"), 1);
	/* Day 2: the new rule set starts a new row, marked. */
	assert_string_equal(json_string_value(json_object_get(r2, "day")), "2026-01-02");
	assert_string_equal(json_string_value(json_object_get(r2, "ruleset_sha256")), RS_B);
	assert_true(json_is_true(json_object_get(r2, "ruleset_changed")));
	assert_int_equal(geti(r2, "documents", NULL), 1);
	/* Both rules.load events, the second naming the first. */
	assert_int_equal(json_array_size(json_object_get(res, "ruleset_changes")), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(res, "ruleset_changes"), 1),
							      "previous")),
			    RS_A);
	assert_string_equal(json_string_value(json_object_get(res, "traces")), "absent");
	json_decref(res);
}

static void test_store_stats__since(void **state)
{
	fixture *f = *state;
	json_t *res = stats(f->home, "2026-01-02");
	ward_store *s;
	json_t *bad = NULL;

	assert_int_equal(json_array_size(json_object_get(res, "rows")), 1);
	assert_int_equal(json_array_size(json_object_get(res, "ruleset_changes")), 1);
	json_decref(res);
	res = stats(f->home, "2026-01-01T10:00:01Z");
	assert_int_equal(json_array_size(json_object_get(res, "rows")), 1);
	json_decref(res);
	s = tu_open(f->home, 0);
	assert_int_equal(ward_store_stats(s, "yesterday", &bad), WARD_EINVAL);
	assert_int_equal(ward_store_stats(s, "2026-01-02' OR 1=1 --", &bad), WARD_EINVAL);
	assert_null(bad);
	ward_store_close(s);
}

static void test_store_stats__withheld_from_traces(void **state)
{
	fixture *f = *state;
	char *path = tu_path(f->home, "traces.jsonl");
	json_t *res, *reads;

	tu_write_str(path, "{\"trace_id\":\"x\",\"time\":\"2026-01-02T11:00:00Z\",\"results\":[{},{}],\"withheld\":1}\n"
			   "not json\n"
			   "{\"trace_id\":\"y\",\"time\":\"2026-01-02T12:00:00Z\",\"results\":[],\"withheld\":0}\n"
			   "{\"trace_id\":\"z\",\"time\":\"2026-01-01T12:00:00Z\",\"results\":[{}],\"withheld\":2}\n");
	free(path);
	res = stats(f->home, NULL);
	assert_string_equal(json_string_value(json_object_get(res, "traces")), "read");
	reads = json_object_get(res, "reads");
	assert_int_equal(json_array_size(reads), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(reads, 0), "day")), "2026-01-01");
	assert_int_equal(geti(json_array_get(reads, 0), "withheld", NULL), 2);
	assert_int_equal(geti(json_array_get(reads, 1), "queries", NULL), 2);
	assert_int_equal(geti(json_array_get(reads, 1), "served", NULL), 2);
	assert_int_equal(geti(json_array_get(reads, 1), "withheld", NULL), 1);
	json_decref(res);
	res = stats(f->home, "2026-01-02");
	assert_int_equal(json_array_size(json_object_get(res, "reads")), 1);
	json_decref(res);
}

static void test_store_stats__empty_store(void **state)
{
	char *home = tu_new_home("stats-empty");
	json_t *res = stats(home, NULL);

	(void)state;
	assert_int_equal(json_array_size(json_object_get(res, "rows")), 0);
	assert_int_equal(json_array_size(json_object_get(res, "reads")), 0);
	json_decref(res);
	tu_home_free(home);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(test_store_stats__##name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(rows_per_day_source_ruleset),
		T(since),
		T(withheld_from_traces),
		T(empty_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
