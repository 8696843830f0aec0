/*
 * Whole-store verification: `ragward verify`.
 *
 * Every column of a chunk row is either inside its signed statement or
 * cross-checked (docs/verify.md has the table). The expensive part, one
 * Ed25519 verification per chunk, runs on worker threads, each with its own
 * read-only connection over a range of ids, where it also matches the chunks
 * with the FTS rows in both directions; the calling thread checks documents,
 * sources, keys, the audit log and SQLite's own integrity at the same time
 * on the caller's connection. Nothing here writes: the one
 * read-write connection (the FTS5 'integrity-check' command is an INSERT)
 * runs inside a transaction that is rolled back.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/audit.h"
#include "ragward/canon.h"
#include "ragward/crypto.h"
#include "ragward/keys.h"
#include "ragward/retrieve.h"
#include "ragward/verify.h"
#include "store/db_internal.h"
#include "core/banned.h"

/* ---- failure lines ------------------------------------------------------------ */

typedef struct {
	ward_finding_line *v;
	size_t n, cap;
	uint64_t omitted;
} fail_list;

static void fail_list_dispose(fail_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		ward_free(l->v[i].object);
		ward_free(l->v[i].problem);
	}
	ward_free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Moves a finished line into the list; past the cap it is only counted. */
static int fail_push(fail_list *l, char *object, char *problem)
{
	if (!object || !problem) {
		ward_free(object);
		ward_free(problem);
		return ward_error_set(WARD_ENOMEM, "verify: out of memory");
	}
	if (l->n >= WARD_VERIFY_MAX_FAILURES) {
		l->omitted++;
		ward_free(object);
		ward_free(problem);
		return 0;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		ward_finding_line *v = ward_realloc(l->v, cap * sizeof(*v));
		if (!v) {
			ward_free(object);
			ward_free(problem);
			return ward_error_set(WARD_ENOMEM, "verify: out of memory");
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].object = object;
	l->v[l->n].problem = problem;
	l->n++;
	return 0;
}

static char *vformat(const char *fmt, va_list ap) WARD_PRINTF(1, 0);
static char *vformat(const char *fmt, va_list ap)
{
	char tmp[1024];
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);

	if (n < 0)
		return NULL;
	return ward_strdup(tmp); /* longer lines are cut at 1 KiB: they name untrusted values */
}

/* "chunk 42" + "signature invalid". Every id is printed, negative ones too:
 * whoever can write the file can put a row at any rowid. */
static int fail_add(fail_list *l, const char *kind, int64_t id, const char *fmt, ...) WARD_PRINTF(4, 5);
static int fail_add(fail_list *l, const char *kind, int64_t id, const char *fmt, ...)
{
	char obj[64];
	va_list ap;
	char *problem;

	if (l->n >= WARD_VERIFY_MAX_FAILURES) {
		l->omitted++;
		return 0;
	}
	snprintf(obj, sizeof(obj), "%s %" PRId64, kind, id);
	va_start(ap, fmt);
	problem = vformat(fmt, ap);
	va_end(ap);
	return fail_push(l, ward_strdup(obj), problem);
}

/* An object named without a row id: "sqlite", "fts", "key 3f…". */
static int fail_add_obj(fail_list *l, const char *object, const char *fmt, ...) WARD_PRINTF(3, 4);
static int fail_add_obj(fail_list *l, const char *object, const char *fmt, ...)
{
	va_list ap;
	char *problem;

	if (l->n >= WARD_VERIFY_MAX_FAILURES) {
		l->omitted++;
		return 0;
	}
	va_start(ap, fmt);
	problem = vformat(fmt, ap);
	va_end(ap);
	return fail_push(l, ward_strdup(object), problem);
}

static int fail_move_all(fail_list *to, fail_list *from)
{
	int rc = 0;

	for (size_t i = 0; i < from->n; i++) {
		if (rc == 0)
			rc = fail_push(to, from->v[i].object, from->v[i].problem);
		else {
			ward_free(from->v[i].object);
			ward_free(from->v[i].problem);
		}
		from->v[i].object = from->v[i].problem = NULL;
	}
	to->omitted += from->omitted;
	from->n = 0;
	from->omitted = 0;
	return rc;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Compares a text column with an expected value (NULL-aware, byte-exact). */
static int col_equals(sqlite3_stmt *st, int col, const void *want, size_t want_len, int want_null)
{
	const void *got;
	size_t len;

	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return want_null;
	if (want_null)
		return 0;
	got = sqlite3_column_text(st, col);
	len = (size_t)sqlite3_column_bytes(st, col);
	return len == want_len && (len == 0 || memcmp(got, want, len) == 0);
}

/* ---- chunks and FTS rows (worker threads) ------------------------------------------ */

/*
 * Each worker reads its range of ids twice, in id order: the chunks (with
 * their document, LEFT JOIN: it may be missing) and the FTS rows. The two
 * sorted streams are matched like a merge join, so every chunk is paired
 * with the FTS row of the same id and every FTS row with its chunk, in one
 * sequential pass over each table instead of a lookup per row.
 *
 * Chunk columns: 0..17 as review.c's WARD_CHUNK_ROW_COLUMNS; 18 the chunk's
 * own document_id (d may be missing); 19 the document's title, which every
 * FTS row of the document must repeat.
 */
#define VERIFY_CHUNK_SQL                                                                                           \
	"SELECT " WARD_CHUNK_ROW_COLUMNS ", c.document_id, COALESCE(d.title, '')"                                  \
	" FROM chunks c LEFT JOIN documents d ON d.id = c.document_id"                                             \
	" WHERE c.id BETWEEN ?1 AND ?2 ORDER BY c.id"
/* FTS5 turns the rowid bounds into a range scan of its content table, in
 * rowid order. */
#define VERIFY_FTS_SQL                                                                                             \
	"SELECT rowid, title, heading_path, text FROM chunks_fts WHERE rowid BETWEEN ?1 AND ?2 ORDER BY rowid"
enum { FTS_ROWID, FTS_TITLE, FTS_HEADING, FTS_TEXT };

/* A verification row; the document may be missing (LEFT JOIN), so the
 * chunk's own document_id (column 18) is used. */
static void chunk_row_fill(ward_chunk_row *row, sqlite3_stmt *st)
{
	ward_chunk_row_from_stmt(row, st);
	row->document_id = sqlite3_column_int64(st, 18);
	if (!row->text)
		row->text = "";
}

/*
 * The ranges of all jobs together cover every possible id (the first starts
 * at INT64_MIN, the last ends at INT64_MAX), so no chunk and no FTS row can
 * fall between them, whatever ids the store holds.
 */
typedef struct {
	const char *home;
	int64_t lo, hi;
	uint64_t checked, failed;  /* chunks */
	uint64_t fts_rows, fts_failed;
	fail_list fails;           /* chunks and their FTS rows, by id */
	fail_list orphans;         /* FTS rows without a chunk, by rowid */
	int rc;
	ward_error err;
	double finished;
} chunk_job;

/*
 * Names what is wrong with a chunk that failed ward_chunk_verify_row: the
 * stored text hash, the signature (checked again over the recomputed hash,
 * so an edited text_sha256 column alone does not also read as a bad
 * signature), or the key it names.
 */
static int chunk_diagnose(ward_store *s, ward_chunk_keys *keys, const ward_chunk_row *row, fail_list *l)
{
	uint8_t h[WARD_SHA256_LEN];
	ward_chunk_row again = *row;
	ward_key *k = NULL;
	int rc, ok = 0;

	if ((rc = ward_sha256(h, row->text, row->text_len)) < 0)
		return rc;
	if (row->text_sha256_len != WARD_SHA256_LEN || memcmp(row->text_sha256, h, WARD_SHA256_LEN) != 0)
		if ((rc = fail_add(l, "chunk", row->chunk_id, "text hash mismatch")) < 0)
			return rc;
	again.text_sha256 = h;
	again.text_sha256_len = WARD_SHA256_LEN;
	if ((rc = ward_chunk_verify_row(s, &again, keys, NULL, &ok)) < 0)
		return rc;
	if (ok)
		return 0;
	if (row->statement_version != WARD_STATEMENT_VERSION)
		return fail_add(l, "chunk", row->chunk_id, "signature invalid (unknown statement version %d)",
				row->statement_version);
	if (!row->key_id || (rc = ward_keys_public(s, row->key_id, &k)) < 0) {
		int code = ward_error_last()->code;
		if (row->key_id && code != WARD_ENOTFOUND && code != WARD_EVERIFY && code != WARD_ECRYPTO)
			return rc;
		return fail_add(l, "chunk", row->chunk_id, "signature not checkable: %s",
				row->key_id ? ward_error_last()->message : "no key id");
	}
	ward_key_free(k);
	return fail_add(l, "chunk", row->chunk_id, "signature invalid");
}

/* The text hash and signature of one chunk (or its missing document). */
static int chunk_check(ward_store *s, ward_chunk_keys *keys, const ward_chunk_row *row, int have_doc, chunk_job *j)
{
	int rc, ok = 0;

	if (!have_doc) {
		j->failed++;
		return fail_add(&j->fails, "chunk", row->chunk_id, "document %" PRId64 " does not exist",
				row->document_id);
	}
	if ((rc = ward_chunk_verify_row(s, row, keys, NULL, &ok)) < 0)
		return rc;
	if (ok)
		return 0;
	j->failed++;
	return chunk_diagnose(s, keys, row, &j->fails);
}

/* The FTS row of a chunk (same id) repeats its text, heading path and its
 * document's title. */
static int chunk_fts_check(sqlite3_stmt *cst, sqlite3_stmt *fst, const ward_chunk_row *row, int have_doc,
			   chunk_job *j)
{
	const unsigned char *title = sqlite3_column_text(cst, 19); /* before its length: SQLite's rule */
	size_t title_len = (size_t)sqlite3_column_bytes(cst, 19);
	int rc;

	if (!col_equals(fst, FTS_TEXT, row->text, row->text_len, 0)) {
		j->fts_failed++;
		if ((rc = fail_add(&j->fails, "fts row", row->chunk_id, "text differs from chunk %" PRId64 "'s text",
				   row->chunk_id)) < 0)
			return rc;
	}
	if (!col_equals(fst, FTS_HEADING, row->heading_path ? row->heading_path : "",
			row->heading_path ? strlen(row->heading_path) : 0, 0)) {
		j->fts_failed++;
		if ((rc = fail_add(&j->fails, "fts row", row->chunk_id, "heading_path differs from chunk %" PRId64 "'s",
				   row->chunk_id)) < 0)
			return rc;
	}
	if (have_doc && !col_equals(fst, FTS_TITLE, title ? (const void *)title : "", title_len, 0)) {
		j->fts_failed++;
		if ((rc = fail_add(&j->fails, "fts row", row->chunk_id, "title differs from document %" PRId64 "'s title",
				   row->document_id)) < 0)
			return rc;
	}
	return 0;
}

/* 1 while a statement has a row, 0 when it is done, -1 on an error (which
 * must stop the merge: an FTS scan cut short would read as missing rows). */
static int step_row(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int chunk_merge(ward_store *s, ward_chunk_keys *keys, sqlite3_stmt *cst, sqlite3_stmt *fst, chunk_job *j)
{
	int c = step_row(cst), f = c < 0 ? 0 : step_row(fst), rc;

	while ((c > 0 || f > 0) && c >= 0 && f >= 0) {
		int64_t cid = c > 0 ? sqlite3_column_int64(cst, 0) : 0;
		int64_t fid = f > 0 ? sqlite3_column_int64(fst, FTS_ROWID) : 0;

		if (f > 0 && (c == 0 || fid < cid)) {
			/* An FTS row whose id no chunk has: reachable by search,
			 * backed by nothing that was signed. */
			j->fts_rows++;
			j->fts_failed++;
			if ((rc = fail_add(&j->orphans, "fts row", fid, "no chunk")) < 0)
				return rc;
			f = step_row(fst);
			continue;
		}
		{
			ward_chunk_row row;
			int have_doc = sqlite3_column_type(cst, 10) != SQLITE_NULL;

			chunk_row_fill(&row, cst);
			j->checked++;
			if ((rc = chunk_check(s, keys, &row, have_doc, j)) < 0)
				return rc;
			if (f > 0 && fid == cid) {
				j->fts_rows++;
				if ((rc = chunk_fts_check(cst, fst, &row, have_doc, j)) < 0)
					return rc;
				f = step_row(fst);
			} else {
				j->fts_failed++;
				if ((rc = fail_add(&j->fails, "chunk", row.chunk_id, "no FTS row")) < 0)
					return rc;
			}
		}
		c = step_row(cst);
	}
	if (c < 0)
		return ward_db_fail(s, "reading chunks");
	if (f < 0)
		return ward_db_fail(s, "reading the FTS index");
	return 0;
}

static void *chunk_worker(void *arg)
{
	chunk_job *j = arg;
	ward_store *s = NULL;
	sqlite3_stmt *cst = NULL, *fst = NULL;
	ward_chunk_keys keys;
	int rc, in_tx = 0;

	memset(&keys, 0, sizeof(keys));
	if ((rc = ward_store_open(&s, j->home, 0)) < 0)
		goto done;
	/* One snapshot for both scans of the range. */
	if ((rc = ward_db_exec(s, "BEGIN")) < 0)
		goto done;
	in_tx = 1;
	if ((rc = ward_db_prepare(s, &cst, VERIFY_CHUNK_SQL)) < 0 || (rc = ward_db_prepare(s, &fst, VERIFY_FTS_SQL)) < 0)
		goto done;
	sqlite3_bind_int64(cst, 1, j->lo);
	sqlite3_bind_int64(cst, 2, j->hi);
	sqlite3_bind_int64(fst, 1, j->lo);
	sqlite3_bind_int64(fst, 2, j->hi);
	rc = chunk_merge(s, &keys, cst, fst, j);
done:
	sqlite3_finalize(cst);
	sqlite3_finalize(fst);
	if (in_tx && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	ward_chunk_keys_dispose(&keys);
	ward_store_close(s);
	j->rc = rc;
	if (rc < 0)
		j->err = *ward_error_last();
	j->finished = now_seconds();
	return NULL;
}

/* ---- documents ---------------------------------------------------------------- */

#define VERIFY_DOC_SQL                                                                                             \
	"SELECT d.id, d.uri, d.version, d.source_id, d.state, d.verdict, COALESCE(d.ruleset_sha256, 'none'),"      \
	" d.byte_sha256, d.byte_len, d.bytes,"                                                                      \
	" (SELECT count(*) FROM chunks WHERE document_id = d.id),"                                                  \
	" (SELECT min(ordinal) FROM chunks WHERE document_id = d.id),"                                              \
	" (SELECT max(ordinal) FROM chunks WHERE document_id = d.id),"                                              \
	" (SELECT count(*) FROM audit_events WHERE subject = 'document:' || d.id AND action = 'document.ingest'),"  \
	" (SELECT details FROM audit_events WHERE subject = 'document:' || d.id AND action = 'document.ingest'"     \
	"  ORDER BY seq LIMIT 1),"                                                                                  \
	" (SELECT min(e.seq) FROM documents n JOIN audit_events e ON e.subject = 'document:' || n.id"              \
	"  AND e.action = 'document.ingest' WHERE n.uri = d.uri AND n.version > d.version),"                       \
	" EXISTS (SELECT 1 FROM sources WHERE id = d.source_id),"                                                   \
	" (SELECT details FROM audit_events WHERE subject = 'document:' || d.id AND action = 'document.rescan'"     \
	"  ORDER BY seq DESC LIMIT 1),"                                                                             \
	" COALESCE(d.title, '')"                                                                                    \
	" FROM documents d ORDER BY d.id"

/* One field of a document row against its ingest event. */
static int doc_field_check(fail_list *l, int64_t id, const char *field, const char *row_value,
			   const char *event_value, int *bad)
{
	if (event_value && row_value && strcmp(event_value, row_value) == 0)
		return 0;
	*bad = 1;
	return fail_add(l, "document", id, "%s '%s' differs from its document.ingest audit event ('%s')", field,
			row_value ? row_value : "(null)", event_value ? event_value : "(missing)");
}

static int doc_int_check(fail_list *l, int64_t id, const char *field, int64_t row_value, const json_t *event_value,
			 int *bad)
{
	if (json_is_integer(event_value) && json_integer_value(event_value) == row_value)
		return 0;
	*bad = 1;
	if (!json_is_integer(event_value))
		return fail_add(l, "document", id, "%s %" PRId64 " is not in its document.ingest audit event", field,
				row_value);
	return fail_add(l, "document", id, "%s %" PRId64 " differs from its document.ingest audit event (%" PRId64 ")",
			field, row_value, (int64_t)json_integer_value(event_value));
}

/*
 * The state a document must be in according to the audit log: its ingest
 * event (verdict quarantine: quarantined, else active), then in log order
 * its quarantine.release (-> active), quarantine.drop (-> dropped) and
 * document.rescan (from_state -> to_state) events and the ingest event of the
 * next version of its URI (active or quarantined -> superseded). An event
 * that could not have happened from the state reached is itself reported.
 */
static int doc_expected_state(ward_store *s, sqlite3_stmt *ev, fail_list *l, int64_t id, const char *verdict,
			      int64_t succ_seq, const char **out, int *bad)
{
	const char *state = verdict && strcmp(verdict, "quarantine") == 0 ? "quarantined" : "active";
	int rc, superseded = succ_seq <= 0;
	char subject[48];

	snprintf(subject, sizeof(subject), "document:%" PRId64, id);
	sqlite3_reset(ev);
	ward_db_bind_text(ev, 1, subject);
	while ((rc = sqlite3_step(ev)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(ev, 0);
		const char *action = (const char *)sqlite3_column_text(ev, 1);
		int release = action && strcmp(action, "quarantine.release") == 0;

		if (!superseded && seq > succ_seq) {
			superseded = 1;
			if (!strcmp(state, "active") || !strcmp(state, "quarantined"))
				state = "superseded";
		}
		if (action && strcmp(action, "document.rescan") == 0) {
			/* A rescan moves active -> quarantined, or keeps the state. */
			json_t *d = json_loads((const char *)sqlite3_column_text(ev, 2), JSON_REJECT_DUPLICATES, NULL);
			const char *from = json_string_value(json_object_get(d, "from_state"));
			const char *to = json_string_value(json_object_get(d, "to_state"));
			const char *next = !to ? NULL : !strcmp(to, "active") ? "active" : !strcmp(to, "quarantined") ? "quarantined" : NULL;
			int ok = from && next && !strcmp(from, state) &&
				 (!strcmp(from, next) || (!strcmp(from, "active") && !strcmp(next, "quarantined")));

			json_decref(d);
			if (!ok) {
				*bad = 1;
				if ((rc = fail_add(l, "document", id, "audit event %" PRId64 " (document.rescan) applies to a"
								       " document in state '%s'", seq, state)) < 0)
					return rc;
				continue;
			}
			state = next;
			continue;
		}
		if (strcmp(state, "quarantined") != 0) {
			*bad = 1;
			if ((rc = fail_add(l, "document", id, "audit event %" PRId64 " (%s) applies to a document in state '%s'",
					   seq, action ? action : "?", state)) < 0)
				return rc;
			continue;
		}
		state = release ? "active" : "dropped";
	}
	if (rc != SQLITE_DONE)
		return ward_db_fail(s, "reading quarantine events");
	if (!superseded && (!strcmp(state, "active") || !strcmp(state, "quarantined")))
		state = "superseded";
	*out = state;
	return 0;
}

static int doc_check_one(ward_store *s, sqlite3_stmt *st, sqlite3_stmt *ev, fail_list *l, ward_verify_report *r)
{
	int64_t id = sqlite3_column_int64(st, 0);
	const char *uri = (const char *)sqlite3_column_text(st, 1);
	int64_t version = sqlite3_column_int64(st, 2), source_id = sqlite3_column_int64(st, 3);
	const char *state = (const char *)sqlite3_column_text(st, 4);
	const char *verdict = (const char *)sqlite3_column_text(st, 5);
	const char *ruleset = (const char *)sqlite3_column_text(st, 6);
	const uint8_t *sha = sqlite3_column_blob(st, 7);
	size_t sha_len = (size_t)sqlite3_column_bytes(st, 7);
	int64_t byte_len = sqlite3_column_int64(st, 8);
	int64_t nchunks = sqlite3_column_int64(st, 10), omin = sqlite3_column_int64(st, 11),
		omax = sqlite3_column_int64(st, 12), nevents = sqlite3_column_int64(st, 13);
	const char *details = (const char *)sqlite3_column_text(st, 14);
	int64_t succ_seq = sqlite3_column_int64(st, 15);
	int source_exists = sqlite3_column_int(st, 16);
	const char *rescan_details = (const char *)sqlite3_column_text(st, 17);
	json_t *ev_json = NULL, *rescan_json = NULL, *judged;
	const char *expected = NULL;
	char hex[2 * WARD_SHA256_LEN + 1] = "";
	int rc = 0, bad = 0;

	r->documents.checked++;
	if (sha_len == WARD_SHA256_LEN)
		ward_hex_encode_to(hex, sha, WARD_SHA256_LEN);
	if (sqlite3_column_type(st, 9) != SQLITE_NULL) {
		const void *bytes = sqlite3_column_blob(st, 9);
		size_t n = (size_t)sqlite3_column_bytes(st, 9);
		uint8_t h[WARD_SHA256_LEN];

		r->documents_with_bytes++;
		if ((rc = ward_sha256(h, bytes ? bytes : "", n)) < 0)
			goto done;
		if (sha_len != WARD_SHA256_LEN || memcmp(h, sha, WARD_SHA256_LEN) != 0) {
			bad = 1;
			if ((rc = fail_add(l, "document", id, "bytes hash mismatch")) < 0)
				goto done;
		}
		if ((int64_t)n != byte_len) {
			bad = 1;
			if ((rc = fail_add(l, "document", id, "bytes length %zu differs from byte_len %" PRId64, n,
					   byte_len)) < 0)
				goto done;
		}
	}
	if (!source_exists) {
		bad = 1;
		if ((rc = fail_add(l, "document", id, "source %" PRId64 " does not exist", source_id)) < 0)
			goto done;
	}
	if (nchunks > 0 && (omin != 0 || omax != nchunks - 1)) {
		bad = 1;
		if ((rc = fail_add(l, "document", id, "chunk ordinals are not 0..%" PRId64 " (min %" PRId64 ", max %" PRId64 ")",
				   nchunks - 1, omin, omax)) < 0)
			goto done;
	}
	if (nevents != 1 || !details || !(ev_json = json_loads(details, JSON_REJECT_DUPLICATES, NULL))) {
		bad = 1;
		rc = fail_add(l, "document", id, "%s; state '%s' not explained by the audit log",
			      nevents == 0 ? "no document.ingest audit event"
			      : nevents > 1 ? "more than one document.ingest audit event"
					    : "document.ingest audit event unreadable",
			      state ? state : "?");
		goto done;
	}
	/* The verdict and rule set are the ingest event's, or those of the last
	 * document.rescan event when the document was rescanned. */
	judged = ev_json;
	if (rescan_details) {
		json_t *rj = json_loads(rescan_details, JSON_REJECT_DUPLICATES, NULL);
		rescan_json = json_pack("{s:O?, s:O?}", "verdict", json_object_get(rj, "to_verdict"), "ruleset_sha256",
					json_object_get(rj, "to_ruleset"));
		json_decref(rj);
		if (!rescan_json) {
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
		judged = rescan_json;
	}
	/* The title is shown to the model with every citation but is not in the
	 * chunk statement: it must equal what the ingest event recorded. */
	if (json_object_get(ev_json, "title") &&
	    (rc = doc_field_check(l, id, "title", (const char *)sqlite3_column_text(st, 18),
				  json_string_value(json_object_get(ev_json, "title")), &bad)) < 0)
		goto done;
	if ((rc = doc_field_check(l, id, "uri", uri, json_string_value(json_object_get(ev_json, "uri")), &bad)) < 0 ||
	    (rc = doc_int_check(l, id, "version", version, json_object_get(ev_json, "version"), &bad)) < 0 ||
	    (rc = doc_int_check(l, id, "source_id", source_id, json_object_get(ev_json, "source_id"), &bad)) < 0 ||
	    (rc = doc_field_check(l, id, "byte_sha256", hex, json_string_value(json_object_get(ev_json, "sha256")),
				  &bad)) < 0 ||
	    (rc = doc_field_check(l, id, "verdict", verdict, json_string_value(json_object_get(judged, "verdict")),
				  &bad)) < 0 ||
	    (rc = doc_field_check(l, id, "ruleset_sha256", ruleset,
				  json_string_value(json_object_get(judged, "ruleset_sha256")), &bad)) < 0)
		goto done;
	if (json_integer_value(json_object_get(ev_json, "chunks")) != nchunks) {
		bad = 1;
		if ((rc = fail_add(l, "document", id, "%" PRId64 " chunks stored, its document.ingest audit event says %" PRId64,
				   nchunks, (int64_t)json_integer_value(json_object_get(ev_json, "chunks")))) < 0)
			goto done;
	}
	if ((rc = doc_expected_state(s, ev, l, id, json_string_value(json_object_get(ev_json, "verdict")), succ_seq,
				     &expected, &bad)) < 0)
		goto done;
	if (!state || strcmp(state, expected) != 0) {
		bad = 1;
		rc = fail_add(l, "document", id, "state '%s' not explained by the audit log (expected '%s')",
			      state ? state : "?", expected);
	}
done:
	if (bad)
		r->documents.failed++;
	json_decref(rescan_json);
	json_decref(ev_json);
	return rc;
}

static int check_documents(ward_store *s, fail_list *l, ward_verify_report *r)
{
	sqlite3_stmt *st = NULL, *ev = NULL;
	int rc;

	if ((rc = ward_db_prepare(s, &st, VERIFY_DOC_SQL)) < 0 ||
	    (rc = ward_db_prepare(s, &ev, "SELECT seq, action, details FROM audit_events WHERE subject = ?1 AND action IN"
					  " ('quarantine.release', 'quarantine.drop', 'document.rescan') ORDER BY seq")) < 0)
		goto done;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((rc = doc_check_one(s, st, ev, l, r)) < 0)
			goto done;
	rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "reading documents");
done:
	sqlite3_finalize(st);
	sqlite3_finalize(ev);
	return rc;
}

/* ---- sources ---------------------------------------------------------------------- */

#define VERIFY_SOURCE_SQL                                                                                          \
	"SELECT s.id, s.name, s.kind, s.pattern, s.trust, s.state,"                                                 \
	" (SELECT action FROM audit_events WHERE subject = 'source:' || s.id AND action IN ('source.request',"      \
	"  'source.import', 'source.approve', 'source.reject', 'source.revoke') ORDER BY seq DESC LIMIT 1),"        \
	" (SELECT details FROM audit_events WHERE subject = 'source:' || s.id AND action IN ('source.request',"     \
	"  'source.import') ORDER BY seq LIMIT 1),"                                                                 \
	" s.labels, s.allow_private, s.seeds"                                                                       \
	" FROM sources s ORDER BY s.id"

static const char *source_state_after(const char *action)
{
	static const struct {
		const char *action, *state;
	} map[] = {{"source.request", "requested"}, {"source.import", "approved"}, {"source.approve", "approved"},
		   {"source.reject", "rejected"},   {"source.revoke", "revoked"}};

	for (size_t i = 0; action && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(action, map[i].action) == 0)
			return map[i].state;
	return NULL;
}

/* The compact JSON text of a list recorded in an event: requests record the
 * array itself, imports its JSON text. NULL when absent or malformed. */
static char *event_list_text(const json_t *v)
{
	json_t *parsed = NULL;
	char *out;

	if (json_is_string(v))
		v = parsed = json_loads(json_string_value(v), JSON_REJECT_DUPLICATES, NULL);
	out = json_is_array(v) ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(parsed);
	return out;
}

/* Labels decide who sees a source's chunks, allow_private where it may be
 * fetched from, seeds what `ingest --all` fetches: none is signed, so each
 * must equal what the request or import recorded. */
static int check_source_lists(fail_list *l, int64_t id, const json_t *ev, sqlite3_stmt *st, int *bad)
{
	static const struct {
		int col;
		const char *field;
	} lists[] = {{8, "labels"}, {10, "seeds"}};
	const json_t *ap = json_object_get(ev, "allow_private");
	int rc;

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		const json_t *v = json_object_get(ev, lists[i].field);
		const char *got = (const char *)sqlite3_column_text(st, lists[i].col);
		char *want;

		if (!v && strcmp(lists[i].field, "seeds") == 0 && got && strcmp(got, "[]") == 0)
			continue; /* events written before seeds existed */
		want = event_list_text(v);
		if (!want || !got || strcmp(want, got) != 0) {
			*bad = 1;
			rc = fail_add(l, "source", id, "%s %s differ from the audit log (%s)", lists[i].field,
				      got ? got : "(null)", want ? want : "(missing)");
			ward_free(want); /* json_dumps allocates through the hook */
			if (rc < 0)
				return rc;
			continue;
		}
		ward_free(want); /* json_dumps allocates through the hook */
	}
	if (!json_is_boolean(ap) || json_is_true(ap) != (sqlite3_column_int(st, 9) != 0)) {
		*bad = 1;
		if ((rc = fail_add(l, "source", id, "allow_private %d differs from the audit log",
				   sqlite3_column_int(st, 9))) < 0)
			return rc;
	}
	return 0;
}

static int check_sources(ward_store *s, fail_list *l, ward_verify_report *r)
{
	static const struct {
		int col;
		const char *field;
	} defn[] = {{1, "name"}, {2, "kind"}, {3, "pattern"}, {4, "trust"}};
	sqlite3_stmt *st = NULL;
	json_t *ev = NULL;
	int rc;

	if ((rc = ward_db_prepare(s, &st, VERIFY_SOURCE_SQL)) < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		const char *state = (const char *)sqlite3_column_text(st, 5);
		const char *expected = source_state_after((const char *)sqlite3_column_text(st, 6));
		const char *details = (const char *)sqlite3_column_text(st, 7);
		int bad = 0;

		r->sources.checked++;
		if (!expected || !state || strcmp(expected, state) != 0) {
			bad = 1;
			if (expected)
				rc = fail_add(l, "source", id, "state '%s' not explained by the audit log (expected '%s')",
					      state ? state : "?", expected);
			else
				rc = fail_add(l, "source", id, "state '%s' not explained by the audit log (no source event)",
					      state ? state : "?");
			if (rc < 0)
				goto done;
		}
		json_decref(ev);
		ev = details ? json_loads(details, JSON_REJECT_DUPLICATES, NULL) : NULL;
		for (size_t i = 0; ev && i < sizeof(defn) / sizeof(defn[0]); i++) {
			const char *want = json_string_value(json_object_get(ev, defn[i].field));
			const char *got = (const char *)sqlite3_column_text(st, defn[i].col);
			if (!want || !got || strcmp(want, got) != 0) {
				bad = 1;
				if ((rc = fail_add(l, "source", id, "%s '%s' differs from the audit log ('%s')", defn[i].field,
						   got ? got : "(null)", want ? want : "(missing)")) < 0)
					goto done;
			}
		}
		if (ev && (rc = check_source_lists(l, id, ev, st, &bad)) < 0)
			goto done;
		if (bad)
			r->sources.failed++;
	}
	rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "reading sources");
done:
	json_decref(ev);
	sqlite3_finalize(st);
	return rc;
}

/* ---- keys ------------------------------------------------------------------------ */

static int check_keys(ward_store *s, fail_list *l, ward_verify_report *r)
{
	sqlite3_stmt *st = NULL;
	ward_key *k = NULL;
	int rc;

	if ((rc = ward_db_prepare(s, &st, "SELECT k.key_id, (SELECT count(*) FROM audit_events WHERE subject = k.key_id"
					  " AND action IN ('key.create', 'key.rotate')) FROM keys k ORDER BY k.rowid")) < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		char obj[80];
		int bad = 0;

		r->keys.checked++;
		snprintf(obj, sizeof(obj), "key %s", id ? id : "?");
		if (!id || ward_keys_public(s, id, &k) < 0) {
			int code = ward_error_last()->code;
			if (id && code != WARD_ENOTFOUND && code != WARD_EVERIFY && code != WARD_ECRYPTO) {
				rc = code;
				goto done;
			}
			bad = 1;
			if ((rc = fail_add_obj(l, obj, "%s", id ? ward_error_last()->message : "no key id")) < 0)
				goto done;
		}
		ward_key_free(k);
		k = NULL;
		if (sqlite3_column_int64(st, 1) == 0) {
			bad = 1;
			if ((rc = fail_add_obj(l, obj, "no key.create or key.rotate audit event")) < 0)
				goto done;
		}
		if (bad)
			r->keys.failed++;
	}
	rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "reading keys");
done:
	ward_key_free(k);
	sqlite3_finalize(st);
	return rc;
}

/* ---- audit log and SQLite --------------------------------------------------------- */

static int check_audit(ward_store *s, const char *checkpoint, fail_list *l, ward_verify_report *r)
{
	ward_audit_report ar;
	int rc;

	memset(&ar, 0, sizeof(ar));
	if ((rc = ward_audit_verify(s, checkpoint, &ar)) < 0)
		goto done;
	r->audit.checked = ar.events;
	r->audit.failed = ar.nfailures;
	r->audit_checkpoints = ar.checkpoints;
	r->audit_anchors = ar.anchors_checked;
	for (size_t i = 0; i < ar.nfailures; i++) {
		char *obj = ar.failures[i].object, *problem = ar.failures[i].problem;
		ar.failures[i].object = ar.failures[i].problem = NULL;
		if ((rc = fail_push(l, obj, problem)) < 0)
			goto done;
	}
done:
	ward_audit_report_dispose(&ar);
	return rc;
}

static int check_sqlite(ward_store *s, fail_list *l, ward_verify_report *r)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = ward_db_prepare(s, &st, "PRAGMA integrity_check")) < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *line = (const char *)sqlite3_column_text(st, 0);
		if (!r->sqlite_integrity && !(r->sqlite_integrity = ward_strdup(line ? line : "?"))) {
			rc = ward_error_set(WARD_ENOMEM, "verify: out of memory");
			goto done;
		}
		if (line && strcmp(line, "ok") == 0)
			continue;
		if ((rc = fail_add_obj(l, "sqlite", "integrity_check: %s", line ? line : "?")) < 0)
			goto done;
	}
	if (rc != SQLITE_DONE) {
		/* A database too damaged to check is a finding, not a tool error. */
		const char *msg = sqlite3_errmsg(s->db);
		if (sqlite3_errcode(s->db) == SQLITE_NOMEM || sqlite3_errcode(s->db) == SQLITE_BUSY) {
			rc = ward_db_fail(s, "integrity_check");
			goto done;
		}
		if ((rc = fail_add_obj(l, "sqlite", "integrity_check: %s", msg)) < 0)
			goto done;
		ward_free(r->sqlite_integrity);
		r->sqlite_integrity = ward_strdup(msg);
	}
	rc = 0;
	if (!r->sqlite_integrity && !(r->sqlite_integrity = ward_strdup("?")))
		rc = ward_error_set(WARD_ENOMEM, "verify: out of memory");
done:
	sqlite3_finalize(st);
	return rc;
}

/*
 * FTS5 checks its index against its content only through the
 * 'integrity-check' command, an INSERT that needs a writable connection
 * (before SQLite 3.44 PRAGMA integrity_check does not look at FTS5 shadow
 * tables). It writes nothing; it still runs inside a transaction that is
 * rolled back, so nothing can change. A store the caller may not write is
 * reported as skipped.
 */
static int check_fts_integrity(const char *home, fail_list *l, ward_verify_report *r)
{
	ward_store *rw = NULL;
	sqlite3_stmt *st = NULL;
	char msg[600];
	int rc, step;

	if (ward_store_open(&rw, home, WARD_STORE_RW) < 0) {
		const ward_error *e = ward_error_last();
		if (e->code != WARD_EIO)
			return e->code;
		snprintf(msg, sizeof(msg), "skipped: %s", e->message);
		r->fts_integrity = ward_strdup(msg);
		return r->fts_integrity ? 0 : ward_error_set(WARD_ENOMEM, "verify: out of memory");
	}
	if ((rc = ward_db_exec(rw, "BEGIN")) < 0)
		goto done;
	if ((rc = ward_db_prepare(rw, &st, "INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")) < 0)
		goto rollback;
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		r->fts_integrity = ward_strdup("ok");
	} else {
		int err = sqlite3_errcode(rw->db);
		if (err == SQLITE_BUSY || err == SQLITE_LOCKED || err == SQLITE_NOMEM || err == SQLITE_READONLY) {
			rc = ward_db_fail(rw, "FTS5 integrity-check");
			goto rollback;
		}
		r->fts_integrity = ward_strdup(sqlite3_errmsg(rw->db));
		if ((rc = fail_add_obj(l, "fts", "integrity-check: %s", sqlite3_errmsg(rw->db))) < 0)
			goto rollback;
	}
	if (!r->fts_integrity)
		rc = ward_error_set(WARD_ENOMEM, "verify: out of memory");
rollback:
	sqlite3_finalize(st);
	st = NULL;
	if (!sqlite3_get_autocommit(rw->db))
		sqlite3_exec(rw->db, "ROLLBACK", NULL, NULL, NULL);
done:
	sqlite3_finalize(st);
	ward_store_close(rw);
	return rc;
}

/* ---- the whole store ---------------------------------------------------------------- */

void ward_verify_opts_init(ward_verify_opts *o)
{
	memset(o, 0, sizeof(*o));
}

unsigned ward_verify_default_jobs(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > WARD_VERIFY_MAX_JOBS ? WARD_VERIFY_MAX_JOBS : (unsigned)n;
}

void ward_verify_report_dispose(ward_verify_report *r)
{
	fail_list l;

	if (!r)
		return;
	l.v = r->failures;
	l.n = l.cap = r->nfailures;
	l.omitted = 0;
	fail_list_dispose(&l);
	ward_free(r->sqlite_integrity);
	ward_free(r->fts_integrity);
	memset(r, 0, sizeof(*r));
}

int ward_verify_report_ok(const ward_verify_report *r)
{
	return r->nfailures == 0 && r->failures_omitted == 0;
}

static int chunk_id_range(ward_store *s, int64_t *lo, int64_t *hi, int *any)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*any = 0;
	if ((rc = ward_db_prepare(s, &st, "SELECT min(id), max(id) FROM chunks")) < 0)
		return rc;
	if (sqlite3_step(st) != SQLITE_ROW)
		rc = ward_db_fail(s, "reading chunk ids");
	else if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*lo = sqlite3_column_int64(st, 0);
		*hi = sqlite3_column_int64(st, 1);
		*any = 1;
	}
	sqlite3_finalize(st);
	return rc;
}

/*
 * Splits the chunk ids lo..hi into njobs consecutive ranges of nearly equal
 * width (d = hi - lo = q * njobs + r: the first r + 1 ranges are one wider),
 * then widens the first down to INT64_MIN and the last up to INT64_MAX. The
 * ranges thus cover every int64 id, so an FTS row (or a chunk inserted after
 * min/max were read) with an id outside lo..hi still lands in a range.
 * Offsets never exceed d, so nothing overflows even for ids at the extremes.
 */
static void split_ranges(chunk_job *jobs, size_t njobs, int64_t lo, int64_t hi)
{
	uint64_t d = (uint64_t)hi - (uint64_t)lo, q = d / njobs, r = d % njobs;

	for (size_t i = 0; i < njobs; i++) {
		uint64_t first = i * q + (i < r + 1 ? i : r + 1);
		uint64_t next = (i + 1) * q + (i + 1 < r + 1 ? i + 1 : r + 1);

		/* lo + first <= hi fits an int64; the sum is taken in uint64 (no
		 * signed overflow) and converted back, two's complement. */
		jobs[i].lo = i == 0 ? INT64_MIN : (int64_t)((uint64_t)lo + first);
		jobs[i].hi = i + 1 == njobs ? INT64_MAX : (int64_t)((uint64_t)lo + next - 1);
	}
}

/* The checks of the calling thread, in one read snapshot. */
static int check_main(ward_store *s, const ward_verify_opts *o, fail_list *rest, ward_verify_report *r)
{
	int rc;

	if ((rc = ward_db_exec(s, "BEGIN")) < 0)
		return rc;
	if ((rc = check_documents(s, rest, r)) < 0 ||
	    (rc = check_sources(s, rest, r)) < 0 || (rc = check_keys(s, rest, r)) < 0 ||
	    (rc = check_audit(s, o->checkpoint_path, rest, r)) < 0 || (rc = check_sqlite(s, rest, r)) < 0)
		goto done;
done:
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (rc == 0 && !o->no_fts_integrity)
		rc = check_fts_integrity(s->home, rest, r);
	else if (rc == 0 && !(r->fts_integrity = ward_strdup("skipped: not requested")))
		rc = ward_error_set(WARD_ENOMEM, "verify: out of memory");
	return rc;
}

int ward_store_verify(ward_store *s, const ward_verify_opts *opts, ward_verify_report *r)
{
	ward_verify_opts defaults;
	chunk_job *jobs = NULL;
	pthread_t *threads = NULL;
	fail_list all, rest;
	size_t started = 0, njobs = 1;
	int64_t lo = 0, hi = 0;
	double t0 = now_seconds(), last = t0;
	int rc, any = 0;

	memset(r, 0, sizeof(*r));
	memset(&all, 0, sizeof(all));
	memset(&rest, 0, sizeof(rest));
	if (!opts) {
		ward_verify_opts_init(&defaults);
		opts = &defaults;
	}
	r->jobs = opts->jobs ? opts->jobs : ward_verify_default_jobs();
	if (r->jobs > WARD_VERIFY_MAX_JOBS)
		r->jobs = WARD_VERIFY_MAX_JOBS;
	if ((rc = chunk_id_range(s, &lo, &hi, &any)) < 0)
		goto done;
	/* Without chunks one job still scans the FTS table for rows without a
	 * chunk. */
	if (any && (uint64_t)hi - (uint64_t)lo >= r->jobs - 1)
		njobs = r->jobs;
	else if (any)
		njobs = (size_t)((uint64_t)hi - (uint64_t)lo) + 1;
	if (!(jobs = ward_calloc(njobs, sizeof(*jobs))) || !(threads = ward_calloc(njobs, sizeof(*threads)))) {
		rc = ward_error_set(WARD_ENOMEM, "verify: out of memory");
		goto done;
	}
	split_ranges(jobs, njobs, lo, hi);
	for (size_t i = 0; i < njobs; i++)
		jobs[i].home = s->home;
	for (; started < njobs; started++) {
		int e = pthread_create(&threads[started], NULL, chunk_worker, &jobs[started]);
		if (e != 0) {
			rc = ward_error_set(WARD_EIO, "verify: cannot start a thread: %s", strerror(e));
			goto join;
		}
	}
	rc = check_main(s, opts, &rest, r);
join:
	for (size_t i = 0; i < started; i++) {
		pthread_join(threads[i], NULL);
		if (jobs[i].finished > last)
			last = jobs[i].finished;
	}
	r->chunk_seconds = last - t0;
	if (rc < 0)
		goto done;
	for (size_t i = 0; i < njobs; i++) {
		if (jobs[i].rc < 0) {
			rc = ward_error_set(jobs[i].err.code, "verifying chunks %" PRId64 "..%" PRId64 ": %s", jobs[i].lo,
					    jobs[i].hi, jobs[i].err.message);
			goto done;
		}
		r->chunks.checked += jobs[i].checked;
		r->chunks.failed += jobs[i].failed;
		r->fts.checked += jobs[i].fts_rows;
		r->fts.failed += jobs[i].fts_failed;
	}
	/* Failure lines in the documented order: chunks with their FTS rows
	 * (jobs are in id order), then FTS rows without a chunk, then the rest. */
	for (size_t i = 0; i < njobs; i++)
		if ((rc = fail_move_all(&all, &jobs[i].fails)) < 0)
			goto done;
	for (size_t i = 0; i < njobs; i++)
		if ((rc = fail_move_all(&all, &jobs[i].orphans)) < 0)
			goto done;
	if ((rc = fail_move_all(&all, &rest)) < 0)
		goto done;
	r->failures = all.v;
	r->nfailures = all.n;
	r->failures_omitted = all.omitted;
	memset(&all, 0, sizeof(all));
done:
	for (size_t i = 0; jobs && i < njobs; i++) {
		fail_list_dispose(&jobs[i].fails);
		fail_list_dispose(&jobs[i].orphans);
	}
	fail_list_dispose(&all);
	fail_list_dispose(&rest);
	ward_free(jobs);
	ward_free(threads);
	r->seconds = now_seconds() - t0;
	return rc;
}
