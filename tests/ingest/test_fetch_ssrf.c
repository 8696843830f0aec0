/*
 * The SSRF guard: without allow_private, no spelling of a loopback or
 * private address may produce a single TCP connection. A canary listener on
 * 127.0.0.1:P (and [::1]:P) counts connections; it must stay at zero. The
 * allowlist here allows everything, so only the address guard is tested.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "ragward/fetch.h"
#include "ragward/error.h"
#include "tests/support/https_server.h"
#include "tests/support/testutil.h"
#include "core/banned.h"

static char *home;
static hs_pki pki;
static hs_server *srv;
static hs_canary *canary;

static int allow_all(void *ctx, const char *url)
{
	return 0;
}

static ward_fetch_opts opts(int allow_private)
{
	ward_fetch_opts o;

	memset(&o, 0, sizeof(o));
	o.ca_file = pki.ca_file;
	o.allow_private = allow_private;
	o.max_bytes = 65536;
	o.connect_timeout_ms = 2000;
	o.total_timeout_ms = 5000;
	o.allow_url = allow_all;
	return o;
}

static int group_setup(void **state)
{
	home = tu_home_path("ssrf");
	if (mkdir(home, 0700) != 0 || hs_pki_make(&pki, home, "ssrf") != 0)
		return -1;
	srv = hs_server_start(&pki);
	canary = hs_canary_start();
	return srv != NULL && canary != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
	hs_canary_stop(canary);
	hs_server_stop(srv);
	hs_pki_dispose(&pki);
	tu_home_free(home);
	return 0;
}

static void test_ingest_fetch_ssrf__addr_is_private_table(void **state)
{
	static const struct {
		const char *ip;
		int priv;
	} rows[] = {
		{"0.0.0.0", 1},
		{"0.1.2.3", 1},
		{"10.0.0.1", 1},
		{"100.64.0.1", 1},
		{"100.127.255.254", 1},
		{"100.128.0.1", 0},
		{"127.0.0.1", 1},
		{"127.255.255.254", 1},
		{"169.254.169.254", 1},
		{"172.16.0.1", 1},
		{"172.31.255.255", 1},
		{"172.32.0.1", 0},
		{"192.0.0.8", 1},
		{"192.0.2.1", 1},
		{"192.168.1.1", 1},
		{"198.18.0.1", 1},
		{"198.19.255.255", 1},
		{"198.20.0.1", 0},
		{"198.51.100.7", 1},
		{"203.0.113.9", 1},
		{"224.0.0.1", 1},
		{"239.255.255.250", 1},
		{"240.0.0.1", 1},
		{"255.255.255.255", 1},
		{"8.8.8.8", 0},
		{"1.1.1.1", 0},
		{"93.184.216.34", 0},
		{"::", 1},
		{"::1", 1},
		{"[::1]", 1},
		{"::127.0.0.1", 1},
		{"::8.8.8.8", 0},
		{"::ffff:127.0.0.1", 1},
		{"::ffff:7f00:1", 1},
		{"::ffff:169.254.169.254", 1},
		{"::ffff:10.1.2.3", 1},
		{"::ffff:8.8.8.8", 0},
		{"64:ff9b::a9fe:a9fe", 1},
		{"64:ff9b::7f00:1", 1},
		{"64:ff9b::808:808", 0},
		{"2002:7f00:1::", 1},
		{"2002:a9fe:a9fe::1", 1},
		{"2002:808:808::1", 0},
		{"fc00::1", 1},
		{"fd12:3456::1", 1},
		{"fd00:ec2::254", 1},
		{"fe80::1", 1},
		{"fe80::1%eth0", 1},
		{"febf::1", 1},
		{"ff02::1", 1},
		{"2001:db8::1", 1},
		{"2001:4860:4860::8888", 0},
		{"2606:4700:4700::1111", 0},
		{"", 1},
		{"localhost", 1},
		{"127.1", 1},      /* not an address in canonical text: refused */
		{"2130706433", 1}, /* ditto */
	};
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int got = ward_fetch_addr_is_private(rows[i].ip);

		if (got != rows[i].priv)
			print_error("'%s': got %d, want %d\n", rows[i].ip, got, rows[i].priv);
		assert_int_equal(got, rows[i].priv);
	}
	assert_int_equal(ward_fetch_addr_is_private(NULL), 1);
}

/* Each spelling of loopback is refused in the socket callback. */
static void test_ingest_fetch_ssrf__loopback_spellings_refused(void **state)
{
	static const char *hosts[] = {"127.0.0.1", "127.1", "2130706433", "0x7f.1", "0177.0.0.1", "0.0.0.0",
				      "127.0.0.2", "localhost"};
	static const char *hosts6[] = {"[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]"};
	ward_fetch_opts o = opts(0);
	unsigned port = hs_canary_port(canary);
	char url[128];
	size_t i;

	for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]) + sizeof(hosts6) / sizeof(hosts6[0]); i++) {
		const char *h = i < sizeof(hosts) / sizeof(hosts[0]) ? hosts[i] : hosts6[i - sizeof(hosts) / sizeof(hosts[0])];
		ward_fetch_result *r = (ward_fetch_result *)(uintptr_t)1;
		int rc;

		if (h[0] == '[' && !hs_canary_has_v6(canary)) {
			print_message("no IPv6 loopback here: skipping %s\n", h);
			continue;
		}
		snprintf(url, sizeof(url), "https://%s:%u/", h, port);
		rc = ward_fetch_url(&r, url, &o);
		if (rc != WARD_EPOLICY || !tu_error_has("private address (source does not allow private networks)"))
			print_error("%s: got %d: %s\n", url, rc, ward_error_last()->message);
		assert_int_equal(rc, WARD_EPOLICY);
		assert_null(r);
		assert_true(tu_error_has("refused to connect to "));
		assert_true(tu_error_has("private address (source does not allow private networks)"));
		assert_int_equal(hs_canary_count(canary), 0);
	}
}

static void test_ingest_fetch_ssrf__message_names_the_address(void **state)
{
	ward_fetch_opts o = opts(0);
	ward_fetch_result *r = NULL;
	char url[128];

	snprintf(url, sizeof(url), "https://127.1:%u/x", hs_canary_port(canary));
	assert_int_equal(ward_fetch_url(&r, url, &o), WARD_EPOLICY);
	print_message("%s\n", ward_error_last()->message);
	assert_true(tu_error_has("refused to connect to 127.0.0.1: private address"));
	assert_int_equal(hs_canary_count(canary), 0);
}

/* Proxy variables must not route a fetch through anyone (T08). */
static void test_ingest_fetch_ssrf__proxy_environment_ignored(void **state)
{
	ward_fetch_opts o = opts(1);
	ward_fetch_result *r = NULL;
	char proxy[64], url[128];
	long before = hs_canary_count(canary);

	snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%u", hs_canary_port(canary));
	setenv("https_proxy", proxy, 1);
	setenv("HTTPS_PROXY", proxy, 1);
	setenv("ALL_PROXY", proxy, 1);
	setenv("all_proxy", proxy, 1);
	snprintf(url, sizeof(url), "https://127.0.0.1:%u/page", hs_server_port(srv));
	assert_int_equal(ward_fetch_url(&r, url, &o), 0);
	assert_string_equal(r->body, HS_PAGE_BODY);
	ward_fetch_result_free(r);
	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("ALL_PROXY");
	unsetenv("all_proxy");
	assert_int_equal(hs_canary_count(canary), before);
}

/*
 * A connection opened under allow_private may stay in the thread's cache; a
 * later fetch without it must not ride on it. When curl reuses a connection
 * no socket is opened, so the PREREQFUNCTION's check is what refuses it.
 * (libmicrohttpd 0.9.75 answers this test server's requests with
 * "Connection: close", so here the socket callback refuses first; the
 * outcome required is the same either way.)
 */
static void test_ingest_fetch_ssrf__reused_connection_rechecked(void **state)
{
	ward_fetch_opts o = opts(1);
	ward_fetch_result *r = NULL;
	char url[128];
	long before;

	snprintf(url, sizeof(url), "https://127.0.0.1:%u/etag", hs_server_port(srv));
	assert_int_equal(ward_fetch_url(&r, url, &o), 0);
	ward_fetch_result_free(r);
	r = NULL;
	before = hs_server_hits(srv, "/etag");
	o = opts(0);
	assert_int_equal(ward_fetch_url(&r, url, &o), WARD_EPOLICY);
	assert_null(r);
	assert_true(tu_error_has("refused to connect to 127.0.0.1: private address"));
	assert_int_equal(hs_server_hits(srv, "/etag"), before);
}

/* The control: the canary does count, and allow_private does reach it. */
static void test_ingest_fetch_ssrf__allow_private_reaches_loopback(void **state)
{
	ward_fetch_opts o = opts(1);
	ward_fetch_result *r = NULL;
	char url[128];
	long before = hs_canary_count(canary);

	snprintf(url, sizeof(url), "https://127.0.0.1:%u/", hs_canary_port(canary));
	assert_int_equal(ward_fetch_url(&r, url, &o), WARD_ENET); /* no TLS there */
	assert_null(r);
	assert_int_equal(hs_canary_count(canary), before + 1);

	snprintf(url, sizeof(url), "https://127.0.0.1:%u/page", hs_server_port(srv));
	assert_int_equal(ward_fetch_url(&r, url, &o), 0);
	assert_string_equal(r->peer_ip, "127.0.0.1");
	ward_fetch_result_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ingest_fetch_ssrf__addr_is_private_table),
		cmocka_unit_test(test_ingest_fetch_ssrf__loopback_spellings_refused),
		cmocka_unit_test(test_ingest_fetch_ssrf__message_names_the_address),
		cmocka_unit_test(test_ingest_fetch_ssrf__proxy_environment_ignored),
		cmocka_unit_test(test_ingest_fetch_ssrf__reused_connection_rechecked),
		cmocka_unit_test(test_ingest_fetch_ssrf__allow_private_reaches_loopback),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
