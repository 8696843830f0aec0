/*
 * Store internals shared by the files of store/. Nothing outside store/ may
 * include this header: it is where SQL lives.
 */
#ifndef RAGWARD_STORE_DB_INTERNAL_H
#define RAGWARD_STORE_DB_INTERNAL_H

#include <sqlite3.h>
#include "ragward/store.h"
#include "ragward/crypto.h"
#include "ragward/merkle.h"
#include "ragward/retrieve.h"
#include "ragward/documents.h"

struct ward_store {
	sqlite3 *db;
	char *home;
	char store_id[33];
	int flags;
	ward_config config;
	ward_key *signer;      /* NULL unless WARD_STORE_SIGN */
	char key_id[33];       /* signer's id, "" otherwise */
	int in_tx;
	int events_appended;   /* in the open transaction */
	ward_merkle_frontier frontier; /* valid while in_tx && frontier_loaded */
	int frontier_loaded;
	/* The last ward_store_commit failed in the COMMIT itself: the change may
	 * still be durable (a WAL commit record can reach the disk before the
	 * sync fails), so callers must not undo side effects outside the
	 * database. */
	int commit_uncertain;
	int defer_anchor;   /* batch runs: refresh HOME/anchor.checkpoint once, at flush/close */
	int anchor_pending; /* a commit sealed a checkpoint the anchor does not show yet */
	/* Statements of the retrieval path kept prepared (ward_db_prepare_cached),
	 * keyed by the address of their static SQL text. */
	struct {
		const char *sql;
		sqlite3_stmt *st;
		int busy;
	} stmt_cache[12];
	int scorer_registered; /* store/search.c's FTS5 function, per connection */
};

/* Records the SQLite error of `s` as WARD_EDB (WARD_EBUSY for lock timeouts),
 * prefixed with what was being done. Returns the code. */
int ward_db_fail(ward_store *s, const char *what);

int ward_db_exec(ward_store *s, const char *sql) WARD_MUST_CHECK;
int ward_db_prepare(ward_store *s, sqlite3_stmt **st, const char *sql) WARD_MUST_CHECK;

/*
 * The same for a hot path: the statement stays prepared on the connection
 * between calls. `sql` must be a string with static storage (the cache is
 * keyed by its address). Give the statement back with ward_db_release, on
 * every path: that resets it (ending its read transaction) and clears its
 * bindings. A statement already out (a nested use) or a full cache gets a
 * fresh one, which ward_db_release finalizes.
 */
int ward_db_prepare_cached(ward_store *s, sqlite3_stmt **st, const char *sql) WARD_MUST_CHECK;
void ward_db_release(ward_store *s, sqlite3_stmt *st);

/* Copies a text column (NULL stays NULL). WARD_ENOMEM on failure. */
int ward_db_col_dup(char **out, sqlite3_stmt *st, int col) WARD_MUST_CHECK;

/* Binds a NUL-terminated string, or NULL as SQL NULL. */
int ward_db_bind_text(sqlite3_stmt *st, int idx, const char *s);

/* Schema and migrations (store/schema.c). */
#define WARD_SCHEMA_VERSION 1
#define WARD_APPLICATION_ID 0x52477264 /* "RGrd" */
int ward_schema_migrate(ward_store *s) WARD_MUST_CHECK;

/* Audit internals used by db.c around commit (store/audit.c). */
int ward_audit_tx_begin(ward_store *s) WARD_MUST_CHECK;
int ward_audit_tx_seal(ward_store *s) WARD_MUST_CHECK; /* sign + store checkpoint */
int ward_audit_write_anchor(ward_store *s) WARD_MUST_CHECK;

/* Keys internals (store/keys.c). */
int ward_keys_insert(ward_store *s, const ward_key *k, const char *key_id) WARD_MUST_CHECK;
int ward_keys_load_signer(ward_store *s) WARD_MUST_CHECK;

/* The columns a chunk's signed statement is rebuilt from, in the order
 * ward_chunk_row_from_stmt reads them (store/review.c); callers select them
 * first, from chunks c joined to documents d. */
#define WARD_CHUNK_ROW_COLUMNS                                                                                     \
	"c.id, c.ordinal, c.heading_path, c.char_start, c.char_end, c.text, c.text_sha256,"                       \
	" c.statement_version, c.key_id, c.signature, d.id, d.version, d.source_id,"                               \
	" COALESCE(d.final_url, d.uri), d.byte_sha256, d.ruleset_sha256, d.verdict, d.fetched_at"
/* Fills a ward_chunk_row (include/ragward/retrieve.h) from columns 0..17. */
void ward_chunk_row_from_stmt(ward_chunk_row *row, sqlite3_stmt *st);

/* Findings rows of a document (store/documents.c), in the caller's transaction. */
int ward_findings_insert(ward_store *s, int64_t doc_id, const ward_finding_in *findings, size_t n) WARD_MUST_CHECK;

/* Config (store/config.c). */
int ward_config_load(ward_config *cfg, const char *home) WARD_MUST_CHECK;

#endif
