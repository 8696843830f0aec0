/*
 * The retrieval trace sinks (docs/retrieval.md "Traces"): a file, one JSON
 * object per line, append-only, and/or syslog. The file is kept outside the
 * database on purpose (DESIGN.md "Query shim"): the shim opens the store
 * read-only, and the security team ships the file elsewhere.
 *
 * The file is a hash chain (ragward/traces.h): each line's "prev" is the
 * SHA-256 of the line before. An appender holds flock(LOCK_EX) while it finds
 * the last line (from its own memory when the file has not grown since its
 * last append, else by a bounded read from the end) and writes its line with
 * one write() on an O_APPEND descriptor. One descriptor per process stays
 * open; a path that now names another file (rotated, removed, replaced) is
 * reopened, and the new file starts a new chain.
 *
 * Durability is batched (DESIGN.md: "fsync'd in batches"): a record is
 * written before the call returns (it survives a crash of the process), but
 * fdatasync runs at most once per WARD_TRACE_SYNC_MS or every
 * WARD_TRACE_SYNC_RECORDS records, on the next append after that, on
 * ward_trace_flush (a server calls it from a timer) and at exit. A power loss
 * can lose the records of the last window. traces.sync in config.yaml
 * overrides the caller's choice.
 */
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "ragward/crypto.h"
#include "ragward/log.h"
#include "ragward/retrieve.h"
#include "ragward/traces.h"
#include "core/limits.h"
#include "core/banned.h"

#define TAIL_BLOCK    (64 * 1024)    /* bytes read at a time, backwards, to find the last line */
#define PREV_FIELD    ",\"prev\":\"" /* spliced before the record's closing brace */
#define PREV_OVERHEAD (sizeof(PREV_FIELD) - 1 + 2 * WARD_SHA256_LEN + 2 + 1)

/* The open trace file, its chain head and its unsynced records. */
static struct {
	pthread_mutex_t mu;
	int fd; /* -1: none open */
	pid_t pid; /* the process that opened fd (a forked child opens its own) */
	char path[WARD_MAX_PATH_LEN + 1];
	dev_t dev;
	ino_t ino;
	off_t known_size;              /* the size after our last append; -1: unknown */
	uint8_t last[WARD_SHA256_LEN]; /* hash of the last line when the size is known_size */
	unsigned pending;              /* records written and not yet synced */
	double last_sync;
	int atexit_done;
	ward_trace_syslog_fn syslog_fn;
	void *syslog_ctx;
	int syslog_opened;
} T = {.mu = PTHREAD_MUTEX_INITIALIZER, .fd = -1, .known_size = -1};

static double mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

int ward_trace_path(char *out, size_t outlen, const ward_store *s)
{
	const char *p = ward_store_config(s)->trace_path;
	int n = snprintf(out, outlen, "%s", p);

	if (n < 0 || (size_t)n >= outlen)
		return ward_error_set(WARD_ETOOBIG, "trace path is too long");
	return 0;
}

/* *fd := a duplicate of the descriptor for an fdatasync outside the lock,
 * when records are pending; -1 otherwise. Called with T.mu held. */
static int take_pending_locked(int *fd)
{
	*fd = -1;
	if (T.fd < 0 || T.pending == 0)
		return 0;
	T.pending = 0;
	T.last_sync = mono_ms();
	if ((*fd = fcntl(T.fd, F_DUPFD_CLOEXEC, 0)) >= 0)
		return 0;
	/* No descriptor to spare: sync through ours, under the lock. */
	if (fdatasync(T.fd) != 0)
		return ward_error_set(WARD_EIO, "'%s': cannot sync trace: %s", T.path, strerror(errno));
	return 0;
}

static int sync_and_close(int fd, const char *path)
{
	int rc = 0;

	if (fd < 0)
		return 0;
	if (fdatasync(fd) != 0)
		rc = ward_error_set(WARD_EIO, "'%s': cannot sync trace: %s", path, strerror(errno));
	close(fd);
	return rc;
}

int ward_trace_flush(void)
{
	char path[sizeof(T.path)];
	int fd;

	int rc;

	pthread_mutex_lock(&T.mu);
	rc = take_pending_locked(&fd);
	memcpy(path, T.path, sizeof(path));
	pthread_mutex_unlock(&T.mu);
	return rc < 0 ? rc : sync_and_close(fd, path);
}

unsigned ward_trace_unsynced(void)
{
	unsigned n;

	pthread_mutex_lock(&T.mu);
	n = T.fd >= 0 ? T.pending : 0;
	pthread_mutex_unlock(&T.mu);
	return n;
}

static void flush_at_exit(void)
{
	int rc = ward_trace_flush();
	(void)rc; /* nobody left to tell */
}

/* Syncs what is pending and closes the file. Called with T.mu held. */
static int close_locked(void)
{
	int rc = 0;

	if (T.fd < 0)
		return 0;
	if (T.pending && fdatasync(T.fd) != 0)
		rc = ward_error_set(WARD_EIO, "'%s': cannot sync trace: %s", T.path, strerror(errno));
	close(T.fd);
	T.fd = -1;
	T.pending = 0;
	T.known_size = -1;
	return rc;
}

/* The file must be ours alone: a regular file, owned by this user, not
 * writable by group or others (someone who can write it can forge lines). */
static int check_file(const struct stat *sb, const char *path)
{
	if (!S_ISREG(sb->st_mode))
		return ward_error_set(WARD_EIO, "'%s': trace file is not a regular file", path);
	if (sb->st_uid != geteuid())
		return ward_error_set(WARD_EIO, "'%s': trace file belongs to another user (uid %ld)", path,
		                      (long)sb->st_uid);
	if (sb->st_mode & (S_IWGRP | S_IWOTH))
		return ward_error_set(WARD_EIO, "'%s': trace file is writable by group or others (mode %03o)", path,
		                      (unsigned)(sb->st_mode & 0777));
	return 0;
}

/* Whoever can write the directory can replace the file (between our
 * appends) unless the directory is sticky. */
static int check_dir(const char *path)
{
	char dir[WARD_MAX_PATH_LEN + 1];
	const char *slash = strrchr(path, '/');
	struct stat sb;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (stat(dir, &sb) != 0)
		return ward_error_set(WARD_EIO, "'%s': cannot inspect the trace directory: %s", dir, strerror(errno));
	if ((sb.st_mode & (S_IWGRP | S_IWOTH)) && !(sb.st_mode & S_ISVTX))
		return ward_error_set(WARD_EIO,
		                      "'%s': trace directory is writable by group or others (mode %03o); the trace"
		                      " file could be replaced",
		                      dir, (unsigned)(sb.st_mode & 0777));
	return 0;
}

/* Makes T.fd the open file at `path`. Called with T.mu held. */
static int open_locked(const char *path)
{
	struct stat sb;
	int fd, rc, err;

	if (T.fd >= 0 && T.pid == getpid() && strcmp(T.path, path) == 0 && lstat(path, &sb) == 0 &&
	    sb.st_dev == T.dev && sb.st_ino == T.ino)
		return 0;
	/* Another path, or the file was rotated, removed or replaced, or this
	 * is a forked child: a descriptor inherited across fork shares its open
	 * file description, and with it the flock, with the parent, so the lock
	 * would not keep the two apart and the chain would fork too. */
	if ((rc = close_locked()) < 0)
		ward_log(WARD_LOG_ERROR, "%s", ward_error_last()->message);
	if (strlen(path) >= sizeof(T.path))
		return ward_error_set(WARD_ETOOBIG, "trace path is too long");
	if ((rc = check_dir(path)) < 0)
		return rc;
	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
	if (fd < 0) {
		err = errno;
		return ward_error_set(WARD_EIO, "'%s': cannot open trace file: %s", path,
		                      err == ELOOP ? "it is a symbolic link" : strerror(err));
	}
	if (fstat(fd, &sb) != 0) {
		rc = ward_error_set(WARD_EIO, "'%s': cannot inspect trace file: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	if ((rc = check_file(&sb, path)) < 0) {
		close(fd);
		return rc;
	}
	T.fd = fd;
	T.pid = getpid();
	memcpy(T.path, path, strlen(path) + 1);
	T.dev = sb.st_dev;
	T.ino = sb.st_ino;
	T.known_size = -1;
	T.pending = 0;
	return 0;
}

static int pread_full(int fd, char *buf, size_t n, off_t at, const char *path)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, buf + got, n - got, at + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return ward_error_set(WARD_EIO, "'%s': cannot read trace file: %s", path,
			                      r < 0 ? strerror(errno) : "file shrank");
		got += (size_t)r;
	}
	return 0;
}

/*
 * T.last := the hash of the file's last line, found by reading backwards at
 * most WARD_TRACE_MAX_LINE bytes. *torn is 1 when the file does not end with
 * a newline (a write cut short): the next append must end that line first.
 * Called with T.mu and the flock held.
 */
static int tail_locked(off_t size, int *torn)
{
	char *buf = NULL;
	ward_sha256_ctx *h = NULL;
	off_t end, start = 0, pos;
	int rc = 0;

	*torn = 0;
	if (size == 0)
		return ward_sha256(T.last, "", 0);
	if (!(buf = ward_malloc(TAIL_BLOCK)))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	if ((rc = pread_full(T.fd, buf, 1, size - 1, T.path)) < 0)
		goto done;
	end = buf[0] == '\n' ? size - 1 : size;
	*torn = buf[0] != '\n';
	for (pos = end; pos > 0;) {
		size_t n = pos > TAIL_BLOCK ? TAIL_BLOCK : (size_t)pos;
		char *nl;

		if (end - pos >= WARD_TRACE_MAX_LINE) {
			rc = ward_error_set(WARD_ETOOBIG,
			                    "'%s': the last trace line is longer than %d bytes; the hash chain cannot"
			                    " continue (move the file aside)",
			                    T.path, WARD_TRACE_MAX_LINE);
			goto done;
		}
		if ((rc = pread_full(T.fd, buf, n, pos - (off_t)n, T.path)) < 0)
			goto done;
		for (nl = buf + n; nl > buf && nl[-1] != '\n'; nl--)
			;
		if (nl > buf) {
			start = pos - (off_t)n + (nl - buf);
			break;
		}
		pos -= (off_t)n;
	}
	if ((rc = ward_sha256_new(&h)) < 0)
		goto done;
	for (pos = start; pos < end;) {
		size_t n = end - pos > TAIL_BLOCK ? TAIL_BLOCK : (size_t)(end - pos);
		if ((rc = pread_full(T.fd, buf, n, pos, T.path)) < 0 || (rc = ward_sha256_update(h, buf, n)) < 0)
			goto done;
		pos += (off_t)n;
	}
	rc = ward_sha256_final(h, T.last);
done:
	ward_sha256_free(h);
	ward_free(buf);
	return rc;
}

static int write_all(int fd, const char *p, size_t len, const char *path)
{
	size_t off = 0;

	while (off < len) {
		ssize_t w = write(fd, p + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return ward_error_set(WARD_EIO, "'%s': cannot append trace: %s", path,
			                      w < 0 ? strerror(errno) : "short write");
		off += (size_t)w;
	}
	return 0;
}

/*
 * Appends body (a compact JSON object, no newline) with "prev" spliced in.
 * `line` receives the line as written, without its newline (for syslog).
 */
static int file_append(const char *path, const char *body, size_t blen, int sync, ward_buf *line)
{
	char hex[2 * WARD_SHA256_LEN + 1];
	struct stat sb;
	int rc, torn = 0, locked = 0, syncfd = -1;
	size_t nl;

	pthread_mutex_lock(&T.mu);
	if (!T.atexit_done) {
		T.atexit_done = 1;
		atexit(flush_at_exit);
	}
	if ((rc = open_locked(path)) < 0)
		goto done;
	while ((rc = flock(T.fd, LOCK_EX)) != 0 && errno == EINTR)
		;
	if (rc != 0) {
		rc = ward_error_set(WARD_EIO, "'%s': cannot lock trace file: %s", path, strerror(errno));
		goto done;
	}
	locked = 1;
	if (fstat(T.fd, &sb) != 0) {
		rc = ward_error_set(WARD_EIO, "'%s': cannot inspect trace file: %s", path, strerror(errno));
		goto done;
	}
	if ((rc = check_file(&sb, path)) < 0)
		goto done;
	if (sb.st_size != T.known_size && (rc = tail_locked(sb.st_size, &torn)) < 0)
		goto done;
	ward_hex_encode_to(hex, T.last, WARD_SHA256_LEN);
	/* "\n" (ending a torn line), body without its "}", the prev field,
	 * "}\n". An empty object gets no comma. */
	ward_buf_reset(line);
	if ((torn && (rc = ward_buf_putc(line, '\n')) < 0) || (rc = ward_buf_append(line, body, blen - 1)) < 0 ||
	    (rc = ward_buf_puts(line, blen == 2 ? PREV_FIELD + 1 : PREV_FIELD)) < 0 ||
	    (rc = ward_buf_puts(line, hex)) < 0 || (rc = ward_buf_puts(line, "\"}\n")) < 0) {
		rc = rc == WARD_ENOMEM
		             ? ward_error_set(rc, "out of memory")
		             : ward_error_set(rc, "trace record is larger than %d bytes", WARD_TRACE_MAX_LINE);
		goto done;
	}
	if ((rc = write_all(T.fd, line->ptr, line->len, path)) < 0) {
		T.known_size = -1; /* part of it may be there: read the tail next time */
		goto done;
	}
	nl = (size_t)torn;
	T.known_size = sb.st_size + (off_t)line->len;
	if ((rc = ward_sha256(T.last, line->ptr + nl, line->len - nl - 1)) < 0) {
		T.known_size = -1;
		goto done;
	}
	if (sync == WARD_TRACE_SYNC_NOW || sync == WARD_TRACE_SYNC_BATCH)
		T.pending++;
	if (sync == WARD_TRACE_SYNC_NOW ||
	    (sync == WARD_TRACE_SYNC_BATCH &&
	     (T.pending >= WARD_TRACE_SYNC_RECORDS || mono_ms() - T.last_sync >= WARD_TRACE_SYNC_MS))) {
		if ((rc = take_pending_locked(&syncfd)) < 0)
			goto done;
	}
	/* the caller's copy for syslog: the line without "\n" */
	if (torn)
		memmove(line->ptr, line->ptr + 1, line->len - 1);
	line->len -= 1 + nl;
	line->ptr[line->len] = '\0';
	rc = 0;
done:
	if (locked)
		flock(T.fd, LOCK_UN);
	pthread_mutex_unlock(&T.mu);
	if (rc == 0)
		rc = sync_and_close(syncfd, path);
	else if (syncfd >= 0)
		close(syncfd);
	return rc;
}

static void default_syslog(void *ctx, int priority, const char *line)
{
	(void)ctx;
	syslog(priority, "%s", line);
}

/* Sends one line, cut to WARD_TRACE_SYSLOG_MAX bytes on a UTF-8 boundary
 * with a marker naming the whole line's size and hash. */
static void syslog_send(int facility, int level, const char *line, size_t len)
{
	char msg[WARD_TRACE_SYSLOG_MAX + 1], marker[128], hex[2 * WARD_SHA256_LEN + 1] = "unavailable";
	uint8_t h[WARD_SHA256_LEN];
	ward_trace_syslog_fn fn;
	void *ctx;

	if (len <= WARD_TRACE_SYSLOG_MAX) {
		memcpy(msg, line, len);
		msg[len] = '\0';
	} else {
		size_t mlen, cut;

		if (ward_sha256(h, line, len) == 0)
			ward_hex_encode_to(hex, h, sizeof(h));
		mlen = (size_t)snprintf(marker, sizeof(marker), " [truncated: %zu bytes, sha256 %s]", len, hex);
		cut = WARD_TRACE_SYSLOG_MAX - mlen;
		while (cut > 0 && ((unsigned char)line[cut] & 0xc0) == 0x80)
			cut--; /* never end inside a UTF-8 sequence */
		memcpy(msg, line, cut);
		memcpy(msg + cut, marker, mlen + 1);
	}
	pthread_mutex_lock(&T.mu);
	fn = T.syslog_fn;
	ctx = T.syslog_ctx;
	if (!fn && !T.syslog_opened) {
		openlog("ragward", LOG_PID, facility);
		T.syslog_opened = 1;
	}
	pthread_mutex_unlock(&T.mu);
	(fn ? fn : default_syslog)(ctx, facility | level, msg);
}

void ward_trace_set_syslog_sink(ward_trace_syslog_fn fn, void *ctx)
{
	pthread_mutex_lock(&T.mu);
	T.syslog_fn = fn;
	T.syslog_ctx = fn ? ctx : NULL;
	pthread_mutex_unlock(&T.mu);
}

int ward_trace_append(ward_store *s, const json_t *record, int sync)
{
	const ward_config *cfg = ward_store_config(s);
	ward_buf line;
	char *body = NULL;
	size_t blen;
	json_int_t withheld;
	int rc;

	ward_buf_init(&line, WARD_TRACE_MAX_LINE + 1);
	if (cfg->trace_sync >= 0)
		sync = cfg->trace_sync; /* the operator's setting wins */
	if (!json_is_object(record) || json_object_get(record, "prev"))
		return ward_error_set(WARD_EINVAL, "trace record must be a JSON object without \"prev\"");
	if (!(body = json_dumps(record, JSON_COMPACT | JSON_ENSURE_ASCII)))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	blen = strlen(body);
	if (blen + PREV_OVERHEAD > WARD_TRACE_MAX_LINE) {
		rc = ward_error_set(WARD_ETOOBIG, "trace record is larger than %d bytes", WARD_TRACE_MAX_LINE);
		goto done;
	}
	if ((cfg->trace_sink & WARD_TRACE_SINK_FILE) &&
	    (rc = file_append(cfg->trace_path, body, blen, sync, &line)) < 0)
		goto done;
	if (cfg->trace_sink & WARD_TRACE_SINK_SYSLOG) {
		/* A retrieval that withheld tampered chunks stands out. */
		withheld = json_integer_value(json_object_get(record, "withheld"));
		if (cfg->trace_sink & WARD_TRACE_SINK_FILE)
			syslog_send(cfg->trace_facility, withheld > 0 ? LOG_NOTICE : LOG_INFO, line.ptr, line.len);
		else
			syslog_send(cfg->trace_facility, withheld > 0 ? LOG_NOTICE : LOG_INFO, body, blen);
	}
	rc = 0;
done:
	ward_buf_dispose(&line);
	ward_free(body);
	return rc;
}

int ward_trace_check(ward_store *s)
{
	const ward_config *cfg = ward_store_config(s);
	int rc = 0;

	if (!(cfg->trace_sink & WARD_TRACE_SINK_FILE))
		return 0;
	pthread_mutex_lock(&T.mu);
	rc = open_locked(cfg->trace_path);
	pthread_mutex_unlock(&T.mu);
	return rc;
}

static int is_trace_id(const char *id)
{
	size_t i;

	for (i = 0; id[i]; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return i == 32;
}

/* Reads the file line by line; a line longer than WARD_TRACE_MAX_LINE or not
 * valid JSON is skipped (the file is append-only, a torn last line is
 * possible after a crash). */
int ward_trace_find(ward_store *s, const char *trace_id, json_t **out)
{
	char path[WARD_MAX_PATH_LEN + 32];
	FILE *fp = NULL;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	json_t *found = NULL;
	int fd, rc;

	*out = NULL;
	if (!trace_id || !is_trace_id(trace_id))
		return ward_error_set(WARD_EINVAL, "'%s' is not a trace id (32 lowercase hex characters)",
		                      trace_id ? trace_id : "");
	if ((rc = ward_trace_path(path, sizeof(path), s)) < 0)
		return rc;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return ward_error_set(WARD_ENOTFOUND, "trace '%s' does not exist (no trace file)", trace_id);
		return ward_error_set(WARD_EIO, "'%s': cannot open trace file: %s", path, strerror(errno));
	}
	if (!(fp = fdopen(fd, "r"))) {
		close(fd);
		return ward_error_set(WARD_EIO, "'%s': cannot read trace file: %s", path, strerror(errno));
	}
	while ((n = getline(&line, &cap, fp)) >= 0) {
		json_t *rec;
		const char *id;

		if ((size_t)n > WARD_TRACE_MAX_LINE || !strstr(line, trace_id))
			continue;
		if (!(rec = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, NULL)))
			continue;
		id = json_string_value(json_object_get(rec, "trace_id"));
		if (id && strcmp(id, trace_id) == 0) {
			json_decref(found);
			found = rec;
		} else {
			json_decref(rec);
		}
	}
	if (ferror(fp)) {
		rc = ward_error_set(WARD_EIO, "'%s': cannot read trace file", path);
		goto done;
	}
	if (!found) {
		rc = ward_error_set(WARD_ENOTFOUND, "trace '%s' does not exist", trace_id);
		goto done;
	}
	*out = found;
	found = NULL;
	rc = 0;
done:
	json_decref(found);
	free(line); /* getline allocates with malloc */
	fclose(fp);
	return rc;
}

static int is_sha256_hex(const char *h)
{
	size_t i;

	for (i = 0; h[i]; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			return 0;
	return i == 2 * WARD_SHA256_LEN;
}

/* The state of a chain check: the line being read and what came before. */
typedef struct {
	ward_buf line;                      /* the current line, capped at WARD_TRACE_MAX_LINE */
	int too_long;                       /* the current line went past the cap */
	size_t bytes;                       /* bytes of the current line read so far */
	ward_sha256_ctx *h;                 /* hash of the current line */
	char prev[2 * WARD_SHA256_LEN + 1]; /* hash of the last good line */
	long long lines, unchained;
	int chained;         /* a line with "prev" was seen */
	const char *problem; /* the first break, or NULL */
	const char *want;    /* a head recorded earlier, or NULL */
	int want_seen;       /* a good line hashes to `want` */
} chain_check;

/* One complete line (its newline just read): does it continue the chain? */
static int chain_line(chain_check *c)
{
	uint8_t digest[WARD_SHA256_LEN];
	char hex[2 * WARD_SHA256_LEN + 1];
	json_t *rec = NULL, *prev;
	int rc;

	c->lines++;
	rc = ward_sha256_final(c->h, digest);
	ward_sha256_free(c->h);
	c->h = NULL;
	if (rc < 0 || (rc = ward_sha256_new(&c->h)) < 0)
		return rc;
	ward_hex_encode_to(hex, digest, sizeof(digest));
	if (c->too_long)
		c->problem = "the line is longer than the longest trace record (1 MiB)";
	else if (c->line.len == 0)
		c->problem = "empty line";
	else if (!(rec = json_loadb(c->line.ptr, c->line.len, JSON_REJECT_DUPLICATES, NULL)) || !json_is_object(rec))
		c->problem = "not a JSON object (a torn or edited line)";
	else if (!(prev = json_object_get(rec, "prev"))) {
		if (c->chained)
			c->problem = "no \"prev\" in a line after the chain began";
		else
			c->unchained++;
	} else if (!json_is_string(prev) || !is_sha256_hex(json_string_value(prev)))
		c->problem = "\"prev\" is not a SHA-256 in lowercase hex";
	else if (strcmp(json_string_value(prev), c->prev) != 0)
		c->problem = c->lines == 1 ? "\"prev\" of the first line is not the genesis value (lines removed from"
		                             " the start of the file?)"
		                           : "\"prev\" does not match the line before (a line was changed, removed or"
		                             " reordered)";
	else
		c->chained = 1;
	json_decref(rec);
	if (!c->problem) {
		memcpy(c->prev, hex, sizeof(hex));
		if (c->want && strcmp(c->want, hex) == 0)
			c->want_seen = 1;
	}
	ward_buf_reset(&c->line);
	c->too_long = 0;
	c->bytes = 0;
	return 0;
}

/* Feeds bytes of the file to the check, line by line, until a break. */
static int chain_feed(chain_check *c, const char *p, size_t n)
{
	int rc;

	while (n > 0 && !c->problem) {
		const char *nl = memchr(p, '\n', n);
		size_t seg = nl ? (size_t)(nl - p) : n;

		if ((rc = ward_sha256_update(c->h, p, seg)) < 0)
			return rc;
		c->bytes += seg;
		if (!c->too_long && (rc = ward_buf_append(&c->line, p, seg)) < 0) {
			if (rc != WARD_ETOOBIG)
				return ward_error_set(rc, "out of memory");
			c->too_long = 1;
		}
		if (!nl)
			break;
		if ((rc = chain_line(c)) < 0)
			return rc;
		p = nl + 1;
		n -= seg + 1;
	}
	return 0;
}

int ward_trace_verify(const char *path, const char *expect_head, json_t **out)
{
	chain_check c;
	char *buf = NULL;
	struct stat sb;
	json_t *broken = NULL;
	long long at;
	int fd, rc;

	*out = NULL;
	memset(&c, 0, sizeof(c));
	ward_buf_init(&c.line, WARD_TRACE_MAX_LINE);
	memcpy(c.prev, WARD_TRACE_GENESIS, sizeof(c.prev));
	if (expect_head && !is_sha256_hex(expect_head))
		return ward_error_set(WARD_EINVAL, "'%s' is not a SHA-256 in lowercase hex", expect_head);
	c.want = expect_head;
	c.want_seen = expect_head && strcmp(expect_head, WARD_TRACE_GENESIS) == 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return ward_error_set(WARD_EIO, "'%s': cannot open trace file: %s", path,
		                      errno == ELOOP ? "it is a symbolic link" : strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		rc = ward_error_set(WARD_EIO, "'%s': trace file is not a regular file", path);
		goto done;
	}
	if (!(buf = ward_malloc(TAIL_BLOCK))) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	if ((rc = ward_sha256_new(&c.h)) < 0)
		goto done;
	while (!c.problem) {
		ssize_t n = read(fd, buf, TAIL_BLOCK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = ward_error_set(WARD_EIO, "'%s': cannot read trace file: %s", path, strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		if ((rc = chain_feed(&c, buf, (size_t)n)) < 0)
			goto done;
	}
	if (!c.problem && c.bytes > 0) {
		c.lines++;
		c.problem = "the last line has no newline (a write cut short)";
	}
	at = c.lines;
	if (!c.problem && c.want && !c.want_seen) {
		at = c.lines + 1; /* the first line that is missing */
		c.problem = "no line has the expected head (lines removed from the end, or another file)";
	}
	if (c.problem && !(broken = json_pack("{s:I, s:s}", "line", (json_int_t)at, "problem", c.problem))) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	if (!(*out = json_pack("{s:s, s:b, s:I, s:I, s:s, s:o}", "file", path, "ok", !c.problem, "lines",
	                       (json_int_t)c.lines, "unchained", (json_int_t)c.unchained, "head", c.prev, "broken",
	                       broken ? broken : json_null()))) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	rc = 0;
done:
	ward_sha256_free(c.h);
	ward_buf_dispose(&c.line);
	ward_free(buf);
	close(fd);
	return rc;
}
