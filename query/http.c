/*
 * The HTTP/JSON retrieval server on libmicrohttpd 0.9.75. docs/http-api.md
 * is the contract. Order of checks for every request: Host (DNS rebinding),
 * Origin and OPTIONS (browsers), the unix peer's uid, the bearer token, then
 * route, method, content type and body size. Nothing a client sends reaches
 * SQLite except through the library's bound parameters, and no internal
 * error text reaches a client: 500 and 503 carry fixed messages, the detail
 * goes to the log. A store that fails its check (T49: at start, at each new
 * generation, or a log that shrank under a request) is refused: see
 * "refuse-to-serve" below.
 */
#define _GNU_SOURCE /* struct ucred */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <microhttpd.h>

#include "ragward/alloc.h"
#include "ragward/audit.h"
#include "ragward/buf.h"
#include "ragward/callers.h"
#include "ragward/mcp.h"
#include "ragward/crypto.h"
#include "ragward/keys.h"
#include "ragward/log.h"
#include "ragward/retrieve.h"
#include "ragward/server.h"
#include "ragward/sources.h"
#include "ragward/store.h"
#include "ragward/traces.h"
#include "query/server_internal.h"
#include "core/limits.h"
#include "core/banned.h"

#define JSON_MAX_DEPTH      16   /* request bodies are flat: an object holding at most one array */
#define JSON_MAX_ELEMENTS   4096 /* values in one request body */
#define BODY_DISCARD_FACTOR 16   /* a body this many times the cap is not read to its end */
#define LOG_PATH_MAX        120
#define MAX_HOSTS           16
#define TRACE_FLUSH_MS      1000 /* a quiet server's last trace records are synced within this (+ the batch window) */
#define REFUSING_MSG        "store failed its audit check; refusing to serve"

typedef struct {
	ward_store *s;
	unsigned gen;
	dev_t dev;
	ino_t ino;
} pooled;

struct ward_server {
	struct MHD_Daemon *d;
	ward_server_opts o;
	char *home, *db_path, *unix_path;
	int listen_fd; /* ours (unix socket) or returned by MHD_quiesce_daemon; -1 when none */
	uint16_t port;
	int is_unix;
	char *hosts[MAX_HOSTS]; /* accepted Host values, lowercase */
	size_t nhosts;
	pthread_mutex_t mu;
	pooled *pool;
	size_t npool, pool_cap;
	atomic_uint gen;
	atomic_long inflight;
	/*
	 * Refuse-to-serve (T49). Every generation of the store (the one at
	 * start, each SIGHUP, each replaced file) passes quick_check and the
	 * audit-log verification once before a request is answered from it;
	 * check_mu makes the other threads wait for that check rather than
	 * serve unchecked. Every request then compares the log size its
	 * connection sees with log_high, the largest this server has seen (and
	 * the anchor's): a smaller one is a rollback in place. A failure sets
	 * refusing, which nothing clears: the store stays untrusted until an
	 * operator has looked at `ragward audit verify` and `ragward verify`
	 * and restarted the server (whose start-up check runs again).
	 */
	pthread_mutex_t check_mu;
	int checked; /* under check_mu: checked_* name a generation that passed */
	unsigned checked_gen;
	dev_t checked_dev;
	ino_t checked_ino;
	atomic_int refusing;
	atomic_ullong log_high;
	atomic_ullong checks_run, checks_failed, shrinks_seen, refused;
	ward_mcp_registry *mcp; /* Streamable HTTP sessions of POST /mcp */
	/* The trace flusher: libmicrohttpd has no timers in thread-pool mode,
	 * so a thread of ours syncs batched trace records every TRACE_FLUSH_MS. */
	pthread_t flusher;
	pthread_mutex_t fl_mu;
	pthread_cond_t fl_cv;
	int fl_stop, fl_running;
};

typedef struct {
	ward_server *srv;
	struct timespec t0;
	ward_endpoint ep;
	unsigned status;
	int is_post;
	ward_buf body;
	size_t seen;
	int too_big;
	ward_caller caller;
	int authed;
	char method[12];
	char path[LOG_PATH_MAX + 1];
} request;

/* ---- options, addresses -------------------------------------------------------- */

void ward_server_opts_init(ward_server_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->threads = 4;
	o->conn_limit = 256;
	o->per_ip_limit = 64;
	o->timeout_s = 10;
	o->body_max = 64 * 1024;
	o->conn_memory = 32 * 1024;
	o->drain_s = 10;
}

typedef struct {
	int family;
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
	char host[64]; /* as written, without brackets */
	uint16_t port;
} listen_addr;

static int parse_port(const char *s, uint16_t *out)
{
	unsigned long v = 0;

	if (!*s || strlen(s) > 5)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

static int parse_listen(listen_addr *a, const char *spec)
{
	const char *colon, *host_start = spec;
	size_t host_len;

	memset(a, 0, sizeof(*a));
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (!close || close[1] != ':')
			return ward_error_set(WARD_EINVAL, "listen address '%s': use [V6]:PORT", spec);
		host_start = spec + 1;
		host_len = (size_t)(close - host_start);
		colon = close + 1;
	} else {
		if (!(colon = strrchr(spec, ':')))
			return ward_error_set(WARD_EINVAL, "listen address '%s': use HOST:PORT", spec);
		host_len = (size_t)(colon - spec);
	}
	if (host_len == 0 || host_len >= sizeof(a->host))
		return ward_error_set(WARD_EINVAL, "listen address '%s': bad host", spec);
	memcpy(a->host, host_start, host_len);
	a->host[host_len] = '\0';
	if (parse_port(colon + 1, &a->port) < 0)
		return ward_error_set(WARD_EINVAL, "listen address '%s': bad port", spec);
	if (strcasecmp(a->host, "localhost") == 0) {
		snprintf(a->host, sizeof(a->host), "127.0.0.1");
	}
	if (inet_pton(AF_INET, a->host, &a->v4.sin_addr) == 1) {
		a->family = AF_INET;
		a->v4.sin_family = AF_INET;
		a->v4.sin_port = htons(a->port);
	} else if (inet_pton(AF_INET6, a->host, &a->v6.sin6_addr) == 1) {
		a->family = AF_INET6;
		a->v6.sin6_family = AF_INET6;
		a->v6.sin6_port = htons(a->port);
	} else {
		return ward_error_set(WARD_EINVAL, "listen address '%s': the host must be an IP address or localhost",
		                      spec);
	}
	return 0;
}

static int is_loopback(const listen_addr *a)
{
	if (a->family == AF_INET)
		return (ntohl(a->v4.sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&a->v6.sin6_addr);
}

static int add_host(ward_server *srv, const char *fmt, ...) WARD_PRINTF(2, 3);
static int add_host(ward_server *srv, const char *fmt, ...)
{
	char buf[300];
	va_list ap;

	if (srv->nhosts == MAX_HOSTS)
		return ward_error_set(WARD_EINVAL, "too many accepted host names (at most %d)", MAX_HOSTS);
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (char *p = buf; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (!(srv->hosts[srv->nhosts] = ward_strdup(buf)))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	srv->nhosts++;
	return 0;
}

/* The Host values a request may carry: the loopback names with the real
 * port, the listen literal, and any extra names (--allow-remote). */
static int build_hosts(ward_server *srv, const listen_addr *a)
{
	int rc;

	if (srv->is_unix)
		return add_host(srv, "localhost");
	if ((rc = add_host(srv, "127.0.0.1:%u", srv->port)) < 0 ||
	    (rc = add_host(srv, "localhost:%u", srv->port)) < 0 || (rc = add_host(srv, "[::1]:%u", srv->port)) < 0)
		return rc;
	if (a->family == AF_INET && strcmp(a->host, "127.0.0.1") != 0 && strcmp(a->host, "0.0.0.0") != 0 &&
	    (rc = add_host(srv, "%s:%u", a->host, srv->port)) < 0)
		return rc;
	if (a->family == AF_INET6 && !IN6_IS_ADDR_LOOPBACK(&a->v6.sin6_addr) &&
	    !IN6_IS_ADDR_UNSPECIFIED(&a->v6.sin6_addr) && (rc = add_host(srv, "[%s]:%u", a->host, srv->port)) < 0)
		return rc;
	if (srv->port == 80 && ((rc = add_host(srv, "127.0.0.1")) < 0 || (rc = add_host(srv, "localhost")) < 0))
		return rc;
	if (srv->o.extra_hosts && *srv->o.extra_hosts) {
		const char *p = srv->o.extra_hosts;
		while (*p) {
			const char *comma = strchr(p, ',');
			size_t len = comma ? (size_t)(comma - p) : strlen(p);
			if (len == 0 || len > 253)
				return ward_error_set(WARD_EINVAL, "bad extra host name in '%s'", srv->o.extra_hosts);
			if ((rc = add_host(srv, "%.*s:%u", (int)len, p, srv->port)) < 0)
				return rc;
			p += len + (comma ? 1 : 0);
		}
	}
	return 0;
}

/* With --allow-remote, an IP literal naming our port is also fine: DNS
 * rebinding needs a DNS name in Host, and a literal cannot be rebound. */
static int host_is_ip_literal(const char *host, uint16_t port)
{
	char buf[64];
	const char *colon;
	size_t len;
	uint16_t p;
	struct in_addr a4;
	struct in6_addr a6;

	if (host[0] == '[') {
		const char *close = strchr(host, ']');
		if (!close || close[1] != ':' || (size_t)(close - host - 1) >= sizeof(buf))
			return 0;
		len = (size_t)(close - host - 1);
		memcpy(buf, host + 1, len);
		buf[len] = '\0';
		return parse_port(close + 2, &p) == 0 && p == port && inet_pton(AF_INET6, buf, &a6) == 1;
	}
	if (!(colon = strrchr(host, ':')) || (size_t)(colon - host) >= sizeof(buf))
		return 0;
	len = (size_t)(colon - host);
	memcpy(buf, host, len);
	buf[len] = '\0';
	return parse_port(colon + 1, &p) == 0 && p == port && inet_pton(AF_INET, buf, &a4) == 1;
}

static int host_allowed(const ward_server *srv, const char *host)
{
	if (!host)
		return srv->is_unix; /* HTTP/1.0 over the unix socket */
	for (size_t i = 0; i < srv->nhosts; i++)
		if (strcasecmp(host, srv->hosts[i]) == 0)
			return 1;
	return srv->o.allow_remote && !srv->is_unix && host_is_ip_literal(host, srv->port);
}

/* ---- unix socket ------------------------------------------------------------------ */

static int unix_listen(ward_server *srv, const char *path)
{
	struct sockaddr_un sa;
	struct stat sb;
	mode_t old;
	int fd = -1, rc;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) == 0 || strlen(path) >= sizeof(sa.sun_path))
		return ward_error_set(WARD_EINVAL, "unix socket path '%s' is empty or too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &sb) == 0) {
		int probe;
		if (!S_ISSOCK(sb.st_mode))
			return ward_error_set(WARD_EEXISTS, "'%s' exists and is not a socket", path);
		/* A socket nobody answers on is left over from a crash. */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			return ward_error_set(WARD_EBUSY, "another server listens on '%s'", path);
		}
		if (probe >= 0)
			close(probe);
		if (unlink(path) != 0)
			return ward_error_set(WARD_EIO, "cannot remove the stale socket '%s': %s", path,
			                      strerror(errno));
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		return ward_error_set(WARD_EIO, "socket: %s", strerror(errno));
	/* The socket file is created 0660 at bind: no window where others
	 * could connect. The umask is process-wide, so this runs at start-up. */
	old = umask(0117);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc != 0) {
		rc = ward_error_set(WARD_EIO, "cannot bind '%s': %s", path, strerror(errno));
		goto fail;
	}
	if (chmod(path, 0660) != 0 || listen(fd, 128) != 0) {
		rc = ward_error_set(WARD_EIO, "cannot listen on '%s': %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	srv->listen_fd = fd;
	return 0;
fail:
	close(fd);
	return rc;
}

static int unix_peer_ok(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (!ci || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return 0;
	/* 0660: our user, or a member of our group the operator let in. */
	return cred.uid == geteuid() || cred.gid == getegid();
}

/* ---- refuse-to-serve ------------------------------------------------------------- */

/* Latches refuse-to-serve; the first cause is logged as such, later ones
 * (other threads that saw the same store) only by their own lines. */
static void enter_refusing(ward_server *srv, const char *why)
{
	if (atomic_exchange(&srv->refusing, 1) == 0)
		ward_log(WARD_LOG_SECURITY,
		         "refusing to serve: %s; /v1, /mcp and /healthz answer 503 until a restart (run"
		         " 'ragward audit verify' and 'ragward verify' first)",
		         why);
}

static void raise_log_high(ward_server *srv, uint64_t v)
{
	unsigned long long cur = atomic_load(&srv->log_high);

	while (cur < v && !atomic_compare_exchange_weak(&srv->log_high, &cur, v))
		;
}

/*
 * The check of a new generation (p was just opened): quick_check and the
 * audit log against its checkpoints and the home's anchor, once per
 * generation, under check_mu. A check that could not run (the store busy or
 * unreadable) answers this request 503 and is tried again by the next one;
 * a check that ran and failed latches refuse-to-serve.
 */
static int generation_check(ward_server *srv, const pooled *p)
{
	ward_audit_report rep;
	uint64_t anchor = 0;
	int rc = 0;

	pthread_mutex_lock(&srv->check_mu);
	if (srv->checked && srv->checked_gen == p->gen && srv->checked_dev == p->dev && srv->checked_ino == p->ino)
		goto out;
	if (atomic_load(&srv->refusing)) {
		rc = ward_error_set(WARD_EVERIFY, "refusing to serve: the store failed its audit check");
		goto out;
	}
	atomic_fetch_add(&srv->checks_run, 1);
	if ((rc = ward_audit_serve_check(p->s, &rep, &anchor)) < 0) {
		ward_log(WARD_LOG_ERROR, "store check could not run: %s", ward_error_last()->message);
		ward_audit_report_dispose(&rep);
		rc = ward_error_set(WARD_EIO, "store check could not run");
		goto out;
	}
	if (rep.nfailures) {
		atomic_fetch_add(&srv->checks_failed, 1);
		for (size_t i = 0; i < rep.nfailures; i++)
			ward_log(WARD_LOG_SECURITY, "store check: %s: %s", rep.failures[i].object,
			         rep.failures[i].problem);
		enter_refusing(srv, "the store failed its audit check (quick_check and the audit log against"
		                    " HOME/anchor.checkpoint)");
		ward_audit_report_dispose(&rep);
		rc = ward_error_set(WARD_EVERIFY,
		                    "the store failed its audit check; refusing to serve (see 'ragward audit verify'"
		                    " and 'ragward verify')");
		goto out;
	}
	/* Both were read before any request of this generation: no later read
	 * may see less (verify found the latest checkpoint covering every event). */
	raise_log_high(srv, anchor);
	raise_log_high(srv, rep.events);
	ward_audit_report_dispose(&rep);
	srv->checked = 1;
	srv->checked_gen = p->gen;
	srv->checked_dev = p->dev;
	srv->checked_ino = p->ino;
out:
	pthread_mutex_unlock(&srv->check_mu);
	return rc;
}

/*
 * The guard of every request: `size` is the latest checkpoint's tree size
 * as p's connection saw it, `high` is log_high loaded before that read
 * began. Loading it first matters: every value in log_high was read after
 * the commit that made it, so a read that starts later sees at least that
 * much; a value raised meanwhile by a concurrent request on a newer
 * snapshot cannot make this one look like a rollback. Costs at most one
 * prepared statement: search and healthz hand in the size they read anyway.
 */
static int log_guard(ward_server *srv, const pooled *p, uint64_t high, int64_t size, int found)
{
	uint64_t seen = found && size > 0 ? (uint64_t)size : 0;
	struct stat sb;
	char why[200];

	if (seen >= high) {
		if (seen > high)
			raise_log_high(srv, seen);
		return 0;
	}
	/* A connection to a file replaced while the request ran sees an old
	 * file: not this request's to judge, the next one opens (and checks)
	 * the new file. */
	if (stat(srv->db_path, &sb) != 0 || sb.st_dev != p->dev || sb.st_ino != p->ino)
		return ward_error_set(WARD_EIO, "store database replaced while a request used it");
	atomic_fetch_add(&srv->shrinks_seen, 1);
	snprintf(why, sizeof(why),
	         "the audit log's latest checkpoint covers %llu events, fewer than the %llu this server has seen"
	         " (rolled back or truncated in place)",
	         (unsigned long long)seen, (unsigned long long)high);
	ward_log(WARD_LOG_SECURITY, "store check: %s", why);
	enter_refusing(srv, why);
	return ward_error_set(WARD_EVERIFY, "refusing to serve: %s", why);
}

/* The guard with its own read of the log size (endpoints other than search). */
static int log_guard_read(ward_server *srv, const pooled *p)
{
	uint64_t high = atomic_load(&srv->log_high);
	int64_t size = 0;
	int found = 0, rc;

	if ((rc = ward_store_checkpoint_size(p->s, &size, &found)) < 0)
		return rc;
	return log_guard(srv, p, high, size, found);
}

/* ---- store pool ------------------------------------------------------------------- */

static void pool_close(pooled *p)
{
	ward_store_close(p->s);
	p->s = NULL;
}

/* A read-only store connection for this request: a connection is never used
 * by two threads at once. One opened before a reload, or on a database file
 * that has since been replaced (another inode), is reopened; a connection of
 * a generation not seen before is checked first (generation_check). Returns
 * WARD_EVERIFY while the server refuses to serve, except with `for_metrics`:
 * /metrics, which shows the refusal, still authenticates its caller (nothing
 * else is read from the store then). */
static int pool_acquire(ward_server *srv, pooled *out, int for_metrics)
{
	struct stat sb, after;
	pooled stale[8];
	size_t nstale = 0;
	unsigned gen = atomic_load(&srv->gen);
	int rc;

	memset(out, 0, sizeof(*out));
	if (atomic_load(&srv->refusing) && !for_metrics)
		return ward_error_set(WARD_EVERIFY, "refusing to serve: the store failed its audit check");
	if (stat(srv->db_path, &sb) != 0)
		return ward_error_set(WARD_EIO, "store database missing: %s", strerror(errno));
	pthread_mutex_lock(&srv->mu);
	while (srv->npool > 0) {
		pooled p = srv->pool[--srv->npool];
		if (p.gen == gen && p.dev == sb.st_dev && p.ino == sb.st_ino) {
			*out = p;
			break;
		}
		if (nstale < sizeof(stale) / sizeof(stale[0]))
			stale[nstale++] = p;
		else
			pool_close(&p);
	}
	pthread_mutex_unlock(&srv->mu);
	for (size_t i = 0; i < nstale; i++)
		pool_close(&stale[i]);
	if (out->s)
		return 0;
	if ((rc = ward_store_open(&out->s, srv->home, 0)) < 0)
		return rc;
	/* The file opened must be the one stat'ed: a replacement between the
	 * two would label an unchecked file with a checked inode. */
	if (stat(srv->db_path, &after) != 0 || after.st_dev != sb.st_dev || after.st_ino != sb.st_ino) {
		pool_close(out);
		return ward_error_set(WARD_EIO, "store database replaced while opening it");
	}
	out->gen = gen;
	out->dev = sb.st_dev;
	out->ino = sb.st_ino;
	if (atomic_load(&srv->refusing) && for_metrics)
		return 0;
	if ((rc = generation_check(srv, out)) < 0) {
		pool_close(out);
		return rc;
	}
	return 0;
}

static void pool_release(ward_server *srv, pooled *p)
{
	if (!p->s)
		return;
	pthread_mutex_lock(&srv->mu);
	if (p->gen == atomic_load(&srv->gen) && srv->npool < srv->pool_cap) {
		srv->pool[srv->npool++] = *p;
		p->s = NULL;
	}
	pthread_mutex_unlock(&srv->mu);
	if (p->s)
		pool_close(p);
}

void ward_server_reload(ward_server *srv)
{
	if (srv)
		atomic_fetch_add(&srv->gen, 1);
}

/* ---- strict JSON --------------------------------------------------------------------- */

/* Bounds depth and element count before jansson builds anything (its own
 * depth limit is a compile-time 2048). */
static int json_prescan(const char *b, size_t len)
{
	size_t depth = 0, elements = 0, i = 0;
	int in_str = 0, esc = 0;

	while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
		i++;
	if (i == len)
		return ward_error_set(WARD_EINVAL, "empty body: a JSON object is expected");
	if (b[i] != '{')
		return ward_error_set(WARD_EINVAL, "the body must be a JSON object");
	for (; i < len; i++) {
		char c = b[i];
		if (in_str) {
			if (esc)
				esc = 0;
			else if (c == '\\')
				esc = 1;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"') {
			in_str = 1;
		} else if (c == '{' || c == '[') {
			if (++depth > JSON_MAX_DEPTH)
				return ward_error_set(WARD_EINVAL, "nesting too deep (more than %d levels)",
				                      JSON_MAX_DEPTH);
			elements++;
		} else if (c == '}' || c == ']') {
			if (depth)
				depth--;
		} else if (c == ',') {
			elements++;
		}
		if (elements > JSON_MAX_ELEMENTS)
			return ward_error_set(WARD_EINVAL, "too many elements (more than %d)", JSON_MAX_ELEMENTS);
	}
	return 0;
}

int ward_http_json_parse(json_t **out, const char *body, size_t len)
{
	json_error_t err;
	json_t *v;
	int rc;

	*out = NULL;
	if ((rc = json_prescan(body, len)) < 0)
		return rc;
	if (!(v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err))) {
		switch (json_error_code(&err)) {
		case json_error_duplicate_key:
			return ward_error_set(WARD_EINVAL, "duplicate key in the JSON object (line %d, column %d)",
			                      err.line, err.column);
		case json_error_invalid_utf8:
			return ward_error_set(WARD_EINVAL, "invalid UTF-8 in the body");
		case json_error_null_character:
		case json_error_null_byte_in_key:
			return ward_error_set(WARD_EINVAL, "NUL character (\\u0000) in a string");
		case json_error_numeric_overflow:
			return ward_error_set(WARD_EINVAL, "bad number: out of range (line %d, column %d)", err.line,
			                      err.column);
		case json_error_end_of_input_expected:
			return ward_error_set(WARD_EINVAL, "garbage after the JSON value (line %d, column %d)",
			                      err.line, err.column);
		case json_error_premature_end_of_input:
			return ward_error_set(WARD_EINVAL, "truncated JSON");
		case json_error_out_of_memory:
			return ward_error_set(WARD_ENOMEM, "out of memory");
		case json_error_stack_overflow:
			return ward_error_set(WARD_EINVAL, "nesting too deep");
		default:
			return ward_error_set(WARD_EINVAL, "invalid JSON (line %d, column %d)", err.line, err.column);
		}
	}
	if (!json_is_object(v)) {
		json_decref(v);
		return ward_error_set(WARD_EINVAL, "the body must be a JSON object");
	}
	*out = v;
	return 0;
}

/* Unknown fields are refused: a typo must not silently widen a query. */
static int only_fields(const json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v)
	{
		int ok = 0;
		(void)v;
		for (size_t i = 0; allowed[i]; i++)
			ok |= strcmp(key, allowed[i]) == 0;
		if (!ok)
			return ward_error_set(WARD_EINVAL, "unknown field '%.64s'", key);
	}
	return 0;
}

/* ---- responses ----------------------------------------------------------------------- */

static void free_json_text(void *p)
{
	json_free_t f;
	json_malloc_t m;

	json_get_alloc_funcs(&m, &f);
	f(p);
}

static enum MHD_Result send_body(request *rq, struct MHD_Connection *conn, unsigned status, const char *ctype,
                                 char *body, size_t len, void (*free_fn)(void *), const char *extra_name,
                                 const char *extra_value)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (free_fn)
		r = MHD_create_response_from_buffer_with_free_callback(len, body, free_fn);
	else
		r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_PERSISTENT);
	if (!r) {
		if (free_fn)
			free_fn(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (extra_name)
		MHD_add_response_header(r, extra_name, extra_value);
	rq->status = status;
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_json(request *rq, struct MHD_Connection *conn, unsigned status, json_t *obj)
{
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

	json_decref(obj);
	if (!text) {
		static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"internal error\"}}";
		return send_body(rq, conn, 500, "application/json", (char *)oom, sizeof(oom) - 1, NULL, NULL, NULL);
	}
	return send_body(rq, conn, status, "application/json", text, strlen(text), free_json_text, NULL, NULL);
}

static const char *code_for(unsigned status)
{
	switch (status) {
	case 400:
		return "bad_request";
	case 401:
		return "unauthorized";
	case 403:
		return "forbidden";
	case 404:
		return "not_found";
	case 405:
		return "method_not_allowed";
	case 413:
		return "too_large";
	case 415:
		return "unsupported_media_type";
	case 503:
		return "unavailable";
	default:
		return "internal";
	}
}

static enum MHD_Result send_error_hdr(request *rq, struct MHD_Connection *conn, unsigned status, const char *msg,
                                      const char *hname, const char *hvalue)
{
	json_t *obj = json_pack("{s:{s:s, s:s}}", "error", "code", code_for(status), "message", msg);
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

	json_decref(obj);
	if (!text)
		return send_json(rq, conn, 500, NULL);
	return send_body(rq, conn, status, "application/json", text, strlen(text), free_json_text, hname, hvalue);
}

static enum MHD_Result send_error(request *rq, struct MHD_Connection *conn, unsigned status, const char *msg)
{
	return send_error_hdr(rq, conn, status, msg, NULL, NULL);
}

/* 503 while the server refuses to serve; /healthz keeps its own shape. */
static enum MHD_Result send_refusing(request *rq, struct MHD_Connection *conn)
{
	atomic_fetch_add(&rq->srv->refused, 1);
	if (rq->ep == WARD_EP_HEALTHZ)
		return send_json(rq, conn, 503, json_pack("{s:b, s:s}", "ok", 0, "error", REFUSING_MSG));
	return send_error(rq, conn, 503, REFUSING_MSG);
}

/* A store that cannot serve this request: refused (WARD_EVERIFY, from
 * pool_acquire or the log guard), or unavailable for now. */
static enum MHD_Result send_unavailable(request *rq, struct MHD_Connection *conn, int rc)
{
	if (rc == WARD_EVERIFY)
		return send_refusing(rq, conn);
	ward_log(WARD_LOG_ERROR, "http: store unavailable: %s", ward_error_last()->message);
	if (rq->ep == WARD_EP_HEALTHZ)
		return send_json(rq, conn, 503, json_pack("{s:b, s:s}", "ok", 0, "error", "store unavailable"));
	return send_error(rq, conn, 503, "store unavailable");
}

/* A library error as a response: client errors carry the library's one-line
 * reason; server errors a fixed text (the reason goes to the log). */
static enum MHD_Result send_lib_error(request *rq, struct MHD_Connection *conn, int code)
{
	const ward_error *e = ward_error_last();

	switch (code) {
	case WARD_EINVAL:
	case WARD_ETOOBIG:
		return send_error(rq, conn, 400, e->message);
	case WARD_ENOTFOUND:
		return send_error(rq, conn, 404, "not found");
	default:
		ward_log(WARD_LOG_ERROR, "http %s %s: %s", rq->method, rq->path, e->message);
		return send_error(rq, conn, 500, "internal error");
	}
}

/* ---- endpoints -------------------------------------------------------------------------- */

static enum MHD_Result handle_search(request *rq, struct MHD_Connection *conn, const pooled *p)
{
	static const char *const fields[] = {"query", "k", "sources", "min_trust", "datamark", NULL};
	int64_t sources[WARD_QUERY_MAX_SOURCES];
	const char **labels = NULL;
	json_t *req = NULL, *labels_json = NULL, *res = NULL, *v, *cp;
	ward_retrieve_opts o;
	size_t nlabels = 0;
	enum MHD_Result ret;
	uint64_t high;
	int rc;

	ward_retrieve_opts_init(&o);
	if ((rc = ward_http_json_parse(&req, rq->body.ptr ? rq->body.ptr : "", rq->body.len)) < 0 ||
	    (rc = only_fields(req, fields)) < 0)
		goto fail;
	v = json_object_get(req, "query");
	if (!json_is_string(v)) {
		rc = ward_error_set(WARD_EINVAL, v ? "'query' must be a string" : "'query' is missing");
		goto fail;
	}
	if ((v = json_object_get(req, "k"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > WARD_QUERY_MAX_K) {
			rc = ward_error_set(WARD_EINVAL, "'k' must be an integer from 1 to %d", WARD_QUERY_MAX_K);
			goto fail;
		}
		o.k = (size_t)json_integer_value(v);
	}
	if ((v = json_object_get(req, "sources"))) {
		size_t i;
		json_t *id;
		if (!json_is_array(v)) {
			rc = ward_error_set(WARD_EINVAL, "'sources' must be an array of source ids");
			goto fail;
		}
		if (json_array_size(v) > WARD_QUERY_MAX_SOURCES) {
			rc = ward_error_set(WARD_EINVAL, "'sources' has more than %d ids", WARD_QUERY_MAX_SOURCES);
			goto fail;
		}
		json_array_foreach(v, i, id)
		{
			if (!json_is_integer(id) || json_integer_value(id) < 1) {
				rc = ward_error_set(WARD_EINVAL, "'sources' must be an array of positive integer ids");
				goto fail;
			}
			sources[i] = (int64_t)json_integer_value(id);
		}
		o.filter.source_ids = sources;
		o.filter.nsource_ids = json_array_size(v);
	}
	if ((v = json_object_get(req, "min_trust"))) {
		ward_trust t;
		if (!json_is_string(v) || ward_trust_parse(&t, json_string_value(v)) < 0) {
			rc = ward_error_set(WARD_EINVAL, "'min_trust' must be one of \"low\", \"standard\", \"high\"");
			goto fail;
		}
		o.filter.min_trust = (int)t;
	}
	if ((v = json_object_get(req, "datamark"))) {
		if (!json_is_boolean(v)) {
			rc = ward_error_set(WARD_EINVAL, "'datamark' must be a boolean");
			goto fail;
		}
		o.datamark = json_is_true(v);
	}
	/* The caller's labels, never anything the request says. */
	if ((rc = ward_caller_labels(&rq->caller, &labels_json, &labels, &nlabels)) < 0)
		goto fail;
	o.filter.labels = labels;
	o.filter.nlabels = nlabels;
	o.filter.all_labels = 0;
	o.caller = rq->caller.name;
	o.no_trace = rq->srv->o.no_trace;
	v = json_object_get(req, "query");
	high = atomic_load(&rq->srv->log_high); /* before the retrieval reads the log size: log_guard */
	if ((rc = ward_retrieve(p->s, json_string_value(v), json_string_length(v), &o, &res)) < 0)
		goto fail;
	/* The log size ward_retrieve read for the results' integrity block is
	 * the guard's: no second query. Without results, one cached read. */
	cp = json_object_get(json_object_get(json_array_get(json_object_get(res, "results"), 0), "integrity"),
	                     "checkpoint_size");
	if (json_is_integer(cp))
		rc = log_guard(rq->srv, p, high, (int64_t)json_integer_value(cp), 1);
	else
		rc = log_guard_read(rq->srv, p);
	if (rc < 0) {
		json_decref(res);
		ret = send_unavailable(rq, conn, rc);
		goto done;
	}
	ret = send_json(rq, conn, 200, res);
	goto done;
fail:
	ret = send_lib_error(rq, conn, rc);
done:
	ward_free((void *)labels);
	json_decref(labels_json);
	json_decref(req);
	return ret;
}

static int labels_intersect(const char *source_labels, const ward_caller *c)
{
	json_t *src = json_loads(source_labels ? source_labels : "[]", 0, NULL), *cl = NULL, *a, *b;
	size_t i, j;
	int visible = 0;

	if (!json_is_array(src))
		goto done;
	if (json_array_size(src) == 0) {
		visible = 1; /* a source without labels is public */
		goto done;
	}
	if (!(cl = json_loads(c->labels ? c->labels : "[]", 0, NULL)) || !json_is_array(cl))
		goto done;
	json_array_foreach(src, i, a)
	        json_array_foreach(cl, j, b) if (json_is_string(a) && json_is_string(b) && json_equal(a, b)) visible =
	                1;
done:
	json_decref(src);
	json_decref(cl);
	return visible;
}

static enum MHD_Result handle_chunk(request *rq, struct MHD_Connection *conn, ward_store *s, const char *id_text)
{
	ward_search_hit h;
	ward_source src;
	ward_chunk_keys keys;
	char hash_hex[2 * WARD_SHA256_LEN + 1];
	char *sig64 = NULL;
	long long id = 0;
	int found = 0, ok = 0, rc;
	enum MHD_Result ret;
	json_t *obj;

	memset(&h, 0, sizeof(h));
	memset(&src, 0, sizeof(src));
	memset(&keys, 0, sizeof(keys));
	for (const char *p = id_text; *p; p++)
		id = id * 10 + (*p - '0'); /* digits only, at most 18: checked by the router */
	if ((rc = ward_store_chunk_get(s, (int64_t)id, &h, &found)) < 0)
		goto fail;
	if (!found || !h.doc_state || strcmp(h.doc_state, "active") != 0 || !h.source_state ||
	    strcmp(h.source_state, "approved") != 0) {
		ret = send_error(rq, conn, 404, "not found");
		goto done;
	}
	if ((rc = ward_sources_get(s, h.row.source_id, &src)) < 0)
		goto fail;
	if (!labels_intersect(src.labels, &rq->caller)) {
		ret = send_error(rq, conn, 404, "not found");
		goto done;
	}
	if ((rc = ward_chunk_verify_row(s, &h.row, &keys, NULL, &ok)) < 0)
		goto fail;
	if (!ok) {
		ward_metrics_chunk_withheld();
		ward_log(WARD_LOG_SECURITY, "chunk %lld failed verification on read; withheld from caller '%s'", id,
		         rq->caller.name);
		ret = send_error(rq, conn, 404, "not found");
		goto done;
	}
	ward_hex_encode_to(hash_hex, h.row.text_sha256, WARD_SHA256_LEN);
	if ((rc = ward_base64_encode(&sig64, h.row.signature, h.row.signature_len)) < 0)
		goto fail;
	obj = json_pack("{s:I, s:s, s:{s:I, s:s, s:I, s:s, s:s?, s:s, s:I, s:s, s:I, s:I},"
	                " s:{s:s, s:s, s:s, s:b}, s:s, s:b}",
	                "chunk_id", (json_int_t)h.row.chunk_id, "text", h.text ? h.text : "", "citation", "source_id",
	                (json_int_t)h.row.source_id, "source_name", h.source_name ? h.source_name : "", "document_id",
	                (json_int_t)h.row.document_id, "uri", h.uri ? h.uri : "", "title", h.title, "section",
	                h.heading_path ? h.heading_path : "", "version", (json_int_t)h.row.document_version,
	                "fetched_at", h.fetched_at ? h.fetched_at : "", "char_start", (json_int_t)h.row.char_start,
	                "char_end", (json_int_t)h.row.char_end, "integrity", "text_sha256", hash_hex, "signature",
	                sig64, "key_id", h.key_id ? h.key_id : "", "verified", 1, "trust", h.trust ? h.trust : "",
	                "untrusted_content", 1);
	ret = send_json(rq, conn, 200, obj);
	goto done;
fail:
	ret = send_lib_error(rq, conn, rc);
done:
	ward_free(sig64);
	ward_chunk_keys_dispose(&keys);
	ward_source_dispose(&src);
	ward_search_hit_dispose(&h);
	return ret;
}

static enum MHD_Result handle_cite(request *rq, struct MHD_Connection *conn, ward_store *s)
{
	static const char *const fields[] = {"trace_id", "output", NULL};
	json_t *req = NULL, *trace = NULL, *res = NULL, *tid, *out;
	enum MHD_Result ret;
	int rc;

	if ((rc = ward_http_json_parse(&req, rq->body.ptr ? rq->body.ptr : "", rq->body.len)) < 0 ||
	    (rc = only_fields(req, fields)) < 0)
		goto fail;
	tid = json_object_get(req, "trace_id");
	out = json_object_get(req, "output");
	if (!json_is_string(tid) || !json_is_string(out)) {
		rc = ward_error_set(WARD_EINVAL, "'trace_id' and 'output' must both be strings");
		goto fail;
	}
	/* A caller checks its own traces only: another caller's trace would
	 * name documents outside this caller's labels. */
	if ((rc = ward_trace_find(s, json_string_value(tid), &trace)) < 0)
		goto fail;
	if (!json_is_string(json_object_get(trace, "caller")) ||
	    strcmp(json_string_value(json_object_get(trace, "caller")), rq->caller.name) != 0) {
		ret = send_error(rq, conn, 404, "not found");
		goto done;
	}
	if ((rc = ward_cite_check(s, json_string_value(tid), json_string_value(out), json_string_length(out), &res)) <
	    0)
		goto fail;
	ret = send_json(rq, conn, 200, res);
	goto done;
fail:
	ret = send_lib_error(rq, conn, rc);
done:
	json_decref(trace);
	json_decref(req);
	return ret;
}

static enum MHD_Result handle_keys(request *rq, struct MHD_Connection *conn, ward_store *s)
{
	ward_key_info *k = NULL;
	size_t n = 0;
	json_t *arr = NULL;
	enum MHD_Result ret;
	int rc;

	if ((rc = ward_keys_list(s, &k, &n)) < 0)
		goto fail;
	if (!(arr = json_array())) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		ward_key *key = NULL;
		char *pem = NULL, hex[2 * WARD_ED25519_PUB_LEN + 1];
		size_t plen = 0;
		json_t *item;

		if ((rc = ward_key_from_public(&key, k[i].public_key)) < 0 ||
		    (rc = ward_key_public_pem(key, &pem, &plen)) < 0) {
			ward_key_free(key);
			goto fail;
		}
		ward_hex_encode_to(hex, k[i].public_key, WARD_ED25519_PUB_LEN);
		item = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s, s:s}", "key_id", k[i].key_id, "state",
		                 k[i].state ? k[i].state : "", "created_at", k[i].created_at ? k[i].created_at : "",
		                 "retired_at", k[i].retired_at, "algorithm", "ed25519", "public_key_hex", hex,
		                 "public_key_pem", pem);
		ward_free(pem);
		ward_key_free(key);
		if (!item || json_array_append_new(arr, item) != 0) {
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto fail;
		}
	}
	ret = send_json(rq, conn, 200, json_pack("{s:O}", "keys", arr));
	goto done;
fail:
	ret = send_lib_error(rq, conn, rc);
done:
	json_decref(arr);
	ward_keys_free(k, n);
	return ret;
}

/* The size of store.db-wal: it grows while a reader holds an old snapshot
 * and ingest writes (T41, docs/configuration.md store.wal_limit_mb). */
static long long wal_bytes(const ward_server *srv)
{
	char path[WARD_MAX_PATH_LEN + 16];
	struct stat sb;

	if (snprintf(path, sizeof(path), "%s-wal", srv->db_path) >= (int)sizeof(path) || stat(path, &sb) != 0)
		return 0;
	return (long long)sb.st_size;
}

static enum MHD_Result handle_metrics(request *rq, struct MHD_Connection *conn)
{
	ward_buf b;
	char *text = NULL;
	size_t len = 0;

	ward_buf_init(&b, 1024 * 1024);
	if (ward_metrics_render(&b) < 0 ||
	    ward_buf_printf(&b,
	                    "# HELP ragward_refusing 1 while the server refuses to serve because the store failed"
	                    " its audit check (until restarted).\n"
	                    "# TYPE ragward_refusing gauge\n"
	                    "ragward_refusing %d\n"
	                    "# HELP ragward_store_checks_total Store checks (quick_check and the audit log against"
	                    " the anchor) run before serving a generation of the store.\n"
	                    "# TYPE ragward_store_checks_total counter\n"
	                    "ragward_store_checks_total %llu\n"
	                    "# HELP ragward_store_check_failures_total Failed store checks: a generation's check"
	                    " (check=\"store\") or a request that saw the audit log shrink (check=\"log_size\").\n"
	                    "# TYPE ragward_store_check_failures_total counter\n"
	                    "ragward_store_check_failures_total{check=\"store\"} %llu\n"
	                    "ragward_store_check_failures_total{check=\"log_size\"} %llu\n"
	                    "# HELP ragward_refused_requests_total Requests answered 503 because the server refuses"
	                    " to serve.\n"
	                    "# TYPE ragward_refused_requests_total counter\n"
	                    "ragward_refused_requests_total %llu\n"
	                    "# HELP ragward_store_wal_bytes Size of store.db-wal; above store.wal_limit_mb, a"
	                    " reader holds an old snapshot while writers commit.\n"
	                    "# TYPE ragward_store_wal_bytes gauge\n"
	                    "ragward_store_wal_bytes %lld\n",
	                    atomic_load(&rq->srv->refusing) ? 1 : 0, atomic_load(&rq->srv->checks_run),
	                    atomic_load(&rq->srv->checks_failed), atomic_load(&rq->srv->shrinks_seen),
	                    atomic_load(&rq->srv->refused), wal_bytes(rq->srv)) < 0 ||
	    ward_buf_detach(&b, &text, &len) < 0) {
		ward_buf_dispose(&b);
		return send_error(rq, conn, 500, "internal error");
	}
	return send_body(rq, conn, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, ward_free, NULL, NULL);
}

/* ---- routing ------------------------------------------------------------------------------ */

static double elapsed(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* The endpoint and the method it takes; NULL method: no such path. */
static ward_endpoint route(const char *url, const char **want, const char **chunk_id)
{
	*want = NULL;
	*chunk_id = NULL;
	if (strcmp(url, "/v1/search") == 0)
		return (*want = "POST"), WARD_EP_SEARCH;
	if (strcmp(url, "/v1/citations/check") == 0)
		return (*want = "POST"), WARD_EP_CITATIONS;
	if (strcmp(url, "/v1/keys") == 0)
		return (*want = "GET"), WARD_EP_KEYS;
	if (strcmp(url, "/healthz") == 0)
		return (*want = "GET"), WARD_EP_HEALTHZ;
	if (strcmp(url, "/metrics") == 0)
		return (*want = "GET"), WARD_EP_METRICS;
	if (strcmp(url, "/mcp") == 0)
		return (*want = "POST"), WARD_EP_MCP; /* and DELETE: see precheck */
	if (strncmp(url, "/v1/chunks/", 11) == 0) {
		const char *id = url + 11;
		size_t n = strlen(id);
		if (n == 0 || n > 18 || id[0] == '0')
			return WARD_EP_CHUNKS;
		for (size_t i = 0; i < n; i++)
			if (id[i] < '0' || id[i] > '9')
				return WARD_EP_CHUNKS;
		*chunk_id = id;
		return (*want = "GET"), WARD_EP_CHUNKS;
	}
	return WARD_EP_OTHER;
}

static void copy_printable(char *dst, size_t cap, const char *src)
{
	size_t o = 0;

	for (; src && *src && o + 1 < cap; src++)
		dst[o++] = (*src >= 0x20 && *src < 0x7f) ? *src : '?';
	dst[o] = '\0';
}

/* Checks of the first call, before any body is read. Returns 0 to go on, or
 * the result of the error response queued. */
static int precheck(request *rq, struct MHD_Connection *conn, const char *url, const char *method, enum MHD_Result *ret)
{
	ward_server *srv = rq->srv;
	const char *want, *chunk_id, *auth;
	int needs_auth;

	if (!host_allowed(srv, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST))) {
		ward_log(WARD_LOG_SECURITY, "http: refused a request with a foreign Host header (DNS rebinding?)");
		return (*ret = send_error(rq, conn, 403, "forbidden")), 1;
	}
	if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ORIGIN) ||
	    strcmp(method, "OPTIONS") == 0)
		return (*ret = send_error(rq, conn, 403, "browser requests are not served")), 1;
	if (srv->is_unix && !unix_peer_ok(conn))
		return (*ret = send_error(rq, conn, 403, "forbidden")), 1;
	rq->ep = route(url, &want, &chunk_id);
	/* Before the token: a store that failed its check is not trusted to
	 * say which tokens are valid either (a rollback revives revoked ones). */
	if (atomic_load(&srv->refusing) &&
	    (strncmp(url, "/v1/", 4) == 0 || rq->ep == WARD_EP_MCP || rq->ep == WARD_EP_HEALTHZ))
		return (*ret = send_refusing(rq, conn)), 1;
	needs_auth = strncmp(url, "/v1/", 4) == 0 || rq->ep == WARD_EP_METRICS || rq->ep == WARD_EP_MCP;
	if (needs_auth) {
		pooled p;
		size_t plen;
		int rc;

		auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
		if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
			return (*ret = send_error_hdr(rq, conn, 401, "unauthorized", MHD_HTTP_HEADER_WWW_AUTHENTICATE,
			                              "Bearer")),
			       1;
		if ((rc = pool_acquire(srv, &p, rq->ep == WARD_EP_METRICS)) < 0)
			return (*ret = send_unavailable(rq, conn, rc)), 1;
		plen = strlen(auth + 7);
		rc = ward_callers_authenticate(p.s, auth + 7, plen, &rq->caller);
		pool_release(srv, &p);
		if (rc == WARD_EPOLICY)
			return (*ret = send_error_hdr(rq, conn, 401, "unauthorized", MHD_HTTP_HEADER_WWW_AUTHENTICATE,
			                              "Bearer")),
			       1;
		if (rc < 0)
			return (*ret = send_lib_error(rq, conn, rc)), 1;
		rq->authed = 1;
	}
	if (!want)
		return (*ret = send_error(rq, conn, 404, "not found")), 1;
	/* MCP Streamable HTTP: POST a message, DELETE ends the session; no
	 * server-sent event stream, so GET is 405 (which the SDK accepts). */
	if (rq->ep == WARD_EP_MCP && strcmp(method, "DELETE") == 0)
		return 0;
	if (rq->ep == WARD_EP_MCP && strcmp(method, "POST") != 0)
		return (*ret = send_error_hdr(rq, conn, 405, "method not allowed", MHD_HTTP_HEADER_ALLOW, "POST, DELETE")),
		       1;
	if (strcmp(method, want) != 0)
		return (*ret = send_error_hdr(rq, conn, 405, "method not allowed", MHD_HTTP_HEADER_ALLOW, want)), 1;
	if (rq->is_post) {
		const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (!ct || strncasecmp(ct, "application/json", 16) != 0 || (ct[16] && ct[16] != ';' && ct[16] != ' '))
			return (*ret = send_error(rq, conn, 415, "Content-Type must be application/json")), 1;
		if (cl) {
			char *end = NULL;
			unsigned long long v;
			errno = 0;
			v = strtoull(cl, &end, 10);
			if (errno || !end || *end || v > srv->o.body_max)
				return (*ret = send_error(rq, conn, 413, "request body too large")), 1;
		}
	}
	return 0;
}

/*
 * POST/DELETE /mcp: the MCP transport rules live in query/mcp.c; here the
 * authenticated caller becomes the session's identity, scoped to its labels.
 */
static enum MHD_Result handle_mcp(request *rq, struct MHD_Connection *conn, ward_store *s)
{
	ward_mcp_identity who;
	ward_mcp_http_request req;
	ward_mcp_http_reply reply;
	json_t *labels_json = NULL;
	const char **labels = NULL;
	size_t nlabels = 0;
	char caller[160];
	enum MHD_Result ret;

	if (ward_caller_labels(&rq->caller, &labels_json, &labels, &nlabels) < 0)
		return send_error(rq, conn, 500, "internal error");
	snprintf(caller, sizeof(caller), "token:%s", rq->caller.name);
	memset(&who, 0, sizeof(who));
	who.caller = caller;
	who.labels = labels;
	who.nlabels = nlabels;
	memset(&req, 0, sizeof(req));
	req.session_id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Mcp-Session-Id");
	req.protocol_version = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "MCP-Protocol-Version");
	req.accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
	req.content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!rq->is_post) {
		int status = 400;
		ward_mcp_http_delete(rq->srv->mcp, &who, req.session_id, &status);
		ret = send_body(rq, conn, (unsigned)status, "application/json", (char *)"", 0, NULL, NULL, NULL);
		goto done;
	}
	memset(&reply, 0, sizeof(reply));
	if (ward_mcp_http_post(rq->srv->mcp, s, &who, &req, rq->body.ptr ? rq->body.ptr : "", rq->body.len, &reply) <
	    0) {
		ret = send_error(rq, conn, 500, "internal error");
		goto done;
	}
	if (reply.body) {
		char *body = reply.body;
		reply.body = NULL; /* handed to libmicrohttpd, freed by it */
		ret = send_body(rq, conn, (unsigned)reply.status, "application/json", body, strlen(body), ward_free,
		                reply.session_id[0] ? "Mcp-Session-Id" : NULL, reply.session_id);
	} else {
		ret = send_body(rq, conn, (unsigned)reply.status, "application/json", (char *)"", 0, NULL,
		                reply.session_id[0] ? "Mcp-Session-Id" : NULL, reply.session_id);
	}
	ward_mcp_http_reply_dispose(&reply);
done:
	ward_free(labels);
	json_decref(labels_json);
	return ret;
}

static enum MHD_Result dispatch(request *rq, struct MHD_Connection *conn, const char *url)
{
	const char *want, *chunk_id;
	enum MHD_Result ret;
	pooled p;
	int rc;

	(void)route(url, &want, &chunk_id);
	if (rq->ep == WARD_EP_METRICS)
		return handle_metrics(rq, conn);
	if ((rc = pool_acquire(rq->srv, &p, 0)) < 0)
		return send_unavailable(rq, conn, rc);
	/* Search and healthz read the log size anyway and guard with it. */
	if (rq->ep != WARD_EP_SEARCH && rq->ep != WARD_EP_HEALTHZ && (rc = log_guard_read(rq->srv, &p)) < 0) {
		ret = send_unavailable(rq, conn, rc);
		pool_release(rq->srv, &p);
		return ret;
	}
	switch (rq->ep) {
	case WARD_EP_HEALTHZ: {
		uint64_t high = atomic_load(&rq->srv->log_high);
		int64_t size = 0;
		int found = 0;
		if (ward_store_checkpoint_size(p.s, &size, &found) < 0) {
			ward_log(WARD_LOG_ERROR, "http: healthz: %s", ward_error_last()->message);
			ret = send_json(rq, conn, 503, json_pack("{s:b, s:s}", "ok", 0, "error", "store unreadable"));
		} else if ((rc = log_guard(rq->srv, &p, high, size, found)) < 0) {
			ret = send_unavailable(rq, conn, rc);
		} else {
			static const char ok[] = "{\"ok\":true}";
			ret = send_body(rq, conn, 200, "application/json", (char *)ok, sizeof(ok) - 1, NULL, NULL,
			                NULL);
		}
		break;
	}
	case WARD_EP_SEARCH:
		ret = handle_search(rq, conn, &p);
		break;
	case WARD_EP_CITATIONS:
		ret = handle_cite(rq, conn, p.s);
		break;
	case WARD_EP_KEYS:
		ret = handle_keys(rq, conn, p.s);
		break;
	case WARD_EP_CHUNKS:
		ret = handle_chunk(rq, conn, p.s, chunk_id);
		break;
	case WARD_EP_MCP:
		ret = handle_mcp(rq, conn, p.s);
		break;
	default:
		ret = send_error(rq, conn, 404, "not found");
		break;
	}
	pool_release(rq->srv, &p);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
	ward_server *srv = cls;
	request *rq = *con_cls;
	enum MHD_Result ret;

	(void)version;
	if (!rq) {
		if (!(rq = ward_calloc(1, sizeof(*rq))))
			return MHD_NO;
		rq->srv = srv;
		rq->ep = WARD_EP_OTHER;
		clock_gettime(CLOCK_MONOTONIC, &rq->t0);
		copy_printable(rq->method, sizeof(rq->method), method);
		copy_printable(rq->path, sizeof(rq->path), url);
		rq->is_post = strcmp(method, "POST") == 0;
		ward_buf_init(&rq->body, srv->o.body_max);
		*con_cls = rq;
		atomic_fetch_add(&srv->inflight, 1);
		if (precheck(rq, conn, url, method, &ret))
			return ret;
		if (rq->is_post)
			return MHD_YES; /* the body follows */
		return dispatch(rq, conn, url);
	}
	if (*upload_data_size) {
		rq->seen += *upload_data_size;
		if (!rq->too_big && ward_buf_append(&rq->body, upload_data, *upload_data_size) < 0)
			rq->too_big = 1;
		*upload_data_size = 0;
		/* MHD cannot answer in the middle of a body; a body far past
		 * the cap (an endless chunked one) is cut off instead. */
		if (rq->too_big && rq->seen / BODY_DISCARD_FACTOR > srv->o.body_max) {
			ward_log(WARD_LOG_WARN, "http %s %s: body far over the cap; connection closed", rq->method,
			         rq->path);
			return MHD_NO;
		}
		return MHD_YES;
	}
	if (rq->status)
		return MHD_YES; /* answered already */
	if (rq->too_big)
		return send_error(rq, conn, 413, "request body too large");
	return dispatch(rq, conn, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	ward_server *srv = cls;
	request *rq = *con_cls;
	double secs;

	(void)conn;
	if (!rq)
		return;
	secs = elapsed(&rq->t0);
	ward_metrics_request(rq->ep, rq->status, secs);
	ward_log(WARD_LOG_INFO, "http %s %s status=%u ms=%.2f caller=%s%s", rq->method, rq->path, rq->status,
	         secs * 1000.0, rq->authed ? rq->caller.name : "-",
	         toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted");
	ward_buf_dispose(&rq->body);
	ward_caller_dispose(&rq->caller);
	ward_free(rq);
	*con_cls = NULL;
	atomic_fetch_sub(&srv->inflight, 1);
}

WARD_PRINTF(2, 0) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\r\n")] = '\0';
	ward_log(WARD_LOG_DEBUG, "libmicrohttpd: %s", msg);
}

/* ---- start / stop ---------------------------------------------------------------------------- */

/* Trace records are written at once but synced in batches, on the next
 * append after the batch window (store/traces.c). Without more traffic the
 * last ones would wait for the next query or the exit; this thread syncs
 * them every TRACE_FLUSH_MS until ward_server_stop signals it. */
static void *trace_flusher(void *arg)
{
	ward_server *srv = arg;
	struct timespec until;

	pthread_mutex_lock(&srv->fl_mu);
	while (!srv->fl_stop) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += TRACE_FLUSH_MS / 1000;
		until.tv_nsec += (long)(TRACE_FLUSH_MS % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!srv->fl_stop && pthread_cond_timedwait(&srv->fl_cv, &srv->fl_mu, &until) == 0)
			;
		if (srv->fl_stop)
			break;
		pthread_mutex_unlock(&srv->fl_mu);
		if (ward_trace_flush() < 0)
			ward_log(WARD_LOG_ERROR, "%s", ward_error_last()->message);
		pthread_mutex_lock(&srv->fl_mu);
	}
	pthread_mutex_unlock(&srv->fl_mu);
	return NULL;
}

static int flusher_start(ward_server *srv)
{
	pthread_condattr_t ca;
	int err;

	if (pthread_condattr_init(&ca) != 0)
		return ward_error_set(WARD_ENOMEM, "out of memory");
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	err = pthread_cond_init(&srv->fl_cv, &ca);
	pthread_condattr_destroy(&ca);
	if (err != 0)
		return ward_error_set(WARD_ENOMEM, "cannot create the trace flusher: %s", strerror(err));
	pthread_mutex_init(&srv->fl_mu, NULL);
	if ((err = pthread_create(&srv->flusher, NULL, trace_flusher, srv)) != 0) {
		pthread_cond_destroy(&srv->fl_cv);
		pthread_mutex_destroy(&srv->fl_mu);
		return ward_error_set(WARD_EIO, "cannot start the trace flusher: %s", strerror(err));
	}
	srv->fl_running = 1;
	return 0;
}

static void flusher_stop(ward_server *srv)
{
	if (!srv->fl_running)
		return;
	pthread_mutex_lock(&srv->fl_mu);
	srv->fl_stop = 1;
	pthread_cond_signal(&srv->fl_cv);
	pthread_mutex_unlock(&srv->fl_mu);
	pthread_join(srv->flusher, NULL);
	pthread_cond_destroy(&srv->fl_cv);
	pthread_mutex_destroy(&srv->fl_mu);
	srv->fl_running = 0;
	if (ward_trace_flush() < 0)
		ward_log(WARD_LOG_ERROR, "%s", ward_error_last()->message);
}

int ward_server_start(ward_server **out, const char *home, const ward_server_opts *opts)
{
	ward_server *srv = NULL;
	ward_server_opts o;
	listen_addr la;
	pooled first;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	int rc;

	*out = NULL;
	memset(&first, 0, sizeof(first));
	memset(&la, 0, sizeof(la));
	if (opts)
		o = *opts;
	else
		ward_server_opts_init(&o);
	if (o.threads == 0 || o.threads > 256)
		return ward_error_set(WARD_EINVAL, "threads must be between 1 and 256");
	if (o.body_max == 0 || o.conn_limit == 0 || o.timeout_s == 0 || o.conn_memory < 4096)
		return ward_error_set(WARD_EINVAL, "server limits must not be zero");
	if (!o.unix_path) {
		if ((rc = parse_listen(&la, o.listen ? o.listen : WARD_SERVER_DEFAULT_LISTEN)) < 0)
			return rc;
		if (!is_loopback(&la) && !o.allow_remote)
			return ward_error_set(
			        WARD_EPOLICY,
			        "refusing to listen on '%s': not a loopback address (pass --allow-remote to"
			        " expose the server beyond this machine)",
			        o.listen ? o.listen : WARD_SERVER_DEFAULT_LISTEN);
	}
	if (!(srv = ward_calloc(1, sizeof(*srv))))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	srv->o = o;
	srv->listen_fd = -1;
	srv->is_unix = o.unix_path != NULL;
	pthread_mutex_init(&srv->mu, NULL);
	pthread_mutex_init(&srv->check_mu, NULL);
	srv->pool_cap = (size_t)o.threads * 2;
	if (!(srv->home = ward_strdup(home)) || !(srv->pool = ward_calloc(srv->pool_cap, sizeof(*srv->pool))) ||
	    !(srv->db_path = ward_malloc(strlen(home) + 16)) || ward_mcp_registry_new(&srv->mcp, 0, 0) < 0) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto fail;
	}
	snprintf(srv->db_path, strlen(home) + 16, "%s/store.db", home);
	srv->o.listen = NULL;
	srv->o.unix_path = NULL;
	srv->o.extra_hosts = NULL;
	/* Fail now, not at the first request, when HOME is not a store, it
	 * fails its check (the first generation's, in pool_acquire) or its
	 * trace file cannot be used (traces.path). */
	if ((rc = pool_acquire(srv, &first, 0)) < 0)
		goto fail;
	if (!srv->o.no_trace && (rc = ward_trace_check(first.s)) < 0) {
		pool_release(srv, &first);
		goto fail;
	}
	pool_release(srv, &first);
	if ((rc = flusher_start(srv)) < 0)
		goto fail;

#define COMMON_OPTIONS                                                                                                 \
	MHD_OPTION_CONNECTION_LIMIT, (unsigned int)o.conn_limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT,                   \
	        (unsigned int)o.per_ip_limit, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)o.timeout_s,                \
	        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)o.conn_memory, MHD_OPTION_LISTEN_BACKLOG_SIZE,             \
	        (unsigned int)128, MHD_OPTION_STRICT_FOR_CLIENT, (int)1, MHD_OPTION_THREAD_POOL_SIZE,                  \
	        (unsigned int)o.threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)srv,                       \
	        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, (void *)NULL

	if (srv->is_unix) {
		if (!(srv->unix_path = ward_strdup(o.unix_path))) {
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto fail;
		}
		if ((rc = unix_listen(srv, o.unix_path)) < 0) {
			ward_free(srv->unix_path);
			srv->unix_path = NULL;
			goto fail;
		}
		srv->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, COMMON_OPTIONS,
		                          MHD_OPTION_LISTEN_SOCKET, (MHD_socket)srv->listen_fd, MHD_OPTION_END);
	} else {
		if (la.family == AF_INET6)
			flags |= MHD_USE_IPv6;
		srv->d = MHD_start_daemon(
		        flags, la.port, NULL, NULL, on_request, srv, COMMON_OPTIONS, MHD_OPTION_SOCK_ADDR,
		        la.family == AF_INET6 ? (struct sockaddr *)&la.v6 : (struct sockaddr *)&la.v4, MHD_OPTION_END);
	}
#undef COMMON_OPTIONS
	if (!srv->d) {
		rc = ward_error_set(WARD_EIO, "cannot start the HTTP server on '%s' (address in use?)",
		                    srv->is_unix ? o.unix_path : (o.listen ? o.listen : WARD_SERVER_DEFAULT_LISTEN));
		goto fail;
	}
	if (!srv->is_unix) {
		const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
		srv->port = di ? di->port : la.port;
	}
	if ((rc = build_hosts(srv, &la)) < 0)
		goto fail;
	ward_log(WARD_LOG_INFO, "serving on %s%s%s:%u", srv->is_unix ? "unix:" : "",
	         srv->is_unix ? srv->unix_path : (la.family == AF_INET6 ? "[" : ""), srv->is_unix ? "" : la.host,
	         (unsigned)srv->port);
	*out = srv;
	return 0;
fail:
	ward_server_stop(srv);
	return rc;
}

uint16_t ward_server_port(const ward_server *srv)
{
	return srv ? srv->port : 0;
}

void ward_server_stop(ward_server *srv)
{
	if (!srv)
		return;
	if (srv->d) {
		/* Stop accepting, let the requests in flight finish, then stop. */
		MHD_socket fd = MHD_quiesce_daemon(srv->d);
		struct timespec t0, nap = {0, 10 * 1000 * 1000};
		if (fd != MHD_INVALID_SOCKET && fd != srv->listen_fd)
			close(fd);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (atomic_load(&srv->inflight) > 0 && elapsed(&t0) < (double)srv->o.drain_s)
			nanosleep(&nap, NULL);
		MHD_stop_daemon(srv->d);
	}
	flusher_stop(srv); /* after the last request: its trace is synced too */
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	if (srv->unix_path) {
		unlink(srv->unix_path);
		ward_free(srv->unix_path);
	}
	for (size_t i = 0; i < srv->npool; i++)
		pool_close(&srv->pool[i]);
	for (size_t i = 0; i < srv->nhosts; i++)
		ward_free(srv->hosts[i]);
	pthread_mutex_destroy(&srv->mu);
	pthread_mutex_destroy(&srv->check_mu);
	ward_mcp_registry_free(srv->mcp);
	ward_free(srv->pool);
	ward_free(srv->db_path);
	ward_free(srv->home);
	ward_free(srv);
}
