/*
 * The type gate: declared Content-Type and file name against the sniffed
 * type (libmagic with a reduced check set), then the charset conversion.
 *
 * Input: "<content-type>\n<name>\n<body>"; an empty first line means no
 * header, an empty second line no name.
 */
#include "fuzz_common.h"
#include "ragward/normalize.h"
#include "ragward/typegate.h"

#define FUZZ_MAX_INPUT (128 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *ct, *rest, *name, *body;
	size_t bodylen;
	ward_gate_result r;
	unsigned allowed;
	int rc;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	fuzz_split2(data, size, &ct, &rest);
	name = rest;
	body = strchr(rest, '\n');
	if (body) {
		*body++ = '\0';
	} else {
		body = rest + strlen(rest);
	}
	/* The body may hold NULs: take its length from the input. */
	bodylen = size - (size_t)(body - ct);
	allowed = size % 3 == 0 ? 0 : (1u << WARD_TYPE_TEXT) | (1u << WARD_TYPE_MARKDOWN) | (1u << WARD_TYPE_HTML);
	memset(&r, 0xA5, sizeof(r));
	rc = ward_typegate(&r, body, bodylen, *ct ? ct : NULL, *name ? name : NULL, allowed);
	if (rc == 0) {
		FUZZ_CHECK(r.decision == WARD_GATE_ACCEPT || r.decision == WARD_GATE_QUARANTINE ||
			   r.decision == WARD_GATE_REJECT);
		FUZZ_CHECK(memchr(r.detected, '\0', sizeof(r.detected)) != NULL);
		FUZZ_CHECK(memchr(r.declared, '\0', sizeof(r.declared)) != NULL);
		FUZZ_CHECK(memchr(r.charset, '\0', sizeof(r.charset)) != NULL);
		FUZZ_CHECK(memchr(r.reason, '\0', sizeof(r.reason)) != NULL);
		if (r.decision == WARD_GATE_ACCEPT) {
			FUZZ_CHECK(r.type != WARD_TYPE_UNKNOWN);
			FUZZ_CHECK(allowed == 0 || (allowed & (1u << r.type)));
			FUZZ_CHECK(r.utf8 != NULL);
			FUZZ_CHECK(r.utf8[r.utf8_len] == '\0');
			FUZZ_CHECK(ward_utf8_valid(r.utf8, r.utf8_len, NULL));
		} else {
			FUZZ_CHECK(r.utf8 == NULL);
			FUZZ_CHECK(r.reason[0] != '\0');
		}
		ward_gate_result_dispose(&r);
	}
	free(ct);
	return 0;
}
