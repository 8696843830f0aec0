/*
 * The retrieval trace sink: HOME/traces.jsonl, one JSON object per line,
 * append-only. It is kept outside the database on purpose (DESIGN.md "Query
 * shim"): the shim opens the store read-only, and the security team ships the
 * file elsewhere. Each record is written with one write() on an O_APPEND
 * descriptor, so concurrent writers do not interleave lines.
 *
 * Durability is batched (DESIGN.md: "fsync'd in batches"): a record is
 * written before the call returns (it survives a crash of the process), but
 * fdatasync runs at most once per WARD_TRACE_SYNC_MS or every
 * WARD_TRACE_SYNC_RECORDS records, on the next append after that, and at
 * exit (ward_trace_flush, also registered with atexit). A power loss can
 * lose the records of the last window.
 */
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "ragward/retrieve.h"
#include "core/limits.h"
#include "core/banned.h"

static int trace_path(char *out, size_t outlen, ward_store *s)
{
	const char *home = ward_store_home(s);
	int n;

	if (!home)
		return ward_error_set(WARD_EINVAL, "store has no home");
	n = snprintf(out, outlen, "%s/traces.jsonl", home);
	if (n < 0 || (size_t)n >= outlen)
		return ward_error_set(WARD_ETOOBIG, "trace path is too long");
	return 0;
}

/* The file with records written but not yet synced (one descriptor, a dup;
 * fdatasync through any descriptor syncs the file). */
static struct {
	pthread_mutex_t mu;
	int fd;
	unsigned pending;
	double last_sync;
	int atexit_done;
	char path[WARD_MAX_PATH_LEN + 32];
} tsync = {.mu = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

static double mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

/* Called with tsync.mu held. */
static int sync_pending_locked(void)
{
	int rc = 0;

	if (tsync.fd < 0)
		return 0;
	if (fdatasync(tsync.fd) != 0)
		rc = ward_error_set(WARD_EIO, "'%s': cannot sync trace: %s", tsync.path, strerror(errno));
	close(tsync.fd);
	tsync.fd = -1;
	tsync.pending = 0;
	tsync.last_sync = mono_ms();
	return rc;
}

int ward_trace_flush(void)
{
	int rc;

	pthread_mutex_lock(&tsync.mu);
	rc = sync_pending_locked();
	pthread_mutex_unlock(&tsync.mu);
	return rc;
}

static void flush_at_exit(void)
{
	int rc = ward_trace_flush();
	(void)rc; /* nobody left to tell */
}

/* After a record was written to fd: sync now, or leave it for the batch. */
static int batch_sync(int fd, const char *path)
{
	double t = mono_ms();
	int rc = 0;

	pthread_mutex_lock(&tsync.mu);
	if (!tsync.atexit_done) {
		tsync.atexit_done = 1;
		atexit(flush_at_exit);
	}
	if (tsync.fd >= 0 && strcmp(tsync.path, path) != 0)
		rc = sync_pending_locked();
	if (rc == 0 && tsync.fd < 0) {
		if ((tsync.fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
			rc = ward_error_set(WARD_EIO, "'%s': cannot keep trace descriptor: %s", path, strerror(errno));
		} else {
			snprintf(tsync.path, sizeof(tsync.path), "%s", path);
			tsync.pending = 0;
		}
	}
	if (rc == 0 && ++tsync.pending >= WARD_TRACE_SYNC_RECORDS)
		rc = sync_pending_locked();
	else if (rc == 0 && t - tsync.last_sync >= WARD_TRACE_SYNC_MS)
		rc = sync_pending_locked();
	pthread_mutex_unlock(&tsync.mu);
	return rc;
}

int ward_trace_append(ward_store *s, const json_t *record, int sync)
{
	char path[WARD_MAX_PATH_LEN + 32];
	char *line = NULL;
	size_t len, off = 0;
	struct stat sb;
	int fd = -1, rc;

	if ((rc = trace_path(path, sizeof(path), s)) < 0)
		return rc;
	if (!(line = json_dumps(record, JSON_COMPACT | JSON_ENSURE_ASCII)))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	len = strlen(line);
	if (len + 1 > WARD_TRACE_MAX_LINE) {
		rc = ward_error_set(WARD_ETOOBIG, "trace record is larger than %d bytes", WARD_TRACE_MAX_LINE);
		goto done;
	}
	line[len++] = '\n'; /* replaces the terminator: json_dumps allocated len + 1 */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = ward_error_set(WARD_EIO, "'%s': cannot open trace file: %s", path, strerror(errno));
		goto done;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		rc = ward_error_set(WARD_EIO, "'%s': trace file is not a regular file", path);
		goto done;
	}
	while (off < len) {
		ssize_t w = write(fd, line + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = ward_error_set(WARD_EIO, "'%s': cannot append trace: %s", path,
			                    w < 0 ? strerror(errno) : "short write");
			goto done;
		}
		off += (size_t)w;
	}
	if (sync == WARD_TRACE_SYNC_NOW && fdatasync(fd) != 0) {
		rc = ward_error_set(WARD_EIO, "'%s': cannot sync trace: %s", path, strerror(errno));
		goto done;
	}
	if (sync == WARD_TRACE_SYNC_BATCH && (rc = batch_sync(fd, path)) < 0)
		goto done;
	rc = 0;
done:
	if (fd >= 0 && close(fd) != 0 && rc == 0)
		rc = ward_error_set(WARD_EIO, "'%s': cannot close trace file: %s", path, strerror(errno));
	ward_free(line);
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
	if ((rc = trace_path(path, sizeof(path), s)) < 0)
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
