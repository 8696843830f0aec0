/*
 * T11 and T12 of security-controls.md against real peers on 127.0.0.1:
 *
 *  T12 (TLS failures): HTTPS servers (libmicrohttpd over GnuTLS) whose
 *  certificates, generated at run time with OpenSSL into this test's scratch
 *  home, each have exactly one defect (expired, names another host,
 *  self-signed), and one that speaks only TLS 1.0. The CA is pinned the
 *  way the CLI pins it (--ca-file / RAGWARD_CA_FILE end up as
 *  ward_fetch_opts.ca_file), with the CA that signed the server certificate,
 *  so the defect is the only reason to refuse. Each fetch must fail naming
 *  the TLS problem, return nothing, open exactly one connection (no retry of
 *  any kind, so none with verification off) and send no HTTP request; through
 *  the pipeline, nothing is stored.
 *
 *  T11 (stalled peers): a port whose accept queue is full (connect() never
 *  completes), a server that accepts TCP and never answers the ClientHello,
 *  a server that sends headers with a Content-Length and then no body (or
 *  part of it), and one that sends a byte a second. Each must end on its own cap (connect, low-speed, total)
 *  with a timeout error. The only timing assertion is a generous bound, half
 *  the total cap, which shows that the cap under test fired and not the
 *  total one.
 *
 * The client's OpenSSL is made permissive for this process (OPENSSL_CONF,
 * see write_permissive_openssl_conf): Debian 12's OpenSSL would refuse TLS
 * 1.0 by itself, which would hide whether ragward's own minimum
 * (CURLOPT_SSLVERSION in ingest/fetch.c) is there.
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
#include <unistd.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "ragward/fetch.h"
#include "ragward/alloc.h"
#include "ragward/error.h"
#include "ragward/ingest.h"
#include "ragward/sources.h"
#include "tests/support/https_server.h"
#include "tests/support/testutil.h"
#include "core/banned.h"

/* The caps of the T11 cases: each stall must end on the 1 s cap under test,
 * far below the total cap; a bound of half the total cap tells them apart
 * without timing anything closely. */
#define SHORT_CAP_MS 1000
#define TOTAL_CAP_MS 12000
#define BOUND_S ((double)TOTAL_CAP_MS / 2000.0)

/* GnuTLS priorities of a server that speaks TLS 1.0 and nothing else. The
 * test server is GnuTLS (libmicrohttpd), which offers TLS 1.0 when told to:
 * no security level has to be lowered on the server side. */
#define OLD_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.0"

typedef struct {
	const char *name;
	hs_cert_kind kind;
	const char *priorities;
	hs_pki pki;
	hs_server *srv;
	char origin[64];
} tls_peer;

enum { GOOD, EXPIRED, WRONG_HOST, SELF_SIGNED, OLD_TLS, NPEERS };

static tls_peer peers[NPEERS] = {
	[GOOD] = {"good", HS_CERT_GOOD, NULL},
	[EXPIRED] = {"expired", HS_CERT_EXPIRED, NULL},
	[WRONG_HOST] = {"wrong-host", HS_CERT_WRONG_HOST, NULL},
	[SELF_SIGNED] = {"self-signed", HS_CERT_SELF_SIGNED, NULL},
	[OLD_TLS] = {"tls10", HS_CERT_GOOD, OLD_TLS_PRIORITIES},
};

static char *home;

/* Any https URL on 127.0.0.1: the peers here differ only in their port. */
static int allow_loopback(void *ctx, const char *url)
{
	if (strncmp(url, "https://127.0.0.1:", 18) == 0)
		return 0;
	return ward_error_set(WARD_EPOLICY, "url '%s': not covered by any approved source", url);
}

static ward_fetch_opts opts(const char *ca_file)
{
	ward_fetch_opts o;

	memset(&o, 0, sizeof(o));
	o.ca_file = ca_file;
	o.allow_private = 1;
	o.max_bytes = 65536;
	o.connect_timeout_ms = SHORT_CAP_MS;
	o.total_timeout_ms = TOTAL_CAP_MS;
	o.low_speed_bytes = 1;
	o.low_speed_seconds = 60;
	o.allow_url = allow_loopback;
	return o;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The stall server's thread reads on its own: give it time to have read
 * what the client sent (it normally has long before the fetch ends). */
static long stall_bytes_settled(hs_stall *st, int *first)
{
	double t0 = now_s();
	long n;

	while ((n = hs_stall_bytes(st, first)) == 0 && now_s() - t0 < 5.0) {
		struct timespec ts = {0, 20 * 1000000L};

		nanosleep(&ts, NULL);
	}
	return n;
}

/* Fetches url; must fail with `code`, return nothing, and mention each
 * non-NULL needle. Returns the seconds it took. */
static double expect_fail(const char *url, const ward_fetch_opts *o, int code, const char *n1, const char *n2)
{
	ward_fetch_result *r = (ward_fetch_result *)(uintptr_t)1;
	double t0 = now_s(), dt;
	int rc = ward_fetch_url(&r, url, o);

	dt = now_s() - t0;
	print_message("%s: %d after %.2f s: %s\n", url, rc, dt, ward_error_last()->message);
	assert_int_equal(rc, code);
	assert_null(r);
	if (n1 != NULL)
		assert_true(tu_error_has(n1));
	if (n2 != NULL)
		assert_true(tu_error_has(n2));
	return dt;
}

/*
 * MinProtocol TLSv1 and security level 0 for every SSL_CTX of this process
 * (curl's included), so that the only thing left to refuse TLS 1.0 is
 * what ingest/fetch.c asks for. Must run before libcrypto first loads its
 * configuration (hs_pki_make is the first user here).
 */
static int write_permissive_openssl_conf(const char *dir)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/openssl-permissive.cnf", dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs("openssl_conf = openssl_init\n"
	      "[openssl_init]\n"
	      "ssl_conf = ssl_sect\n"
	      "[ssl_sect]\n"
	      "system_default = system_default_sect\n"
	      "[system_default_sect]\n"
	      "MinProtocol = TLSv1\n"
	      "CipherString = DEFAULT@SECLEVEL=0\n",
	      f);
	if (fclose(f) != 0)
		return -1;
	return setenv("OPENSSL_CONF", path, 1);
}

static int group_setup(void **state)
{
	size_t i;

	home = tu_home_path("fetch-tls");
	if (mkdir(home, 0700) != 0 || write_permissive_openssl_conf(home) != 0)
		return -1;
	for (i = 0; i < NPEERS; i++) {
		hs_server_opts so = {peers[i].priorities};

		if (hs_pki_make_kind(&peers[i].pki, home, peers[i].name, peers[i].kind) != 0)
			return -1;
		peers[i].srv = hs_server_start_opts(&peers[i].pki, &so);
		if (peers[i].srv == NULL)
			return -1;
		snprintf(peers[i].origin, sizeof(peers[i].origin), "https://127.0.0.1:%u",
			 hs_server_port(peers[i].srv));
	}
	return 0;
}

static int group_teardown(void **state)
{
	size_t i;

	for (i = 0; i < NPEERS; i++) {
		hs_server_stop(peers[i].srv);
		hs_pki_dispose(&peers[i].pki);
	}
	tu_home_free(home);
	return 0;
}

static const char *url_of(int peer, const char *path)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s%s", peers[peer].origin, path);
	return buf;
}

/* ------------------------------------------------------------------ T12 */

/* The control: the same set-up with a good certificate fetches. */
static void test_ingest_fetch_tls__good_certificate_fetches(void **state)
{
	ward_fetch_opts o = opts(peers[GOOD].pki.ca_file);
	ward_fetch_result *r = NULL;

	assert_int_equal(ward_fetch_url(&r, url_of(GOOD, "/page"), &o), 0);
	assert_non_null(r);
	assert_int_equal(r->status, 200);
	assert_string_equal(r->body, HS_PAGE_BODY);
	ward_fetch_result_free(r);
}

/* One fetch against a bad peer: refused with the TLS reason, one
 * connection (no second, insecure attempt), no request sent. */
static void expect_tls_refused(int peer, const char *n1, const char *n2)
{
	ward_fetch_opts o = opts(peers[peer].pki.ca_file);
	long conns = hs_server_connections(peers[peer].srv);
	long hits = hs_server_hits(peers[peer].srv, NULL);

	expect_fail(url_of(peer, "/page"), &o, WARD_ENET, n1, n2);
	assert_int_equal(hs_server_connections(peers[peer].srv) - conns, 1);
	assert_int_equal(hs_server_hits(peers[peer].srv, NULL), hits);
}

static void test_ingest_fetch_tls__expired_certificate_refused(void **state)
{
	expect_tls_refused(EXPIRED, "TLS verification failed", "certificate has expired");
}

static void test_ingest_fetch_tls__san_mismatch_refused(void **state)
{
	expect_tls_refused(WRONG_HOST, "TLS verification failed",
			   "no alternative certificate subject name matches target host name '127.0.0.1'");
}

static void test_ingest_fetch_tls__self_signed_certificate_refused(void **state)
{
	expect_tls_refused(SELF_SIGNED, "TLS verification failed", "self-signed certificate");
}

typedef struct {
	char version[64]; /* "TLSv1" from curl's "SSL connection using TLSv1 / ..." */
} curl_trace;

static int on_curl_debug(CURL *h, curl_infotype type, char *data, size_t size, void *userp)
{
	static const char prefix[] = "SSL connection using ";
	curl_trace *t = userp;
	size_t i;

	if (type != CURLINFO_TEXT || size <= sizeof(prefix) - 1 || memcmp(data, prefix, sizeof(prefix) - 1) != 0)
		return 0;
	data += sizeof(prefix) - 1;
	size -= sizeof(prefix) - 1;
	for (i = 0; i < size && i + 1 < sizeof(t->version) && data[i] != ' ' && data[i] != '\n'; i++)
		t->version[i] = data[i];
	t->version[i] = '\0';
	return 0;
}

static size_t discard(char *data, size_t size, size_t nmemb, void *userp)
{
	return size * nmemb;
}

/*
 * The old-TLS server really serves, on TLS 1.0, to a client that accepts
 * it: plain libcurl, the same CA file and verification, its
 * minimum lowered to TLS 1.0, and this process's permissive OpenSSL
 * configuration. So when ragward's fetch below fails, it is ragward's own
 * minimum (TLS 1.2) that refused, not the server or Debian's defaults.
 */
static void old_tls_server_serves_an_old_client(void)
{
	CURL *h = curl_easy_init();
	curl_trace t;
	long status = 0;
	CURLcode cc;

	assert_non_null(h);
	memset(&t, 0, sizeof(t));
	assert_int_equal(curl_easy_setopt(h, CURLOPT_URL, url_of(OLD_TLS, "/page")), CURLE_OK);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_CAINFO, peers[OLD_TLS].pki.ca_file), CURLE_OK);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_0), CURLE_OK);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_PROXY, ""), CURLE_OK);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L), CURLE_OK);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)TOTAL_CAP_MS), CURLE_OK);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard), CURLE_OK);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_VERBOSE, 1L), CURLE_OK);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_curl_debug), CURLE_OK);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_DEBUGDATA, &t), CURLE_OK);
	cc = curl_easy_perform(h);
	if (cc != CURLE_OK)
		print_error("control fetch of the old-TLS server failed: %s\n", curl_easy_strerror(cc));
	assert_int_equal(cc, CURLE_OK);
	assert_int_equal(curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status), CURLE_OK);
	assert_int_equal(status, 200);
	print_message("control: the old-TLS server answered over %s\n", t.version);
	assert_string_equal(t.version, "TLSv1");
	curl_easy_cleanup(h);
}

static void test_ingest_fetch_tls__tls10_only_server_refused(void **state)
{
	old_tls_server_serves_an_old_client();
	/* The server answers the ClientHello with TLS 1.0; the client refuses
	 * that version itself (OpenSSL: "unsupported protocol"). */
	expect_tls_refused(OLD_TLS, "TLS handshake failed", "unsupported protocol");
}

/* Through the pipeline with an approved source for each bad peer: the item
 * fails with the TLS reason and no document or chunk is stored. */
static void test_ingest_fetch_tls__tls_failures_store_nothing(void **state)
{
	static const int bad[] = {EXPIRED, WRONG_HOST, SELF_SIGNED, OLD_TLS};
	char *store_home = tu_new_home("fetch-tls-store");
	ward_store *s = tu_open(store_home, WARD_STORE_SIGN);
	ward_actor alice = tu_actor("alice"), bob = tu_actor("bob"), cron = tu_actor("cron");
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ward_source_request req;
		ward_ingest_opts io;
		ward_ingest_item it;
		char pattern[96];
		int64_t id = 0;
		long hits = hs_server_hits(peers[bad[i]].srv, NULL);

		snprintf(pattern, sizeof(pattern), "%s/", peers[bad[i]].origin);
		memset(&req, 0, sizeof(req));
		req.name = peers[bad[i]].name;
		req.pattern = pattern;
		req.trust = WARD_TRUST_STANDARD;
		req.allow_private = 1;
		assert_int_equal(ward_sources_request(s, &alice, &req, &id), 0);
		assert_int_equal(ward_sources_decide(s, &bob, id, WARD_DECIDE_APPROVE, NULL), 0);

		memset(&io, 0, sizeof(io));
		memset(&it, 0, sizeof(it));
		io.ca_file = peers[bad[i]].pki.ca_file;
		io.keep_bytes = 1;
		assert_int_equal(ward_ingest_one(s, &cron, url_of(bad[i], "/page"), &io, &it), 0);
		print_message("%s: %s: %s\n", peers[bad[i]].name, ward_ingest_outcome_name(it.outcome),
			      it.reason ? it.reason : "(no reason)");
		assert_int_equal(it.outcome, WARD_INGEST_FAILED);
		assert_non_null(it.reason);
		assert_non_null(strstr(it.reason, "TLS"));
		assert_int_equal(it.document_id, 0);
		assert_int_equal(hs_server_hits(peers[bad[i]].srv, NULL), hits);
		ward_ingest_item_dispose(&it);
	}
	assert_int_equal(tu_count_rows(store_home, "documents"), 0);
	assert_int_equal(tu_count_rows(store_home, "chunks"), 0);
	ward_store_close(s);
	tu_home_free(store_home);
}

/* ------------------------------------------------------------------ T11 */

static void test_ingest_fetch_tls__never_accepted_connect_hits_connect_timeout(void **state)
{
	hs_stall *st = hs_stall_start(HS_STALL_NO_ACCEPT);
	ward_fetch_opts o = opts(peers[GOOD].pki.ca_file);
	char url[128];
	double dt;

	assert_non_null(st);
	snprintf(url, sizeof(url), "https://127.0.0.1:%u/page", hs_stall_port(st));
	dt = expect_fail(url, &o, WARD_ETIMEOUT, "timed out", "Failed to connect");
	assert_true(dt < BOUND_S);
	/* The client's connection never got past SYN-SENT: the kernel queued
	 * nothing for it (a completed one would still be queued now). */
	assert_int_equal(hs_stall_queued(st), 0);
	assert_int_equal(hs_stall_accepted(st), 0);
	hs_stall_stop(st);
}

static void test_ingest_fetch_tls__stalled_tls_handshake_hits_connect_timeout(void **state)
{
	hs_stall *st = hs_stall_start(HS_STALL_SILENT);
	ward_fetch_opts o = opts(peers[GOOD].pki.ca_file);
	char url[128];
	double dt;
	int first = -1;

	assert_non_null(st);
	snprintf(url, sizeof(url), "https://127.0.0.1:%u/page", hs_stall_port(st));
	dt = expect_fail(url, &o, WARD_ETIMEOUT, "timed out", "SSL connection timeout");
	assert_true(dt < BOUND_S);
	/* TCP was accepted and the ClientHello (a TLS handshake record, 0x16)
	 * arrived: the stall was in the handshake. */
	assert_true(stall_bytes_settled(st, &first) > 0);
	assert_int_equal(hs_stall_accepted(st), 1);
	assert_int_equal(first, 0x16);
	hs_stall_stop(st);
}

static void test_ingest_fetch_tls__headers_without_body_hit_low_speed_timeout(void **state)
{
	ward_fetch_opts o = opts(peers[GOOD].pki.ca_file);
	long before = hs_server_hits(peers[GOOD].srv, "/headers-only");
	double dt;

	o.low_speed_seconds = SHORT_CAP_MS / 1000;
	dt = expect_fail(url_of(GOOD, "/headers-only"), &o, WARD_ETIMEOUT, "timed out", "too slow");
	assert_true(dt < BOUND_S);
	assert_int_equal(hs_server_hits(peers[GOOD].srv, "/headers-only") - before, 1);
}

/* The total cap, with the low-speed cap out of reach; curl's message shows
 * that the headers (the length) had come and none of the body. */
static void test_ingest_fetch_tls__headers_without_body_hit_total_timeout(void **state)
{
	ward_fetch_opts o = opts(peers[GOOD].pki.ca_file);
	char want[64];

	o.total_timeout_ms = SHORT_CAP_MS;
	snprintf(want, sizeof(want), "with 0 out of %d bytes received", HS_SHORT_LENGTH);
	expect_fail(url_of(GOOD, "/headers-only"), &o, WARD_ETIMEOUT, "timed out", want);
}

/*
 * A byte a second: never silent, always below the 2 bytes/s floor, so only
 * the low-speed cap (2 s) can end it before the total one. (T11's "1 byte
 * every 10 s", scaled down.)
 */
static void test_ingest_fetch_tls__trickle_hits_low_speed_timeout(void **state)
{
	ward_fetch_opts o = opts(peers[GOOD].pki.ca_file);
	double dt;

	o.low_speed_bytes = 2;
	o.low_speed_seconds = 2;
	dt = expect_fail(url_of(GOOD, "/trickle"), &o, WARD_ETIMEOUT, "timed out", "too slow");
	assert_true(dt < BOUND_S);
}

/*
 * Part of the body, then nothing: no partial document comes back. On the
 * total cap: curl's low-speed check averages over its last ~5 s of progress,
 * so after a burst of bytes it fires up to that much later than
 * low_speed_seconds (measured here: 7 s for a 1 s cap after 100 bytes).
 */
static void test_ingest_fetch_tls__partial_body_then_stall_returns_nothing(void **state)
{
	ward_fetch_opts o = opts(peers[GOOD].pki.ca_file);
	char want[64];

	o.total_timeout_ms = SHORT_CAP_MS;
	snprintf(want, sizeof(want), "with %d out of %d bytes received", HS_PARTIAL_BYTES, HS_SHORT_LENGTH);
	expect_fail(url_of(GOOD, "/partial"), &o, WARD_ETIMEOUT, "timed out", want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ingest_fetch_tls__good_certificate_fetches),
		cmocka_unit_test(test_ingest_fetch_tls__expired_certificate_refused),
		cmocka_unit_test(test_ingest_fetch_tls__san_mismatch_refused),
		cmocka_unit_test(test_ingest_fetch_tls__self_signed_certificate_refused),
		cmocka_unit_test(test_ingest_fetch_tls__tls10_only_server_refused),
		cmocka_unit_test(test_ingest_fetch_tls__tls_failures_store_nothing),
		cmocka_unit_test(test_ingest_fetch_tls__never_accepted_connect_hits_connect_timeout),
		cmocka_unit_test(test_ingest_fetch_tls__stalled_tls_handshake_hits_connect_timeout),
		cmocka_unit_test(test_ingest_fetch_tls__headers_without_body_hit_low_speed_timeout),
		cmocka_unit_test(test_ingest_fetch_tls__headers_without_body_hit_total_timeout),
		cmocka_unit_test(test_ingest_fetch_tls__partial_body_then_stall_returns_nothing),
		cmocka_unit_test(test_ingest_fetch_tls__trickle_hits_low_speed_timeout),
	};

	/* A watchdog far below ctest's 300 s: a stall that no cap ends kills
	 * the run instead of hanging it. */
	alarm(120);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
