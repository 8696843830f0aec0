/*
 * Verification of stored chunks and the quarantine review.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/audit.h"
#include "ragward/canon.h"
#include "ragward/documents.h"
#include "ragward/keys.h"
#include "ragward/log.h"
#include "ragward/retrieve.h"
#include "store/db_internal.h"
#include "core/limits.h"
#include "core/banned.h"

/*
 * Public keys by key id, cached for a run of verifications: a document's
 * chunks are usually signed by one key. When every slot is taken the oldest
 * is replaced (a retrieval may meet chunks of several rotated keys).
 */
/* Failures of the verifier itself, as opposed to verdicts on a chunk. */
static int verifier_error(int rc)
{
	return rc == WARD_ENOMEM || rc == WARD_ECRYPTO || rc == WARD_EDB || rc == WARD_EIO || rc == WARD_EBUSY;
}

/* *out is NULL when the store knows no valid key of that id (the chunk does
 * not verify); an error is returned when the lookup itself failed (out of
 * memory, database): that is no verdict on the chunk. */
static int key_for(ward_store *s, ward_chunk_keys *keys, const char *id, const ward_key **out)
{
	const size_t nslots = sizeof(keys->slot) / sizeof(keys->slot[0]);
	size_t i;
	int rc;

	*out = NULL;
	for (i = 0; i < nslots; i++) {
		if (keys->slot[i].key && strcmp(keys->slot[i].id, id) == 0)
			return (*out = keys->slot[i].key), 0;
		if (!keys->slot[i].key)
			break;
	}
	if (strlen(id) >= sizeof(keys->slot[0].id))
		return 0;
	if (i == nslots) {
		i = keys->next++ % nslots;
		ward_key_free(keys->slot[i].key);
		keys->slot[i].key = NULL;
	}
	rc = ward_keys_public(s, id, &keys->slot[i].key);
	if (verifier_error(rc))
		return rc;
	if (rc < 0)
		return 0; /* unknown or malformed key: the chunk does not verify */
	memcpy(keys->slot[i].id, id, strlen(id) + 1);
	*out = keys->slot[i].key;
	return 0;
}

void ward_chunk_keys_dispose(ward_chunk_keys *keys)
{
	if (!keys)
		return;
	for (size_t i = 0; i < sizeof(keys->slot) / sizeof(keys->slot[0]); i++)
		ward_key_free(keys->slot[i].key);
	memset(keys, 0, sizeof(*keys));
}

/* SHA-256(statement || signature): the verification cache's key. */
static int memo_digest(uint8_t out[WARD_SHA256_LEN], const ward_statement *stmt, const ward_chunk_row *row)
{
	ward_sha256_ctx *c = NULL;
	uint8_t *enc = NULL;
	size_t len = 0;
	int rc;

	if ((rc = ward_statement_encode(&enc, &len, stmt)) < 0)
		return rc;
	if ((rc = ward_sha256_new(&c)) < 0 || (rc = ward_sha256_update(c, enc, len)) < 0 ||
	    (rc = ward_sha256_update(c, row->signature, row->signature_len)) < 0 || (rc = ward_sha256_final(c, out)) < 0)
		goto done;
done:
	ward_sha256_free(c);
	ward_free(enc);
	return rc;
}

/*
 * One chunk: the text hash is recomputed (the stored one is not trusted),
 * the statement rebuilt from the row, and the signature checked with the key
 * the chunk names. *ok is 1 only when all of that holds. A negative return is
 * an operational failure (hashing), not a verdict.
 */
int ward_chunk_verify_row(ward_store *s, const ward_chunk_row *row, ward_chunk_keys *keys,
			  const ward_verify_memo *memo, int *ok)
{
	ward_statement stmt;
	uint8_t text_hash[WARD_SHA256_LEN], digest[WARD_SHA256_LEN];
	const ward_key *k;
	int rc;

	*ok = 1;
	memset(&stmt, 0, sizeof(stmt));
	stmt.version = row->statement_version;
	stmt.chunk_id = row->chunk_id;
	stmt.ordinal = row->ordinal;
	stmt.heading_path = row->heading_path;
	stmt.char_start = row->char_start;
	stmt.char_end = row->char_end;
	stmt.document_id = row->document_id;
	stmt.document_version = row->document_version;
	stmt.source_id = row->source_id;
	stmt.uri = row->uri;
	stmt.ruleset_sha256 = row->ruleset_sha256;
	stmt.verdict = row->verdict;
	stmt.fetched_at = row->fetched_at;
	if ((rc = ward_sha256(text_hash, row->text, row->text_len)) < 0)
		return rc;
	memcpy(stmt.text_sha256, text_hash, WARD_SHA256_LEN);
	if (!row->key_id || row->key_id_len >= sizeof(stmt.key_id) || row->doc_sha256_len != WARD_SHA256_LEN ||
	    !stmt.uri || !stmt.verdict || !stmt.fetched_at || !stmt.heading_path) {
		*ok = 0;
		return 0;
	}
	memcpy(stmt.key_id, row->key_id, row->key_id_len + 1);
	memcpy(stmt.doc_sha256, row->doc_sha256, WARD_SHA256_LEN);
	if (!stmt.ruleset_sha256)
		stmt.ruleset_sha256 = "none";
	if (row->text_sha256_len != WARD_SHA256_LEN || memcmp(row->text_sha256, text_hash, WARD_SHA256_LEN) != 0)
		*ok = 0;
	/* A memo hit means this exact (statement, signature) pair verified
	 * before; any changed column changes the digest. */
	if (*ok && memo && memo_digest(digest, &stmt, row) == 0 && memo->seen(memo->ctx, digest))
		return 0;
	if ((rc = key_for(s, keys, row->key_id, &k)) < 0)
		return rc;
	/* Only a bad signature is a verdict on the chunk; running out of memory
	 * or an OpenSSL failure is an error of the verifier, never "tampered". */
	rc = k ? ward_statement_verify(k, row->signature, row->signature_len, &stmt) : WARD_EVERIFY;
	if (verifier_error(rc))
		return rc;
	if (rc != 0)
		*ok = 0;
	else if (*ok && memo && memo_digest(digest, &stmt, row) == 0)
		memo->verified(memo->ctx, digest);
	return 0;
}

void ward_chunk_row_from_stmt(ward_chunk_row *row, sqlite3_stmt *st)
{
	memset(row, 0, sizeof(*row));
	row->chunk_id = sqlite3_column_int64(st, 0);
	row->ordinal = sqlite3_column_int64(st, 1);
	row->heading_path = (const char *)sqlite3_column_text(st, 2);
	row->char_start = sqlite3_column_int64(st, 3);
	row->char_end = sqlite3_column_int64(st, 4);
	row->text = (const char *)sqlite3_column_text(st, 5);
	row->text_len = (size_t)sqlite3_column_bytes(st, 5);
	row->text_sha256 = sqlite3_column_blob(st, 6);
	row->text_sha256_len = (size_t)sqlite3_column_bytes(st, 6);
	row->statement_version = sqlite3_column_int(st, 7);
	row->key_id = (const char *)sqlite3_column_text(st, 8);
	row->key_id_len = (size_t)sqlite3_column_bytes(st, 8);
	row->signature = sqlite3_column_blob(st, 9);
	row->signature_len = (size_t)sqlite3_column_bytes(st, 9);
	row->document_id = sqlite3_column_int64(st, 10);
	row->document_version = sqlite3_column_int64(st, 11);
	row->source_id = sqlite3_column_int64(st, 12);
	row->uri = (const char *)sqlite3_column_text(st, 13);
	row->doc_sha256 = sqlite3_column_blob(st, 14);
	row->doc_sha256_len = (size_t)sqlite3_column_bytes(st, 14);
	row->ruleset_sha256 = (const char *)sqlite3_column_text(st, 15);
	row->verdict = (const char *)sqlite3_column_text(st, 16);
	row->fetched_at = (const char *)sqlite3_column_text(st, 17);
}

int ward_documents_verify_chunks(ward_store *s, int64_t doc_id, size_t *checked, size_t *bad)
{
	sqlite3_stmt *st = NULL;
	ward_chunk_keys keys;
	int rc;

	*checked = *bad = 0;
	memset(&keys, 0, sizeof(keys));
	if ((rc = ward_db_prepare(s, &st, "SELECT " WARD_CHUNK_ROW_COLUMNS " FROM chunks c JOIN documents d ON d.id = c.document_id"
				  " WHERE c.document_id = ?1 ORDER BY c.ordinal")) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, doc_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ward_chunk_row row;
		int ok;

		(*checked)++;
		ward_chunk_row_from_stmt(&row, st);
		if ((rc = ward_chunk_verify_row(s, &row, &keys, NULL, &ok)) < 0)
			goto done;
		if (!ok) {
			(*bad)++;
			ward_log(WARD_LOG_SECURITY, "chunk %" PRId64 " of document %" PRId64 " failed verification",
				 row.chunk_id, doc_id);
		}
	}
	rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "reading chunks");
done:
	sqlite3_finalize(st);
	ward_chunk_keys_dispose(&keys);
	return rc;
}

/* ---- listing --------------------------------------------------------------- */

void ward_doc_info_dispose(ward_doc_info *d)
{
	if (!d)
		return;
	ward_free(d->uri);
	ward_free(d->title);
	ward_free(d->state);
	ward_free(d->verdict);
	ward_free(d->fetched_at);
	ward_free(d->ruleset_sha256);
	ward_free(d->detected_type);
	ward_free(d->ingested_by);
	memset(d, 0, sizeof(*d));
}

void ward_doc_infos_free(ward_doc_info *d, size_t n)
{
	if (!d)
		return;
	for (size_t i = 0; i < n; i++)
		ward_doc_info_dispose(&d[i]);
	ward_free(d);
}

#define DOC_INFO_SQL                                                                                                \
	"SELECT d.id, d.source_id, d.version, d.uri, d.title, d.state, d.verdict, d.fetched_at, d.ruleset_sha256,"  \
	" d.detected_type, d.score,"                                                                                \
	" COALESCE((SELECT actor FROM audit_events WHERE action = 'document.ingest'"                                \
	"           AND subject = 'document:' || d.id ORDER BY seq LIMIT 1), ''),"                                    \
	" (SELECT count(*) FROM chunks WHERE document_id = d.id),"                                                   \
	" (SELECT count(*) FROM findings WHERE document_id = d.id)"                                                  \
	" FROM documents d"

static int info_from_row(sqlite3_stmt *st, ward_doc_info *d)
{
	int rc;

	memset(d, 0, sizeof(*d));
	d->id = sqlite3_column_int64(st, 0);
	d->source_id = sqlite3_column_int64(st, 1);
	d->version = sqlite3_column_int64(st, 2);
	d->score = sqlite3_column_double(st, 10);
	d->nchunks = (size_t)sqlite3_column_int64(st, 12);
	d->nfindings = (size_t)sqlite3_column_int64(st, 13);
	if ((rc = ward_db_col_dup(&d->uri, st, 3)) < 0 || (rc = ward_db_col_dup(&d->title, st, 4)) < 0 ||
	    (rc = ward_db_col_dup(&d->state, st, 5)) < 0 || (rc = ward_db_col_dup(&d->verdict, st, 6)) < 0 ||
	    (rc = ward_db_col_dup(&d->fetched_at, st, 7)) < 0 || (rc = ward_db_col_dup(&d->ruleset_sha256, st, 8)) < 0 ||
	    (rc = ward_db_col_dup(&d->detected_type, st, 9)) < 0 || (rc = ward_db_col_dup(&d->ingested_by, st, 11)) < 0)
		ward_doc_info_dispose(d);
	return rc;
}

int ward_quarantine_list(ward_store *s, ward_doc_info **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	ward_doc_info *v = NULL, *grown;
	size_t count = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = ward_db_prepare(s, &st, DOC_INFO_SQL " WHERE d.state = 'quarantined' ORDER BY d.id")) < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!(grown = ward_realloc(v, (count + 1) * sizeof(*v)))) {
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
		v = grown;
		if ((rc = info_from_row(st, &v[count])) < 0)
			goto done;
		count++;
	}
	rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "listing quarantine");
done:
	sqlite3_finalize(st);
	if (rc < 0) {
		ward_doc_infos_free(v, count);
		return rc;
	}
	*out = v;
	*n = count;
	return 0;
}

int ward_documents_get(ward_store *s, int64_t id, ward_doc_info *out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = ward_db_prepare(s, &st, DOC_INFO_SQL " WHERE d.id = ?1")) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		rc = info_from_row(st, out);
	else
		rc = rc == SQLITE_DONE ? ward_error_set(WARD_ENOTFOUND, "document %" PRId64 " does not exist", id)
				       : ward_db_fail(s, "reading document");
	sqlite3_finalize(st);
	return rc;
}

void ward_doc_findings_free(ward_doc_finding *f, size_t n)
{
	if (!f)
		return;
	for (size_t i = 0; i < n; i++) {
		ward_free(f[i].rule_id);
		ward_free(f[i].category);
		ward_free(f[i].channel);
		ward_free(f[i].view);
		ward_free(f[i].excerpt);
	}
	ward_free(f);
}

/* Read for every document a retrieval returns: kept prepared. */
static const char findings_sql[] = "SELECT rule_id, category, severity, channel, view, start_offset, end_offset,"
                                   " excerpt FROM findings WHERE document_id = ?1 ORDER BY start_offset, id";

int ward_documents_findings(ward_store *s, int64_t id, ward_doc_finding **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	ward_doc_finding *v = NULL, *grown;
	size_t count = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = ward_db_prepare_cached(s, &st, findings_sql)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!(grown = ward_realloc(v, (count + 1) * sizeof(*v)))) {
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
		v = grown;
		memset(&v[count], 0, sizeof(v[count]));
		count++;
		v[count - 1].severity = sqlite3_column_int(st, 2);
		v[count - 1].start = sqlite3_column_int64(st, 5);
		v[count - 1].end = sqlite3_column_int64(st, 6);
		if ((rc = ward_db_col_dup(&v[count - 1].rule_id, st, 0)) < 0 ||
		    (rc = ward_db_col_dup(&v[count - 1].category, st, 1)) < 0 ||
		    (rc = ward_db_col_dup(&v[count - 1].channel, st, 3)) < 0 ||
		    (rc = ward_db_col_dup(&v[count - 1].view, st, 4)) < 0 ||
		    (rc = ward_db_col_dup(&v[count - 1].excerpt, st, 7)) < 0)
			goto done;
	}
	rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "reading findings");
done:
	ward_db_release(s, st);
	if (rc < 0) {
		ward_doc_findings_free(v, count);
		return rc;
	}
	*out = v;
	*n = count;
	return 0;
}

/* ---- decisions ---------------------------------------------------------------- */

static int decide(ward_store *s, const ward_actor *who, int64_t id, const char *note, int release)
{
	ward_doc_info d;
	sqlite3_stmt *st = NULL;
	json_t *details = NULL;
	char subject[48];
	size_t checked = 0, bad = 0;
	int rc;

	memset(&d, 0, sizeof(d));
	if (!who || !who->name || !*who->name)
		return ward_error_set(WARD_EINVAL, "the reviewer (--by) must not be empty");
	if (note && strlen(note) > WARD_MAX_REASON_LEN)
		return ward_error_set(WARD_ETOOBIG, "note is longer than %d bytes", WARD_MAX_REASON_LEN);
	if ((rc = ward_store_begin(s)) < 0)
		return rc;
	if ((rc = ward_documents_get(s, id, &d)) < 0)
		goto done;
	if (strcmp(d.state, "quarantined") != 0) {
		rc = ward_error_set(WARD_ESTATE, "document %" PRId64 ": cannot %s: state is '%s'", id,
				    release ? "release" : "drop", d.state);
		goto done;
	}
	if (release && s->config.two_person_rule && strcmp(d.ingested_by, who->name) == 0) {
		rc = ward_error_set(WARD_EPOLICY,
				    "document %" PRId64 ": '%s' ingested it and cannot also release it (two-person rule);"
				    " another reviewer must release it with --by",
				    id, who->name);
		goto done;
	}
	if (release) {
		/* What a reviewer releases must still be what was signed. */
		if ((rc = ward_documents_verify_chunks(s, id, &checked, &bad)) < 0)
			goto done;
		if (bad) {
			rc = ward_error_set(WARD_EVERIFY,
					    "document %" PRId64 ": %zu of %zu chunks fail signature verification; not released",
					    id, bad, checked);
			goto done;
		}
	}
	if ((rc = ward_db_prepare(s, &st, "UPDATE documents SET state = ?1 WHERE id = ?2 AND state = 'quarantined'")) < 0)
		goto done;
	ward_db_bind_text(st, 1, release ? "active" : "dropped");
	sqlite3_bind_int64(st, 2, id);
	if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(s->db) != 1) {
		rc = ward_db_fail(s, "updating document");
		goto done;
	}
	details = json_pack("{s:s, s:I, s:s, s:s?, s:I, s:b}", "uri", d.uri, "version", (json_int_t)d.version, "verdict",
			    d.verdict ? d.verdict : "", "note", note, "chunks_verified", (json_int_t)checked,
			    "two_person_rule", s->config.two_person_rule);
	if (!details) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	snprintf(subject, sizeof(subject), "document:%" PRId64, id);
	if ((rc = ward_audit_append(s, who, release ? "quarantine.release" : "quarantine.drop", subject, details)) < 0)
		goto done;
	rc = ward_store_commit(s);
done:
	if (rc < 0)
		ward_store_rollback(s);
	sqlite3_finalize(st);
	json_decref(details);
	ward_doc_info_dispose(&d);
	return rc;
}

int ward_quarantine_release(ward_store *s, const ward_actor *who, int64_t id, const char *note)
{
	return decide(s, who, id, note, 1);
}

int ward_quarantine_drop(ward_store *s, const ward_actor *who, int64_t id, const char *note)
{
	return decide(s, who, id, note, 0);
}
