/*
 * Allocation-failure sweep (T26): the Nth allocation fails for N = 0, 1, ...
 * until an extraction succeeds. Every run must return an error or the same
 * result as an unfailed run: never crash, leak (LSan) or return a silently
 * truncated document.
 *
 * libxml2's allocations can be routed through the same hook (xmlMemSetup,
 * installed first thing in main(), before any libxml2 use in the process).
 * Only the XML sweep turns that on: libxml2 2.9.14's HTML parser loops
 * forever inside htmlParseDocument after a failed allocation (found by this
 * sweep), so the HTML sweeps fail only ragward's own allocations. Both
 * allocators end in malloc/free, so blocks may cross between them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <libxml/xmlmemory.h>

#include "ragward/alloc.h"
#include "ragward/error.h"
#include "ragward/extract.h"
#include "core/banned.h"

static const char html_doc[] =
        "<!DOCTYPE html><html><head><title>T</title><style>.h{display:none}</style>"
        "<meta name=\"description\" content=\"desc\"></head><body><h1>Head</h1>"
        "<p>Para &amp; <a href=\"/x\">link</a> <img src=\"i.png\" alt=\"alt\"></p>"
        "<div class=\"h\">hidden</div><!-- c --><ul><li>a</li></ul><pre>code</pre></body></html>";

static const char md_doc[] = "# Title\n\nText with [link](http://x/ \"t\") and ![i](p.png).\n\n"
                             "<!-- note -->\n\n- item\n\n```\ncode\n```\n";

static const char feed_doc[] = "<rss version=\"2.0\"><channel><title>C</title><item><title>I</title>"
                               "<link>http://x/1</link><description>&lt;p&gt;body&lt;/p&gt;</description></item>"
                               "</channel></rss>";

static int hook_libxml; /* route libxml2's allocations through the fault hook */

static void *lx_malloc(size_t n)
{
	return hook_libxml ? ward_malloc(n) : malloc(n);
}

static void *lx_realloc(void *p, size_t n)
{
	return hook_libxml ? ward_realloc(p, n) : realloc(p, n);
}

static char *lx_strdup(const char *s)
{
	return hook_libxml ? ward_strdup(s) : strdup(s);
}

static void lx_free(void *p)
{
	free(p);
}

static int teardown(void **state)
{
	(void)state;
	ward_alloc_fail_reset();
	ward_error_clear();
	return 0;
}

static void sweep(const char *doc, size_t len, ward_doctype type)
{
	ward_extracted *base = NULL;
	long n;

	assert_int_equal(ward_extract(&base, doc, len, type), 0);
	for (n = 0; n < 100000; n++) {
		ward_extracted *x = NULL;
		int rc;

		int failed;

		ward_alloc_fail_after(n);
		rc = ward_extract(&x, doc, len, type);
		failed = ward_alloc_failed();
		ward_alloc_fail_reset();
		if (rc == 0) {
			assert_non_null(x);
			/* success under injection only counts when complete */
			assert_string_equal(x->text, base->text);
			assert_int_equal(x->nsegments, base->nsegments);
			assert_int_equal(x->nlinks, base->nlinks);
			ward_extracted_free(x);
			if (!failed)
				break;
			continue;
		}
		assert_true(rc < 0);
		assert_null(x);
	}
	assert_true(n < 100000);
	ward_extracted_free(base);
}

static void test_ingest_extract_oom__html_sweep(void **state)
{
	(void)state;
	sweep(html_doc, sizeof(html_doc) - 1, WARD_TYPE_HTML);
}

static void test_ingest_extract_oom__markdown_sweep(void **state)
{
	(void)state;
	sweep(md_doc, sizeof(md_doc) - 1, WARD_TYPE_MARKDOWN);
}

static void test_ingest_extract_oom__xml_sweep_with_libxml(void **state)
{
	static const char doc[] = "<?xml version=\"1.0\"?><r><a x=\"1\">text &amp; more</a><!-- c --><b>two</b></r>";

	(void)state;
	hook_libxml = 1;
	sweep(doc, sizeof(doc) - 1, WARD_TYPE_XML);
	hook_libxml = 0;
}

static void test_ingest_extract_oom__feed_sweep(void **state)
{
	ward_feed_item *items = NULL;
	size_t n = 0;
	long k;

	(void)state;
	sweep(feed_doc, sizeof(feed_doc) - 1, WARD_TYPE_FEED);
	for (k = 0; k < 100000; k++) {
		int rc;

		ward_alloc_fail_after(k);
		rc = ward_extract_feed(&items, &n, feed_doc, sizeof(feed_doc) - 1);
		ward_alloc_fail_reset();
		if (rc == 0) {
			assert_int_equal(n, 1);
			assert_string_equal(items[0].content->text, "body");
			ward_feed_items_free(items, n);
			break;
		}
		assert_null(items);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_ingest_extract_oom__html_sweep, teardown),
	        cmocka_unit_test_teardown(test_ingest_extract_oom__markdown_sweep, teardown),
	        cmocka_unit_test_teardown(test_ingest_extract_oom__xml_sweep_with_libxml, teardown),
	        cmocka_unit_test_teardown(test_ingest_extract_oom__feed_sweep, teardown),
	};

	if (xmlMemSetup(lx_free, lx_malloc, lx_realloc, lx_strdup) != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
