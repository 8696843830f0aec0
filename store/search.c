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
 * rare term, or the rows with all the common terms) is read with its term
 * frequencies by ward_bm25, rows are scored -- the formula of
 * bm25(chunks_fts, 3, 2, 1) with the cached IDFs -- in upper-bound order, a
 * row's length looked up only while its bound can still reach the results,
 * and only the best candidates are joined and filtered.
 */
#include <inttypes.h>
#include <stdio.h>
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
#define SEARCH_MMAP_BYTES  (1LL << 34) /* read-only connections; SQLite caps it (2 GiB in Debian's build) */

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

/* bm25(chunks_fts, 3, 2, 1) of a row of `dl` tokens (k1 1.2, b 0.75), as
 * FTS5 computes it (positive here: FTS5 returns its negation). */
static double bm25_score(const double *idf, const double *tf, size_t nt, double dl, double avgdl)
{
	const double k1 = 1.2, b = 0.75;
	double score = 0;

	for (size_t t = 0; t < nt; t++)
		if (tf[t] > 0)
			score += idf[t] * ((tf[t] * (k1 + 1.0)) / (tf[t] + k1 * (1 - b + b * dl / avgdl)));
	return score;
}

typedef struct {
	double ub, score;
	int64_t id;
	size_t slot; /* its term frequencies: pool + slot * nt */
} cand;

/* Bound order: highest first, then lowest id. 1 when a goes first. */
static int above(const cand *a, const cand *b)
{
	return a->ub > b->ub || (a->ub == b->ub && a->id < b->id);
}

/* Result order (bm25() ascending, i.e. score descending, then id): 1 when
 * a goes first. */
static int before(const cand *a, const cand *b)
{
	return a->score > b->score || (a->score == b->score && a->id < b->id);
}

typedef struct {
	cand *v;       /* rows not scored exactly yet: a heap in bound order */
	double *pool;  /* the scanned rows' term frequencies, nt per row */
	size_t n, alloc; /* rows in v; room in v and pool */
	cand *heap;    /* scored rows not yet returned, best on top */
	size_t nheap;
	double avgdl;
	int have_avgdl, oom;
	const double *idf;
	size_t nt;
	const int32_t *term_of; /* the term of each phrase of the expression */
	uint32_t np;
	sqlite3_blob *size_blob; /* a row's length */
} scan;

static void scan_dispose(scan *c)
{
	sqlite3_blob_close(c->size_blob);
	ward_free(c->v);
	ward_free(c->pool);
	ward_free(c->heap);
	memset(c, 0, sizeof(*c));
}

/*
 * The scan's per-row function, ward_bm25(chunks_fts, ?) with the scan (a
 * pointer bound with sqlite3_bind_pointer, type "ward_scan": SQL text cannot
 * make one). It does not score: it appends the row's id and term
 * frequencies to the scan, with an upper bound of its score, and returns
 * NULL. The row's length, which the score needs, is not read here: its
 * lookup (the %_docsize table behind xColumnSize, a b-tree probe per row)
 * was most of the cost of scoring every candidate. A row has at least as
 * many tokens as hits, which gives the bound, and select_next looks the
 * length up only for rows whose bound can still reach the results.
 *
 * A term's frequency is bm25()'s: hits weighted by column (3, 2, 1); the
 * expression may repeat a term in several groups, and a term's frequency is
 * the largest over its phrases.
 */
static void ward_bm25_fn(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx, int nval,
                         sqlite3_value **val)
{
	static const double weight[3] = {3.0, 2.0, 1.0};
	scan *c;
	double *tf, hits = 0;
	int tc[SEARCH_MAX_TERMS];
	cand *x;

	if (nval != 1 || !(c = sqlite3_value_pointer(val[0], "ward_scan")) || c->nt == 0 ||
	    c->nt > SEARCH_MAX_TERMS || (int)c->np != api->xPhraseCount(fts))
		goto bad;
	if (c->n == c->alloc) {
		size_t na = c->alloc ? c->alloc * 2 : 256;
		cand *nv = ward_realloc(c->v, na * sizeof(*nv));
		double *npool = nv ? ward_realloc(c->pool, na * c->nt * sizeof(double)) : NULL;
		if (nv)
			c->v = nv;
		if (!npool) {
			c->oom = 1;
			sqlite3_result_error_nomem(ctx);
			return;
		}
		c->pool = npool;
		c->alloc = na;
	}
	if (!c->have_avgdl) { /* FTS5 reads both once per statement */
		sqlite3_int64 nrow = 0, ntok = 0;
		if (api->xRowCount(fts, &nrow) != SQLITE_OK || api->xColumnTotalSize(fts, -1, &ntok) != SQLITE_OK)
			goto bad;
		c->avgdl = nrow > 0 ? (double)ntok / (double)nrow : 1.0;
		c->have_avgdl = 1;
	}
	tf = c->pool + c->n * c->nt;
	memset(tf, 0, c->nt * sizeof(double));
	memset(tc, 0, c->nt * sizeof(int));
	/* the phrase iterators read the position lists in place (xInst would
	 * build and merge an array of every hit first) */
	for (uint32_t p = 0; p < c->np; p++) {
		Fts5PhraseIter it;
		int ic = -1, io = 0, pc = 0;
		int32_t t = c->term_of[p];
		double pf = 0;

		if (t < 0 || (size_t)t >= c->nt || api->xPhraseFirst(fts, (int)p, &it, &ic, &io) != SQLITE_OK)
			goto bad;
		for (; ic >= 0; api->xPhraseNext(fts, &it, &ic, &io)) {
			pf += ic < 3 ? weight[ic] : 1.0;
			pc++;
		}
		if (pf > tf[t])
			tf[t] = pf;
		if (pc > tc[t])
			tc[t] = pc;
	}
	for (size_t t = 0; t < c->nt; t++)
		hits += tc[t];
	x = &c->v[c->n];
	x->id = api->xRowid(fts);
	x->score = 0;
	x->slot = c->n;
	x->ub = bm25_score(c->idf, tf, c->nt, hits, c->avgdl) * (1 + 1e-12);
	c->n++;
	sqlite3_result_null(ctx);
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

/*
 * Prepares SQL that names ward_bm25. The first time on a connection (an FTS5
 * auxiliary function is per connection) it registers the function and, on a
 * read-only connection (the server's, the CLI's query), maps the file: a
 * pread() and a copy per page cost ~10 % of a search's CPU time at 1M chunks,
 * and more wall time. Writers keep plain I/O.
 */
static int prepare_scored(ward_store *s, sqlite3_stmt **st, const char *sql)
{
	char pragma[64];

	*st = NULL;
	if (!s->scorer_registered) {
		if (register_scorer(s->db) < 0)
			return ward_db_fail(s, "registering the ranking function");
		s->scorer_registered = 1;
		if (sizeof(void *) >= 8 && sqlite3_db_readonly(s->db, "main") == 1) {
			/* best effort: a build without mmap keeps reading */
			snprintf(pragma, sizeof(pragma), "PRAGMA mmap_size = %lld", (long long)SEARCH_MMAP_BYTES);
			(void)sqlite3_exec(s->db, pragma, NULL, NULL, NULL);
		}
	}
	return ward_db_prepare_cached(s, st, sql);
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
static const char totals_sql[] = "SELECT block FROM chunks_fts_data WHERE id = 1";

static int index_totals(ward_store *s, int64_t *nrow, uint8_t gen[WARD_SHA256_LEN])
{
	sqlite3_stmt *st = NULL;
	int rc;

	*nrow = 0;
	memset(gen, 0, WARD_SHA256_LEN);
	if ((rc = ward_db_prepare_cached(s, &st, totals_sql)) < 0)
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
	ward_db_release(s, st);
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
	size_t order[SEARCH_MAX_TERMS], n = 0;

	/* rarest first: FTS5 advances an AND from its first child, so the
	 * shortest list leads and the longer ones are only sought into */
	for (size_t i = 0; i < nt; i++)
		if (t[i].cls == 1) {
			size_t j = n++;
			for (; j > 0 && t[order[j - 1]].df > t[i].df; j--)
				order[j] = order[j - 1];
			order[j] = i;
		}
	eb_puts(e, "(");
	for (size_t k = 0; k < n; k++) {
		if (k)
			eb_puts(e, " AND ");
		eb_term(e, &t[order[k]], (int32_t)order[k]);
	}
	eb_puts(e, ")");
}

/*
 * level 1 (tight): R OR (R AND (c1 OR c2 ...)) over the common terms c, or
 *   the AND of all common terms when there is no rare term;
 * level 2 (full): every term that occurs, OR-ed: the plain query.
 * (A looser level adding "all common but one" groups was measured and
 * dropped: it reads whole posting lists of common terms, 25-300 ms at 1M
 * rows.)
 * R is the OR of the rare terms. "(R AND (c1 OR ...))" is there so that a
 * common term in a row found through a rare one is counted (FTS5 reports a
 * phrase's hits only where its own node stands on the row); one group for
 * all common terms reads R's lists twice, where a group per common term read
 * them once per common term.
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
		if (ncommon) {
			eb_puts(e, " OR (");
			eb_or_class(e, t, nt, 0);
			eb_puts(e, " AND ");
			eb_or_class(e, t, nt, 1);
			eb_puts(e, ")");
		}
	} else {
		eb_and_common(e, t, nt);
	}
}

static const char scan_sql[] = "SELECT ward_bm25(chunks_fts, ?2) FROM chunks_fts WHERE chunks_fts MATCH ?1 LIMIT ?3";

/* Bound order on the unscored rows: v is a heap whose top is the row with
 * the highest bound (ties: lowest id), popped one at a time; most rows are
 * never popped, so this beats sorting them all. */
static void ub_sift_down(cand *v, size_t n, size_t i)
{
	cand x = v[i];

	for (;;) {
		size_t k = 2 * i + 1;
		if (k >= n)
			break;
		if (k + 1 < n && above(&v[k + 1], &v[k]))
			k++;
		if (!above(&v[k], &x))
			break;
		v[i] = v[k];
		i = k;
	}
	v[i] = x;
}

/* Phase 1: reads at most `cap` rows of the expression (in rowid order) with
 * their term frequencies and bounds. */
static int scan_candidates(ward_store *s, const expr_builder *e, const double *idf, size_t nt, size_t cap, scan *c,
                           int *capped)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*capped = 0;
	c->idf = idf;
	c->nt = nt;
	c->avgdl = 1.0;
	c->term_of = e->term_of;
	c->np = e->np;
	if ((rc = prepare_scored(s, &st, scan_sql)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, e->expr.ptr ? e->expr.ptr : "", (int)e->expr.len, SQLITE_STATIC);
	sqlite3_bind_pointer(st, 2, c, "ward_scan", NULL);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)cap);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE) {
		rc = c->oom ? ward_error_set(WARD_ENOMEM, "out of memory") : ward_db_fail(s, "scoring candidates");
		goto done;
	}
	rc = 0;
	*capped = c->n >= cap;
	for (size_t i = c->n / 2; i-- > 0;)
		ub_sift_down(c->v, c->n, i);
	if (c->n && !(c->heap = ward_malloc(c->n * sizeof(*c->heap))))
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
done:
	ward_db_release(s, st); /* the scan's pointer goes with the bindings */
	return rc;
}

/*
 * A row's length in tokens, all columns (what xColumnSize(-1) reads): the
 * %_docsize record, one varint per column. Read through an incremental-blob
 * handle moved from row to row (sqlite3_blob_reopen): a b-tree seek and a
 * copy of a few bytes, where stepping a statement per row ran the VDBE for
 * each and cost about twice as much.
 */
static int row_length(ward_store *s, scan *c, int64_t id, double *dl)
{
	uint8_t p[64];
	int n, rc;
	uint64_t sum = 0;

	if (!c->size_blob) {
		rc = sqlite3_blob_open(s->db, "main", "chunks_fts_docsize", "sz", id, 0, &c->size_blob);
		if (rc != SQLITE_OK)
			c->size_blob = NULL;
	} else {
		rc = sqlite3_blob_reopen(c->size_blob, id);
	}
	if (rc != SQLITE_OK)
		return ward_db_fail(s, "reading a row's length");
	/* three columns: at most 27 bytes of varints */
	if ((n = sqlite3_blob_bytes(c->size_blob)) > (int)sizeof(p))
		return ward_error_set(WARD_EDB, "reading a row's length: bad entry");
	if (n > 0 && sqlite3_blob_read(c->size_blob, p, n, 0) != SQLITE_OK)
		return ward_db_fail(s, "reading a row's length");
	for (int i = 0; i < n;) {
		uint64_t v = 0;
		for (int k = 0; i < n; k++) {
			uint8_t byte = p[i++];
			if (k == 8) {
				v = (v << 8) | byte;
				break;
			}
			v = (v << 7) | (byte & 0x7f);
			if (!(byte & 0x80))
				break;
		}
		sum += v;
	}
	*dl = (double)sum;
	return 0;
}

static void heap_push(scan *c, cand x)
{
	size_t i = c->nheap++;

	while (i > 0 && before(&x, &c->heap[(i - 1) / 2])) {
		c->heap[i] = c->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	c->heap[i] = x;
}

static cand heap_pop(scan *c)
{
	cand top = c->heap[0], x = c->heap[--c->nheap];
	size_t i = 0;

	for (;;) {
		size_t k = 2 * i + 1;
		if (k >= c->nheap)
			break;
		if (k + 1 < c->nheap && before(&c->heap[k + 1], &c->heap[k]))
			k++;
		if (!before(&c->heap[k], &x))
			break;
		c->heap[i] = c->heap[k];
		i = k;
	}
	if (c->nheap)
		c->heap[i] = x;
	return top;
}

/*
 * Phase 2: the next candidate in bm25() order, exactly. Rows are scored (their
 * length looked up) in bound order until the best scored row beats every
 * remaining bound; most rows are never looked up. *found is 0 when the
 * candidates are exhausted.
 */
static int select_next(ward_store *s, scan *c, cand *out, int *found)
{
	int rc;

	*found = 0;
	while (c->n > 0 && (c->nheap == 0 || !(c->heap[0].score > c->v[0].ub))) {
		cand x = c->v[0];
		double dl = 0;

		c->v[0] = c->v[--c->n];
		ub_sift_down(c->v, c->n, 0);
		if ((rc = row_length(s, c, x.id, &dl)) < 0)
			return rc;
		x.score = bm25_score(c->idf, c->pool + x.slot * c->nt, c->nt, dl, c->avgdl);
		heap_push(c, x);
	}
	if (c->nheap == 0)
		return 0;
	*out = heap_pop(c);
	*found = 1;
	return 0;
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
	scan c;
	size_t nt, count = 0, skipped = 0, nrare = 0, ncommon = 0, nuseful = 0;
	int64_t nrow = 0, budget, used = 0;
	int rc, level, capped = 0;

	*out = NULL;
	*n = 0;
	memset(&c, 0, sizeof(c));
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
	if ((rc = ward_db_prepare_cached(s, &hs, hit_sql)) < 0 || (rc = bind_filters(hs, f)) < 0)
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
		scan_dispose(&c);
		if ((rc = scan_candidates(s, &e, idf, nt, SCAN_CAP, &c, &capped)) < 0)
			goto done;
		ward_search_hits_free(v, count);
		if (!(v = ward_calloc(limit, sizeof(*v)))) {
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
		count = skipped = 0;
		while (count < limit) {
			cand x;
			int found;

			if ((rc = select_next(s, &c, &x, &found)) < 0)
				goto done;
			if (!found)
				break;
			sqlite3_reset(hs);
			sqlite3_bind_int64(hs, 1, x.id);
			if ((rc = sqlite3_step(hs)) == SQLITE_ROW) {
				if (skipped < offset) {
					skipped++;
					continue;
				}
				if ((rc = hit_from_row(&v[count], hs)) < 0)
					goto done;
				v[count].bm25 = -x.score;
				count++;
			} else if (rc != SQLITE_DONE) {
				rc = ward_db_fail(s, "reading a candidate");
				goto done;
			}
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
	ward_db_release(s, hs);
	ward_buf_dispose(&e.expr);
	scan_dispose(&c);
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

static const char checkpoint_size_sql[] = "SELECT tree_size FROM checkpoints ORDER BY id DESC LIMIT 1";

int ward_store_checkpoint_size(ward_store *s, int64_t *size, int *found)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*size = 0;
	*found = 0;
	if ((rc = ward_db_prepare_cached(s, &st, checkpoint_size_sql)) < 0)
		return rc;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*size = sqlite3_column_int64(st, 0);
		*found = 1;
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "reading the latest checkpoint");
	}
	ward_db_release(s, st);
	return rc;
}
