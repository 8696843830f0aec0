#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/error.h"
#include "ragward/typegate.h"
#include "core/banned.h"

static int teardown(void **state)
{
	(void)state;
	ward_alloc_fail_reset();
	ward_error_clear();
	return 0;
}

/* Runs the gate and asserts that it ran (rc 0). */
static void gate(ward_gate_result *r, const char *bytes, size_t len, const char *ct, const char *name,
		 unsigned allowed)
{
	int rc = ward_typegate(r, bytes, len, ct, name, allowed);

	if (rc != 0)
		fail_msg("ward_typegate: %d %s", rc, ward_error_last()->message);
}

#define GATE(r, lit, ct, name) gate((r), (lit), sizeof(lit) - 1, (ct), (name), 0)

static void assert_accepted(const ward_gate_result *r, ward_doctype t)
{
	if (r->decision != WARD_GATE_ACCEPT)
		fail_msg("not accepted: decision %d, reason '%s' (declared '%s', detected '%s')", r->decision, r->reason,
			 r->declared, r->detected);
	assert_int_equal(r->type, t);
	assert_non_null(r->utf8);
	assert_string_equal(r->reason, "");
}

static void assert_refused(const ward_gate_result *r, ward_gate_decision d, const char *needle)
{
	if (r->decision != d || strstr(r->reason, needle) == NULL)
		fail_msg("expected decision %d with '%s'; got %d '%s' (declared '%s', detected '%s')", d, needle,
			 r->decision, r->reason, r->declared, r->detected);
	assert_int_equal(r->type, WARD_TYPE_UNKNOWN);
	assert_null(r->utf8);
}

static const char html_doc[] = "<!DOCTYPE html>\n<html><head><title>T</title></head><body><p>Hello</p></body></html>\n";
static const char xhtml_doc[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
				"<html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>t</title></head>"
				"<body><p>x</p></body></html>\n";
static const char xml_doc[] = "<?xml version=\"1.0\"?>\n<!-- a note -->\n<note><to>A</to><body>hi</body></note>\n";
static const char rss_doc[] = "<?xml version=\"1.0\"?>\n<rss version=\"2.0\"><channel><title>News</title>"
			      "<item><title>One</title><link>https://example.org/1</link></item></channel></rss>\n";
static const char atom_doc[] = "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>Blog</title>"
			       "<entry><title>Post</title></entry></feed>\n";
static const char text_doc[] = "Plain words on a line.\nAnother line of ordinary prose.\n";
static const char md_doc[] = "# Title\n\nSome *markdown* with a [link](https://example.org).\n";

static void test_ingest_typegate__html_accepted_by_sniff(void **state)
{
	ward_gate_result r;

	(void)state;
	GATE(&r, html_doc, "text/html; charset=utf-8", NULL);
	assert_accepted(&r, WARD_TYPE_HTML);
	assert_int_equal(r.sniffed, 1);
	assert_string_equal(r.declared, "text/html");
	assert_string_equal(r.detected, "text/html");
	assert_string_equal(r.charset, "utf-8");
	assert_int_equal(r.utf8_len, sizeof(html_doc) - 1);
	assert_memory_equal(r.utf8, html_doc, r.utf8_len);
	ward_gate_result_dispose(&r);

	/* By extension, no header. */
	GATE(&r, html_doc, NULL, "https://example.org/docs/page.HTM?x=1#top");
	assert_accepted(&r, WARD_TYPE_HTML);
	ward_gate_result_dispose(&r);
}

static void test_ingest_typegate__html_fragment_uses_libmagic(void **state)
{
	ward_gate_result r;

	(void)state;
	GATE(&r, "<p>A fragment with <b>bold</b> text.</p>\n", "text/html", NULL);
	assert_accepted(&r, WARD_TYPE_HTML);
	assert_int_equal(r.sniffed, 0);
	ward_gate_result_dispose(&r);
	/* Undeclared HTML is trusted as detected. */
	GATE(&r, html_doc, NULL, NULL);
	assert_accepted(&r, WARD_TYPE_HTML);
	assert_int_equal(r.sniffed, 0);
	ward_gate_result_dispose(&r);
}

static void test_ingest_typegate__xhtml_accepted(void **state)
{
	ward_gate_result r;

	(void)state;
	GATE(&r, xhtml_doc, "application/xhtml+xml", NULL);
	assert_accepted(&r, WARD_TYPE_XHTML);
	ward_gate_result_dispose(&r);
	GATE(&r, xhtml_doc, NULL, "page.xhtml");
	assert_accepted(&r, WARD_TYPE_XHTML);
	ward_gate_result_dispose(&r);
	GATE(&r, xhtml_doc, NULL, NULL);
	assert_accepted(&r, WARD_TYPE_XHTML);
	ward_gate_result_dispose(&r);
	/* Served as text/html it is parsed as HTML. */
	GATE(&r, xhtml_doc, "text/html", NULL);
	assert_accepted(&r, WARD_TYPE_HTML);
	ward_gate_result_dispose(&r);
}

static void test_ingest_typegate__xml_accepted(void **state)
{
	ward_gate_result r;

	(void)state;
	GATE(&r, xml_doc, "application/xml", NULL);
	assert_accepted(&r, WARD_TYPE_XML);
	ward_gate_result_dispose(&r);
	GATE(&r, xml_doc, "text/xml; charset=UTF-8", NULL);
	assert_accepted(&r, WARD_TYPE_XML);
	ward_gate_result_dispose(&r);
	GATE(&r, xml_doc, NULL, NULL);
	assert_accepted(&r, WARD_TYPE_XML);
	ward_gate_result_dispose(&r);
}

static void test_ingest_typegate__rss_and_atom_accepted_as_feed(void **state)
{
	ward_gate_result r;

	(void)state;
	GATE(&r, rss_doc, "application/rss+xml", NULL);
	assert_accepted(&r, WARD_TYPE_FEED);
	ward_gate_result_dispose(&r);
	GATE(&r, rss_doc, "application/xml", NULL);
	assert_accepted(&r, WARD_TYPE_FEED);
	ward_gate_result_dispose(&r);
	GATE(&r, rss_doc, NULL, "news.rss");
	assert_accepted(&r, WARD_TYPE_FEED);
	ward_gate_result_dispose(&r);
	/* libmagic calls this Atom feed text/html (it has <title>): the root decides. */
	GATE(&r, atom_doc, "application/atom+xml", NULL);
	assert_accepted(&r, WARD_TYPE_FEED);
	assert_string_equal(r.detected, "text/html");
	ward_gate_result_dispose(&r);
	GATE(&r, atom_doc, NULL, "blog.atom");
	assert_accepted(&r, WARD_TYPE_FEED);
	ward_gate_result_dispose(&r);
	GATE(&r, "<?xml version=\"1.0\"?><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">"
		 "<channel/></rdf:RDF>\n",
	     "application/rdf+xml", NULL);
	assert_accepted(&r, WARD_TYPE_FEED);
	ward_gate_result_dispose(&r);
}

static void test_ingest_typegate__text_and_markdown_accepted(void **state)
{
	ward_gate_result r;

	(void)state;
	GATE(&r, text_doc, "text/plain", NULL);
	assert_accepted(&r, WARD_TYPE_TEXT);
	ward_gate_result_dispose(&r);
	GATE(&r, text_doc, NULL, "notes.txt");
	assert_accepted(&r, WARD_TYPE_TEXT);
	ward_gate_result_dispose(&r);
	GATE(&r, text_doc, NULL, NULL);
	assert_accepted(&r, WARD_TYPE_TEXT);
	ward_gate_result_dispose(&r);
	GATE(&r, md_doc, "text/markdown; charset=utf-8", NULL);
	assert_accepted(&r, WARD_TYPE_MARKDOWN);
	ward_gate_result_dispose(&r);
	GATE(&r, md_doc, NULL, "/srv/docs/README.md");
	assert_accepted(&r, WARD_TYPE_MARKDOWN);
	assert_string_equal(r.declared, "text/markdown");
	ward_gate_result_dispose(&r);
	/* Raw file hosts serve Markdown as text/plain. */
	GATE(&r, md_doc, "text/plain", "https://example.org/raw/guide.markdown");
	assert_accepted(&r, WARD_TYPE_MARKDOWN);
	ward_gate_result_dispose(&r);
	/* Markdown may embed HTML. */
	GATE(&r, "Intro text.\n\n<a href=\"https://example.org\">link</a>\n", "text/markdown", NULL);
	assert_accepted(&r, WARD_TYPE_MARKDOWN);
	ward_gate_result_dispose(&r);
}

static void test_ingest_typegate__mismatch_quarantined(void **state)
{
	ward_gate_result r;

	(void)state;
	GATE(&r, "<script>alert(document.cookie)</script>\n", "text/plain", NULL);
	assert_refused(&r, WARD_GATE_QUARANTINE, "declared text/plain but the bytes are HTML");
	ward_gate_result_dispose(&r);
	GATE(&r, html_doc, NULL, "notes.txt");
	assert_refused(&r, WARD_GATE_QUARANTINE, "declared text/plain but the bytes are HTML");
	ward_gate_result_dispose(&r);
	GATE(&r, rss_doc, "text/html", NULL);
	assert_refused(&r, WARD_GATE_QUARANTINE, "declared text/html but the bytes are an RSS/Atom feed");
	ward_gate_result_dispose(&r);
	GATE(&r, xml_doc, "text/html", NULL);
	assert_refused(&r, WARD_GATE_QUARANTINE, "root <note>");
	ward_gate_result_dispose(&r);
	GATE(&r, html_doc, "application/rss+xml", NULL);
	assert_refused(&r, WARD_GATE_QUARANTINE, "declared application/rss+xml but the root element is <html>");
	ward_gate_result_dispose(&r);
	GATE(&r, text_doc, "application/xml", NULL);
	assert_refused(&r, WARD_GATE_QUARANTINE, "declared application/xml but the bytes are plain text");
	ward_gate_result_dispose(&r);
	GATE(&r, xml_doc, "text/markdown", NULL);
	assert_refused(&r, WARD_GATE_QUARANTINE, "declared text/markdown but the bytes are XML");
	ward_gate_result_dispose(&r);
	GATE(&r, html_doc, "text/markdown", NULL);
	assert_refused(&r, WARD_GATE_QUARANTINE, "declared text/markdown but the bytes are HTML");
	ward_gate_result_dispose(&r);
	GATE(&r, text_doc, "application/octet-stream", NULL);
	assert_refused(&r, WARD_GATE_QUARANTINE, "declared application/octet-stream but the bytes are plain text");
	ward_gate_result_dispose(&r);
	GATE(&r, html_doc, "text html", NULL);
	assert_refused(&r, WARD_GATE_QUARANTINE, "malformed Content-Type");
	ward_gate_result_dispose(&r);
	GATE(&r, html_doc, "text/html; charset=utf-8; charset=latin1", NULL);
	assert_refused(&r, WARD_GATE_QUARANTINE, "malformed Content-Type");
	ward_gate_result_dispose(&r);
}

static void test_ingest_typegate__content_type_grammar(void **state)
{
	ward_gate_result r;

	(void)state;
	GATE(&r, "caf\xe9\n", " Text/PLAIN ;Charset=\"ISO-8859-1\";; format=flowed ", NULL);
	assert_accepted(&r, WARD_TYPE_TEXT);
	assert_string_equal(r.declared, "text/plain");
	assert_string_equal(r.charset, "windows-1252");
	ward_gate_result_dispose(&r);
}

static void test_ingest_typegate__allowed_set_restricts(void **state)
{
	ward_gate_result r;

	(void)state;
	gate(&r, html_doc, sizeof(html_doc) - 1, "text/html", NULL, 1u << WARD_TYPE_TEXT);
	assert_refused(&r, WARD_GATE_QUARANTINE, "type html (detected text/html) is not allowed for this source");
	ward_gate_result_dispose(&r);
	gate(&r, rss_doc, sizeof(rss_doc) - 1, NULL, NULL, (1u << WARD_TYPE_HTML) | (1u << WARD_TYPE_XML));
	assert_refused(&r, WARD_GATE_QUARANTINE, "type feed");
	ward_gate_result_dispose(&r);
	gate(&r, text_doc, sizeof(text_doc) - 1, NULL, NULL, 1u << WARD_TYPE_TEXT);
	assert_accepted(&r, WARD_TYPE_TEXT);
	ward_gate_result_dispose(&r);
}

static void test_ingest_typegate__empty_rejected(void **state)
{
	ward_gate_result r;

	(void)state;
	gate(&r, "", 0, "text/html", NULL, 0);
	assert_refused(&r, WARD_GATE_REJECT, "empty document");
	ward_gate_result_dispose(&r);
	gate(&r, NULL, 0, NULL, NULL, 0);
	assert_refused(&r, WARD_GATE_REJECT, "empty document");
	ward_gate_result_dispose(&r);
	GATE(&r, " \n\t\n", "text/plain", NULL);
	assert_refused(&r, WARD_GATE_REJECT, "empty document");
	ward_gate_result_dispose(&r);
}

static void test_ingest_typegate__binaries_rejected(void **state)
{
	static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
					    0,	  0,   0,   1,	 0,    0,    0,	   1,	 8, 6, 0, 0,  0};
	static const unsigned char gz[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 'x', 'y', 'z', 0, 0, 0};
	/* A whole stored zip of "a.txt" (libmagic wants the central directory too). */
	static const unsigned char zip[] = {
		0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0xaa, 0x43,
		0x7c, 0x5d, 0x86, 0xa6, 0x10, 0x36, 0x05, 0x00, 0x00, 0x00, 0x05, 0x00,
		0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x61, 0x2e, 0x74, 0x78, 0x74, 0x68,
		0x65, 0x6c, 0x6c, 0x6f, 0x50, 0x4b, 0x01, 0x02, 0x14, 0x03, 0x14, 0x00,
		0x00, 0x00, 0x00, 0x00, 0xaa, 0x43, 0x7c, 0x5d, 0x86, 0xa6, 0x10, 0x36,
		0x05, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x01, 0x00, 0x00,
		0x00, 0x00, 0x61, 0x2e, 0x74, 0x78, 0x74, 0x50, 0x4b, 0x05, 0x06, 0x00,
		0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x33, 0x00, 0x00, 0x00, 0x28,
		0x00, 0x00, 0x00, 0x00, 0x00,
	};
	static const char pdf[] = "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n";
	unsigned char elf[64];
	ward_gate_result r;

	(void)state;
	/* A 64-byte ELF header (x86-64 executable), built here rather than shipped. */
	memset(elf, 0, sizeof(elf));
	memcpy(elf, "\x7f" "ELF", 4);
	elf[4] = 2;	/* 64-bit */
	elf[5] = 1;	/* little-endian */
	elf[6] = 1;	/* version */
	elf[16] = 2;	/* ET_EXEC */
	elf[18] = 0x3e; /* x86-64 */
	elf[20] = 1;
	elf[52] = 64; /* e_ehsize */
	gate(&r, (const char *)elf, sizeof(elf), "text/html", NULL, 0);
	assert_refused(&r, WARD_GATE_REJECT, "application/x-executable");
	ward_gate_result_dispose(&r);

	gate(&r, (const char *)png, sizeof(png), "text/html", NULL, 0);
	assert_refused(&r, WARD_GATE_REJECT, "detected image/png: binary");
	ward_gate_result_dispose(&r);
	gate(&r, (const char *)gz, sizeof(gz), NULL, "page.html", 0);
	assert_refused(&r, WARD_GATE_REJECT, "application/gzip");
	ward_gate_result_dispose(&r);
	gate(&r, (const char *)zip, sizeof(zip), "text/plain", NULL, 0);
	assert_refused(&r, WARD_GATE_REJECT, "application/zip");
	ward_gate_result_dispose(&r);
	gate(&r, pdf, sizeof(pdf) - 1, NULL, NULL, 0);
	assert_refused(&r, WARD_GATE_REJECT, "application/pdf");
	ward_gate_result_dispose(&r);
	/* A PDF can never hide behind a cheap sniff: it does not start like HTML. */
	gate(&r, pdf, sizeof(pdf) - 1, "text/html", NULL, 0);
	assert_refused(&r, WARD_GATE_REJECT, "application/pdf");
	assert_int_equal(r.sniffed, 0);
	ward_gate_result_dispose(&r);
}

static void test_ingest_typegate__nul_in_text_rejected(void **state)
{
	static const char doc[] = "This looks like text\0 but carries a NUL byte and more words after it.\n";
	static const char html_nul[] = "<!doctype html><html><body>hi\0there</body></html>";
	ward_gate_result r;

	(void)state;
	gate(&r, doc, sizeof(doc) - 1, "text/plain", NULL, 0);
	assert_refused(&r, WARD_GATE_REJECT, "NUL byte at offset 20");
	ward_gate_result_dispose(&r);
	/* The NUL also keeps the cheap sniff from deciding. */
	gate(&r, html_nul, sizeof(html_nul) - 1, "text/html", NULL, 0);
	assert_refused(&r, WARD_GATE_REJECT, "NUL byte");
	assert_int_equal(r.sniffed, 0);
	ward_gate_result_dispose(&r);
}

static void test_ingest_typegate__utf8_bom_removed(void **state)
{
	ward_gate_result r;

	(void)state;
	GATE(&r, "\xef\xbb\xbf" "caf\xc3\xa9 au lait\n", "text/plain; charset=iso-8859-1", NULL);
	assert_accepted(&r, WARD_TYPE_TEXT);
	assert_string_equal(r.charset, "utf-8"); /* the BOM wins over the header */
	assert_string_equal(r.utf8, "caf\xc3\xa9 au lait\n");
	assert_int_equal(r.utf8_len, strlen("caf\xc3\xa9 au lait\n"));
	ward_gate_result_dispose(&r);
	/* The sniff sees past a BOM. */
	GATE(&r, "\xef\xbb\xbf<!DOCTYPE html><html><body>x</body></html>", "text/html", NULL);
	assert_accepted(&r, WARD_TYPE_HTML);
	assert_int_equal(r.sniffed, 1);
	assert_memory_equal(r.utf8, "<!DOCTYPE", 9);
	ward_gate_result_dispose(&r);
}

static void test_ingest_typegate__utf16le_bom_converted(void **state)
{
	/* BOM, then "<p>Caf\u00e9 \u65e5\U0001F600</p>\n" in UTF-16LE. */
	static const char doc[] = "\xff\xfe<\0p\0>\0C\0a\0f\0\xe9\0 \0\xe5\x65\x3d\xd8\x00\xde<\0/\0p\0>\0\n\0";
	static const char want[] = "<p>Caf\xc3\xa9 \xe6\x97\xa5\xf0\x9f\x98\x80</p>\n";
	/* An unpaired high surrogate. */
	static const char bad[] = "\xff\xfeh\0i\0\x3d\xd8h\0i\0\n\0";
	ward_gate_result r;

	(void)state;
	gate(&r, doc, sizeof(doc) - 1, "text/html", NULL, 0);
	assert_accepted(&r, WARD_TYPE_HTML);
	assert_string_equal(r.charset, "utf-16le");
	assert_string_equal(r.utf8, want);
	ward_gate_result_dispose(&r);
	gate(&r, bad, sizeof(bad) - 1, "text/plain", NULL, 0);
	assert_refused(&r, WARD_GATE_REJECT, "undecodable as utf-16le");
	ward_gate_result_dispose(&r);
	/* Declared UTF-16 without a BOM: converted before detection. */
	gate(&r, "h\0e\0l\0l\0o\0 \0w\0o\0r\0l\0d\0\n\0", 24, "text/plain; charset=utf-16le", NULL, 0);
	assert_accepted(&r, WARD_TYPE_TEXT);
	assert_string_equal(r.utf8, "hello world\n");
	ward_gate_result_dispose(&r);
}

static void test_ingest_typegate__iso_8859_1_via_content_type(void **state)
{
	ward_gate_result r;

	(void)state;
	GATE(&r, "<p>Caf\xe9 na\xefve \xc5ngstr\xf6m</p>\n", "text/html; charset=ISO-8859-1", NULL);
	assert_accepted(&r, WARD_TYPE_HTML);
	/* Decoded as windows-1252, as browsers do for this label. */
	assert_string_equal(r.charset, "windows-1252");
	assert_string_equal(r.utf8, "<p>Caf\xc3\xa9 na\xc3\xafve \xc3\x85ngstr\xc3\xb6m</p>\n");
	ward_gate_result_dispose(&r);
}

static void test_ingest_typegate__windows_1252_via_meta(void **state)
{
	static const char doc[] = "<!DOCTYPE html>\n<html><head><!-- <meta charset=\"koi8-r\"> -->\n"
				  "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\">\n"
				  "<title>t</title></head><body><p>\x93quoted\x94 \x80" "5</p></body></html>\n";
	static const char doc2[] = "<html><head><meta charset='windows-1252'></head><body>\x96 dash</body></html>\n";
	ward_gate_result r;

	(void)state;
	GATE(&r, doc, "text/html", NULL);
	assert_accepted(&r, WARD_TYPE_HTML);
	assert_string_equal(r.charset, "windows-1252");
	assert_non_null(strstr(r.utf8, "<p>\xe2\x80\x9cquoted\xe2\x80\x9d \xe2\x82\xac" "5</p>"));
	ward_gate_result_dispose(&r);
	GATE(&r, doc2, NULL, "index.html");
	assert_accepted(&r, WARD_TYPE_HTML);
	assert_string_equal(r.charset, "windows-1252");
	assert_non_null(strstr(r.utf8, "\xe2\x80\x93 dash"));
	ward_gate_result_dispose(&r);
}

static void test_ingest_typegate__shift_jis_via_xml_declaration(void **state)
{
	/* 日本語 in Shift_JIS is 93 FA 96 7B 8C EA. */
	static const char doc[] = "<?xml version=\"1.0\" encoding=\"Shift_JIS\"?>\n<note><body>\x93\xfa\x96\x7b\x8c\xea"
				  "</body></note>\n";
	static const char bad[] = "<?xml version=\"1.0\" encoding=\"Shift_JIS\"?>\n<note><body>\x93\x20\x20</body></note>\n";
	ward_gate_result r;

	(void)state;
	GATE(&r, doc, "application/xml", NULL);
	assert_accepted(&r, WARD_TYPE_XML);
	assert_string_equal(r.charset, "shift_jis");
	assert_non_null(strstr(r.utf8, "<body>\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e</body>"));
	ward_gate_result_dispose(&r);
	GATE(&r, bad, "application/xml", NULL);
	assert_refused(&r, WARD_GATE_REJECT, "undecodable as shift_jis");
	ward_gate_result_dispose(&r);
}

static void test_ingest_typegate__invalid_utf8_without_charset_rejected(void **state)
{
	ward_gate_result r;

	(void)state;
	GATE(&r, "caf\xe9 au lait, with more plain text\n", "text/plain", NULL);
	assert_refused(&r, WARD_GATE_REJECT, "not valid UTF-8 and no charset declared");
	ward_gate_result_dispose(&r);
	/* Overlong and surrogate encodings are not UTF-8 either. */
	GATE(&r, "a \xc0\xaf slash, and more words here\n", NULL, "a.txt");
	assert_refused(&r, WARD_GATE_REJECT, "not valid UTF-8");
	ward_gate_result_dispose(&r);
	GATE(&r, "a \xed\xa0\x80 surrogate, and more words\n", NULL, "a.txt");
	assert_refused(&r, WARD_GATE_REJECT, "not valid UTF-8");
	ward_gate_result_dispose(&r);
}

static void test_ingest_typegate__undecodable_for_declared_charset_rejected(void **state)
{
	ward_gate_result r;

	(void)state;
	GATE(&r, "plain \x81\x20 text with a broken lead byte\n", "text/plain; charset=shift_jis", NULL);
	assert_refused(&r, WARD_GATE_REJECT, "undecodable as shift_jis");
	ward_gate_result_dispose(&r);
	GATE(&r, "caf\xe9 text\n", "text/plain; charset=utf-8", NULL);
	assert_refused(&r, WARD_GATE_REJECT, "undecodable as utf-8");
	ward_gate_result_dispose(&r);
	GATE(&r, "hello +AGEAYgBj- world\n", "text/plain; charset=utf-7", NULL);
	assert_refused(&r, WARD_GATE_REJECT, "charset 'utf-7' is not allowed");
	ward_gate_result_dispose(&r);
	GATE(&r, "<html><head><meta charset=\"x-user-defined\"></head><body>x</body></html>", "text/html", NULL);
	assert_refused(&r, WARD_GATE_REJECT, "charset 'x-user-defined' (<meta>) is not allowed");
	ward_gate_result_dispose(&r);
}

static void *thread_gate(void *arg)
{
	ward_gate_result r;
	int *ok = arg;

	*ok = ward_typegate(&r, text_doc, sizeof(text_doc) - 1, "text/plain", NULL, 0) == 0 &&
	      r.decision == WARD_GATE_ACCEPT && r.type == WARD_TYPE_TEXT;
	ward_gate_result_dispose(&r);
	return NULL;
}

/* A hostile MAGIC variable cannot choose the database (the path is pinned),
 * and each thread gets a cookie of its own that is closed when it exits. */
static void test_ingest_typegate__pinned_database_and_threads(void **state)
{
	pthread_t th[3];
	int ok[3] = {0, 0, 0};
	int i;

	(void)state;
	assert_int_equal(setenv("MAGIC", "/nonexistent/planted.mgc", 1), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, thread_gate, &ok[i]), 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_true(ok[i]);
	}
	unsetenv("MAGIC");
}

/* Every allocation failure is an error or a success, never a crash or leak. */
static void test_ingest_typegate__allocation_failures(void **state)
{
	static const struct {
		const char *doc;
		const char *ct;
	} cases[] = {
		{"<!DOCTYPE html><html><body>caf\xe9</body></html>", "text/html; charset=windows-1252"},
		{"\xff\xfeh\0i\0\n\0", "text/plain"},
		{"plain text body\n", NULL},
	};
	size_t c;

	(void)state;
	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		size_t len = strlen(cases[c].doc);
		long n;

		if (c == 1)
			len = 8;
		for (n = 0; n < 1000; n++) {
			ward_gate_result r;
			int rc;

			ward_alloc_fail_after(n);
			rc = ward_typegate(&r, cases[c].doc, len, cases[c].ct, NULL, 0);
			ward_alloc_fail_reset();
			if (rc == 0) {
				assert_int_equal(r.decision, WARD_GATE_ACCEPT);
				ward_gate_result_dispose(&r);
				break;
			}
			assert_int_equal(rc, WARD_ENOMEM);
			assert_null(r.utf8);
		}
		assert_true(n < 1000);
	}
}

/* Offsets after conversion still point at the original bytes: a finding
 * or citation in a Latin-1 or UTF-16 page names the bytes as fetched. */
static void test_ingest_typegate__offsets_map_to_original_bytes(void **state)
{
	static const char latin1[] = "<html><head><meta charset=\"iso-8859-1\"></head><body><p>Caf\xe9 cr\xe8me, "
				     "then the marker.</p></body></html>";
	static const char utf16[] = "\xff\xfeo\0k\0 \0m\0a\0r\0k\0";
	ward_gate_result g;
	const char *m;
	size_t at;

	(void)state;
	memset(&g, 0, sizeof(g));
	assert_int_equal(ward_typegate(&g, latin1, sizeof(latin1) - 1, "text/html", NULL, 0), 0);
	assert_int_equal(g.decision, WARD_GATE_ACCEPT);
	m = strstr(g.utf8, "marker");
	assert_non_null(m);
	at = ward_offmap_lookup(&g.map, (size_t)(m - g.utf8));
	assert_int_equal(at, (size_t)(strstr(latin1, "marker") - latin1)); /* two bytes earlier than in UTF-8 */
	ward_gate_result_dispose(&g);

	memset(&g, 0, sizeof(g));
	assert_int_equal(ward_typegate(&g, utf16, sizeof(utf16) - 1, NULL, "x.txt", 0), 0);
	assert_int_equal(g.decision, WARD_GATE_ACCEPT);
	assert_string_equal(g.utf8, "ok mark");
	assert_int_equal(ward_offmap_lookup(&g.map, 3), 2 + 2 * 3); /* after the BOM, two bytes a character */
	assert_int_equal(ward_offmap_lookup(&g.map, 7), sizeof(utf16) - 1);
	ward_gate_result_dispose(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ingest_typegate__offsets_map_to_original_bytes),
		cmocka_unit_test_teardown(test_ingest_typegate__html_accepted_by_sniff, teardown),
		cmocka_unit_test_teardown(test_ingest_typegate__html_fragment_uses_libmagic, teardown),
		cmocka_unit_test_teardown(test_ingest_typegate__xhtml_accepted, teardown),
		cmocka_unit_test_teardown(test_ingest_typegate__xml_accepted, teardown),
		cmocka_unit_test_teardown(test_ingest_typegate__rss_and_atom_accepted_as_feed, teardown),
		cmocka_unit_test_teardown(test_ingest_typegate__text_and_markdown_accepted, teardown),
		cmocka_unit_test_teardown(test_ingest_typegate__mismatch_quarantined, teardown),
		cmocka_unit_test_teardown(test_ingest_typegate__content_type_grammar, teardown),
		cmocka_unit_test_teardown(test_ingest_typegate__allowed_set_restricts, teardown),
		cmocka_unit_test_teardown(test_ingest_typegate__empty_rejected, teardown),
		cmocka_unit_test_teardown(test_ingest_typegate__binaries_rejected, teardown),
		cmocka_unit_test_teardown(test_ingest_typegate__nul_in_text_rejected, teardown),
		cmocka_unit_test_teardown(test_ingest_typegate__utf8_bom_removed, teardown),
		cmocka_unit_test_teardown(test_ingest_typegate__utf16le_bom_converted, teardown),
		cmocka_unit_test_teardown(test_ingest_typegate__iso_8859_1_via_content_type, teardown),
		cmocka_unit_test_teardown(test_ingest_typegate__windows_1252_via_meta, teardown),
		cmocka_unit_test_teardown(test_ingest_typegate__shift_jis_via_xml_declaration, teardown),
		cmocka_unit_test_teardown(test_ingest_typegate__invalid_utf8_without_charset_rejected, teardown),
		cmocka_unit_test_teardown(test_ingest_typegate__undecodable_for_declared_charset_rejected, teardown),
		cmocka_unit_test_teardown(test_ingest_typegate__pinned_database_and_threads, teardown),
		cmocka_unit_test_teardown(test_ingest_typegate__allocation_failures, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
