/*
 * Retrieval trace sinks: the trace file's hash chain and its check, the
 * syslog sink, and where the file is. Appending, flushing and finding a
 * record are declared in ragward/retrieve.h (ward_trace_append,
 * ward_trace_flush, ward_trace_find); docs/retrieval.md "Traces" describes
 * the format and docs/configuration.md the "traces:" settings.
 *
 * The chain: every line of the trace file carries "prev", the lowercase hex
 * SHA-256 of the previous line's bytes (without its newline); the first line
 * of a file carries WARD_TRACE_GENESIS, the SHA-256 of no bytes. An appender
 * holds flock(LOCK_EX) on the file while it reads the last line and writes
 * its own, so the CLI, a server and an MCP process can share one file.
 */
#ifndef RAGWARD_TRACES_H
#define RAGWARD_TRACES_H

#include <stddef.h>
#include <jansson.h>
#include "ragward/store.h"

/* SHA-256 of the empty string: the "prev" of a file's first line. */
#define WARD_TRACE_GENESIS "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* A syslog message carries at most this many bytes of the line; a longer
 * line is cut (never inside a UTF-8 sequence) and ends with
 * " [truncated: N bytes, sha256 HEX]" naming the whole line. 8000 leaves room
 * for the syslog header within rsyslog's default 8 KiB message size. */
#define WARD_TRACE_SYSLOG_MAX 8000

/* The syslog sink: `priority` is a facility and a level, as syslog(3) takes
 * them; `line` is NUL-terminated, at most WARD_TRACE_SYSLOG_MAX bytes. */
typedef void (*ward_trace_syslog_fn)(void *ctx, int priority, const char *line);

/*
 * Replaces the syslog sink (process-wide). The default, restored by fn NULL,
 * calls openlog("ragward", LOG_PID, facility) once and syslog(3). An
 * application that has its own logger (journald's native API, a test
 * capturing the lines) installs its own. syslog(3) reports no failure: a
 * trace sent to syslog only is not known to be kept (use sink "both").
 */
void ward_trace_set_syslog_sink(ward_trace_syslog_fn fn, void *ctx);

/* The trace file of this store (traces.path, default HOME/traces.jsonl),
 * whatever the sink. WARD_ETOOBIG when outlen is too small. */
int ward_trace_path(char *out, size_t outlen, const ward_store *s) WARD_MUST_CHECK;

/*
 * Checks that the trace file's sinks can be used now: the file sink opens
 * (creates) the file and applies the checks of every append (regular file,
 * no symlink, owned by this user, not writable by group or others, in a
 * directory not writable by group or others unless sticky). A server calls
 * it at start so that a bad traces.path fails there, not at the first query.
 */
int ward_trace_check(ward_store *s) WARD_MUST_CHECK;

/* Records written to the trace file and not yet fdatasync'd (process-wide;
 * monitoring, and the tests of a server's flush timer). */
unsigned ward_trace_unsynced(void);

/*
 * Checks the hash chain of a trace file. *out = {"file", "ok", "lines",
 * "unchained", "head", "broken"}: "lines" read (up to and including the
 * first broken one), "unchained" leading lines without "prev" (written
 * before the chain existed; any after a chained line is broken), "head" the
 * hex SHA-256 of the last good line (WARD_TRACE_GENESIS for an empty file)
 * and "broken" null or {"line", "problem"} for the first line that breaks the
 * chain. A changed, removed or reordered line breaks the line after it; the
 * last line is covered only by a copy of "head" kept elsewhere (the syslog
 * copy of each line carries its "prev"). expect_head (NULL: none), a "head"
 * recorded earlier, must be the hash of some good line: lines removed from
 * the end since then break the check ("line" is then "lines" + 1). Returns < 0 only
 * when the file cannot be read (WARD_EIO), expect_head is malformed
 * (WARD_EINVAL) or memory runs out; a broken chain is a report.
 */
int ward_trace_verify(const char *path, const char *expect_head, json_t **out) WARD_MUST_CHECK;

#endif
