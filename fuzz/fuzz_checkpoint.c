/* The audit checkpoint text form: the strict parser accepts exactly what the
 * formatter writes, so parse -> format gives back the input byte for byte. */
#include "fuzz_common.h"
#include "ragward/alloc.h"
#include "ragward/audit.h"

#define FUZZ_MAX_INPUT (16 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ward_checkpoint c, c2;
	char *text = NULL;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	if (ward_checkpoint_parse(&c, (const char *)data, size) != 0)
		return 0;
	FUZZ_CHECK(ward_checkpoint_format(&text, &c) == 0);
	FUZZ_CHECK(strlen(text) == size);
	FUZZ_CHECK(memcmp(text, data, size) == 0);
	FUZZ_CHECK(ward_checkpoint_parse(&c2, text, strlen(text)) == 0);
	FUZZ_CHECK(memcmp(&c, &c2, sizeof(c)) == 0);
	ward_free(text);
	return 0;
}
