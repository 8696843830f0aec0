/*
 * Tests for query/http.c (the server) with a real libcurl client: T52
 * (authentication), T53 (Host, Origin, OPTIONS, no CORS headers), T54
 * (binding, the unix socket), T55 (body cap, slowloris, per-IP limit,
 * oversize headers), T56 (hostile JSON), and the serving rules over HTTP:
 * labels, a revoked source, a tampered chunk withheld and counted in
 * /metrics, chunks by id, keys, the citation check, and T49: a store whose
 * audit log was truncated in place, edited (caught at a reload) or tampered
 * before the start is not served.
 */
#define _GNU_SOURCE /* strcasestr */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <poll.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "ragward/callers.h"
#include "ragward/documents.h"
#include "ragward/log.h"
#include "ragward/retrieve.h"
#include "ragward/server.h"
#include "ragward/sources.h"
#include "ragward/store.h"
#include "tests/support/testutil.h"
#include "core/banned.h"

typedef struct {
	char *home;
	ward_store *s;
	ward_server *srv;
	uint16_t port;
	const char *unix_path; /* when the server listens there */
	int64_t src_public, src_secret, doc_public, doc_secret;
	char tok_plain[WARD_CALLER_TOKEN_LEN + 1]; /* no labels */
	char tok_team[WARD_CALLER_TOKEN_LEN + 1];  /* label team-x */
	char tok_gone[WARD_CALLER_TOKEN_LEN + 1];  /* revoked */
} fixture;

typedef struct {
	long status;
	char *body;
	size_t len;
	char *headers;
	size_t hlen;
	CURLcode cc;
} resp;

/* ---- store ---------------------------------------------------------------------- */

static long long chunk_of(fixture *f, int64_t doc)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SELECT min(id) FROM chunks WHERE document_id = %lld", (long long)doc);
	return tu_query_int(f->home, sql);
}

static void start(fixture *f, ward_server_opts *o)
{
	if (ward_server_start(&f->srv, f->home, o) != 0)
		fail_msg("server start: %s", ward_error_last()->message);
	f->port = ward_server_port(f->srv);
	f->unix_path = o->unix_path;
}

static void test_opts(ward_server_opts *o)
{
	ward_server_opts_init(o);
	o->listen = "127.0.0.1:0";
	o->threads = 4;
	o->timeout_s = 1;
	o->drain_s = 2;
}

static int setup_store(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->home = tu_new_home("http");
	f->s = tu_open(f->home, WARD_STORE_SIGN);
	*state = f;
	return 0;
}

static void populate(fixture *f)
{
	ward_actor admin = tu_actor("admin");

	f->src_public = tu_add_source(f->s, "public", "https://docs.example.com/", NULL);
	f->src_secret = tu_add_source(f->s, "secret", "https://intra.example.com/", "team-x");
	f->doc_public = tu_add_doc(f->s, f->src_public, "https://docs.example.com/narwhal", "Narwhals",
	                        "narwhal tusk facts for everyone to read");
	f->doc_secret = tu_add_doc(f->s, f->src_secret, "https://intra.example.com/narwhal", "Secret narwhals",
	                        "narwhal secret plans only for team x");
	if (ward_callers_add(f->s, &admin, "plain", NULL, f->tok_plain, NULL) != 0 ||
	    ward_callers_add(f->s, &admin, "team", "team-x", f->tok_team, NULL) != 0 ||
	    ward_callers_add(f->s, &admin, "gone", NULL, f->tok_gone, NULL) != 0 ||
	    ward_callers_revoke(f->s, &admin, "gone", NULL) != 0)
		fail_msg("callers: %s", ward_error_last()->message);
}

static int setup(void **state)
{
	fixture *f;
	ward_server_opts o;

	if (setup_store(state) != 0)
		return -1;
	f = *state;
	populate(f);
	test_opts(&o);
	start(f, &o);
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	ward_server_stop(f->srv);
	ward_store_close(f->s);
	tu_home_free(f->home);
	free(f);
	return 0;
}

/* ---- client ---------------------------------------------------------------------- */

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
	char **buf = ((char ***)ud)[0];
	size_t *len = ((size_t **)ud)[1];
	char *grown = realloc(*buf, *len + sz * n + 1);

	if (!grown)
		return 0;
	memcpy(grown + *len, p, sz * n);
	*len += sz * n;
	grown[*len] = '\0';
	*buf = grown;
	return sz * n;
}

static resp http_ex(fixture *f, const char *method, const char *path, const char *token, const char *body, size_t blen,
                    const char *const *extra, const char *host_override)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[512], auth[1024];
	resp r;
	void *bud[2], *hud[2];

	memset(&r, 0, sizeof(r));
	assert_non_null(c);
	bud[0] = &r.body;
	bud[1] = &r.len;
	hud[0] = &r.headers;
	hud[1] = &r.hlen;
	snprintf(url, sizeof(url), "http://%s%s", host_override ? host_override : "127.0.0.1", path);
	if (!host_override && !f->unix_path)
		snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", f->port, path);
	if (f->unix_path) {
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, f->unix_path);
		snprintf(url, sizeof(url), "http://localhost%s", path);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, bud);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, hud);
	if (token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		h = curl_slist_append(h, auth);
	}
	if (body) {
		int typed = 0;
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
		for (size_t i = 0; extra && extra[i]; i++)
			typed |= strncasecmp(extra[i], "Content-Type:", 13) == 0;
		if (!typed)
			h = curl_slist_append(h, "Content-Type: application/json");
	}
	for (size_t i = 0; extra && extra[i]; i++)
		h = curl_slist_append(h, extra[i]);
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	r.cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (!r.body)
		r.body = calloc(1, 1);
	if (!r.headers)
		r.headers = calloc(1, 1);
	/* never any CORS header, whatever the answer (T53) */
	assert_null(strcasestr(r.headers, "access-control-"));
	return r;
}

static resp http(fixture *f, const char *method, const char *path, const char *token, const char *body)
{
	return http_ex(f, method, path, token, body, body ? strlen(body) : 0, NULL, NULL);
}

static void resp_free(resp *r)
{
	free(r->body);
	free(r->headers);
}

static json_t *json_of(const resp *r)
{
	json_t *j = json_loadb(r->body, r->len, 0, NULL);

	if (!j)
		fail_msg("not JSON (status %ld): %s", r->status, r->body);
	return j;
}

static void expect_status(fixture *f, const char *method, const char *path, const char *token, const char *body,
                          long status, const char *needle)
{
	resp r = http(f, method, path, token, body);

	if (r.status != status || (needle && !strstr(r.body, needle)))
		fail_msg("%s %s %.80s: got %ld '%s', want %ld with '%s'", method, path, body ? body : "", r.status,
		         r.body, status, needle ? needle : "");
	resp_free(&r);
}

static json_t *search(fixture *f, const char *token, const char *q)
{
	char body[512];
	resp r;
	json_t *j;

	snprintf(body, sizeof(body), "{\"query\": \"%s\", \"k\": 10}", q);
	r = http(f, "POST", "/v1/search", token, body);
	if (r.status != 200)
		fail_msg("search '%s': %ld %s", q, r.status, r.body);
	assert_non_null(strcasestr(r.headers, "content-type: application/json"));
	assert_non_null(strcasestr(r.headers, "x-content-type-options: nosniff"));
	j = json_of(&r);
	resp_free(&r);
	return j;
}

static int has_doc(const json_t *res, int64_t doc)
{
	const json_t *r;
	size_t i;

	json_array_foreach(json_object_get(res, "results"), i, r)
	{
		if (json_integer_value(json_object_get(json_object_get(r, "citation"), "document_id")) == doc)
			return 1;
	}
	return 0;
}

/* A raw TCP connection to the server. */
static int raw_connect(fixture *f)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(f->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void raw_send(int fd, const char *s)
{
	assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Reads until the peer closes or `ms` pass; returns bytes read (-1: still open). */
static long raw_read_all(int fd, char *buf, size_t cap, int ms)
{
	size_t got = 0;
	struct pollfd p = {fd, POLLIN, 0};

	while (got + 1 < cap) {
		ssize_t n;
		if (poll(&p, 1, ms) <= 0)
			return -1;
		n = recv(fd, buf + got, cap - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n") && strstr(buf, "}"))
			break;
	}
	buf[got] = '\0';
	return (long)got;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- T52 ------------------------------------------------------------------------------ */

static void test_query_http__auth(void **state)
{
	fixture *f = *state;
	char bad[WARD_CALLER_TOKEN_LEN + 2];
	const char *q = "{\"query\":\"narwhal\"}";
	resp r;

	r = http(f, "POST", "/v1/search", NULL, q);
	assert_int_equal(r.status, 401);
	assert_string_equal(r.body, "{\"error\":{\"code\":\"unauthorized\",\"message\":\"unauthorized\"}}");
	assert_non_null(strcasestr(r.headers, "www-authenticate: bearer"));
	resp_free(&r);
	expect_status(f, "POST", "/v1/search", "rwd_0000000000000000000000000000000000000000000000000000000000000000",
	              q, 401, "\"unauthorized\"}}");
	memcpy(bad, f->tok_plain, sizeof(f->tok_plain));
	bad[WARD_CALLER_TOKEN_LEN - 1] = bad[WARD_CALLER_TOKEN_LEN - 1] == '0' ? '1' : '0';
	expect_status(f, "POST", "/v1/search", bad, q, 401, NULL);
	memcpy(bad, f->tok_plain, sizeof(f->tok_plain));
	bad[WARD_CALLER_TOKEN_LEN - 1] = '\0';
	expect_status(f, "POST", "/v1/search", bad, q, 401, NULL);
	memcpy(bad, f->tok_plain, sizeof(f->tok_plain));
	bad[WARD_CALLER_TOKEN_LEN] = 'f';
	bad[WARD_CALLER_TOKEN_LEN + 1] = '\0';
	expect_status(f, "POST", "/v1/search", bad, q, 401, NULL);
	expect_status(f, "POST", "/v1/search", f->tok_gone, q, 401, NULL);
	expect_status(f, "GET", "/v1/keys", NULL, NULL, 401, NULL);
	expect_status(f, "GET", "/v1/chunks/1", NULL, NULL, 401, NULL);
	expect_status(f, "GET", "/v1/nope", NULL, NULL, 401, NULL); /* no probing of /v1 without a token */
	expect_status(f, "GET", "/metrics", NULL, NULL, 401, NULL);
	{
		const char *basic[] = {"Authorization: Basic cGxhaW46eA==", NULL};
		r = http_ex(f, "GET", "/v1/keys", NULL, NULL, 0, basic, NULL);
		assert_int_equal(r.status, 401);
		resp_free(&r);
	}
	/* a 1 MB Authorization header: refused by the header memory limit */
	{
		size_t n = 1024 * 1024, sent = 0;
		char *big = malloc(n), buf[2048], head[128];
		int fd = raw_connect(f);
		assert_non_null(big);
		snprintf(head, sizeof(head), "GET /v1/keys HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nAuthorization: Bearer ",
		         f->port);
		raw_send(fd, head);
		memset(big, 'a', n);
		while (sent < n) {
			ssize_t k = send(fd, big + sent, n - sent, MSG_NOSIGNAL);
			if (k <= 0)
				break;
			sent += (size_t)k;
		}
		assert_true(raw_read_all(fd, buf, sizeof(buf), 5000) > 0);
		if (!strstr(buf, "HTTP/1.1 431"))
			fail_msg("1 MB header: %s", buf);
		close(fd);
		free(big);
	}
	/* other clients unaffected */
	expect_status(f, "POST", "/v1/search", f->tok_plain, q, 200, "\"trace_id\"");
}

/* ---- T53 ------------------------------------------------------------------------------ */

static void test_query_http__host_origin_options(void **state)
{
	fixture *f = *state;
	char evil[64], host[64], wrongport[64];
	const char *origin[] = {"Origin: http://evil.example", NULL};
	resp r;

	snprintf(evil, sizeof(evil), "Host: evil.example:%u", f->port);
	{
		const char *h[] = {evil, NULL};
		r = http_ex(f, "GET", "/healthz", NULL, NULL, 0, h, NULL);
		assert_int_equal(r.status, 403);
		resp_free(&r);
		r = http_ex(f, "POST", "/v1/search", f->tok_plain, "{\"query\":\"narwhal\"}", 19, h, NULL);
		assert_int_equal(r.status, 403);
		resp_free(&r);
	}
	snprintf(wrongport, sizeof(wrongport), "Host: 127.0.0.1:%u", (unsigned)(f->port == 1 ? 2 : f->port - 1));
	{
		const char *h[] = {wrongport, NULL};
		r = http_ex(f, "GET", "/healthz", NULL, NULL, 0, h, NULL);
		assert_int_equal(r.status, 403);
		resp_free(&r);
	}
	/* the loopback names pass */
	snprintf(host, sizeof(host), "Host: localhost:%u", f->port);
	{
		const char *h[] = {host, NULL};
		r = http_ex(f, "GET", "/healthz", NULL, NULL, 0, h, NULL);
		assert_int_equal(r.status, 200);
		resp_free(&r);
	}
	snprintf(host, sizeof(host), "Host: [::1]:%u", f->port);
	{
		const char *h[] = {host, NULL};
		r = http_ex(f, "GET", "/healthz", NULL, NULL, 0, h, NULL);
		assert_int_equal(r.status, 200);
		resp_free(&r);
	}
	r = http_ex(f, "POST", "/v1/search", f->tok_plain, "{\"query\":\"narwhal\"}", 19, origin, NULL);
	assert_int_equal(r.status, 403);
	resp_free(&r);
	r = http_ex(f, "GET", "/healthz", NULL, NULL, 0, origin, NULL);
	assert_int_equal(r.status, 403);
	resp_free(&r);
	{
		const char *pre[] = {"Origin: http://evil.example", "Access-Control-Request-Method: POST", NULL};
		r = http_ex(f, "OPTIONS", "/v1/search", NULL, NULL, 0, pre, NULL);
		assert_int_equal(r.status, 403);
		resp_free(&r);
	}
	expect_status(f, "OPTIONS", "/v1/search", f->tok_plain, NULL, 403, NULL);
	/* wrong method on a known path */
	r = http(f, "GET", "/v1/search", f->tok_plain, NULL);
	assert_int_equal(r.status, 405);
	assert_non_null(strcasestr(r.headers, "allow: POST"));
	resp_free(&r);
	expect_status(f, "DELETE", "/v1/keys", f->tok_plain, NULL, 405, NULL);
	expect_status(f, "GET", "/nothing-here", NULL, NULL, 404, NULL);
}

/* ---- T54 ------------------------------------------------------------------------------ */

static void test_query_http__bind_refusals(void **state)
{
	fixture *f = *state;
	ward_server *srv = NULL;
	ward_server_opts o;
	const char *bad[] = {"0.0.0.0:0", "[::]:0", "192.0.2.10:0", "10.1.2.3:8411", "8.8.8.8:0"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		test_opts(&o);
		o.listen = bad[i];
		assert_int_equal(ward_server_start(&srv, f->home, &o), WARD_EPOLICY);
		assert_null(srv);
		assert_true(tu_error_has("--allow-remote"));
	}
	test_opts(&o);
	o.listen = "example.com:80";
	assert_int_equal(ward_server_start(&srv, f->home, &o), WARD_EINVAL);
	o.listen = "127.0.0.1:99999";
	assert_int_equal(ward_server_start(&srv, f->home, &o), WARD_EINVAL);
	o.listen = "127.0.0.1";
	assert_int_equal(ward_server_start(&srv, f->home, &o), WARD_EINVAL);
	/* with --allow-remote the operator may expose it */
	test_opts(&o);
	o.listen = "0.0.0.0:0";
	o.allow_remote = 1;
	assert_int_equal(ward_server_start(&srv, f->home, &o), 0);
	assert_true(ward_server_port(srv) > 0);
	ward_server_stop(srv);
	/* not a store */
	test_opts(&o);
	assert_true(ward_server_start(&srv, "/nonexistent/ragward-home", &o) < 0);
	assert_null(srv);
}

static void test_query_http__unix_socket(void **state)
{
	fixture *f;
	ward_server_opts o;
	struct stat sb;
	char *path;
	resp r;

	assert_int_equal(setup_store(state), 0);
	f = *state;
	populate(f);
	path = tu_path(f->home, "serve.sock");
	test_opts(&o);
	o.listen = NULL;
	o.unix_path = path;
	start(f, &o);
	assert_int_equal(ward_server_port(f->srv), 0);
	assert_int_equal(lstat(path, &sb), 0);
	assert_true(S_ISSOCK(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0660);
	r = http(f, "GET", "/healthz", NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"ok\":true}");
	resp_free(&r);
	r = http(f, "POST", "/v1/search", f->tok_plain, "{\"query\":\"narwhal\"}");
	assert_int_equal(r.status, 200);
	resp_free(&r);
	{
		const char *h[] = {"Host: evil.example", NULL};
		r = http_ex(f, "GET", "/healthz", NULL, NULL, 0, h, NULL);
		assert_int_equal(r.status, 403);
		resp_free(&r);
	}
	/* a second server on the same socket is refused; the first keeps it */
	{
		ward_server *two = NULL;
		assert_true(ward_server_start(&two, f->home, &o) < 0);
		assert_int_equal(lstat(path, &sb), 0);
	}
	ward_server_stop(f->srv);
	f->srv = NULL;
	assert_int_equal(lstat(path, &sb), -1); /* removed on exit */
	free(path);
}

/* ---- T55 ------------------------------------------------------------------------------ */

static void test_query_http__body_cap(void **state)
{
	fixture *f = *state;
	char buf[4096], req[512];
	size_t n = 100 * 1024;
	char *big = malloc(n + 1);
	int fd;
	resp r;

	/* a declared 100 MB body is refused before it is read */
	fd = raw_connect(f);
	snprintf(req, sizeof(req),
	         "POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nAuthorization: Bearer %s\r\n"
	         "Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n",
	         f->port, f->tok_plain);
	raw_send(fd, req);
	assert_true(raw_read_all(fd, buf, sizeof(buf), 5000) > 0);
	assert_non_null(strstr(buf, "HTTP/1.1 413"));
	assert_non_null(strstr(buf, "too_large"));
	close(fd);
	/* a sent body over the cap (curl, Content-Length) */
	assert_non_null(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	r = http_ex(f, "POST", "/v1/search", f->tok_plain, big, n, NULL, NULL);
	assert_true(r.status == 413 || r.cc != CURLE_OK);
	resp_free(&r);
	/* a chunked body over the cap */
	fd = raw_connect(f);
	snprintf(req, sizeof(req),
	         "POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nAuthorization: Bearer %s\r\n"
	         "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
	         f->port, f->tok_plain);
	raw_send(fd, req);
	for (int i = 0; i < 20; i++) {
		char chunk[8192 + 16];
		int len = snprintf(chunk, sizeof(chunk), "2000\r\n");
		memset(chunk + len, ' ', 8192);
		memcpy(chunk + len + 8192, "\r\n", 3);
		if (send(fd, chunk, (size_t)len + 8194, MSG_NOSIGNAL) < 0)
			break;
	}
	(void)send(fd, "0\r\n\r\n", 5, MSG_NOSIGNAL);
	assert_true(raw_read_all(fd, buf, sizeof(buf), 5000) > 0);
	assert_non_null(strstr(buf, "HTTP/1.1 413"));
	close(fd);
	/* an endless chunked body is cut off, and the server goes on */
	fd = raw_connect(f);
	raw_send(fd, req);
	for (int i = 0; i < 400; i++) {
		char chunk[8192 + 16];
		int len = snprintf(chunk, sizeof(chunk), "2000\r\n");
		memset(chunk + len, 'x', 8192);
		memcpy(chunk + len + 8192, "\r\n", 3);
		if (send(fd, chunk, (size_t)len + 8194, MSG_NOSIGNAL) < 0)
			break;
	}
	close(fd);
	expect_status(f, "POST", "/v1/search", f->tok_plain, "{\"query\":\"narwhal\"}", 200, NULL);
	/* not JSON */
	{
		const char *ct[] = {"Content-Type: text/plain", NULL};
		r = http_ex(f, "POST", "/v1/search", f->tok_plain, "{\"query\":\"x\"}", 13, ct, NULL);
		assert_int_equal(r.status, 415);
		resp_free(&r);
	}
	free(big);
}

static void test_query_http__slowloris_and_headers(void **state)
{
	fixture *f = *state;
	char buf[1024];
	double t0;
	int slow = raw_connect(f);
	resp r;

	/* headers trickling in do not hold up another client ... */
	raw_send(slow, "GET /healthz HTTP/1.1\r\nHo");
	t0 = now_s();
	r = http(f, "GET", "/healthz", NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_true(now_s() - t0 < 1.0);
	resp_free(&r);
	/* ... and are cut off by the header timeout (1 s here) */
	raw_send(slow, "s");
	t0 = now_s();
	assert_true(raw_read_all(slow, buf, sizeof(buf), 5000) >= 0);
	assert_true(now_s() - t0 < 4.5);
	close(slow);
	/* 10k headers: over the connection's memory */
	{
		ward_buf b;
		char *text = NULL;
		size_t len = 0;
		int fd = raw_connect(f);
		ward_buf_init(&b, 1024 * 1024);
		assert_int_equal(ward_buf_printf(&b, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n", f->port), 0);
		for (int i = 0; i < 10000; i++)
			assert_int_equal(ward_buf_printf(&b, "X-H%d: v\r\n", i), 0);
		assert_int_equal(ward_buf_puts(&b, "\r\n"), 0);
		assert_int_equal(ward_buf_detach(&b, &text, &len), 0);
		(void)send(fd, text, len, MSG_NOSIGNAL);
		assert_true(raw_read_all(fd, buf, sizeof(buf), 5000) > 0);
		assert_non_null(strstr(buf, "HTTP/1.1 431"));
		ward_free(text);
		close(fd);
	}
	expect_status(f, "GET", "/healthz", NULL, NULL, 200, NULL);
}

static void test_query_http__per_ip_limit(void **state)
{
	fixture *f;
	ward_server_opts o;
	int fds[3];
	resp r;

	assert_int_equal(setup_store(state), 0);
	f = *state;
	populate(f);
	test_opts(&o);
	o.per_ip_limit = 3;
	o.timeout_s = 30;
	start(f, &o);
	for (int i = 0; i < 3; i++) {
		fds[i] = raw_connect(f);
		raw_send(fds[i], "GET /healthz HTTP/1.1\r\n"); /* held open */
	}
	usleep(100 * 1000);
	r = http(f, "GET", "/healthz", NULL, NULL);
	assert_true(r.status != 200);
	resp_free(&r);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	usleep(200 * 1000);
	expect_status(f, "GET", "/healthz", NULL, NULL, 200, NULL);
}

/* ---- T56 ------------------------------------------------------------------------------ */

static void test_query_http__hostile_json(void **state)
{
	fixture *f = *state;
	static const struct {
		const char *body;
		const char *reason;
	} cases[] = {
	        {"{\"query\":\"a\",\"query\":\"b\"}", "duplicate key"},
	        {"{\"query\":\"x\",\"k\":1e400}", "out of range"},
	        {"{\"query\":\"x\",\"k\":18446744073709551616}", "out of range"},
	        {"{\"query\":\"x\",\"k\":-0}", "'k' must be an integer from 1"},
	        {"{\"query\":\"x\",\"k\":5.0}", "'k' must be an integer"},
	        {"{\"query\":\"x\",\"k\":\"5\"}", "'k' must be an integer"},
	        {"{\"query\":\"x\",\"k\":51}", "'k' must be an integer from 1 to 50"},
	        {"{\"query\":\"a\\u0000b\"}", "NUL character"},
	        {"{\"query\":\"x\"} trailing", "garbage after the JSON value"},
	        {"{\"query\":\"x\"}{}", "garbage after the JSON value"},
	        {"42", "must be a JSON object"},
	        {"\"query\"", "must be a JSON object"},
	        {"[{\"query\":\"x\"}]", "must be a JSON object"},
	        {"null", "must be a JSON object"},
	        {"", "empty body"},
	        {"{\"query\":\"x\",\"evil\":1}", "unknown field 'evil'"},
	        {"{\"query\":5}", "'query' must be a string"},
	        {"{\"k\":5}", "'query' is missing"},
	        {"{\"query\":\"x\",\"sources\":\"1\"}", "'sources' must be an array"},
	        {"{\"query\":\"x\",\"sources\":[1.5]}", "'sources' must be an array of positive integer ids"},
	        {"{\"query\":\"x\",\"sources\":[-1]}", "'sources' must be an array of positive integer ids"},
	        {"{\"query\":\"x\",\"datamark\":1}", "'datamark' must be a boolean"},
	        {"{\"query\":\"x\",\"min_trust\":\"max\"}", "'min_trust' must be one of"},
	        {"{\"query\":\"x\",\"min_trust\":2}", "'min_trust' must be one of"},
	        {"{\"query\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", "nesting too deep"},
	        {"{\"query\":\"x\"", "truncated JSON"},
	        {"{query:\"x\"}", "invalid JSON"},
	};
	char msg[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		resp r = http(f, "POST", "/v1/search", f->tok_plain, cases[i].body);
		json_t *j;
		snprintf(msg, sizeof(msg), "case %zu '%s'", i, cases[i].body);
		if (r.status != 400 || !strstr(r.body, cases[i].reason))
			fail_msg("%s: got %ld %s, want 400 '%s'", msg, r.status, r.body, cases[i].reason);
		j = json_of(&r);
		assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
		                    "bad_request");
		json_decref(j);
		resp_free(&r);
	}
	/* invalid UTF-8 (binary, so not through the table) */
	{
		const char body[] = "{\"query\":\"\xff\xfe\"}";
		resp r = http_ex(f, "POST", "/v1/search", f->tok_plain, body, sizeof(body) - 1, NULL, NULL);
		assert_int_equal(r.status, 400);
		assert_non_null(strstr(r.body, "invalid UTF-8"));
		resp_free(&r);
	}
	/* deep nesting past the body cap; a huge array; many small elements */
	{
		size_t n = 100000;
		char *deep = malloc(n + 1);
		ward_buf b;
		char *arr = NULL;
		size_t alen = 0;
		resp r;

		assert_non_null(deep);
		memset(deep, '[', n);
		deep[0] = '{';
		deep[n] = '\0';
		r = http_ex(f, "POST", "/v1/search", f->tok_plain, deep, n, NULL, NULL);
		assert_true(r.status == 413 || r.cc != CURLE_OK);
		resp_free(&r);
		/* within the cap: nesting 30k deep */
		deep[30000] = '\0';
		r = http(f, "POST", "/v1/search", f->tok_plain, deep);
		assert_int_equal(r.status, 400);
		assert_non_null(strstr(r.body, "nesting too deep"));
		resp_free(&r);
		free(deep);

		ward_buf_init(&b, 4 * 1024 * 1024);
		assert_int_equal(ward_buf_puts(&b, "{\"query\":\"x\",\"sources\":[1"), 0);
		for (int i = 0; i < 20000; i++)
			assert_int_equal(ward_buf_puts(&b, ",1"), 0);
		assert_int_equal(ward_buf_puts(&b, "]}"), 0);
		assert_int_equal(ward_buf_detach(&b, &arr, &alen), 0);
		r = http(f, "POST", "/v1/search", f->tok_plain, arr);
		assert_int_equal(r.status, 400);
		assert_non_null(strstr(r.body, "too many elements"));
		resp_free(&r);
		ward_free(arr);
	}
	/* T43 over HTTP: FTS syntax never reaches SQLite, no SQL text leaks */
	{
		static const char *const hostile[] = {
		        "{\"query\":\"\\\"hello\"}", "{\"query\":\"hello AND\"}",
		        "{\"query\":\"NOT\"}",       "{\"query\":\"content:x\"}",
		        "{\"query\":\"*\"}",         "{\"query\":\"'; DROP TABLE chunks; --\"}"};
		for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
			resp r = http(f, "POST", "/v1/search", f->tok_plain, hostile[i]);
			assert_true(r.status == 200 || r.status == 400);
			assert_null(strcasestr(r.body, "fts5"));
			assert_null(strcasestr(r.body, "sqlite"));
			assert_null(strcasestr(r.body, "syntax error"));
			resp_free(&r);
		}
		ward_buf b;
		char *many = NULL;
		size_t mlen = 0;
		ward_buf_init(&b, 128 * 1024);
		assert_int_equal(ward_buf_puts(&b, "{\"query\":\""), 0);
		for (int i = 0; i < 10000; i++)
			assert_int_equal(ward_buf_printf(&b, "t%d ", i), 0);
		assert_int_equal(ward_buf_puts(&b, "\"}"), 0);
		assert_int_equal(ward_buf_detach(&b, &many, &mlen), 0);
		{
			resp r = http_ex(f, "POST", "/v1/search", f->tok_plain, many, mlen, NULL, NULL);
			assert_true(r.status == 400 || r.status == 413);
			if (r.status == 400)
				assert_non_null(strstr(r.body, "too long/complex"));
			resp_free(&r);
		}
		ward_free(many);
	}
	/* the citation check has the same strictness */
	expect_status(f, "POST", "/v1/citations/check", f->tok_plain, "{\"trace_id\":\"x\",\"output\":\"y\",\"z\":1}",
	              400, "unknown field 'z'");
	expect_status(f, "POST", "/v1/citations/check", f->tok_plain, "{\"trace_id\":1,\"output\":\"y\"}", 400,
	              "must both be strings");
}

/* ---- serving rules ------------------------------------------------------------------------ */

static void test_query_http__labels(void **state)
{
	fixture *f = *state;
	json_t *res;
	const json_t *r;
	size_t i;

	res = search(f, f->tok_plain, "narwhal");
	assert_true(has_doc(res, f->doc_public));
	assert_false(has_doc(res, f->doc_secret));
	json_decref(res);
	res = search(f, f->tok_team, "narwhal");
	assert_true(has_doc(res, f->doc_public));
	assert_true(has_doc(res, f->doc_secret));
	json_array_foreach(json_object_get(res, "results"), i, r)
	{
		assert_true(json_is_true(json_object_get(json_object_get(r, "integrity"), "verified")));
		assert_true(json_integer_value(json_object_get(json_object_get(r, "citation"), "source_id")) > 0);
	}
	json_decref(res);
	/* a caller cannot widen its labels from the request */
	expect_status(f, "POST", "/v1/search", f->tok_plain, "{\"query\":\"narwhal\",\"labels\":[\"team-x\"]}", 400,
	              "unknown field 'labels'");
	/* source filter and k */
	{
		char body[128];
		json_t *j;
		resp rr;
		snprintf(body, sizeof(body), "{\"query\":\"narwhal\",\"k\":1,\"sources\":[%lld],\"datamark\":true}",
		         (long long)f->src_secret);
		rr = http(f, "POST", "/v1/search", f->tok_team, body);
		assert_int_equal(rr.status, 200);
		j = json_of(&rr);
		assert_int_equal(json_array_size(json_object_get(j, "results")), 1);
		assert_true(has_doc(j, f->doc_secret));
		json_decref(j);
		resp_free(&rr);
	}
}

static void test_query_http__chunks(void **state)
{
	fixture *f = *state;
	char path[64];
	resp r;
	json_t *j;

	snprintf(path, sizeof(path), "/v1/chunks/%lld", chunk_of(f, f->doc_public));
	r = http(f, "GET", path, f->tok_plain, NULL);
	assert_int_equal(r.status, 200);
	j = json_of(&r);
	assert_string_equal(json_string_value(json_object_get(j, "text")), "narwhal tusk facts for everyone to read");
	assert_true(json_is_true(json_object_get(json_object_get(j, "integrity"), "verified")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "citation"), "document_id")),
	                 f->doc_public);
	json_decref(j);
	resp_free(&r);
	snprintf(path, sizeof(path), "/v1/chunks/%lld", chunk_of(f, f->doc_secret));
	expect_status(f, "GET", path, f->tok_plain, NULL, 404, "not_found");
	expect_status(f, "GET", path, f->tok_team, NULL, 200, "narwhal secret plans");
	expect_status(f, "GET", "/v1/chunks/999999", f->tok_team, NULL, 404, NULL);
	expect_status(f, "GET", "/v1/chunks/abc", f->tok_team, NULL, 404, NULL);
	expect_status(f, "GET", "/v1/chunks/0", f->tok_team, NULL, 404, NULL);
	expect_status(f, "GET", "/v1/chunks/99999999999999999999999", f->tok_team, NULL, 404, NULL);
	expect_status(f, "GET", "/v1/chunks/", f->tok_team, NULL, 404, NULL);
}

static void test_query_http__revoked_source_gone_at_once(void **state)
{
	fixture *f = *state;
	ward_actor bob = tu_actor("bob");
	char path[64];
	json_t *res;

	res = search(f, f->tok_team, "narwhal");
	assert_true(has_doc(res, f->doc_secret));
	json_decref(res);
	assert_int_equal(ward_sources_decide(f->s, &bob, f->src_secret, WARD_DECIDE_REVOKE, NULL), 0);
	res = search(f, f->tok_team, "narwhal");
	assert_false(has_doc(res, f->doc_secret));
	assert_true(has_doc(res, f->doc_public));
	json_decref(res);
	snprintf(path, sizeof(path), "/v1/chunks/%lld", chunk_of(f, f->doc_secret));
	expect_status(f, "GET", path, f->tok_team, NULL, 404, NULL);
	/* a new ingest appears without a restart */
	tu_add_doc(f->s, f->src_public, "https://docs.example.com/new", "New", "narwhal freshly ingested page");
	res = search(f, f->tok_plain, "freshly ingested");
	assert_int_equal(json_array_size(json_object_get(res, "results")), 1);
	json_decref(res);
	/* and a revoked caller stops at once */
	{
		ward_actor admin = tu_actor("admin");
		assert_int_equal(ward_callers_revoke(f->s, &admin, "plain", NULL), 0);
		expect_status(f, "POST", "/v1/search", f->tok_plain, "{\"query\":\"narwhal\"}", 401, NULL);
	}
}

static unsigned long long metric(fixture *f, const char *name)
{
	resp r = http(f, "GET", "/metrics", f->tok_team, NULL);
	const char *at;
	unsigned long long v = 0;
	char key[128];

	assert_int_equal(r.status, 200);
	assert_non_null(strcasestr(r.headers, "content-type: text/plain; version=0.0.4"));
	snprintf(key, sizeof(key), "\n%s ", name);
	at = strstr(r.body, key);
	if (!at)
		fail_msg("metric '%s' missing in:\n%s", name, r.body);
	v = strtoull(at + strlen(key), NULL, 10);
	resp_free(&r);
	return v;
}

/* /metrics shows the WAL's size (T41): the fixture's writes are in it, as
 * the server's connections keep it from being folded in and deleted. */
static void test_query_http__wal_size_in_metrics(void **state)
{
	fixture *f = *state;
	char *wal = tu_path(f->home, "store.db-wal");
	struct stat sb;

	expect_status(f, "POST", "/v1/search", f->tok_team, "{\"query\":\"narwhal\"}", 200, NULL);
	assert_int_equal(stat(wal, &sb), 0);
	assert_true(sb.st_size > 0);
	assert_int_equal(metric(f, "ragward_store_wal_bytes"), (unsigned long long)sb.st_size);
	free(wal);
}

static void test_query_http__tampered_chunk_withheld_and_counted(void **state)
{
	fixture *f = *state;
	unsigned long long before = metric(f, "ragward_withheld_chunks_total");
	char sql[128], path[64];
	json_t *res;

	snprintf(sql, sizeof(sql), "UPDATE chunks SET text = 'narwhal forged text' WHERE id = %lld",
	         chunk_of(f, f->doc_public));
	tu_raw_exec_ok(f->home, sql);
	res = search(f, f->tok_team, "narwhal");
	assert_false(has_doc(res, f->doc_public));
	assert_true(has_doc(res, f->doc_secret));
	assert_true(json_integer_value(json_object_get(res, "withheld")) >= 1);
	json_decref(res);
	snprintf(path, sizeof(path), "/v1/chunks/%lld", chunk_of(f, f->doc_public));
	expect_status(f, "GET", path, f->tok_team, NULL, 404, NULL);
	assert_true(metric(f, "ragward_withheld_chunks_total") >= before + 2);
	assert_true(metric(f, "ragward_verify_failures_total") >= before + 2);
	{
		resp r = http(f, "GET", "/metrics", f->tok_team, NULL);
		assert_non_null(strstr(r.body, "ragward_http_requests_total{endpoint=\"search\",status=\"200\"}"));
		assert_non_null(strstr(
		        r.body, "ragward_http_request_duration_seconds_bucket{endpoint=\"search\",le=\"+Inf\"}"));
		resp_free(&r);
	}
}

static void test_query_http__keys_healthz_reload(void **state)
{
	fixture *f = *state;
	resp r = http(f, "GET", "/v1/keys", f->tok_plain, NULL);
	json_t *j, *k;

	assert_int_equal(r.status, 200);
	j = json_of(&r);
	assert_int_equal(json_array_size(json_object_get(j, "keys")), 1);
	k = json_array_get(json_object_get(j, "keys"), 0);
	assert_string_equal(json_string_value(json_object_get(k, "state")), "active");
	assert_int_equal(strlen(json_string_value(json_object_get(k, "public_key_hex"))), 64);
	assert_non_null(strstr(json_string_value(json_object_get(k, "public_key_pem")), "-----BEGIN PUBLIC KEY-----"));
	json_decref(j);
	resp_free(&r);
	expect_status(f, "GET", "/healthz", NULL, NULL, 200, "{\"ok\":true}");
	ward_server_reload(f->srv);
	expect_status(f, "GET", "/healthz", NULL, NULL, 200, "{\"ok\":true}");
	expect_status(f, "POST", "/v1/search", f->tok_plain, "{\"query\":\"narwhal\"}", 200, NULL);
	/* the store goes away: 503, no internal text */
	{
		char *db = tu_path(f->home, "store.db"), *moved = tu_path(f->home, "store.db.away");
		assert_int_equal(rename(db, moved), 0);
		r = http(f, "GET", "/healthz", NULL, NULL);
		assert_int_equal(r.status, 503);
		assert_null(strstr(r.body, "store.db"));
		resp_free(&r);
		expect_status(f, "POST", "/v1/search", f->tok_plain, "{\"query\":\"narwhal\"}", 503, "unavailable");
		assert_int_equal(rename(moved, db), 0);
		expect_status(f, "GET", "/healthz", NULL, NULL, 200, NULL);
		free(db);
		free(moved);
	}
}

static void test_query_http__citations(void **state)
{
	fixture *f = *state;
	json_t *res = search(f, f->tok_plain, "narwhal"), *j;
	char body[256];
	resp r;

	snprintf(body, sizeof(body), "{\"trace_id\":\"%s\",\"output\":\"Narwhals have tusks [1]. Also [7].\"}",
	         json_string_value(json_object_get(res, "trace_id")));
	json_decref(res);
	r = http(f, "POST", "/v1/citations/check", f->tok_plain, body);
	assert_int_equal(r.status, 200);
	j = json_of(&r);
	assert_false(json_is_true(json_object_get(j, "ok"))); /* [7] was never retrieved */
	assert_int_equal(json_array_size(json_object_get(j, "citations")), 2);
	json_decref(j);
	resp_free(&r);
	/* another caller cannot read this trace */
	expect_status(f, "POST", "/v1/citations/check", f->tok_team, body, 404, NULL);
	expect_status(f, "POST", "/v1/citations/check", f->tok_plain,
	              "{\"trace_id\":\"00000000000000000000000000000000\",\"output\":\"[1]\"}", 404, NULL);
	expect_status(f, "POST", "/v1/citations/check", f->tok_plain, "{\"trace_id\":\"../../etc\",\"output\":\"[1]\"}",
	              400, NULL);
}

/* ---- T49: refuse to serve a rolled-back or tampered store ------------------------------- */

#define REFUSAL_BODY                                                                                                   \
	"{\"error\":{\"code\":\"unavailable\",\"message\":\"store failed its audit check; refusing to serve\"}}"

/* Every /v1 endpoint (with a token or without), /mcp and /healthz answer the
 * refusal, and no chunk text leaks. */
static void expect_refusing(fixture *f)
{
	static const char *const paths[][3] = {
	        {"POST", "/v1/search", "{\"query\":\"narwhal\"}"},
	        {"POST", "/v1/citations/check",
	         "{\"trace_id\":\"00000000000000000000000000000000\",\"output\":\"[1]\"}"},
	        {"GET", "/v1/keys", NULL},
	        {"GET", "/v1/chunks/1", NULL},
	        {"GET", "/v1/nope", NULL},
	        {"POST", "/mcp", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}"},
	};
	resp r;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		const char *tokens[2] = {f->tok_plain, NULL};
		for (size_t t = 0; t < 2; t++) {
			r = http(f, paths[i][0], paths[i][1], tokens[t], paths[i][2]);
			if (r.status != 503 || strcmp(r.body, REFUSAL_BODY) != 0)
				fail_msg("%s %s (%s token): got %ld '%s', want 503 %s", paths[i][0], paths[i][1],
				         tokens[t] ? "with a" : "no", r.status, r.body, REFUSAL_BODY);
			assert_null(strstr(r.body, "narwhal"));
			resp_free(&r);
		}
	}
	expect_status(f, "GET", "/healthz", NULL, NULL, 503,
	              "{\"ok\":false,\"error\":\"store failed its audit check; refusing to serve\"}");
}

static void test_query_http__refuses_log_truncated_in_place(void **state)
{
	fixture *f = *state;
	unsigned long long refused;
	json_t *res = search(f, f->tok_plain, "narwhal");

	assert_true(has_doc(res, f->doc_public));
	json_decref(res);
	assert_int_equal(metric(f, "ragward_refusing"), 0);
	assert_int_equal(metric(f, "ragward_store_checks_total"), 1); /* the start's */
	/* The last two events and the checkpoints covering them go, in place
	 * (same inode, no reload): only the per-request guard can see it. */
	tu_drop_audit_triggers(f->home);
	tu_raw_exec_ok(f->home, "DELETE FROM audit_events WHERE seq > (SELECT max(seq) - 2 FROM audit_events);"
	                        "DELETE FROM checkpoints WHERE tree_size > (SELECT max(seq) FROM audit_events);");
	expect_status(f, "POST", "/v1/search", f->tok_plain, "{\"query\":\"narwhal\"}", 503, REFUSAL_BODY);
	expect_refusing(f);
	assert_int_equal(metric(f, "ragward_refusing"), 1);
	assert_int_equal(metric(f, "ragward_store_check_failures_total{check=\"log_size\"}"), 1);
	refused = metric(f, "ragward_refused_requests_total");
	assert_true(refused >= 14);
	/* a reload does not lift it; only a restart (which checks again) would */
	ward_server_reload(f->srv);
	expect_refusing(f);
	assert_true(metric(f, "ragward_refused_requests_total") > refused);
	assert_int_equal(metric(f, "ragward_refusing"), 1);
}

static void test_query_http__reload_checks_again(void **state)
{
	fixture *f = *state;

	expect_status(f, "POST", "/v1/search", f->tok_plain, "{\"query\":\"narwhal\"}", 200, "narwhal");
	/* An event rewritten in place: the log keeps its size, so the cheap
	 * guard cannot tell; the check of the reloaded generation does. */
	tu_drop_audit_triggers(f->home);
	tu_raw_exec_ok(f->home, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3;");
	ward_server_reload(f->srv);
	expect_status(f, "POST", "/v1/search", f->tok_plain, "{\"query\":\"narwhal\"}", 503, REFUSAL_BODY);
	expect_refusing(f);
	assert_int_equal(metric(f, "ragward_store_checks_total"), 2);
	assert_int_equal(metric(f, "ragward_store_check_failures_total{check=\"store\"}"), 1);
	assert_int_equal(metric(f, "ragward_refusing"), 1);
}

static void test_query_http__start_refuses_tampered_store(void **state)
{
	fixture *f;
	ward_server_opts o;

	assert_int_equal(setup_store(state), 0);
	f = *state;
	populate(f);
	tu_drop_audit_triggers(f->home);
	tu_raw_exec_ok(f->home, "DELETE FROM audit_events WHERE seq = (SELECT max(seq) FROM audit_events);"
	                        "DELETE FROM checkpoints WHERE tree_size > (SELECT max(seq) FROM audit_events);");
	test_opts(&o);
	assert_int_equal(ward_server_start(&f->srv, f->home, &o), WARD_EVERIFY);
	assert_null(f->srv);
	assert_non_null(strstr(ward_error_last()->message, "refusing to serve"));
}

static int teardown_any(void **state)
{
	return teardown(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_query_http__auth, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_http__host_origin_options, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_http__bind_refusals, setup, teardown),
	        cmocka_unit_test_teardown(test_query_http__unix_socket, teardown_any),
	        cmocka_unit_test_setup_teardown(test_query_http__body_cap, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_http__slowloris_and_headers, setup, teardown),
	        cmocka_unit_test_teardown(test_query_http__per_ip_limit, teardown_any),
	        cmocka_unit_test_setup_teardown(test_query_http__hostile_json, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_http__labels, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_http__chunks, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_http__revoked_source_gone_at_once, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_http__tampered_chunk_withheld_and_counted, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_http__wal_size_in_metrics, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_http__keys_healthz_reload, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_http__citations, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_http__refuses_log_truncated_in_place, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_query_http__reload_checks_again, setup, teardown),
	        cmocka_unit_test_teardown(test_query_http__start_refuses_tampered_store, teardown_any),
	};
	int rc;

	ward_alloc_install_jansson();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
