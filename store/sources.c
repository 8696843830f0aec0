/*
 * Source governance: requests, reviewer decisions, baseline import, and the
 * allowlist lookup ingest uses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/audit.h"
#include "ragward/buf.h"
#include "ragward/sources.h"
#include "store/db_internal.h"
#include "core/limits.h"
#include "core/yaml.h"
#include "core/banned.h"

static const char *const trust_names[] = {"low", "standard", "high"};

const char *ward_trust_name(ward_trust t)
{
	return (t >= WARD_TRUST_LOW && t <= WARD_TRUST_HIGH) ? trust_names[t] : "?";
}

int ward_trust_parse(ward_trust *out, const char *s)
{
	for (int i = 0; i < 3; i++)
		if (strcmp(s, trust_names[i]) == 0) {
			*out = (ward_trust)i;
			return 0;
		}
	return ward_error_set(WARD_EINVAL, "unknown trust tier '%s' (use high, standard or low)", s);
}

/* ---- validation ----------------------------------------------------------- */

static int check_text(const char *what, const char *s, size_t max, int allow_newlines)
{
	json_t *probe;

	if (strlen(s) > max)
		return ward_error_set(WARD_ETOOBIG, "%s is longer than %zu bytes", what, max);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p < 0x20 && !(allow_newlines && (*p == '\n' || *p == '\t'))) || *p == 0x7f)
			return ward_error_set(WARD_EINVAL, "%s contains a control character (0x%02x)", what, *p);
	/* jansson refuses invalid UTF-8, which is exactly the check we need. */
	if (!(probe = json_string(s)))
		return ward_error_set(WARD_EINVAL, "%s is not valid UTF-8", what);
	json_decref(probe);
	return 0;
}

static int check_actor(const ward_actor *who)
{
	if (!who || !who->name || !*who->name)
		return ward_error_set(WARD_EINVAL, "the actor (--by) must not be empty");
	return check_text("actor (--by)", who->name, WARD_MAX_ACTOR_LEN, 0);
}

static int check_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > WARD_MAX_NAME_LEN)
		return ward_error_set(WARD_EINVAL, "source name must be 1 to %d characters", WARD_MAX_NAME_LEN);
	for (const char *p = name; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_' || c == '.'))
			return ward_error_set(WARD_EINVAL,
					      "source name '%s' may contain only letters, digits, '-', '_' and '.'", name);
	}
	return 0;
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* Adds one label to `arr` after checking it; duplicates are dropped. */
static int label_add(json_t *arr, const char *label, size_t len)
{
	size_t i;
	json_t *v;

	if (len == 0)
		return ward_error_set(WARD_EINVAL, "empty label");
	if (len > WARD_MAX_LABEL_LEN)
		return ward_error_set(WARD_EINVAL, "label longer than %d characters", WARD_MAX_LABEL_LEN);
	for (i = 0; i < len; i++) {
		char c = label[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
			return ward_error_set(WARD_EINVAL,
					      "label '%.*s' may contain only lowercase letters, digits, '-', '_' and '.'",
					      (int)len, label);
	}
	json_array_foreach(arr, i, v) if (strlen(json_string_value(v)) == len &&
					  memcmp(json_string_value(v), label, len) == 0) return 0;
	if (json_array_size(arr) >= WARD_MAX_LABELS)
		return ward_error_set(WARD_EINVAL, "more than %d labels", WARD_MAX_LABELS);
	if (json_array_append_new(arr, json_stringn(label, len)) != 0)
		return ward_error_set(WARD_ENOMEM, "out of memory");
	return 0;
}

/* Sorted JSON text of the labels, so equal sets compare equal as strings. */
static int labels_finish(json_t *arr, char **out)
{
	json_t **items = NULL, *sorted = NULL;
	size_t n = json_array_size(arr);
	int rc = 0;

	*out = NULL;
	if (n && !(items = ward_calloc(n, sizeof(*items))))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		items[i] = json_array_get(arr, i);
	if (n)
		qsort(items, n, sizeof(*items), label_cmp);
	if (!(sorted = json_array())) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < n; i++)
		if (json_array_append(sorted, items[i]) != 0) {
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
	if (!(*out = json_dumps(sorted, JSON_COMPACT)))
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
done:
	json_decref(sorted);
	ward_free(items);
	return rc;
}

static int labels_from_csv(const char *csv, char **out)
{
	json_t *arr = json_array();
	const char *p = csv, *comma;
	int rc = 0;

	if (!arr)
		return ward_error_set(WARD_ENOMEM, "out of memory");
	while (csv && *p) {
		comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if ((rc = label_add(arr, p, len)) < 0)
			goto done;
		if (!comma)
			break;
		p = comma + 1;
		if (!*p) {
			rc = ward_error_set(WARD_EINVAL, "empty label");
			goto done;
		}
	}
	rc = labels_finish(arr, out);
done:
	json_decref(arr);
	return rc;
}

/*
 * Seeds: extra URLs of an http(s) source that `ingest --all` fetches. Each is
 * canonicalized and must be covered by the source's own pattern, so a seed
 * can never widen what the reviewer approved. Returns a JSON array text.
 */
static int seeds_json(char **out, const char *const *seeds, size_t n, const char *pattern, ward_source_kind kind)
{
	json_t *arr = json_array();
	char *canon = NULL;
	int rc = 0;

	*out = NULL;
	if (!arr)
		return ward_error_set(WARD_ENOMEM, "out of memory");
	if (n && kind == WARD_KIND_FILE) {
		rc = ward_error_set(WARD_EINVAL, "seeds are for http(s) sources; a file source ingests its whole directory");
		goto done;
	}
	if (n > WARD_MAX_SEEDS) {
		rc = ward_error_set(WARD_ETOOBIG, "more than %d seeds", WARD_MAX_SEEDS);
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		if ((rc = ward_url_canonicalize(&canon, seeds[i])) < 0)
			goto done;
		if (ward_pattern_covers(pattern, kind, canon) != 1) {
			rc = ward_error_set(WARD_EINVAL, "seed '%s' is not covered by the source pattern '%s'", canon,
					    pattern);
			goto done;
		}
		if (json_array_append_new(arr, json_string(canon)) != 0) {
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
		ward_free(canon);
		canon = NULL;
	}
	if (!(*out = json_dumps(arr, JSON_COMPACT)))
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
done:
	ward_free(canon);
	json_decref(arr);
	return rc;
}

/* ---- rows ------------------------------------------------------------------ */

#define SOURCE_COLUMNS                                                                                              \
	"id, name, kind, pattern, trust, labels, allow_private, state, origin, requested_by, requested_uid,"        \
	" requested_at, reason, decided_by, decided_uid, decided_at, note, seeds"

void ward_source_dispose(ward_source *src)
{
	if (!src)
		return;
	ward_free(src->name);
	ward_free(src->pattern);
	ward_free(src->labels);
	ward_free(src->state);
	ward_free(src->origin);
	ward_free(src->requested_by);
	ward_free(src->requested_at);
	ward_free(src->reason);
	ward_free(src->decided_by);
	ward_free(src->decided_at);
	ward_free(src->note);
	ward_free(src->seeds);
	memset(src, 0, sizeof(*src));
}

void ward_sources_free(ward_source *list, size_t n)
{
	if (!list)
		return;
	for (size_t i = 0; i < n; i++)
		ward_source_dispose(&list[i]);
	ward_free(list);
}

static int source_from_row(sqlite3_stmt *st, ward_source *src)
{
	const char *kind = (const char *)sqlite3_column_text(st, 2);
	const char *trust = (const char *)sqlite3_column_text(st, 4);
	int rc;

	memset(src, 0, sizeof(*src));
	src->id = sqlite3_column_int64(st, 0);
	if (!kind || ward_kind_parse(&src->kind, kind) < 0 || !trust || ward_trust_parse(&src->trust, trust) < 0)
		return ward_error_set(WARD_EDB, "source %lld: malformed row", (long long)src->id);
	src->allow_private = sqlite3_column_int(st, 6);
	src->requested_uid = (long)sqlite3_column_int64(st, 10);
	src->decided_uid = (long)sqlite3_column_int64(st, 14);
	if ((rc = ward_db_col_dup(&src->name, st, 1)) < 0 || (rc = ward_db_col_dup(&src->pattern, st, 3)) < 0 ||
	    (rc = ward_db_col_dup(&src->labels, st, 5)) < 0 || (rc = ward_db_col_dup(&src->state, st, 7)) < 0 ||
	    (rc = ward_db_col_dup(&src->origin, st, 8)) < 0 || (rc = ward_db_col_dup(&src->requested_by, st, 9)) < 0 ||
	    (rc = ward_db_col_dup(&src->requested_at, st, 11)) < 0 || (rc = ward_db_col_dup(&src->reason, st, 12)) < 0 ||
	    (rc = ward_db_col_dup(&src->decided_by, st, 13)) < 0 || (rc = ward_db_col_dup(&src->decided_at, st, 15)) < 0 ||
	    (rc = ward_db_col_dup(&src->note, st, 16)) < 0 || (rc = ward_db_col_dup(&src->seeds, st, 17)) < 0) {
		ward_source_dispose(src);
		return rc;
	}
	return 0;
}

int ward_sources_get(ward_store *s, int64_t id, ward_source *out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = ward_db_prepare(s, &st, "SELECT " SOURCE_COLUMNS " FROM sources WHERE id = ?1")) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		rc = source_from_row(st, out);
	else if (rc == SQLITE_DONE)
		rc = ward_error_set(WARD_ENOTFOUND, "source %lld does not exist", (long long)id);
	else
		rc = ward_db_fail(s, "reading source");
	sqlite3_finalize(st);
	return rc;
}

static int sources_query(ward_store *s, sqlite3_stmt *st, ward_source **out, size_t *n)
{
	ward_source *v = NULL, *grown;
	size_t count = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			if (!(grown = ward_realloc(v, cap * sizeof(*v)))) {
				rc = ward_error_set(WARD_ENOMEM, "listing sources: out of memory");
				goto done;
			}
			v = grown;
		}
		if ((rc = source_from_row(st, &v[count])) < 0)
			goto done;
		count++;
	}
	rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "listing sources");
done:
	if (rc < 0) {
		ward_sources_free(v, count);
		return rc;
	}
	*out = v;
	*n = count;
	return 0;
}

int ward_sources_list(ward_store *s, const char *state, ward_source **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*out = NULL;
	*n = 0;
	if (state && strcmp(state, "requested") && strcmp(state, "approved") && strcmp(state, "rejected") &&
	    strcmp(state, "revoked"))
		return ward_error_set(WARD_EINVAL, "unknown state '%s' (use requested, approved, rejected or revoked)",
				      state);
	if ((rc = ward_db_prepare(s, &st,
				  "SELECT " SOURCE_COLUMNS " FROM sources WHERE ?1 IS NULL OR state = ?1 ORDER BY id")) < 0)
		return rc;
	ward_db_bind_text(st, 1, state);
	rc = sources_query(s, st, out, n);
	sqlite3_finalize(st);
	return rc;
}

/* ---- request ------------------------------------------------------------- */

static int infer_kind(const ward_source_request *req, ward_source_kind *kind)
{
	if (req->kind_given) {
		*kind = req->kind;
		return 0;
	}
	if (req->pattern[0] == '/') {
		*kind = WARD_KIND_FILE;
		return 0;
	}
	if (strncmp(req->pattern, "http://", 7) == 0)
		return ward_error_set(WARD_EINVAL, "pattern '%s' is plaintext http: pass --kind http to allow it",
				      req->pattern);
	*kind = WARD_KIND_HTTPS;
	return 0;
}

static int insert_source(ward_store *s, const ward_actor *who, const char *name, ward_source_kind kind,
			 const char *pattern, ward_trust trust, const char *labels, int allow_private,
			 const char *reason, int imported, const char *note, const char *seeds, int64_t *id_out)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	int rc;

	ward_now_rfc3339(now);
	if ((rc = ward_db_prepare(s, &st,
				  "INSERT INTO sources(name, kind, pattern, trust, labels, allow_private, state, origin,"
				  " requested_by, requested_uid, requested_at, reason, decided_by, decided_uid, decided_at,"
				  " note, seeds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
				  " ?17)")) <
	    0)
		return rc;
	ward_db_bind_text(st, 1, name);
	ward_db_bind_text(st, 2, ward_kind_name(kind));
	ward_db_bind_text(st, 3, pattern);
	ward_db_bind_text(st, 4, ward_trust_name(trust));
	ward_db_bind_text(st, 5, labels);
	sqlite3_bind_int(st, 6, allow_private ? 1 : 0);
	ward_db_bind_text(st, 7, imported ? "approved" : "requested");
	ward_db_bind_text(st, 8, imported ? "import" : "cli");
	ward_db_bind_text(st, 9, who->name);
	sqlite3_bind_int64(st, 10, who->uid);
	ward_db_bind_text(st, 11, now);
	ward_db_bind_text(st, 12, reason);
	ward_db_bind_text(st, 17, seeds ? seeds : "[]");
	if (imported) {
		ward_db_bind_text(st, 13, who->name);
		sqlite3_bind_int64(st, 14, who->uid);
		ward_db_bind_text(st, 15, now);
		ward_db_bind_text(st, 16, note);
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_CONSTRAINT)
		rc = ward_error_set(WARD_EEXISTS, "a source named '%s' already exists", name);
	else if (rc != SQLITE_DONE)
		rc = ward_db_fail(s, "storing source");
	else {
		rc = 0;
		*id_out = sqlite3_last_insert_rowid(s->db);
	}
	sqlite3_finalize(st);
	return rc;
}

static int audit_source(ward_store *s, const ward_actor *who, const char *action, int64_t id, json_t *details)
{
	char subject[48];
	int rc;

	if (!details)
		return ward_error_set(WARD_ENOMEM, "out of memory");
	snprintf(subject, sizeof(subject), "source:%lld", (long long)id);
	rc = ward_audit_append(s, who, action, subject, details);
	json_decref(details);
	return rc;
}

int ward_sources_request(ward_store *s, const ward_actor *who, const ward_source_request *req, int64_t *id_out)
{
	ward_source_kind kind = WARD_KIND_HTTPS;
	char *pattern = NULL, *labels = NULL, *seeds = NULL;
	json_t *labels_json = NULL, *seeds_arr = NULL;
	int rc;

	*id_out = 0;
	if ((rc = check_actor(who)) < 0 || (rc = check_name(req->name)) < 0)
		return rc;
	if (req->reason && (rc = check_text("reason", req->reason, WARD_MAX_REASON_LEN, 1)) < 0)
		return rc;
	if ((rc = infer_kind(req, &kind)) < 0 || (rc = ward_pattern_canonicalize(&pattern, req->pattern, kind)) < 0)
		goto done;
	if ((rc = labels_from_csv(req->labels, &labels)) < 0)
		goto done;
	if ((rc = seeds_json(&seeds, req->seeds, req->nseeds, pattern, kind)) < 0)
		goto done;
	if (!(labels_json = json_loads(labels, 0, NULL)) || !(seeds_arr = json_loads(seeds, 0, NULL))) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	if ((rc = ward_store_begin(s)) < 0)
		goto done;
	if ((rc = insert_source(s, who, req->name, kind, pattern, req->trust, labels, req->allow_private, req->reason,
				0, NULL, seeds, id_out)) < 0)
		goto done;
	if ((rc = audit_source(s, who, "source.request", *id_out,
			       json_pack("{s:s, s:s, s:s, s:s, s:O, s:b, s:s?, s:O}", "name", req->name, "kind",
					 ward_kind_name(kind), "pattern", pattern, "trust", ward_trust_name(req->trust),
					 "labels", labels_json, "allow_private", req->allow_private, "reason",
					 req->reason, "seeds", seeds_arr))) < 0)
		goto done;
	rc = ward_store_commit(s);
done:
	if (rc < 0) {
		ward_store_rollback(s);
		*id_out = 0;
	}
	json_decref(labels_json);
	json_decref(seeds_arr);
	ward_free(pattern);
	ward_free(labels);
	ward_free(seeds);
	return rc;
}

/* ---- decisions ------------------------------------------------------------- */

static const char *decision_name(ward_decision d)
{
	return d == WARD_DECIDE_APPROVE ? "approve" : d == WARD_DECIDE_REJECT ? "reject" : "revoke";
}

/*
 * The state machine. Returns the new state, or NULL when `d` is illegal from
 * `state`: requested -> approved | rejected; approved -> revoked;
 * revoked -> approved (a fresh approval; revocation is otherwise final).
 */
static const char *transition(const char *state, ward_decision d)
{
	switch (d) {
	case WARD_DECIDE_APPROVE:
		return (!strcmp(state, "requested") || !strcmp(state, "revoked")) ? "approved" : NULL;
	case WARD_DECIDE_REJECT:
		return !strcmp(state, "requested") ? "rejected" : NULL;
	case WARD_DECIDE_REVOKE:
		return !strcmp(state, "approved") ? "revoked" : NULL;
	}
	return NULL;
}

int ward_sources_decide(ward_store *s, const ward_actor *who, int64_t id, ward_decision d, const char *note)
{
	ward_source src;
	sqlite3_stmt *st = NULL;
	const char *next;
	char now[32];
	int rc;

	memset(&src, 0, sizeof(src));
	if ((rc = check_actor(who)) < 0)
		return rc;
	if (note && (rc = check_text("note", note, WARD_MAX_REASON_LEN, 1)) < 0)
		return rc;
	/* Read the state inside the write transaction so two reviewers acting
	 * at once are serialised (BEGIN IMMEDIATE) and both see the truth. */
	if ((rc = ward_store_begin(s)) < 0)
		return rc;
	if ((rc = ward_sources_get(s, id, &src)) < 0)
		goto done;
	if (!(next = transition(src.state, d))) {
		rc = ward_error_set(WARD_ESTATE, "source %lld: cannot %s: state is '%s'", (long long)id,
				    decision_name(d), src.state);
		goto done;
	}
	if (d == WARD_DECIDE_APPROVE && s->config.two_person_rule && strcmp(src.requested_by, who->name) == 0) {
		rc = ward_error_set(WARD_EPOLICY,
				    "source %lld: '%s' requested it and cannot also approve it (two-person rule);"
				    " another reviewer must approve with --by",
				    (long long)id, who->name);
		goto done;
	}
	ward_now_rfc3339(now);
	if ((rc = ward_db_prepare(s, &st,
				  "UPDATE sources SET state = ?1, decided_by = ?2, decided_uid = ?3, decided_at = ?4,"
				  " note = ?5 WHERE id = ?6 AND state = ?7")) < 0)
		goto done;
	ward_db_bind_text(st, 1, next);
	ward_db_bind_text(st, 2, who->name);
	sqlite3_bind_int64(st, 3, who->uid);
	ward_db_bind_text(st, 4, now);
	ward_db_bind_text(st, 5, note);
	sqlite3_bind_int64(st, 6, id);
	ward_db_bind_text(st, 7, src.state);
	if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(s->db) != 1) {
		rc = ward_db_fail(s, "updating source");
		goto done;
	}
	{
		char action[32];
		snprintf(action, sizeof(action), "source.%s", decision_name(d));
		if ((rc = audit_source(s, who, action, id,
				       json_pack("{s:s, s:s, s:s, s:s, s:s?, s:b}", "name", src.name, "pattern",
						 src.pattern, "from", src.state, "to", next, "note", note,
						 "two_person_rule", s->config.two_person_rule))) < 0)
			goto done;
	}
	rc = ward_store_commit(s);
done:
	if (rc < 0)
		ward_store_rollback(s);
	sqlite3_finalize(st);
	ward_source_dispose(&src);
	return rc;
}

/* ---- allowlist lookup ------------------------------------------------------- */

int ward_sources_match(ward_store *s, const char *target, ward_source *out)
{
	ward_source *list = NULL;
	size_t n = 0, best = (size_t)-1, best_len = 0;
	char *canon = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (ward_is_url(target))
		rc = ward_url_canonicalize(&canon, target);
	else if (target[0] == '/')
		rc = ward_path_canonicalize(&canon, target);
	else
		rc = ward_error_set(WARD_EINVAL, "'%s' is neither an http(s) URL nor an absolute path", target);
	if (rc < 0)
		return rc;
	if ((rc = ward_sources_list(s, "approved", &list, &n)) < 0)
		goto done;
	for (size_t i = 0; i < n; i++) {
		int covered = ward_pattern_covers(list[i].pattern, list[i].kind, canon);
		size_t len = strlen(list[i].pattern);
		if (covered == 1 && (best == (size_t)-1 || len > best_len)) {
			best = i;
			best_len = len;
		}
	}
	if (best == (size_t)-1) {
		rc = ward_error_set(WARD_EPOLICY,
				    "no approved source covers '%s': request one with 'ragward sources request NAME"
				    " PATTERN' and have a reviewer approve it",
				    canon);
		goto done;
	}
	*out = list[best];
	memset(&list[best], 0, sizeof(list[best]));
done:
	ward_sources_free(list, n);
	ward_free(canon);
	return rc;
}

/* ---- baseline import ------------------------------------------------------------ */

typedef struct {
	const char *name;
	ward_source_kind kind;
	char *pattern;
	ward_trust trust;
	char *labels;
	int allow_private;
	const char *reason;
	char *seeds;
} import_entry;

static void import_entries_free(import_entry *e, size_t n)
{
	if (!e)
		return;
	for (size_t i = 0; i < n; i++) {
		ward_free(e[i].pattern);
		ward_free(e[i].labels);
		ward_free(e[i].seeds);
	}
	ward_free(e);
}

/* Validates one entry of sources.yaml; unknown keys are errors. */
static int import_parse_entry(json_t *obj, size_t idx, import_entry *e)
{
	const char *key, *kind_s = NULL, *pattern = NULL, *trust_s = NULL;
	ward_source_request req;
	json_t *v, *labels = NULL, *seeds = NULL;
	const char *seed_list[WARD_MAX_SEEDS];
	size_t nseeds = 0;
	int rc = 0;

	memset(&req, 0, sizeof(req));
	req.trust = WARD_TRUST_STANDARD;
	if (!json_is_object(obj))
		return ward_error_set(WARD_EINVAL, "sources[%zu]: expected a mapping", idx);
	json_object_foreach(obj, key, v) {
		if (!strcmp(key, "name") && json_is_string(v))
			e->name = json_string_value(v);
		else if (!strcmp(key, "pattern") && json_is_string(v))
			pattern = json_string_value(v);
		else if (!strcmp(key, "kind") && json_is_string(v))
			kind_s = json_string_value(v);
		else if (!strcmp(key, "trust") && json_is_string(v))
			trust_s = json_string_value(v);
		else if (!strcmp(key, "labels") && json_is_array(v))
			labels = v;
		else if (!strcmp(key, "allow_private") && json_is_boolean(v))
			e->allow_private = json_is_true(v);
		else if (!strcmp(key, "reason") && json_is_string(v))
			e->reason = json_string_value(v);
		else if (!strcmp(key, "seeds") && json_is_array(v))
			seeds = v;
		else
			return ward_error_set(WARD_EINVAL, "sources[%zu]: unknown key '%s' or wrong type", idx, key);
	}
	if (!e->name || !pattern)
		return ward_error_set(WARD_EINVAL, "sources[%zu]: 'name' and 'pattern' are required", idx);
	if ((rc = check_name(e->name)) < 0)
		return ward_error_wrap("sources[%zu]", idx);
	if (e->reason && (rc = check_text("reason", e->reason, WARD_MAX_REASON_LEN, 1)) < 0)
		return ward_error_wrap("sources[%zu]", idx);
	req.pattern = pattern;
	if (kind_s) {
		if ((rc = ward_kind_parse(&req.kind, kind_s)) < 0)
			return ward_error_wrap("sources[%zu]", idx);
		req.kind_given = 1;
	}
	if (trust_s && (rc = ward_trust_parse(&e->trust, trust_s)) < 0)
		return ward_error_wrap("sources[%zu]", idx);
	if (!trust_s)
		e->trust = WARD_TRUST_STANDARD;
	if ((rc = infer_kind(&req, &e->kind)) < 0 || (rc = ward_pattern_canonicalize(&e->pattern, pattern, e->kind)) < 0)
		return ward_error_wrap("sources[%zu] '%s'", idx, e->name);
	{
		json_t *arr = json_array();
		size_t i;
		if (!arr)
			return ward_error_set(WARD_ENOMEM, "out of memory");
		json_array_foreach(labels, i, v)
		{
			if (!json_is_string(v)) {
				json_decref(arr);
				return ward_error_set(WARD_EINVAL, "sources[%zu]: labels must be strings", idx);
			}
			if ((rc = label_add(arr, json_string_value(v), strlen(json_string_value(v)))) < 0) {
				json_decref(arr);
				return ward_error_wrap("sources[%zu]", idx);
			}
		}
		rc = labels_finish(arr, &e->labels);
		json_decref(arr);
		if (rc < 0)
			return rc;
	}
	{
		size_t i;
		if (json_array_size(seeds) > WARD_MAX_SEEDS)
			return ward_error_set(WARD_ETOOBIG, "sources[%zu]: more than %d seeds", idx, WARD_MAX_SEEDS);
		json_array_foreach(seeds, i, v)
		{
			if (!json_is_string(v))
				return ward_error_set(WARD_EINVAL, "sources[%zu]: seeds must be URLs", idx);
			seed_list[nseeds++] = json_string_value(v);
		}
		if ((rc = seeds_json(&e->seeds, seed_list, nseeds, e->pattern, e->kind)) < 0)
			return ward_error_wrap("sources[%zu] '%s'", idx, e->name);
	}
	return rc;
}

static int find_by_name(ward_store *s, const char *name, ward_source *out, int *found)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*found = 0;
	if ((rc = ward_db_prepare(s, &st, "SELECT " SOURCE_COLUMNS " FROM sources WHERE name = ?1")) < 0)
		return rc;
	ward_db_bind_text(st, 1, name);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rc = source_from_row(st, out);
		*found = rc == 0;
	} else {
		rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "reading source");
	}
	sqlite3_finalize(st);
	return rc;
}

int ward_sources_import(ward_store *s, const ward_actor *who, const char *path, ward_import_result *res)
{
	json_t *doc = NULL, *list, *v, *added = NULL;
	import_entry *entries = NULL;
	size_t n = 0, i;
	const char *key;
	char note[160];
	int rc;

	memset(res, 0, sizeof(*res));
	if ((rc = check_actor(who)) < 0)
		return rc;
	if ((rc = ward_yaml_load_file(&doc, path, WARD_MAX_SOURCES_FILE, res->sha256_hex)) < 0)
		return rc;
	if (!json_is_object(doc)) {
		rc = ward_error_set(WARD_EINVAL, "'%s': expected a mapping with 'version: 1' and 'sources:'", path);
		goto done;
	}
	json_object_foreach(doc, key, v) if (strcmp(key, "version") && strcmp(key, "sources"))
	{
		rc = ward_error_set(WARD_EINVAL, "'%s': unknown key '%s'", path, key);
		goto done;
	}
	if (json_integer_value(json_object_get(doc, "version")) != 1 ||
	    !json_is_integer(json_object_get(doc, "version"))) {
		rc = ward_error_set(WARD_EINVAL, "'%s': 'version: 1' is required", path);
		goto done;
	}
	list = json_object_get(doc, "sources");
	if (!json_is_array(list)) {
		rc = ward_error_set(WARD_EINVAL, "'%s': 'sources' must be a list", path);
		goto done;
	}
	n = json_array_size(list);
	if (n > WARD_MAX_SOURCES_PER_FILE) {
		rc = ward_error_set(WARD_ETOOBIG, "'%s': more than %d sources", path, WARD_MAX_SOURCES_PER_FILE);
		goto done;
	}
	if (n && !(entries = ward_calloc(n, sizeof(*entries)))) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	json_array_foreach(list, i, v) if ((rc = import_parse_entry(v, i, &entries[i])) < 0)
	{
		ward_error_wrap("'%s'", path);
		goto done;
	}
	for (i = 0; i < n; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(entries[i].name, entries[j].name)) {
				rc = ward_error_set(WARD_EINVAL, "'%s': source '%s' is listed twice", path, entries[i].name);
				goto done;
			}
	if (!(added = json_array())) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	snprintf(note, sizeof(note), "imported from baseline sha256:%s", res->sha256_hex);

	if ((rc = ward_store_begin(s)) < 0)
		goto done;
	for (i = 0; i < n; i++) {
		import_entry *e = &entries[i];
		ward_source cur;
		int found = 0;
		int64_t id;

		if ((rc = find_by_name(s, e->name, &cur, &found)) < 0)
			goto done;
		if (found) {
			int same = cur.kind == e->kind && !strcmp(cur.pattern, e->pattern) && cur.trust == e->trust &&
				   !strcmp(cur.labels, e->labels) && cur.allow_private == e->allow_private &&
				   !strcmp(cur.seeds ? cur.seeds : "[]", e->seeds);
			ward_source_dispose(&cur);
			if (!same) {
				rc = ward_error_set(WARD_EEXISTS,
						    "'%s': source '%s' already exists with a different definition; change"
						    " it through review, not by import (nothing imported)",
						    path, e->name);
				goto done;
			}
			res->unchanged++;
			continue;
		}
		if ((rc = insert_source(s, who, e->name, e->kind, e->pattern, e->trust, e->labels, e->allow_private,
					e->reason, 1, note, e->seeds, &id)) < 0)
			goto done;
		if ((rc = audit_source(s, who, "source.import", id,
				       json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:s}", "name", e->name, "kind",
						 ward_kind_name(e->kind), "pattern", e->pattern, "trust",
						 ward_trust_name(e->trust), "labels", e->labels, "allow_private",
						 e->allow_private, "seeds", e->seeds, "file_sha256", res->sha256_hex))) < 0)
			goto done;
		if (json_array_append_new(added, json_string(e->name)) != 0) {
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
		res->added++;
	}
	if (res->added) {
		json_t *d = json_pack("{s:s, s:s, s:O, s:I}", "file", path, "sha256", res->sha256_hex, "added", added,
				      "unchanged", (json_int_t)res->unchanged);
		if (!d) {
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
		rc = ward_audit_append(s, who, "sources.import", res->sha256_hex, d);
		json_decref(d);
		if (rc < 0)
			goto done;
	}
	rc = ward_store_commit(s);
done:
	if (rc < 0) {
		ward_store_rollback(s);
		res->added = res->unchanged = 0;
	}
	json_decref(added);
	json_decref(doc);
	import_entries_free(entries, n);
	return rc;
}
