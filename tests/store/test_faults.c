/*
 * Failure injection (issue 2, security-controls T51): an allocation or a
 * SQLite write failing in the middle of a governance change must leave no
 * half-written change and no orphan audit event.
 *
 * a) Allocation sweep, as curl's torture mode and SQLite's malloc tests do:
 *    for N = 0, 1, 2, ... let the Nth allocation (ward_malloc and jansson)
 *    fail during one change, until the change runs clean. After every failed
 *    run the change reported an error and the store is exactly as before.
 * b) I/O sweep, as SQLite's ioerr tests do: a wrapper VFS (tests/support/
 *    faultvfs.c) makes the Nth xWrite/xSync fail (once, or from then on).
 *    After each run the store, reopened, holds either the state before or
 *    the whole change, never a mix; integrity_check is "ok" and the audit log verifies. The same is
 *    checked on a "crash image" (the files as left on disk at the moment of
 *    the failure, recovered by a fresh connection), which is where a WAL
 *    commit record written before a failed sync can make a change durable
 *    that the caller was told had failed.
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
#include <sqlite3.h>

#include "ragward/alloc.h"
#include "ragward/audit.h"
#include "ragward/keys.h"
#include "ragward/sources.h"
#include "ragward/store.h"
#include "tests/support/faultvfs.h"
#include "tests/support/testutil.h"
#include "core/banned.h"

/* Upper bound on sweep steps, so a change that never succeeds fails the test
 * instead of looping. */
#define MAX_STEPS 5000

typedef struct {
	char *home;
	char *keys_dir;
	ward_store *s;
	int64_t pending; /* a requested source for the approve sweep */
	char *yaml;      /* the import sweep's file */
	char *img;       /* the current crash image, if any */
	int serial;      /* makes names unique across runs */
} fixture;

/* One change under test. `prep` runs with injection off, before the first
 * run and after every run that made the change. */
typedef struct {
	const char *name;
	void (*prep)(fixture *f);
	int (*run)(fixture *f);
	tu_counts delta;
	int key_files; /* key files the change adds */
} change;

static void prep_none(fixture *f)
{
	(void)f;
}

static int run_request(fixture *f)
{
	ward_actor a = tu_actor("alice");
	ward_source_request r;
	char name[32];
	int64_t id;

	snprintf(name, sizeof(name), "req-%d", f->serial);
	memset(&r, 0, sizeof(r));
	r.name = name;
	r.pattern = "https://Req.Example.com/docs/";
	r.labels = "b,a";
	r.reason = "fault sweep";
	return ward_sources_request(f->s, &a, &r, &id);
}

static void prep_request(fixture *f)
{
	f->serial++;
}

static void prep_approve(fixture *f)
{
	ward_actor a = tu_actor("alice");
	ward_source_request r;
	char name[32];

	snprintf(name, sizeof(name), "appr-%d", ++f->serial);
	memset(&r, 0, sizeof(r));
	r.name = name;
	r.pattern = "https://appr.example.com/";
	assert_int_equal(ward_sources_request(f->s, &a, &r, &f->pending), 0);
}

static int run_approve(fixture *f)
{
	ward_actor b = tu_actor("bob");

	return ward_sources_decide(f->s, &b, f->pending, WARD_DECIDE_APPROVE, "looks fine");
}

static void prep_import(fixture *f)
{
	char text[1024];

	f->serial++;
	snprintf(text, sizeof(text),
		 "version: 1\n"
		 "sources:\n"
		 "  - name: imp-%d-a\n    pattern: https://a%d.example/docs/\n    trust: high\n"
		 "    labels: [public, docs]\n    reason: baseline\n"
		 "  - {name: imp-%d-b, pattern: 'http://b%d.example/', kind: http, allow_private: true}\n"
		 "  - {name: imp-%d-c, pattern: /srv/c%d}\n",
		 f->serial, f->serial, f->serial, f->serial, f->serial, f->serial);
	tu_write_str(f->yaml, text);
}

static int run_import(fixture *f)
{
	ward_actor a = tu_actor("importer");
	ward_import_result res;

	return ward_sources_import(f->s, &a, f->yaml, &res);
}

static int run_rotate(fixture *f)
{
	ward_actor a = tu_actor("admin");
	char id[33];

	return ward_keys_rotate(f->s, &a, id);
}

static const change changes[] = {
	{"request", prep_request, run_request, {1, 0, 1, 1}, 0},
	{"approve", prep_approve, run_approve, {0, 0, 1, 1}, 0},
	{"import", prep_import, run_import, {3, 0, 4, 1}, 0},
	{"rotate", prep_none, run_rotate, {0, 1, 1, 1}, 2},
};

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	char *dir;

	if (!f)
		return -1;
	f->home = tu_new_home("faults");
	f->keys_dir = tu_path(f->home, "keys");
	dir = tu_path(f->home, "..");
	f->yaml = tu_path(dir, "sources.yaml");
	free(dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	ward_alloc_fail_reset();
	ward_store_close(f->s);
	tu_home_free(f->img);
	tu_home_free(f->home);
	free(f->keys_dir);
	free(f->yaml);
	free(f);
	return 0;
}

static int counts_equal(tu_counts a, tu_counts b)
{
	return a.sources == b.sources && a.keys == b.keys && a.events == b.events && a.checkpoints == b.checkpoints;
}

static tu_counts counts_add(tu_counts a, tu_counts d)
{
	a.sources += d.sources;
	a.keys += d.keys;
	a.events += d.events;
	a.checkpoints += d.checkpoints;
	return a;
}

/* The active key's private key file exists (a store that committed a
 * rotation must still be able to sign). */
static int active_key_file_exists(const char *home)
{
	sqlite3 *db = tu_raw_open(home);
	sqlite3_stmt *st = NULL;
	char name[64] = "";
	char *keys, *p;
	int ok;

	assert_int_equal(sqlite3_prepare_v2(db, "SELECT key_id FROM keys WHERE state = 'active'", -1, &st, NULL),
			 SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(name, sizeof(name), "%s.key", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	keys = tu_path(home, "keys");
	p = tu_path(keys, name);
	ok = name[0] && access(p, F_OK) == 0;
	free(p);
	free(keys);
	return ok;
}

static int integrity_ok(const char *home)
{
	sqlite3 *db = tu_raw_open(home);
	sqlite3_stmt *st = NULL;
	int ok;

	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	ok = sqlite3_step(st) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ok;
}

/* ---- a) allocation failures --------------------------------------------------- */

static void alloc_sweep(fixture *f, const change *c)
{
	long n;
	int need_prep = 1, odd_codes = 0;

	f->s = tu_open(f->home, WARD_STORE_SIGN);
	for (n = 0; n < MAX_STEPS; n++) {
		tu_counts before, after;
		int keyfiles_before, rc, injected;
		char key_before[33];

		if (need_prep)
			c->prep(f);
		need_prep = 0;
		before = tu_counts_get(f->home);
		keyfiles_before = tu_dir_count(f->keys_dir);
		memcpy(key_before, ward_store_key_id(f->s), 33);

		ward_error_clear();
		ward_alloc_fail_after(n);
		rc = c->run(f);
		injected = ward_alloc_failed();
		ward_alloc_fail_reset();

		after = tu_counts_get(f->home);
		if (rc == 0) {
			/* the whole change, also when an injected failure was
			 * absorbed (e.g. refreshing the anchor after commit) */
			if (!counts_equal(after, counts_add(before, c->delta)))
				fail_msg("%s, fail after %ld: succeeded but counts are off", c->name, n);
			assert_int_equal(tu_dir_count(f->keys_dir), keyfiles_before + c->key_files);
			if (!injected)
				break;
			need_prep = 1;
		} else {
			if (!injected)
				fail_msg("%s, fail after %ld: failed without an injected failure: %d %s", c->name, n, rc,
					 ward_error_last()->message);
			if (!counts_equal(after, before))
				fail_msg("%s, fail after %ld (rc %d, %s): half-written change: sources %ld->%ld keys %ld->%ld"
					 " events %ld->%ld checkpoints %ld->%ld",
					 c->name, n, rc, ward_error_last()->message, before.sources, after.sources,
					 before.keys, after.keys, before.events, after.events, before.checkpoints,
					 after.checkpoints);
			if (tu_dir_count(f->keys_dir) != keyfiles_before)
				fail_msg("%s, fail after %ld: stray key files", c->name, n);
			assert_string_equal(ward_store_key_id(f->s), key_before);
			if (rc != WARD_ENOMEM) {
				odd_codes++;
				if (getenv("RAGWARD_TEST_VERBOSE"))
					print_message("    %s #%ld: %s: %s\n", c->name, n, ward_error_name(rc),
						      ward_error_last()->message);
			}
		}
		if (tu_verify(f->s, NULL, NULL) != 0)
			fail_msg("%s, fail after %ld: audit verify failed", c->name, n);
	}
	assert_true(n < MAX_STEPS);
	print_message("  %s: %ld allocation failure points, all clean (%d reported as another code than ENOMEM)\n",
		      c->name, n, odd_codes);
	/* the store is still usable for signing */
	assert_int_equal(ward_store_quick_check(f->s), 0);
	prep_request(f);
	assert_int_equal(run_request(f), 0);
	assert_int_equal(tu_verify(f->s, NULL, NULL), 0);
	assert_true(active_key_file_exists(f->home));
}

static void test_store_faults__alloc_request(void **state)
{
	alloc_sweep(*state, &changes[0]);
}

static void test_store_faults__alloc_approve(void **state)
{
	alloc_sweep(*state, &changes[1]);
}

static void test_store_faults__alloc_import(void **state)
{
	alloc_sweep(*state, &changes[2]);
}

static void test_store_faults__alloc_rotate(void **state)
{
	alloc_sweep(*state, &changes[3]);
}

/* Opening is not the subject above, but it must not leak or crash either. */
static void test_store_faults__alloc_open(void **state)
{
	fixture *f = *state;
	long n;

	for (n = 0; n < MAX_STEPS; n++) {
		ward_store *s = NULL;
		int rc, injected;

		ward_alloc_fail_after(n);
		rc = ward_store_open(&s, f->home, WARD_STORE_SIGN);
		injected = ward_alloc_failed();
		ward_alloc_fail_reset();
		if (rc == 0) {
			assert_non_null(s);
			ward_store_close(s);
			if (!injected)
				break;
		} else {
			assert_null(s);
			assert_true(injected);
		}
	}
	assert_true(n < MAX_STEPS);
	assert_int_equal(tu_verify_home(f->home, NULL, NULL), 0);
}

/* ---- b) SQLite write failures ------------------------------------------------- */

/* Checks a home after an I/O-failure run: 0 = state before, 1 = whole change. */
static int check_all_or_nothing(const char *home, const char *what, const change *c, tu_counts before, long n)
{
	tu_counts after = tu_counts_get(home);
	ward_audit_report r;
	int complete = 0; /* fail_msg does not return */

	if (!integrity_ok(home))
		fail_msg("%s %s, write %ld: integrity_check failed", c->name, what, n);
	if (counts_equal(after, before))
		complete = 0;
	else if (counts_equal(after, counts_add(before, c->delta)))
		complete = 1;
	else
		fail_msg("%s %s, write %ld: half-written change: sources %ld->%ld keys %ld->%ld events %ld->%ld"
			 " checkpoints %ld->%ld",
			 c->name, what, n, before.sources, after.sources, before.keys, after.keys, before.events,
			 after.events, before.checkpoints, after.checkpoints);
	if (tu_verify_home(home, NULL, &r) != 0) {
		tu_report_print(&r);
		ward_audit_report_dispose(&r);
		fail_msg("%s %s, write %ld: audit verify failed", c->name, what, n);
	}
	ward_audit_report_dispose(&r);
	if (!active_key_file_exists(home))
		fail_msg("%s %s, write %ld: the active key's private key file is gone (store can no longer sign)", c->name,
			 what, n);
	return complete;
}

static void io_sweep(fixture *f, const change *c, int persistent)
{
	long n;
	int need_prep = 1, reported_but_durable = 0, failures = 0;

	for (n = 0; n < MAX_STEPS; n++) {
		tu_counts before;
		int rc, fired, complete;
		f->s = tu_open(f->home, WARD_STORE_SIGN);
		if (need_prep)
			c->prep(f);
		need_prep = 0;
		before = tu_counts_get(f->home);

		faultvfs_arm(n, persistent ? FAULTVFS_PERSISTENT : FAULTVFS_ONCE);
		rc = c->run(f);
		fired = faultvfs_fired();
		faultvfs_disarm();

		f->img = faultvfs_crash_image(f->home);
		ward_store_close(f->s);
		f->s = NULL;

		complete = check_all_or_nothing(f->home, "reopened", c, before, n);
		if (rc == 0 && !complete)
			fail_msg("%s, write %ld: reported success but the change is not there", c->name, n);
		if (rc != 0 && !fired)
			fail_msg("%s, write %ld: failed without an injected failure: %s", c->name, n,
				 ward_error_last()->message);
		if (rc != 0 && complete)
			reported_but_durable++;
		if (rc != 0)
			failures++;
		/* the crash image: recovery may keep a commit whose sync failed,
		 * but never half of one */
		{
			int img_complete = check_all_or_nothing(f->img, "crash image", c, before, n);
			if (rc == 0 && !img_complete)
				fail_msg("%s, write %ld: success reported, but not durable", c->name, n);
		}
		tu_home_free(f->img);
		f->img = NULL;
		if (complete)
			need_prep = 1;
		if (!fired)
			break;
	}
	assert_true(n < MAX_STEPS);
	print_message("  %s (%s): %ld write/sync failure points, %d reported failures, %d of them durable anyway\n",
		      c->name, persistent ? "persistent" : "one-shot", n, failures, reported_but_durable);
}

static void test_store_faults__io_request(void **state)
{
	io_sweep(*state, &changes[0], 0);
	io_sweep(*state, &changes[0], 1);
}

static void test_store_faults__io_approve(void **state)
{
	io_sweep(*state, &changes[1], 0);
	io_sweep(*state, &changes[1], 1);
}

static void test_store_faults__io_import(void **state)
{
	io_sweep(*state, &changes[2], 0);
	io_sweep(*state, &changes[2], 1);
}

static void test_store_faults__io_rotate(void **state)
{
	io_sweep(*state, &changes[3], 0);
	io_sweep(*state, &changes[3], 1);
}

/* The wrapper must really be in the path: a change through the store hits it. */
static void test_store_faults__io_vfs_active(void **state)
{
	fixture *f = *state;

	f->s = tu_open(f->home, WARD_STORE_SIGN);
	faultvfs_arm(1000000, FAULTVFS_ONCE);
	prep_request(f);
	assert_int_equal(run_request(f), 0);
	faultvfs_disarm();
	assert_true(faultvfs_ops() > 0);
	faultvfs_arm(0, FAULTVFS_PERSISTENT);
	prep_request(f);
	assert_true(run_request(f) < 0);
	faultvfs_disarm();
	assert_true(faultvfs_fired());
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(test_store_faults__##name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(alloc_request), T(alloc_approve), T(alloc_import), T(alloc_rotate), T(alloc_open),
		T(io_vfs_active), T(io_request),    T(io_approve),   T(io_import),   T(io_rotate),
	};
#undef T

	ward_alloc_install_jansson();
	faultvfs_register();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
