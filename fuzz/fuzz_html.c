/* HTML text extraction (libxml2's HTML parser plus ragward's hidden-content
 * and CSS logic): any bytes in, a result whose offsets stay in bounds. */
#include "fuzz_extract.h"

#define FUZZ_MAX_INPUT (256 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ward_extracted *x = NULL;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	/* Same bytes as HTML and as XHTML (the XML parser on an HTML-ish tree). */
	if (ward_extract(&x, (const char *)data, size, WARD_TYPE_HTML) == 0) {
		fuzz_check_extracted(x, size);
		FUZZ_CHECK(x->type == WARD_TYPE_HTML);
	} else {
		FUZZ_CHECK(x == NULL);
	}
	ward_extracted_free(x);
	x = NULL;
	if (ward_extract(&x, (const char *)data, size, WARD_TYPE_XHTML) == 0)
		fuzz_check_extracted(x, size);
	ward_extracted_free(x);
	return 0;
}
