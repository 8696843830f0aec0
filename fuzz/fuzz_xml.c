/* XML and RSS/Atom feed extraction: the whole-document path and the
 * per-item path over the same bytes. */
#include "fuzz_extract.h"

#define FUZZ_MAX_INPUT (256 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ward_extracted *x = NULL;
	ward_feed_item *items = NULL;
	size_t n = 0, i;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	if (ward_extract(&x, (const char *)data, size, WARD_TYPE_XML) == 0)
		fuzz_check_extracted(x, size);
	ward_extracted_free(x);
	x = NULL;
	if (ward_extract(&x, (const char *)data, size, WARD_TYPE_FEED) == 0)
		fuzz_check_extracted(x, size);
	ward_extracted_free(x);
	if (ward_extract_feed(&items, &n, (const char *)data, size) == 0) {
		FUZZ_CHECK(n <= WARD_MAX_FEED_ITEMS);
		FUZZ_CHECK(n == 0 || items != NULL);
		for (i = 0; i < n; i++) {
			FUZZ_CHECK(items[i].content != NULL);
			/* An item's text is its own document: offsets are bounded by
			 * the feed it came from. */
			fuzz_check_extracted(items[i].content, size);
		}
		ward_feed_items_free(items, n);
	}
	return 0;
}
