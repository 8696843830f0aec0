/*
 * Failure injection (issue 2, security-controls T51): an allocation or a
 * SQLite write failing in the middle of a governance change must leave no
 * half-written change and no orphan audit event.
 *
 * a) Allocation sweep, as curl's torture mode and SQLite's malloc tests do:
 *    for N = 0, 1, 2, ... let the Nth allocation (ward_malloc and jansson)
 *    fail during one change, until the change runs clean. After every failed
 *    run the change reported an error and the store is exactly as before.
 * b) I/O sweep, as SQLite's ioerr tests do: a wrapper VFS makes the Nth
 *    xWrite/xSync fail (once, or from then on). After each run the store,
 *    reopened, holds either the state before or the whole change, never a
 *    mix; integrity_check is "ok" and the audit log verifies. The same is
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
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "ragward/alloc.h"
#include "ragward/audit.h"
#include "ragward/keys.h"
#include "ragward/sources.h"
#include "ragward/store.h"
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

/*
 * The wrapper VFS: "ward_fault" delegates everything to the default VFS and
 * wraps each file so that xWrite and xSync consult a countdown.
 */
typedef struct {
	sqlite3_file base;
	sqlite3_file *real; /* follows this struct in the same allocation */
} fault_file;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs fault_vfs;
static long fault_countdown = -1; /* < 0: disarmed */
static int fault_persistent;
static int fault_fired;
static long fault_ops; /* write/sync calls seen while armed */

static int fault_hit(void)
{
	if (fault_countdown < 0)
		return 0;
	fault_ops++;
	if (fault_countdown == 0) {
		fault_fired = 1;
		if (!fault_persistent)
			fault_countdown = -1;
		return 1;
	}
	fault_countdown--;
	return 0;
}

static void fault_arm(long n, int persistent)
{
	fault_fired = 0;
	fault_ops = 0;
	fault_persistent = persistent;
	fault_countdown = n;
}

static void fault_disarm(void)
{
	fault_countdown = -1;
}

#define REAL(f) (((fault_file *)(f))->real)

static int ff_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}
static int ff_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}
static int ff_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	if (fault_hit())
		return SQLITE_IOERR_WRITE;
	return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}
static int ff_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int ff_sync(sqlite3_file *f, int flags)
{
	if (fault_hit())
		return SQLITE_IOERR_FSYNC;
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int ff_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int ff_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int ff_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int ff_check_lock(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int ff_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int ff_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int ff_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int ff_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}
static int ff_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void ff_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int ff_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int ff_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}
static int ff_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods fault_io = {
	3,         ff_close,   ff_read,        ff_write,        ff_truncate,  ff_sync,     ff_size,
	ff_lock,   ff_unlock,  ff_check_lock,  ff_fcntl,        ff_sector,    ff_devchar,  ff_shm_map,
	ff_shm_lock, ff_shm_barrier, ff_shm_unmap, ff_fetch, ff_unfetch,
};

static int fault_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
	fault_file *ff = (fault_file *)file;
	int rc;

	(void)vfs;
	ff->real = (sqlite3_file *)(ff + 1);
	rc = real_vfs->xOpen(real_vfs, name, ff->real, flags, out_flags);
	file->pMethods = ff->real->pMethods ? &fault_io : NULL;
	return rc;
}

static void fault_vfs_install(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	assert_non_null(real_vfs);
	fault_vfs = *real_vfs;
	fault_vfs.zName = "ward_fault";
	fault_vfs.szOsFile = (int)sizeof(fault_file) + real_vfs->szOsFile;
	fault_vfs.xOpen = fault_open;
	fault_vfs.pNext = NULL;
	assert_int_equal(sqlite3_vfs_register(&fault_vfs, 1), SQLITE_OK);
}

/* The files as they are on disk now, copied into a fresh home: what a crash
 * at this moment would leave. store.db-shm is not copied (it is rebuilt). */
static char *crash_image(const fixture *f)
{
	char *img = tu_home_path("faults-img"), *keys, *p, *q;
	static const char *const files[] = {"store.db", "store.db-wal", "anchor.checkpoint"};
	DIR *d;
	struct dirent *e;

	assert_int_equal(mkdir(img, 0700), 0);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		p = tu_path(f->home, files[i]);
		q = tu_path(img, files[i]);
		tu_copy_file(p, q);
		free(p);
		free(q);
	}
	keys = tu_path(img, "keys");
	assert_int_equal(mkdir(keys, 0700), 0);
	d = opendir(f->keys_dir);
	assert_non_null(d);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		p = tu_path(f->keys_dir, e->d_name);
		q = tu_path(keys, e->d_name);
		assert_int_equal(tu_copy_file(p, q), 0);
		free(p);
		free(q);
	}
	closedir(d);
	free(keys);
	return img;
}

/* Checks a home after an I/O-failure run: 0 = state before, 1 = whole change. */
static int check_all_or_nothing(const char *home, const char *what, const change *c, tu_counts before, long n)
{
	tu_counts after = tu_counts_get(home);
	ward_audit_report r;
	int complete;

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

		fault_arm(n, persistent);
		rc = c->run(f);
		fired = fault_fired;
		fault_disarm();

		f->img = crash_image(f);
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
	fault_arm(1000000, 0);
	prep_request(f);
	assert_int_equal(run_request(f), 0);
	fault_disarm();
	assert_true(fault_ops > 0);
	fault_arm(0, 1);
	prep_request(f);
	assert_true(run_request(f) < 0);
	fault_disarm();
	assert_true(fault_fired);
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
	fault_vfs_install();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
