/*
 * The HTTP shim's request-body parser (ward_http_json_parse: a pre-scan that
 * bounds depth and element count, then jansson with duplicate keys refused),
 * followed by the query transformation of a "query" string the way the
 * search endpoint uses it. Accepted bodies are JSON objects; refusals carry
 * a reason.
 */
#include "fuzz_common.h"
#include "ragward/alloc.h"
#include "ragward/normalize.h"
#include "ragward/retrieve.h"
#include "ragward/server.h"

#define FUZZ_MAX_INPUT (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *req = NULL, *q;
	char *fts = NULL;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	if (ward_http_json_parse(&req, (const char *)data, size) != 0) {
		FUZZ_CHECK(req == NULL);
		FUZZ_CHECK(ward_error_last()->message[0] != '\0');
		/* The reason goes into a JSON error body: it must be UTF-8. */
		FUZZ_CHECK(ward_utf8_valid(ward_error_last()->message, strlen(ward_error_last()->message), NULL));
		return 0;
	}
	FUZZ_CHECK(json_is_object(req));
	q = json_object_get(req, "query");
	if (json_is_string(q) && ward_query_to_fts(&fts, NULL, json_string_value(q), json_string_length(q)) == 0)
		FUZZ_CHECK(fts != NULL && fts[0] == '"');
	ward_free(fts);
	json_decref(req);
	return 0;
}
