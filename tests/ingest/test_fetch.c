/*
 * ward_fetch_url against a real HTTPS server on 127.0.0.1 (libmicrohttpd,
 * test CA generated at run time). Each hostile route must end refused with
 * the right code and reason, nothing returned, and within the byte and time
 * caps; the plain routes must come back with their provenance recorded.
 *
 * The server is on loopback, so every fetch here sets allow_private; the
 * SSRF guard itself is tested in test_fetch_ssrf.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <cmocka.h>

#include "ragward/fetch.h"
#include "ragward/alloc.h"
#include "ragward/crypto.h"
#include "ragward/error.h"
#include "tests/support/https_server.h"
#include "tests/support/testutil.h"
#include "core/banned.h"

#define CAP 65536

static char *home;
static hs_pki pki, rogue_pki;
static hs_server *srv, *rogue;
static char origin[64];       /* "https://127.0.0.1:PORT" */
static char rogue_origin[64];
static int allow_calls;
static char last_allow[512];

/* The allowlist of the tests: the two test servers' origins, nothing else. */
static int allow_test_servers(void *ctx, const char *url)
{
	size_t n = strlen(origin), m = strlen(rogue_origin);

	allow_calls++;
	snprintf(last_allow, sizeof(last_allow), "%s", url);
	if ((strncmp(url, origin, n) == 0 && url[n] == '/') || (strncmp(url, rogue_origin, m) == 0 && url[m] == '/'))
		return 0;
	return ward_error_set(WARD_EPOLICY, "url '%s': not covered by any approved source", url);
}

static ward_fetch_opts opts(void)
{
	ward_fetch_opts o;

	memset(&o, 0, sizeof(o));
	o.ca_file = pki.ca_file;
	o.allow_private = 1;
	o.max_bytes = CAP;
	o.connect_timeout_ms = 2000;
	o.total_timeout_ms = 10000;
	o.low_speed_bytes = 1;
	o.low_speed_seconds = 2;
	o.allow_url = allow_test_servers;
	return o;
}

static char *url_of(const char *path)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s%s", origin, path);
	return buf;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fetch refused with `code`, nothing returned, message containing needle. */
static void expect_refused(const char *path, const ward_fetch_opts *o, int code, const char *needle)
{
	ward_fetch_result *r = (ward_fetch_result *)(uintptr_t)1;
	int rc = ward_fetch_url(&r, url_of(path), o);

	if (rc != code || (needle && !tu_error_has(needle)))
		print_error("%s: got %d (%s), want %d with '%s'\n", path, rc, ward_error_last()->message, code,
			    needle ? needle : "");
	assert_int_equal(rc, code);
	assert_null(r);
	if (needle)
		assert_true(tu_error_has(needle));
}

static int group_setup(void **state)
{
	char *dir;

	home = tu_home_path("fetch");
	dir = home;
	if (mkdir(dir, 0700) != 0 || hs_pki_make(&pki, dir, "good") != 0 || hs_pki_make(&rogue_pki, dir, "rogue") != 0)
		return -1;
	srv = hs_server_start(&pki);
	rogue = hs_server_start(&rogue_pki);
	if (srv == NULL || rogue == NULL)
		return -1;
	snprintf(origin, sizeof(origin), "https://127.0.0.1:%u", hs_server_port(srv));
	snprintf(rogue_origin, sizeof(rogue_origin), "https://127.0.0.1:%u", hs_server_port(rogue));
	return 0;
}

static int group_teardown(void **state)
{
	hs_server_stop(srv);
	hs_server_stop(rogue);
	hs_pki_dispose(&pki);
	hs_pki_dispose(&rogue_pki);
	tu_home_free(home);
	return 0;
}

static void test_ingest_fetch__page_records_provenance(void **state)
{
	ward_fetch_opts o = opts();
	ward_fetch_result *r = NULL;
	uint8_t want[WARD_SHA256_LEN];

	assert_int_equal(ward_fetch_url(&r, url_of("/page"), &o), 0);
	assert_non_null(r);
	assert_int_equal(r->status, 200);
	assert_int_equal(r->len, strlen(HS_PAGE_BODY));
	assert_memory_equal(r->body, HS_PAGE_BODY, r->len);
	assert_int_equal(r->body[r->len], '\0');
	assert_int_equal(ward_sha256(want, HS_PAGE_BODY, strlen(HS_PAGE_BODY)), 0);
	assert_memory_equal(r->sha256, want, sizeof(want));
	assert_string_equal(r->url, url_of("/page"));
	assert_string_equal(r->final_url, url_of("/page"));
	assert_string_equal(r->peer_ip, "127.0.0.1");
	assert_string_equal(r->content_type, "text/html; charset=utf-8");
	assert_int_equal(r->redirects, 0);
	assert_int_equal(r->not_modified, 0);
	assert_int_equal(strlen(r->fetched_at), 20); /* 2024-01-02T03:04:05Z */
	assert_int_equal(r->fetched_at[10], 'T');
	ward_fetch_result_free(r);
}

static void test_ingest_fetch__url_is_canonicalized(void **state)
{
	ward_fetch_opts o = opts();
	ward_fetch_result *r = NULL;
	char url[256];

	snprintf(url, sizeof(url), "HTTPS://127.0.0.1:%u/x/../page", hs_server_port(srv));
	assert_int_equal(ward_fetch_url(&r, url, &o), 0);
	assert_string_equal(r->url, url_of("/page"));
	assert_string_equal(last_allow, url_of("/page"));
	ward_fetch_result_free(r);
}

static void test_ingest_fetch__user_agent_is_fixed(void **state)
{
	ward_fetch_opts o = opts();
	ward_fetch_result *r = NULL;

	assert_int_equal(ward_fetch_url(&r, url_of("/ua"), &o), 0);
	assert_string_equal(r->body, "ragward/" RAGWARD_VERSION);
	ward_fetch_result_free(r);
}

static void test_ingest_fetch__redirect_allowed(void **state)
{
	ward_fetch_opts o = opts();
	ward_fetch_result *r = NULL;

	allow_calls = 0;
	assert_int_equal(ward_fetch_url(&r, url_of("/redirect/allowed"), &o), 0);
	assert_int_equal(r->redirects, 1);
	assert_int_equal(allow_calls, 2); /* the first URL and the hop */
	assert_string_equal(r->url, url_of("/redirect/allowed"));
	assert_string_equal(r->final_url, url_of("/page"));
	assert_string_equal(r->body, HS_PAGE_BODY);
	ward_fetch_result_free(r);
}

static void test_ingest_fetch__redirect_foreign_host_refused(void **state)
{
	ward_fetch_opts o = opts();

	expect_refused("/redirect/foreign", &o, WARD_EPOLICY, "redirect target not allowed");
	assert_true(tu_error_has("https://evil.example/stolen"));
	assert_true(tu_error_has("not covered by any approved source"));
	assert_string_equal(last_allow, "https://evil.example/stolen");
}

static void test_ingest_fetch__redirect_file_refused(void **state)
{
	ward_fetch_opts o = opts();

	expect_refused("/redirect/file", &o, WARD_EPOLICY, "redirect target 'file:///etc/passwd' not allowed");
	assert_true(tu_error_has("unsupported scheme 'file'"));
}

static void test_ingest_fetch__redirect_https_to_http_refused(void **state)
{
	ward_fetch_opts o = opts();
	long before = hs_server_hits(srv, "/page");

	expect_refused("/redirect/http", &o, WARD_EPOLICY, "https to http downgrade");
	/* Even a source that allows plaintext never steps down mid-chain. */
	o.allow_http = 1;
	expect_refused("/redirect/http", &o, WARD_EPOLICY, "https to http downgrade");
	assert_int_equal(hs_server_hits(srv, "/page"), before);
}

static void test_ingest_fetch__redirect_loop_capped(void **state)
{
	ward_fetch_opts o = opts();
	long before = hs_server_hits(srv, "/redirect/loop") + hs_server_hits(srv, "/redirect/loop2");

	expect_refused("/redirect/loop", &o, WARD_EPOLICY, "too many redirects (more than 5)");
	assert_int_equal(hs_server_hits(srv, "/redirect/loop") + hs_server_hits(srv, "/redirect/loop2") - before, 6);
}

static void test_ingest_fetch__redirect_chain_at_cap(void **state)
{
	ward_fetch_opts o = opts();
	ward_fetch_result *r = NULL;

	/* chain/4 -> 3 -> 2 -> 1 -> 0 -> /page: exactly 5 hops. */
	assert_int_equal(ward_fetch_url(&r, url_of("/redirect/chain/4"), &o), 0);
	assert_int_equal(r->redirects, 5);
	assert_string_equal(r->final_url, url_of("/page"));
	ward_fetch_result_free(r);
	expect_refused("/redirect/chain/5", &o, WARD_EPOLICY, "too many redirects");
}

static void test_ingest_fetch__endless_body_stops_at_cap(void **state)
{
	ward_fetch_opts o = opts();
	double t0 = now_s();

	expect_refused("/endless", &o, WARD_ETOOBIG, "exceeds the cap of 65536 bytes");
	assert_true(now_s() - t0 < 5.0);
}

static void test_ingest_fetch__huge_content_length_refused(void **state)
{
	ward_fetch_opts o = opts();

	expect_refused("/huge-length", &o, WARD_ETOOBIG, "exceeds the cap");
}

static void test_ingest_fetch__body_exactly_at_cap_accepted(void **state)
{
	ward_fetch_opts o = opts();
	ward_fetch_result *r = NULL;
	char path[64];

	snprintf(path, sizeof(path), "/bytes/%d", CAP);
	assert_int_equal(ward_fetch_url(&r, url_of(path), &o), 0);
	assert_int_equal(r->len, CAP);
	assert_int_equal(r->body[0], 'x');
	assert_int_equal(r->body[CAP - 1], 'x');
	ward_fetch_result_free(r);

	/* Without a Content-Length only the write callback can count. */
	snprintf(path, sizeof(path), "/bytes-chunked/%d", CAP);
	assert_int_equal(ward_fetch_url(&r, url_of(path), &o), 0);
	assert_int_equal(r->len, CAP);
	ward_fetch_result_free(r);
}

static void test_ingest_fetch__body_cap_plus_one_refused(void **state)
{
	ward_fetch_opts o = opts();
	char path[64];

	snprintf(path, sizeof(path), "/bytes/%d", CAP + 1);
	expect_refused(path, &o, WARD_ETOOBIG, "exceeds the cap of 65536 bytes");
	snprintf(path, sizeof(path), "/bytes-chunked/%d", CAP + 1);
	expect_refused(path, &o, WARD_ETOOBIG, "exceeds the cap of 65536 bytes");
}

static void test_ingest_fetch__default_cap_applies(void **state)
{
	ward_fetch_opts o = opts();
	ward_fetch_result *r = NULL;

	o.max_bytes = 0; /* WARD_MAX_DOC_BYTES */
	assert_int_equal(ward_fetch_url(&r, url_of("/bytes/100000"), &o), 0);
	assert_int_equal(r->len, 100000);
	ward_fetch_result_free(r);
}

static void test_ingest_fetch__gzip_bomb_refused(void **state)
{
	ward_fetch_opts o = opts();

	/* Not decoded at all: refused on the header, whatever the cap. */
	o.max_bytes = 0;
	expect_refused("/gzip-bomb", &o, WARD_EPOLICY, "Content-Encoding 'gzip'");
	assert_true(tu_error_has("encoded content not accepted"));
}

static void test_ingest_fetch__stall_hits_low_speed_timeout(void **state)
{
	ward_fetch_opts o = opts();
	double t0 = now_s(), dt;

	o.low_speed_bytes = 1;
	o.low_speed_seconds = 1;
	o.total_timeout_ms = 20000;
	expect_refused("/stall", &o, WARD_ETIMEOUT, "timed out");
	dt = now_s() - t0;
	print_message("stall ended after %.2f s (low-speed 1 s)\n", dt);
	assert_true(dt < 4.0);
}

static void test_ingest_fetch__stall_hits_total_timeout(void **state)
{
	ward_fetch_opts o = opts();
	double t0 = now_s(), dt;

	o.low_speed_seconds = 60;
	o.total_timeout_ms = 1500;
	expect_refused("/stall", &o, WARD_ETIMEOUT, "timed out");
	dt = now_s() - t0;
	print_message("stall ended after %.2f s (total 1.5 s)\n", dt);
	assert_true(dt >= 1.4 && dt < 3.5);
}

static void test_ingest_fetch__wrong_content_type_recorded(void **state)
{
	ward_fetch_opts o = opts();
	ward_fetch_result *r = NULL;

	/* The fetcher records the declared type; the type gate judges it. */
	assert_int_equal(ward_fetch_url(&r, url_of("/wrong-type"), &o), 0);
	assert_string_equal(r->content_type, "application/octet-stream");
	assert_string_equal(r->body, HS_PAGE_BODY);
	ward_fetch_result_free(r);
}

static void test_ingest_fetch__etag_refetch_not_modified(void **state)
{
	ward_fetch_opts o = opts();
	ward_fetch_result *r = NULL;
	uint8_t empty[WARD_SHA256_LEN];

	assert_int_equal(ward_fetch_url(&r, url_of("/etag"), &o), 0);
	assert_int_equal(r->status, 200);
	assert_string_equal(r->etag, HS_ETAG);
	assert_int_equal(r->not_modified, 0);
	ward_fetch_result_free(r);

	o.if_none_match = HS_ETAG;
	assert_int_equal(ward_fetch_url(&r, url_of("/etag"), &o), 0);
	assert_int_equal(r->status, 304);
	assert_int_equal(r->not_modified, 1);
	assert_int_equal(r->len, 0);
	assert_non_null(r->body);
	assert_string_equal(r->etag, HS_ETAG);
	assert_int_equal(ward_sha256(empty, "", 0), 0);
	assert_memory_equal(r->sha256, empty, sizeof(empty));
	ward_fetch_result_free(r);
}

static void test_ingest_fetch__last_modified_refetch(void **state)
{
	ward_fetch_opts o = opts();
	ward_fetch_result *r = NULL;

	assert_int_equal(ward_fetch_url(&r, url_of("/last-modified"), &o), 0);
	assert_int_equal(r->status, 200);
	assert_string_equal(r->last_modified, HS_LAST_MODIFIED);
	ward_fetch_result_free(r);

	o.if_modified_since = HS_LAST_MODIFIED;
	assert_int_equal(ward_fetch_url(&r, url_of("/last-modified"), &o), 0);
	assert_int_equal(r->status, 304);
	assert_int_equal(r->not_modified, 1);
	assert_int_equal(r->len, 0);
	ward_fetch_result_free(r);
}

static void test_ingest_fetch__validators_with_crlf_refused(void **state)
{
	ward_fetch_opts o = opts();
	long before = hs_server_hits(srv, NULL);

	o.if_none_match = "\"v1\"\r\nX-Injected: 1";
	expect_refused("/etag", &o, WARD_EINVAL, "If-None-Match");
	o.if_none_match = NULL;
	o.if_modified_since = "Wed\n";
	expect_refused("/etag", &o, WARD_EINVAL, "If-Modified-Since");
	assert_int_equal(hs_server_hits(srv, NULL), before);
}

static void test_ingest_fetch__status_404_and_500(void **state)
{
	ward_fetch_opts o = opts();
	ward_fetch_result *r = NULL;

	assert_int_equal(ward_fetch_url(&r, url_of("/404"), &o), WARD_ENET);
	assert_true(tu_error_has("HTTP status 404"));
	assert_non_null(r);
	assert_int_equal(r->status, 404);
	assert_int_equal(r->len, 0);
	assert_string_equal(r->body, "");
	ward_fetch_result_free(r);
	r = NULL;

	assert_int_equal(ward_fetch_url(&r, url_of("/500"), &o), WARD_ENET);
	assert_true(tu_error_has("HTTP status 500"));
	assert_non_null(r);
	assert_int_equal(r->status, 500);
	ward_fetch_result_free(r);
}

static void test_ingest_fetch__untrusted_certificate_refused(void **state)
{
	ward_fetch_opts o = opts();
	ward_fetch_result *r = (ward_fetch_result *)(uintptr_t)1;
	char url[128];

	snprintf(url, sizeof(url), "%s/page", rogue_origin);
	assert_int_equal(ward_fetch_url(&r, url, &o), WARD_ENET);
	assert_null(r);
	assert_true(tu_error_has("TLS"));
	assert_int_equal(hs_server_hits(rogue, "/page"), 0);

	/* The system store does not know the test CA either. */
	o.ca_file = NULL;
	assert_int_equal(ward_fetch_url(&r, url_of("/page"), &o), WARD_ENET);
	assert_null(r);
	assert_true(tu_error_has("TLS"));

	/* Nor does the environment make it (T08): OpenSSL's default verify
	 * paths read SSL_CERT_FILE; the fetch uses libcurl's CA bundle, which
	 * does not. Naming the test CA there changes nothing. */
	assert_int_equal(setenv("SSL_CERT_FILE", pki.ca_file, 1), 0);
	assert_int_equal(ward_fetch_url(&r, url_of("/page"), &o), WARD_ENET);
	assert_null(r);
	assert_true(tu_error_has("TLS"));
	unsetenv("SSL_CERT_FILE");
}

static void test_ingest_fetch__scheme_and_allowlist_checked_first(void **state)
{
	ward_fetch_opts o = opts();
	ward_fetch_result *r = NULL;
	long before = hs_server_hits(srv, NULL);
	char url[128];
	static const char *bad[] = {"file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1:70/_x",
				    "dict://127.0.0.1/x", "//127.0.0.1/page", "  https://127.0.0.1/page"};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ward_fetch_url(&r, bad[i], &o), WARD_EINVAL);
		assert_null(r);
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/page", hs_server_port(srv));
	assert_int_equal(ward_fetch_url(&r, url, &o), WARD_EPOLICY);
	assert_true(tu_error_has("plaintext http not allowed"));
	assert_int_equal(ward_fetch_url(&r, "https://evil.example/", &o), WARD_EPOLICY);
	assert_true(tu_error_has("not covered by any approved source"));
	o.allow_url = NULL;
	assert_int_equal(ward_fetch_url(&r, url_of("/page"), &o), WARD_EINVAL);
	assert_null(r);
	assert_int_equal(hs_server_hits(srv, NULL), before);
}

/* Not a timed assertion: prints what the per-thread handle cache buys. */
static void test_ingest_fetch__repeat_fetches_reuse_connection(void **state)
{
	ward_fetch_opts o = opts();
	double t0 = now_s();
	int i;

	for (i = 0; i < 50; i++) {
		ward_fetch_result *r = NULL;

		assert_int_equal(ward_fetch_url(&r, url_of("/page"), &o), 0);
		ward_fetch_result_free(r);
	}
	print_message("50 fetches of /page: %.1f ms each\n", (now_s() - t0) * 1000.0 / 50);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ingest_fetch__page_records_provenance),
		cmocka_unit_test(test_ingest_fetch__url_is_canonicalized),
		cmocka_unit_test(test_ingest_fetch__user_agent_is_fixed),
		cmocka_unit_test(test_ingest_fetch__redirect_allowed),
		cmocka_unit_test(test_ingest_fetch__redirect_foreign_host_refused),
		cmocka_unit_test(test_ingest_fetch__redirect_file_refused),
		cmocka_unit_test(test_ingest_fetch__redirect_https_to_http_refused),
		cmocka_unit_test(test_ingest_fetch__redirect_loop_capped),
		cmocka_unit_test(test_ingest_fetch__redirect_chain_at_cap),
		cmocka_unit_test(test_ingest_fetch__endless_body_stops_at_cap),
		cmocka_unit_test(test_ingest_fetch__huge_content_length_refused),
		cmocka_unit_test(test_ingest_fetch__body_exactly_at_cap_accepted),
		cmocka_unit_test(test_ingest_fetch__body_cap_plus_one_refused),
		cmocka_unit_test(test_ingest_fetch__default_cap_applies),
		cmocka_unit_test(test_ingest_fetch__gzip_bomb_refused),
		cmocka_unit_test(test_ingest_fetch__stall_hits_low_speed_timeout),
		cmocka_unit_test(test_ingest_fetch__stall_hits_total_timeout),
		cmocka_unit_test(test_ingest_fetch__wrong_content_type_recorded),
		cmocka_unit_test(test_ingest_fetch__etag_refetch_not_modified),
		cmocka_unit_test(test_ingest_fetch__last_modified_refetch),
		cmocka_unit_test(test_ingest_fetch__validators_with_crlf_refused),
		cmocka_unit_test(test_ingest_fetch__status_404_and_500),
		cmocka_unit_test(test_ingest_fetch__untrusted_certificate_refused),
		cmocka_unit_test(test_ingest_fetch__scheme_and_allowlist_checked_first),
		cmocka_unit_test(test_ingest_fetch__repeat_fetches_reuse_connection),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
