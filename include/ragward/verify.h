/*
 * Whole-store verification (`ragward verify`) and drift statistics
 * (`ragward stats`). docs/verify.md describes every check, the column
 * coverage of a chunk row and the JSON of both commands.
 */
#ifndef RAGWARD_VERIFY_H
#define RAGWARD_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "ragward/audit.h"
#include "ragward/store.h"

#define WARD_VERIFY_MAX_JOBS 16         /* worker threads for the chunk checks */
#define WARD_VERIFY_MAX_FAILURES 10000  /* failure lines kept; the rest are counted */

typedef struct {
	/* An exported checkpoint the audit log must extend (besides
	 * HOME/anchor.checkpoint); NULL for none. */
	const char *checkpoint_path;
	/* Worker threads for the chunk checks; 0: the number of online CPUs.
	 * Capped at WARD_VERIFY_MAX_JOBS. */
	unsigned jobs;
	/* 1: skip the FTS5 'integrity-check' command, which needs a writable
	 * connection (it writes nothing). When 0 and the store cannot be opened
	 * read-write, the check is reported as skipped, not failed. */
	int no_fts_integrity;
} ward_verify_opts;

void ward_verify_opts_init(ward_verify_opts *o);

typedef struct {
	uint64_t checked, failed;
} ward_verify_count;

typedef struct {
	ward_verify_count chunks;    /* text hash + signature, one per chunk */
	ward_verify_count documents; /* byte hash, audit cross-check, state */
	uint64_t documents_with_bytes;
	ward_verify_count fts;       /* chunk <-> FTS row, both directions */
	ward_verify_count sources;   /* state and definition against the audit log */
	ward_verify_count keys;      /* key id == hash of the public key, audited */
	ward_verify_count audit;     /* checked: events; failed: failure lines */
	uint64_t audit_checkpoints;
	int audit_anchors;
	char *sqlite_integrity;      /* "ok", or the first line PRAGMA integrity_check gave */
	char *fts_integrity;         /* "ok", the error, or "skipped: <why>" */
	ward_finding_line *failures; /* in order: chunks, fts, documents, sources, keys, audit, sqlite */
	size_t nfailures;
	uint64_t failures_omitted;   /* beyond WARD_VERIFY_MAX_FAILURES */
	unsigned jobs;               /* worker threads used */
	double chunk_seconds;        /* wall time of the chunk checks */
	double seconds;              /* wall time of the whole verification */
} ward_verify_report;

/*
 * Verifies the whole store `s` (opened read-only is enough) offline:
 *  - every chunk: text hash recomputed and compared, statement rebuilt and
 *    its signature checked with the key the chunk names (retired keys too),
 *    on opts->jobs threads, each with its own read-only connection over a
 *    range of ids (together the ranges cover every id);
 *  - every chunk has its FTS row with the chunk's text, heading path and its
 *    document's title, and every FTS row has its chunk (matched on the same
 *    threads by merging the id-ordered chunks and FTS rows of each range);
 *  - every document: SHA-256 and length of the kept bytes, its columns
 *    against its "document.ingest" audit event, its chunk count and ordinals,
 *    its state explained by the audit log;
 *  - every source's state and definition against its source.* events; every
 *    key row against its public key and the audit log;
 *  - the audit log (ward_audit_verify, with opts->checkpoint_path);
 *  - PRAGMA integrity_check and the FTS5 'integrity-check' command (on a
 *    separate read-write connection inside a transaction that is rolled back).
 * Returns 0 when the checks ran (the verdict is report->nfailures == 0 &&
 * report->failures_omitted == 0) or a negative error when they could not.
 * Dispose the report in both cases.
 */
int ward_store_verify(ward_store *s, const ward_verify_opts *opts, ward_verify_report *report) WARD_MUST_CHECK;
void ward_verify_report_dispose(ward_verify_report *r);

/* 1 when the report holds no failure. */
int ward_verify_report_ok(const ward_verify_report *r);

/* The number of online CPUs, between 1 and WARD_VERIFY_MAX_JOBS. */
unsigned ward_verify_default_jobs(void);

/* ---- drift statistics (store/stats.c) ------------------------------------- */

/*
 * Per day (UTC, from the audit log) and per source: documents ingested,
 * verdict counts (accept, flag, strip, quarantine, and reject from
 * "document.reject" events), findings per rule, chunks and average chunk
 * length; per day: queries and withheld-on-read counts from
 * HOME/traces.jsonl when present; and the rule-set changes ("rules.load"
 * events). Rows are split by the rule set that judged the documents, and a
 * row whose rule set differs from the previous row of the same source is
 * marked "ruleset_changed". `since` (YYYY-MM-DD or RFC 3339 UTC; NULL for
 * all) drops earlier events. *out receives the object docs/verify.md
 * describes. WARD_EINVAL for a malformed `since`.
 */
int ward_store_stats(ward_store *s, const char *since, json_t **out) WARD_MUST_CHECK;

#endif
