/*
 * Regression: a search with more matching chunks than k stopped reading at
 * the limit and reported the unread row as a database error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ragward/alloc.h"
#include "ragward/documents.h"
#include "ragward/retrieve.h"
#include "ragward/sources.h"
#include "support/testutil.h"

static void test_query_search_limit__more_hits_than_k(void **state)
{
	char *home = tu_new_home("searchlimit");
	ward_store *s = tu_open(home, WARD_STORE_SIGN);
	ward_actor alice = tu_actor("alice"), bob = tu_actor("bob");
	ward_source_request req;
	ward_chunk_in chunks[24];
	char bufs[24][64];
	ward_doc_in doc;
	ward_doc_outcome outcome;
	ward_retrieve_opts o;
	json_t *res = NULL;
	int64_t sid, did, ver;

	(void)state;
	memset(&req, 0, sizeof(req));
	req.name = "docs";
	req.pattern = "https://docs.example.com/";
	assert_int_equal(ward_sources_request(s, &alice, &req, &sid), 0);
	assert_int_equal(ward_sources_decide(s, &bob, sid, WARD_DECIDE_APPROVE, NULL), 0);
	memset(&doc, 0, sizeof(doc));
	memset(chunks, 0, sizeof(chunks));
	/* More matching chunks than the retrieval's over-fetch (2k + 8). */
	for (size_t i = 0; i < 24; i++) {
		snprintf(bufs[i], sizeof(bufs[i]), "dock note number %zu for the charging dock", i);
		chunks[i].heading_path = "Dock";
		chunks[i].text = bufs[i];
		chunks[i].len = strlen(bufs[i]);
		chunks[i].char_start = i * 100;
		chunks[i].char_end = i * 100 + chunks[i].len;
	}
	doc.source_id = sid;
	doc.uri = doc.final_url = "https://docs.example.com/dock";
	doc.title = "Dock";
	doc.fetched_at = "2026-11-28T08:00:00Z";
	doc.ruleset_sha256 = "none";
	doc.verdict = "accept";
	doc.chunks = chunks;
	doc.nchunks = 24;
	assert_int_equal(ward_documents_store(s, &alice, &doc, &outcome, &did, &ver), 0);

	ward_retrieve_opts_init(&o);
	o.k = 1;
	o.no_trace = 1;
	o.filter.all_labels = 1;
	assert_int_equal(ward_retrieve(s, "dock", 4, &o, &res), 0);
	assert_int_equal(json_array_size(json_object_get(res, "results")), 1);
	json_decref(res);
	ward_store_close(s);
	tu_home_free(home);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query_search_limit__more_hits_than_k),
	};
	ward_alloc_install_jansson();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
