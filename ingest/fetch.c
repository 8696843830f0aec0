/*
 * Fetching over http(s) with libcurl, treating every byte, header and
 * redirect from the server as hostile.
 *
 * libcurl 7.88 (Debian 12) is the floor, and several of curl's own guards
 * arrived later (security-controls.md §0/§1): MAXREDIRS is unlimited by
 * default, MAXFILESIZE only acts on a Content-Length known in advance, and
 * TLS 1.2 is not yet the default minimum. So here:
 *
 *  - redirects are never followed by curl (FOLLOWLOCATION 0); each Location
 *    is canonicalized with ward_url_canonicalize (curl's own URL parser),
 *    checked for https->http, handed to the caller's allowlist and counted
 *    against WARD_FETCH_MAX_REDIRECTS before it is requested;
 *  - the address curl is about to connect to is checked in the
 *    OPENSOCKETFUNCTION (so a DNS answer cannot change after the check), and
 *    again in the PREREQFUNCTION, which also runs for reused connections;
 *  - body bytes are counted in the write callback (and the progress
 *    callback), on top of MAXFILESIZE_LARGE;
 *  - no decoding is asked for and any Content-Encoding other than identity
 *    is refused, so a small gzip bomb never expands;
 *  - proxies, netrc and cookies are off, TLS verification always on.
 *
 * Handles: each thread keeps one easy handle and curl_easy_reset()s it per
 * call, so connections, the DNS cache and TLS sessions to the same host are
 * reused across calls and redirect hops (the PREREQFUNCTION re-checks the
 * address of a reused connection). A sharable connection pool across threads
 * (curl_share / multi) is future work.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "ragward/fetch.h"
#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "ragward/crypto.h"
#include "ragward/error.h"
#include "ragward/store.h"
#include "ragward/url.h"
#include "core/limits.h"
#include "core/banned.h"

#ifndef RAGWARD_VERSION
#define RAGWARD_VERSION "0"
#endif
#define USER_AGENT "ragward/" RAGWARD_VERSION

/* Room for an echoed server string (Location, Content-Encoding, curl's
 * error text) in a 512-byte message. */
#define SHOW_MAX 160

/* ------------------------------------------------------- address checks */

typedef struct {
	uint32_t net;
	int bits;
} v4_net;

/* Everything that is not a global unicast destination. */
static const v4_net blocked_v4[] = {
	{0x00000000u, 8},  /* 0.0.0.0/8 "this network" (0.0.0.0 reaches localhost) */
	{0x0A000000u, 8},  /* 10/8 RFC 1918 */
	{0x64400000u, 10}, /* 100.64/10 CGNAT */
	{0x7F000000u, 8},  /* 127/8 loopback */
	{0xA9FE0000u, 16}, /* 169.254/16 link-local, cloud metadata */
	{0xAC100000u, 12}, /* 172.16/12 RFC 1918 */
	{0xC0000000u, 24}, /* 192.0.0/24 IETF protocol assignments */
	{0xC0000200u, 24}, /* 192.0.2/24 TEST-NET-1 */
	{0xC0586300u, 24}, /* 192.88.99/24 6to4 relay anycast (deprecated) */
	{0xC0A80000u, 16}, /* 192.168/16 RFC 1918 */
	{0xC6120000u, 15}, /* 198.18/15 benchmarking */
	{0xC6336400u, 24}, /* 198.51.100/24 TEST-NET-2 */
	{0xCB007100u, 24}, /* 203.0.113/24 TEST-NET-3 */
	{0xE0000000u, 4},  /* 224/4 multicast */
	{0xF0000000u, 4},  /* 240/4 reserved, includes 255.255.255.255 */
};

static int v4_is_private(const uint8_t a[4])
{
	uint32_t x = ((uint32_t)a[0] << 24) | ((uint32_t)a[1] << 16) | ((uint32_t)a[2] << 8) | a[3];
	size_t i;

	if (x == 0xFFFFFFFFu)
		return 1;
	for (i = 0; i < sizeof(blocked_v4) / sizeof(blocked_v4[0]); i++) {
		uint32_t mask = 0xFFFFFFFFu << (32 - blocked_v4[i].bits);

		if ((x & mask) == blocked_v4[i].net)
			return 1;
	}
	return 0;
}

static int v6_prefix(const uint8_t a[16], const uint8_t p[16], int bits)
{
	int full = bits / 8, rest = bits % 8;

	if (memcmp(a, p, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return (a[full] & (uint8_t)(0xFF << (8 - rest))) == (p[full] & (uint8_t)(0xFF << (8 - rest)));
}

typedef struct {
	uint8_t prefix[16];
	int bits;
	int embedded; /* offset of an embedded IPv4 address to judge instead, or -1: always refused */
} v6_net;

/*
 * Forms that carry an IPv4 address are judged by that address: the kernel
 * (v4-mapped) or a translator (NAT64, 6to4) delivers them to it, which is how
 * "[::ffff:127.0.0.1]" and "[64:ff9b::a9fe:a9fe]" reach loopback and the
 * metadata service.
 */
static const v6_net blocked_v6[] = {
	{{0}, 96, 12},                                                  /* ::/96 compat; :: and ::1 */
	{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96, 12},           /* ::ffff:0:0/96 v4-mapped */
	{{0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0}, 96, 12},           /* ::ffff:0:0:0/96 SIIT */
	{{0, 0x64, 0xff, 0x9b}, 96, 12},                                /* 64:ff9b::/96 NAT64 */
	{{0, 0x64, 0xff, 0x9b, 0, 1}, 48, -1},                          /* 64:ff9b:1::/48 local NAT64 */
	{{0x20, 0x02}, 16, 2},                                          /* 2002::/16 6to4 */
	{{0x01, 0x00}, 64, -1},                                         /* 100::/64 discard */
	{{0x20, 0x01, 0, 0}, 32, -1},                                   /* 2001::/32 Teredo */
	{{0x20, 0x01, 0x0d, 0xb8}, 32, -1},                             /* 2001:db8::/32 documentation */
	{{0xfc}, 7, -1},                                                /* fc00::/7 ULA, incl. fd00:ec2::254 */
	{{0xfe, 0x80}, 10, -1},                                         /* fe80::/10 link-local */
	{{0xfe, 0xc0}, 10, -1},                                         /* fec0::/10 site-local (deprecated) */
	{{0xff}, 8, -1},                                                /* ff00::/8 multicast */
};

static int v6_is_private(const uint8_t a[16])
{
	size_t i;

	for (i = 0; i < sizeof(blocked_v6) / sizeof(blocked_v6[0]); i++) {
		if (!v6_prefix(a, blocked_v6[i].prefix, blocked_v6[i].bits))
			continue;
		if (blocked_v6[i].embedded < 0)
			return 1;
		return v4_is_private(a + blocked_v6[i].embedded);
	}
	return 0;
}

/* Unknown families (AF_UNIX, ...) and malformed lengths are refused. */
static int sockaddr_is_private(const struct sockaddr *sa, size_t len)
{
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		return v4_is_private((const uint8_t *)&in->sin_addr);
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

		return v6_is_private(in6->sin6_addr.s6_addr);
	}
	return 1;
}

static void sockaddr_text(char *dst, size_t size, const struct sockaddr *sa)
{
	const void *src = NULL;

	if (sa->sa_family == AF_INET)
		src = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		src = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (src == NULL || inet_ntop(sa->sa_family, src, dst, (socklen_t)size) == NULL)
		snprintf(dst, size, "(address family %d)", (int)sa->sa_family);
}

int ward_fetch_addr_is_private(const char *ip)
{
	char tmp[INET6_ADDRSTRLEN + 8];
	uint8_t a[16];
	size_t n;

	if (ip == NULL)
		return 1;
	n = strnlen(ip, sizeof(tmp));
	if (n >= sizeof(tmp))
		return 1;
	if (n >= 2 && ip[0] == '[' && ip[n - 1] == ']') {
		memcpy(tmp, ip + 1, n - 2);
		tmp[n - 2] = '\0';
	} else {
		memcpy(tmp, ip, n);
		tmp[n] = '\0';
	}
	/* A zone id ("fe80::1%eth0") only exists for link-local scopes. */
	if (strchr(tmp, '%') != NULL)
		return 1;
	if (inet_pton(AF_INET, tmp, a) == 1)
		return v4_is_private(a);
	if (inet_pton(AF_INET6, tmp, a) == 1)
		return v6_is_private(a);
	return 1; /* not an address: fail closed */
}

/* ------------------------------------------------------------- helpers */

/* Server-controlled text for a message: printable ASCII only, capped. */
static const char *show(char *dst, size_t size, const char *s, size_t len)
{
	size_t o = 0, i;

	for (i = 0; i < len && s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (o + 8 >= size) {
			memcpy(dst + o, "...", 4);
			return dst;
		}
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			dst[o++] = (char)c;
		} else {
			int k = snprintf(dst + o, size - o, "\\x%02x", c);

			if (k < 0)
				break;
			o += (size_t)k;
		}
	}
	dst[o] = '\0';
	return dst;
}

/* A header value we keep or send: visible ASCII and inner spaces only, so
 * nothing a server sent can later inject a header line of ours (CRLF). */
static int header_value_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > WARD_FETCH_MAX_VALIDATOR)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------ transfer state */

typedef struct {
	const ward_fetch_opts *opts;
	size_t cap;
	ward_buf body;
	char *etag;
	char *last_modified;
	size_t nheaders;
	int too_big;         /* the body passed the cap */
	int nomem;           /* an allocation in a callback failed */
	int bad_encoding;    /* the response carried a Content-Encoding */
	int header_overflow; /* a header line or the header count passed its cap */
	int blocked;         /* the SSRF guard refused an address */
	char blocked_ip[INET6_ADDRSTRLEN + 24];
	char encoding[64];
} fetch_ctx;

static void ctx_reset_hop(fetch_ctx *c)
{
	ward_buf_reset(&c->body);
	ward_free(c->etag);
	ward_free(c->last_modified);
	c->etag = c->last_modified = NULL;
	c->nheaders = 0;
	c->too_big = c->nomem = c->bad_encoding = c->header_overflow = c->blocked = 0;
	c->blocked_ip[0] = c->encoding[0] = '\0';
}

/* Exactly `cap` bytes are accepted; the byte that would make cap+1 aborts
 * the transfer (a short return makes curl fail with CURLE_WRITE_ERROR). */
static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	fetch_ctx *c = userp;
	size_t n = size * nmemb;

	if (n > c->cap - c->body.len) {
		c->too_big = 1;
		return 0;
	}
	if (ward_buf_append(&c->body, data, n) < 0) {
		c->nomem = 1;
		return 0;
	}
	return n;
}

static int header_is(const char *line, size_t n, const char *name, const char **value, size_t *vlen)
{
	size_t k = strlen(name);
	const char *v, *end;

	if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
		return 0;
	v = line + k + 1;
	end = line + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*value = v;
	*vlen = (size_t)(end - v);
	return 1;
}

/*
 * Sees each header line of each response (curl also passes the lines of a
 * 1xx interim response, so a status line starts the record afresh). Keeps
 * the validators, refuses content encodings, caps line size and count.
 */
static size_t on_header(char *line, size_t size, size_t nitems, void *userp)
{
	fetch_ctx *c = userp;
	size_t n = size * nitems;
	const char *v;
	size_t vlen;

	if (n > WARD_FETCH_MAX_HEADER_LINE) {
		c->header_overflow = 1;
		return 0;
	}
	if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		ward_free(c->etag);
		ward_free(c->last_modified);
		c->etag = c->last_modified = NULL;
		c->nheaders = 0;
	}
	if (++c->nheaders > WARD_FETCH_MAX_HEADERS) {
		c->header_overflow = 1;
		return 0;
	}
	if (header_is(line, n, "content-encoding", &v, &vlen)) {
		if (vlen > 0 && !(vlen == 8 && strncasecmp(v, "identity", 8) == 0)) {
			show(c->encoding, sizeof(c->encoding), v, vlen);
			c->bad_encoding = 1;
			return 0;
		}
	} else if (header_is(line, n, "etag", &v, &vlen)) {
		/* A value we could not send back safely is dropped, not fatal. */
		ward_free(c->etag);
		c->etag = header_value_ok(v, vlen) ? ward_strndup(v, vlen) : NULL;
	} else if (header_is(line, n, "last-modified", &v, &vlen)) {
		ward_free(c->last_modified);
		c->last_modified = header_value_ok(v, vlen) ? ward_strndup(v, vlen) : NULL;
	}
	return n;
}

static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	fetch_ctx *c = userp;

	if (dlnow > 0 && (uint64_t)dlnow > (uint64_t)c->cap) {
		c->too_big = 1;
		return 1;
	}
	return 0;
}

/*
 * The SSRF guard proper: runs with the resolved address right before
 * connect(). Refusing returns CURL_SOCKET_BAD, after which curl tries the
 * next address or fails with CURLE_COULDNT_CONNECT.
 */
static curl_socket_t on_open_socket(void *userp, curlsocktype purpose, struct curl_sockaddr *a)
{
	fetch_ctx *c = userp;
	int fd;

	if (purpose != CURLSOCKTYPE_IPCXN || (!c->opts->allow_private &&
					      sockaddr_is_private(&a->addr, a->addrlen))) {
		c->blocked = 1;
		sockaddr_text(c->blocked_ip, sizeof(c->blocked_ip), &a->addr);
		return CURL_SOCKET_BAD;
	}
	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	return fd < 0 ? CURL_SOCKET_BAD : fd;
}

/* Second check, also for a connection curl reuses from its cache (no socket
 * is opened then, so on_open_socket does not run). */
static int on_prereq(void *userp, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
	fetch_ctx *c = userp;

	if (!c->opts->allow_private && ward_fetch_addr_is_private(primary_ip)) {
		c->blocked = 1;
		show(c->blocked_ip, sizeof(c->blocked_ip), primary_ip, strlen(primary_ip));
		return CURL_PREREQFUNC_ABORT;
	}
	return CURL_PREREQFUNC_OK;
}

/* ------------------------------------------------------ handle per thread */

static pthread_once_t handle_once = PTHREAD_ONCE_INIT;
static pthread_key_t handle_key;
static int handle_key_ok;
static _Thread_local int handle_busy;

static void handle_destroy(void *h)
{
	curl_easy_cleanup(h);
}

static void handle_key_init(void)
{
	handle_key_ok = pthread_key_create(&handle_key, handle_destroy) == 0;
}

/* The thread's cached handle, reset; or a private one when the cache is in
 * use (an allowlist callback that fetches) or unavailable. */
static CURL *handle_acquire(int *owned)
{
	CURL *h;

	*owned = 1;
	pthread_once(&handle_once, handle_key_init);
	if (!handle_key_ok || handle_busy)
		return curl_easy_init();
	h = pthread_getspecific(handle_key);
	if (h != NULL) {
		curl_easy_reset(h);
	} else {
		h = curl_easy_init();
		if (h == NULL || pthread_setspecific(handle_key, h) != 0)
			return h;
	}
	handle_busy = 1;
	*owned = 0;
	return h;
}

static void handle_release(CURL *h, int owned)
{
	if (h == NULL)
		return;
	if (owned) {
		curl_easy_cleanup(h);
		return;
	}
	handle_busy = 0;
}

/* --------------------------------------------------------------- setup */

#define SETOPT(opt, val)                                                                                 \
	do {                                                                                             \
		if ((cc = curl_easy_setopt(h, opt, val)) != CURLE_OK) {                                  \
			name = #opt;                                                                     \
			goto fail;                                                                       \
		}                                                                                        \
	} while (0)

/*
 * Every option, every hop. A libcurl that refuses one of them (too old, or
 * built without a feature) fails the fetch: running with a guard silently
 * missing would be worse than not fetching.
 */
static int setup_handle(CURL *h, fetch_ctx *c, const char *url, struct curl_slist *headers, long timeout_ms,
			char *errbuf)
{
	const ward_fetch_opts *o = c->opts;
	const char *protocols = o->allow_http ? "https,http" : "https";
	const char *name = NULL;
	CURLcode cc;

	SETOPT(CURLOPT_ERRORBUFFER, errbuf);
	SETOPT(CURLOPT_URL, url);
	SETOPT(CURLOPT_PROTOCOLS_STR, protocols);
	SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, protocols);
	SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(CURLOPT_MAXREDIRS, 0L);
	SETOPT(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
	SETOPT(CURLOPT_OPENSOCKETDATA, c);
	SETOPT(CURLOPT_PREREQFUNCTION, on_prereq);
	SETOPT(CURLOPT_PREREQDATA, c);
	SETOPT(CURLOPT_PROXY, "");
	SETOPT(CURLOPT_NETRC, (long)CURL_NETRC_IGNORED);
	SETOPT(CURLOPT_UNRESTRICTED_AUTH, 0L);
	SETOPT(CURLOPT_ACCEPT_ENCODING, (char *)NULL);
	SETOPT(CURLOPT_HTTP_CONTENT_DECODING, 0L);
	SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->cap);
	SETOPT(CURLOPT_WRITEFUNCTION, on_body);
	SETOPT(CURLOPT_WRITEDATA, c);
	SETOPT(CURLOPT_HEADERFUNCTION, on_header);
	SETOPT(CURLOPT_HEADERDATA, c);
	SETOPT(CURLOPT_NOPROGRESS, 0L);
	SETOPT(CURLOPT_XFERINFOFUNCTION, on_progress);
	SETOPT(CURLOPT_XFERINFODATA, c);
	SETOPT(CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms > 0 ? o->connect_timeout_ms
								    : (long)WARD_FETCH_CONNECT_TIMEOUT_MS);
	SETOPT(CURLOPT_TIMEOUT_MS, timeout_ms);
	SETOPT(CURLOPT_LOW_SPEED_LIMIT, o->low_speed_bytes > 0 ? o->low_speed_bytes
							       : (long)WARD_FETCH_LOW_SPEED_BYTES);
	SETOPT(CURLOPT_LOW_SPEED_TIME, o->low_speed_seconds > 0 ? o->low_speed_seconds
								: (long)WARD_FETCH_LOW_SPEED_SECONDS);
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
	SETOPT(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (o->ca_file != NULL)
		SETOPT(CURLOPT_CAINFO, o->ca_file);
	SETOPT(CURLOPT_USERAGENT, USER_AGENT);
	SETOPT(CURLOPT_HTTPHEADER, headers);
	return 0;
fail:
	return ward_error_set(WARD_ENET, "fetch: libcurl refused %s: %s", name, curl_easy_strerror(cc));
}

#undef SETOPT

/* Conditional request headers, from values the caller stored after an
 * earlier fetch: refused if they could smuggle a header line. */
static int build_headers(struct curl_slist **out, const ward_fetch_opts *o)
{
	struct curl_slist *list = NULL, *next;
	const char *names[2] = {"If-None-Match", "If-Modified-Since"};
	const char *values[2] = {o->if_none_match, o->if_modified_since};
	char line[WARD_FETCH_MAX_VALIDATOR + 32];
	size_t i;

	*out = NULL;
	for (i = 0; i < 2; i++) {
		if (values[i] == NULL)
			continue;
		if (!header_value_ok(values[i], strnlen(values[i], WARD_FETCH_MAX_VALIDATOR + 1))) {
			curl_slist_free_all(list);
			return ward_error_set(WARD_EINVAL,
					      "fetch: %s value is empty, too long or has control characters",
					      names[i]);
		}
		snprintf(line, sizeof(line), "%s: %s", names[i], values[i]);
		next = curl_slist_append(list, line);
		if (next == NULL) {
			curl_slist_free_all(list);
			return ward_error_set(WARD_ENOMEM, "fetch: out of memory");
		}
		list = next;
	}
	*out = list;
	return 0;
}

/* ------------------------------------------------------------- errors */

static int map_curl_error(const fetch_ctx *c, CURLcode cc, const char *url, const char *errbuf)
{
	char shown[SHOW_MAX];
	const char *detail = errbuf[0] ? show(shown, sizeof(shown), errbuf, strlen(errbuf)) : curl_easy_strerror(cc);

	if (c->blocked && (cc == CURLE_COULDNT_CONNECT || cc == CURLE_ABORTED_BY_CALLBACK))
		return ward_error_set(WARD_EPOLICY,
				      "url '%.200s': refused to connect to %s: private address (source does not "
				      "allow private networks)",
				      url, c->blocked_ip);
	if (c->too_big || cc == CURLE_FILESIZE_EXCEEDED)
		return ward_error_set(WARD_ETOOBIG, "url '%.200s': response body exceeds the cap of %zu bytes", url,
				      c->cap);
	if (c->bad_encoding)
		return ward_error_set(WARD_EPOLICY,
				      "url '%.200s': response has Content-Encoding '%s'; encoded content not accepted",
				      url, c->encoding);
	if (c->header_overflow)
		return ward_error_set(WARD_ETOOBIG,
				      "url '%.200s': response headers exceed the cap (%d lines of %d bytes)", url,
				      WARD_FETCH_MAX_HEADERS, WARD_FETCH_MAX_HEADER_LINE);
	if (c->nomem || cc == CURLE_OUT_OF_MEMORY)
		return ward_error_set(WARD_ENOMEM, "url '%.200s': out of memory", url);
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		return ward_error_set(WARD_ETIMEOUT, "url '%.200s': timed out: %s", url, detail);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return ward_error_set(WARD_ENET, "url '%.200s': TLS verification failed: %s", url, detail);
	case CURLE_SSL_CONNECT_ERROR:
		return ward_error_set(WARD_ENET, "url '%.200s': TLS handshake failed: %s", url, detail);
	case CURLE_UNSUPPORTED_PROTOCOL:
		return ward_error_set(WARD_EPOLICY, "url '%.200s': scheme not allowed: %s", url, detail);
	case CURLE_URL_MALFORMAT:
		return ward_error_set(WARD_EINVAL, "url '%.200s': malformed: %s", url, detail);
	case CURLE_COULDNT_RESOLVE_HOST:
		return ward_error_set(WARD_ENET, "url '%.200s': could not resolve host: %s", url, detail);
	case CURLE_COULDNT_CONNECT:
		return ward_error_set(WARD_ENET, "url '%.200s': could not connect: %s", url, detail);
	default:
		return ward_error_set(WARD_ENET, "url '%.200s': transfer failed: %s", url, detail);
	}
}

/* ------------------------------------------------------------ redirects */

static int is_http(const char *canonical)
{
	return strncmp(canonical, "http://", 7) == 0;
}

/* Scheme and allowlist, for the first URL and for every hop. */
static int check_target(const ward_fetch_opts *o, const char *url)
{
	int rc;

	if (is_http(url) && !o->allow_http)
		return ward_error_set(WARD_EPOLICY, "url '%.200s': plaintext http not allowed for this source", url);
	rc = o->allow_url(o->allow_ctx, url);
	if (rc == 0)
		return 0;
	if (ward_error_last()->code == 0 || ward_error_last()->code != rc || rc > 0)
		return ward_error_set(WARD_EPOLICY, "url '%.200s': not allowed by the source allowlist", url);
	return rc;
}

/* Re-records the current message under WARD_EPOLICY: a refused hop is a
 * policy decision whatever check refused it (bad scheme, bad URL, ...). */
static int as_policy(void)
{
	char msg[sizeof(ward_error_last()->message)];

	memcpy(msg, ward_error_last()->message, sizeof(msg));
	msg[sizeof(msg) - 1] = '\0';
	return ward_error_set(WARD_EPOLICY, "%s", msg);
}

/*
 * Decides the next hop: Location as curl resolved it, canonicalized by the
 * same parser as every other URL, no downgrade, allowlisted, within the cap.
 * Any refusal is EPOLICY whatever the underlying reason.
 */
static int next_hop(char **next, const ward_fetch_opts *o, const char *cur, const char *location, int hops)
{
	char shown[SHOW_MAX];
	int rc;

	*next = NULL;
	if (hops >= WARD_FETCH_MAX_REDIRECTS)
		return ward_error_set(WARD_EPOLICY, "url '%.200s': too many redirects (more than %d)", cur,
				      WARD_FETCH_MAX_REDIRECTS);
	show(shown, sizeof(shown), location, strlen(location));
	if ((rc = ward_url_canonicalize(next, location)) < 0) {
		ward_error_wrap("url '%.200s': redirect target '%s' not allowed", cur, shown);
		return as_policy();
	}
	if (!is_http(cur) && is_http(*next)) {
		rc = ward_error_set(WARD_EPOLICY,
				    "url '%.200s': redirect target '%s' not allowed: https to http downgrade", cur,
				    shown);
		goto fail;
	}
	if ((rc = check_target(o, *next)) < 0) {
		ward_error_wrap("url '%.200s': redirect target not allowed", cur);
		rc = as_policy();
		goto fail;
	}
	return 0;
fail:
	ward_free(*next);
	*next = NULL;
	return rc;
}

/* -------------------------------------------------------------- public */

void ward_fetch_result_free(ward_fetch_result *r)
{
	if (r == NULL)
		return;
	ward_free(r->url);
	ward_free(r->final_url);
	ward_free(r->peer_ip);
	ward_free(r->etag);
	ward_free(r->last_modified);
	ward_free(r->content_type);
	ward_free(r->body);
	ward_free(r);
}

static int dup_info(char **dst, CURL *h, CURLINFO what)
{
	char *s = NULL;

	*dst = NULL;
	if (curl_easy_getinfo(h, what, &s) != CURLE_OK || s == NULL)
		return 0;
	/* Content-Type comes from the server: keep it only if it is printable. */
	if (!header_value_ok(s, strlen(s)))
		return 0;
	*dst = ward_strdup(s);
	return *dst ? 0 : ward_error_set(WARD_ENOMEM, "fetch: out of memory");
}

int ward_fetch_url(ward_fetch_result **out, const char *url, const ward_fetch_opts *opts)
{
	fetch_ctx c;
	ward_fetch_result *r = NULL;
	struct curl_slist *headers = NULL;
	char errbuf[CURL_ERROR_SIZE];
	char *cur = NULL, *next = NULL;
	CURL *h = NULL;
	int owned = 1;
	int hops = 0;
	int err = 0;
	long status = 0;
	long long deadline;
	long total_ms;

	memset(&c, 0, sizeof(c));
	ward_buf_init(&c.body, 0);
	*out = NULL;
	if (opts == NULL || opts->allow_url == NULL) {
		err = ward_error_set(WARD_EINVAL, "fetch: no allowlist callback given (refusing to fetch unchecked)");
		goto done;
	}
	c.opts = opts;
	c.cap = opts->max_bytes ? opts->max_bytes : (size_t)WARD_MAX_DOC_BYTES;
	ward_buf_init(&c.body, c.cap);
	total_ms = opts->total_timeout_ms > 0 ? opts->total_timeout_ms : (long)WARD_FETCH_TOTAL_TIMEOUT_MS;
	deadline = now_ms() + total_ms;

	if ((err = ward_url_canonicalize(&cur, url)) < 0)
		goto done;
	if ((err = check_target(opts, cur)) < 0)
		goto done;
	if ((err = build_headers(&headers, opts)) < 0)
		goto done;
	r = ward_calloc(1, sizeof(*r));
	if (r == NULL || (r->url = ward_strdup(cur)) == NULL) {
		err = ward_error_set(WARD_ENOMEM, "fetch: out of memory");
		goto done;
	}
	h = handle_acquire(&owned);
	if (h == NULL) {
		err = ward_error_set(WARD_ENOMEM, "fetch: cannot create a libcurl handle");
		goto done;
	}

	/* One request per hop; the total time cap spans the whole chain. */
	for (;;) {
		char *location = NULL;
		long left = (long)(deadline - now_ms());
		CURLcode cc;

		if (left <= 0) {
			err = ward_error_set(WARD_ETIMEOUT, "url '%.200s': timed out after %ld ms (redirect chain)", cur,
					     total_ms);
			goto done;
		}
		ctx_reset_hop(&c);
		errbuf[0] = '\0';
		curl_easy_reset(h);
		if ((err = setup_handle(h, &c, cur, headers, left, errbuf)) < 0)
			goto done;
		cc = curl_easy_perform(h);
		if (cc != CURLE_OK) {
			err = map_curl_error(&c, cc, cur, errbuf);
			goto done;
		}
		if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
			status = 0;
		if (status < 300 || status >= 400 || status == 304)
			break;
		if (curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &location) != CURLE_OK || location == NULL) {
			err = ward_error_set(WARD_ENET, "url '%.200s': HTTP status %ld without a usable Location", cur,
					     status);
			goto done;
		}
		if ((err = next_hop(&next, opts, cur, location, hops)) < 0)
			goto done;
		ward_free(cur);
		cur = next;
		next = NULL;
		hops++;
	}

	r->status = status;
	r->redirects = hops;
	ward_now_rfc3339(r->fetched_at);
	r->final_url = ward_strdup(cur);
	if (r->final_url == NULL) {
		err = ward_error_set(WARD_ENOMEM, "fetch: out of memory");
		goto done;
	}
	if ((err = dup_info(&r->peer_ip, h, CURLINFO_PRIMARY_IP)) < 0 ||
	    (err = dup_info(&r->content_type, h, CURLINFO_CONTENT_TYPE)) < 0)
		goto done;
	r->etag = c.etag;
	r->last_modified = c.last_modified;
	c.etag = c.last_modified = NULL;

	if (status >= 400) {
		/* The caller gets the record of what answered, never the body. */
		if ((r->body = ward_strdup("")) == NULL) {
			err = ward_error_set(WARD_ENOMEM, "fetch: out of memory");
			goto done;
		}
		err = ward_error_set(WARD_ENET, "url '%.200s': HTTP status %ld", cur, status);
		*out = r;
		r = NULL;
		goto done;
	}
	if (status == 304) {
		r->not_modified = 1;
		ward_buf_reset(&c.body);
	} else if (status < 200 || status >= 300) {
		err = ward_error_set(WARD_ENET, "url '%.200s': unexpected HTTP status %ld", cur, status);
		goto done;
	}
	if ((err = ward_buf_detach(&c.body, &r->body, &r->len)) < 0)
		goto done;
	if ((err = ward_sha256(r->sha256, r->body, r->len)) < 0)
		goto done;
	*out = r;
	r = NULL;

done:
	handle_release(h, owned);
	curl_slist_free_all(headers);
	ward_fetch_result_free(r);
	ward_free(next);
	ward_free(cur);
	ward_free(c.etag);
	ward_free(c.last_modified);
	ward_buf_dispose(&c.body);
	return err;
}
