/*
 * Test HTTPS server, run-time PKI and canary listener (see https_server.h).
 *
 * The server runs one thread per connection so that a stalled or endless
 * response never blocks the other tests' requests. Streaming routes poll a
 * stop flag so that hs_server_stop() can join their threads promptly.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tests/support/https_server.h"
#include "core/banned.h"

/* ------------------------------------------------------------------ PKI */

static char *bio_string(BIO *b)
{
	char *data = NULL;
	long n = BIO_get_mem_data(b, &data);
	char *out;

	if (n < 0)
		return NULL;
	out = malloc((size_t)n + 1);
	if (out == NULL)
		return NULL;
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	return out;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok;

	if (e == NULL)
		return 0;
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok;
}

/* A certificate for `key`, signed by issuer_key (self-signed when issuer is
 * NULL), valid from now+not_before to now+not_after (seconds). A leaf
 * (ca == 0) gets serverAuth and the subjectAltName `san`. */
static X509 *make_cert(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const char *cn, int ca, long serial,
		       long not_before, long not_after, const char *san)
{
	X509 *x = X509_new();
	X509_NAME *name;
	X509V3_CTX ctx;

	if (x == NULL)
		return NULL;
	name = X509_get_subject_name(x);
	if (!X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), serial) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), not_before) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), not_after) || !X509_set_pubkey(x, key) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name))
		goto fail;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	if (!add_ext(x, &ctx, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
	    !add_ext(x, &ctx, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") ||
	    !add_ext(x, &ctx, NID_subject_key_identifier, "hash"))
		goto fail;
	if (!ca && (!add_ext(x, &ctx, NID_ext_key_usage, "serverAuth") ||
		    !add_ext(x, &ctx, NID_subject_alt_name, san) ||
		    (issuer != NULL && !add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"))))
		goto fail;
	if (X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) <= 0)
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

#define HS_SAN_LOOPBACK "IP:127.0.0.1,IP:::1,DNS:localhost"
#define HS_DAY 86400L

int hs_pki_make(hs_pki *pki, const char *dir, const char *name)
{
	return hs_pki_make_kind(pki, dir, name, HS_CERT_GOOD);
}

int hs_pki_make_kind(hs_pki *pki, const char *dir, const char *name, hs_cert_kind kind)
{
	EVP_PKEY *ca_key = NULL, *key = NULL;
	X509 *ca = NULL, *cert = NULL;
	BIO *b = NULL;
	FILE *f = NULL;
	char path[4096];
	char cn[128];
	int rc = -1;

	memset(pki, 0, sizeof(*pki));
	ca_key = EVP_EC_gen("P-256");
	key = EVP_EC_gen("P-256");
	if (ca_key == NULL || key == NULL)
		goto done;
	snprintf(cn, sizeof(cn), "ragward test CA %s", name);
	ca = make_cert(ca_key, NULL, NULL, cn, 1, 1, -3600, HS_DAY, NULL);
	if (ca == NULL)
		goto done;
	switch (kind) {
	case HS_CERT_GOOD:
		cert = make_cert(key, ca, ca_key, "localhost", 0, 2, -3600, HS_DAY, HS_SAN_LOOPBACK);
		break;
	case HS_CERT_EXPIRED: /* valid for a day, which ended a day ago */
		cert = make_cert(key, ca, ca_key, "localhost", 0, 2, -2 * HS_DAY, -HS_DAY, HS_SAN_LOOPBACK);
		break;
	case HS_CERT_WRONG_HOST:
		cert = make_cert(key, ca, ca_key, HS_WRONG_HOST, 0, 2, -3600, HS_DAY, "DNS:" HS_WRONG_HOST);
		break;
	case HS_CERT_SELF_SIGNED: /* the CA file gets a CA that did not sign it */
		cert = make_cert(key, NULL, NULL, "localhost", 0, 2, -3600, HS_DAY, HS_SAN_LOOPBACK);
		break;
	}
	if (cert == NULL)
		goto done;

	if ((b = BIO_new(BIO_s_mem())) == NULL || !PEM_write_bio_X509(b, cert) ||
	    (pki->cert_pem = bio_string(b)) == NULL)
		goto done;
	BIO_free(b);
	if ((b = BIO_new(BIO_s_mem())) == NULL || !PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) ||
	    (pki->key_pem = bio_string(b)) == NULL)
		goto done;

	snprintf(path, sizeof(path), "%s/%s-ca.pem", dir, name);
	if ((f = fopen(path, "w")) == NULL || !PEM_write_X509(f, ca))
		goto done;
	if (fclose(f) != 0) {
		f = NULL;
		goto done;
	}
	f = NULL;
	if ((pki->ca_file = strdup(path)) == NULL)
		goto done;
	rc = 0;
done:
	if (rc != 0) {
		fprintf(stderr, "hs_pki_make: generating the test PKI failed\n");
		hs_pki_dispose(pki);
	}
	if (f != NULL)
		fclose(f);
	BIO_free(b);
	X509_free(cert);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
	return rc;
}

void hs_pki_dispose(hs_pki *pki)
{
	if (pki == NULL)
		return;
	if (pki->key_pem != NULL)
		memset(pki->key_pem, 0, strlen(pki->key_pem));
	free(pki->key_pem);
	free(pki->cert_pem);
	free(pki->ca_file);
	memset(pki, 0, sizeof(*pki));
}

/* --------------------------------------------------------------- server */

#define HS_MAX_PATHS 64

struct hs_server {
	struct MHD_Daemon *d;
	unsigned port;
	volatile int stopping;
	pthread_mutex_t lock;
	char *paths[HS_MAX_PATHS];
	long counts[HS_MAX_PATHS];
	long total;
	long connections; /* TCP connections accepted, before any TLS */
	char *bomb;
	size_t bomb_len;
};

static void count_hit(hs_server *s, const char *path)
{
	size_t i;

	pthread_mutex_lock(&s->lock);
	s->total++;
	for (i = 0; i < HS_MAX_PATHS; i++) {
		if (s->paths[i] == NULL) {
			s->paths[i] = strdup(path);
			s->counts[i] = 1;
			break;
		}
		if (strcmp(s->paths[i], path) == 0) {
			s->counts[i]++;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	hs_server *s = cls;

	if (toe != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	pthread_mutex_lock(&s->lock);
	s->connections++;
	pthread_mutex_unlock(&s->lock);
}

long hs_server_connections(hs_server *s)
{
	long n;

	pthread_mutex_lock(&s->lock);
	n = s->connections;
	pthread_mutex_unlock(&s->lock);
	return n;
}

long hs_server_hits(hs_server *s, const char *path)
{
	long n = 0;
	size_t i;

	pthread_mutex_lock(&s->lock);
	if (path == NULL)
		n = s->total;
	for (i = 0; path != NULL && i < HS_MAX_PATHS && s->paths[i] != NULL; i++)
		if (strcmp(s->paths[i], path) == 0)
			n = s->counts[i];
	pthread_mutex_unlock(&s->lock);
	return n;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Streams 'x' forever (or up to a declared length, which MHD enforces). */
static ssize_t endless_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	hs_server *s = cls;

	if (s->stopping)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (max > 16384)
		max = 16384;
	memset(buf, 'x', max);
	return (ssize_t)max;
}

typedef struct {
	hs_server *s;
	uint64_t n;
} sized_stream;

static ssize_t sized_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	sized_stream *st = cls;

	if (st->s->stopping)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (pos >= st->n)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (max > st->n - pos)
		max = (size_t)(st->n - pos);
	memset(buf, 'x', max);
	return (ssize_t)max;
}

static void free_cls(void *cls)
{
	free(cls);
}

/* Returns no byte, ever: the client must give up on its own timer. The
 * sleep keeps MHD's per-connection thread from spinning. */
static ssize_t stall_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	hs_server *s = cls;
	int i;

	for (i = 0; i < 600 && !s->stopping; i++)
		sleep_ms(50);
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* A declared HS_SHORT_LENGTH bytes of which `n` are sent, then nothing:
 * the headers (and that much body) reach the client, the rest never does. */
typedef struct {
	hs_server *s;
	uint64_t n;
} short_stream;

static ssize_t short_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	short_stream *st = cls;

	if (pos < st->n && !st->s->stopping) {
		if (max > st->n - pos)
			max = (size_t)(st->n - pos);
		memset(buf, 'x', max);
		return (ssize_t)max;
	}
	return stall_reader(st->s, pos, buf, max);
}

/* One 'x' every HS_TRICKLE_MS, up to HS_SHORT_LENGTH: never silent for
 * long, always too slow. */
static ssize_t trickle_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	hs_server *s = cls;
	int i;

	for (i = 0; i < HS_TRICKLE_MS / 50 && !s->stopping; i++)
		sleep_ms(50);
	if (s->stopping)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	buf[0] = 'x';
	return 1;
}

static enum MHD_Result queue(struct MHD_Connection *conn, unsigned status, struct MHD_Response *r)
{
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static struct MHD_Response *text(const char *body, const char *type)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(body), (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);

	if (r != NULL && type != NULL)
		MHD_add_response_header(r, "Content-Type", type);
	return r;
}

static enum MHD_Result redirect(struct MHD_Connection *conn, const char *location)
{
	struct MHD_Response *r = text("moved\n", "text/plain");

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Location", location);
	return queue(conn, 302, r);
}

static int parse_count(const char *s, uint64_t *out)
{
	char *end = NULL;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			      const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	hs_server *s = cls;
	struct MHD_Response *r = NULL;
	char loc[256];
	uint64_t n;

	if (strcmp(method, "GET") != 0)
		return queue(conn, 405, text("method\n", "text/plain"));
	count_hit(s, url);

	if (strcmp(url, "/page") == 0)
		return queue(conn, 200, text(HS_PAGE_BODY, "text/html; charset=utf-8"));
	if (strcmp(url, "/redirect/allowed") == 0)
		return redirect(conn, "/page");
	if (strcmp(url, "/redirect/foreign") == 0)
		return redirect(conn, "https://evil.example/stolen");
	if (strcmp(url, "/redirect/file") == 0)
		return redirect(conn, "file:///etc/passwd");
	if (strcmp(url, "/redirect/http") == 0) {
		snprintf(loc, sizeof(loc), "http://127.0.0.1:%u/page", s->port);
		return redirect(conn, loc);
	}
	if (strcmp(url, "/redirect/loop") == 0)
		return redirect(conn, "/redirect/loop2");
	if (strcmp(url, "/redirect/loop2") == 0)
		return redirect(conn, "/redirect/loop");
	if (strncmp(url, "/redirect/chain/", 16) == 0 && parse_count(url + 16, &n) == 0) {
		if (n == 0)
			return redirect(conn, "/page");
		snprintf(loc, sizeof(loc), "/redirect/chain/%" PRIu64, n - 1);
		return redirect(conn, loc);
	}
	if (strcmp(url, "/endless") == 0) {
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, endless_reader, s, NULL);
		if (r != NULL)
			MHD_add_response_header(r, "Content-Type", "text/plain");
		return queue(conn, 200, r);
	}
	if (strcmp(url, "/huge-length") == 0 || (strncmp(url, "/bytes-chunked/", 15) == 0 &&
						   parse_count(url + 15, &n) == 0)) {
		sized_stream *st = malloc(sizeof(*st));
		int chunked = url[1] == 'b';

		if (st == NULL)
			return MHD_NO;
		st->s = s;
		st->n = chunked ? n : (uint64_t)10 << 30;
		r = MHD_create_response_from_callback(chunked ? MHD_SIZE_UNKNOWN : st->n, 16384, sized_reader, st,
						      free_cls);
		if (r == NULL) {
			free(st);
			return MHD_NO;
		}
		MHD_add_response_header(r, "Content-Type", "text/plain");
		return queue(conn, 200, r);
	}
	if (strncmp(url, "/bytes/", 7) == 0 && parse_count(url + 7, &n) == 0 && n <= (64u << 20)) {
		char *body = malloc(n ? (size_t)n : 1);

		if (body == NULL)
			return MHD_NO;
		memset(body, 'x', (size_t)n);
		r = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_FREE);
		if (r == NULL) {
			free(body);
			return MHD_NO;
		}
		MHD_add_response_header(r, "Content-Type", "text/plain");
		return queue(conn, 200, r);
	}
	if (strcmp(url, "/gzip-bomb") == 0) {
		r = MHD_create_response_from_buffer(s->bomb_len, s->bomb, MHD_RESPMEM_PERSISTENT);
		if (r != NULL) {
			MHD_add_response_header(r, "Content-Type", "text/html");
			MHD_add_response_header(r, "Content-Encoding", "gzip");
		}
		return queue(conn, 200, r);
	}
	if (strcmp(url, "/stall") == 0) {
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, stall_reader, s, NULL);
		if (r != NULL)
			MHD_add_response_header(r, "Content-Type", "text/html");
		return queue(conn, 200, r);
	}
	if (strcmp(url, "/headers-only") == 0 || strcmp(url, "/partial") == 0) {
		short_stream *st = malloc(sizeof(*st));

		if (st == NULL)
			return MHD_NO;
		st->s = s;
		st->n = url[1] == 'p' ? HS_PARTIAL_BYTES : 0;
		r = MHD_create_response_from_callback(HS_SHORT_LENGTH, 1024, short_reader, st, free_cls);
		if (r == NULL) {
			free(st);
			return MHD_NO;
		}
		MHD_add_response_header(r, "Content-Type", "text/html");
		return queue(conn, 200, r);
	}
	if (strcmp(url, "/trickle") == 0) {
		r = MHD_create_response_from_callback(HS_SHORT_LENGTH, 1024, trickle_reader, s, NULL);
		if (r != NULL)
			MHD_add_response_header(r, "Content-Type", "text/html");
		return queue(conn, 200, r);
	}
	if (strcmp(url, "/wrong-type") == 0)
		return queue(conn, 200, text(HS_PAGE_BODY, "application/octet-stream"));
	if (strcmp(url, "/etag") == 0) {
		const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");
		int match = inm != NULL && strcmp(inm, HS_ETAG) == 0;

		r = match ? MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT)
			  : text(HS_PAGE_BODY, "text/html");
		if (r != NULL)
			MHD_add_response_header(r, "ETag", HS_ETAG);
		return queue(conn, match ? 304 : 200, r);
	}
	if (strcmp(url, "/last-modified") == 0) {
		const char *ims = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-Modified-Since");
		int match = ims != NULL && strcmp(ims, HS_LAST_MODIFIED) == 0;

		r = match ? MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT)
			  : text(HS_PAGE_BODY, "text/html");
		if (r != NULL)
			MHD_add_response_header(r, "Last-Modified", HS_LAST_MODIFIED);
		return queue(conn, match ? 304 : 200, r);
	}
	if (strcmp(url, "/ua") == 0) {
		const char *ua = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "User-Agent");

		return queue(conn, 200, text(ua ? ua : "", "text/plain"));
	}
	if (strcmp(url, "/500") == 0)
		return queue(conn, 500, text("server error\n", "text/plain"));
	return queue(conn, 404, text("not found\n", "text/plain"));
}

static void load_bomb(hs_server *s)
{
	const char *src = getenv("RAGWARD_SOURCE_DIR");
	char path[4096];
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/tests/fixtures/fetch/bomb.gz", src ? src : ".");
	f = fopen(path, "rb");
	if (f != NULL && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (s->bomb = malloc((size_t)n)) != NULL && fread(s->bomb, 1, (size_t)n, f) == (size_t)n) {
		s->bomb_len = (size_t)n;
	} else {
		/* Without the fixture, a gzip header and zeros still carry the
		 * Content-Encoding that the fetcher must refuse. */
		free(s->bomb);
		s->bomb_len = 4096;
		s->bomb = calloc(1, s->bomb_len);
		if (s->bomb != NULL)
			memcpy(s->bomb, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03", 10);
		else
			s->bomb_len = 0;
	}
	if (f != NULL)
		fclose(f);
}

hs_server *hs_server_start(const hs_pki *pki)
{
	return hs_server_start_opts(pki, NULL);
}

hs_server *hs_server_start_opts(const hs_pki *pki, const hs_server_opts *o)
{
	hs_server *s = calloc(1, sizeof(*s));
	/* MHD's own default priorities unless the caller gives some. */
	struct MHD_OptionItem extra[] = {
		{o != NULL && o->tls_priorities != NULL ? MHD_OPTION_HTTPS_PRIORITIES : MHD_OPTION_END, 0,
		 o != NULL ? (void *)(uintptr_t)o->tls_priorities : NULL},
		{MHD_OPTION_END, 0, NULL},
	};
	struct sockaddr_in sin;
	const union MHD_DaemonInfo *info;

	if (s == NULL)
		return NULL;
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		fprintf(stderr, "hs_server_start: libmicrohttpd built without TLS\n");
		free(s);
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	load_bomb(s);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = 0;
	s->d = MHD_start_daemon(MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
					MHD_USE_ERROR_LOG,
				0, NULL, NULL, handle, s, MHD_OPTION_HTTPS_MEM_KEY, pki->key_pem,
				MHD_OPTION_HTTPS_MEM_CERT, pki->cert_pem, MHD_OPTION_SOCK_ADDR,
				(struct sockaddr *)&sin, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
				MHD_OPTION_ARRAY, extra, MHD_OPTION_END);
	if (s->d == NULL) {
		fprintf(stderr, "hs_server_start: MHD_start_daemon failed\n");
		hs_server_stop(s);
		return NULL;
	}
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	if (info == NULL || info->port == 0) {
		fprintf(stderr, "hs_server_start: no bound port\n");
		hs_server_stop(s);
		return NULL;
	}
	s->port = info->port;
	return s;
}

unsigned hs_server_port(const hs_server *s)
{
	return s->port;
}

void hs_server_stop(hs_server *s)
{
	size_t i;

	if (s == NULL)
		return;
	s->stopping = 1;
	if (s->d != NULL)
		MHD_stop_daemon(s->d);
	for (i = 0; i < HS_MAX_PATHS; i++)
		free(s->paths[i]);
	free(s->bomb);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* --------------------------------------------------------------- canary */

struct hs_canary {
	int fd4, fd6;
	int stop[2];
	unsigned port;
	pthread_t thread;
	int running;
	pthread_mutex_t lock;
	long count;
};

static void *canary_main(void *arg)
{
	hs_canary *c = arg;

	for (;;) {
		struct pollfd p[3] = {{c->stop[0], POLLIN, 0}, {c->fd4, POLLIN, 0}, {c->fd6, POLLIN, 0}};
		int i;

		if (poll(p, c->fd6 >= 0 ? 3 : 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents)
			break;
		for (i = 1; i < 3; i++) {
			int fd;

			if (p[i].fd < 0 || !(p[i].revents & POLLIN))
				continue;
			fd = accept(p[i].fd, NULL, NULL);
			if (fd >= 0) {
				pthread_mutex_lock(&c->lock);
				c->count++;
				pthread_mutex_unlock(&c->lock);
				close(fd);
			}
		}
	}
	return NULL;
}

hs_canary *hs_canary_start(void)
{
	hs_canary *c = calloc(1, sizeof(*c));
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	socklen_t len = sizeof(sin);
	int one = 1;

	if (c == NULL)
		return NULL;
	c->fd4 = c->fd6 = c->stop[0] = c->stop[1] = -1;
	pthread_mutex_init(&c->lock, NULL);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd4 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd4 < 0 || bind(c->fd4, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(c->fd4, 64) < 0 ||
	    getsockname(c->fd4, (struct sockaddr *)&sin, &len) < 0)
		goto fail;
	c->port = ntohs(sin.sin_port);

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr = in6addr_loopback;
	sin6.sin6_port = htons((uint16_t)c->port);
	c->fd6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd6 >= 0 && (setsockopt(c->fd6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0 ||
			    bind(c->fd6, (struct sockaddr *)&sin6, sizeof(sin6)) < 0 || listen(c->fd6, 64) < 0)) {
		close(c->fd6);
		c->fd6 = -1; /* no IPv6 loopback here: the v6 cases are skipped */
	}
	if (pipe(c->stop) < 0 || pthread_create(&c->thread, NULL, canary_main, c) != 0)
		goto fail;
	c->running = 1;
	return c;
fail:
	fprintf(stderr, "hs_canary_start: %s\n", strerror(errno));
	hs_canary_stop(c);
	return NULL;
}

unsigned hs_canary_port(const hs_canary *c)
{
	return c->port;
}

int hs_canary_has_v6(const hs_canary *c)
{
	return c->fd6 >= 0;
}

long hs_canary_count(hs_canary *c)
{
	long n;

	pthread_mutex_lock(&c->lock);
	n = c->count;
	pthread_mutex_unlock(&c->lock);
	return n;
}

void hs_canary_stop(hs_canary *c)
{
	if (c == NULL)
		return;
	if (c->running) {
		if (write(c->stop[1], "x", 1) != 1)
			fprintf(stderr, "hs_canary_stop: %s\n", strerror(errno));
		pthread_join(c->thread, NULL);
	}
	if (c->stop[0] >= 0)
		close(c->stop[0]);
	if (c->stop[1] >= 0)
		close(c->stop[1]);
	if (c->fd4 >= 0)
		close(c->fd4);
	if (c->fd6 >= 0)
		close(c->fd6);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* ---------------------------------------------------------------- stall */

#define HS_STALL_MAX 16

struct hs_stall {
	hs_stall_mode mode;
	int fd;
	int fillers[HS_STALL_MAX]; /* HS_STALL_NO_ACCEPT: our connections in the accept queue */
	int nfillers;
	int clients[HS_STALL_MAX]; /* HS_STALL_SILENT: accepted, never answered */
	int stop[2];
	unsigned port;
	pthread_t thread;
	int running;
	pthread_mutex_t lock;
	long accepted;
	long bytes;
	int first_byte;
};

/* Accepts, reads and discards, never writes a byte; closes a connection
 * only when the client does. */
static void *stall_main(void *arg)
{
	hs_stall *st = arg;

	for (;;) {
		struct pollfd p[2 + HS_STALL_MAX];
		nfds_t n = 2;
		int i;

		p[0] = (struct pollfd){st->stop[0], POLLIN, 0};
		p[1] = (struct pollfd){st->fd, POLLIN, 0};
		for (i = 0; i < HS_STALL_MAX; i++)
			if (st->clients[i] >= 0)
				p[n++] = (struct pollfd){st->clients[i], POLLIN, 0};
		if (poll(p, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents)
			break;
		for (i = 2; i < (int)n; i++) {
			char buf[4096];
			ssize_t k;
			int j;

			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			k = read(p[i].fd, buf, sizeof(buf));
			if (k > 0) {
				pthread_mutex_lock(&st->lock);
				if (st->bytes == 0)
					st->first_byte = (unsigned char)buf[0];
				st->bytes += k;
				pthread_mutex_unlock(&st->lock);
				continue;
			}
			if (k < 0 && errno == EINTR)
				continue;
			for (j = 0; j < HS_STALL_MAX; j++)
				if (st->clients[j] == p[i].fd)
					st->clients[j] = -1;
			close(p[i].fd);
		}
		if (p[1].revents & POLLIN) {
			int fd = accept(st->fd, NULL, NULL);

			for (i = 0; fd >= 0 && i < HS_STALL_MAX && st->clients[i] >= 0; i++)
				;
			if (fd >= 0 && i == HS_STALL_MAX) {
				close(fd);
			} else if (fd >= 0) {
				st->clients[i] = fd;
				pthread_mutex_lock(&st->lock);
				st->accepted++;
				pthread_mutex_unlock(&st->lock);
			}
		}
	}
	return NULL;
}

/*
 * Fills the accept queue of st->fd (listen backlog 0) with connections of
 * our own until one no longer completes: from then on the kernel drops
 * every SYN to the port (net.ipv4.tcp_abort_on_overflow=0, the default), so
 * a client's connect() stays in SYN-SENT. Returns 0 once the queue is full.
 */
static int stall_fill_queue(hs_stall *st, struct sockaddr_in *sin)
{
	while (st->nfillers < HS_STALL_MAX) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		struct pollfd p;
		int err = 0;
		socklen_t len = sizeof(err);

		if (fd < 0)
			return -1;
		if (connect(fd, (struct sockaddr *)sin, sizeof(*sin)) < 0 && errno != EINPROGRESS) {
			close(fd);
			return -1;
		}
		p = (struct pollfd){fd, POLLOUT, 0};
		if (poll(&p, 1, 500) == 0) {
			close(fd); /* still in SYN-SENT: the queue is full */
			return 0;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
			close(fd);
			return -1;
		}
		st->fillers[st->nfillers++] = fd;
	}
	errno = EAGAIN;
	return -1; /* the kernel kept completing connections */
}

hs_stall *hs_stall_start(hs_stall_mode mode)
{
	hs_stall *st = calloc(1, sizeof(*st));
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int i;

	if (st == NULL)
		return NULL;
	st->mode = mode;
	st->fd = st->stop[0] = st->stop[1] = st->first_byte = -1;
	for (i = 0; i < HS_STALL_MAX; i++)
		st->fillers[i] = st->clients[i] = -1;
	pthread_mutex_init(&st->lock, NULL);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	st->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (st->fd < 0 || bind(st->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(st->fd, mode == HS_STALL_NO_ACCEPT ? 0 : HS_STALL_MAX) < 0 ||
	    getsockname(st->fd, (struct sockaddr *)&sin, &len) < 0)
		goto fail;
	st->port = ntohs(sin.sin_port);
	if (mode == HS_STALL_NO_ACCEPT) {
		if (stall_fill_queue(st, &sin) < 0)
			goto fail;
		return st;
	}
	if (pipe(st->stop) < 0 || pthread_create(&st->thread, NULL, stall_main, st) != 0)
		goto fail;
	st->running = 1;
	return st;
fail:
	fprintf(stderr, "hs_stall_start: %s\n", strerror(errno));
	hs_stall_stop(st);
	return NULL;
}

unsigned hs_stall_port(const hs_stall *st)
{
	return st->port;
}

long hs_stall_accepted(hs_stall *st)
{
	long n;

	pthread_mutex_lock(&st->lock);
	n = st->accepted;
	pthread_mutex_unlock(&st->lock);
	return n;
}

long hs_stall_queued(hs_stall *st)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	/* For a listening socket, tcpi_unacked is the accept queue's length. */
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(st->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -1;
	return (long)ti.tcpi_unacked - st->nfillers;
}

long hs_stall_bytes(hs_stall *st, int *first_byte)
{
	long n;

	pthread_mutex_lock(&st->lock);
	n = st->bytes;
	if (first_byte != NULL)
		*first_byte = st->first_byte;
	pthread_mutex_unlock(&st->lock);
	return n;
}

void hs_stall_stop(hs_stall *st)
{
	int i;

	if (st == NULL)
		return;
	if (st->running) {
		if (write(st->stop[1], "x", 1) != 1)
			fprintf(stderr, "hs_stall_stop: %s\n", strerror(errno));
		pthread_join(st->thread, NULL);
	}
	for (i = 0; i < HS_STALL_MAX; i++) {
		if (st->fillers[i] >= 0)
			close(st->fillers[i]);
		if (st->clients[i] >= 0)
			close(st->clients[i]);
	}
	if (st->stop[0] >= 0)
		close(st->stop[0]);
	if (st->stop[1] >= 0)
		close(st->stop[1]);
	if (st->fd >= 0)
		close(st->fd);
	pthread_mutex_destroy(&st->lock);
	free(st);
}
