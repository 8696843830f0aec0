/* The trace file's chain check (ward_trace_verify): any bytes give a report,
 * never an I/O error; a report is ok exactly when it names no broken line;
 * an intact file's head is the hash of its last line, and verifying again
 * against that head passes. */
#include "fuzz_common.h"
#include "ragward/crypto.h"
#include "ragward/error.h"
#include "ragward/traces.h"

#define FUZZ_MAX_INPUT (256 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path, *head;
	json_t *res = NULL, *again = NULL;
	size_t nl = 0, start = 0;
	uint8_t h[WARD_SHA256_LEN];
	char hex[2 * WARD_SHA256_LEN + 1];
	long long lines;
	int rc, ok;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	path = fuzz_write_file("traces.jsonl", data, size);
	rc = ward_trace_verify(path, NULL, &res);
	FUZZ_CHECK(rc == 0 || rc == WARD_ENOMEM);
	if (rc != 0)
		return 0;
	for (size_t i = 0; i < size; i++)
		if (data[i] == '\n') {
			nl++;
			if (i + 1 < size)
				start = i + 1;
		}
	ok = json_is_true(json_object_get(res, "ok"));
	lines = json_integer_value(json_object_get(res, "lines"));
	head = json_string_value(json_object_get(res, "head"));
	FUZZ_CHECK(ok == json_is_null(json_object_get(res, "broken")));
	FUZZ_CHECK(lines >= 0 && (size_t)lines <= nl + 1);
	FUZZ_CHECK(json_integer_value(json_object_get(res, "unchained")) <= lines);
	FUZZ_CHECK(head && strlen(head) == 2 * WARD_SHA256_LEN);
	if (ok) {
		FUZZ_CHECK(size == 0 || data[size - 1] == '\n');
		FUZZ_CHECK((size_t)lines == nl);
		if (size == 0) {
			FUZZ_CHECK(strcmp(head, WARD_TRACE_GENESIS) == 0);
		} else {
			FUZZ_CHECK(ward_sha256(h, data + start, size - 1 - start) == 0);
			ward_hex_encode_to(hex, h, sizeof(h));
			FUZZ_CHECK(strcmp(head, hex) == 0);
		}
		rc = ward_trace_verify(path, head, &again);
		FUZZ_CHECK(rc == 0 || rc == WARD_ENOMEM);
		FUZZ_CHECK(rc != 0 || json_is_true(json_object_get(again, "ok")));
		json_decref(again);
	}
	json_decref(res);
	return 0;
}
