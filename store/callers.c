/*
 * Callers of the retrieval server and their bearer tokens. Only
 * SHA-256(token) is stored; a token is compared by hashing what was presented
 * and comparing the two 32-byte hashes in constant time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/audit.h"
#include "ragward/callers.h"
#include "ragward/crypto.h"
#include "store/db_internal.h"
#include "core/limits.h"
#include "core/banned.h"

#define CALLER_COLUMNS "id, name, labels, state, created_at, revoked_at"

void ward_caller_dispose(ward_caller *c)
{
	if (!c)
		return;
	ward_free(c->name);
	ward_free(c->labels);
	ward_free(c->state);
	ward_free(c->created_at);
	ward_free(c->revoked_at);
	memset(c, 0, sizeof(*c));
}

void ward_callers_free(ward_caller *list, size_t n)
{
	if (!list)
		return;
	for (size_t i = 0; i < n; i++)
		ward_caller_dispose(&list[i]);
	ward_free(list);
}

/* ---- validation ------------------------------------------------------------ */

static int check_actor(const ward_actor *who)
{
	if (!who || !who->name || !*who->name)
		return ward_error_set(WARD_EINVAL, "the actor (--by) must not be empty");
	if (strlen(who->name) > WARD_MAX_ACTOR_LEN)
		return ward_error_set(WARD_ETOOBIG, "actor (--by) is longer than %d bytes", WARD_MAX_ACTOR_LEN);
	for (const unsigned char *p = (const unsigned char *)who->name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return ward_error_set(WARD_EINVAL, "actor (--by) contains a control character (0x%02x)", *p);
	return 0;
}

static int check_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > WARD_MAX_NAME_LEN)
		return ward_error_set(WARD_EINVAL, "caller name must be 1 to %d characters", WARD_MAX_NAME_LEN);
	if (name[0] >= '0' && name[0] <= '9')
		return ward_error_set(WARD_EINVAL, "caller name '%s' must not start with a digit (ids do)", name);
	for (const char *p = name; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_' || c == '.'))
			return ward_error_set(WARD_EINVAL,
			                      "caller name '%s' may contain only letters, digits, '-', '_' and '.'",
			                      name);
	}
	return 0;
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The same label rules as sources (store/sources.c), sorted and deduplicated
 * into a JSON array text. */
static int labels_from_csv(const char *csv, char **out)
{
	char *copy = NULL;
	const char *items[WARD_MAX_LABELS];
	size_t n = 0;
	json_t *arr = NULL;
	int rc = 0;

	*out = NULL;
	if (csv && *csv) {
		char *p, *comma;
		if (!(copy = ward_strdup(csv)))
			return ward_error_set(WARD_ENOMEM, "out of memory");
		for (p = copy;; p = comma + 1) {
			size_t len;
			int dup = 0;
			if ((comma = strchr(p, ',')))
				*comma = '\0';
			len = strlen(p);
			if (len == 0) {
				rc = ward_error_set(WARD_EINVAL, "empty label");
				goto done;
			}
			if (len > WARD_MAX_LABEL_LEN) {
				rc = ward_error_set(WARD_EINVAL, "label longer than %d characters", WARD_MAX_LABEL_LEN);
				goto done;
			}
			for (const char *q = p; *q; q++)
				if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '-' || *q == '_' ||
				      *q == '.')) {
					rc = ward_error_set(
					        WARD_EINVAL,
					        "label '%s' may contain only lowercase letters, digits, '-', '_'"
					        " and '.'",
					        p);
					goto done;
				}
			for (size_t i = 0; i < n; i++)
				dup |= strcmp(items[i], p) == 0;
			if (!dup) {
				if (n == WARD_MAX_LABELS) {
					rc = ward_error_set(WARD_EINVAL, "more than %d labels", WARD_MAX_LABELS);
					goto done;
				}
				items[n++] = p;
			}
			if (!comma)
				break;
		}
		qsort(items, n, sizeof(items[0]), label_cmp);
	}
	if (!(arr = json_array())) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(arr, json_string(items[i])) != 0) {
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
	if (!(*out = json_dumps(arr, JSON_COMPACT)))
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
done:
	json_decref(arr);
	ward_free(copy);
	return rc;
}

/* ---- rows ------------------------------------------------------------------ */

static int caller_from_row(sqlite3_stmt *st, ward_caller *c)
{
	int rc;

	memset(c, 0, sizeof(*c));
	c->id = sqlite3_column_int64(st, 0);
	if ((rc = ward_db_col_dup(&c->name, st, 1)) < 0 || (rc = ward_db_col_dup(&c->labels, st, 2)) < 0 ||
	    (rc = ward_db_col_dup(&c->state, st, 3)) < 0 || (rc = ward_db_col_dup(&c->created_at, st, 4)) < 0 ||
	    (rc = ward_db_col_dup(&c->revoked_at, st, 5)) < 0) {
		ward_caller_dispose(c);
		return rc;
	}
	if (!c->name || !c->labels || !c->state) {
		ward_caller_dispose(c);
		return ward_error_set(WARD_EDB, "caller %lld: malformed row", (long long)sqlite3_column_int64(st, 0));
	}
	return 0;
}

int ward_callers_list(ward_store *s, ward_caller **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	ward_caller *v = NULL, *grown;
	size_t count = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = ward_db_prepare(s, &st, "SELECT " CALLER_COLUMNS " FROM callers ORDER BY id")) < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? cap * 2 : 8;
			if (!(grown = ward_realloc(v, cap * sizeof(*v)))) {
				rc = ward_error_set(WARD_ENOMEM, "listing callers: out of memory");
				goto done;
			}
			v = grown;
		}
		if ((rc = caller_from_row(st, &v[count])) < 0)
			goto done;
		count++;
	}
	rc = rc == SQLITE_DONE ? 0 : ward_db_fail(s, "listing callers");
done:
	sqlite3_finalize(st);
	if (rc < 0) {
		ward_callers_free(v, count);
		return rc;
	}
	*out = v;
	*n = count;
	return 0;
}

int ward_callers_get(ward_store *s, const char *id_or_name, ward_caller *out)
{
	sqlite3_stmt *st = NULL;
	long long id = 0;
	int by_id = 0, rc;

	memset(out, 0, sizeof(*out));
	if (!id_or_name || !*id_or_name)
		return ward_error_set(WARD_EINVAL, "a caller id or name is needed");
	if (id_or_name[0] >= '0' && id_or_name[0] <= '9') {
		char *end = NULL;
		id = strtoll(id_or_name, &end, 10);
		if (!end || *end || id <= 0)
			return ward_error_set(WARD_EINVAL, "'%s' is neither a caller id nor a caller name", id_or_name);
		by_id = 1;
	}
	if ((rc = ward_db_prepare(s, &st,
	                          by_id ? "SELECT " CALLER_COLUMNS " FROM callers WHERE id = ?1"
	                                : "SELECT " CALLER_COLUMNS " FROM callers WHERE name = ?1")) < 0)
		return rc;
	if (by_id)
		sqlite3_bind_int64(st, 1, id);
	else
		ward_db_bind_text(st, 1, id_or_name);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		rc = caller_from_row(st, out);
	else if (rc == SQLITE_DONE)
		rc = ward_error_set(WARD_ENOTFOUND, "caller '%s' does not exist", id_or_name);
	else
		rc = ward_db_fail(s, "reading caller");
	sqlite3_finalize(st);
	return rc;
}

/* ---- changes ----------------------------------------------------------------- */

static int audit_caller(ward_store *s, const ward_actor *who, const char *action, int64_t id, json_t *details)
{
	char subject[48];
	int rc;

	if (!details)
		return ward_error_set(WARD_ENOMEM, "out of memory");
	snprintf(subject, sizeof(subject), "caller:%lld", (long long)id);
	rc = ward_audit_append(s, who, action, subject, details);
	json_decref(details);
	return rc;
}

int ward_callers_add(ward_store *s, const ward_actor *who, const char *name, const char *labels_csv,
                     char token[WARD_CALLER_TOKEN_LEN + 1], ward_caller *out)
{
	uint8_t secret[32], hash[WARD_SHA256_LEN];
	char hash_hex[2 * WARD_SHA256_LEN + 1], now[32];
	char *labels = NULL;
	json_t *labels_json = NULL;
	sqlite3_stmt *st = NULL;
	int64_t id = 0;
	int rc;

	token[0] = '\0';
	if (out)
		memset(out, 0, sizeof(*out));
	if ((rc = check_actor(who)) < 0 || (rc = check_name(name)) < 0 ||
	    (rc = labels_from_csv(labels_csv, &labels)) < 0)
		return rc;
	if (!(labels_json = json_loads(labels, 0, NULL))) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	if ((rc = ward_random(secret, sizeof(secret))) < 0)
		goto done;
	memcpy(token, WARD_CALLER_TOKEN_PREFIX, 4);
	ward_hex_encode_to(token + 4, secret, sizeof(secret));
	if ((rc = ward_sha256(hash, token, WARD_CALLER_TOKEN_LEN)) < 0)
		goto done;
	ward_hex_encode_to(hash_hex, hash, sizeof(hash));
	ward_now_rfc3339(now);

	if ((rc = ward_store_begin(s)) < 0)
		goto done;
	if ((rc = ward_db_prepare(s, &st,
	                          "INSERT INTO callers(name, labels, token_sha256, state, created_at)"
	                          " VALUES (?1, ?2, ?3, 'active', ?4)")) < 0)
		goto done;
	ward_db_bind_text(st, 1, name);
	ward_db_bind_text(st, 2, labels);
	sqlite3_bind_blob(st, 3, hash, (int)sizeof(hash), SQLITE_STATIC);
	ward_db_bind_text(st, 4, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_CONSTRAINT)
		rc = ward_error_set(WARD_EEXISTS, "a caller named '%s' already exists", name);
	else if (rc != SQLITE_DONE)
		rc = ward_db_fail(s, "storing caller");
	else {
		rc = 0;
		id = sqlite3_last_insert_rowid(s->db);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc < 0)
		goto done;
	/* The hash, not the token: enough to tie a leaked token to its caller. */
	if ((rc = audit_caller(
	             s, who, "caller.add", id,
	             json_pack("{s:s, s:O, s:s}", "name", name, "labels", labels_json, "token_sha256", hash_hex))) < 0)
		goto done;
	if ((rc = ward_store_commit(s)) < 0)
		goto done;
	if (out && (rc = ward_callers_get(s, name, out)) < 0)
		goto done;
	rc = 0;
done:
	if (rc < 0) {
		ward_store_rollback(s);
		ward_wipe(token, WARD_CALLER_TOKEN_LEN + 1);
	}
	ward_wipe(secret, sizeof(secret));
	json_decref(labels_json);
	ward_free(labels);
	return rc;
}

int ward_callers_revoke(ward_store *s, const ward_actor *who, const char *id_or_name, ward_caller *out)
{
	ward_caller c;
	sqlite3_stmt *st = NULL;
	char now[32];
	int rc;

	memset(&c, 0, sizeof(c));
	if (out)
		memset(out, 0, sizeof(*out));
	if ((rc = check_actor(who)) < 0)
		return rc;
	if ((rc = ward_store_begin(s)) < 0)
		return rc;
	if ((rc = ward_callers_get(s, id_or_name, &c)) < 0)
		goto done;
	if (strcmp(c.state, "active") != 0) {
		rc = ward_error_set(WARD_ESTATE, "caller '%s': cannot revoke: state is '%s'", c.name, c.state);
		goto done;
	}
	ward_now_rfc3339(now);
	if ((rc = ward_db_prepare(
	             s, &st,
	             "UPDATE callers SET state = 'revoked', revoked_at = ?1 WHERE id = ?2 AND state = 'active'")) < 0)
		goto done;
	ward_db_bind_text(st, 1, now);
	sqlite3_bind_int64(st, 2, c.id);
	if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(s->db) != 1) {
		rc = ward_db_fail(s, "revoking caller");
		goto done;
	}
	if ((rc = audit_caller(s, who, "caller.revoke", c.id, json_pack("{s:s}", "name", c.name))) < 0)
		goto done;
	if ((rc = ward_store_commit(s)) < 0)
		goto done;
	if (out && (rc = ward_callers_get(s, c.name, out)) < 0)
		goto done;
	rc = 0;
done:
	if (rc < 0)
		ward_store_rollback(s);
	sqlite3_finalize(st);
	ward_caller_dispose(&c);
	return rc;
}

/* ---- authentication ---------------------------------------------------------- */

static int refuse(void)
{
	return ward_error_set(WARD_EPOLICY, "caller token not accepted");
}

int ward_callers_authenticate(ward_store *s, const char *token, size_t len, ward_caller *out)
{
	uint8_t hash[WARD_SHA256_LEN];
	sqlite3_stmt *st = NULL;
	const void *stored;
	int rc, equal, active;

	memset(out, 0, sizeof(*out));
	if (!token || len == 0 || len > WARD_CALLER_TOKEN_MAX_INPUT)
		return refuse();
	if ((rc = ward_sha256(hash, token, len)) < 0)
		return rc;
	/* The lookup is by the hash of what was presented, so its timing says
	 * nothing about any stored token's bytes; the final comparison is in
	 * constant time all the same. */
	if ((rc = ward_db_prepare(s, &st,
	                          "SELECT " CALLER_COLUMNS ", token_sha256 FROM callers WHERE token_sha256 = ?1")) < 0)
		return rc;
	sqlite3_bind_blob(st, 1, hash, (int)sizeof(hash), SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		rc = refuse();
		goto done;
	}
	if (rc != SQLITE_ROW) {
		rc = ward_db_fail(s, "reading callers");
		goto done;
	}
	stored = sqlite3_column_blob(st, 6);
	equal = stored && sqlite3_column_bytes(st, 6) == WARD_SHA256_LEN &&
	        ward_ct_equal(stored, hash, WARD_SHA256_LEN);
	active = sqlite3_column_text(st, 3) && strcmp((const char *)sqlite3_column_text(st, 3), "active") == 0;
	if (!equal || !active) {
		rc = refuse();
		goto done;
	}
	rc = caller_from_row(st, out);
done:
	sqlite3_finalize(st);
	ward_wipe(hash, sizeof(hash));
	return rc;
}

int ward_caller_labels(const ward_caller *c, json_t **json, const char ***arr, size_t *n)
{
	json_error_t err;
	json_t *v;
	size_t i;

	*json = NULL;
	*arr = NULL;
	*n = 0;
	if (!(*json = json_loads(c->labels ? c->labels : "[]", JSON_REJECT_DUPLICATES, &err)) ||
	    !json_is_array(*json) || json_array_size(*json) > WARD_MAX_LABELS) {
		json_decref(*json);
		*json = NULL;
		return ward_error_set(WARD_EDB, "caller %lld: malformed labels", (long long)c->id);
	}
	if (json_array_size(*json) == 0)
		return 0;
	if (!(*arr = ward_calloc(json_array_size(*json), sizeof(**arr)))) {
		json_decref(*json);
		*json = NULL;
		return ward_error_set(WARD_ENOMEM, "out of memory");
	}
	json_array_foreach(*json, i, v)
	{
		if (!json_is_string(v)) {
			ward_free((void *)*arr);
			*arr = NULL;
			json_decref(*json);
			*json = NULL;
			return ward_error_set(WARD_EDB, "caller %lld: malformed labels", (long long)c->id);
		}
		(*arr)[i] = json_string_value(v);
	}
	*n = json_array_size(*json);
	return 0;
}
