/*
 * XML extraction: DOCTYPE attacks refused (XXE to a local file, external DTD,
 * billion laughs), depth cap, generic XML text, RSS and Atom feeds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest/extract_internal.h"
#include "ragward/alloc.h"
#include "ragward/error.h"
#include "ragward/extract.h"
#include "tests/support/testutil.h"
#include "core/banned.h"

#define SECRET "TOP-SECRET-7f3a9c"

static int teardown(void **state)
{
	(void)state;
	ward_alloc_fail_reset();
	ward_error_clear();
	return 0;
}

static char *fixture(const char *name, size_t *len)
{
	const char *dir = getenv("RAGWARD_SOURCE_DIR");
	char path[4096];
	char *data;

	assert_non_null(dir);
	assert_true(snprintf(path, sizeof(path), "%s/tests/fixtures/extract/%s", dir, name) < (int)sizeof(path));
	data = tu_read_file(path, len);
	if (data == NULL)
		fail_msg("cannot read fixture %s", path);
	return data;
}

/* A secret file in a fresh scratch directory (removed with tu_home_free of
 * *home); returns its path. */
static char *secret_file(char **home)
{
	char *path;

	/* tu_home_path names a not-yet-existing "home" under a fresh parent */
	*home = tu_home_path("xxe");
	assert_int_equal(mkdir(*home, 0700), 0);
	path = tu_path(*home, "secret.txt");
	tu_write_str(path, SECRET "\n");
	return path;
}

static void assert_refused(const char *doc, int want_code, const char *msg_part)
{
	ward_extracted *x = NULL;
	ward_feed_item *items = NULL;
	size_t n = 99;
	unsigned long loads = extract_denied_loads();
	int rc;

	rc = ward_extract(&x, doc, strlen(doc), WARD_TYPE_XML);
	if (rc != want_code)
		fail_msg("got %d (%s), want %d", rc, ward_error_last()->message, want_code);
	assert_null(x);
	if (msg_part != NULL && !tu_error_has(msg_part))
		fail_msg("message '%s' lacks '%s'", ward_error_last()->message, msg_part);
	assert_false(strstr(ward_error_last()->message, SECRET) != NULL);
	assert_int_equal(ward_extract(&x, doc, strlen(doc), WARD_TYPE_FEED), want_code);
	assert_int_equal(ward_extract_feed(&items, &n, doc, strlen(doc)), want_code);
	assert_null(items);
	assert_int_equal(n, 0);
	/* refused at the DOCTYPE: nothing was even asked of the loader */
	assert_int_equal(extract_denied_loads(), loads);
}

static void test_ingest_extract_xml__xxe_local_file_refused(void **state)
{
	char *home = NULL;
	char *path = secret_file(&home);
	char doc[8192];

	(void)state;
	assert_true(snprintf(doc, sizeof(doc),
	                     "<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM \"file://%s\">]>\n<r>&x;</r>\n",
	                     path) < (int)sizeof(doc));
	assert_refused(doc, WARD_EPOLICY, "DOCTYPE");
	/* and through HTML: the HTML parser never loads entities either */
	{
		ward_extracted *x = NULL;
		size_t i;

		assert_int_equal(ward_extract(&x, doc, strlen(doc), WARD_TYPE_HTML), 0);
		assert_null(strstr(x->text, SECRET));
		for (i = 0; i < x->nsegments; i++)
			assert_null(strstr(x->segments[i].text, SECRET));
		ward_extracted_free(x);
	}
	unlink(path);
	free(path);
	tu_home_free(home);
}

static void test_ingest_extract_xml__external_dtd_refused(void **state)
{
	char *home = NULL;
	char *path = secret_file(&home);
	char doc[8192];

	(void)state;
	assert_true(snprintf(doc, sizeof(doc), "<?xml version=\"1.0\"?>\n<!DOCTYPE r SYSTEM \"file://%s\">\n<r/>\n",
	                     path) < (int)sizeof(doc));
	assert_refused(doc, WARD_EPOLICY, "DOCTYPE");
	assert_refused("<!DOCTYPE r PUBLIC \"-//X//Y\" \"http://127.0.0.1:9/x.dtd\"><r/>", WARD_EPOLICY, "DOCTYPE");
	/* the out-of-band pattern: a parameter entity pulling an external DTD */
	assert_refused("<!DOCTYPE r [<!ENTITY % p SYSTEM \"http://127.0.0.1:9/e.dtd\"> %p;]><r/>", WARD_EPOLICY,
	               "DOCTYPE");
	unlink(path);
	free(path);
	tu_home_free(home);
}

static void test_ingest_extract_xml__billion_laughs_refused(void **state)
{
	static const char doc[] = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n"
	                          " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
	                          " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
	                          " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
	                          " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
	                          " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
	                          " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
	                          " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
	                          " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
	                          " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
	                          "]>\n<lolz>&lol9;</lolz>\n";

	(void)state;
	assert_refused(doc, WARD_EPOLICY, "DOCTYPE");
}

static void test_ingest_extract_xml__deep_nesting_refused(void **state)
{
	size_t depth = 10000;
	char *doc = malloc(depth * 7 + 16);
	ward_extracted *x = NULL;
	size_t i;
	size_t p = 0;
	int rc;

	(void)state;
	assert_non_null(doc);
	for (i = 0; i < depth; i++) {
		memcpy(doc + p, "<a>", 3);
		p += 3;
	}
	for (i = 0; i < depth; i++) {
		memcpy(doc + p, "</a>", 4);
		p += 4;
	}
	rc = ward_extract(&x, doc, p, WARD_TYPE_XML);
	free(doc);
	assert_int_equal(rc, WARD_ETOOBIG);
	assert_null(x);
	assert_true(tu_error_has("deeper"));
}

static void test_ingest_extract_xml__malformed_refused(void **state)
{
	ward_extracted *x = NULL;

	(void)state;
	assert_int_equal(ward_extract(&x, "<a><b></a>", 10, WARD_TYPE_XML), WARD_EINVAL);
	assert_true(tu_error_has("not well-formed"));
	assert_int_equal(ward_extract(&x, "", 0, WARD_TYPE_XML), WARD_EINVAL);
	assert_int_equal(ward_extract(&x, "<a>\xff</a>", 8, WARD_TYPE_XML), WARD_EINVAL);
	assert_true(tu_error_has("UTF-8"));
}

static void test_ingest_extract_xml__generic_text(void **state)
{
	size_t len;
	char *src = fixture("generic.xml", &len);
	ward_extracted *x = NULL;
	const char *t;

	(void)state;
	assert_int_equal(ward_extract(&x, src, len, WARD_TYPE_XML), 0);
	assert_string_equal(x->text, "Dune\n\nFrank Herbert\n\nSolaris & more\n\nmixed\n\ninner\n\ntail");
	assert_int_equal(x->nsegments, 1);
	assert_int_equal(x->segments[0].channel, WARD_CH_COMMENT);
	assert_non_null(strstr(x->segments[0].text, "XML_COMMENT"));
	t = strstr(x->text, "Frank");
	assert_memory_equal(src + ward_offmap_lookup(&x->map, (size_t)(t - x->text)), "Frank Herbert", 13);
	t = strstr(x->text, "tail");
	assert_memory_equal(src + ward_offmap_lookup(&x->map, (size_t)(t - x->text)), "tail", 4);
	ward_extracted_free(x);
	free(src);
}

static void test_ingest_extract_xml__rss_items(void **state)
{
	size_t len;
	char *src = fixture("rss.xml", &len);
	ward_feed_item *items = NULL;
	size_t n = 0;
	const char *t;

	(void)state;
	assert_int_equal(ward_extract_feed(&items, &n, src, len), 0);
	assert_int_equal(n, 2);
	assert_string_equal(items[0].title, "First post");
	assert_string_equal(items[0].link, "https://news.example/1");
	assert_string_equal(items[0].date, "Mon, 06 Jan 2025 10:00:00 GMT");
	assert_string_equal(items[0].content->text, "Escaped HTML body.");
	assert_string_equal(items[0].content->title, "First post");
	/* hidden HTML inside an escaped description is still a hidden channel */
	assert_int_equal(items[0].content->nsegments, 1);
	assert_int_equal(items[0].content->segments[0].channel, WARD_CH_HIDDEN);
	assert_string_equal(items[0].content->segments[0].text, "FEED_HIDDEN payload");
	assert_string_equal(items[1].title, "Second post");
	assert_string_equal(items[1].date, "2025-01-07T10:00:00Z");
	/* content:encoded wins over description */
	assert_string_equal(items[1].content->text, "Full text\n\nCDATA body with a link.");
	assert_int_equal(items[1].content->nlinks, 1);
	assert_string_equal(items[1].content->links[0].url, "https://x.example/leak?d=1");
	/* CDATA is verbatim: offsets land in the feed's bytes */
	t = strstr(items[1].content->text, "CDATA body");
	assert_memory_equal(src + ward_offmap_lookup(&items[1].content->map, (size_t)(t - items[1].content->text)),
	                    "CDATA body", 10);
	assert_memory_equal(src + items[1].content->links[0].src_start, "<a href", 7);
	ward_feed_items_free(items, n);
	free(src);
}

static void test_ingest_extract_xml__atom_items(void **state)
{
	size_t len;
	char *src = fixture("atom.xml", &len);
	ward_feed_item *items = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(ward_extract_feed(&items, &n, src, len), 0);
	assert_int_equal(n, 2);
	assert_string_equal(items[0].title, "Atom entry one");
	assert_string_equal(items[0].link, "https://atom.example/1");
	assert_string_equal(items[0].date, "2025-02-01T00:00:00Z");
	assert_string_equal(items[0].content->text, "Atom html content");
	assert_string_equal(items[1].link, "https://atom.example/2");
	assert_string_equal(items[1].date, "2025-02-02T00:00:00Z");
	assert_string_equal(items[1].content->text, "Plain summary text");
	ward_feed_items_free(items, n);
	free(src);
}

static void test_ingest_extract_xml__feed_as_one_document(void **state)
{
	size_t len;
	char *src = fixture("rss.xml", &len);
	ward_extracted *x = NULL;
	const char *t;

	(void)state;
	assert_int_equal(ward_extract(&x, src, len, WARD_TYPE_FEED), 0);
	assert_string_equal(x->title, "Example News");
	assert_string_equal(x->text, "Example News\n\nFirst post\n\nEscaped HTML body.\n\nSecond post\n\n"
	                             "Full text\n\nCDATA body with a link.");
	assert_int_equal(x->blocks[0].kind, WARD_BLOCK_TITLE);
	assert_int_equal(x->blocks[1].kind, WARD_BLOCK_HEADING);
	assert_int_equal(x->blocks[1].level, 2);
	t = strstr(x->text, "Second post");
	assert_memory_equal(src + ward_offmap_lookup(&x->map, (size_t)(t - x->text)), "Second post", 11);
	assert_int_equal(x->nsegments, 1);
	assert_int_equal(x->nlinks, 1);
	ward_extracted_free(x);
	/* not a feed: ward_extract_feed refuses, ward_extract FEED falls back to XML */
	{
		ward_feed_item *items = NULL;
		size_t n = 0;

		assert_int_equal(ward_extract_feed(&items, &n, "<a>x</a>", 8), WARD_EINVAL);
		assert_int_equal(ward_extract(&x, "<a>x</a>", 8, WARD_TYPE_FEED), 0);
		assert_string_equal(x->text, "x");
		ward_extracted_free(x);
	}
	free(src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_ingest_extract_xml__xxe_local_file_refused, teardown),
	        cmocka_unit_test_teardown(test_ingest_extract_xml__external_dtd_refused, teardown),
	        cmocka_unit_test_teardown(test_ingest_extract_xml__billion_laughs_refused, teardown),
	        cmocka_unit_test_teardown(test_ingest_extract_xml__deep_nesting_refused, teardown),
	        cmocka_unit_test_teardown(test_ingest_extract_xml__malformed_refused, teardown),
	        cmocka_unit_test_teardown(test_ingest_extract_xml__generic_text, teardown),
	        cmocka_unit_test_teardown(test_ingest_extract_xml__rss_items, teardown),
	        cmocka_unit_test_teardown(test_ingest_extract_xml__atom_items, teardown),
	        cmocka_unit_test_teardown(test_ingest_extract_xml__feed_as_one_document, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
