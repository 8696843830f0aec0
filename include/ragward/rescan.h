/*
 * Re-scan on rule change: the current rule set judges stored documents
 * again, from their kept bytes, exactly as ingest would (type gate, extract,
 * scan, verdict with the source's trust tier and the configured thresholds).
 * Each document's new verdict, rule-set hash, score, state and findings and
 * its chunks' re-signed statements are written in ONE transaction with a
 * "document.rescan" audit event. See docs/rescan.md for the state rules.
 */
#ifndef RAGWARD_RESCAN_H
#define RAGWARD_RESCAN_H

#include <stddef.h>
#include <stdint.h>
#include "ragward/documents.h"
#include "ragward/scan.h"
#include "ragward/store.h"

typedef enum {
	WARD_RESCAN_UNCHANGED = 0, /* same verdict and state; statements re-signed under the new rule set */
	WARD_RESCAN_CHANGED,       /* verdict or state changed (not into quarantine) */
	WARD_RESCAN_QUARANTINED,   /* moved from active to quarantined */
	WARD_RESCAN_SKIPPED,       /* cannot be rescanned (bytes not kept, extraction changed ...) */
	WARD_RESCAN_FAILED,        /* this document could not be rescanned (tampered chunk, bad bytes ...) */
} ward_rescan_outcome;

const char *ward_rescan_outcome_name(ward_rescan_outcome o); /* "unchanged", "changed", ... */

typedef struct {
	int64_t document_id;
	char *uri;
	ward_rescan_outcome outcome;
	char *from_verdict, *from_state, *from_ruleset;
	char *to_verdict, *to_state, *to_ruleset; /* NULL when skipped or failed */
	char *reason;                             /* why; NULL when there is nothing to say */
	int tampered; /* failed because a stored chunk no longer verifies */
} ward_rescan_item;

void ward_rescan_item_dispose(ward_rescan_item *it);

typedef struct {
	size_t rescanned; /* judged again and written: changed + quarantined + unchanged */
	size_t changed;   /* verdict or state changed (quarantined ones included) */
	size_t quarantined, unchanged, skipped, failed;
	ward_rescan_item *items;
	size_t nitems;
} ward_rescan_report;

void ward_rescan_report_dispose(ward_rescan_report *r);

typedef struct {
	const ward_ruleset *rules; /* the current rule set (required) */
	int64_t source_id;         /* 0: every source */
	int force;                 /* also documents already judged by `rules` */
	/* Called after each document (may be NULL); the library never prints. */
	void (*progress)(void *ctx, size_t done, size_t total, const ward_rescan_item *it);
	void *progress_ctx;
} ward_rescan_opts;

/*
 * Rescans every stored document version in state active or quarantined (of
 * o->source_id, or all) whose rule-set hash differs from o->rules' (all of
 * them with o->force). A document's own problems become its item's outcome;
 * returns an error only when the store (or memory) failed, which stops the
 * run: documents finished before stay written, the one in progress is not.
 * Needs a store opened with WARD_STORE_SIGN. WARD_ENOTFOUND when
 * o->source_id names no source.
 */
int ward_rescan_run(ward_store *s, const ward_actor *who, const ward_rescan_opts *o, ward_rescan_report *r)
	WARD_MUST_CHECK;

/* One document by id (whatever its rule-set hash; it must be active or
 * quarantined, else WARD_ESTATE). Same error contract as ward_rescan_run. */
int ward_rescan_document(ward_store *s, const ward_actor *who, const ward_rescan_opts *o, int64_t id,
			 ward_rescan_item *it) WARD_MUST_CHECK;

/* ---- the store side (store/rescan.c) ------------------------------------- */

/* Ids of the documents a rescan considers, ascending. */
int ward_rescan_candidates(ward_store *s, int64_t source_id, const char *ruleset_sha256, int force, int64_t **ids,
			   size_t *n) WARD_MUST_CHECK;

/* A stored document as the rescan needs it. Strings and arrays ward_malloc'd. */
typedef struct {
	int64_t id, source_id, version;
	char *uri, *final_url, *state, *verdict, *ruleset_sha256, *declared_type;
	int source_is_file;
	int trust;        /* 0 low, 1 standard, 2 high */
	double score;
	uint8_t *bytes;   /* NULL when not kept */
	size_t len;
	int has_bytes;
	int released;     /* state active after a quarantine.release */
	int max_severity; /* the highest severity a reviewer has seen and released (released), else of the stored findings */
	size_t nchunks;   /* by ordinal: */
	int64_t *chunk_start, *chunk_end;
	char **chunk_text;
	size_t *chunk_len;
} ward_rescan_doc;

int ward_rescan_doc_load(ward_store *s, int64_t id, ward_rescan_doc *out) WARD_MUST_CHECK;
void ward_rescan_doc_dispose(ward_rescan_doc *d);

typedef struct {
	int64_t document_id;
	/* The row must still say these, else WARD_ESTATE (a reviewer acted meanwhile). */
	const char *expect_state, *expect_ruleset;
	const char *ruleset_sha256, *verdict, *state; /* the new values */
	double score;
	const ward_finding_in *findings; /* replace the stored ones */
	size_t nfindings;
	/* New chunk texts by ordinal (the strip action), or NULL: texts unchanged. */
	char *const *chunk_text;
	const size_t *chunk_len;
	size_t nchunks;
	int reviewed_severity; /* recorded for a released document that stays released, else -1 */
	const char *reason;
} ward_rescan_update;

/*
 * Writes one document's rescan in ONE transaction: every chunk's current
 * signature is verified first (WARD_EVERIFY when one fails: re-signing would
 * launder a tampered row), then each statement is re-signed with the new
 * rule-set hash and verdict under the active key (chunk ids, offsets and —
 * unless chunk_text is given — text unchanged), the document's rule set,
 * verdict, score and state updated, its findings replaced, and a
 * "document.rescan" event appended.
 */
int ward_rescan_store(ward_store *s, const ward_actor *who, const ward_rescan_update *u) WARD_MUST_CHECK;

#endif
