/*
 * The retrieval SQL: BM25 candidates over served chunks, and one chunk by id
 * for the citation check. Filters are bound parameters (JSON arrays read with
 * json_each), never spliced into SQL text.
 */
#include <inttypes.h>
#include <string.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/retrieve.h"
#include "store/db_internal.h"
#include "core/banned.h"

/* The first 18 columns are the verification row of store/review.c, in its
 * order. */
#define HIT_COLUMNS                                                                                                    \
	"c.id, c.ordinal, c.heading_path, c.char_start, c.char_end, c.text, c.text_sha256,"                            \
	" c.statement_version, c.key_id, c.signature, d.id, d.version, d.source_id,"                                   \
	" COALESCE(d.final_url, d.uri), d.byte_sha256, d.ruleset_sha256, d.verdict, d.fetched_at,"                     \
	" d.uri, d.title, s.name, s.trust, d.state, s.state"

/*
 * Title weighted 3, heading path 2, text 1. A source without labels is public;
 * a labelled one needs a label in common with the caller (?4, a JSON array)
 * unless ?5 says the caller sees everything. A labels column that is not valid
 * JSON hides the source rather than failing the query.
 */
static const char search_sql[] =
        "SELECT " HIT_COLUMNS ", bm25(chunks_fts, 3.0, 2.0, 1.0) AS score"
        " FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid"
        " JOIN documents d ON d.id = c.document_id"
        " JOIN sources s ON s.id = d.source_id"
        " WHERE chunks_fts MATCH ?1"
        " AND d.state = 'active' AND s.state = 'approved'"
        " AND (?2 IS NULL OR d.source_id IN (SELECT value FROM json_each(?2)))"
        " AND (CASE s.trust WHEN 'high' THEN 2 WHEN 'standard' THEN 1 ELSE 0 END) >= ?3"
        " AND (?5 OR CASE WHEN json_valid(s.labels) AND json_type(s.labels) = 'array' THEN"
        "       json_array_length(s.labels) = 0"
        "       OR EXISTS (SELECT 1 FROM json_each(s.labels) sl JOIN json_each(?4) cl ON sl.value = cl.value)"
        "     ELSE 0 END)"
        " ORDER BY score, c.id LIMIT ?6 OFFSET ?7";

static int dup_blob(uint8_t **out, size_t *len, sqlite3_stmt *st, int col)
{
	const void *p = sqlite3_column_blob(st, col);
	size_t n = (size_t)sqlite3_column_bytes(st, col);

	*out = NULL;
	*len = 0;
	if (!p)
		return 0;
	if (!(*out = ward_malloc(n ? n : 1)))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	memcpy(*out, p, n);
	*len = n;
	return 0;
}

static int dup_text(char **out, size_t *len, sqlite3_stmt *st, int col)
{
	const unsigned char *p = sqlite3_column_text(st, col);
	size_t n = (size_t)sqlite3_column_bytes(st, col);

	*out = NULL;
	if (len)
		*len = 0;
	if (!p)
		return 0;
	if (!(*out = ward_malloc(n + 1)))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	memcpy(*out, p, n);
	(*out)[n] = '\0';
	if (len)
		*len = n;
	return 0;
}

void ward_search_hit_dispose(ward_search_hit *h)
{
	if (!h)
		return;
	ward_free(h->title);
	ward_free(h->identity_uri);
	ward_free(h->source_name);
	ward_free(h->trust);
	ward_free(h->doc_state);
	ward_free(h->source_state);
	ward_free(h->heading_path);
	ward_free(h->text);
	ward_free(h->key_id);
	ward_free(h->uri);
	ward_free(h->ruleset_sha256);
	ward_free(h->verdict);
	ward_free(h->fetched_at);
	ward_free(h->text_sha256);
	ward_free(h->signature);
	ward_free(h->doc_sha256);
	memset(h, 0, sizeof(*h));
}

void ward_search_hits_free(ward_search_hit *h, size_t n)
{
	if (!h)
		return;
	for (size_t i = 0; i < n; i++)
		ward_search_hit_dispose(&h[i]);
	ward_free(h);
}

static int hit_from_row(ward_search_hit *h, sqlite3_stmt *st)
{
	ward_chunk_row *r = &h->row;
	int rc;

	memset(h, 0, sizeof(*h));
	r->chunk_id = sqlite3_column_int64(st, 0);
	r->ordinal = sqlite3_column_int64(st, 1);
	r->char_start = sqlite3_column_int64(st, 3);
	r->char_end = sqlite3_column_int64(st, 4);
	r->statement_version = sqlite3_column_int(st, 7);
	r->document_id = sqlite3_column_int64(st, 10);
	r->document_version = sqlite3_column_int64(st, 11);
	r->source_id = sqlite3_column_int64(st, 12);
	if ((rc = dup_text(&h->heading_path, NULL, st, 2)) < 0 || (rc = dup_text(&h->text, &r->text_len, st, 5)) < 0 ||
	    (rc = dup_blob(&h->text_sha256, &r->text_sha256_len, st, 6)) < 0 ||
	    (rc = dup_text(&h->key_id, &r->key_id_len, st, 8)) < 0 ||
	    (rc = dup_blob(&h->signature, &r->signature_len, st, 9)) < 0 ||
	    (rc = dup_text(&h->uri, NULL, st, 13)) < 0 ||
	    (rc = dup_blob(&h->doc_sha256, &r->doc_sha256_len, st, 14)) < 0 ||
	    (rc = dup_text(&h->ruleset_sha256, NULL, st, 15)) < 0 || (rc = dup_text(&h->verdict, NULL, st, 16)) < 0 ||
	    (rc = dup_text(&h->fetched_at, NULL, st, 17)) < 0 || (rc = dup_text(&h->identity_uri, NULL, st, 18)) < 0 ||
	    (rc = dup_text(&h->title, NULL, st, 19)) < 0 || (rc = dup_text(&h->source_name, NULL, st, 20)) < 0 ||
	    (rc = dup_text(&h->trust, NULL, st, 21)) < 0 || (rc = dup_text(&h->doc_state, NULL, st, 22)) < 0 ||
	    (rc = dup_text(&h->source_state, NULL, st, 23)) < 0) {
		ward_search_hit_dispose(h);
		return rc;
	}
	r->heading_path = h->heading_path;
	r->text = h->text ? h->text : "";
	r->text_sha256 = h->text_sha256;
	r->key_id = h->key_id;
	r->signature = h->signature;
	r->uri = h->uri;
	r->doc_sha256 = h->doc_sha256;
	r->ruleset_sha256 = h->ruleset_sha256;
	r->verdict = h->verdict;
	r->fetched_at = h->fetched_at;
	return 0;
}

/* Builds a JSON array text for a json_each() parameter. */
static int bind_json_array(sqlite3_stmt *st, int idx, json_t *arr)
{
	char *text = json_dumps(arr, JSON_COMPACT);

	if (!text)
		return ward_error_set(WARD_ENOMEM, "out of memory");
	if (sqlite3_bind_text(st, idx, text, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
		ward_free(text);
		return ward_error_set(WARD_ENOMEM, "out of memory");
	}
	ward_free(text); /* json_dumps allocates through the same hook (ward_alloc_install_jansson) */
	return 0;
}

int ward_store_search(ward_store *s, const char *fts_query, const ward_search_filter *f, size_t limit, size_t offset,
                      ward_search_hit **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	ward_search_hit *v = NULL;
	json_t *arr = NULL;
	size_t count = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (!fts_query || !f || limit == 0 || limit > 1000)
		return ward_error_set(WARD_EINVAL, "search: bad arguments");
	if (!(v = ward_calloc(limit, sizeof(*v))))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	if ((rc = ward_db_prepare(s, &st, search_sql)) < 0)
		goto done;
	ward_db_bind_text(st, 1, fts_query);
	if (f->nsource_ids) {
		if (!(arr = json_array())) {
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
		for (size_t i = 0; i < f->nsource_ids; i++)
			if (json_array_append_new(arr, json_integer((json_int_t)f->source_ids[i])) != 0) {
				rc = ward_error_set(WARD_ENOMEM, "out of memory");
				goto done;
			}
		if ((rc = bind_json_array(st, 2, arr)) < 0)
			goto done;
		json_decref(arr);
		arr = NULL;
	}
	sqlite3_bind_int(st, 3, f->min_trust);
	if (!(arr = json_array())) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < f->nlabels; i++)
		if (!f->labels[i] || json_array_append_new(arr, json_string(f->labels[i])) != 0) {
			rc = ward_error_set(WARD_EINVAL, "label %zu is not valid UTF-8", i + 1);
			goto done;
		}
	if ((rc = bind_json_array(st, 4, arr)) < 0)
		goto done;
	sqlite3_bind_int(st, 5, f->all_labels ? 1 : 0);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)limit);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)offset);
	rc = SQLITE_DONE;
	while (count < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((rc = hit_from_row(&v[count], st)) < 0)
			goto done;
		v[count].bm25 = sqlite3_column_double(st, 24);
		count++;
		rc = SQLITE_ROW; /* stopping at the limit leaves rows unread: fine */
	}
	rc = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? 0 : ward_db_fail(s, "searching chunks");
done:
	json_decref(arr);
	sqlite3_finalize(st);
	if (rc < 0) {
		ward_search_hits_free(v, count);
		return rc;
	}
	*out = v;
	*n = count;
	return 0;
}

int ward_store_chunk_get(ward_store *s, int64_t chunk_id, ward_search_hit *out, int *found)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	*found = 0;
	if ((rc = ward_db_prepare(s, &st,
	                          "SELECT " HIT_COLUMNS " FROM chunks c JOIN documents d ON d.id = c.document_id"
	                          " LEFT JOIN sources s ON s.id = d.source_id WHERE c.id = ?1")) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, chunk_id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((rc = hit_from_row(out, st)) == 0)
			*found = 1;
	} else {
		rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "reading chunk");
	}
	sqlite3_finalize(st);
	return rc;
}

int ward_store_checkpoint_size(ward_store *s, int64_t *size, int *found)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*size = 0;
	*found = 0;
	if ((rc = ward_db_prepare(s, &st, "SELECT tree_size FROM checkpoints ORDER BY id DESC LIMIT 1")) < 0)
		return rc;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*size = sqlite3_column_int64(st, 0);
		*found = 1;
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "reading the latest checkpoint");
	}
	sqlite3_finalize(st);
	return rc;
}
