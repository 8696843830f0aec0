/*
 * Tests for store/db.c and store/schema.c: schema versioning, refusal of
 * foreign files, the SQLite hardening of security-controls §4 (T44),
 * durability pragmas, write transactions, the busy timeout, and the WAL's
 * bound after a long reader (T41).
 *
 * store/db_internal.h is included to reach the connection (s->db) of an
 * opened store: the checks below run SQL through the store's own, hardened
 * connection, as an injected statement would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "ragward/alloc.h"
#include "ragward/audit.h"
#include "ragward/log.h"
#include "ragward/sources.h"
#include "ragward/store.h"
#include "store/db_internal.h"
#include "core/limits.h"
#include "tests/support/testutil.h"
#include "core/banned.h"

typedef struct {
	char *home;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->home = tu_new_home("db");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	tu_home_free(f->home);
	free(f);
	return 0;
}

/* Runs SQL on a connection; returns the SQLite code and the message in err. */
static int exec_on(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

	snprintf(err, errlen, "%s", msg ? msg : "");
	sqlite3_free(msg);
	return rc;
}

static int int_on(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int v;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("prepare '%s': %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static char *text_on(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	char *v;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("prepare '%s': %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

static int request(ward_store *s, const char *name, const char *pattern)
{
	ward_actor a = tu_actor("alice");
	ward_source_request r;
	int64_t id;

	memset(&r, 0, sizeof(r));
	r.name = name;
	r.pattern = pattern;
	return ward_sources_request(s, &a, &r, &id);
}

/* ---- schema ----------------------------------------------------------- */

static void test_store_db__schema(void **state)
{
	fixture *f = *state;
	static const char *const tables[] = {"meta",   "keys",     "sources",      "documents",   "chunks",
					     "chunks_fts", "findings", "audit_events", "checkpoints", "callers"};
	ward_store *s;

	assert_int_equal(tu_query_int(f->home, "PRAGMA user_version"), WARD_SCHEMA_VERSION);
	assert_int_equal(tu_query_int(f->home, "PRAGMA application_id"), WARD_APPLICATION_ID);
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		char sql[128];
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM sqlite_schema WHERE name = '%s'", tables[i]);
		if (tu_query_int(f->home, sql) != 1)
			fail_msg("table '%s' missing", tables[i]);
	}
	/* STRICT tables refuse a value of the wrong type */
	{
		char err[256];
		assert_int_equal(tu_raw_exec(f->home, "INSERT INTO keys VALUES ('x', 'not a blob', 'active', 'now', NULL)",
					     err, sizeof(err)),
				 SQLITE_CONSTRAINT);
	}
	s = tu_open(f->home, 0);
	assert_int_equal(strlen(ward_store_id(s)), 32);
	assert_int_equal(ward_store_quick_check(s), 0);
	ward_store_close(s);
}

static void test_store_db__newer_schema_refused(void **state)
{
	fixture *f = *state;
	ward_store *s = NULL;
	char *db = tu_path(f->home, "store.db");
	size_t before_len, after_len;
	char *before, *after;

	tu_raw_exec_ok(f->home, "PRAGMA user_version = 99");
	/* settle the WAL into the file so the byte comparison is meaningful */
	tu_raw_exec_ok(f->home, "PRAGMA wal_checkpoint(TRUNCATE)");
	before = tu_read_file(db, &before_len);
	assert_int_equal(ward_store_open(&s, f->home, 0), WARD_ESCHEMA);
	assert_null(s);
	assert_true(tu_error_has("newer"));
	assert_true(tu_error_has("99"));
	assert_int_equal(ward_store_open(&s, f->home, WARD_STORE_SIGN), WARD_ESCHEMA);
	assert_true(tu_error_has("newer"));
	assert_null(s);
	after = tu_read_file(db, &after_len);
	assert_int_equal(after_len, before_len);
	assert_memory_equal(after, before, before_len);
	assert_int_equal(tu_query_int(f->home, "PRAGMA user_version"), 99);
	free(before);
	free(after);
	free(db);
}

static void test_store_db__older_schema_read_only_refused(void **state)
{
	fixture *f = *state;
	ward_store *s = NULL;

	tu_raw_exec_ok(f->home, "PRAGMA user_version = 0");
	assert_int_equal(ward_store_open(&s, f->home, 0), WARD_ESCHEMA);
	assert_true(tu_error_has("migrat"));
	assert_null(s);
}

/* A home whose store.db is something else. */
static char *foreign_home(const char *prefix)
{
	char *home = tu_home_path(prefix);

	assert_int_equal(mkdir(home, 0700), 0);
	return home;
}

/* HOME/store.db is some other application's SQLite database. */
static char *foreign_db_home(char **db_out)
{
	char *home = foreign_home("db-foreign"), *db = tu_path(home, "store.db");
	sqlite3 *raw = NULL;

	assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
	assert_int_equal(sqlite3_exec(raw, "CREATE TABLE notes(x TEXT); INSERT INTO notes VALUES ('precious');", NULL,
				      NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(raw);
	*db_out = db;
	return home;
}

static void test_store_db__foreign_sqlite_file_refused(void **state)
{
	char *db, *home = foreign_db_home(&db);
	ward_store *s = NULL;
	static const int flags[] = {0, WARD_STORE_RW, WARD_STORE_SIGN};

	(void)state;
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		int rc = ward_store_open(&s, home, flags[i]);
		assert_int_equal(rc, WARD_EDB);
		assert_null(s);
		assert_true(tu_error_has("not a ragward store"));
	}
	free(db);
	tu_home_free(home);
}

/* Refusing must not alter the foreign file: no switch to WAL, no header
 * rewrite, no new -wal/-shm beside it. */
static void test_store_db__foreign_sqlite_file_unchanged(void **state)
{
	char *db, *home = foreign_db_home(&db);
	ward_store *s = NULL;
	size_t before_len, after_len;
	char *before = tu_read_file(db, &before_len), *after;
	int same;

	(void)state;
	assert_true(ward_store_open(&s, home, WARD_STORE_RW) < 0);
	after = tu_read_file(db, &after_len);
	same = after_len == before_len && memcmp(after, before, before_len) == 0;
	if (!same && after_len >= 20 && before_len >= 20)
		print_error("header bytes 18-19 (file format versions): before %d,%d after %d,%d\n", before[18],
			    before[19], after[18], after[19]);
	free(before);
	free(after);
	free(db);
	tu_home_free(home);
	assert_true(same);
}

static void test_store_db__garbage_and_odd_files_refused(void **state)
{
	fixture *f = *state;
	char *home = foreign_home("db-garbage"), *db = tu_path(home, "store.db");
	ward_store *s = NULL;
	char junk[8192];

	(void)f;
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 131 + 7);
	tu_write_file(db, junk, sizeof(junk));
	assert_true(ward_store_open(&s, home, 0) < 0);
	assert_null(s);
	/* SQLite header, garbage after */
	memcpy(junk, "SQLite format 3", 16);
	tu_write_file(db, junk, sizeof(junk));
	assert_true(ward_store_open(&s, home, 0) < 0);
	assert_null(s);
	/* empty file */
	tu_write_file(db, "", 0);
	assert_true(ward_store_open(&s, home, 0) < 0);
	assert_null(s);
	/* a symlink to a real store is not followed */
	unlink(db);
	{
		char *real = tu_path(f->home, "store.db");
		assert_int_equal(symlink(real, db), 0);
		assert_int_equal(ward_store_open(&s, home, 0), WARD_EIO); /* "not a regular file" */
		assert_null(s);
		free(real);
	}
	/* a directory */
	unlink(db);
	assert_int_equal(mkdir(db, 0700), 0);
	assert_int_equal(ward_store_open(&s, home, 0), WARD_EIO); /* "not a regular file" */
	rmdir(db);
	/* nothing at all: the message says what to do */
	assert_int_equal(ward_store_open(&s, home, 0), WARD_ENOTFOUND);
	assert_true(tu_error_has("init"));
	free(db);
	tu_home_free(home);
}

/* ---- T44: hardening ----------------------------------------------------- */

static void test_store_db__defensive(void **state)
{
	fixture *f = *state;
	ward_store *s = tu_open(f->home, WARD_STORE_SIGN);
	char err[512];
	int v = -1;

	assert_int_equal(sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, -1, &v), SQLITE_OK);
	assert_int_equal(v, 1);
	assert_int_equal(sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, -1, &v), SQLITE_OK);
	assert_int_equal(v, 0);
	assert_int_equal(sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, -1, &v), SQLITE_OK);
	assert_int_equal(v, 0);
	assert_int_equal(sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, -1, &v), SQLITE_OK);
	assert_int_equal(v, 0);
	assert_int_equal(int_on(s->db, "PRAGMA trusted_schema"), 0);

	/* the schema cannot be rewritten, even with writable_schema */
	assert_int_equal(exec_on(s->db, "PRAGMA writable_schema = ON", err, sizeof(err)), SQLITE_OK);
	assert_int_not_equal(exec_on(s->db,
				     "UPDATE sqlite_schema SET sql = replace(sql, 'RAISE(ABORT', 'SELECT(1') WHERE"
				     " name = 'audit_events_no_delete'",
				     err, sizeof(err)),
			     SQLITE_OK);
	assert_non_null(strstr(err, "may not be modified"));
	assert_int_not_equal(exec_on(s->db, "DELETE FROM sqlite_schema WHERE type = 'trigger'", err, sizeof(err)),
			     SQLITE_OK);
	assert_non_null(strstr(err, "may not be modified"));
	/* the FTS5 shadow tables are read-only */
	assert_int_not_equal(exec_on(s->db, "INSERT INTO chunks_fts_data(id, block) VALUES (424242, x'00')", err,
				     sizeof(err)),
			     SQLITE_OK);
	assert_non_null(strstr(err, "may not be modified"));
	assert_int_not_equal(exec_on(s->db, "DELETE FROM chunks_fts_config", err, sizeof(err)), SQLITE_OK);
	/* the two-argument fts3_tokenizer (a pointer from SQL!) is off */
	assert_int_not_equal(exec_on(s->db, "SELECT fts3_tokenizer('simple', x'4141414141414141')", err, sizeof(err)),
			     SQLITE_OK);
	assert_non_null(strstr(err, "fts3tokenize disabled"));
	/* no extension loading */
	assert_int_not_equal(exec_on(s->db, "SELECT load_extension('/nonexistent/x')", err, sizeof(err)), SQLITE_OK);
	assert_non_null(strstr(err, "not authorized"));
	assert_int_equal(sqlite3_load_extension(s->db, "/nonexistent/x", NULL, NULL) == SQLITE_OK, 0);
	/* no ATTACH (a second file written through our connection) */
	{
		char sql[512];
		char *other = tu_path(f->home, "../attached.db");
		snprintf(sql, sizeof(sql), "ATTACH '%s' AS x", other);
		assert_int_not_equal(exec_on(s->db, sql, err, sizeof(err)), SQLITE_OK);
		assert_int_equal(access(other, F_OK), -1);
		free(other);
	}
	/* sqlite_dbpage, where compiled in, is read-only under DEFENSIVE */
	if (exec_on(s->db, "SELECT count(*) FROM sqlite_dbpage", err, sizeof(err)) == SQLITE_OK)
		assert_int_not_equal(exec_on(s->db, "UPDATE sqlite_dbpage SET data = zeroblob(4096) WHERE pgno = 1", err,
					     sizeof(err)),
				     SQLITE_OK);
	/* the hard limits */
	assert_int_equal(sqlite3_limit(s->db, SQLITE_LIMIT_ATTACHED, -1), 0);
	assert_true(sqlite3_limit(s->db, SQLITE_LIMIT_LENGTH, -1) <= 64 * 1024 * 1024);
	assert_true(sqlite3_limit(s->db, SQLITE_LIMIT_SQL_LENGTH, -1) <= 1024 * 1024);

	/* nothing of the above reached the file */
	ward_store_close(s);
	s = tu_open(f->home, 0);
	assert_int_equal(ward_store_quick_check(s), 0);
	assert_int_equal(tu_verify(s, NULL, NULL), 0);
	ward_store_close(s);
	assert_int_equal(tu_query_int(f->home, "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'"), 4);
}

static int side_effects;

static void side_effect_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	(void)argv;
	side_effects++;
	sqlite3_result_int(ctx, side_effects);
}

/* The application function an attacker would aim at: side-effecting, so not
 * registered as SQLITE_INNOCUOUS. */
static void register_side_effect(sqlite3 *db)
{
	assert_int_equal(sqlite3_create_function_v2(db, "ward_test_side_effect", 0, SQLITE_UTF8, NULL, side_effect_fn,
						    NULL, NULL, NULL),
			 SQLITE_OK);
}

static void test_store_db__planted_schema_not_run(void **state)
{
	fixture *f = *state;
	ward_store *s;
	char err[512];
	sqlite3 *raw;
	tu_counts before;

	/* planted in the file through a plain connection */
	raw = tu_raw_open(f->home);
	register_side_effect(raw);
	assert_int_equal(exec_on(raw,
				 "CREATE VIEW planted_view AS SELECT ward_test_side_effect() AS x;"
				 "CREATE VIEW planted_le AS SELECT load_extension('/nonexistent/evil') AS x;"
				 "CREATE TRIGGER planted_trigger AFTER INSERT ON sources"
				 " BEGIN SELECT ward_test_side_effect(); END;",
				 err, sizeof(err)),
			 SQLITE_OK);
	/* control: a connection that trusts the schema does run it */
	side_effects = 0;
	assert_int_equal(exec_on(raw, "PRAGMA trusted_schema = ON; SELECT * FROM planted_view", err, sizeof(err)),
			 SQLITE_OK);
	assert_int_equal(side_effects, 1);
	sqlite3_close(raw);
	side_effects = 0;
	before = tu_counts_get(f->home);

	s = tu_open(f->home, WARD_STORE_SIGN);
	register_side_effect(s->db);
	assert_int_not_equal(exec_on(s->db, "SELECT * FROM planted_view", err, sizeof(err)), SQLITE_OK);
	assert_non_null(strstr(err, "unsafe use of ward_test_side_effect()"));
	assert_int_not_equal(exec_on(s->db, "SELECT * FROM planted_le", err, sizeof(err)), SQLITE_OK);
	/* the trigger fires on our own write: refused, and the write with it */
	assert_true(request(s, "x", "https://x.example/") < 0);
	assert_int_equal(side_effects, 0);
	ward_store_close(s);
	{
		tu_counts after = tu_counts_get(f->home);
		assert_memory_equal(&after, &before, sizeof(after));
	}
}

/* ---- durability --------------------------------------------------------- */

static void test_store_db__pragmas(void **state)
{
	fixture *f = *state;
	static const int flags[] = {0, WARD_STORE_RW, WARD_STORE_SIGN};

	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		ward_store *s = tu_open(f->home, flags[i]);
		char *mode = text_on(s->db, "PRAGMA journal_mode");
		assert_string_equal(mode, "wal");
		free(mode);
		assert_int_equal(int_on(s->db, "PRAGMA synchronous"), 2);
		assert_int_equal(int_on(s->db, "PRAGMA foreign_keys"), 1);
		assert_int_equal(sqlite3_db_readonly(s->db, "main"), flags[i] == 0);
		ward_store_close(s);
	}
}

static void test_store_db__transactions(void **state)
{
	fixture *f = *state;
	ward_store *s = tu_open(f->home, WARD_STORE_SIGN);
	ward_store *ro = tu_open(f->home, 0);
	tu_counts before = tu_counts_get(f->home), after;

	assert_int_equal(ward_store_commit(s), WARD_EINVAL);
	ward_store_rollback(s); /* none open: harmless */
	assert_int_equal(ward_store_begin(s), 0);
	assert_int_equal(ward_store_begin(s), WARD_EINVAL);
	ward_store_rollback(s);
	/* a transaction without events commits without a checkpoint */
	assert_int_equal(ward_store_begin(s), 0);
	assert_int_equal(ward_store_commit(s), 0);
	after = tu_counts_get(f->home);
	assert_memory_equal(&after, &before, sizeof(after));
	/* an event appended and rolled back leaves nothing */
	{
		ward_actor a = tu_actor("x");
		assert_int_equal(ward_store_begin(s), 0);
		assert_int_equal(ward_audit_append(s, &a, "test.event", "x", NULL), 0);
		ward_store_rollback(s);
		after = tu_counts_get(f->home);
		assert_memory_equal(&after, &before, sizeof(after));
		/* closing with a transaction open rolls it back */
		assert_int_equal(ward_store_begin(s), 0);
		assert_int_equal(ward_audit_append(s, &a, "test.event", "x", NULL), 0);
	}
	ward_store_close(s);
	after = tu_counts_get(f->home);
	assert_memory_equal(&after, &before, sizeof(after));
	/* read-only: no write transactions */
	assert_int_equal(ward_store_begin(ro), WARD_EINVAL);
	ward_store_close(ro);
	assert_int_equal(tu_verify_home(f->home, NULL, NULL), 0);
}

static void test_store_db__busy(void **state)
{
	fixture *f = *state;
	ward_store *s = tu_open(f->home, WARD_STORE_SIGN);
	sqlite3 *other = tu_raw_open(f->home);
	char err[256];
	tu_counts before;

	/* the store waits WARD_DB_BUSY_TIMEOUT_MS; shorten it so the test is quick */
	assert_int_equal(sqlite3_busy_timeout(s->db, 100), SQLITE_OK);
	assert_int_equal(exec_on(other, "BEGIN IMMEDIATE", err, sizeof(err)), SQLITE_OK);
	before = tu_counts_get(f->home); /* readers are not blocked in WAL mode */
	assert_int_equal(request(s, "busy", "https://busy.example/"), WARD_EBUSY);
	assert_true(tu_error_has("busy"));
	{
		ward_actor a = tu_actor("bob");
		assert_int_equal(ward_sources_decide(s, &a, 1, WARD_DECIDE_APPROVE, NULL), WARD_EBUSY);
	}
	/* reads still work while the other writer holds the lock */
	{
		ward_source *list = NULL;
		size_t n = 0;
		assert_int_equal(ward_sources_list(s, NULL, &list, &n), 0);
		ward_sources_free(list, n);
	}
	assert_int_equal(exec_on(other, "ROLLBACK", err, sizeof(err)), SQLITE_OK);
	{
		tu_counts after = tu_counts_get(f->home);
		assert_memory_equal(&after, &before, sizeof(after));
	}
	/* once released, the same write goes through */
	assert_int_equal(request(s, "busy", "https://busy.example/"), 0);
	sqlite3_close(other);
	ward_store_close(s);
	assert_int_equal(tu_verify_home(f->home, NULL, NULL), 0);
}

static int wal_warnings;

static void wal_sink(void *ctx, ward_log_level level, const char *msg)
{
	(void)ctx;
	if (level == WARD_LOG_WARN && strstr(msg, "store.db-wal") && strstr(msg, "wal_limit_mb"))
		wal_warnings++;
}

/* T41: a reader holding an old snapshot lets the WAL grow past
 * store.wal_limit_mb, and the writer's close says so; once the reader lets
 * go, the next writes cut the file back to the limit (without
 * journal_size_limit the file would keep its largest size). An idle
 * connection stays open throughout, as the server's pool does: the last
 * connection to close would checkpoint and delete the WAL, limit or not. */
static void test_store_db__long_reader_wal_bounded(void **state)
{
	fixture *f = *state;
	const int64_t limit = 1 << 20;
	char *cfg = tu_path(f->home, "config.yaml"), uri[96], err[256];
	char *text = malloc(8192);
	sqlite3 *reader, *keeper;
	ward_store *s;
	int64_t src, wal = 0;
	int i;

	assert_non_null(text);
	for (i = 0; i < 8191; i++) /* words of 7 letters, different per document below */
		text[i] = (i % 8 == 7) ? ' ' : (char)('a' + (i * 7 + i / 8) % 26);
	text[8191] = '\0';
	tu_write_str(cfg, "store:\n  wal_limit_mb: 1\n");
	s = tu_open(f->home, WARD_STORE_SIGN);
	assert_int_equal(s->config.wal_limit_bytes, limit);
	src = tu_add_source(s, "docs", "https://docs.example.com/", NULL);

	keeper = tu_raw_open(f->home);
	assert_true(int_on(keeper, "SELECT count(*) FROM sources") >= 1); /* it has the WAL open now */
	reader = tu_raw_open(f->home);
	assert_int_equal(exec_on(reader, "BEGIN", err, sizeof(err)), SQLITE_OK);
	assert_true(int_on(reader, "SELECT count(*) FROM sources") >= 1); /* the snapshot is taken here */
	for (i = 0; i < 300; i++) {
		snprintf(uri, sizeof(uri), "https://docs.example.com/page/%d", i);
		text[0] = (char)('a' + i % 26);
		tu_add_doc(s, src, uri, "Page", text);
	}
	assert_int_equal(ward_store_wal_bytes(s, &wal), 0);
	assert_true(wal > 2 * limit);
	wal_warnings = 0;
	ward_log_set_sink(wal_sink, NULL, WARD_LOG_DEBUG);
	ward_store_close(s);
	ward_log_set_sink(NULL, NULL, WARD_LOG_DEBUG);
	assert_int_equal(wal_warnings, 1);

	assert_int_equal(exec_on(reader, "COMMIT", err, sizeof(err)), SQLITE_OK);
	sqlite3_close(reader);
	s = tu_open(f->home, WARD_STORE_SIGN);
	for (i = 0; i < 3; i++) { /* a checkpoint that catches up, then the restart */
		snprintf(uri, sizeof(uri), "https://docs.example.com/after/%d", i);
		tu_add_doc(s, src, uri, "After", "a short page written after the reader let go");
	}
	assert_int_equal(ward_store_wal_bytes(s, &wal), 0);
	assert_true(wal <= limit);
	ward_store_close(s);
	sqlite3_close(keeper);
	free(cfg);
	free(text);
	assert_int_equal(tu_verify_home(f->home, NULL, NULL), 0);
}

static void test_store_db__wal_limit_config_checked(void **state)
{
	fixture *f = *state;
	char *cfg = tu_path(f->home, "config.yaml");
	static const char *const bad[] = {"store:\n  wal_limit_mb: 0\n", "store:\n  wal_limit_mb: 4097\n",
	                                  "store:\n  wal_limit_mb: \"64\"\n", "store:\n  wal_limit_mb: 1.5\n",
	                                  "store:\n  wal_limt_mb: 64\n", "store: 64\n"};
	ward_store *s = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tu_write_str(cfg, bad[i]);
		assert_int_equal(ward_store_open(&s, f->home, 0), WARD_EINVAL);
		assert_null(s);
		assert_true(tu_error_has("store"));
	}
	tu_write_str(cfg, "store:\n  wal_limit_mb: 4096\n");
	s = tu_open(f->home, 0);
	assert_int_equal(s->config.wal_limit_bytes, 4096LL << 20);
	ward_store_close(s);
	tu_write_str(cfg, "store:\n  wal_limit_mb: 2\n");
	s = tu_open(f->home, WARD_STORE_RW); /* a writer applies it */
	assert_int_equal(int_on(s->db, "PRAGMA journal_size_limit"), 2 << 20);
	ward_store_close(s);
	unlink(cfg); /* the default */
	s = tu_open(f->home, WARD_STORE_SIGN);
	assert_int_equal(int_on(s->db, "PRAGMA journal_size_limit"), WARD_WAL_LIMIT_MB_DEFAULT << 20);
	ward_store_close(s);
	free(cfg);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(test_store_db__##name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(schema),
		T(newer_schema_refused),
		T(older_schema_read_only_refused),
		T(foreign_sqlite_file_refused),
		T(foreign_sqlite_file_unchanged),
		T(garbage_and_odd_files_refused),
		T(defensive),
		T(planted_schema_not_run),
		T(pragmas),
		T(transactions),
		T(busy),
		T(long_reader_wal_bounded),
		T(wal_limit_config_checked),
	};
#undef T

	ward_alloc_install_jansson();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
