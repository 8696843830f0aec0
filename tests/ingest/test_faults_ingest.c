/*
 * I/O-failure sweep over one ingest (issue 5 item 5; security-controls T39,
 * T51): a wrapper VFS (tests/support/faultvfs.c) fails the Nth xWrite or
 * xSync of SQLite while ward_ingest_one stores a small document, N = 0, 1,
 * ... until an ingest runs without hitting the fault.
 *
 * Every run must be all or nothing, checked three times: on the live store
 * (other connections, the failed handle still open; SQL checks only), after
 * reopening, and on the crash image (the files as they were at the end of
 * the failed call, recovered by a fresh connection):
 *   - nothing: no documents, chunks, chunks_fts or findings rows of the
 *     document and no document.ingest event naming it;
 *   - everything: the document, every chunk with its FTS row (same text),
 *     every finding, exactly one document.ingest event whose chunk and
 *     finding counts match, and a signed checkpoint covering that event;
 * and in both cases PRAGMA integrity_check ok, the FTS5 integrity-check
 * command ok, ward_audit_verify clean and ward_documents_verify_chunks clean
 * for every stored document. A success must be durable in the crash image.
 * After each run, a following ingest of the same file on the same handle
 * (the disk works again) completes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "ragward/alloc.h"
#include "ragward/documents.h"
#include "ragward/ingest.h"
#include "ragward/scan.h"
#include "ragward/sources.h"
#include "support/faultvfs.h"
#include "support/testutil.h"

#define MAX_STEPS 2000

/* A small page with a finding the verdict lets through (a zero-width space
 * inside a word: strip, stored and served), so the sweep covers the
 * document, chunk, FTS, finding and event rows together. */
static const char page[] = "<html><head><title>Dock guide</title></head><body>"
                           "<h1>Charging dock</h1><p>Place the dock on a le\xe2\x80\x8bvel floor near an outlet.</p>"
                           "<h2>Status lights</h2><p>Green means charging; amber means a fault.</p>"
                           "<h2>Cleaning</h2><p>Wipe the contacts with a dry cloth once a month.</p>"
                           "</body></html>";

static ward_ruleset *rules; /* loaded once for the group */

typedef struct {
	char *home;
	char *root;
	int serial;
	long ref_chunks, ref_findings; /* what a clean ingest of `page` stores */
} fixture;

static int group_setup(void **state)
{
	ward_ruleset_opts ro;
	char dir[4096];
	const char *src = getenv("RAGWARD_SOURCE_DIR");

	(void)state;
	memset(&ro, 0, sizeof(ro));
	snprintf(dir, sizeof(dir), "%s/tests/fixtures/rules/valid", src ? src : ".");
	return ward_ruleset_load(&rules, dir, &ro) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	ward_ruleset_free(rules);
	return 0;
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	ward_source_request req;
	ward_actor alice = tu_actor("alice"), bob = tu_actor("bob");
	ward_store *s;
	int64_t sid;

	assert_non_null(f);
	f->home = tu_new_home("faultsingest");
	f->root = tu_path(f->home, "../docs");
	assert_int_equal(mkdir(f->root, 0700), 0);
	{
		char *real = realpath(f->root, NULL);
		assert_non_null(real);
		free(f->root);
		f->root = real;
	}
	s = tu_open(f->home, WARD_STORE_SIGN);
	memset(&req, 0, sizeof(req));
	req.name = "docs";
	req.pattern = f->root;
	req.trust = WARD_TRUST_STANDARD;
	assert_int_equal(ward_sources_request(s, &alice, &req, &sid), 0);
	assert_int_equal(ward_sources_decide(s, &bob, sid, WARD_DECIDE_APPROVE, NULL), 0);
	ward_store_close(s);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	faultvfs_disarm();
	tu_rmrf(f->root);
	free(f->root);
	tu_home_free(f->home);
	free(f);
	return 0;
}

static char *doc_path(const fixture *f, int serial)
{
	size_t n = strlen(f->root) + 32;
	char *p = malloc(n);

	assert_non_null(p);
	snprintf(p, n, "%s/doc-%d.html", f->root, serial);
	return p;
}

static int ingest(ward_store *s, const char *path, ward_ingest_item *it)
{
	ward_ingest_opts o;
	ward_actor cron = tu_actor("cron");

	memset(&o, 0, sizeof(o));
	o.keep_bytes = 1;
	o.rules = rules;
	return ward_ingest_one(s, &cron, path, &o, it);
}

/* ---- checks ------------------------------------------------------------------ */

static long long q_int(sqlite3 *db, const char *fmt, ...) WARD_PRINTF(2, 3);
static long long q_int(sqlite3 *db, const char *fmt, ...)
{
	char sql[2048];
	sqlite3_stmt *st = NULL;
	long long v;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("prepare '%s': %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) != SQLITE_ROW)
		fail_msg("step '%s': %s", sql, sqlite3_errmsg(db));
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/*
 * Checks the whole home (whatever documents it holds) and the document at
 * `path`. Returns 1 when that document is completely there, 0 when there is
 * no trace of it; fails the test on anything in between. The SQL checks
 * cover every document; `verify` adds ward_audit_verify and the chunk
 * signatures -- of every document when `verify` is VERIFY_ALL, else of the
 * one under test (the others were verified when they were stored, and the
 * SQL checks show they did not change).
 */
enum { VERIFY_NONE, VERIFY_DOC, VERIFY_ALL };

static int check_home(const fixture *f, const char *home, const char *what, const char *sweep, long n, const char *path,
                      int verify)
{
	sqlite3 *db = tu_raw_open(home);
	sqlite3_stmt *st = NULL;
	char *err = NULL;
	long long docs, events, v;
	int present;

#define BAD(...)                                                                                                       \
	do {                                                                                                           \
		char m_[1024];                                                                                         \
		snprintf(m_, sizeof(m_), __VA_ARGS__);                                                                 \
		fail_msg("%s, %s, fault at %ld: %s", sweep, what, n, m_);                                              \
	} while (0)

	/* SQLite's and FTS5's own consistency checks */
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0)
		BAD("integrity_check: %s", sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "?");
	sqlite3_finalize(st);
	if (sqlite3_exec(db, "INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')", NULL, NULL, &err) !=
	    SQLITE_OK) {
		char m[256];
		snprintf(m, sizeof(m), "%s", err ? err : "?");
		sqlite3_free(err);
		BAD("FTS5 integrity-check: %s", m);
	}

	/* no orphan of any document, anywhere */
	if ((v = q_int(db, "SELECT count(*) FROM chunks WHERE document_id NOT IN (SELECT id FROM documents)")))
		BAD("%lld chunks without a document", v);
	if ((v = q_int(db, "SELECT count(*) FROM findings WHERE document_id NOT IN (SELECT id FROM documents)")))
		BAD("%lld findings without a document", v);
	if ((v = q_int(db, "SELECT (SELECT count(*) FROM chunks_fts) - (SELECT count(*) FROM chunks)")))
		BAD("chunks_fts and chunks differ by %lld rows", v);
	if ((v = q_int(db, "SELECT count(*) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM chunks_fts t"
	                   " WHERE t.rowid = c.id AND t.text = c.text)")))
		BAD("%lld chunks without their FTS row", v);
	if ((v = q_int(db, "SELECT count(*) FROM audit_events e WHERE action = 'document.ingest' AND NOT EXISTS"
	                   " (SELECT 1 FROM documents d WHERE 'document:' || d.id = e.subject)")))
		BAD("%lld document.ingest events without their document", v);
	if ((v = q_int(db, "SELECT count(*) FROM documents d WHERE (SELECT count(*) FROM audit_events e WHERE"
	                   " e.action = 'document.ingest' AND e.subject = 'document:' || d.id) != 1")))
		BAD("%lld documents without exactly one document.ingest event", v);
	if ((v = q_int(db,
	               "SELECT count(*) FROM documents d JOIN audit_events e ON e.action = 'document.ingest'"
	               " AND e.subject = 'document:' || d.id WHERE"
	               " json_extract(e.details, '$.chunks') != (SELECT count(*) FROM chunks WHERE document_id = d.id)"
	               " OR json_extract(e.details, '$.findings') !="
	               " (SELECT count(*) FROM findings WHERE document_id = d.id)")))
		BAD("%lld documents whose chunks or findings differ from their event", v);
	if ((v = q_int(db, "SELECT count(*) FROM audit_events e WHERE NOT EXISTS"
	                   " (SELECT 1 FROM checkpoints c WHERE c.tree_size >= e.seq)")))
		BAD("%lld audit events not covered by a checkpoint", v);

	/* the document under test: all or nothing */
	docs = q_int(db, "SELECT count(*) FROM documents WHERE uri = '%s'", path);
	events = q_int(db,
	               "SELECT count(*) FROM audit_events WHERE action = 'document.ingest'"
	               " AND json_extract(details, '$.uri') = '%s'",
	               path);
	if (docs > 1)
		BAD("%lld versions of one unchanged document", docs);
	if (events != docs)
		BAD("%lld document rows but %lld document.ingest events", docs, events);
	present = docs == 1;
	if (present) {
		long long chunks = q_int(db,
		                         "SELECT count(*) FROM chunks WHERE document_id ="
		                         " (SELECT id FROM documents WHERE uri = '%s')",
		                         path),
		          findings = q_int(db,
		                           "SELECT count(*) FROM findings WHERE document_id ="
		                           " (SELECT id FROM documents WHERE uri = '%s')",
		                           path),
		          bytes = q_int(db, "SELECT length(bytes) FROM documents WHERE uri = '%s'", path);

		if (chunks != f->ref_chunks || findings != f->ref_findings)
			BAD("stored with %lld chunks and %lld findings, a clean ingest stores %ld and %ld", chunks,
			    findings, f->ref_chunks, f->ref_findings);
		if (bytes != (long long)strlen(page))
			BAD("stored bytes are %lld long, the file %zu", bytes, strlen(page));
	}
	sqlite3_close(db);

	/* the audit log and the stored chunks' signatures */
	if (verify != VERIFY_NONE) {
		ward_audit_report r;
		ward_store *s = tu_open(home, 0);
		sqlite3_stmt *ids = NULL;
		char sql[1024];

		if (tu_verify(s, NULL, &r) != 0) {
			tu_report_print(&r);
			ward_audit_report_dispose(&r);
			BAD("ward_audit_verify failed");
		}
		ward_audit_report_dispose(&r);
		db = tu_raw_open(home);
		snprintf(sql, sizeof(sql),
		         "SELECT id, (SELECT count(*) FROM chunks c WHERE c.document_id = d.id) FROM documents d%s%s%s",
		         verify == VERIFY_ALL ? "" : " WHERE uri = '", verify == VERIFY_ALL ? "" : path,
		         verify == VERIFY_ALL ? "" : "'");
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &ids, NULL), SQLITE_OK);
		while (sqlite3_step(ids) == SQLITE_ROW) {
			size_t checked = 0, bad = 0;
			int64_t id = sqlite3_column_int64(ids, 0);

			if (ward_documents_verify_chunks(s, id, &checked, &bad) != 0)
				BAD("verify_chunks(%lld): %s", (long long)id, ward_error_last()->message);
			if (bad || checked != (size_t)sqlite3_column_int64(ids, 1))
				BAD("document %lld: %zu of %zu chunks failed verification", (long long)id, bad,
				    checked);
		}
		sqlite3_finalize(ids);
		sqlite3_close(db);
		ward_store_close(s);
	}
#undef BAD
	return present;
}

/* ---- the sweep ----------------------------------------------------------------- */

static void reference_ingest(fixture *f)
{
	ward_store *s = tu_open(f->home, WARD_STORE_SIGN);
	ward_ingest_item it;
	char *p = doc_path(f, ++f->serial);

	tu_write_str(p, page);
	assert_int_equal(ingest(s, p, &it), 0);
	if (it.outcome != WARD_INGEST_NEW)
		fail_msg("reference ingest: outcome %s (%s)", ward_ingest_outcome_name(it.outcome),
		         it.reason ? it.reason : "");
	f->ref_chunks = tu_query_int(f->home, "SELECT count(*) FROM chunks WHERE document_id ="
	                                      " (SELECT max(id) FROM documents)");
	f->ref_findings = tu_query_int(f->home, "SELECT count(*) FROM findings WHERE document_id ="
	                                        " (SELECT max(id) FROM documents)");
	assert_true(f->ref_chunks >= 2);
	assert_true(f->ref_findings >= 1);
	ward_ingest_item_dispose(&it);
	ward_store_close(s);
	assert_int_equal(check_home(f, f->home, "reference", "reference", -1, p, VERIFY_ALL), 1);
	free(p);
}

static void io_sweep(fixture *f, const char *sweep, int mode)
{
	long n;
	int failures = 0, durable_anyway = 0, absorbed = 0;

	reference_ingest(f);
	for (n = 0; n < MAX_STEPS; n++) {
		ward_store *s = tu_open(f->home, WARD_STORE_SIGN);
		ward_ingest_item it, again;
		char *p = doc_path(f, ++f->serial), *img;
		int rc, fired, ok, live, reopened, in_img;

		tu_write_str(p, page);
		ward_error_clear();
		faultvfs_arm(n, mode);
		rc = ingest(s, p, &it);
		fired = faultvfs_fired();
		faultvfs_disarm();
		img = faultvfs_crash_image(f->home);
		ok = rc == 0 && it.outcome == WARD_INGEST_NEW;
		if (!ok && !fired)
			fail_msg("%s, fault at %ld: failed without an injected fault: rc %d outcome %s: %s", sweep, n,
			         rc, rc == 0 ? ward_ingest_outcome_name(it.outcome) : "-",
			         rc == 0 && it.reason ? it.reason : ward_error_last()->message);
		if (!ok && rc == 0 && it.outcome != WARD_INGEST_FAILED)
			fail_msg("%s, fault at %ld: an I/O failure became outcome %s (%s)", sweep, n,
			         ward_ingest_outcome_name(it.outcome), it.reason ? it.reason : "");
		if (!ok && rc == 0 && !it.reason)
			fail_msg("%s, fault at %ld: failed item without a reason", sweep, n);
		if (ok && fired)
			absorbed++;
		if (!ok)
			failures++;

		/* reads go on while the failed handle is open */
		live = check_home(f, f->home, "live", sweep, n, p, VERIFY_NONE);
		if (ok && !live)
			fail_msg("%s, fault at %ld: success reported but the document is not there", sweep, n);

		/* the disk works again: the next run on the same handle completes */
		ward_error_clear();
		if ((rc = ingest(s, p, &again)) != 0)
			fail_msg("%s, fault at %ld: the following ingest failed: %s", sweep, n,
			         ward_error_last()->message);
		if (again.outcome != (live ? WARD_INGEST_UNCHANGED : WARD_INGEST_NEW))
			fail_msg("%s, fault at %ld: the following ingest's outcome is %s (%s)", sweep, n,
			         ward_ingest_outcome_name(again.outcome), again.reason ? again.reason : "");
		ward_ingest_item_dispose(&again);
		ward_store_close(s);

		reopened = check_home(f, f->home, "reopened", sweep, n, p, VERIFY_DOC);
		if (!reopened)
			fail_msg("%s, fault at %ld: the following ingest's document is not there after reopening",
			         sweep, n);
		in_img = check_home(f, img, "crash image", sweep, n, p, VERIFY_DOC);
		if (ok && !in_img)
			fail_msg("%s, fault at %ld: success reported, but not durable", sweep, n);
		if (!ok && in_img)
			durable_anyway++;
		tu_home_free(img);
		ward_ingest_item_dispose(&it);
		free(p);
		if (!fired)
			break;
	}
	assert_true(n < MAX_STEPS);
	print_message("  %s: %ld write/sync failure points, %d reported failures, %d of them durable in the crash"
	              " image, %d absorbed\n",
	              sweep, n, failures, durable_anyway, absorbed);

	/* and a different document afterwards, with no fault at all */
	{
		ward_store *s = tu_open(f->home, WARD_STORE_SIGN);
		ward_ingest_item it;
		char *p = doc_path(f, ++f->serial);

		tu_write_str(p, page);
		assert_int_equal(ingest(s, p, &it), 0);
		assert_int_equal(it.outcome, WARD_INGEST_NEW);
		ward_ingest_item_dispose(&it);
		ward_store_close(s);
		assert_int_equal(check_home(f, f->home, "final", sweep, n, p, VERIFY_ALL), 1);
		free(p);
	}
}

/* The wrapper is in the path of an ingest. */
static void test_ingest_faults_ingest__vfs_active(void **state)
{
	fixture *f = *state;
	ward_store *s = tu_open(f->home, WARD_STORE_SIGN);
	ward_ingest_item it;
	char *p = doc_path(f, ++f->serial);

	tu_write_str(p, page);
	faultvfs_arm(1000000, FAULTVFS_ONCE);
	assert_int_equal(ingest(s, p, &it), 0);
	faultvfs_disarm();
	assert_int_equal(it.outcome, WARD_INGEST_NEW);
	assert_true(faultvfs_ops() > 0);
	ward_ingest_item_dispose(&it);
	ward_store_close(s);
	free(p);
}

/* EIO on one write or fsync, the next ones succeed. */
static void test_ingest_faults_ingest__io_once(void **state)
{
	io_sweep(*state, "one-shot", FAULTVFS_ONCE);
}

/* EIO from the Nth write or fsync on, until the disk is back. */
static void test_ingest_faults_ingest__io_persistent(void **state)
{
	io_sweep(*state, "persistent", FAULTVFS_PERSISTENT);
}

/* ENOSPC: every write from the Nth on fails with SQLITE_FULL (syncs pass). */
static void test_ingest_faults_ingest__disk_full(void **state)
{
	io_sweep(*state, "disk full", FAULTVFS_PERSISTENT | FAULTVFS_WRITES | FAULTVFS_FULL);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(test_ingest_faults_ingest__##name, setup, teardown)
	const struct CMUnitTest tests[] = {
	        T(vfs_active),
	        T(io_once),
	        T(io_persistent),
	        T(disk_full),
	};
#undef T

	ward_alloc_install_jansson();
	faultvfs_register();
	faultvfs_skip_real_sync(1); /* see faultvfs.h: the crash image is a file copy */
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
