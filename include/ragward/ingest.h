/*
 * The ingest pipeline: source check, fetch, type gate, extract, scan,
 * verdict, chunk, sign, store — one document at a time, each stored in one
 * transaction.
 */
#ifndef RAGWARD_INGEST_H
#define RAGWARD_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include "ragward/scan.h"
#include "ragward/store.h"

typedef enum {
	WARD_INGEST_NEW = 0,
	WARD_INGEST_UPDATED,
	WARD_INGEST_UNCHANGED,
	WARD_INGEST_QUARANTINED,
	WARD_INGEST_REJECTED, /* refused: not allowlisted, wrong type, verdict reject, SSRF guard ... */
	WARD_INGEST_FAILED,   /* could not complete: network, I/O, timeouts (transient) */
} ward_ingest_outcome;

const char *ward_ingest_outcome_name(ward_ingest_outcome o); /* "new", ..., "failed" */

typedef struct {
	const char *ca_file;       /* CA bundle for https (tests pass their own) */
	int keep_bytes;            /* store fetched bytes (default on in the CLI) */
	size_t max_bytes;          /* 0: WARD_MAX_DOC_BYTES */
	long timeout_ms;           /* 0: default total fetch timeout */
	const ward_ruleset *rules; /* NULL: no scanner; verdict accept, rule set "none" */
} ward_ingest_opts;

typedef struct {
	char *target;     /* as given, canonicalized when possible */
	ward_ingest_outcome outcome;
	char *reason;     /* why, for rejected/failed/quarantined; NULL otherwise */
	int64_t document_id, version; /* 0 when nothing stored */
	int not_allowlisted; /* rejected because no approved source covers it */
} ward_ingest_item;

void ward_ingest_item_dispose(ward_ingest_item *it);

/* Ingests one URL or absolute path. Returns 0 when the item has an outcome
 * (even rejected or failed); an error only when the store itself failed. */
int ward_ingest_one(ward_store *s, const ward_actor *who, const char *target, const ward_ingest_opts *o,
		    ward_ingest_item *item) WARD_MUST_CHECK;

/* The targets of a source for `ingest --all` / `ingest SOURCE_ID`: every
 * regular file beneath a file source's root; an http(s) source's pattern URL
 * (a wildcard host pattern has no URL of its own and yields nothing). */
int ward_ingest_source_targets(ward_store *s, int64_t source_id, char ***targets, size_t *n) WARD_MUST_CHECK;

/* Targets listed in a manifest (YAML: a list of strings, or {targets: [...]}). */
int ward_ingest_manifest_targets(const char *path, char ***targets, size_t *n) WARD_MUST_CHECK;
void ward_ingest_targets_free(char **targets, size_t n);

/*
 * Takes the home's ingest lock (flock on HOME/ingest.lock, non-blocking).
 * WARD_EBUSY "already running" when another run holds it. Release with
 * ward_ingest_unlock(fd).
 */
int ward_ingest_lock(const char *home, int *fd) WARD_MUST_CHECK;
void ward_ingest_unlock(int fd);

#endif
