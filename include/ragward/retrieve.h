/*
 * Retrieval: BM25 search over the served chunks, verification on read,
 * citation-tagged results with a model-ready context, retrieval traces and
 * the citation check. docs/retrieval.md describes the JSON and the context.
 *
 * Served means: the chunk's document is 'active' (never quarantined,
 * superseded or dropped) and its source is 'approved' (a revoked source's
 * chunks vanish from the next query). Every returned chunk has just passed
 * verification: text hash recomputed, signed statement rebuilt, Ed25519
 * signature checked with the key the chunk names (retired keys too). A chunk
 * that fails is withheld, counted and logged as a security event.
 */
#ifndef RAGWARD_RETRIEVE_H
#define RAGWARD_RETRIEVE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "ragward/crypto.h"
#include "ragward/store.h"

/* Limits of a query (T43): longer or more complex queries are WARD_EINVAL
 * "query too long/complex". */
#define WARD_QUERY_MAX_BYTES    1024 /* the user's text */
#define WARD_QUERY_MAX_TERMS    32   /* distinct search terms after tokenizing */
#define WARD_QUERY_MAX_K        50   /* results per query */
#define WARD_QUERY_MAX_LABELS   32   /* caller labels (as WARD_MAX_LABELS) */
#define WARD_QUERY_MAX_SOURCES  64   /* --source filters */
#define WARD_VERIFY_CACHE_SLOTS 65536 /* 2 MiB: the working set of a busy server */
#define WARD_TRACE_MAX_LINE     (1024 * 1024)     /* a trace record read back */
#define WARD_CITE_MAX_OUTPUT    (4 * 1024 * 1024) /* a model output given to the citation check */
#define WARD_CITE_MAX_TAGS      200               /* distinct tags reported */

/* ---- verification of one chunk row (store/review.c) ---------------------- */

/* The columns a chunk's signed statement is rebuilt from. Pointers are
 * borrowed; lengths are those of the stored values (a tampered blob may have
 * any length). `uri` is the document's final URL, else its URI. */
typedef struct {
	int64_t chunk_id, ordinal, char_start, char_end;
	int64_t document_id, document_version, source_id;
	int statement_version;
	const char *heading_path;
	const char *text;
	size_t text_len;
	const uint8_t *text_sha256; /* stored hash, compared with the recomputed one */
	size_t text_sha256_len;
	const char *key_id;
	size_t key_id_len;
	const uint8_t *signature;
	size_t signature_len;
	const char *uri;
	const uint8_t *doc_sha256;
	size_t doc_sha256_len;
	const char *ruleset_sha256; /* NULL: "none" */
	const char *verdict;
	const char *fetched_at;
} ward_chunk_row;

/* Public keys looked up during a run of verifications (zero-initialise;
 * release with ward_chunk_keys_dispose). */
typedef struct {
	struct {
		char id[33];
		ward_key *key;
	} slot[4];
	unsigned next;
} ward_chunk_keys;

void ward_chunk_keys_dispose(ward_chunk_keys *keys);

/*
 * Optional memo of successful verifications, keyed by SHA-256(statement ||
 * signature). `seen` returns 1 when that exact pair verified before (the
 * Ed25519 check is then skipped; the text hash is still recomputed and is part
 * of the statement, so a changed row never hits). `verified` records a pass.
 */
typedef struct {
	int (*seen)(void *ctx, const uint8_t digest[WARD_SHA256_LEN]);
	void (*verified)(void *ctx, const uint8_t digest[WARD_SHA256_LEN]);
	void *ctx;
} ward_verify_memo;

/*
 * Verifies one chunk row: recomputes the text hash and compares it with the
 * stored one, rebuilds the statement and checks the signature with the key
 * the row names. *ok is 1 when everything holds, else 0 (nothing is logged
 * here). Returns < 0 only on an operational failure. memo may be NULL.
 */
int ward_chunk_verify_row(ward_store *s, const ward_chunk_row *row, ward_chunk_keys *keys, const ward_verify_memo *memo,
                          int *ok) WARD_MUST_CHECK;

/* ---- search (store/search.c) --------------------------------------------- */

typedef struct {
	const int64_t *source_ids; /* only these sources; NULL/0: any */
	size_t nsource_ids;
	/* Label scope. A source without labels is public. A labelled source is
	 * visible only when its labels intersect `labels`, unless all_labels is
	 * set (the local operator; never set it for a remote caller). */
	const char *const *labels;
	size_t nlabels;
	int all_labels;
	int min_trust; /* a ward_trust value (0 low .. 2 high); 0 admits all */
} ward_search_filter;

/* One candidate. All strings are owned (ward_free'd by the dispose
 * functions); row points into them. */
typedef struct {
	ward_chunk_row row;
	double bm25; /* FTS5 bm25(): lower is better */
	char *title, *identity_uri, *source_name, *trust, *doc_state, *source_state;
	/* owned copies behind row */
	char *heading_path, *text, *key_id, *uri, *ruleset_sha256, *verdict, *fetched_at;
	uint8_t *text_sha256, *signature, *doc_sha256;
} ward_search_hit;

void ward_search_hit_dispose(ward_search_hit *h);
void ward_search_hits_free(ward_search_hit *h, size_t n);

/*
 * Runs an FTS5 query (already made safe by ward_query_to_fts; bound as a
 * parameter) over served chunks only, ranked by bm25 with title and heading
 * path weighted (3, 2, 1), ties by chunk id. Returns at most `limit` hits
 * after skipping `offset`.
 *
 * Two-phase (docs/retrieval.md "Ranking at scale"): terms are classed by
 * their document frequency (cached per process, invalidated by any change of
 * the index), a bounded set of candidate rows -- every row with a rare term,
 * or the rows with all the common terms when no term is rare -- is read with
 * its term frequencies, and rows are scored with the bm25 formula and cached
 * IDFs in upper-bound order, their lengths looked up only while their bound
 * can still reach the results; the best are joined and filtered. The score of
 * a returned row equals bm25()'s; a row outside the candidate set (only
 * common terms, not all of them) can be missed, and at most 5,000 candidate
 * rows are read (in rowid order). When the candidates run out before `limit`
 * rows passed the filters, the plain OR query is used.
 * A text that is not a list of quoted terms joined by OR goes to the plain
 * query.
 */
int ward_store_search(ward_store *s, const char *fts_query, const ward_search_filter *f, size_t limit, size_t offset,
                      ward_search_hit **out, size_t *n) WARD_MUST_CHECK;

/* The plain query: bm25() over every row the FTS5 query matches, joined and
 * filtered, ORDER BY score, id. Exact, and slow on large stores (reference
 * for tests and benchmarks). */
int ward_store_search_plain(ward_store *s, const char *fts_query, const ward_search_filter *f, size_t limit,
                            size_t offset, ward_search_hit **out, size_t *n) WARD_MUST_CHECK;

/* Process-wide search counters: two-phase searches, those whose candidate
 * scan hit its cap, those widened to the plain OR query because the
 * candidates ran out, and document-frequency cache misses. */
typedef struct {
	unsigned long long searches, capped, widened, df_lookups;
} ward_search_stats;
void ward_search_stats_get(ward_search_stats *out);

/* A chunk by id whatever its state (doc_state and source_state tell);
 * *found is 0 when no such chunk exists. */
int ward_store_chunk_get(ward_store *s, int64_t chunk_id, ward_search_hit *out, int *found) WARD_MUST_CHECK;

/* Tree size of the latest signed audit checkpoint (*found 0: none yet). Read
 * only; never signs. */
int ward_store_checkpoint_size(ward_store *s, int64_t *size, int *found) WARD_MUST_CHECK;

/* ---- traces (store/traces.c) --------------------------------------------- */

/*
 * Appends one JSON line to the trace sinks of the store's config.yaml
 * ("traces:"; default the file HOME/traces.jsonl, created 0600, O_APPEND,
 * never through a symlink, hash-chained: ragward/traces.h). The line is
 * written before the call returns. traces.sync, when set, replaces `sync`:
 * 0 never fdatasync; WARD_TRACE_SYNC_BATCH (1) fdatasync in batches -- at
 * most once per WARD_TRACE_SYNC_MS or every WARD_TRACE_SYNC_RECORDS records,
 * checked at each append, plus ward_trace_flush and at exit, so a power loss
 * can lose the last window's records, a process crash none; WARD_TRACE_SYNC_NOW
 * (2) fdatasync this record before returning.
 */
#define WARD_TRACE_SYNC_BATCH   1
#define WARD_TRACE_SYNC_NOW     2
#define WARD_TRACE_SYNC_MS      200
#define WARD_TRACE_SYNC_RECORDS 256
int ward_trace_append(ward_store *s, const json_t *record, int sync) WARD_MUST_CHECK;
/* fdatasync the records the batch left unsynced (a server's shutdown; runs
 * at exit too). */
int ward_trace_flush(void) WARD_MUST_CHECK;
/* The record of a trace id (32 hex), the last one when repeated;
 * WARD_ENOTFOUND when absent, WARD_EINVAL for a malformed id. */
int ward_trace_find(ward_store *s, const char *trace_id, json_t **out) WARD_MUST_CHECK;

/* ---- retrieval (query/retrieve.c) ---------------------------------------- */

/*
 * Turns a user's text into a safe FTS5 query: the text is split on Unicode
 * letters and digits (ICU), every term is quoted ("term", internal quotes
 * doubled), English stop words are dropped unless nothing else is left,
 * duplicates removed, and the terms joined with OR. No FTS syntax of the
 * caller survives. WARD_EINVAL for a NUL byte, invalid UTF-8, no terms, or
 * "query too long/complex" (more than WARD_QUERY_MAX_BYTES bytes or
 * WARD_QUERY_MAX_TERMS terms). *out is ward_malloc'd; *nterms may be NULL.
 */
int ward_query_to_fts(char **out, size_t *nterms, const char *text, size_t len) WARD_MUST_CHECK;

typedef struct {
	size_t k; /* 1..WARD_QUERY_MAX_K (default 5) */
	ward_search_filter filter;
	int datamark;       /* spotlighting: whitespace in the context's text -> U+02C6 */
	const char *caller; /* recorded in the trace ("cli:alice", a token's name) */
	int no_trace;       /* 1: write no trace record (tests, benchmarks) */
	int trace_sync;     /* WARD_TRACE_SYNC_BATCH (default), _NOW, or 0 */
} ward_retrieve_opts;

void ward_retrieve_opts_init(ward_retrieve_opts *o);

/*
 * Retrieves, verifies and renders. *out receives the result object
 * (docs/retrieval.md): {"trace_id", "query", "results": [...], "withheld",
 * "context"}. Appends the trace record before returning (a trace that cannot
 * be written fails the call: WARD_EIO). Errors: WARD_EINVAL (bad query, k or
 * filter), WARD_EDB (reported with a generic message; the database's own text
 * goes to the log only), WARD_EIO.
 */
int ward_retrieve(ward_store *s, const char *query, size_t len, const ward_retrieve_opts *o,
                  json_t **out) WARD_MUST_CHECK;

/* Process-wide counters, for /metrics. */
typedef struct {
	unsigned long long verified, cache_hits, withheld;
} ward_retrieve_stats;
void ward_retrieve_stats_get(ward_retrieve_stats *out);
/* Empties the verification cache (tests; key revocation in a server). */
void ward_verify_cache_clear(void);

/* ---- citation check (query/cite.c) --------------------------------------- */

/*
 * Finds citation tags ([1], [2][3], [1, 2]) in a model's output and resolves
 * each against the trace: *out = {"trace_id", "citations": [{"tag",
 * "chunk_id", "uri", "title", "section", "status"}], "ok"}, status one of
 * "ok", "not-retrieved" (never returned in that trace), "revoked" (source no
 * longer approved, document no longer active, chunk gone) or "changed" (text
 * hash differs from the trace, or verification now fails). "ok" is true when
 * every citation is "ok". WARD_ENOTFOUND when the trace does not exist.
 */
int ward_cite_check(ward_store *s, const char *trace_id, const char *output, size_t len, json_t **out) WARD_MUST_CHECK;

#endif
