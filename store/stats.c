/*
 * Drift statistics: `ragward stats`.
 *
 * After a rule or dependency update a security team watches how verdicts,
 * findings per rule, chunk sizes and withheld-on-read counts move. All
 * figures are grouped by UTC day (of the audit event that recorded the
 * decision), source and the rule set that judged the documents, so a rule-set
 * change starts new rows instead of blending into old ones.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/retrieve.h"
#include "ragward/traces.h"
#include "ragward/verify.h"
#include "store/db_internal.h"
#include "core/limits.h"
#include "core/banned.h"

static const char *const verdict_names[] = {"accept", "flag", "strip", "quarantine", "reject"};
#define NVERDICTS (sizeof(verdict_names) / sizeof(verdict_names[0]))

typedef struct {
	char day[11];
	int64_t source_id;
	char *ruleset;
	int64_t first_seq;
	uint64_t documents, verdicts[NVERDICTS], other_verdicts, chunks, chunk_chars;
	json_t *findings; /* rule id -> count */
} stats_row;

typedef struct {
	stats_row *v;
	size_t n, cap;
	json_t *index; /* "day|source|ruleset" -> position in v */
} stats_rows;

static void rows_dispose(stats_rows *r)
{
	for (size_t i = 0; i < r->n; i++) {
		ward_free(r->v[i].ruleset);
		json_decref(r->v[i].findings);
	}
	ward_free(r->v);
	json_decref(r->index);
	memset(r, 0, sizeof(*r));
}

/* The row of (day, source, rule set), created when `create` is set; NULL
 * when absent (or, with create, on ENOMEM: rc is set then). */
static stats_row *row_get(stats_rows *r, sqlite3_stmt *st, int create, int *rc)
{
	const char *day = (const char *)sqlite3_column_text(st, 0);
	int64_t src = sqlite3_column_int64(st, 1);
	const char *rs = (const char *)sqlite3_column_text(st, 2);
	char key[256];
	json_t *pos;
	stats_row *row;

	if (!day)
		day = "";
	if (!rs)
		rs = "none";
	snprintf(key, sizeof(key), "%.10s|%" PRId64 "|%.200s", day, src, rs);
	if ((pos = json_object_get(r->index, key)))
		return &r->v[json_integer_value(pos)];
	if (!create)
		return NULL;
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 64;
		stats_row *v = ward_realloc(r->v, cap * sizeof(*v));
		if (!v)
			goto nomem;
		r->v = v;
		r->cap = cap;
	}
	row = &r->v[r->n];
	memset(row, 0, sizeof(*row));
	snprintf(row->day, sizeof(row->day), "%.10s", day);
	row->source_id = src;
	if (!(row->ruleset = ward_strdup(rs)) || !(row->findings = json_object())) {
		ward_free(row->ruleset);
		goto nomem;
	}
	if (json_object_set_new(r->index, key, json_integer((json_int_t)r->n)) != 0) {
		ward_free(row->ruleset);
		json_decref(row->findings);
		goto nomem;
	}
	r->n++;
	return row;
nomem:
	*rc = ward_error_set(WARD_ENOMEM, "stats: out of memory");
	return NULL;
}

/* Runs `sql` with ?1 = since and hands each row to `fn`. */
static int each_row(ward_store *s, const char *sql, const char *since, stats_rows *r,
		    int (*fn)(stats_rows *r, sqlite3_stmt *st))
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = ward_db_prepare(s, &st, sql)) < 0)
		return rc;
	ward_db_bind_text(st, 1, since ? since : "");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((rc = fn(r, st)) < 0)
			goto done;
	rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "reading statistics");
done:
	sqlite3_finalize(st);
	return rc;
}

/* day, source, rule set, verdict, count, first seq */
#define STATS_DECISIONS_SQL                                                                                        \
	"SELECT substr(at, 1, 10), json_extract(details, '$.source_id'),"                                           \
	" COALESCE(json_extract(details, '$.ruleset_sha256'), 'none'),"                                             \
	" CASE action WHEN 'document.reject' THEN 'reject' ELSE json_extract(details, '$.verdict') END,"           \
	" count(*), min(seq)"                                                                                       \
	" FROM audit_events WHERE action IN ('document.ingest', 'document.reject') AND at >= ?1"                    \
	" GROUP BY 1, 2, 3, 4"

static int take_decisions(stats_rows *r, sqlite3_stmt *st)
{
	int rc = 0;
	stats_row *row = row_get(r, st, 1, &rc);
	const char *verdict = (const char *)sqlite3_column_text(st, 3);
	uint64_t n = (uint64_t)sqlite3_column_int64(st, 4);
	int64_t seq = sqlite3_column_int64(st, 5);
	size_t i;

	if (!row)
		return rc;
	if (!row->first_seq || seq < row->first_seq)
		row->first_seq = seq;
	for (i = 0; i < NVERDICTS; i++)
		if (verdict && strcmp(verdict, verdict_names[i]) == 0)
			break;
	if (i < NVERDICTS)
		row->verdicts[i] += n;
	else
		row->other_verdicts += n;
	if (!verdict || strcmp(verdict, "reject") != 0)
		row->documents += n;
	return 0;
}

/* Driven from documents so that the audit subject index is used. */
#define STATS_CHUNKS_SQL                                                                                           \
	"SELECT substr(e.at, 1, 10), json_extract(e.details, '$.source_id'),"                                       \
	" COALESCE(json_extract(e.details, '$.ruleset_sha256'), 'none'), count(c.id), sum(length(c.text))"          \
	" FROM documents d JOIN audit_events e ON e.subject = 'document:' || d.id AND e.action = 'document.ingest'" \
	" JOIN chunks c ON c.document_id = d.id WHERE e.at >= ?1 GROUP BY 1, 2, 3"

static int take_chunks(stats_rows *r, sqlite3_stmt *st)
{
	int rc = 0;
	stats_row *row = row_get(r, st, 1, &rc);

	if (!row)
		return rc;
	row->chunks += (uint64_t)sqlite3_column_int64(st, 3);
	row->chunk_chars += (uint64_t)sqlite3_column_int64(st, 4);
	return 0;
}

/* Findings of stored documents (all of them), and of rejected documents
 * (the at most 50 rule ids their document.reject event lists). */
#define STATS_FINDINGS_SQL                                                                                         \
	"SELECT substr(e.at, 1, 10), json_extract(e.details, '$.source_id'),"                                       \
	" COALESCE(json_extract(e.details, '$.ruleset_sha256'), 'none'), f.rule_id, count(*)"                       \
	" FROM documents d JOIN audit_events e ON e.subject = 'document:' || d.id AND e.action = 'document.ingest'" \
	" JOIN findings f ON f.document_id = d.id WHERE e.at >= ?1 GROUP BY 1, 2, 3, 4"                            \
	" UNION ALL "                                                                                               \
	"SELECT substr(e.at, 1, 10), json_extract(e.details, '$.source_id'),"                                       \
	" COALESCE(json_extract(e.details, '$.ruleset_sha256'), 'none'), json_extract(r.value, '$.rule_id'),"       \
	" count(*) FROM audit_events e, json_each(e.details, '$.rules') r"                                          \
	" WHERE e.action = 'document.reject' AND e.at >= ?1 AND json_valid(e.details) GROUP BY 1, 2, 3, 4"

static int take_findings(stats_rows *r, sqlite3_stmt *st)
{
	int rc = 0;
	stats_row *row = row_get(r, st, 1, &rc);
	const char *rule = (const char *)sqlite3_column_text(st, 3);
	json_int_t prev;

	if (!row)
		return rc;
	if (!rule)
		rule = "?";
	prev = json_integer_value(json_object_get(row->findings, rule));
	if (json_object_set_new(row->findings, rule, json_integer(prev + sqlite3_column_int64(st, 4))) != 0)
		return ward_error_set(WARD_ENOMEM, "stats: out of memory");
	return 0;
}

static int row_cmp(const void *a, const void *b)
{
	const stats_row *x = a, *y = b;
	int c = strcmp(x->day, y->day);

	if (c)
		return c;
	if (x->source_id != y->source_id)
		return x->source_id < y->source_id ? -1 : 1;
	if (x->first_seq != y->first_seq)
		return x->first_seq < y->first_seq ? -1 : 1;
	return strcmp(x->ruleset, y->ruleset);
}

static int source_names(ward_store *s, json_t *names)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = ward_db_prepare(s, &st, "SELECT id, name FROM sources")) < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char key[32];
		const char *name = (const char *)sqlite3_column_text(st, 1);
		snprintf(key, sizeof(key), "%" PRId64, (int64_t)sqlite3_column_int64(st, 0));
		if (json_object_set_new(names, key, json_string(name ? name : "")) != 0) {
			rc = ward_error_set(WARD_ENOMEM, "stats: out of memory");
			goto done;
		}
	}
	rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "reading sources");
done:
	sqlite3_finalize(st);
	return rc;
}

/* Builds the "rows" array in order and marks rule-set boundaries. */
static int rows_json(stats_rows *r, const json_t *names, json_t *out)
{
	json_t *last_rs = json_object();
	int rc = 0;

	if (!last_rs)
		return ward_error_set(WARD_ENOMEM, "stats: out of memory");
	if (r->n)
		qsort(r->v, r->n, sizeof(*r->v), row_cmp);
	for (size_t i = 0; i < r->n; i++) {
		stats_row *row = &r->v[i];
		char key[32];
		const char *prev, *name;
		json_t *verdicts = json_object(), *o;

		snprintf(key, sizeof(key), "%" PRId64, row->source_id);
		prev = json_string_value(json_object_get(last_rs, key));
		name = json_string_value(json_object_get(names, key));
		for (size_t v = 0; verdicts && v < NVERDICTS; v++)
			json_object_set_new(verdicts, verdict_names[v], json_integer((json_int_t)row->verdicts[v]));
		if (verdicts && row->other_verdicts)
			json_object_set_new(verdicts, "other", json_integer((json_int_t)row->other_verdicts));
		o = json_pack("{s:s, s:I, s:s?, s:s, s:b, s:I, s:o, s:I, s:f, s:O}", "day", row->day, "source_id",
			      (json_int_t)row->source_id, "source", name, "ruleset_sha256", row->ruleset,
			      "ruleset_changed", prev && strcmp(prev, row->ruleset) != 0, "documents",
			      (json_int_t)row->documents, "verdicts", verdicts, "chunks", (json_int_t)row->chunks,
			      "avg_chunk_length", row->chunks ? (double)row->chunk_chars / (double)row->chunks : 0.0,
			      "findings", row->findings);
		if (!o || json_array_append_new(out, o) != 0 ||
		    json_object_set_new(last_rs, key, json_string(row->ruleset)) != 0) {
			rc = ward_error_set(WARD_ENOMEM, "stats: out of memory");
			break;
		}
	}
	json_decref(last_rs);
	return rc;
}

static int ruleset_changes(ward_store *s, const char *since, json_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = ward_db_prepare(s, &st,
				  "SELECT at, subject, json_extract(details, '$.previous'), json_extract(details, '$.rules')"
				  " FROM audit_events WHERE action = 'rules.load' AND at >= ?1 AND json_valid(details)"
				  " ORDER BY seq")) < 0)
		return rc;
	ward_db_bind_text(st, 1, since ? since : "");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *o = json_pack("{s:s, s:s, s:s?, s:I}", "time", (const char *)sqlite3_column_text(st, 0), "sha256",
				      (const char *)sqlite3_column_text(st, 1), "previous",
				      (const char *)sqlite3_column_text(st, 2), "rules",
				      (json_int_t)sqlite3_column_int64(st, 3));
		if (!o || json_array_append_new(out, o) != 0) {
			rc = ward_error_set(WARD_ENOMEM, "stats: out of memory");
			goto done;
		}
	}
	rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "reading rule-set changes");
done:
	sqlite3_finalize(st);
	return rc;
}

static int str_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Queries and withheld-on-read counts per day from the trace file (one
 * record per retrieval: {"time", "results": [...], "withheld"}). A missing
 * file is not an error; torn or oversized lines are skipped, as
 * ward_trace_find does. *status tells which.
 */
static int read_traces(ward_store *s, const char *since, json_t *reads, const char **status)
{
	char path[WARD_MAX_PATH_LEN + 32];
	json_t *days = NULL;
	FILE *fp = NULL;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	const char *key;
	json_t *val;
	int fd, rc = 0;

	*status = "absent";
	if ((rc = ward_trace_path(path, sizeof(path), s)) < 0)
		return rc;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return ward_error_set(WARD_EIO, "'%s': cannot open trace file: %s", path, strerror(errno));
	}
	if (!(fp = fdopen(fd, "r"))) {
		close(fd);
		return ward_error_set(WARD_EIO, "'%s': cannot read trace file: %s", path, strerror(errno));
	}
	if (!(days = json_object())) {
		rc = ward_error_set(WARD_ENOMEM, "stats: out of memory");
		goto done;
	}
	while ((n = getline(&line, &cap, fp)) >= 0) {
		json_t *rec, *day;
		const char *t;
		char d[11];

		if ((size_t)n > WARD_TRACE_MAX_LINE || !(rec = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, NULL)))
			continue;
		t = json_string_value(json_object_get(rec, "time"));
		if (!t || strlen(t) < 10 || (since && strcmp(t, since) < 0)) {
			json_decref(rec);
			continue;
		}
		snprintf(d, sizeof(d), "%.10s", t);
		if (!(day = json_object_get(days, d))) {
			day = json_pack("{s:s, s:I, s:I, s:I}", "day", d, "queries", (json_int_t)0, "served", (json_int_t)0,
					"withheld", (json_int_t)0);
			if (!day || json_object_set_new(days, d, day) != 0) {
				json_decref(rec);
				rc = ward_error_set(WARD_ENOMEM, "stats: out of memory");
				goto done;
			}
		}
		json_object_set_new(day, "queries", json_integer(json_integer_value(json_object_get(day, "queries")) + 1));
		json_object_set_new(day, "served",
				    json_integer(json_integer_value(json_object_get(day, "served")) +
						 (json_int_t)json_array_size(json_object_get(rec, "results"))));
		json_object_set_new(day, "withheld",
				    json_integer(json_integer_value(json_object_get(day, "withheld")) +
						 json_integer_value(json_object_get(rec, "withheld"))));
		json_decref(rec);
	}
	if (ferror(fp)) {
		rc = ward_error_set(WARD_EIO, "'%s': cannot read trace file", path);
		goto done;
	}
	/* Days in order: JSON_PRESERVE_ORDER is not guaranteed for objects. */
	{
		size_t nd = json_object_size(days), i = 0;
		const char **keys = nd ? ward_calloc(nd, sizeof(*keys)) : NULL;
		if (nd && !keys) {
			rc = ward_error_set(WARD_ENOMEM, "stats: out of memory");
			goto done;
		}
		json_object_foreach(days, key, val) keys[i++] = key;
		qsort(keys, nd, sizeof(*keys), str_ptr_cmp);
		for (i = 0; i < nd; i++)
			json_array_append(reads, json_object_get(days, keys[i]));
		ward_free(keys);
	}
	*status = "read";
done:
	json_decref(days);
	free(line); /* getline allocates with malloc */
	fclose(fp);
	return rc;
}

/* YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, digits where digits belong: the value
 * is compared as a string with the audit log's RFC 3339 times. */
static int since_valid(const char *since)
{
	static const char day[] = "dddd-dd-dd", full[] = "dddd-dd-ddTdd:dd:ddZ";
	size_t n = strlen(since);
	const char *shape = n == sizeof(day) - 1 ? day : n == sizeof(full) - 1 ? full : NULL;

	if (!shape)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (shape[i] == 'd' ? (since[i] < '0' || since[i] > '9') : since[i] != shape[i])
			return 0;
	return 1;
}

int ward_store_stats(ward_store *s, const char *since, json_t **out)
{
	stats_rows rows;
	json_t *res = NULL, *arr = NULL, *names = NULL, *changes = NULL, *reads = NULL;
	const char *traces = "absent";
	char traces_note[600];
	int rc, in_tx = 0;

	*out = NULL;
	memset(&rows, 0, sizeof(rows));
	if (since && !since_valid(since))
		return ward_error_set(WARD_EINVAL, "--since '%s': expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ", since);
	if (!(rows.index = json_object()) || !(arr = json_array()) || !(names = json_object()) ||
	    !(changes = json_array()) || !(reads = json_array())) {
		rc = ward_error_set(WARD_ENOMEM, "stats: out of memory");
		goto done;
	}
	/* One snapshot for every figure. */
	if ((rc = ward_db_exec(s, "BEGIN")) < 0)
		goto done;
	in_tx = 1;
	if ((rc = each_row(s, STATS_DECISIONS_SQL, since, &rows, take_decisions)) < 0 ||
	    (rc = each_row(s, STATS_CHUNKS_SQL, since, &rows, take_chunks)) < 0 ||
	    (rc = each_row(s, STATS_FINDINGS_SQL, since, &rows, take_findings)) < 0 ||
	    (rc = source_names(s, names)) < 0 || (rc = ruleset_changes(s, since, changes)) < 0)
		goto done;
	if ((rc = rows_json(&rows, names, arr)) < 0)
		goto done;
	/* The traces are a convenience: an unreadable file is noted, not fatal. */
	if ((rc = read_traces(s, since, reads, &traces)) < 0) {
		if (rc != WARD_EIO)
			goto done;
		snprintf(traces_note, sizeof(traces_note), "skipped: %s", ward_error_last()->message);
		traces = traces_note;
		json_array_clear(reads);
		rc = 0;
	}
	if (!(res = json_pack("{s:s?, s:O, s:O, s:s, s:O}", "since", since, "rows", arr, "ruleset_changes", changes,
			      "traces", traces, "reads", reads))) {
		rc = ward_error_set(WARD_ENOMEM, "stats: out of memory");
		goto done;
	}
	*out = res;
done:
	if (in_tx && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	rows_dispose(&rows);
	json_decref(arr);
	json_decref(names);
	json_decref(changes);
	json_decref(reads);
	return rc;
}
