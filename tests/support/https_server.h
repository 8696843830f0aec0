/*
 * A real HTTPS server for the fetch tests (libmicrohttpd over GnuTLS), a
 * test PKI generated at run time with OpenSSL (no key material is committed),
 * and a plain-TCP "canary" listener that counts the connections it accepts.
 * Everything listens on loopback only.
 *
 * These helpers do not assert: they return NULL / -1 and print the reason to
 * stderr, so they can be called from cmocka group setup functions.
 *
 * Routes (GET; any other path is 404):
 *   /page                 200 text/html
 *   /redirect/allowed     302 -> /page
 *   /redirect/foreign     302 -> https://evil.example/stolen
 *   /redirect/file        302 -> file:///etc/passwd
 *   /redirect/http        302 -> http://127.0.0.1:PORT/page
 *   /redirect/loop        302 -> /redirect/loop2 (which redirects back)
 *   /redirect/chain/N     302 -> /redirect/chain/N-1 ... /redirect/chain/0 -> /page
 *   /endless              chunked body that never ends
 *   /huge-length          Content-Length: 10 GiB, streamed
 *   /bytes/N              exactly N bytes of 'x' (Content-Length N)
 *   /bytes-chunked/N      exactly N bytes of 'x', chunked (no length)
 *   /gzip-bomb            tests/fixtures/fetch/bomb.gz, Content-Encoding: gzip
 *   /stall                headers, then no byte until the server stops
 *   /wrong-type           an HTML body declared application/octet-stream
 *   /etag                 ETag "v1"; 304 when If-None-Match is "v1"
 *   /last-modified        Last-Modified HS_LAST_MODIFIED; 304 when
 *                         If-Modified-Since equals it
 *   /ua                   the request's User-Agent as the body
 *   /404, /500            those statuses
 */
#ifndef RAGWARD_TESTS_HTTPS_SERVER_H
#define RAGWARD_TESTS_HTTPS_SERVER_H

#include <stddef.h>

#define HS_PAGE_BODY "<html><head><title>ok</title></head><body><p>hello from the test server</p></body></html>"
#define HS_ETAG "\"v1\""
#define HS_LAST_MODIFIED "Wed, 21 Oct 2015 07:28:00 GMT"

/* A CA and a server certificate it signed (SAN IP:127.0.0.1, IP:::1,
 * DNS:localhost). ca_file is DIR/<name>-ca.pem. */
typedef struct {
	char *ca_file;
	char *cert_pem; /* server certificate */
	char *key_pem;  /* server private key (PKCS#8) */
} hs_pki;

/* Generates a fresh EC P-256 CA and server certificate; writes the CA
 * certificate to DIR/<name>-ca.pem. Returns 0 or -1. */
int hs_pki_make(hs_pki *pki, const char *dir, const char *name);
void hs_pki_dispose(hs_pki *pki);

typedef struct hs_server hs_server;

/* Starts the server on 127.0.0.1, a kernel-chosen port, with the
 * certificate of `pki`. NULL on failure. */
hs_server *hs_server_start(const hs_pki *pki);
unsigned hs_server_port(const hs_server *s);
/* Requests received for exactly this path (NULL: all paths). */
long hs_server_hits(hs_server *s, const char *path);
void hs_server_stop(hs_server *s);

typedef struct hs_canary hs_canary;

/* Listens on 127.0.0.1:P and, when the host has IPv6 loopback, [::1]:P
 * (same P). Every accepted connection is counted and closed at once. */
hs_canary *hs_canary_start(void);
unsigned hs_canary_port(const hs_canary *c);
int hs_canary_has_v6(const hs_canary *c);
long hs_canary_count(hs_canary *c);
void hs_canary_stop(hs_canary *c);

#endif
