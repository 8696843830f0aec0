/* The canonical chunk statement: whatever the strict decoder accepts, the
 * encoder must give back byte for byte (one encoding per statement, so a
 * signature cannot be carried over to a different-looking statement). */
#include "fuzz_common.h"
#include "ragward/alloc.h"
#include "ragward/canon.h"

#define FUZZ_MAX_INPUT (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ward_statement st, st2;
	char *storage = NULL, *storage2 = NULL;
	uint8_t *enc = NULL;
	size_t len = 0;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	if (ward_statement_decode(&st, &storage, data, size) != 0) {
		FUZZ_CHECK(storage == NULL);
		return 0;
	}
	FUZZ_CHECK(st.version == WARD_STATEMENT_VERSION);
	FUZZ_CHECK(memchr(st.key_id, '\0', sizeof(st.key_id)) != NULL);
	FUZZ_CHECK(ward_statement_encode(&enc, &len, &st) == 0);
	FUZZ_CHECK(len == size);
	FUZZ_CHECK(memcmp(enc, data, size) == 0);
	/* And decoding the encoding gives the same fields. */
	FUZZ_CHECK(ward_statement_decode(&st2, &storage2, enc, len) == 0);
	FUZZ_CHECK(st2.chunk_id == st.chunk_id && st2.char_end == st.char_end);
	FUZZ_CHECK(strcmp(st2.uri, st.uri) == 0 && strcmp(st2.verdict, st.verdict) == 0);
	ward_free(storage2);
	ward_free(enc);
	ward_free(storage);
	return 0;
}
