/*
 * Fetching documents: https/http through libcurl with an SSRF guard and
 * hand-followed redirects, and local files beneath an approved root.
 *
 * Every redirect target is canonicalized and passed to opts->allow_url (the
 * allowlist) before it is requested; https -> http is refused; at most
 * WARD_FETCH_MAX_REDIRECTS hops. The connected address is checked just before
 * connect (CURLOPT_OPENSOCKETFUNCTION): loopback, private, link-local, CGNAT,
 * multicast, reserved and v4-mapped/NAT64/6to4 forms of them are refused unless
 * opts->allow_private. Proxies, netrc and cookies are off; no automatic
 * decompression (a response with Content-Encoding is refused); bytes are
 * counted in the write callback; TLS 1.2+ with verification always on.
 */
#ifndef RAGWARD_FETCH_H
#define RAGWARD_FETCH_H

#include <stddef.h>
#include <stdint.h>
#include "ragward/crypto.h"
#include "ragward/error.h"

typedef struct {
	const char *ca_file;   /* CA bundle; NULL: the system's */
	int allow_private;     /* the source allows private/loopback addresses */
	int allow_http;        /* the source allows plaintext http */
	size_t max_bytes;      /* 0: WARD_MAX_DOC_BYTES */
	long connect_timeout_ms, total_timeout_ms; /* 0: the limits.h defaults */
	long low_speed_bytes, low_speed_seconds;   /* 0: the limits.h defaults */
	const char *if_none_match;     /* ETag from the last fetch, or NULL */
	const char *if_modified_since; /* Last-Modified from the last fetch, or NULL */
	/* The allowlist: 0 to allow a (canonical) URL, or an error (WARD_EPOLICY)
	 * whose message is reported. Called for the first URL and every hop.
	 * Required: NULL makes ward_fetch_url fail with WARD_EINVAL. */
	int (*allow_url)(void *ctx, const char *canonical_url);
	void *allow_ctx;
} ward_fetch_opts;

typedef struct {
	char *url;           /* canonical URL requested first (files: the absolute path) */
	char *final_url;     /* after redirects (files: the absolute path) */
	char *peer_ip;       /* CURLINFO_PRIMARY_IP of the final response */
	long status;         /* HTTP status of the final response (0 for files) */
	char *etag;          /* may be NULL */
	char *last_modified; /* may be NULL */
	char *content_type;  /* declared type (HTTP header), may be NULL */
	char fetched_at[32]; /* RFC 3339 UTC */
	uint8_t sha256[WARD_SHA256_LEN]; /* of exactly the bytes in body */
	char *body;          /* NUL-terminated for convenience; len excludes it; never
	                      * NULL in a returned result ("" on 304 and >= 400) */
	size_t len;
	int not_modified;    /* 1 on 304: body is empty */
	int redirects;       /* hops followed */
} ward_fetch_result;

void ward_fetch_result_free(ward_fetch_result *r);

/*
 * Fetches `url`. Returns 0 for a 2xx response or a 304 (not_modified). Errors:
 * WARD_EPOLICY (allowlist, SSRF guard, https->http, too many redirects,
 * unsolicited Content-Encoding), WARD_ETOOBIG (byte cap), WARD_ETIMEOUT,
 * WARD_ENET (connection, TLS, HTTP status >= 400 with the status in *out when
 * a response arrived), WARD_EINVAL (bad URL, no allow_url, validators with
 * control characters).
 *
 * *out is NULL on every error except an HTTP status >= 400: then *out holds
 * the record of what answered (url, final_url, peer_ip, status, validators)
 * with an empty body, and the caller frees it. The total timeout spans the
 * whole redirect chain. Each thread keeps one libcurl handle (and its
 * connections) between calls; it is freed when the thread exits.
 */
int ward_fetch_url(ward_fetch_result **out, const char *url, const ward_fetch_opts *opts) WARD_MUST_CHECK;

/*
 * Reads a local file beneath `root` (both canonical absolute paths; `path`
 * may also be relative to root). max_bytes 0: WARD_MAX_DOC_BYTES. Opened
 * with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
 * relative to root, regular files only, size capped on the descriptor, hashed
 * exactly as read; a file that changes during the read is re-read once, then
 * WARD_EIO. Errors: WARD_EPOLICY (outside root, symlink, not a regular file),
 * WARD_ETOOBIG, WARD_ENOTFOUND, WARD_EIO.
 */
int ward_fetch_file(ward_fetch_result **out, const char *root, const char *path, size_t max_bytes) WARD_MUST_CHECK;

/* Lists the regular files beneath `root` (no symlinks followed; symlinks,
 * FIFOs, devices and sockets are skipped) as absolute paths, sorted. More
 * than `max` files (0: WARD_FETCH_MAX_FILES) is WARD_ETOOBIG, never a
 * shortened list. *paths is ward_malloc'd, each entry too. */
int ward_fetch_list_files(char ***paths, size_t *n, const char *root, size_t max) WARD_MUST_CHECK;
void ward_fetch_paths_free(char **paths, size_t n);

/* 1 when the address (as text, v4 or v6) is one the SSRF guard refuses
 * without allow_private; exposed for tests. */
int ward_fetch_addr_is_private(const char *ip);

#endif
