/*
 * The store side of `ragward rescan`: which documents to rescan, what a
 * stored document looks like to the rescan, and the one-transaction rewrite
 * of its verdict, findings, state and re-signed chunk statements.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/audit.h"
#include "ragward/canon.h"
#include "ragward/rescan.h"
#include "ragward/retrieve.h"
#include "store/db_internal.h"
#include "core/limits.h"
#include "core/banned.h"

int ward_rescan_candidates(ward_store *s, int64_t source_id, const char *ruleset_sha256, int force, int64_t **ids,
			   size_t *n)
{
	sqlite3_stmt *st = NULL;
	int64_t *v = NULL, *grown;
	size_t count = 0, cap = 0;
	int rc;

	*ids = NULL;
	*n = 0;
	if (source_id > 0) {
		if ((rc = ward_db_prepare(s, &st, "SELECT 1 FROM sources WHERE id = ?1")) < 0)
			return rc;
		sqlite3_bind_int64(st, 1, source_id);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		st = NULL;
		if (rc == SQLITE_DONE)
			return ward_error_set(WARD_ENOTFOUND, "source %" PRId64 " does not exist", source_id);
		if (rc != SQLITE_ROW)
			return ward_db_fail(s, "reading source");
	}
	if ((rc = ward_db_prepare(s, &st,
				  "SELECT id FROM documents WHERE state IN ('active', 'quarantined')"
				  " AND (?1 = 0 OR source_id = ?1)"
				  " AND (?2 OR COALESCE(ruleset_sha256, 'none') <> ?3) ORDER BY id")) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, source_id > 0 ? source_id : 0);
	sqlite3_bind_int(st, 2, force ? 1 : 0);
	ward_db_bind_text(st, 3, ruleset_sha256);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? 2 * cap : 64;
			if (!(grown = ward_realloc(v, cap * sizeof(*v)))) {
				rc = ward_error_set(WARD_ENOMEM, "out of memory");
				goto done;
			}
			v = grown;
		}
		v[count++] = sqlite3_column_int64(st, 0);
	}
	rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "listing documents to rescan");
done:
	sqlite3_finalize(st);
	if (rc < 0) {
		ward_free(v);
		return rc;
	}
	*ids = v;
	*n = count;
	return 0;
}

void ward_rescan_doc_dispose(ward_rescan_doc *d)
{
	if (!d)
		return;
	ward_free(d->uri);
	ward_free(d->final_url);
	ward_free(d->state);
	ward_free(d->verdict);
	ward_free(d->ruleset_sha256);
	ward_free(d->declared_type);
	ward_free(d->bytes);
	for (size_t i = 0; d->chunk_text && i < d->nchunks; i++)
		ward_free(d->chunk_text[i]);
	ward_free(d->chunk_text);
	ward_free(d->chunk_len);
	ward_free(d->chunk_start);
	ward_free(d->chunk_end);
	memset(d, 0, sizeof(*d));
}

/*
 * "released": active after a quarantine.release of this document id.
 * "max_severity": for a released document the highest severity a reviewer
 * has let through — of the stored findings, or recorded by an earlier rescan
 * that kept it released (its findings were replaced then) — else the highest
 * of the stored findings.
 */
#define RESCAN_DOC_SQL                                                                                             \
	"SELECT d.id, d.source_id, d.version, d.uri, COALESCE(d.final_url, d.uri), d.state, COALESCE(d.verdict, ''),"  \
	" COALESCE(d.ruleset_sha256, 'none'), COALESCE(d.declared_type, ''), s.kind, s.trust, COALESCE(d.score, 0),"   \
	" d.bytes IS NOT NULL, d.bytes,"                                                                               \
	" (SELECT max(seq) FROM audit_events WHERE subject = 'document:' || d.id AND action = 'quarantine.release'),"   \
	" COALESCE((SELECT max(severity) FROM findings WHERE document_id = d.id), 0),"                                 \
	" (SELECT max(CAST(json_extract(e.details, '$.reviewed_severity') AS INTEGER)) FROM audit_events e"             \
	"  WHERE e.subject = 'document:' || d.id AND e.action = 'document.rescan' AND e.seq >"                          \
	"  (SELECT max(seq) FROM audit_events WHERE subject = 'document:' || d.id AND action = 'quarantine.release')),"  \
	" (SELECT count(*) FROM chunks WHERE document_id = d.id)"                                                      \
	" FROM documents d JOIN sources s ON s.id = d.source_id WHERE d.id = ?1"

static int load_chunks(ward_store *s, ward_rescan_doc *d)
{
	sqlite3_stmt *st = NULL;
	size_t i = 0;
	int rc;

	if (!d->nchunks)
		return 0;
	if (!(d->chunk_text = ward_calloc(d->nchunks, sizeof(*d->chunk_text))) ||
	    !(d->chunk_len = ward_calloc(d->nchunks, sizeof(*d->chunk_len))) ||
	    !(d->chunk_start = ward_calloc(d->nchunks, sizeof(*d->chunk_start))) ||
	    !(d->chunk_end = ward_calloc(d->nchunks, sizeof(*d->chunk_end))))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	if ((rc = ward_db_prepare(s, &st, "SELECT ordinal, char_start, char_end, text FROM chunks WHERE document_id = ?1"
					  " ORDER BY ordinal")) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, d->id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (i >= d->nchunks || sqlite3_column_int64(st, 0) != (int64_t)i) {
			rc = ward_error_set(WARD_EVERIFY, "document %" PRId64 ": chunk ordinals are not 0..%zu", d->id,
					    d->nchunks - 1);
			goto done;
		}
		d->chunk_start[i] = sqlite3_column_int64(st, 1);
		d->chunk_end[i] = sqlite3_column_int64(st, 2);
		d->chunk_len[i] = (size_t)sqlite3_column_bytes(st, 3);
		if ((rc = ward_db_col_dup(&d->chunk_text[i], st, 3)) < 0)
			goto done;
		if (!d->chunk_text[i] && !(d->chunk_text[i] = ward_strdup(""))) {
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
		i++;
	}
	rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "reading chunks");
	if (rc == 0 && i != d->nchunks)
		rc = ward_error_set(WARD_EVERIFY, "document %" PRId64 ": chunks changed while reading", d->id);
done:
	sqlite3_finalize(st);
	return rc;
}

int ward_rescan_doc_load(ward_store *s, int64_t id, ward_rescan_doc *out)
{
	sqlite3_stmt *st = NULL;
	const char *kind, *trust;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = ward_db_prepare(s, &st, RESCAN_DOC_SQL)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		rc = rc == SQLITE_DONE ? ward_error_set(WARD_ENOTFOUND, "document %" PRId64 " does not exist", id)
				       : ward_db_fail(s, "reading document");
		goto done;
	}
	out->id = sqlite3_column_int64(st, 0);
	out->source_id = sqlite3_column_int64(st, 1);
	out->version = sqlite3_column_int64(st, 2);
	kind = (const char *)sqlite3_column_text(st, 9);
	trust = (const char *)sqlite3_column_text(st, 10);
	out->source_is_file = kind && strcmp(kind, "file") == 0;
	out->trust = trust && !strcmp(trust, "low") ? 0 : trust && !strcmp(trust, "high") ? 2 : 1;
	out->score = sqlite3_column_double(st, 11);
	out->has_bytes = sqlite3_column_int(st, 12);
	if ((rc = ward_db_col_dup(&out->uri, st, 3)) < 0 || (rc = ward_db_col_dup(&out->final_url, st, 4)) < 0 ||
	    (rc = ward_db_col_dup(&out->state, st, 5)) < 0 || (rc = ward_db_col_dup(&out->verdict, st, 6)) < 0 ||
	    (rc = ward_db_col_dup(&out->ruleset_sha256, st, 7)) < 0 ||
	    (rc = ward_db_col_dup(&out->declared_type, st, 8)) < 0)
		goto done;
	if (out->has_bytes) {
		const void *b = sqlite3_column_blob(st, 13);
		out->len = (size_t)sqlite3_column_bytes(st, 13);
		/* One spare byte: the type gate gets a buffer it may read as text. */
		if (!(out->bytes = ward_malloc(out->len + 1))) {
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
		if (out->len)
			memcpy(out->bytes, b, out->len);
		out->bytes[out->len] = 0;
	}
	out->released = !strcmp(out->state, "active") && sqlite3_column_type(st, 14) != SQLITE_NULL;
	out->max_severity = sqlite3_column_int(st, 15);
	if (out->released && sqlite3_column_type(st, 16) != SQLITE_NULL && sqlite3_column_int(st, 16) > out->max_severity)
		out->max_severity = sqlite3_column_int(st, 16);
	out->nchunks = (size_t)sqlite3_column_int64(st, 17);
	sqlite3_finalize(st);
	st = NULL;
	rc = load_chunks(s, out);
done:
	sqlite3_finalize(st);
	if (rc < 0)
		ward_rescan_doc_dispose(out);
	return rc;
}

/* ---- the rewrite ------------------------------------------------------------- */

/* Same columns as a verification row (store/review.c), plus the title. */
#define RESCAN_CHUNK_SQL                                                                                           \
	"SELECT " WARD_CHUNK_ROW_COLUMNS ", COALESCE(d.title, '')"                                                 \
	" FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.document_id = ?1 ORDER BY c.ordinal"


typedef struct {
	int64_t id;
	uint8_t text_sha256[WARD_SHA256_LEN];
	uint8_t sig[WARD_ED25519_SIG_LEN];
	char *heading_path;
} resigned;

/*
 * Phase one, reading only: verify each chunk as it is stored, then sign its
 * statement with the new rule set and verdict (and new text, when given).
 * The rows are updated afterwards, not while this SELECT steps over them.
 */
static int resign_chunks(ward_store *s, const ward_rescan_update *u, resigned *out, size_t n, char **title)
{
	sqlite3_stmt *st = NULL;
	ward_chunk_keys keys;
	size_t i = 0;
	int rc;

	memset(&keys, 0, sizeof(keys));
	if ((rc = ward_db_prepare(s, &st, RESCAN_CHUNK_SQL)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, u->document_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ward_chunk_row row;
		ward_statement stmt;
		int ok = 0;

		ward_chunk_row_from_stmt(&row, st);
		if (i >= n || row.ordinal != (int64_t)i) {
			rc = ward_error_set(WARD_EVERIFY, "document %" PRId64 ": chunks changed during the rescan",
					    u->document_id);
			goto done;
		}
		if ((rc = ward_chunk_verify_row(s, &row, &keys, NULL, &ok)) < 0)
			goto done;
		if (!ok) {
			rc = ward_error_set(WARD_EVERIFY,
					    "document %" PRId64 ": chunk %" PRId64 " fails signature verification; not re-signed",
					    u->document_id, row.chunk_id);
			goto done;
		}
		if (i == 0 && (rc = ward_db_col_dup(title, st, 18)) < 0)
			goto done;
		memset(&stmt, 0, sizeof(stmt));
		stmt.version = WARD_STATEMENT_VERSION;
		memcpy(stmt.key_id, s->key_id, sizeof(stmt.key_id));
		stmt.chunk_id = row.chunk_id;
		stmt.document_id = row.document_id;
		stmt.document_version = row.document_version;
		stmt.source_id = row.source_id;
		stmt.uri = row.uri;
		memcpy(stmt.doc_sha256, row.doc_sha256, WARD_SHA256_LEN); /* length checked by the verify */
		stmt.ordinal = row.ordinal;
		stmt.heading_path = row.heading_path;
		stmt.char_start = row.char_start;
		stmt.char_end = row.char_end;
		stmt.ruleset_sha256 = u->ruleset_sha256;
		stmt.verdict = u->verdict;
		stmt.fetched_at = row.fetched_at;
		if (u->chunk_text)
			rc = ward_sha256(stmt.text_sha256, u->chunk_text[i], u->chunk_len[i]);
		else
			memcpy(stmt.text_sha256, row.text_sha256, WARD_SHA256_LEN); /* recomputed and equal: verified */
		if (rc < 0 || (rc = ward_statement_sign(out[i].sig, s->signer, &stmt)) < 0)
			goto done;
		out[i].id = row.chunk_id;
		memcpy(out[i].text_sha256, stmt.text_sha256, WARD_SHA256_LEN);
		if ((rc = ward_db_col_dup(&out[i].heading_path, st, 2)) < 0)
			goto done;
		i++;
	}
	rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "reading chunks");
	if (rc == 0 && i != n)
		rc = ward_error_set(WARD_EVERIFY, "document %" PRId64 ": chunks changed during the rescan", u->document_id);
done:
	sqlite3_finalize(st);
	ward_chunk_keys_dispose(&keys);
	return rc;
}

/* Phase two: the new signatures (and, for the strip action, text and FTS row). */
static int write_chunks(ward_store *s, const ward_rescan_update *u, const resigned *r, size_t n, const char *title)
{
	sqlite3_stmt *sig = NULL, *txt = NULL, *fdel = NULL, *fins = NULL;
	int rc;

	if ((rc = ward_db_prepare(s, &sig, "UPDATE chunks SET statement_version = ?1, key_id = ?2, signature = ?3"
					   " WHERE id = ?4")) < 0)
		goto done;
	if (u->chunk_text &&
	    ((rc = ward_db_prepare(s, &txt, "UPDATE chunks SET text = ?1, text_sha256 = ?2 WHERE id = ?3")) < 0 ||
	     (rc = ward_db_prepare(s, &fdel, "DELETE FROM chunks_fts WHERE rowid = ?1")) < 0 ||
	     (rc = ward_db_prepare(s, &fins, "INSERT INTO chunks_fts(rowid, title, heading_path, text)"
					     " VALUES (?1, ?2, ?3, ?4)")) < 0))
		goto done;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(sig);
		sqlite3_bind_int(sig, 1, WARD_STATEMENT_VERSION);
		ward_db_bind_text(sig, 2, s->key_id);
		sqlite3_bind_blob(sig, 3, r[i].sig, WARD_ED25519_SIG_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(sig, 4, r[i].id);
		if (sqlite3_step(sig) != SQLITE_DONE || sqlite3_changes(s->db) != 1) {
			rc = ward_db_fail(s, "re-signing chunk");
			goto done;
		}
		if (!u->chunk_text)
			continue;
		sqlite3_reset(txt);
		sqlite3_bind_text64(txt, 1, u->chunk_text[i], u->chunk_len[i], SQLITE_STATIC, SQLITE_UTF8);
		sqlite3_bind_blob(txt, 2, r[i].text_sha256, WARD_SHA256_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(txt, 3, r[i].id);
		sqlite3_reset(fdel);
		sqlite3_bind_int64(fdel, 1, r[i].id);
		sqlite3_reset(fins);
		sqlite3_bind_int64(fins, 1, r[i].id);
		ward_db_bind_text(fins, 2, title ? title : "");
		ward_db_bind_text(fins, 3, r[i].heading_path ? r[i].heading_path : "");
		sqlite3_bind_text64(fins, 4, u->chunk_text[i], u->chunk_len[i], SQLITE_STATIC, SQLITE_UTF8);
		if (sqlite3_step(txt) != SQLITE_DONE || sqlite3_step(fdel) != SQLITE_DONE || sqlite3_step(fins) != SQLITE_DONE) {
			rc = ward_db_fail(s, "rewriting stripped chunk");
			goto done;
		}
	}
done:
	sqlite3_finalize(sig);
	sqlite3_finalize(txt);
	sqlite3_finalize(fdel);
	sqlite3_finalize(fins);
	return rc;
}

static int replace_findings(ward_store *s, const ward_rescan_update *u)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = ward_db_prepare(s, &st, "DELETE FROM findings WHERE document_id = ?1")) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, u->document_id);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = ward_db_fail(s, "replacing findings");
		goto done;
	}
	sqlite3_finalize(st);
	st = NULL;
	rc = ward_findings_insert(s, u->document_id, u->findings, u->nfindings);
done:
	sqlite3_finalize(st);
	return rc;
}

static json_t *rules_summary(const ward_rescan_update *u)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < u->nfindings && i < 50; i++)
		if (json_array_append_new(arr, json_pack("{s:s, s:i, s:s}", "rule_id", u->findings[i].rule_id, "severity",
							 u->findings[i].severity, "channel", u->findings[i].channel)) < 0) {
			json_decref(arr);
			return NULL;
		}
	return arr;
}

int ward_rescan_store(ward_store *s, const ward_actor *who, const ward_rescan_update *u)
{
	sqlite3_stmt *st = NULL;
	resigned *r = NULL;
	json_t *details = NULL, *rules = NULL;
	char subject[48], *title = NULL, *from_state = NULL, *from_ruleset = NULL, *from_verdict = NULL, *uri = NULL;
	int64_t version = 0;
	size_t n = 0;
	int rc;

	if (!s->signer)
		return ward_error_set(WARD_EKEY, "rescanning documents needs the signing key");
	if ((rc = ward_store_begin(s)) < 0)
		return rc;
	/* The row as this transaction sees it: a reviewer may have acted since
	 * the document was read. */
	if ((rc = ward_db_prepare(s, &st, "SELECT state, COALESCE(ruleset_sha256, 'none'), COALESCE(verdict, ''), uri,"
					  " version, (SELECT count(*) FROM chunks WHERE document_id = d.id)"
					  " FROM documents d WHERE id = ?1")) < 0)
		goto done;
	sqlite3_bind_int64(st, 1, u->document_id);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		rc = rc == SQLITE_DONE ? ward_error_set(WARD_ENOTFOUND, "document %" PRId64 " does not exist", u->document_id)
				       : ward_db_fail(s, "reading document");
		goto done;
	}
	if ((rc = ward_db_col_dup(&from_state, st, 0)) < 0 || (rc = ward_db_col_dup(&from_ruleset, st, 1)) < 0 ||
	    (rc = ward_db_col_dup(&from_verdict, st, 2)) < 0 || (rc = ward_db_col_dup(&uri, st, 3)) < 0)
		goto done;
	version = sqlite3_column_int64(st, 4);
	n = (size_t)sqlite3_column_int64(st, 5);
	sqlite3_finalize(st);
	st = NULL;
	if (strcmp(from_state, u->expect_state) != 0 || strcmp(from_ruleset, u->expect_ruleset) != 0) {
		rc = ward_error_set(WARD_ESTATE, "document %" PRId64 " changed during the rescan (now %s)", u->document_id,
				    from_state);
		goto done;
	}
	if (u->chunk_text && u->nchunks != n) {
		rc = ward_error_set(WARD_EINVAL, "document %" PRId64 ": %zu new chunk texts for %zu chunks", u->document_id,
				    u->nchunks, n);
		goto done;
	}
	if (n && !(r = ward_calloc(n, sizeof(*r)))) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	if ((rc = resign_chunks(s, u, r, n, &title)) < 0 || (rc = write_chunks(s, u, r, n, title)) < 0)
		goto done;
	if ((rc = ward_db_prepare(s, &st, "UPDATE documents SET ruleset_sha256 = ?1, verdict = ?2, score = ?3, state = ?4"
					  " WHERE id = ?5")) < 0)
		goto done;
	ward_db_bind_text(st, 1, u->ruleset_sha256);
	ward_db_bind_text(st, 2, u->verdict);
	sqlite3_bind_double(st, 3, u->score);
	ward_db_bind_text(st, 4, u->state);
	sqlite3_bind_int64(st, 5, u->document_id);
	if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(s->db) != 1) {
		rc = ward_db_fail(s, "updating document");
		goto done;
	}
	sqlite3_finalize(st);
	st = NULL;
	if ((rc = replace_findings(s, u)) < 0)
		goto done;
	if (!(rules = rules_summary(u))) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	details = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:I, s:O, s:I, s:s, s:b, s:s?}", "uri", uri,
			    "version", (json_int_t)version, "from_ruleset", from_ruleset, "to_ruleset", u->ruleset_sha256,
			    "from_verdict", from_verdict, "to_verdict", u->verdict, "from_state", from_state, "to_state",
			    u->state, "score", u->score, "findings", (json_int_t)u->nfindings, "rules", rules, "chunks",
			    (json_int_t)n, "key_id", s->key_id, "text_stripped", u->chunk_text != NULL, "reason", u->reason);
	if (!details) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	if (u->reviewed_severity >= 0 &&
	    json_object_set_new(details, "reviewed_severity", json_integer(u->reviewed_severity)) < 0) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	snprintf(subject, sizeof(subject), "document:%" PRId64, u->document_id);
	if ((rc = ward_audit_append(s, who, "document.rescan", subject, details)) < 0)
		goto done;
	rc = ward_store_commit(s);
done:
	if (rc < 0)
		ward_store_rollback(s);
	sqlite3_finalize(st);
	for (size_t i = 0; r && i < n; i++)
		ward_free(r[i].heading_path);
	ward_free(r);
	ward_free(title);
	ward_free(from_state);
	ward_free(from_ruleset);
	ward_free(from_verdict);
	ward_free(uri);
	json_decref(rules);
	json_decref(details);
	return rc;
}
