/*
 * Shared test helpers (see testutil.h).
 */
#define _XOPEN_SOURCE 700
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <cmocka.h>

#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "ragward/crypto.h"
#include "ragward/documents.h"
#include "ragward/merkle.h"
#include "ragward/sources.h"
#include "tests/support/testutil.h"
#include "core/banned.h"

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	assert_non_null(d);
	memcpy(d, s, n);
	return d;
}

static char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *xprintf(const char *fmt, ...)
{
	va_list ap;
	int n;
	char *out;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	out = malloc((size_t)n + 1);
	assert_non_null(out);
	va_start(ap, fmt);
	vsnprintf(out, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return out;
}

char *tu_path(const char *home, const char *name)
{
	return xprintf("%s/%s", home, name);
}

char *tu_home_path(const char *prefix)
{
	const char *tmp = getenv("RAGWARD_TEST_TMP");
	char *dir, *home;

	if (!tmp || !*tmp)
		tmp = "/tmp";
	mkdir(tmp, 0700); /* ctest does not create it */
	dir = xprintf("%s/%s-XXXXXX", tmp, prefix ? prefix : "t");
	if (!mkdtemp(dir))
		fail_msg("mkdtemp '%s': %s", dir, strerror(errno));
	home = xprintf("%s/home", dir);
	free(dir);
	return home;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void tu_rmrf(const char *path)
{
	struct stat sb;

	if (lstat(path, &sb) != 0)
		return;
	if (S_ISDIR(sb.st_mode))
		chmod(path, 0700); /* tests change modes; make sure we can descend */
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void tu_home_free(char *home)
{
	char *slash;

	if (!home)
		return;
	slash = strrchr(home, '/');
	if (slash && strcmp(slash, "/home") == 0) {
		char *keys = tu_path(home, "keys");
		chmod(keys, 0700);
		free(keys);
		*slash = '\0'; /* the mkdtemp parent */
	}
	tu_rmrf(home);
	free(home);
}

ward_actor tu_actor(const char *name)
{
	ward_actor a;

	a.name = name;
	a.uid = (long)geteuid();
	return a;
}

void tu_init(const char *home, char *key_id_out)
{
	ward_actor a = tu_actor("admin");
	char kid[33];
	int rc = ward_store_init_home(home, &a, kid);

	if (rc != 0)
		fail_msg("init '%s': %d %s", home, rc, ward_error_last()->message);
	if (key_id_out)
		memcpy(key_id_out, kid, sizeof(kid));
}

char *tu_new_home(const char *prefix)
{
	char *home = tu_home_path(prefix);

	tu_init(home, NULL);
	return home;
}

ward_store *tu_open(const char *home, int flags)
{
	ward_store *s = NULL;
	int rc = ward_store_open(&s, home, flags);

	if (rc != 0)
		fail_msg("open '%s': %d %s", home, rc, ward_error_last()->message);
	assert_non_null(s);
	return s;
}

sqlite3 *tu_raw_open(const char *home)
{
	char *path = tu_path(home, "store.db");
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);

	if (rc != SQLITE_OK)
		fail_msg("raw open '%s': %s", path, db ? sqlite3_errmsg(db) : "?");
	free(path);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

int tu_raw_exec(const char *home, const char *sql, char *errbuf, size_t errlen)
{
	sqlite3 *db = tu_raw_open(home);
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);

	if (errbuf && errlen)
		snprintf(errbuf, errlen, "%s", err ? err : "");
	sqlite3_free(err);
	sqlite3_close(db);
	return rc;
}

void tu_raw_exec_ok(const char *home, const char *sql)
{
	char err[512];

	if (tu_raw_exec(home, sql, err, sizeof(err)) != SQLITE_OK)
		fail_msg("raw exec '%s': %s", sql, err);
}

void tu_drop_audit_triggers(const char *home)
{
	tu_raw_exec_ok(home, "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;"
			     " DROP TRIGGER checkpoints_no_update; DROP TRIGGER checkpoints_no_delete;");
}

long long tu_query_int(const char *home, const char *sql)
{
	sqlite3 *db = tu_raw_open(home);
	sqlite3_stmt *st = NULL;
	long long v;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("prepare '%s': %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) != SQLITE_ROW)
		fail_msg("step '%s': %s", sql, sqlite3_errmsg(db));
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

long tu_count_rows(const char *home, const char *table)
{
	char *sql = xprintf("SELECT count(*) FROM \"%s\"", table);
	long n = (long)tu_query_int(home, sql);

	free(sql);
	return n;
}

tu_counts tu_counts_get(const char *home)
{
	tu_counts c;
	sqlite3 *db = tu_raw_open(home);
	static const char *const sql[4] = {"SELECT count(*) FROM sources", "SELECT count(*) FROM keys",
					   "SELECT count(*) FROM audit_events", "SELECT count(*) FROM checkpoints"};
	long *out[4] = {&c.sources, &c.keys, &c.events, &c.checkpoints};

	for (int i = 0; i < 4; i++) {
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(db, sql[i], -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
			fail_msg("%s: %s", sql[i], sqlite3_errmsg(db));
		*out[i] = (long)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return c;
}

void tu_report_print(const ward_audit_report *r)
{
	for (size_t i = 0; i < r->nfailures; i++)
		print_message("  verify: %s: %s\n", r->failures[i].object, r->failures[i].problem);
}

size_t tu_verify(ward_store *s, const char *extra_anchor, ward_audit_report *report)
{
	ward_audit_report r;
	size_t n;
	int rc = ward_audit_verify(s, extra_anchor, &r);

	if (rc != 0)
		fail_msg("audit verify could not run: %d %s", rc, ward_error_last()->message);
	n = r.nfailures;
	if (report) {
		*report = r;
	} else {
		tu_report_print(&r);
		ward_audit_report_dispose(&r);
	}
	return n;
}

size_t tu_verify_home(const char *home, const char *extra_anchor, ward_audit_report *report)
{
	ward_store *s = tu_open(home, 0);
	size_t n = tu_verify(s, extra_anchor, report);

	ward_store_close(s);
	return n;
}

int tu_report_has(const ward_audit_report *r, const char *object, const char *problem)
{
	for (size_t i = 0; i < r->nfailures; i++)
		if ((!object || strstr(r->failures[i].object, object)) &&
		    (!problem || strstr(r->failures[i].problem, problem)))
			return 1;
	return 0;
}

void tu_write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f)
		fail_msg("cannot write '%s': %s", path, strerror(errno));
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

void tu_write_str(const char *path, const char *text)
{
	tu_write_file(path, text, strlen(text));
}

char *tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0, got;

	if (!f)
		return NULL;
	do {
		if (n + 4096 + 1 > cap) {
			cap = (n + 4096 + 1) * 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		got = fread(buf + n, 1, 4096, f);
		n += got;
	} while (got > 0);
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

int tu_copy_file(const char *src, const char *dst)
{
	size_t n;
	char *data = tu_read_file(src, &n);
	int fd;

	if (!data)
		return -1;
	unlink(dst);
	fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
	free(data);
	return 0;
}

/* nftw has no user pointer: the listing under construction lives here. */
static char **list_lines;
static size_t list_n, list_cap, list_root_len;

static int list_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)flag;
	(void)ftw;
	if (list_n == list_cap) {
		list_cap = list_cap ? list_cap * 2 : 32;
		list_lines = realloc(list_lines, list_cap * sizeof(*list_lines));
		assert_non_null(list_lines);
	}
	list_lines[list_n++] = xprintf("%s %o %lld", path + list_root_len, (unsigned)(sb->st_mode & 07777),
				       S_ISREG(sb->st_mode) ? (long long)sb->st_size : 0LL);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char *tu_listing(const char *dir)
{
	size_t total = 1;
	char *out;

	list_lines = NULL;
	list_n = list_cap = 0;
	list_root_len = strlen(dir);
	assert_int_equal(nftw(dir, list_one, 16, FTW_PHYS), 0);
	qsort(list_lines, list_n, sizeof(*list_lines), cmp_str);
	for (size_t i = 0; i < list_n; i++)
		total += strlen(list_lines[i]) + 1;
	out = malloc(total);
	assert_non_null(out);
	out[0] = '\0';
	for (size_t i = 0, off = 0; i < list_n; i++) {
		size_t l = strlen(list_lines[i]);
		memcpy(out + off, list_lines[i], l);
		out[off + l] = '\n';
		off += l + 1;
		out[off] = '\0';
		free(list_lines[i]);
	}
	free(list_lines);
	list_lines = NULL;
	return out;
}

int tu_dir_count(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

int tu_error_has(const char *needle)
{
	return strstr(ward_error_last()->message, needle) != NULL;
}

static void put_field(ward_buf *b, const char *s)
{
	size_t n = strlen(s);
	uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};

	assert_int_equal(ward_buf_append(b, len, 4), 0);
	assert_int_equal(ward_buf_append(b, s, n), 0);
}

void tu_event_leaf(uint8_t out[32], int64_t seq, const char *at, const char *actor, long uid, const char *action,
		   const char *subject, const char *details)
{
	ward_buf b;
	char num[32], uidnum[32];

	ward_buf_init(&b, 1 << 20);
	snprintf(num, sizeof(num), "%lld", (long long)seq);
	snprintf(uidnum, sizeof(uidnum), "%ld", uid);
	assert_int_equal(ward_buf_puts(&b, "ragward/audit-event/v1"), 0);
	put_field(&b, num);
	put_field(&b, at);
	put_field(&b, actor);
	put_field(&b, uidnum);
	put_field(&b, action);
	put_field(&b, subject);
	put_field(&b, details);
	assert_int_equal(ward_merkle_leaf_hash(out, b.ptr, b.len), 0);
	ward_buf_dispose(&b);
}

int64_t tu_add_source(ward_store *s, const char *name, const char *pattern, const char *labels)
{
	ward_actor alice = tu_actor("alice"), bob = tu_actor("bob");
	ward_source_request r;
	int64_t id = 0;

	memset(&r, 0, sizeof(r));
	r.name = name;
	r.pattern = pattern;
	r.trust = WARD_TRUST_STANDARD;
	r.labels = labels;
	if (ward_sources_request(s, &alice, &r, &id) != 0 || ward_sources_decide(s, &bob, id, WARD_DECIDE_APPROVE, NULL) != 0)
		fail_msg("source '%s': %s", name, ward_error_last()->message);
	return id;
}

int64_t tu_add_doc(ward_store *s, int64_t source_id, const char *uri, const char *title, const char *text)
{
	ward_actor ing = tu_actor("ingester");
	ward_chunk_in c;
	ward_doc_in in;
	ward_doc_outcome outcome;
	int64_t doc_id = 0, version = 0;

	memset(&in, 0, sizeof(in));
	memset(&c, 0, sizeof(c));
	c.heading_path = "Intro";
	c.text = text;
	c.len = strlen(text);
	c.char_end = c.len;
	in.source_id = source_id;
	in.uri = uri;
	in.final_url = uri;
	in.declared_type = "text/plain";
	in.detected_type = "text/plain";
	in.title = title;
	in.bytes = (const uint8_t *)text;
	in.len = strlen(text);
	if (ward_sha256(in.byte_sha256, text, in.len) != 0)
		fail_msg("sha256 failed");
	in.fetched_at = "2026-01-02T03:04:05Z";
	in.ruleset_sha256 = "none";
	in.verdict = "accept";
	in.chunks = &c;
	in.nchunks = 1;
	if (ward_documents_store(s, &ing, &in, &outcome, &doc_id, &version) != 0)
		fail_msg("store '%s': %s", uri, ward_error_last()->message);
	return doc_id;
}
