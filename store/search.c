/*
 * The retrieval SQL: BM25 candidates over served chunks, and one chunk by id
 * for the citation check. Filters are bound parameters (JSON arrays read with
 * json_each), never spliced into SQL text.
 *
 * ward_store_search is two-phase (docs/retrieval.md "Ranking at scale"):
 * FTS5's bm25() scores every row an OR query matches and counts every term's
 * rows for its IDF, which at 1M chunks costs hundreds of milliseconds for a
 * question with a few common words. Here the terms' document frequencies come
 * from a process-wide cache, a bounded candidate expression (every row with a
 * rare term, rows with all or all-but-one of the common terms) is scored by
 * ward_bm25 -- the same formula as bm25(chunks_fts, 3, 2, 1) with the cached
 * IDFs -- and only the best candidates are joined and filtered.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "ragward/crypto.h"
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

int ward_store_search_plain(ward_store *s, const char *fts_query, const ward_search_filter *f, size_t limit,
                            size_t offset, ward_search_hit **out, size_t *n)
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

/* ---- two-phase search ------------------------------------------------------ */

#define SEARCH_MAX_TERMS   64
#define SEARCH_MAX_PHRASES 1024
#define RARE_BUDGET_MIN    2000  /* rows of rare terms scored in full */
#define RARE_BUDGET_DIV    500   /* ... or nrow / 500 when larger */
#define SCAN_CAP           5000  /* candidate rows scored for the tight expression, or the full OR */
#define DF_SLOTS           8192
#define DF_PROBE           8

/* Natural logarithm without libm (the library does not link it): x = m 2^e
 * with m in [0.707, 1.414), ln m = 2 atanh((m - 1) / (m + 1)) by its series
 * (|z| < 0.172: 12 terms reach double precision). */
static double ln_pos(double x)
{
	uint64_t bits;
	int e;
	double m, z, z2, term, sum = 0;

	if (!(x > 0))
		return -1e300;
	memcpy(&bits, &x, sizeof(bits));
	e = (int)((bits >> 52) & 0x7ff) - 1023;
	bits = (bits & ~(0x7ffULL << 52)) | (1023ULL << 52);
	memcpy(&m, &bits, sizeof(m));
	if (e == -1023) /* subnormal: no query produces one */
		return -745.0;
	if (m > 1.4142135623730951) {
		m /= 2;
		e++;
	}
	z = (m - 1) / (m + 1);
	z2 = z * z;
	term = z;
	for (int k = 0; k < 14; k++) {
		sum += term / (2 * k + 1);
		term *= z2;
	}
	return 2 * sum + e * 0.6931471805599453;
}

static atomic_ullong st_searches, st_capped, st_widened, st_df_misses;

void ward_search_stats_get(ward_search_stats *out)
{
	out->searches = atomic_load(&st_searches);
	out->capped = atomic_load(&st_capped);
	out->widened = atomic_load(&st_widened);
	out->df_lookups = atomic_load(&st_df_misses);
}

/* Score of the current row: bm25 as FTS5 computes it (k1 1.2, b 0.75, column
 * weights 3, 2, 1, IDF floored at 1e-6), over terms rather than phrases: the
 * argument maps each phrase of the expression to a term and gives each term's
 * IDF; a term's frequency is the largest over its phrases (the expression
 * repeats a term in several groups). Argument layout: uint32 nterms, uint32
 * nphrases, double idf[nterms], int32 term_of[nphrases]. */
/* Best exact scores so far (a min-heap of positive scores), kept across the
 * rows of one scan as the function's auxiliary data. */
typedef struct {
	int m, n;
	double v[];
} score_heap;

static void heap_push(score_heap *h, double x)
{
	int i;

	if (h->n < h->m) {
		i = h->n++;
		while (i > 0 && h->v[(i - 1) / 2] > x) {
			h->v[i] = h->v[(i - 1) / 2];
			i = (i - 1) / 2;
		}
		h->v[i] = x;
		return;
	}
	if (x <= h->v[0])
		return;
	i = 0;
	for (;;) {
		int c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1] < h->v[c])
			c++;
		if (h->v[c] >= x)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	h->v[i] = x;
}

static void ward_bm25_fn(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx, int nval,
                         sqlite3_value **val)
{
	static const double weight[3] = {3.0, 2.0, 1.0};
	const double k1 = 1.2, b = 0.75;
	double pf[SEARCH_MAX_PHRASES], tf[SEARCH_MAX_TERMS], score = 0, ub = 0, avgdl, D;
	int pc[SEARCH_MAX_PHRASES], tc[SEARCH_MAX_TERMS];
	const unsigned char *blob;
	score_heap *heap = NULL;
	uint32_t nt, np;
	int32_t term_of;
	sqlite3_int64 nrow = 0, ntok = 0, keep;
	int dtok = 0, bn, dmin = 0;

	if (nval != 2 || !(blob = sqlite3_value_blob(val[0])) || (bn = sqlite3_value_bytes(val[0])) < 8)
		goto bad;
	memcpy(&nt, blob, 4);
	memcpy(&np, blob + 4, 4);
	if (nt == 0 || nt > SEARCH_MAX_TERMS || np > SEARCH_MAX_PHRASES || (int)np != api->xPhraseCount(fts) ||
	    (size_t)bn != 8 + nt * sizeof(double) + np * 4)
		goto bad;
	keep = sqlite3_value_int64(val[1]);
	if (keep > 0 && keep <= 100000 && !(heap = api->xGetAuxdata(fts, 0))) {
		if (!(heap = sqlite3_malloc64(sizeof(*heap) + (size_t)keep * sizeof(double)))) {
			sqlite3_result_error_nomem(ctx);
			return;
		}
		heap->m = (int)keep;
		heap->n = 0;
		if (api->xSetAuxdata(fts, heap, sqlite3_free) != SQLITE_OK) {
			sqlite3_result_error_nomem(ctx);
			return;
		}
	}
	memset(pf, 0, np * sizeof(double));
	memset(pc, 0, np * sizeof(int));
	memset(tf, 0, nt * sizeof(double));
	memset(tc, 0, nt * sizeof(int));
	/* the phrase iterators read the position lists in place (xInst would
	 * build and merge an array of every hit first) */
	for (uint32_t p = 0; p < np; p++) {
		Fts5PhraseIter it;
		int ic = -1, io = 0;
		if (api->xPhraseFirst(fts, (int)p, &it, &ic, &io) != SQLITE_OK)
			goto bad;
		for (; ic >= 0; api->xPhraseNext(fts, &it, &ic, &io)) {
			pf[p] += ic < 3 ? weight[ic] : 1.0;
			pc[p]++;
		}
	}
	for (uint32_t p = 0; p < np; p++) {
		memcpy(&term_of, blob + 8 + nt * sizeof(double) + p * 4, 4);
		if (term_of < 0 || (uint32_t)term_of >= nt)
			goto bad;
		if (pf[p] > tf[term_of])
			tf[term_of] = pf[p];
		if (pc[p] > tc[term_of])
			tc[term_of] = pc[p];
	}
	if (api->xRowCount(fts, &nrow) != SQLITE_OK || api->xColumnTotalSize(fts, -1, &ntok) != SQLITE_OK)
		goto bad;
	avgdl = nrow > 0 ? (double)ntok / (double)nrow : 1.0;
	if (heap && heap->n == heap->m) {
		/* Upper bound without the row's length (a lookup per row, the
		 * expensive part): the row has at least as many tokens as hits. */
		for (uint32_t t = 0; t < nt; t++)
			dmin += tc[t];
		for (uint32_t t = 0; t < nt; t++) {
			double idf;
			memcpy(&idf, blob + 8 + t * sizeof(double), sizeof(double));
			ub += idf * ((tf[t] * (k1 + 1.0)) / (tf[t] + k1 * (1 - b + b * (double)dmin / avgdl)));
		}
		if (ub < heap->v[0]) {
			sqlite3_result_null(ctx); /* cannot reach the best `keep` */
			return;
		}
	}
	if (api->xColumnSize(fts, -1, &dtok) != SQLITE_OK)
		goto bad;
	D = (double)dtok;
	for (uint32_t t = 0; t < nt; t++) {
		double idf;
		memcpy(&idf, blob + 8 + t * sizeof(double), sizeof(double));
		score += idf * ((tf[t] * (k1 + 1.0)) / (tf[t] + k1 * (1 - b + b * D / avgdl)));
	}
	if (heap)
		heap_push(heap, score);
	sqlite3_result_double(ctx, -1.0 * score);
	return;
bad:
	sqlite3_result_error(ctx, "ward_bm25: bad arguments", -1);
}

static int register_scorer(sqlite3 *db)
{
	fts5_api *api = NULL;
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
	sqlite3_step(st);
	sqlite3_finalize(st);
	if (!api || api->iVersion < 2)
		return -1;
	return api->xCreateFunction(api, "ward_bm25", NULL, ward_bm25_fn, NULL) == SQLITE_OK ? 0 : -1;
}

/* Prepares SQL that names ward_bm25, registering it on this connection the
 * first time (an FTS5 auxiliary function is per connection). */
static int prepare_scored(ward_store *s, sqlite3_stmt **st, const char *sql)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) == SQLITE_OK)
		return 0;
	*st = NULL;
	if (register_scorer(s->db) < 0)
		return ward_db_fail(s, "registering the ranking function");
	return ward_db_prepare(s, st, sql);
}

/* ---- document frequencies ---------------------------------------------------- */

/*
 * Rows per term, cached process-wide. The generation is SHA-256(store id ||
 * the FTS5 totals record): any insert or delete changes the totals (row count
 * and token counts) and empties the cache, so IDFs are those of the current
 * index, as bm25() would compute them.
 */
static struct {
	pthread_mutex_t mu;
	uint8_t gen[WARD_SHA256_LEN];
	struct {
		char *term;
		int64_t df;
	} slot[DF_SLOTS];
} dfc = {.mu = PTHREAD_MUTEX_INITIALIZER};

static size_t term_hash(const char *t)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *t; t++)
		h = (h ^ (unsigned char)*t) * 1099511628211ULL;
	return (size_t)(h % DF_SLOTS);
}

static void df_set_generation(const uint8_t gen[WARD_SHA256_LEN])
{
	pthread_mutex_lock(&dfc.mu);
	if (memcmp(dfc.gen, gen, WARD_SHA256_LEN) != 0) {
		for (size_t i = 0; i < DF_SLOTS; i++) {
			ward_free(dfc.slot[i].term);
			dfc.slot[i].term = NULL;
		}
		memcpy(dfc.gen, gen, WARD_SHA256_LEN);
	}
	pthread_mutex_unlock(&dfc.mu);
}

static int df_get(const uint8_t gen[WARD_SHA256_LEN], const char *term, int64_t *df)
{
	size_t h = term_hash(term);
	int hit = 0;

	pthread_mutex_lock(&dfc.mu);
	if (memcmp(dfc.gen, gen, WARD_SHA256_LEN) == 0)
		for (size_t i = 0; i < DF_PROBE && !hit; i++) {
			size_t j = (h + i) % DF_SLOTS;
			if (dfc.slot[j].term && strcmp(dfc.slot[j].term, term) == 0) {
				*df = dfc.slot[j].df;
				hit = 1;
			}
		}
	pthread_mutex_unlock(&dfc.mu);
	return hit;
}

static void df_put(const uint8_t gen[WARD_SHA256_LEN], const char *term, int64_t df)
{
	size_t h = term_hash(term), j = h;
	char *copy = ward_strndup(term, strlen(term));

	if (!copy)
		return; /* a cache miss next time, nothing worse */
	pthread_mutex_lock(&dfc.mu);
	if (memcmp(dfc.gen, gen, WARD_SHA256_LEN) != 0) {
		pthread_mutex_unlock(&dfc.mu);
		ward_free(copy);
		return;
	}
	for (size_t i = 0; i < DF_PROBE; i++) {
		size_t k = (h + i) % DF_SLOTS;
		if (!dfc.slot[k].term || strcmp(dfc.slot[k].term, term) == 0) {
			j = k;
			break;
		}
	}
	ward_free(dfc.slot[j].term);
	dfc.slot[j].term = copy;
	dfc.slot[j].df = df;
	pthread_mutex_unlock(&dfc.mu);
}

/* The index's row count and the cache generation from the FTS5 totals record
 * (id 1 of the %_data table: varint row count, then token totals). */
static int index_totals(ward_store *s, int64_t *nrow, uint8_t gen[WARD_SHA256_LEN])
{
	sqlite3_stmt *st = NULL;
	int rc;

	*nrow = 0;
	memset(gen, 0, WARD_SHA256_LEN);
	if ((rc = ward_db_prepare(s, &st, "SELECT block FROM chunks_fts_data WHERE id = 1")) < 0)
		return rc;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const uint8_t *p = sqlite3_column_blob(st, 0);
		int n = sqlite3_column_bytes(st, 0);
		uint8_t buf[33 + 256];
		uint64_t v = 0;

		for (int i = 0; p && i < n && i < 9; i++) {
			if (i == 8) {
				v = (v << 8) | p[i];
				break;
			}
			v = (v << 7) | (p[i] & 0x7f);
			if (!(p[i] & 0x80))
				break;
		}
		*nrow = (int64_t)(v > INT64_MAX ? INT64_MAX : v);
		memcpy(buf, s->store_id, 33);
		if (n > 256)
			n = 256;
		if (p && n > 0)
			memcpy(buf + 33, p, (size_t)n);
		rc = ward_sha256(gen, buf, 33 + (size_t)(n > 0 ? n : 0));
	} else {
		rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "reading the index totals");
	}
	sqlite3_finalize(st);
	return rc;
}

typedef struct {
	const char *q; /* the quoted term, as in the FTS query */
	size_t qlen;
	int64_t df;
	double idf;
	int cls; /* 0 rare, 1 common, 2 noise (in more than half the rows), 3 absent */
} sterm;

static int term_df(ward_store *s, const uint8_t gen[WARD_SHA256_LEN], sterm *t)
{
	sqlite3_stmt *st = NULL;
	char *key;
	int rc;

	if (!(key = ward_strndup(t->q, t->qlen)))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	if (df_get(gen, key, &t->df)) {
		ward_free(key);
		return 0;
	}
	atomic_fetch_add(&st_df_misses, 1);
	if ((rc = ward_db_prepare(s, &st, "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?1")) == 0) {
		ward_db_bind_text(st, 1, key);
		if (sqlite3_step(st) == SQLITE_ROW) {
			t->df = sqlite3_column_int64(st, 0);
			df_put(gen, key, t->df);
		} else {
			rc = ward_db_fail(s, "counting a term's rows");
		}
	}
	sqlite3_finalize(st);
	ward_free(key);
	return rc;
}

/* Splits the output of ward_query_to_fts ("a" OR "b" ...) back into its
 * quoted terms. Returns the count, or 0 when the text has another shape. */
static size_t split_terms(const char *q, sterm *t, size_t max)
{
	size_t n = 0;
	const char *p = q;

	while (*p) {
		const char *start = p;
		if (*p != '"' || n == max)
			return 0;
		for (p++;; p++) {
			if (!*p)
				return 0;
			if (*p == '"' && p[1] == '"') {
				p++;
				continue;
			}
			if (*p == '"')
				break;
		}
		p++;
		memset(&t[n], 0, sizeof(t[n]));
		t[n].q = start;
		t[n].qlen = (size_t)(p - start);
		n++;
		if (!*p)
			break;
		if (strncmp(p, " OR ", 4) != 0)
			return 0;
		p += 4;
	}
	return n;
}

/* ---- candidate expressions ---------------------------------------------------- */

typedef struct {
	ward_buf expr;
	int32_t term_of[SEARCH_MAX_PHRASES];
	uint32_t np;
	int overflow;
} expr_builder;

static void eb_term(expr_builder *e, const sterm *t, int32_t idx)
{
	if (e->np == SEARCH_MAX_PHRASES) {
		e->overflow = 1;
		return;
	}
	e->term_of[e->np++] = idx;
	if (ward_buf_append(&e->expr, t->q, t->qlen) < 0)
		e->overflow = 1;
}

static void eb_puts(expr_builder *e, const char *str)
{
	if (ward_buf_puts(&e->expr, str) < 0)
		e->overflow = 1;
}

/* (t1 OR t2 ...) over the terms of class `cls` */
static void eb_or_class(expr_builder *e, const sterm *t, size_t nt, int cls)
{
	int first = 1;
	eb_puts(e, "(");
	for (size_t i = 0; i < nt; i++)
		if (t[i].cls == cls) {
			if (!first)
				eb_puts(e, " OR ");
			eb_term(e, &t[i], (int32_t)i);
			first = 0;
		}
	eb_puts(e, ")");
}

/* (c1 AND c2 ...) over the common terms */
static void eb_and_common(expr_builder *e, const sterm *t, size_t nt)
{
	int first = 1;
	eb_puts(e, "(");
	for (size_t i = 0; i < nt; i++)
		if (t[i].cls == 1) {
			if (!first)
				eb_puts(e, " AND ");
			eb_term(e, &t[i], (int32_t)i);
			first = 0;
		}
	eb_puts(e, ")");
}

/*
 * level 1 (tight): R OR (R AND c) for each common c, plus the AND of all
 *   common terms when there is no rare term;
 * level 2 (full): every term that occurs, OR-ed: the plain query.
 * (A looser level adding "all common but one" groups was measured and
 * dropped: it reads whole posting lists of common terms, 25-300 ms at 1M
 * rows.)
 * R is the OR of the rare terms. "(R AND c)" is there so that a common term
 * in a row found through a rare one is counted (FTS5 reports a phrase's hits
 * only where its own node stands on the row).
 */
static void build_expr(expr_builder *e, const sterm *t, size_t nt, size_t nrare, size_t ncommon, int level)
{
	int any = 0;

	e->np = 0;
	e->overflow = 0;
	ward_buf_reset(&e->expr);
	if (level == 2) {
		for (size_t i = 0; i < nt; i++)
			if (t[i].cls != 3) {
				if (any++)
					eb_puts(e, " OR ");
				eb_term(e, &t[i], (int32_t)i);
			}
		return;
	}
	if (nrare) {
		eb_or_class(e, t, nt, 0);
		for (size_t i = 0; i < nt; i++)
			if (t[i].cls == 1) {
				eb_puts(e, " OR (");
				eb_or_class(e, t, nt, 0);
				eb_puts(e, " AND ");
				eb_term(e, &t[i], (int32_t)i);
				eb_puts(e, ")");
			}
		any = 1;
	}
	if (ncommon == 1 && !nrare) {
		eb_and_common(e, t, nt);
	} else if (ncommon >= 2 && !nrare) {
		eb_and_common(e, t, nt);
	}
}

typedef struct {
	double score;
	int64_t id;
} cand;

static int cmp_cand(const void *a, const void *b)
{
	const cand *x = a, *y = b;
	if (x->score != y->score)
		return x->score < y->score ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Phase 1: scores at most `cap` rows of the expression (in rowid order). */
static int scan_candidates(ward_store *s, const expr_builder *e, const double *idf, size_t nt, size_t cap, size_t keep,
                           cand **out, size_t *n, int *capped, size_t *pruned)
{
	sqlite3_stmt *st = NULL;
	size_t blen = 8 + nt * sizeof(double) + e->np * 4, count = 0, cap_alloc = 0, scanned = 0;
	uint8_t *blob = NULL;
	cand *v = NULL;
	uint32_t nt32 = (uint32_t)nt, np32 = e->np;
	int rc;

	*out = NULL;
	*n = 0;
	*capped = 0;
	*pruned = 0;
	if (!(blob = ward_malloc(blen)))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	memcpy(blob, &nt32, 4);
	memcpy(blob + 4, &np32, 4);
	memcpy(blob + 8, idf, nt * sizeof(double));
	memcpy(blob + 8 + nt * sizeof(double), e->term_of, e->np * 4);
	if ((rc = prepare_scored(s, &st,
	                         "SELECT rowid, ward_bm25(chunks_fts, ?2, ?4) FROM chunks_fts"
	                         " WHERE chunks_fts MATCH ?1 LIMIT ?3")) < 0)
		goto done;
	sqlite3_bind_text(st, 1, e->expr.ptr ? e->expr.ptr : "", (int)e->expr.len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, blob, (int)blen, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)cap);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)keep);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_type(st, 1) == SQLITE_NULL) {
			(*pruned)++;
			scanned++;
			continue;
		}
		if (count == cap_alloc) {
			size_t nc = cap_alloc ? cap_alloc * 2 : 256;
			cand *nv = ward_realloc(v, nc * sizeof(*v));
			if (!nv) {
				rc = ward_error_set(WARD_ENOMEM, "out of memory");
				goto done;
			}
			v = nv;
			cap_alloc = nc;
		}
		v[count].id = sqlite3_column_int64(st, 0);
		v[count].score = sqlite3_column_double(st, 1);
		count++;
	}
	if (rc != SQLITE_DONE) {
		rc = ward_db_fail(s, "scoring candidates");
		goto done;
	}
	rc = 0;
	*capped = count + scanned >= cap;
	qsort(v, count, sizeof(*v), cmp_cand);
	*out = v;
	*n = count;
	v = NULL;
done:
	sqlite3_finalize(st);
	ward_free(blob);
	ward_free(v);
	return rc;
}

/* Phase 2: the served chunk of a candidate, if it passes the filters. */
static const char hit_sql[] =
        "SELECT " HIT_COLUMNS " FROM chunks c"
        " JOIN documents d ON d.id = c.document_id"
        " JOIN sources s ON s.id = d.source_id"
        " WHERE c.id = ?1"
        " AND d.state = 'active' AND s.state = 'approved'"
        " AND (?2 IS NULL OR d.source_id IN (SELECT value FROM json_each(?2)))"
        " AND (CASE s.trust WHEN 'high' THEN 2 WHEN 'standard' THEN 1 ELSE 0 END) >= ?3"
        " AND (?5 OR CASE WHEN json_valid(s.labels) AND json_type(s.labels) = 'array' THEN"
        "       json_array_length(s.labels) = 0"
        "       OR EXISTS (SELECT 1 FROM json_each(s.labels) sl JOIN json_each(?4) cl ON sl.value = cl.value)"
        "     ELSE 0 END)";

static int bind_filters(sqlite3_stmt *st, const ward_search_filter *f)
{
	json_t *arr = NULL;
	int rc = 0;

	if (f->nsource_ids) {
		if (!(arr = json_array()))
			return ward_error_set(WARD_ENOMEM, "out of memory");
		for (size_t i = 0; i < f->nsource_ids; i++)
			if (json_array_append_new(arr, json_integer((json_int_t)f->source_ids[i])) != 0) {
				json_decref(arr);
				return ward_error_set(WARD_ENOMEM, "out of memory");
			}
		rc = bind_json_array(st, 2, arr);
		json_decref(arr);
		if (rc < 0)
			return rc;
	}
	sqlite3_bind_int(st, 3, f->min_trust);
	if (!(arr = json_array()))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	for (size_t i = 0; i < f->nlabels; i++)
		if (!f->labels[i] || json_array_append_new(arr, json_string(f->labels[i])) != 0) {
			json_decref(arr);
			return ward_error_set(WARD_EINVAL, "label %zu is not valid UTF-8", i + 1);
		}
	rc = bind_json_array(st, 4, arr);
	json_decref(arr);
	if (rc < 0)
		return rc;
	sqlite3_bind_int(st, 5, f->all_labels ? 1 : 0);
	return 0;
}

int ward_store_search(ward_store *s, const char *fts_query, const ward_search_filter *f, size_t limit, size_t offset,
                      ward_search_hit **out, size_t *n)
{
	sterm t[SEARCH_MAX_TERMS];
	double idf[SEARCH_MAX_TERMS];
	uint8_t gen[WARD_SHA256_LEN];
	expr_builder e;
	sqlite3_stmt *hs = NULL;
	ward_search_hit *v = NULL;
	cand *c = NULL;
	size_t nt, nc = 0, count = 0, skipped = 0, nrare = 0, ncommon = 0, nuseful = 0;
	int64_t nrow = 0, budget, used = 0;
	size_t pruned = 0, keep = 2 * (limit + offset) + 16;
	int rc, level, capped = 0;

	*out = NULL;
	*n = 0;
	if (!fts_query || !f || limit == 0 || limit > 1000)
		return ward_error_set(WARD_EINVAL, "search: bad arguments");
	nt = split_terms(fts_query, t, SEARCH_MAX_TERMS);
	if (nt == 0)
		return ward_store_search_plain(s, fts_query, f, limit, offset, out, n);
	atomic_fetch_add(&st_searches, 1);
	if ((rc = index_totals(s, &nrow, gen)) < 0)
		return rc;
	if (nrow <= 0)
		return ward_store_search_plain(s, fts_query, f, limit, offset, out, n);
	df_set_generation(gen);

	/* classes: rarest first into the rare set while their rows fit the
	 * budget; the rest common; terms in more than half the rows are noise
	 * (bm25 floors their IDF at 1e-6) unless nothing else occurs. */
	budget = nrow / RARE_BUDGET_DIV > RARE_BUDGET_MIN ? nrow / RARE_BUDGET_DIV : RARE_BUDGET_MIN;
	for (size_t i = 0; i < nt; i++) {
		double x;
		if ((rc = term_df(s, gen, &t[i])) < 0)
			return rc;
		x = ln_pos(((double)nrow - (double)t[i].df + 0.5) / ((double)t[i].df + 0.5));
		idf[i] = t[i].idf = x <= 0.0 ? 1e-6 : x;
		t[i].cls = t[i].df == 0 ? 3 : 2 * t[i].df > nrow ? 2 : 1;
		nuseful += t[i].cls == 1;
	}
	if (nuseful == 0)
		for (size_t i = 0; i < nt; i++)
			if (t[i].cls == 2) {
				t[i].cls = 1;
				nuseful++;
			}
	if (nuseful == 0) /* no term occurs */
		return ward_store_search_plain(s, fts_query, f, limit, offset, out, n);
	for (;;) {
		ssize_t best = -1;
		for (size_t i = 0; i < nt; i++)
			if (t[i].cls == 1 && (best < 0 || t[i].df < t[best].df))
				best = (ssize_t)i;
		if (best < 0 || used + t[best].df > budget)
			break;
		used += t[best].df;
		t[best].cls = 0;
		nrare++;
	}
	ncommon = nuseful - nrare;

	if (!(v = ward_calloc(limit, sizeof(*v))))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	ward_buf_init(&e.expr, 64 * 1024);
	if ((rc = ward_db_prepare(s, &hs, hit_sql)) < 0 || (rc = bind_filters(hs, f)) < 0)
		goto done;
	/* all terms rare: the tight expression is the plain OR, exactly ranked */
	for (level = 1; level <= 2; level++) {
		build_expr(&e, t, nt, nrare, ncommon, level);
		if (e.expr.err == WARD_ENOMEM) {
			/* out of memory is not a bad query */
			rc = ward_error_set(WARD_ENOMEM, "search: out of memory");
			goto done;
		}
		if (e.overflow) {
			if (level < 2)
				continue;
			rc = ward_error_set(WARD_EINVAL, "query too long/complex");
			goto done;
		}
		ward_free(c);
		c = NULL;
		if ((rc = scan_candidates(s, &e, idf, nt, SCAN_CAP, keep, &c, &nc, &capped, &pruned)) < 0)
			goto done;
		ward_search_hits_free(v, count);
		if (!(v = ward_calloc(limit, sizeof(*v)))) {
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
		count = skipped = 0;
		for (size_t i = 0; i < nc && count < limit; i++) {
			sqlite3_reset(hs);
			sqlite3_bind_int64(hs, 1, c[i].id);
			if ((rc = sqlite3_step(hs)) == SQLITE_ROW) {
				if (skipped < offset) {
					skipped++;
					continue;
				}
				if ((rc = hit_from_row(&v[count], hs)) < 0)
					goto done;
				v[count].bm25 = c[i].score;
				count++;
			} else if (rc != SQLITE_DONE) {
				rc = ward_db_fail(s, "reading a candidate");
				goto done;
			}
		}
		/* The filters refused so many of the best candidates that pruned
		 * rows may count: the same expression again, without pruning. */
		if (count < limit && pruned && keep) {
			keep = 0;
			level--;
			continue;
		}
		/* Enough, or the expression was cut at the cap (its rows are not
		 * exhausted), or it already was the full query. */
		if (count == limit || capped || level == 2 || (level == 1 && ncommon == 0 && nrare == nuseful &&
		                                                nuseful == nt))
			break;
		atomic_fetch_add(&st_widened, 1);
	}
	if (capped)
		atomic_fetch_add(&st_capped, 1);
	rc = 0;
done:
	sqlite3_finalize(hs);
	ward_buf_dispose(&e.expr);
	ward_free(c);
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
