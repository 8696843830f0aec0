/*
 * A real HTTPS server for the fetch tests (libmicrohttpd over GnuTLS), a
 * test PKI generated at run time with OpenSSL (no key material is committed),
 * a plain-TCP "canary" listener that counts the connections it accepts, and
 * a plain-TCP "stall" listener that never accepts or never answers.
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
 *   /headers-only         Content-Length HS_SHORT_LENGTH, then no byte
 *   /partial              Content-Length HS_SHORT_LENGTH, HS_PARTIAL_BYTES
 *                         bytes of 'x', then no byte
 *   /trickle              Content-Length HS_SHORT_LENGTH, one 'x' every
 *                         HS_TRICKLE_MS
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
#define HS_SHORT_LENGTH 1000
#define HS_PARTIAL_BYTES 100
#define HS_TRICKLE_MS 1000
/* The only name in an HS_CERT_WRONG_HOST certificate. */
#define HS_WRONG_HOST "wrong-host.example"

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

/* The server certificate of hs_pki_make_kind; each bad kind has exactly one
 * defect. */
typedef enum {
	HS_CERT_GOOD = 0,    /* what hs_pki_make makes */
	HS_CERT_EXPIRED,     /* signed by the CA, right names, notAfter a day ago */
	HS_CERT_WRONG_HOST,  /* signed by the CA, valid, SAN DNS:HS_WRONG_HOST only */
	HS_CERT_SELF_SIGNED, /* right names, valid, self-signed: ca_file is a CA
				that did not sign it */
} hs_cert_kind;
int hs_pki_make_kind(hs_pki *pki, const char *dir, const char *name, hs_cert_kind kind);
void hs_pki_dispose(hs_pki *pki);

typedef struct hs_server hs_server;

/* Starts the server on 127.0.0.1, a kernel-chosen port, with the
 * certificate of `pki`. NULL on failure. */
hs_server *hs_server_start(const hs_pki *pki);

typedef struct {
	/* GnuTLS priority string, e.g. "NORMAL:-VERS-ALL:+VERS-TLS1.0" for a
	 * server that speaks TLS 1.0 only; NULL: libmicrohttpd's default. */
	const char *tls_priorities;
} hs_server_opts;
/* hs_server_start with options (o may be NULL). */
hs_server *hs_server_start_opts(const hs_pki *pki, const hs_server_opts *o);
unsigned hs_server_port(const hs_server *s);
/* Requests received for exactly this path (NULL: all paths). */
long hs_server_hits(hs_server *s, const char *path);
/* TCP connections accepted, counted before the TLS handshake: a failed
 * handshake still counts, so a client's retries can be seen. */
long hs_server_connections(hs_server *s);
void hs_server_stop(hs_server *s);

typedef struct hs_canary hs_canary;

/* Listens on 127.0.0.1:P and, when the host has IPv6 loopback, [::1]:P
 * (same P). Every accepted connection is counted and closed at once. */
hs_canary *hs_canary_start(void);
unsigned hs_canary_port(const hs_canary *c);
int hs_canary_has_v6(const hs_canary *c);
long hs_canary_count(hs_canary *c);
void hs_canary_stop(hs_canary *c);

typedef enum {
	/* Listens with backlog 0 and fills the accept queue with connections
	 * of its own, never calling accept(): the kernel then drops every
	 * further SYN, so a client's connect() never completes. */
	HS_STALL_NO_ACCEPT,
	/* Accepts and reads (a TLS ClientHello, say) but never writes a byte. */
	HS_STALL_SILENT,
} hs_stall_mode;

typedef struct hs_stall hs_stall;

/* Listens on 127.0.0.1, a kernel-chosen port. NULL on failure (for
 * HS_STALL_NO_ACCEPT also when the accept queue could not be filled). */
hs_stall *hs_stall_start(hs_stall_mode mode);
unsigned hs_stall_port(const hs_stall *st);
/* Connections accepted (HS_STALL_SILENT; always 0 for HS_STALL_NO_ACCEPT). */
long hs_stall_accepted(hs_stall *st);
/* HS_STALL_NO_ACCEPT: connections the kernel completed and queued besides
 * its own fillers (0 while every client's connect is left hanging; a
 * completed connection stays queued even after its client closed it);
 * -1 when it cannot be read (TCP_INFO). */
long hs_stall_queued(hs_stall *st);
/* Bytes read from clients; *first_byte (may be NULL) gets the first of them,
 * or -1 when none came. */
long hs_stall_bytes(hs_stall *st, int *first_byte);
void hs_stall_stop(hs_stall *st);

#endif
