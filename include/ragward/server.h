/*
 * The HTTP/JSON retrieval server (libmicrohttpd). docs/http-api.md is the
 * contract: endpoints, status codes, limits, the Host and Origin rules.
 *
 * The server listens on loopback only unless allow_remote is set, answers
 * only requests whose Host names the listener (DNS rebinding), refuses any
 * request with an Origin header, and sends no CORS headers. Every /v1
 * endpoint and /metrics need "Authorization: Bearer TOKEN" of an active
 * caller (ragward/callers.h); a caller sees only chunks its labels allow.
 * Worker threads each take a read-only store connection from a small pool;
 * ward_server_reload() makes them reopen it (and re-read config.yaml), and a
 * replaced database file (new inode) is reopened by itself.
 *
 * Refuse-to-serve (T49): each generation of the store (the first, each
 * reload, each replaced file) passes ward_audit_serve_check before a request
 * is answered from it, and every request checks that the audit log it sees
 * has not shrunk. A failure makes every /v1 and /mcp request and /healthz
 * answer 503 until the server is stopped (docs/http-api.md).
 */
#ifndef RAGWARD_SERVER_H
#define RAGWARD_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "ragward/error.h"

#define WARD_SERVER_DEFAULT_PORT   8411
#define WARD_SERVER_DEFAULT_LISTEN "127.0.0.1:8411"

typedef struct {
	const char *listen;      /* "HOST:PORT" or "[V6]:PORT"; NULL: WARD_SERVER_DEFAULT_LISTEN; port 0 picks one */
	const char *unix_path;   /* listen on this unix socket (0660) instead of TCP */
	int allow_remote;        /* permit a non-loopback listen address */
	const char *extra_hosts; /* comma-separated extra Host names accepted (with the port), may be NULL */
	unsigned threads;        /* worker threads (default 4) */
	unsigned conn_limit;     /* connections in total (default 256) */
	unsigned per_ip_limit;   /* connections per client address (default 64) */
	unsigned timeout_s;      /* idle/header timeout per connection (default 10) */
	size_t body_max;         /* request body cap (default 64 KiB) */
	size_t conn_memory;      /* per-connection memory, bounds the headers (default 32 KiB) */
	unsigned drain_s;        /* on stop, wait this long for requests in flight (default 10) */
	int no_trace;            /* 1: ward_retrieve writes no trace (benchmarks) */
} ward_server_opts;

void ward_server_opts_init(ward_server_opts *o);

typedef struct ward_server ward_server;

/*
 * Opens the store in `home` read-only (checking that it is a store and that
 * it passes ward_audit_serve_check), binds and starts serving on internal
 * threads. Errors: WARD_EVERIFY for a store that fails its check (each
 * failure is logged at WARD_LOG_SECURITY), WARD_EPOLICY for a non-loopback
 * address without allow_remote, WARD_EINVAL for a malformed listen address,
 * WARD_EIO when binding fails, or the store's error.
 */
int ward_server_start(ward_server **out, const char *home, const ward_server_opts *o) WARD_MUST_CHECK;

/* The TCP port listened on (0 for a unix socket). */
uint16_t ward_server_port(const ward_server *srv);

/* Reopens every pooled store connection at its next use (SIGHUP); the
 * reopened store is checked again before it answers. Does not lift
 * refuse-to-serve. Safe from any thread; not async-signal-safe. */
void ward_server_reload(ward_server *srv);

/* Stops accepting, waits up to drain_s for requests in flight, stops the
 * threads, closes the stores and removes the unix socket. NULL-safe. */
void ward_server_stop(ward_server *srv);

/*
 * Parses a request body as a strict JSON object: jansson with
 * JSON_REJECT_DUPLICATES after a pre-scan that bounds nesting depth and
 * element count. On failure returns WARD_EINVAL with the specific reason in
 * ward_error_last() ("duplicate key 'k'", "nesting too deep", "number out of
 * range", "invalid UTF-8", "garbage after the JSON value", "the body must be
 * a JSON object", ...). Exposed for the fuzz target.
 */
int ward_http_json_parse(json_t **out, const char *body, size_t len) WARD_MUST_CHECK;

#endif
