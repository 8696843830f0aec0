/*
 * Tests for store/audit.c: one event per governance change, and the verifier
 * against an attacker who edits the database file directly (security-controls
 * §5 "What verification must detect", T46, T49, T50).
 *
 * The attacker's view is a plain sqlite3 connection to HOME/store.db without
 * the store's hardening; the append-only triggers are dropped first, as an
 * attacker would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/audit.h"
#include "ragward/crypto.h"
#include "ragward/keys.h"
#include "ragward/sources.h"
#include "ragward/store.h"
#include "tests/support/testutil.h"
#include "core/banned.h"

/*
 * The log every tampering test starts from: init (2 events, one checkpoint
 * at size 2), four requests and two approvals, each its own commit: 8 events,
 * 7 checkpoints at sizes 2..8, anchor at size 8.
 */
#define LOG_EVENTS 8
#define LOG_CHECKPOINTS 7

typedef struct {
	char *home;
	char key_id[33];
} fixture;

static void request(ward_store *s, const char *by, const char *name, const char *pattern, int64_t *id)
{
	ward_actor a = tu_actor(by);
	ward_source_request r;

	memset(&r, 0, sizeof(r));
	r.name = name;
	r.pattern = pattern;
	r.trust = WARD_TRUST_STANDARD;
	if (ward_sources_request(s, &a, &r, id) != 0)
		fail_msg("request: %s", ward_error_last()->message);
}

static void approve(ward_store *s, const char *by, int64_t id)
{
	ward_actor a = tu_actor(by);

	if (ward_sources_decide(s, &a, id, WARD_DECIDE_APPROVE, NULL) != 0)
		fail_msg("approve: %s", ward_error_last()->message);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	ward_store *s;
	int64_t ids[4];
	static const char *const names[4] = {"one", "two", "three", "four"};
	static const char *const patterns[4] = {"https://one.example/", "https://two.example/",
						"https://three.example/", "/srv/four"};

	if (!f)
		return -1;
	f->home = tu_home_path("audit");
	tu_init(f->home, f->key_id);
	s = tu_open(f->home, WARD_STORE_SIGN);
	for (int i = 0; i < 4; i++)
		request(s, "alice", names[i], patterns[i], &ids[i]);
	approve(s, "bob", ids[0]);
	approve(s, "bob", ids[1]);
	ward_store_close(s);
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

/* Runs verify and asserts a failure line (object, problem) is in it. */
static void expect_detected(const char *home, const char *extra, const char *object, const char *problem)
{
	ward_audit_report r;
	size_t n = tu_verify_home(home, extra, &r);

	if (n == 0)
		fail_msg("tampering not detected (wanted '%s': '%s')", object ? object : "*", problem);
	if (!tu_report_has(&r, object, problem)) {
		tu_report_print(&r);
		ward_audit_report_dispose(&r);
		fail_msg("no failure '%s': '...%s...'", object ? object : "*", problem);
	}
	ward_audit_report_dispose(&r);
}

/* Executes one statement with ?1 bound to a blob on a raw connection. */
static void raw_exec_blob(const char *home, const char *sql, const void *blob, size_t len)
{
	sqlite3 *db = tu_raw_open(home);
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("prepare '%s': %s", sql, sqlite3_errmsg(db));
	sqlite3_bind_blob(st, 1, blob, (int)len, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		fail_msg("step '%s': %s", sql, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void raw_insert_checkpoint(const char *home, const ward_checkpoint *c)
{
	sqlite3 *db = tu_raw_open(home);
	sqlite3_stmt *st = NULL;

	assert_int_equal(sqlite3_prepare_v2(db,
					    "INSERT INTO checkpoints(tree_size, root, at, key_id, signature)"
					    " VALUES (?1, ?2, ?3, ?4, ?5)",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)c->size);
	sqlite3_bind_blob(st, 2, c->root, 32, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, c->time, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, c->key_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 5, c->signature, 64, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		fail_msg("insert checkpoint: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* The latest stored checkpoint, through the library. */
static void latest_checkpoint(const char *home, ward_checkpoint *c)
{
	ward_store *s = tu_open(home, 0);

	if (ward_audit_checkpoint(s, c) != 0)
		fail_msg("checkpoint: %s", ward_error_last()->message);
	ward_store_close(s);
}

/* Signs the body of `c` (the text form up to the blank line) with `k`. */
static void sign_checkpoint(ward_checkpoint *c, const ward_key *k)
{
	char *text = NULL, *end;

	assert_int_equal(ward_checkpoint_format(&text, c), 0);
	end = strstr(text, "\n\nsignature ");
	assert_non_null(end);
	assert_int_equal(ward_sign(c->signature, k, text, (size_t)(end - text) + 1), 0);
	ward_free(text);
}

static ward_key *load_store_key(const fixture *f)
{
	char name[64];
	char *p;
	ward_key *k = NULL;

	snprintf(name, sizeof(name), "keys/%s.key", f->key_id);
	p = tu_path(f->home, name);
	assert_int_equal(ward_keys_load_private(&k, p), 0);
	free(p);
	return k;
}

/* Exports the latest checkpoint to a file next to the home; returns its path. */
static char *export_checkpoint(const char *home)
{
	ward_checkpoint c;
	char *text = NULL, *dir = tu_path(home, ".."), *path = tu_path(dir, "exported.checkpoint");

	latest_checkpoint(home, &c);
	assert_int_equal(ward_checkpoint_format(&text, &c), 0);
	tu_write_str(path, text);
	ward_free(text);
	free(dir);
	return path;
}

/* ---- one event per change --------------------------------------------------- */

static void test_store_audit__one_event_per_change(void **state)
{
	fixture *f = *state;
	ward_store *s = tu_open(f->home, WARD_STORE_SIGN);
	ward_audit_event *ev = NULL;
	size_t n = 0;
	int64_t id;
	tu_counts c0, c1;
	ward_actor bob = tu_actor("bob");
	static const char *const setup_actions[LOG_EVENTS] = {
		"store.init",     "key.create",     "source.request", "source.request",
		"source.request", "source.request", "source.approve", "source.approve"};

	assert_int_equal(ward_audit_list(s, 0, &ev, &n), 0);
	assert_int_equal(n, LOG_EVENTS);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(ev[i].seq, (int64_t)i + 1);
		assert_string_equal(ev[i].action, setup_actions[i]);
		assert_int_equal(ev[i].uid, (long)geteuid());
		assert_non_null(ev[i].time);
		assert_int_equal(strlen(ev[i].time), 20);
	}
	assert_string_equal(ev[0].actor, "admin");
	assert_string_equal(ev[1].subject, f->key_id);
	assert_string_equal(ev[2].subject, "source:1");
	assert_string_equal(ev[6].actor, "bob");
	ward_audit_events_free(ev, n);
	assert_int_equal(tu_count_rows(f->home, "checkpoints"), LOG_CHECKPOINTS);

	/* each decision: exactly one event and one checkpoint */
	static const ward_decision d[] = {WARD_DECIDE_REVOKE, WARD_DECIDE_APPROVE, WARD_DECIDE_REJECT};
	static const int64_t target[] = {1, 1, 3};
	static const char *const act[] = {"source.revoke", "source.approve", "source.reject"};
	for (int i = 0; i < 3; i++) {
		c0 = tu_counts_get(f->home);
		assert_int_equal(ward_sources_decide(s, &bob, target[i], d[i], "n"), 0);
		c1 = tu_counts_get(f->home);
		assert_int_equal(c1.events, c0.events + 1);
		assert_int_equal(c1.checkpoints, c0.checkpoints + 1);
		assert_int_equal(ward_audit_list(s, 1, &ev, &n), 0);
		assert_string_equal(ev[0].action, act[i]);
		ward_audit_events_free(ev, n);
	}
	/* a refused change: no event */
	c0 = tu_counts_get(f->home);
	assert_int_equal(ward_sources_decide(s, &bob, 3, WARD_DECIDE_APPROVE, NULL), WARD_ESTATE);
	c1 = tu_counts_get(f->home);
	assert_memory_equal(&c0, &c1, sizeof(c0));

	request(s, "alice", "five", "https://five.example/", &id);
	assert_int_equal(tu_count_rows(f->home, "audit_events"), c0.events + 1);

	/* import of two new sources: two per-source events and one summary */
	{
		char *dir = tu_path(f->home, ".."), *p = tu_path(dir, "s.yaml");
		ward_import_result res;
		tu_write_str(p, "version: 1\nsources:\n  - {name: six, pattern: 'https://six.example/'}\n"
				"  - {name: seven, pattern: 'https://seven.example/'}\n"
				"  - {name: one, pattern: 'https://one.example/'}\n");
		c0 = tu_counts_get(f->home);
		assert_int_equal(ward_sources_import(s, &bob, p, &res), 0);
		assert_int_equal(res.added, 2);
		c1 = tu_counts_get(f->home);
		assert_int_equal(c1.events, c0.events + 3);
		assert_int_equal(c1.checkpoints, c0.checkpoints + 1);
		assert_int_equal(ward_audit_list(s, 3, &ev, &n), 0);
		assert_string_equal(ev[0].action, "source.import");
		assert_string_equal(ev[1].action, "source.import");
		assert_string_equal(ev[2].action, "sources.import");
		ward_audit_events_free(ev, n);
		free(p);
		free(dir);
	}
	/* key rotation: one event */
	{
		char nk[33];
		c0 = tu_counts_get(f->home);
		assert_int_equal(ward_keys_rotate(s, &bob, nk), 0);
		c1 = tu_counts_get(f->home);
		assert_int_equal(c1.events, c0.events + 1);
		assert_int_equal(c1.checkpoints, c0.checkpoints + 1);
		assert_int_equal(ward_audit_list(s, 1, &ev, &n), 0);
		assert_string_equal(ev[0].action, "key.rotate");
		assert_string_equal(ev[0].subject, nk);
		ward_audit_events_free(ev, n);
	}
	/* audit list limits */
	assert_int_equal(ward_audit_list(s, 2, &ev, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ev[1].seq, tu_count_rows(f->home, "audit_events"));
	ward_audit_events_free(ev, n);
	assert_int_equal(tu_verify(s, NULL, NULL), 0);
	ward_store_close(s);
}

static void test_store_audit__append_outside_transaction_refused(void **state)
{
	fixture *f = *state;
	ward_store *s = tu_open(f->home, WARD_STORE_SIGN);
	ward_actor a = tu_actor("x");

	assert_int_equal(ward_audit_append(s, &a, "test", "x", NULL), WARD_EINVAL);
	ward_store_close(s);
	assert_int_equal(tu_count_rows(f->home, "audit_events"), LOG_EVENTS);
}

static void test_store_audit__verify_fresh_ok(void **state)
{
	fixture *f = *state;
	ward_audit_report r;
	char *exported = export_checkpoint(f->home);
	ward_store *s = tu_open(f->home, 0);

	assert_int_equal(tu_verify(s, exported, &r), 0);
	assert_int_equal(r.events, LOG_EVENTS);
	assert_int_equal(r.checkpoints, LOG_CHECKPOINTS);
	assert_int_equal(r.anchors_checked, 2);
	ward_audit_report_dispose(&r);
	ward_store_close(s);

	/* a brand-new store verifies too */
	{
		char *home = tu_new_home("audit-new");
		assert_int_equal(tu_verify_home(home, NULL, &r), 0);
		assert_int_equal(r.events, 2);
		assert_int_equal(r.anchors_checked, 1);
		ward_audit_report_dispose(&r);
		tu_home_free(home);
	}
	/* a missing extra anchor is an error, not a silent pass */
	s = tu_open(f->home, 0);
	{
		char *missing = tu_path(f->home, "no-such.checkpoint");
		assert_true(ward_audit_verify(s, missing, &r) < 0);
		ward_audit_report_dispose(&r);
		free(missing);
	}
	ward_store_close(s);
	free(exported);
}

/* ---- tampering ---------------------------------------------------------------- */

static void test_store_audit__append_only_triggers(void **state)
{
	fixture *f = *state;
	char err[512];
	static const char *const sql[] = {
		"UPDATE audit_events SET actor = 'mallory' WHERE seq = 3",
		"DELETE FROM audit_events WHERE seq = 8",
		"DELETE FROM audit_events",
		"UPDATE checkpoints SET tree_size = 1 WHERE id = 1",
		"DELETE FROM checkpoints WHERE id = 7",
	};

	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		assert_int_equal(tu_raw_exec(f->home, sql[i], err, sizeof(err)), SQLITE_CONSTRAINT);
		assert_non_null(strstr(err, "append-only"));
	}
	assert_int_equal(tu_count_rows(f->home, "audit_events"), LOG_EVENTS);
	assert_int_equal(tu_count_rows(f->home, "checkpoints"), LOG_CHECKPOINTS);
	assert_int_equal(tu_verify_home(f->home, NULL, NULL), 0);
}

static void test_store_audit__edit_field(void **state)
{
	fixture *f = *state;

	tu_drop_audit_triggers(f->home);
	tu_raw_exec_ok(f->home, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 4");
	expect_detected(f->home, NULL, "event 4", "leaf hash mismatch");
	expect_detected(f->home, NULL, "checkpoint", "root mismatch at size 4");
	expect_detected(f->home, NULL, "anchor", "inconsistent with anchored checkpoint");
}

static void test_store_audit__edit_details_and_uid(void **state)
{
	fixture *f = *state;

	tu_drop_audit_triggers(f->home);
	tu_raw_exec_ok(f->home, "UPDATE audit_events SET details = replace(details, 'three', 'evil') WHERE seq = 5");
	expect_detected(f->home, NULL, "event 5", "leaf hash mismatch");
	tu_raw_exec_ok(f->home, "UPDATE audit_events SET details = replace(details, 'evil', 'three') WHERE seq = 5");
	assert_int_equal(tu_verify_home(f->home, NULL, NULL), 0);
	tu_raw_exec_ok(f->home, "UPDATE audit_events SET uid = uid + 1 WHERE seq = 2");
	expect_detected(f->home, NULL, "event 2", "leaf hash mismatch");
}

/* The attacker recomputes the leaf hash of the edited row: the tree catches it. */
static void test_store_audit__edit_with_forged_leaf(void **state)
{
	fixture *f = *state;
	uint8_t leaf[32];
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	char *at, *action, *subject, *details;
	long uid;

	tu_drop_audit_triggers(f->home);
	db = tu_raw_open(f->home);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT at, uid, action, subject, details FROM audit_events WHERE seq = 7",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	at = strdup((const char *)sqlite3_column_text(st, 0));
	uid = (long)sqlite3_column_int64(st, 1);
	action = strdup((const char *)sqlite3_column_text(st, 2));
	subject = strdup((const char *)sqlite3_column_text(st, 3));
	details = strdup((const char *)sqlite3_column_text(st, 4));
	sqlite3_finalize(st);
	sqlite3_close(db);

	tu_event_leaf(leaf, 7, at, "carol", uid, action, subject, details);
	tu_raw_exec_ok(f->home, "UPDATE audit_events SET actor = 'carol' WHERE seq = 7");
	raw_exec_blob(f->home, "UPDATE audit_events SET leaf_hash = ?1 WHERE seq = 7", leaf, 32);
	{
		ward_audit_report r;
		assert_true(tu_verify_home(f->home, NULL, &r) > 0);
		assert_false(tu_report_has(&r, "event 7", "leaf hash")); /* the forged leaf is consistent */
		assert_true(tu_report_has(&r, "checkpoint", "root mismatch at size 7"));
		assert_true(tu_report_has(&r, "checkpoint", "root mismatch at size 8"));
		assert_true(tu_report_has(&r, "anchor", "inconsistent with anchored checkpoint"));
		ward_audit_report_dispose(&r);
	}
	free(at);
	free(action);
	free(subject);
	free(details);
}

static void test_store_audit__delete_row(void **state)
{
	fixture *f = *state;

	tu_drop_audit_triggers(f->home);
	tu_raw_exec_ok(f->home, "DELETE FROM audit_events WHERE seq = 4");
	expect_detected(f->home, NULL, "event 4", "missing");
	expect_detected(f->home, NULL, "checkpoint", "log shrank");
	expect_detected(f->home, NULL, "anchor", "log shrank from 8 to 7");
}

/* Swaps everything but seq between rows 3 and 4. */
static void swap_rows(const char *home)
{
	tu_raw_exec_ok(home,
		       "CREATE TEMP TABLE t AS SELECT * FROM audit_events WHERE seq IN (3, 4);"
		       "UPDATE audit_events SET (at, actor, uid, action, subject, details, leaf_hash) ="
		       " (SELECT at, actor, uid, action, subject, details, leaf_hash FROM t"
		       "  WHERE t.seq = 7 - audit_events.seq) WHERE seq IN (3, 4);");
}

static void test_store_audit__swap_rows(void **state)
{
	fixture *f = *state;

	tu_drop_audit_triggers(f->home);
	swap_rows(f->home);
	expect_detected(f->home, NULL, "event 3", "leaf hash mismatch");
	expect_detected(f->home, NULL, "event 4", "leaf hash mismatch");
	expect_detected(f->home, NULL, "checkpoint", "root mismatch");
}

/* Reordered with leaf hashes recomputed for their new positions. */
static void test_store_audit__swap_rows_forged_leaves(void **state)
{
	fixture *f = *state;
	sqlite3 *db;
	sqlite3_stmt *st = NULL;

	tu_drop_audit_triggers(f->home);
	swap_rows(f->home);
	db = tu_raw_open(f->home);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT seq, at, actor, uid, action, subject, details FROM audit_events"
					    " WHERE seq IN (3, 4)",
					    -1, &st, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		uint8_t leaf[32];
		sqlite3_stmt *up = NULL;
		tu_event_leaf(leaf, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
			      (const char *)sqlite3_column_text(st, 2), (long)sqlite3_column_int64(st, 3),
			      (const char *)sqlite3_column_text(st, 4), (const char *)sqlite3_column_text(st, 5),
			      (const char *)sqlite3_column_text(st, 6));
		assert_int_equal(sqlite3_prepare_v2(db, "UPDATE audit_events SET leaf_hash = ?1 WHERE seq = ?2", -1,
						    &up, NULL),
				 SQLITE_OK);
		sqlite3_bind_blob(up, 1, leaf, 32, SQLITE_TRANSIENT);
		sqlite3_bind_int64(up, 2, sqlite3_column_int64(st, 0));
		assert_int_equal(sqlite3_step(up), SQLITE_DONE);
		sqlite3_finalize(up);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	{
		ward_audit_report r;
		assert_true(tu_verify_home(f->home, NULL, &r) > 0);
		assert_false(tu_report_has(&r, NULL, "leaf hash mismatch"));
		assert_true(tu_report_has(&r, "checkpoint", "root mismatch at size 4"));
		assert_true(tu_report_has(&r, "anchor", "inconsistent"));
		ward_audit_report_dispose(&r);
	}
}

static void test_store_audit__insert_row_with_valid_leaf(void **state)
{
	fixture *f = *state;
	uint8_t leaf[32];
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	const char *details = "{\"name\":\"evil\",\"pattern\":\"https://evil.example/\"}";

	tu_drop_audit_triggers(f->home);
	tu_event_leaf(leaf, 9, "2026-01-01T00:00:00Z", "bob", 1000, "source.approve", "source:4", details);
	db = tu_raw_open(f->home);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "INSERT INTO audit_events(seq, at, actor, uid, action, subject, details,"
					    " leaf_hash) VALUES (9, '2026-01-01T00:00:00Z', 'bob', 1000, 'source.approve',"
					    " 'source:4', ?1, ?2)",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, details, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, leaf, 32, SQLITE_TRANSIENT);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	{
		ward_audit_report r;
		assert_true(tu_verify_home(f->home, NULL, &r) > 0);
		assert_false(tu_report_has(&r, NULL, "leaf hash mismatch"));
		assert_true(tu_report_has(&r, "events 9-9", "not covered by any signed checkpoint"));
		ward_audit_report_dispose(&r);
	}
}

static void test_store_audit__truncate_tail(void **state)
{
	fixture *f = *state;

	tu_drop_audit_triggers(f->home);
	tu_raw_exec_ok(f->home, "DELETE FROM audit_events WHERE seq > 6");
	/* the covering checkpoints are still there */
	expect_detected(f->home, NULL, "checkpoint 6", "log shrank from 7 to 6");
	expect_detected(f->home, NULL, "checkpoint 7", "log shrank from 8 to 6");
	expect_detected(f->home, NULL, "anchor", "log shrank from 8 to 6");
	/* and without them: the anchor outside the database still knows */
	tu_raw_exec_ok(f->home, "DELETE FROM checkpoints WHERE tree_size > 6");
	{
		ward_audit_report r;
		assert_true(tu_verify_home(f->home, NULL, &r) > 0);
		assert_false(tu_report_has(&r, "checkpoint", NULL));
		assert_true(tu_report_has(&r, "anchor", "log shrank from 8 to 6"));
		ward_audit_report_dispose(&r);
	}
}

static void test_store_audit__truncate_and_delete_anchor(void **state)
{
	fixture *f = *state;
	char *exported = export_checkpoint(f->home);
	char *anchor = tu_path(f->home, "anchor.checkpoint");

	tu_drop_audit_triggers(f->home);
	tu_raw_exec_ok(f->home, "DELETE FROM audit_events WHERE seq > 6; DELETE FROM checkpoints WHERE tree_size > 6");
	assert_int_equal(unlink(anchor), 0);
	/* Known limit: with every trace inside the home gone, the home alone
	 * cannot tell. This is why checkpoints are exported. */
	assert_int_equal(tu_verify_home(f->home, NULL, NULL), 0);
	expect_detected(f->home, exported, "checkpoint file", "log shrank from 8 to 6");
	free(anchor);
	free(exported);
}

/* T49: the attacker truncates, removes the anchor, then writes new events
 * (with the key) so the log is as long as before: only the exported
 * checkpoint tells. */
static void test_store_audit__truncate_then_regrow(void **state)
{
	fixture *f = *state;
	char *exported = export_checkpoint(f->home);
	char *anchor = tu_path(f->home, "anchor.checkpoint");
	ward_store *s;
	int64_t id;

	tu_drop_audit_triggers(f->home);
	tu_raw_exec_ok(f->home, "DELETE FROM audit_events WHERE seq > 6; DELETE FROM checkpoints WHERE tree_size > 6;"
				"DELETE FROM meta WHERE key = 'audit_frontier'; UPDATE sources SET state = 'requested',"
				" decided_by = NULL, decided_uid = NULL, decided_at = NULL WHERE id = 2");
	assert_int_equal(unlink(anchor), 0);
	s = tu_open(f->home, WARD_STORE_SIGN);
	request(s, "mallory", "evil", "https://evil.example/", &id);
	approve(s, "mallory2", id);
	ward_store_close(s);
	assert_int_equal(tu_count_rows(f->home, "audit_events"), LOG_EVENTS);
	assert_int_equal(tu_verify_home(f->home, NULL, NULL), 0);
	expect_detected(f->home, exported, "checkpoint file", "inconsistent with anchored checkpoint at size 8");
	free(anchor);
	free(exported);
}

static const char *const db_files[] = {"store.db", "store.db-wal", "store.db-shm"};

static void backup_db(const char *home, const char *suffix)
{
	for (int i = 0; i < 3; i++) {
		char *src = tu_path(home, db_files[i]);
		char *dst = malloc(strlen(src) + strlen(suffix) + 1);
		assert_non_null(dst);
		memcpy(dst, src, strlen(src));
		memcpy(dst + strlen(src), suffix, strlen(suffix) + 1);
		if (tu_copy_file(src, dst) != 0)
			unlink(dst);
		free(src);
		free(dst);
	}
}

static void restore_db(const char *home, const char *suffix)
{
	for (int i = 0; i < 3; i++) {
		char *dst = tu_path(home, db_files[i]);
		char *src = malloc(strlen(dst) + strlen(suffix) + 1);
		assert_non_null(src);
		memcpy(src, dst, strlen(dst));
		memcpy(src + strlen(dst), suffix, strlen(suffix) + 1);
		unlink(dst);
		tu_copy_file(src, dst); /* absent in the backup: stays absent */
		free(src);
		free(dst);
	}
}

static void make_changes_after_backup(const fixture *f)
{
	ward_store *s = tu_open(f->home, WARD_STORE_SIGN);
	ward_actor bob = tu_actor("bob");

	assert_int_equal(ward_sources_decide(s, &bob, 3, WARD_DECIDE_APPROVE, NULL), 0);
	assert_int_equal(ward_sources_decide(s, &bob, 1, WARD_DECIDE_REVOKE, NULL), 0);
	ward_store_close(s);
}

static void test_store_audit__restore_older_copy(void **state)
{
	fixture *f = *state;

	backup_db(f->home, ".bak"); /* the store is closed: the files are consistent */
	make_changes_after_backup(f);
	assert_int_equal(tu_verify_home(f->home, NULL, NULL), 0);
	restore_db(f->home, ".bak");
	assert_int_equal(tu_count_rows(f->home, "audit_events"), LOG_EVENTS);
	expect_detected(f->home, NULL, "anchor", "log shrank from 10 to 8");
	expect_detected(f->home, NULL, "anchor", "rolled back");
}

/*
 * T49: "the service refuses to sign a new checkpoint that is inconsistent".
 * After an older database is restored, the next write must not quietly
 * replace the anchor that proves the rollback: either the write is refused
 * or verify still reports the rollback afterwards.
 */
static void test_store_audit__write_after_rollback_keeps_evidence(void **state)
{
	fixture *f = *state;
	ward_store *s;
	ward_actor bob = tu_actor("bob");
	int rc;

	backup_db(f->home, ".bak");
	make_changes_after_backup(f);
	restore_db(f->home, ".bak");
	s = tu_open(f->home, WARD_STORE_SIGN);
	/* three changes: the rolled-back log grows past the anchored size */
	rc = ward_sources_decide(s, &bob, 3, WARD_DECIDE_APPROVE, NULL);
	if (rc == 0)
		rc = ward_sources_decide(s, &bob, 4, WARD_DECIDE_APPROVE, NULL);
	if (rc == 0)
		rc = ward_sources_decide(s, &bob, 1, WARD_DECIDE_REVOKE, NULL);
	ward_store_close(s);
	if (rc == 0)
		expect_detected(f->home, NULL, "anchor", "inconsistent with anchored checkpoint");
	else
		expect_detected(f->home, NULL, "anchor", "log shrank");
}

static void test_store_audit__checkpoint_signature_bit_flip(void **state)
{
	fixture *f = *state;
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	uint8_t sig[64];

	tu_drop_audit_triggers(f->home);
	db = tu_raw_open(f->home);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT signature FROM checkpoints WHERE id = 3", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_bytes(st, 0), 64);
	memcpy(sig, sqlite3_column_blob(st, 0), 64);
	sqlite3_finalize(st);
	sqlite3_close(db);
	sig[17] ^= 0x04;
	raw_exec_blob(f->home, "UPDATE checkpoints SET signature = ?1 WHERE id = 3", sig, 64);
	expect_detected(f->home, NULL, "checkpoint 3", "signature invalid");
	{
		ward_audit_report r;
		tu_verify_home(f->home, NULL, &r);
		assert_int_equal(r.nfailures, 1); /* nothing else is wrong */
		ward_audit_report_dispose(&r);
	}
	/* the signed time is covered too */
	sig[17] ^= 0x04;
	raw_exec_blob(f->home, "UPDATE checkpoints SET signature = ?1 WHERE id = 3", sig, 64);
	assert_int_equal(tu_verify_home(f->home, NULL, NULL), 0);
	tu_raw_exec_ok(f->home, "UPDATE checkpoints SET at = '2000-01-01T00:00:00Z' WHERE id = 3");
	expect_detected(f->home, NULL, "checkpoint 3", "signature invalid");
	/* a checkpoint naming another known key than the signer fails too */
}

static void test_store_audit__checkpoint_unknown_key(void **state)
{
	fixture *f = *state;
	ward_checkpoint c;
	ward_key *k = NULL;

	latest_checkpoint(f->home, &c);
	assert_int_equal(ward_key_generate(&k), 0);
	assert_int_equal(ward_key_id(k, c.key_id), 0);
	sign_checkpoint(&c, k);
	ward_key_free(k);
	raw_insert_checkpoint(f->home, &c);
	expect_detected(f->home, NULL, "checkpoint 8", "unknown key");
}

static void test_store_audit__split_view(void **state)
{
	fixture *f = *state;
	ward_checkpoint c;
	ward_key *k = load_store_key(f);

	latest_checkpoint(f->home, &c);
	assert_int_equal(c.size, LOG_EVENTS);
	c.root[5] ^= 0x80;
	sign_checkpoint(&c, k); /* a valid signature by the store's own key */
	ward_key_free(k);
	raw_insert_checkpoint(f->home, &c);
	{
		ward_audit_report r;
		assert_true(tu_verify_home(f->home, NULL, &r) > 0);
		assert_true(tu_report_has(&r, "checkpoint 8", "split view: two roots for size 8"));
		assert_false(tu_report_has(&r, NULL, "signature invalid"));
		ward_audit_report_dispose(&r);
	}
}

/* A larger checkpoint that is not an extension of the log (T50). */
static void test_store_audit__checkpoint_not_an_extension(void **state)
{
	fixture *f = *state;
	ward_checkpoint c;
	ward_key *k = load_store_key(f);

	latest_checkpoint(f->home, &c);
	c.size = 5;
	c.root[0] ^= 1;
	sign_checkpoint(&c, k);
	ward_key_free(k);
	raw_insert_checkpoint(f->home, &c);
	expect_detected(f->home, NULL, "checkpoint 8", "smaller than the previous");
	expect_detected(f->home, NULL, "checkpoint 8", "root mismatch at size 5");
}

static void test_store_audit__anchor_tampered(void **state)
{
	fixture *f = *state;
	char *anchor = tu_path(f->home, "anchor.checkpoint");
	size_t len;
	char *text = tu_read_file(anchor, &len);

	assert_non_null(text);
	/* malformed */
	tu_write_str(anchor, "garbage\n");
	expect_detected(f->home, NULL, "anchor", "malformed");
	/* root edited: the signature no longer verifies */
	{
		char *copy = strdup(text);
		char *root_line = copy;
		for (int i = 0; i < 3; i++)
			root_line = strchr(root_line, '\n') + 1;
		root_line[0] = root_line[0] == 'A' ? 'B' : 'A';
		tu_write_str(anchor, copy);
		expect_detected(f->home, NULL, "anchor", "signature invalid");
		free(copy);
	}
	/* another store's checkpoint */
	{
		char *other = tu_new_home("audit-other");
		char *exported = export_checkpoint(other);
		tu_write_str(anchor, text);
		expect_detected(f->home, exported, "checkpoint file", "belongs to another store");
		free(exported);
		tu_home_free(other);
	}
	free(text);
	free(anchor);
}

/* ---- checkpoint text form ------------------------------------------------------ */

static char *genuine_text(const fixture *f, ward_checkpoint *c)
{
	char *text = NULL;

	latest_checkpoint(f->home, c);
	assert_int_equal(ward_checkpoint_format(&text, c), 0);
	return text;
}

/* Replaces line `idx` (0-based) of text with `repl`. malloc'd. */
static char *with_line(const char *text, int idx, const char *repl)
{
	const char *start = text, *end;
	char *out;
	size_t head, tail, rl = strlen(repl);

	for (int i = 0; i < idx; i++)
		start = strchr(start, '\n') + 1;
	end = strchr(start, '\n');
	head = (size_t)(start - text);
	tail = strlen(end);
	out = malloc(head + rl + tail + 1);
	assert_non_null(out);
	memcpy(out, text, head);
	memcpy(out + head, repl, rl);
	memcpy(out + head + rl, end, tail + 1);
	return out;
}

/* 1 when parsing fails with `want`; prints why not otherwise (the caller
 * frees its buffers before asserting, so a failure does not also leak). */
static int parse_refused(const char *text, size_t len, int want, const char *what)
{
	ward_checkpoint c;
	int rc = ward_checkpoint_parse(&c, text, len);

	if (rc != want)
		print_error("%s: want %d, got %d\n", what, want, rc);
	return rc == want;
}

#define expect_parse_refused(text, len, want, what) assert_true(parse_refused(text, len, want, what))

static void test_store_audit__checkpoint_parse(void **state)
{
	fixture *f = *state;
	ward_checkpoint c, p;
	char *text = genuine_text(f, &c), *t, *again = NULL;
	size_t len = strlen(text);
	char big[8 * 1024 + 2];

	/* the documented shape */
	assert_int_equal(strncmp(text, "ragward/checkpoint/v1\n", 22), 0);
	assert_non_null(strstr(text, "\n\nsignature "));
	assert_int_equal(text[len - 1], '\n');

	/* roundtrip */
	assert_int_equal(ward_checkpoint_parse(&p, text, len), 0);
	assert_string_equal(p.store_id, c.store_id);
	assert_int_equal(p.size, c.size);
	assert_memory_equal(p.root, c.root, 32);
	assert_string_equal(p.time, c.time);
	assert_string_equal(p.key_id, c.key_id);
	assert_memory_equal(p.signature, c.signature, 64);
	assert_int_equal(ward_checkpoint_format(&again, &p), 0);
	assert_string_equal(again, text);
	ward_free(again);

	/* trailing and leading garbage */
	t = malloc(len + 3);
	assert_non_null(t);
	memcpy(t, text, len);
	memcpy(t + len, "x", 2);
	expect_parse_refused(t, len + 1, WARD_EINVAL, "trailing byte");
	memcpy(t + len, "\n", 2);
	expect_parse_refused(t, len + 1, WARD_EINVAL, "trailing newline");
	expect_parse_refused(text, len - 1, WARD_EINVAL, "missing final newline");
	t[0] = ' ';
	memcpy(t + 1, text, len + 1);
	expect_parse_refused(t, len + 1, WARD_EINVAL, "leading space");
	/* NUL byte inside */
	memcpy(t, text, len + 1);
	t[10] = '\0';
	expect_parse_refused(t, len, WARD_EINVAL, "NUL byte");
	memcpy(t, text, len + 1);
	t[len] = '\0';
	expect_parse_refused(t, len + 1, WARD_EINVAL, "NUL at end");
	free(t);

	/* missing lines */
	for (int i = 0; i < 7; i++) {
		const char *start = text, *end;
		char *cut;
		size_t head;
		for (int k = 0; k < i; k++)
			start = strchr(start, '\n') + 1;
		end = strchr(start, '\n') + 1;
		head = (size_t)(start - text);
		cut = malloc(len + 1);
		assert_non_null(cut);
		memcpy(cut, text, head);
		memcpy(cut + head, end, strlen(end) + 1);
		{
			int ok = parse_refused(cut, strlen(cut), WARD_EINVAL, "missing line");
			free(cut);
			assert_true(ok);
		}
	}
	expect_parse_refused("", 0, WARD_EINVAL, "empty");

	/* CRLF line ends */
	{
		char *crlf = malloc(2 * len + 1);
		size_t o = 0;
		assert_non_null(crlf);
		for (size_t i = 0; i < len; i++) {
			if (text[i] == '\n')
				crlf[o++] = '\r';
			crlf[o++] = text[i];
		}
		crlf[o] = '\0';
		expect_parse_refused(crlf, o, WARD_EINVAL, "CRLF");
		free(crlf);
	}

	/* line by line */
	{
		static const struct {
			int line;
			const char *repl;
			const char *what;
		} bad[] = {
			{0, "ragward/checkpoint/v2", "wrong tag"},
			{0, "ragward/audit-event/v1", "other tag"},
			{0, "RAGWARD/CHECKPOINT/V1", "tag case"},
			{1, "0123456789abcdef0123456789ABCDEF", "store id upper case"},
			{1, "0123456789abcdef", "store id short"},
			{1, "0123456789abcdef0123456789abcdeg", "store id not hex"},
			{2, "08", "size leading zero"},
			{2, "00", "size zeros"},
			{2, "+8", "size plus"},
			{2, "-8", "size minus"},
			{2, " 8", "size space"},
			{2, "8 ", "size trailing space"},
			{2, "0x8", "size hex"},
			{2, "", "size empty"},
			{2, "18446744073709551617", "size overflow"},
			{2, "1099511627777", "size over the cap"},
			{3, "!!!!", "root bad base64"},
			{3, "AAAA", "root too short"},
			{3, "", "root empty"},
			{4, "2026-01-01T00:00Z", "time wrong length"},
			{4, "2026-01-01T00:00:00.5Z", "time fraction"},
			{4, "2026-01-01T00:00:00+", "time no Z"},
			{5, "x", "no blank line"},
			{6, "signature", "signature no fields"},
			{6, "signature  AAAA", "signature no key id"},
			{6, "sig 0123456789abcdef0123456789abcdef AAAA", "signature keyword"},
			{6, "signature 0123456789abcdef0123456789abcdef !!!!", "signature bad base64"},
			{6, "signature 0123456789abcdef0123456789abcdef AAAA", "signature short"},
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char *m = with_line(text, bad[i].line, bad[i].repl);
			int ok = parse_refused(m, strlen(m), WARD_EINVAL, bad[i].what);
			free(m);
			if (!ok)
				ward_free(text);
			assert_true(ok);
		}
	}
	/* a valid edge: size 0 parses (the empty tree) */
	{
		char *m = with_line(text, 2, "0");
		assert_int_equal(ward_checkpoint_parse(&p, m, strlen(m)), 0);
		assert_int_equal(p.size, 0);
		free(m);
	}

	/* over 8 KiB */
	memset(big, 'a', sizeof(big));
	expect_parse_refused(big, sizeof(big) - 1, WARD_ETOOBIG, "8 KiB + 1");
	{
		/* padding a valid checkpoint past the cap is refused on size alone */
		char *padded = malloc(9000);
		assert_non_null(padded);
		memset(padded, '\n', 9000);
		memcpy(padded, text, len);
		expect_parse_refused(padded, 9000, WARD_ETOOBIG, "padded");
		free(padded);
	}
	/* read_file: the same checks, and no symlinks */
	{
		char *dir = tu_path(f->home, ".."), *p1 = tu_path(dir, "cp.txt"), *p2 = tu_path(dir, "cp-link.txt");
		tu_write_str(p1, text);
		assert_int_equal(ward_checkpoint_read_file(&p, p1), 0);
		assert_int_equal(symlink(p1, p2), 0);
		assert_true(ward_checkpoint_read_file(&p, p2) < 0);
		tu_write_file(p1, big, sizeof(big));
		assert_true(ward_checkpoint_read_file(&p, p1) < 0);
		free(p1);
		free(p2);
		free(dir);
	}
	ward_free(text);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(test_store_audit__##name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(one_event_per_change),
		T(append_outside_transaction_refused),
		T(verify_fresh_ok),
		T(append_only_triggers),
		T(edit_field),
		T(edit_details_and_uid),
		T(edit_with_forged_leaf),
		T(delete_row),
		T(swap_rows),
		T(swap_rows_forged_leaves),
		T(insert_row_with_valid_leaf),
		T(truncate_tail),
		T(truncate_and_delete_anchor),
		T(truncate_then_regrow),
		T(restore_older_copy),
		T(write_after_rollback_keeps_evidence),
		T(checkpoint_signature_bit_flip),
		T(checkpoint_unknown_key),
		T(split_view),
		T(checkpoint_not_an_extension),
		T(anchor_tampered),
		T(checkpoint_parse),
	};
#undef T

	ward_alloc_install_jansson();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
