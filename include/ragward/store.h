/*
 * The store: one home directory holding store.db (SQLite), keys/ and the
 * audit anchor. This header is the store's internal interface for the rest of
 * the library; no SQL exists outside store/.
 *
 * Home layout (all created by ward_store_init_home):
 *   HOME/            0700
 *   HOME/store.db    SQLite, WAL, 0600
 *   HOME/keys/       0700; <key_id>.key (PKCS#8 PEM, 0600), <key_id>.pub
 *   HOME/anchor.checkpoint   the latest signed checkpoint, written after
 *                    every commit, outside the database so that a restored
 *                    or truncated database is detected by `audit verify`
 *   HOME/config.yaml optional settings (see docs/configuration.md)
 */
#ifndef RAGWARD_STORE_H
#define RAGWARD_STORE_H

#include <stdint.h>
#include "ragward/error.h"

typedef struct ward_store ward_store;

/* Who performs a change: a self-declared name (--by) and the OS uid behind it. */
typedef struct {
	const char *name;
	long uid;
} ward_actor;

/* Fills `a` with the OS user name (into namebuf) and the effective uid. */
int ward_actor_os(ward_actor *a, char *namebuf, size_t namebuf_len);

enum {
	WARD_STORE_RW = 1 << 0,   /* open read-write (default: read-only) */
	WARD_STORE_SIGN = 1 << 1, /* load the active signing key (implies RW) */
};

/* Settings read from HOME/config.yaml (defaults when the file is absent). */
typedef struct {
	int two_person_rule; /* 1 (default): approver must differ from requester */
	/* Verdict thresholds per trust tier (low, standard, high) and level
	 * (flag, quarantine, reject); a value < 0 keeps the built-in default
	 * (docs/verdicts.md). */
	double thresholds[3][3];
	/* Retrieval traces ("traces:", docs/configuration.md): where each
	 * retrieval's JSON line goes. */
	int trace_sink;        /* WARD_TRACE_SINK_FILE (default), _SYSLOG or _BOTH */
	int trace_sync;        /* -1: the caller's choice (default); else a WARD_TRACE_SYNC_* value */
	int trace_facility;    /* syslog facility (LOG_USER by default), as <syslog.h> numbers it */
	char trace_path[4097]; /* absolute; HOME/traces.jsonl by default (WARD_MAX_PATH_LEN + 1) */
	/* store.wal_limit_mb: once a checkpoint has caught up, a writer cuts the
	 * WAL file back to this size (PRAGMA journal_size_limit), and a writer
	 * closing with a larger WAL logs a warning (a reader held an old
	 * snapshot). */
	int64_t wal_limit_bytes;
} ward_config;

/* Trace sinks (bit set). */
enum {
	WARD_TRACE_SINK_FILE = 1 << 0,
	WARD_TRACE_SINK_SYSLOG = 1 << 1,
	WARD_TRACE_SINK_BOTH = WARD_TRACE_SINK_FILE | WARD_TRACE_SINK_SYSLOG,
};

/*
 * Creates HOME (0700) with a fresh store and an Ed25519 signing key, and
 * records "store.init" and "key.create" audit events. Refuses, changing
 * nothing, when HOME already holds a store or keys (WARD_EEXISTS).
 * key_id_out receives the new key id.
 */
int ward_store_init_home(const char *home, const ward_actor *who, char key_id_out[33]) WARD_MUST_CHECK;

/* The size of HOME/store.db-wal (0 when there is none). */
int ward_store_wal_bytes(const ward_store *s, int64_t *bytes) WARD_MUST_CHECK;

/* Opens the store in HOME. Refuses a schema newer than this binary
 * (WARD_ESCHEMA) and a file that is not a ragward store. A handle belongs to
 * one thread at a time (its connection has no mutex): threads open their own
 * or pass one between them with a lock, as the server's pool does. */
int ward_store_open(ward_store **out, const char *home, int flags) WARD_MUST_CHECK;
void ward_store_close(ward_store *s);

const char *ward_store_home(const ward_store *s);
const ward_config *ward_store_config(const ward_store *s);
/* Hex id of this store (random, fixed at init); part of every checkpoint. */
const char *ward_store_id(const ward_store *s);
/* The active signing key id, or NULL when opened without WARD_STORE_SIGN. */
const char *ward_store_key_id(const ward_store *s);

/*
 * Write transactions. ward_store_begin starts BEGIN IMMEDIATE (waits up to the
 * busy timeout for another writer, then WARD_EBUSY). ward_store_commit signs a
 * new audit checkpoint in the same transaction when events were appended,
 * commits, then refreshes HOME/anchor.checkpoint. On any failure the
 * transaction is rolled back and nothing is changed. ward_store_rollback is
 * safe to call when no transaction is open.
 */
int ward_store_begin(ward_store *s) WARD_MUST_CHECK;
int ward_store_commit(ward_store *s) WARD_MUST_CHECK;
void ward_store_rollback(ward_store *s);

/*
 * Batch runs (ingest, rescan) commit one transaction per document; refreshing
 * HOME/anchor.checkpoint after each costs two fsyncs. With deferral on, the
 * anchor is refreshed once by ward_store_flush_anchor, by turning deferral
 * off, or by ward_store_close. A crash in between leaves an older anchor,
 * which is still consistent: the store is only ever ahead of it.
 */
void ward_store_defer_anchor(ward_store *s, int on);
void ward_store_flush_anchor(ward_store *s);

/* Current time as RFC 3339 UTC ("2026-11-28T08:30:00Z"). Honours
 * RAGWARD_FAKE_TIME (seconds since the epoch) for reproducible tests. */
void ward_now_rfc3339(char out[32]);

/* PRAGMA quick_check; 0 when "ok". */
int ward_store_quick_check(ward_store *s) WARD_MUST_CHECK;

#endif
