/* Plain text and Markdown extraction (blocks, code fences, links). */
#include "fuzz_extract.h"

#define FUZZ_MAX_INPUT (256 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const ward_doctype types[] = {WARD_TYPE_MARKDOWN, WARD_TYPE_TEXT};
	size_t t;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		ward_extracted *x = NULL;
		int rc = ward_extract(&x, (const char *)data, size, types[t]);

		if (rc == 0)
			fuzz_check_extracted(x, size);
		else
			/* Text and Markdown refuse only invalid UTF-8 (NUL included)
			 * or oversize. */
			FUZZ_CHECK(!ward_utf8_valid((const char *)data, size, NULL) ||
				   memchr(data, '\0', size) != NULL || rc == WARD_ETOOBIG);
		ward_extracted_free(x);
	}
	return 0;
}
