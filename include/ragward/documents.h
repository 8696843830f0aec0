/*
 * Versioned document storage. One call stores a document version with its
 * chunks (signed), FTS rows, findings and its audit event in ONE transaction:
 * a crash leaves either the old version or the new one, never a mix.
 */
#ifndef RAGWARD_DOCUMENTS_H
#define RAGWARD_DOCUMENTS_H

#include <stddef.h>
#include <stdint.h>
#include "ragward/crypto.h"
#include "ragward/store.h"

typedef struct {
	const char *heading_path; /* "" when none */
	size_t char_start, char_end; /* byte range in the extracted text */
	const char *text;
	size_t len;
} ward_chunk_in;

typedef struct {
	const char *rule_id;
	const char *category;
	int severity;
	const char *channel;
	const char *view;
	size_t start, end; /* byte offsets into the original document */
	const char *excerpt;
} ward_finding_in;

typedef struct {
	int64_t source_id;
	const char *uri;         /* identity: the canonical URL or path asked for */
	const char *final_url;   /* after redirects (== uri for files) */
	const char *peer_ip;     /* NULL for files */
	long http_status;        /* 0 for files */
	const char *etag, *last_modified; /* may be NULL */
	const char *declared_type, *detected_type;
	const char *title;
	const uint8_t *bytes;    /* kept in the store when keep_bytes */
	size_t len;
	int keep_bytes;
	uint8_t byte_sha256[WARD_SHA256_LEN];
	const char *fetched_at;
	const char *ruleset_sha256; /* "none" when no rule set judged it */
	const char *verdict;     /* accept, flag, strip, quarantine */
	double score;
	const ward_chunk_in *chunks;
	size_t nchunks;
	const ward_finding_in *findings;
	size_t nfindings;
} ward_doc_in;

typedef enum {
	WARD_DOC_NEW = 0,
	WARD_DOC_UPDATED,
	WARD_DOC_UNCHANGED,
	WARD_DOC_QUARANTINED, /* stored, not served until released */
} ward_doc_outcome;

const char *ward_doc_outcome_name(ward_doc_outcome o); /* "new", "updated", "unchanged", "quarantined" */

/*
 * Stores a version of `in->uri`. Bytes identical to the latest version write
 * nothing (WARD_DOC_UNCHANGED). Otherwise a new version supersedes the
 * previous one. Needs a store opened with WARD_STORE_SIGN.
 */
int ward_documents_store(ward_store *s, const ward_actor *who, const ward_doc_in *in, ward_doc_outcome *outcome,
			 int64_t *doc_id, int64_t *version) WARD_MUST_CHECK;

/* Records a rejected document: not stored, the decision and its findings go
 * to the audit log. */
int ward_documents_record_reject(ward_store *s, const ward_actor *who, const ward_doc_in *in, const char *reason)
	WARD_MUST_CHECK;

/* What the last stored version of a URI looked like, for conditional
 * re-fetch. *found is 0 when there is none. Strings are ward_malloc'd. */
typedef struct {
	int64_t id, version;
	char *etag, *last_modified, *state;
	uint8_t byte_sha256[WARD_SHA256_LEN];
} ward_doc_latest;

int ward_documents_latest(ward_store *s, const char *uri, ward_doc_latest *out, int *found) WARD_MUST_CHECK;
void ward_doc_latest_dispose(ward_doc_latest *d);

/* ---- verification of stored chunks ---------------------------------------- */

/*
 * Verifies every chunk of a document version: recomputes the text hash,
 * rebuilds the signed statement from the chunk and document rows, and checks
 * the Ed25519 signature with the key the chunk names (retired keys included).
 * *bad receives the number of chunks that failed; 0 means all verified.
 */
int ward_documents_verify_chunks(ward_store *s, int64_t doc_id, size_t *checked, size_t *bad) WARD_MUST_CHECK;

/* ---- quarantine review -------------------------------------------------------- */

typedef struct {
	int64_t id, source_id, version;
	char *uri, *title, *state, *verdict, *fetched_at, *ruleset_sha256, *detected_type;
	double score;
	char *ingested_by; /* actor of the document.ingest event, "" when unknown */
	size_t nchunks, nfindings;
} ward_doc_info;

typedef struct {
	char *rule_id, *category, *channel, *view, *excerpt;
	int severity;
	int64_t start, end;
} ward_doc_finding;

void ward_doc_info_dispose(ward_doc_info *d);
void ward_doc_infos_free(ward_doc_info *d, size_t n);
void ward_doc_findings_free(ward_doc_finding *f, size_t n);

int ward_quarantine_list(ward_store *s, ward_doc_info **out, size_t *n) WARD_MUST_CHECK;
int ward_documents_get(ward_store *s, int64_t id, ward_doc_info *out) WARD_MUST_CHECK;
int ward_documents_findings(ward_store *s, int64_t id, ward_doc_finding **out, size_t *n) WARD_MUST_CHECK;

/*
 * Releases a quarantined document: its chunks' signatures are re-checked
 * first (WARD_EVERIFY when one fails), the two-person rule applies when the
 * reviewer ingested it, and a "quarantine.release" event is audited.
 */
int ward_quarantine_release(ward_store *s, const ward_actor *who, int64_t id, const char *note) WARD_MUST_CHECK;
/* Drops a quarantined document: never served; kept for audit. */
int ward_quarantine_drop(ward_store *s, const ward_actor *who, int64_t id, const char *note) WARD_MUST_CHECK;

/*
 * Records the rule set that judges documents from now on: when `sha256`
 * differs from the last one recorded, writes a "rules.load" audit event
 * (with the previous hash) and sets *changed.
 */
int ward_store_note_ruleset(ward_store *s, const ward_actor *who, const char *sha256, size_t rules, const char *dir,
			    int *changed) WARD_MUST_CHECK;

#endif
