/*
 * Versioned documents and their signed chunks.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/audit.h"
#include "ragward/canon.h"
#include "ragward/documents.h"
#include "store/db_internal.h"
#include "core/limits.h"
#include "core/banned.h"

const char *ward_doc_outcome_name(ward_doc_outcome o)
{
	static const char *const names[] = {"new", "updated", "unchanged", "quarantined"};

	return (o >= WARD_DOC_NEW && o <= WARD_DOC_QUARANTINED) ? names[o] : "?";
}

void ward_doc_latest_dispose(ward_doc_latest *d)
{
	if (!d)
		return;
	ward_free(d->etag);
	ward_free(d->last_modified);
	ward_free(d->state);
	memset(d, 0, sizeof(*d));
}

/* The latest version of a URI, whatever its state. */
int ward_documents_latest(ward_store *s, const char *uri, ward_doc_latest *out, int *found)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	*found = 0;
	if ((rc = ward_db_prepare(s, &st,
				  "SELECT id, version, etag, last_modified, state, byte_sha256 FROM documents"
				  " WHERE uri = ?1 ORDER BY version DESC LIMIT 1")) < 0)
		return rc;
	ward_db_bind_text(st, 1, uri);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		out->id = sqlite3_column_int64(st, 0);
		out->version = sqlite3_column_int64(st, 1);
		if (sqlite3_column_bytes(st, 5) == WARD_SHA256_LEN)
			memcpy(out->byte_sha256, sqlite3_column_blob(st, 5), WARD_SHA256_LEN);
		if ((rc = ward_db_col_dup(&out->etag, st, 2)) < 0 || (rc = ward_db_col_dup(&out->last_modified, st, 3)) < 0 ||
		    (rc = ward_db_col_dup(&out->state, st, 4)) < 0) {
			ward_doc_latest_dispose(out);
		} else {
			*found = 1;
		}
	} else {
		rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "reading document");
	}
	sqlite3_finalize(st);
	return rc;
}

static int64_t next_id(ward_store *s, const char *table_sql, int *rc)
{
	sqlite3_stmt *st = NULL;
	int64_t id = 0;

	if ((*rc = ward_db_prepare(s, &st, table_sql)) < 0)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0) + 1;
	else
		*rc = ward_db_fail(s, "allocating id");
	sqlite3_finalize(st);
	return id;
}

static int insert_document(ward_store *s, const ward_doc_in *in, int64_t id, int64_t version, const char *state)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = ward_db_prepare(s, &st,
				  "INSERT INTO documents(id, source_id, uri, version, state, title, declared_type,"
				  " detected_type, byte_sha256, byte_len, bytes, final_url, peer_ip, http_status, etag,"
				  " last_modified, fetched_at, ruleset_sha256, verdict, score)"
				  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,"
				  " ?19, ?20)")) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, in->source_id);
	ward_db_bind_text(st, 3, in->uri);
	sqlite3_bind_int64(st, 4, version);
	ward_db_bind_text(st, 5, state);
	ward_db_bind_text(st, 6, in->title);
	ward_db_bind_text(st, 7, in->declared_type);
	ward_db_bind_text(st, 8, in->detected_type);
	sqlite3_bind_blob(st, 9, in->byte_sha256, WARD_SHA256_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, (sqlite3_int64)in->len);
	if (in->keep_bytes)
		sqlite3_bind_blob64(st, 11, in->bytes, in->len, SQLITE_STATIC);
	ward_db_bind_text(st, 12, in->final_url);
	ward_db_bind_text(st, 13, in->peer_ip);
	if (in->http_status)
		sqlite3_bind_int64(st, 14, in->http_status);
	ward_db_bind_text(st, 15, in->etag);
	ward_db_bind_text(st, 16, in->last_modified);
	ward_db_bind_text(st, 17, in->fetched_at);
	ward_db_bind_text(st, 18, in->ruleset_sha256);
	ward_db_bind_text(st, 19, in->verdict);
	sqlite3_bind_double(st, 20, in->score);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = ward_db_fail(s, "storing document");
	sqlite3_finalize(st);
	return rc;
}

/* Signs and inserts every chunk and its FTS row. Chunk ids are allocated
 * inside the write transaction, so they are known before signing. */
static int insert_chunks(ward_store *s, const ward_doc_in *in, int64_t doc_id, int64_t version)
{
	sqlite3_stmt *ins = NULL, *fts = NULL;
	int64_t first;
	int rc = 0;

	first = next_id(s, "SELECT COALESCE(MAX(id), 0) FROM chunks", &rc);
	if (rc < 0)
		return rc;
	if ((rc = ward_db_prepare(s, &ins,
				  "INSERT INTO chunks(id, document_id, ordinal, heading_path, char_start, char_end, text,"
				  " text_sha256, statement_version, key_id, signature)"
				  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")) < 0 ||
	    (rc = ward_db_prepare(s, &fts,
				  "INSERT INTO chunks_fts(rowid, title, heading_path, text) VALUES (?1, ?2, ?3, ?4)")) < 0)
		goto done;
	for (size_t i = 0; i < in->nchunks; i++) {
		const ward_chunk_in *c = &in->chunks[i];
		ward_statement stmt;
		uint8_t sig[WARD_ED25519_SIG_LEN];

		memset(&stmt, 0, sizeof(stmt));
		stmt.version = WARD_STATEMENT_VERSION;
		memcpy(stmt.key_id, s->key_id, sizeof(stmt.key_id));
		stmt.chunk_id = first + (int64_t)i;
		stmt.document_id = doc_id;
		stmt.document_version = version;
		stmt.source_id = in->source_id;
		stmt.uri = in->final_url ? in->final_url : in->uri;
		memcpy(stmt.doc_sha256, in->byte_sha256, WARD_SHA256_LEN);
		stmt.ordinal = (int64_t)i;
		stmt.heading_path = c->heading_path ? c->heading_path : "";
		stmt.char_start = (int64_t)c->char_start;
		stmt.char_end = (int64_t)c->char_end;
		stmt.ruleset_sha256 = in->ruleset_sha256 ? in->ruleset_sha256 : "none";
		stmt.verdict = in->verdict;
		stmt.fetched_at = in->fetched_at;
		if ((rc = ward_sha256(stmt.text_sha256, c->text, c->len)) < 0 ||
		    (rc = ward_statement_sign(sig, s->signer, &stmt)) < 0)
			goto done;

		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, stmt.chunk_id);
		sqlite3_bind_int64(ins, 2, doc_id);
		sqlite3_bind_int64(ins, 3, stmt.ordinal);
		ward_db_bind_text(ins, 4, stmt.heading_path);
		sqlite3_bind_int64(ins, 5, stmt.char_start);
		sqlite3_bind_int64(ins, 6, stmt.char_end);
		sqlite3_bind_text64(ins, 7, c->text, c->len, SQLITE_STATIC, SQLITE_UTF8);
		sqlite3_bind_blob(ins, 8, stmt.text_sha256, WARD_SHA256_LEN, SQLITE_STATIC);
		sqlite3_bind_int(ins, 9, WARD_STATEMENT_VERSION);
		ward_db_bind_text(ins, 10, s->key_id);
		sqlite3_bind_blob(ins, 11, sig, sizeof(sig), SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			rc = ward_db_fail(s, "storing chunk");
			goto done;
		}
		sqlite3_reset(fts);
		sqlite3_bind_int64(fts, 1, stmt.chunk_id);
		ward_db_bind_text(fts, 2, in->title ? in->title : "");
		ward_db_bind_text(fts, 3, stmt.heading_path);
		sqlite3_bind_text64(fts, 4, c->text, c->len, SQLITE_STATIC, SQLITE_UTF8);
		if (sqlite3_step(fts) != SQLITE_DONE) {
			rc = ward_db_fail(s, "indexing chunk");
			goto done;
		}
	}
done:
	sqlite3_finalize(ins);
	sqlite3_finalize(fts);
	return rc;
}

/* Findings rows of a document; shared with rescan (store/rescan.c). */
int ward_findings_insert(ward_store *s, int64_t doc_id, const ward_finding_in *findings, size_t n)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!n)
		return 0;
	if ((rc = ward_db_prepare(s, &st,
				  "INSERT INTO findings(document_id, rule_id, category, severity, channel, view,"
				  " start_offset, end_offset, excerpt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")) < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		const ward_finding_in *f = &findings[i];
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, doc_id);
		ward_db_bind_text(st, 2, f->rule_id);
		ward_db_bind_text(st, 3, f->category);
		sqlite3_bind_int(st, 4, f->severity);
		ward_db_bind_text(st, 5, f->channel);
		ward_db_bind_text(st, 6, f->view);
		sqlite3_bind_int64(st, 7, (sqlite3_int64)f->start);
		sqlite3_bind_int64(st, 8, (sqlite3_int64)f->end);
		ward_db_bind_text(st, 9, f->excerpt ? f->excerpt : "");
		if (sqlite3_step(st) != SQLITE_DONE) {
			rc = ward_db_fail(s, "storing finding");
			break;
		}
	}
	sqlite3_finalize(st);
	return rc;
}

static json_t *findings_summary(const ward_doc_in *in)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < in->nfindings && i < 50; i++)
		json_array_append_new(arr, json_pack("{s:s, s:i, s:s}", "rule_id", in->findings[i].rule_id, "severity",
						     in->findings[i].severity, "channel", in->findings[i].channel));
	return arr;
}

int ward_documents_store(ward_store *s, const ward_actor *who, const ward_doc_in *in, ward_doc_outcome *outcome,
			 int64_t *doc_id, int64_t *version)
{
	ward_doc_latest prev;
	sqlite3_stmt *st = NULL;
	json_t *details = NULL;
	char subject[48], hex[65];
	int rc, found = 0, quarantined;
	int64_t id = 0, ver = 1;

	*doc_id = 0;
	*version = 0;
	memset(&prev, 0, sizeof(prev));
	if (!s->signer)
		return ward_error_set(WARD_EKEY, "storing documents needs the signing key");
	if (in->nchunks > WARD_MAX_CHUNKS)
		return ward_error_set(WARD_ETOOBIG, "'%s': more than %d chunks", in->uri, WARD_MAX_CHUNKS);
	quarantined = in->verdict && strcmp(in->verdict, "quarantine") == 0;

	if ((rc = ward_store_begin(s)) < 0)
		return rc;
	if ((rc = ward_documents_latest(s, in->uri, &prev, &found)) < 0)
		goto done;
	if (found && memcmp(prev.byte_sha256, in->byte_sha256, WARD_SHA256_LEN) == 0) {
		/* Same bytes: nothing to write. This holds for a dropped version
		 * too: a reviewer's drop sticks until the bytes change. */
		ward_store_rollback(s);
		*outcome = WARD_DOC_UNCHANGED;
		*doc_id = prev.id;
		*version = prev.version;
		goto out;
	}
	if (found)
		ver = prev.version + 1;
	id = next_id(s, "SELECT COALESCE(MAX(id), 0) FROM documents", &rc);
	if (rc < 0)
		goto done;
	/* The previous version stops being served in the same transaction. */
	if (found) {
		if ((rc = ward_db_prepare(s, &st, "UPDATE documents SET state = 'superseded' WHERE uri = ?1 AND"
						  " state IN ('active', 'quarantined')")) < 0)
			goto done;
		ward_db_bind_text(st, 1, in->uri);
		if (sqlite3_step(st) != SQLITE_DONE) {
			rc = ward_db_fail(s, "superseding document");
			goto done;
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	if ((rc = insert_document(s, in, id, ver, quarantined ? "quarantined" : "active")) < 0 ||
	    (rc = insert_chunks(s, in, id, ver)) < 0 || (rc = ward_findings_insert(s, id, in->findings, in->nfindings)) < 0)
		goto done;
	ward_hex_encode_to(hex, in->byte_sha256, WARD_SHA256_LEN);
	*outcome = quarantined ? WARD_DOC_QUARANTINED : found ? WARD_DOC_UPDATED : WARD_DOC_NEW;
	details = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:I, s:I, s:s, s:o}", "uri", in->uri, "title",
			    in->title ? in->title : "", "version",
			    (json_int_t)ver, "source_id", (json_int_t)in->source_id, "sha256", hex, "verdict",
			    in->verdict, "ruleset_sha256", in->ruleset_sha256 ? in->ruleset_sha256 : "none", "chunks",
			    (json_int_t)in->nchunks, "findings", (json_int_t)in->nfindings, "outcome",
			    ward_doc_outcome_name(*outcome), "rules", findings_summary(in));
	if (!details) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	snprintf(subject, sizeof(subject), "document:%" PRId64, id);
	if ((rc = ward_audit_append(s, who, "document.ingest", subject, details)) < 0)
		goto done;
	if ((rc = ward_store_commit(s)) < 0)
		goto done;
	*doc_id = id;
	*version = ver;
done:
	if (rc < 0)
		ward_store_rollback(s);
out:
	sqlite3_finalize(st);
	json_decref(details);
	ward_doc_latest_dispose(&prev);
	return rc;
}

/* 1 when the last rejection recorded for `uri` was of the same bytes under the
 * same rule set, 0 when not, or an error. */
static int same_rejection(ward_store *s, const char *uri, const char *sha_hex, const char *ruleset)
{
	sqlite3_stmt *st = NULL;
	int rc, same = 0;

	if ((rc = ward_db_prepare(s, &st,
				  "SELECT json_extract(details, '$.sha256') = ?2 AND json_extract(details, '$.ruleset_sha256')"
				  " = ?3 FROM audit_events WHERE subject = ?1 AND action = 'document.reject'"
				  " ORDER BY seq DESC LIMIT 1")) < 0)
		return rc;
	ward_db_bind_text(st, 1, uri);
	ward_db_bind_text(st, 2, sha_hex);
	ward_db_bind_text(st, 3, ruleset);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		same = sqlite3_column_int(st, 0) == 1;
	else if (rc != SQLITE_DONE)
		same = ward_db_fail(s, "reading earlier rejections");
	sqlite3_finalize(st);
	return same;
}

int ward_documents_record_reject(ward_store *s, const ward_actor *who, const ward_doc_in *in, const char *reason)
{
	json_t *details;
	char hex[65];
	int rc;

	ward_hex_encode_to(hex, in->byte_sha256, WARD_SHA256_LEN);
	details = json_pack("{s:s, s:I, s:s, s:s, s:s, s:o}", "uri", in->uri, "source_id", (json_int_t)in->source_id,
			    "sha256", hex, "reason", reason ? reason : "", "ruleset_sha256",
			    in->ruleset_sha256 ? in->ruleset_sha256 : "none", "rules", findings_summary(in));
	if (!details)
		return ward_error_set(WARD_ENOMEM, "out of memory");
	if ((rc = ward_store_begin(s)) < 0)
		goto done;
	/* A cron run that meets the same rejected bytes again under the same
	 * rules has nothing new to record. */
	if ((rc = same_rejection(s, in->uri, hex, in->ruleset_sha256 ? in->ruleset_sha256 : "none")) != 0) {
		ward_store_rollback(s);
		rc = rc > 0 ? 0 : rc;
		goto done;
	}
	if ((rc = ward_audit_append(s, who, "document.reject", in->uri, details)) < 0) {
		ward_store_rollback(s);
		goto done;
	}
	rc = ward_store_commit(s);
done:
	json_decref(details);
	return rc;
}
