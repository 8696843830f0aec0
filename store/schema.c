/*
 * The store schema, versioned with PRAGMA user_version. Each migration runs in
 * the caller's write transaction; the binary refuses a store whose version is
 * newer than the last migration it knows.
 */
#include <stddef.h>
#include <stdio.h>
#include "store/db_internal.h"
#include "core/banned.h"

/*
 * Version 1. Tables are STRICT so a value of the wrong type is an error, not a
 * silent conversion. The audit tables refuse UPDATE and DELETE through
 * triggers: that stops mistakes, not an attacker with the file (the Merkle log
 * and the external anchor do that).
 */
static const char schema_v1[] =
	"CREATE TABLE meta ("
	"  key TEXT PRIMARY KEY,"
	"  value ANY NOT NULL"
	") STRICT;"

	"CREATE TABLE keys ("
	"  key_id TEXT PRIMARY KEY,"
	"  public_key BLOB NOT NULL CHECK (length(public_key) = 32),"
	"  state TEXT NOT NULL CHECK (state IN ('active', 'retired')),"
	"  created_at TEXT NOT NULL,"
	"  retired_at TEXT"
	") STRICT;"
	"CREATE UNIQUE INDEX keys_one_active ON keys(state) WHERE state = 'active';"

	"CREATE TABLE sources ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  kind TEXT NOT NULL CHECK (kind IN ('https', 'http', 'file')),"
	"  pattern TEXT NOT NULL,"
	"  trust TEXT NOT NULL CHECK (trust IN ('high', 'standard', 'low')),"
	"  labels TEXT NOT NULL DEFAULT '[]',"
	"  allow_private INTEGER NOT NULL DEFAULT 0 CHECK (allow_private IN (0, 1)),"
	"  state TEXT NOT NULL CHECK (state IN ('requested', 'approved', 'rejected', 'revoked')),"
	"  origin TEXT NOT NULL CHECK (origin IN ('cli', 'import')),"
	"  requested_by TEXT NOT NULL,"
	"  requested_uid INTEGER NOT NULL,"
	"  requested_at TEXT NOT NULL,"
	"  reason TEXT,"
	"  decided_by TEXT,"
	"  decided_uid INTEGER,"
	"  decided_at TEXT,"
	"  note TEXT,"
	"  seeds TEXT NOT NULL DEFAULT '[]',"
	"  allowed_types TEXT"
	") STRICT;"
	"CREATE INDEX sources_state ON sources(state);"

	"CREATE TABLE documents ("
	"  id INTEGER PRIMARY KEY,"
	"  source_id INTEGER NOT NULL REFERENCES sources(id),"
	"  uri TEXT NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('active', 'superseded', 'quarantined', 'dropped')),"
	"  title TEXT,"
	"  declared_type TEXT,"
	"  detected_type TEXT,"
	"  byte_sha256 BLOB NOT NULL CHECK (length(byte_sha256) = 32),"
	"  byte_len INTEGER NOT NULL,"
	"  bytes BLOB,"
	"  final_url TEXT,"
	"  peer_ip TEXT,"
	"  http_status INTEGER,"
	"  etag TEXT,"
	"  last_modified TEXT,"
	"  fetched_at TEXT NOT NULL,"
	"  ruleset_sha256 TEXT,"
	"  verdict TEXT,"
	"  score REAL,"
	"  UNIQUE (uri, version)"
	") STRICT;"
	"CREATE INDEX documents_source ON documents(source_id, state);"

	"CREATE TABLE chunks ("
	"  id INTEGER PRIMARY KEY,"
	"  document_id INTEGER NOT NULL REFERENCES documents(id),"
	"  ordinal INTEGER NOT NULL,"
	"  heading_path TEXT NOT NULL DEFAULT '',"
	"  char_start INTEGER NOT NULL,"
	"  char_end INTEGER NOT NULL,"
	"  text TEXT NOT NULL,"
	"  text_sha256 BLOB NOT NULL CHECK (length(text_sha256) = 32),"
	"  statement_version INTEGER NOT NULL,"
	"  key_id TEXT NOT NULL REFERENCES keys(key_id),"
	"  signature BLOB NOT NULL CHECK (length(signature) = 64),"
	"  UNIQUE (document_id, ordinal)"
	") STRICT;"
	"CREATE VIRTUAL TABLE chunks_fts USING fts5("
	"  title, heading_path, text, tokenize = 'unicode61 remove_diacritics 2'"
	");"

	"CREATE TABLE findings ("
	"  id INTEGER PRIMARY KEY,"
	"  document_id INTEGER NOT NULL REFERENCES documents(id),"
	"  chunk_id INTEGER REFERENCES chunks(id),"
	"  rule_id TEXT NOT NULL,"
	"  category TEXT NOT NULL,"
	"  severity INTEGER NOT NULL,"
	"  channel TEXT NOT NULL,"
	"  view TEXT NOT NULL,"
	"  start_offset INTEGER NOT NULL,"
	"  end_offset INTEGER NOT NULL,"
	"  excerpt TEXT NOT NULL"
	") STRICT;"
	"CREATE INDEX findings_document ON findings(document_id);"

	"CREATE TABLE audit_events ("
	"  seq INTEGER PRIMARY KEY,"
	"  at TEXT NOT NULL,"
	"  actor TEXT NOT NULL,"
	"  uid INTEGER NOT NULL,"
	"  action TEXT NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  details TEXT NOT NULL,"
	"  leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32)"
	") STRICT;"
	"CREATE INDEX audit_events_subject ON audit_events(subject, action);"
	"CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events"
	"  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
	"CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events"
	"  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"

	"CREATE TABLE checkpoints ("
	"  id INTEGER PRIMARY KEY,"
	"  tree_size INTEGER NOT NULL,"
	"  root BLOB NOT NULL CHECK (length(root) = 32),"
	"  at TEXT NOT NULL,"
	"  key_id TEXT NOT NULL,"
	"  signature BLOB NOT NULL CHECK (length(signature) = 64)"
	") STRICT;"
	"CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints"
	"  BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;"
	"CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints"
	"  BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;"

	"CREATE TABLE callers ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  labels TEXT NOT NULL DEFAULT '[]',"
	"  token_sha256 BLOB NOT NULL UNIQUE CHECK (length(token_sha256) = 32),"
	"  state TEXT NOT NULL CHECK (state IN ('active', 'revoked')),"
	"  created_at TEXT NOT NULL,"
	"  revoked_at TEXT"
	") STRICT;";

static const char *const migrations[WARD_SCHEMA_VERSION] = {
	schema_v1,
};

/* Brings the schema to WARD_SCHEMA_VERSION inside the caller's transaction. */
int ward_schema_migrate(ward_store *s)
{
	sqlite3_stmt *st = NULL;
	int version, rc;

	if ((rc = ward_db_prepare(s, &st, "PRAGMA user_version")) < 0)
		return rc;
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = ward_db_fail(s, "reading schema version");
		sqlite3_finalize(st);
		return rc;
	}
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);

	if (version > WARD_SCHEMA_VERSION)
		return ward_error_set(WARD_ESCHEMA,
				      "store schema version %d is newer than this ragward knows (%d): upgrade ragward",
				      version, WARD_SCHEMA_VERSION);
	for (; version < WARD_SCHEMA_VERSION; version++) {
		char pragma[64];
		if ((rc = ward_db_exec(s, migrations[version])) < 0)
			return ward_error_wrap("migrating schema to version %d", version + 1);
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", version + 1);
		if ((rc = ward_db_exec(s, pragma)) < 0)
			return rc;
	}
	return 0;
}
