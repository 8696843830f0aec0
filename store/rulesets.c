/*
 * Which rule set judges new documents: a change of rule set is a governance
 * event (the drift signals of a security team start there), so the first use
 * of a new rule-set hash is written to the audit log.
 */
#include <string.h>
#include <jansson.h>

#include "ragward/audit.h"
#include "ragward/documents.h"
#include "store/db_internal.h"
#include "core/banned.h"

int ward_store_note_ruleset(ward_store *s, const ward_actor *who, const char *sha256, size_t rules, const char *dir,
			    int *changed)
{
	sqlite3_stmt *st = NULL;
	json_t *details = NULL;
	char prev[65] = "";
	int rc;

	*changed = 0;
	if ((rc = ward_store_begin(s)) < 0)
		return rc;
	if ((rc = ward_db_prepare(s, &st, "SELECT value FROM meta WHERE key = 'ruleset_sha256'")) < 0)
		goto done;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) < (int)sizeof(prev))
		memcpy(prev, sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0));
	sqlite3_finalize(st);
	st = NULL;
	if (strcmp(prev, sha256) == 0) {
		ward_store_rollback(s);
		return 0;
	}
	if ((rc = ward_db_prepare(s, &st, "INSERT OR REPLACE INTO meta(key, value) VALUES ('ruleset_sha256', ?1)")) < 0)
		goto done;
	ward_db_bind_text(st, 1, sha256);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = ward_db_fail(s, "recording rule set");
		goto done;
	}
	details = json_pack("{s:s, s:s?, s:I, s:s}", "sha256", sha256, "previous", prev[0] ? prev : NULL, "rules",
			    (json_int_t)rules, "dir", dir ? dir : "");
	if (!details) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	if ((rc = ward_audit_append(s, who, "rules.load", sha256, details)) < 0)
		goto done;
	if ((rc = ward_store_commit(s)) == 0)
		*changed = 1;
done:
	if (rc < 0)
		ward_store_rollback(s);
	sqlite3_finalize(st);
	json_decref(details);
	return rc;
}
