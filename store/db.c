/*
 * Opening, hardening and initialising the store, and write transactions.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/audit.h"
#include "ragward/buf.h"
#include "ragward/keys.h"
#include "ragward/log.h"
#include "store/db_internal.h"
#include "core/limits.h"
#include "core/banned.h"

int ward_db_fail(ward_store *s, const char *what)
{
	int err = s && s->db ? sqlite3_errcode(s->db) : SQLITE_ERROR;
	const char *msg = s && s->db ? sqlite3_errmsg(s->db) : "no database";

	if (err == SQLITE_BUSY || err == SQLITE_LOCKED)
		return ward_error_set(WARD_EBUSY, "%s: store is busy (another writer held it for %d s)", what,
				      WARD_DB_BUSY_TIMEOUT_MS / 1000);
	if (err == SQLITE_NOMEM)
		return ward_error_set(WARD_ENOMEM, "%s: out of memory", what);
	return ward_error_set(WARD_EDB, "%s: %s", what, msg);
}

int ward_db_exec(ward_store *s, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
		int rc = ward_db_fail(s, "executing statement");
		sqlite3_free(err);
		return rc;
	}
	return 0;
}

int ward_db_prepare(ward_store *s, sqlite3_stmt **st, const char *sql)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return ward_db_fail(s, "preparing statement");
	}
	return 0;
}

int ward_db_prepare_cached(ward_store *s, sqlite3_stmt **st, const char *sql)
{
	size_t n = sizeof(s->stmt_cache) / sizeof(s->stmt_cache[0]), free_slot = n;

	*st = NULL;
	for (size_t i = 0; i < n; i++) {
		if (s->stmt_cache[i].sql == sql) {
			if (s->stmt_cache[i].busy)
				return ward_db_prepare(s, st, sql);
			s->stmt_cache[i].busy = 1;
			*st = s->stmt_cache[i].st;
			return 0;
		}
		if (!s->stmt_cache[i].sql && free_slot == n)
			free_slot = i;
	}
	if (free_slot == n)
		return ward_db_prepare(s, st, sql);
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return ward_db_fail(s, "preparing statement");
	}
	s->stmt_cache[free_slot].sql = sql;
	s->stmt_cache[free_slot].st = *st;
	s->stmt_cache[free_slot].busy = 1;
	return 0;
}

void ward_db_release(ward_store *s, sqlite3_stmt *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < sizeof(s->stmt_cache) / sizeof(s->stmt_cache[0]); i++)
		if (s->stmt_cache[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			s->stmt_cache[i].busy = 0;
			return;
		}
	sqlite3_finalize(st);
}

int ward_db_col_dup(char **out, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	*out = NULL;
	if (!t)
		return 0;
	*out = ward_strndup((const char *)t, (size_t)sqlite3_column_bytes(st, col));
	return *out ? 0 : ward_error_set(WARD_ENOMEM, "copying a column: out of memory");
}

int ward_db_bind_text(sqlite3_stmt *st, int idx, const char *s)
{
	if (!s)
		return sqlite3_bind_null(st, idx);
	return sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT);
}

void ward_now_rfc3339(char out[32])
{
	const char *fake = getenv("RAGWARD_FAKE_TIME");
	struct tm tm;
	time_t t = time(NULL);

	if (fake && *fake) {
		char *end = NULL;
		long long v = strtoll(fake, &end, 10);
		if (end && *end == '\0' && v >= 0)
			t = (time_t)v;
	}
	if (!gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "1970-01-01T00:00:00Z");
}

int ward_actor_os(ward_actor *a, char *namebuf, size_t namebuf_len)
{
	struct passwd pw, *res = NULL;
	char tmp[4096];
	uid_t uid = geteuid();

	if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 && res && res->pw_name)
		snprintf(namebuf, namebuf_len, "%s", res->pw_name);
	else
		snprintf(namebuf, namebuf_len, "uid%ld", (long)uid);
	a->name = namebuf;
	a->uid = (long)uid;
	return 0;
}

static int path_join(char **out, const char *dir, const char *name)
{
	ward_buf b;
	int rc;

	ward_buf_init(&b, WARD_MAX_PATH_LEN);
	if ((rc = ward_buf_printf(&b, "%s/%s", dir, name)) < 0 || (rc = ward_buf_detach(&b, out, NULL)) < 0) {
		ward_buf_dispose(&b);
		return ward_error_set(rc, "path '%s/%s' is too long", dir, name);
	}
	return 0;
}

/*
 * Applies the hardening every connection gets before it runs a single
 * statement of ours: DEFENSIVE (no writes to the schema or shadow tables),
 * untrusted schema (no side-effecting functions from triggers or views planted
 * in the file), no extension loading, and no two-argument fts3_tokenizer,
 * which Debian's build enables and DEFENSIVE does not block.
 */
static int harden(ward_store *s)
{
	int ok = 1, v = 0;

	ok &= sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, &v) == SQLITE_OK && v == 1;
	ok &= sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, &v) == SQLITE_OK && v == 0;
	ok &= sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, &v) == SQLITE_OK && v == 0;
	ok &= sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, 0, &v) == SQLITE_OK && v == 0;
	ok &= sqlite3_db_config(s->db, SQLITE_DBCONFIG_DQS_DML, 0, &v) == SQLITE_OK;
	ok &= sqlite3_db_config(s->db, SQLITE_DBCONFIG_DQS_DDL, 0, &v) == SQLITE_OK;
	if (!ok)
		return ward_error_set(WARD_EDB, "cannot apply SQLite hardening settings");
	sqlite3_limit(s->db, SQLITE_LIMIT_LENGTH, WARD_DB_MAX_LENGTH);
	sqlite3_limit(s->db, SQLITE_LIMIT_SQL_LENGTH, WARD_DB_MAX_SQL_LENGTH);
	sqlite3_limit(s->db, SQLITE_LIMIT_ATTACHED, 0);
	if (sqlite3_busy_timeout(s->db, WARD_DB_BUSY_TIMEOUT_MS) != SQLITE_OK)
		return ward_db_fail(s, "setting busy timeout");
	return 0;
}

static int pragmas(ward_store *s, int rw)
{
	int rc;

	if (rw && (rc = ward_db_exec(s, "PRAGMA journal_mode = WAL")) < 0)
		return rc;
	if ((rc = ward_db_exec(s, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON")) < 0)
		return rc;
	return 0;
}

/*
 * A writer cuts the WAL file back to store.wal_limit_mb once a checkpoint
 * has caught up (SQLite restarts the log at the next write and truncates
 * the file to this size; without it the file keeps its largest size). A
 * reader that holds an old snapshot -- a long request, a stuck client --
 * stops checkpoints from catching up, and the log grows until it lets go
 * (T41).
 */
static int apply_wal_limit(ward_store *s)
{
	char pragma[64];

	snprintf(pragma, sizeof(pragma), "PRAGMA journal_size_limit = %lld", (long long)s->config.wal_limit_bytes);
	return ward_db_exec(s, pragma);
}

int ward_store_wal_bytes(const ward_store *s, int64_t *bytes)
{
	char path[WARD_MAX_PATH_LEN + 16];
	struct stat sb;

	*bytes = 0;
	if (snprintf(path, sizeof(path), "%s/store.db-wal", s->home) >= (int)sizeof(path))
		return ward_error_set(WARD_ETOOBIG, "home path too long");
	if (stat(path, &sb) != 0) {
		if (errno == ENOENT)
			return 0;
		return ward_error_set(WARD_EIO, "cannot inspect '%s': %s", path, strerror(errno));
	}
	*bytes = (int64_t)sb.st_size;
	return 0;
}

/* At a writer's close: a WAL above the limit means a reader kept the log
 * from being restarted while this handle wrote. Said once, as a warning. */
static void warn_wal_growth(ward_store *s)
{
	int64_t bytes = 0;

	if (!(s->flags & (WARD_STORE_RW | WARD_STORE_SIGN)) || ward_store_wal_bytes(s, &bytes) < 0 ||
	    bytes <= s->config.wal_limit_bytes)
		return;
	ward_log(WARD_LOG_WARN,
	         "store.db-wal is %lld MiB, above store.wal_limit_mb (%lld MiB): a reader held an old snapshot while"
	         " this run wrote; the log is cut back at the first write after it lets go",
	         (long long)(bytes >> 20), (long long)(s->config.wal_limit_bytes >> 20));
}

static int read_int_pragma(ward_store *s, const char *sql, int *out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = ward_db_prepare(s, &st, sql)) < 0)
		return rc;
	if (sqlite3_step(st) != SQLITE_ROW)
		rc = ward_db_fail(s, "reading store header");
	else
		*out = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc;
}

static int load_store_id(ward_store *s)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = ward_db_prepare(s, &st, "SELECT value FROM meta WHERE key = 'store_id'")) < 0)
		return rc;
	if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_bytes(st, 0) != 32)
		rc = ward_error_set(WARD_EDB, "store '%s' has no valid store id", s->home);
	else
		memcpy(s->store_id, sqlite3_column_text(st, 0), 32);
	s->store_id[32] = '\0';
	sqlite3_finalize(st);
	return rc;
}

static int store_alloc(ward_store **out, const char *home, int flags)
{
	ward_store *s = ward_calloc(1, sizeof(*s));

	*out = NULL;
	if (!s || !(s->home = ward_strdup(home))) {
		ward_free(s);
		return ward_error_set(WARD_ENOMEM, "opening store: out of memory");
	}
	s->flags = flags;
	*out = s;
	return 0;
}

/*
 * SQLite's process-wide settings, once, before its first use in the process:
 * no memory statistics (they take a global mutex on every allocation and
 * nothing here reads them). Best effort: when something else in the process
 * initialised SQLite first, sqlite3_config refuses and the default stays.
 */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void sqlite_configure(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/*
 * A handle is used by one thread at a time (the server keeps a pool of
 * handles, verify and ingest workers open their own), so the connection
 * needs no mutex of its own: SQLITE_OPEN_NOMUTEX. Every FTS5 page read and
 * every sqlite3_* call otherwise locks and unlocks one.
 */
static int connect_db(ward_store *s, int open_flags)
{
	char *path = NULL;
	int rc;

	(void)pthread_once(&sqlite_once, sqlite_configure);
	if ((rc = path_join(&path, s->home, "store.db")) < 0)
		return rc;
	if (sqlite3_open_v2(path, &s->db, open_flags | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		rc = ward_error_set(s->db && sqlite3_errcode(s->db) == SQLITE_NOMEM ? WARD_ENOMEM : WARD_EIO,
				    "cannot open store '%s': %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto done;
	}
	sqlite3_extended_result_codes(s->db, 0);
	if ((rc = harden(s)) < 0)
		goto done;
done:
	ward_free(path);
	return rc;
}

int ward_store_open(ward_store **out, const char *home, int flags)
{
	ward_store *s = NULL;
	struct stat sb;
	int rc, app_id = 0, version = 0;
	char *path = NULL;

	*out = NULL;
	if (flags & WARD_STORE_SIGN)
		flags |= WARD_STORE_RW;
	if ((rc = path_join(&path, home, "store.db")) < 0)
		return rc;
	if (lstat(path, &sb) != 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			rc = ward_error_set(WARD_ENOTFOUND, "no ragward store in '%s': run 'ragward --home %s init' first",
					    home, home);
		else
			rc = ward_error_set(WARD_EIO, "cannot inspect '%s': %s", path, strerror(errno));
		goto done;
	}
	if (!S_ISREG(sb.st_mode)) {
		rc = ward_error_set(WARD_EIO, "'%s' is not a regular file", path);
		goto done;
	}
	if (access(path, (flags & WARD_STORE_RW) ? R_OK | W_OK : R_OK) != 0) {
		rc = ward_error_set(WARD_EIO, "cannot open store '%s': %s", path, strerror(errno));
		goto done;
	}
	if ((rc = store_alloc(&s, home, flags)) < 0)
		goto done;
	if ((rc = connect_db(s, (flags & WARD_STORE_RW) ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY)) < 0)
		goto done;
	if ((rc = read_int_pragma(s, "PRAGMA application_id", &app_id)) < 0)
		goto done;
	if (app_id != WARD_APPLICATION_ID) {
		rc = ward_error_set(WARD_EDB, "'%s' is not a ragward store", path);
		goto done;
	}
	/* Only now, knowing the file is ours, may we change its journal mode. */
	if ((rc = pragmas(s, flags & WARD_STORE_RW)) < 0)
		goto done;
	if ((rc = read_int_pragma(s, "PRAGMA user_version", &version)) < 0)
		goto done;
	if (version > WARD_SCHEMA_VERSION) {
		rc = ward_error_set(WARD_ESCHEMA,
				    "store schema version %d is newer than this ragward knows (%d): upgrade ragward",
				    version, WARD_SCHEMA_VERSION);
		goto done;
	}
	if (version < WARD_SCHEMA_VERSION) {
		if (!(flags & WARD_STORE_RW)) {
			rc = ward_error_set(WARD_ESCHEMA,
					    "store schema version %d needs migrating to %d: run a write command first",
					    version, WARD_SCHEMA_VERSION);
			goto done;
		}
		if ((rc = ward_store_begin(s)) < 0 || (rc = ward_schema_migrate(s)) < 0 ||
		    (rc = ward_store_commit(s)) < 0)
			goto done;
	}
	if ((rc = load_store_id(s)) < 0)
		goto done;
	if ((rc = ward_config_load(&s->config, home)) < 0)
		goto done;
	if ((flags & (WARD_STORE_RW | WARD_STORE_SIGN)) && (rc = apply_wal_limit(s)) < 0)
		goto done;
	if ((flags & WARD_STORE_SIGN) && (rc = ward_keys_load_signer(s)) < 0)
		goto done;
	*out = s;
	s = NULL;
done:
	ward_store_close(s);
	ward_free(path);
	return rc;
}

void ward_store_defer_anchor(ward_store *s, int on)
{
	s->defer_anchor = on;
	if (!on)
		ward_store_flush_anchor(s);
}

void ward_store_flush_anchor(ward_store *s)
{
	if (!s || !s->anchor_pending)
		return;
	if (ward_audit_write_anchor(s) < 0)
		ward_log(WARD_LOG_WARN, "audit anchor not refreshed: %s", ward_error_last()->message);
	else
		s->anchor_pending = 0;
}

void ward_store_close(ward_store *s)
{
	if (!s)
		return;
	if (s->in_tx)
		ward_store_rollback(s);
	ward_store_flush_anchor(s);
	warn_wal_growth(s);
	for (size_t i = 0; i < sizeof(s->stmt_cache) / sizeof(s->stmt_cache[0]); i++)
		sqlite3_finalize(s->stmt_cache[i].st);
	sqlite3_close_v2(s->db);
	ward_key_free(s->signer);
	ward_free(s->home);
	ward_free(s);
}

const char *ward_store_home(const ward_store *s) { return s->home; }
const ward_config *ward_store_config(const ward_store *s) { return &s->config; }
const char *ward_store_id(const ward_store *s) { return s->store_id; }
const char *ward_store_key_id(const ward_store *s) { return s->signer ? s->key_id : NULL; }
const ward_key *ward_store_signer(const ward_store *s) { return s->signer; }

int ward_store_begin(ward_store *s)
{
	int rc;

	if (s->in_tx)
		return ward_error_set(WARD_EINVAL, "a transaction is already open");
	if (!(s->flags & WARD_STORE_RW))
		return ward_error_set(WARD_EINVAL, "store '%s' is open read-only", s->home);
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return ward_db_fail(s, "starting a write transaction");
	s->in_tx = 1;
	s->events_appended = 0;
	s->frontier_loaded = 0;
	if ((rc = ward_audit_tx_begin(s)) < 0) {
		ward_store_rollback(s);
		return rc;
	}
	return 0;
}

int ward_store_commit(ward_store *s)
{
	int rc, sealed;

	if (!s->in_tx)
		return ward_error_set(WARD_EINVAL, "no transaction is open");
	sealed = s->events_appended;
	s->commit_uncertain = 0;
	if (sealed && (rc = ward_audit_tx_seal(s)) < 0)
		goto fail;
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		rc = ward_db_fail(s, "committing");
		s->commit_uncertain = 1;
		goto fail;
	}
	s->in_tx = 0;
	s->events_appended = 0;
	/* The change is durable now; a failure to refresh the anchor leaves an
	 * older (still consistent) anchor behind, so it is reported, not fatal. */
	if (sealed) {
		s->anchor_pending = 1;
		if (!s->defer_anchor)
			ward_store_flush_anchor(s);
	}
	return 0;
fail:
	ward_store_rollback(s);
	return rc;
}

void ward_store_rollback(ward_store *s)
{
	if (!s || !s->in_tx)
		return;
	/* An error may already have rolled SQLite back; ROLLBACK then fails
	 * harmlessly with "no transaction is active". */
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->in_tx = 0;
	s->events_appended = 0;
	s->frontier_loaded = 0;
}

int ward_store_quick_check(ward_store *s)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = ward_db_prepare(s, &st, "PRAGMA quick_check")) < 0)
		return rc;
	if (sqlite3_step(st) != SQLITE_ROW)
		rc = ward_db_fail(s, "quick_check");
	else if (strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0)
		rc = ward_error_set(WARD_EVERIFY, "store '%s' failed quick_check: %s", s->home,
				    (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return rc;
}

/* ---- init ------------------------------------------------------------- */

static int home_is_empty_dir(const char *home, int *exists)
{
	struct stat sb;
	char *p = NULL;
	int rc = 0;
	static const char *const ours[] = {"store.db", "keys", "anchor.checkpoint", "config.yaml"};

	*exists = 0;
	if (lstat(home, &sb) != 0) {
		if (errno == ENOENT)
			return 0;
		return ward_error_set(WARD_EIO, "cannot inspect '%s': %s", home, strerror(errno));
	}
	if (!S_ISDIR(sb.st_mode))
		return ward_error_set(WARD_EEXISTS, "'%s' exists and is not a directory", home);
	*exists = 1;
	for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
		if ((rc = path_join(&p, home, ours[i])) < 0)
			return rc;
		if (lstat(p, &sb) == 0 && strcmp(ours[i], "config.yaml") != 0) {
			rc = ward_error_set(WARD_EEXISTS, "'%s' already holds a ragward store (found '%s'); nothing changed",
					    home, ours[i]);
			ward_free(p);
			return rc;
		}
		ward_free(p);
		p = NULL;
	}
	return 0;
}

static int create_schema(ward_store *s, const ward_key *key, const char *key_id, const ward_actor *who)
{
	uint8_t raw_id[16];
	char hex_id[33], pragma[64];
	sqlite3_stmt *st = NULL;
	json_t *details = NULL;
	int rc;

	if ((rc = ward_random(raw_id, sizeof(raw_id))) < 0)
		return rc;
	ward_hex_encode_to(hex_id, raw_id, sizeof(raw_id));

	if ((rc = ward_store_begin(s)) < 0)
		return rc;
	snprintf(pragma, sizeof(pragma), "PRAGMA application_id = %d", WARD_APPLICATION_ID);
	if ((rc = ward_db_exec(s, pragma)) < 0 || (rc = ward_schema_migrate(s)) < 0)
		goto done;
	if ((rc = ward_db_prepare(s, &st, "INSERT INTO meta(key, value) VALUES ('store_id', ?1)")) < 0)
		goto done;
	sqlite3_bind_text(st, 1, hex_id, 32, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = ward_db_fail(s, "recording store id");
		goto done;
	}
	memcpy(s->store_id, hex_id, 33);
	if ((rc = ward_keys_insert(s, key, key_id)) < 0)
		goto done;
	details = json_pack("{s:s, s:i}", "store_id", hex_id, "schema_version", WARD_SCHEMA_VERSION);
	if (!details) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	if ((rc = ward_audit_append(s, who, "store.init", hex_id, details)) < 0)
		goto done;
	json_decref(details);
	details = json_pack("{s:s}", "key_id", key_id);
	if (!details) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	if ((rc = ward_audit_append(s, who, "key.create", key_id, details)) < 0)
		goto done;
	rc = ward_store_commit(s);
done:
	if (rc < 0)
		ward_store_rollback(s);
	sqlite3_finalize(st);
	json_decref(details);
	return rc;
}

/* Creates an empty store.db with mode 0600 before SQLite opens it: SQLite
 * gives the -wal and -shm files the mode of the database file. */
static int create_db_file(const char *home)
{
	char *path = NULL;
	int fd, rc;

	if ((rc = path_join(&path, home, "store.db")) < 0)
		return rc;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		rc = ward_error_set(WARD_EIO, "cannot create '%s': %s", path, strerror(errno));
	else
		close(fd);
	ward_free(path);
	return rc;
}

/* Removes what a failed init created, so a refused or failed init leaves
 * nothing behind. */
static void init_cleanup(const char *home, const char *key_id, int home_created, int db_created)
{
	static const char *const files[] = {"store.db", "store.db-wal", "store.db-shm", "anchor.checkpoint"};
	char *p = NULL;
	ward_buf b;

	for (size_t i = 0; db_created && i < sizeof(files) / sizeof(files[0]); i++) {
		if (path_join(&p, home, files[i]) == 0)
			unlink(p);
		ward_free(p);
		p = NULL;
	}
	if (key_id && *key_id) {
		ward_buf_init(&b, WARD_MAX_PATH_LEN);
		if (ward_buf_printf(&b, "%s/keys/%s.key", home, key_id) == 0)
			unlink(b.ptr);
		ward_buf_reset(&b);
		if (ward_buf_printf(&b, "%s/keys/%s.pub", home, key_id) == 0)
			unlink(b.ptr);
		ward_buf_reset(&b);
		if (ward_buf_printf(&b, "%s/keys", home) == 0)
			rmdir(b.ptr);
		ward_buf_dispose(&b);
	}
	if (home_created)
		rmdir(home);
}

int ward_store_init_home(const char *home, const ward_actor *who, char key_id_out[33])
{
	ward_store *s = NULL;
	ward_key *key = NULL;
	char *keys_dir = NULL;
	char key_id[33] = "";
	int rc, exists = 0, home_created = 0, keys_created = 0, db_created = 0;

	key_id_out[0] = '\0';
	if ((rc = home_is_empty_dir(home, &exists)) < 0)
		return rc;
	if (!exists) {
		if (mkdir(home, 0700) != 0)
			return ward_error_set(WARD_EIO, "cannot create home '%s': %s", home, strerror(errno));
		home_created = 1;
	}
	if ((rc = path_join(&keys_dir, home, "keys")) < 0)
		goto done;
	if (mkdir(keys_dir, 0700) != 0) {
		rc = ward_error_set(WARD_EIO, "cannot create '%s': %s", keys_dir, strerror(errno));
		goto done;
	}
	keys_created = 1;
	if ((rc = ward_key_generate(&key)) < 0 || (rc = ward_key_id(key, key_id)) < 0)
		goto done;
	if ((rc = ward_keys_write_files(keys_dir, key, key_id)) < 0)
		goto done;
	if ((rc = store_alloc(&s, home, WARD_STORE_RW | WARD_STORE_SIGN)) < 0)
		goto done;
	if ((rc = create_db_file(home)) < 0)
		goto done;
	db_created = 1;
	if ((rc = connect_db(s, SQLITE_OPEN_READWRITE)) < 0 || (rc = pragmas(s, 1)) < 0)
		goto done;
	s->signer = key;
	key = NULL;
	memcpy(s->key_id, key_id, sizeof(key_id));
	if ((rc = ward_config_load(&s->config, home)) < 0 || (rc = apply_wal_limit(s)) < 0)
		goto done;
	if ((rc = create_schema(s, s->signer, key_id, who)) < 0)
		goto done;
	memcpy(key_id_out, key_id, sizeof(key_id));
done:
	ward_store_close(s);
	ward_key_free(key);
	if (rc < 0) {
		int keep = rc;
		ward_error clone = *ward_error_last();
		init_cleanup(home, keys_created ? key_id : NULL, home_created, db_created);
		if (keys_created && !*key_id && keys_dir)
			rmdir(keys_dir);
		ward_error_set(clone.code, "%s", clone.message);
		rc = keep;
	}
	ward_free(keys_dir);
	return rc;
}
