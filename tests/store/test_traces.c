/*
 * Tests for store/traces.c and the "traces:" settings of store/config.c:
 * garbage settings refused, the trace path resolved and checked (symlink,
 * group-writable file or directory refused), the hash chain (a changed,
 * removed, reordered, truncated or torn line found by ward_trace_verify; a
 * line appended by another writer continued; a rotated file starting a new
 * chain) and the syslog sink (captured through ward_trace_set_syslog_sink:
 * facility, level, the file's line, the size cap).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/crypto.h"
#include "ragward/retrieve.h"
#include "ragward/store.h"
#include "ragward/traces.h"
#include "tests/support/testutil.h"
#include "core/banned.h"

typedef struct {
	char *home;
	ward_store *s;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->home = tu_new_home("traces");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	ward_trace_set_syslog_sink(NULL, NULL);
	ward_store_close(f->s);
	tu_home_free(f->home);
	free(f);
	return 0;
}

/* Writes config.yaml and opens the store read-only (as the server does). */
static void configure(fixture *f, const char *yaml)
{
	char *cfg = tu_path(f->home, "config.yaml");

	ward_store_close(f->s);
	f->s = NULL;
	tu_write_str(cfg, yaml);
	free(cfg);
	f->s = tu_open(f->home, 0);
}

static void append(fixture *f, int i)
{
	json_t *rec = json_pack("{s:s, s:i, s:[], s:i}", "trace_id", "00000000000000000000000000000000", "n", i,
	                        "results", "withheld", 0);

	assert_non_null(rec);
	if (ward_trace_append(f->s, rec, WARD_TRACE_SYNC_BATCH) != 0)
		fail_msg("append: %s", ward_error_last()->message);
	json_decref(rec);
}

static json_t *verify(const char *path, const char *head)
{
	json_t *res = NULL;

	if (ward_trace_verify(path, head, &res) != 0)
		fail_msg("verify: %s", ward_error_last()->message);
	return res;
}

static int broken_at(json_t *res)
{
	return (int)json_integer_value(json_object_get(json_object_get(res, "broken"), "line"));
}

/* Splits a file into its lines (each without "\n"); *n lines. */
static char **lines_of(const char *path, size_t *n)
{
	char *text = tu_read_file(path, NULL), *p, **v = calloc(64, sizeof(*v));

	assert_non_null(text);
	*n = 0;
	for (p = text; *p && *n < 64;) {
		char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		v[*n] = strndup(p, len);
		(*n)++;
		p += len + (nl ? 1 : 0);
	}
	free(text);
	return v;
}

static void write_lines(const char *path, char **v, const size_t *order, size_t n)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	for (size_t i = 0; i < n; i++)
		fprintf(fp, "%s\n", v[order[i]]);
	fclose(fp);
}

static void free_lines(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- settings ----------------------------------------------------------------------- */

static void test_store_traces__config_garbage_refused(void **state)
{
	fixture *f = *state;
	static const char *const bad[] = {
	        "traces: file\n",
	        "traces: [file]\n",
	        "traces:\n  sink: files\n",
	        "traces:\n  sink: 1\n",
	        "traces:\n  sink: true\n",
	        "traces:\n  sync: always\n",
	        "traces:\n  sync: 2\n",
	        "traces:\n  syslog_facility: local8\n",
	        "traces:\n  syslog_facility: LOG_USER\n",
	        "traces:\n  path: ''\n",
	        "traces:\n  path: 7\n",
	        "traces:\n  path: dir/\n",
	        "traces:\n  path: \"a\\nb\"\n",
	        "traces:\n  sinks: file\n",
	        "traces.sink: file\n",
	};
	char *cfg = tu_path(f->home, "config.yaml");
	ward_store *s = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tu_write_str(cfg, bad[i]);
		if (ward_store_open(&s, f->home, 0) != WARD_EINVAL)
			fail_msg("accepted config: %s", bad[i]);
		assert_null(s);
		assert_true(tu_error_has("traces"));
	}
	free(cfg);
}

static void test_store_traces__config_values(void **state)
{
	fixture *f = *state;
	const ward_config *c;
	char want[4200];

	configure(f, "");
	c = ward_store_config(f->s);
	assert_int_equal(c->trace_sink, WARD_TRACE_SINK_FILE);
	assert_int_equal(c->trace_sync, -1);
	assert_int_equal(c->trace_facility, LOG_USER);
	snprintf(want, sizeof(want), "%s/traces.jsonl", f->home);
	assert_string_equal(c->trace_path, want);

	configure(f, "traces:\n  sink: both\n  sync: every\n  syslog_facility: local3\n  path: logs/t.jsonl\n");
	c = ward_store_config(f->s);
	assert_int_equal(c->trace_sink, WARD_TRACE_SINK_BOTH);
	assert_int_equal(c->trace_sync, WARD_TRACE_SYNC_NOW);
	assert_int_equal(c->trace_facility, LOG_LOCAL3);
	snprintf(want, sizeof(want), "%s/logs/t.jsonl", f->home);
	assert_string_equal(c->trace_path, want);

	configure(f, "traces:\n  sink: syslog\n  sync: none\n  path: /var/log/ragward/traces.jsonl\n");
	c = ward_store_config(f->s);
	assert_int_equal(c->trace_sink, WARD_TRACE_SINK_SYSLOG);
	assert_int_equal(c->trace_sync, 0);
	assert_string_equal(c->trace_path, "/var/log/ragward/traces.jsonl");
}

/* ---- the file ----------------------------------------------------------------------- */

/* A configured path that is a symlink is refused, at the check and at
 * every append; so is a group-writable file or directory. */
static void test_store_traces__unsafe_path_refused(void **state)
{
	fixture *f = *state;
	char *target = tu_path(f->home, "real.jsonl"), *link = tu_path(f->home, "link.jsonl");
	char *dir = tu_path(f->home, "shared"), *inner = tu_path(f->home, "shared/t.jsonl");
	json_t *rec = json_pack("{s:s}", "trace_id", "x");

	tu_write_str(target, "");
	assert_int_equal(symlink(target, link), 0);
	configure(f, "traces:\n  path: link.jsonl\n");
	assert_int_equal(ward_trace_check(f->s), WARD_EIO);
	assert_true(tu_error_has("symbolic link"));
	assert_int_equal(ward_trace_append(f->s, rec, 0), WARD_EIO);

	configure(f, "traces:\n  path: real.jsonl\n");
	assert_int_equal(chmod(target, 0620), 0);
	assert_int_equal(ward_trace_append(f->s, rec, 0), WARD_EIO);
	assert_true(tu_error_has("writable by group or others"));
	assert_int_equal(chmod(target, 0600), 0);
	assert_int_equal(ward_trace_append(f->s, rec, 0), 0);
	/* made group-writable while open: the next append refuses too */
	assert_int_equal(chmod(target, 0660), 0);
	assert_int_equal(ward_trace_append(f->s, rec, 0), WARD_EIO);

	assert_int_equal(mkdir(dir, 0770), 0);
	assert_int_equal(chmod(dir, 0770), 0);
	configure(f, "traces:\n  path: shared/t.jsonl\n");
	assert_int_equal(ward_trace_check(f->s), WARD_EIO);
	assert_true(tu_error_has("trace directory is writable"));

	/* a FIFO is not a trace file (and opening it does not block) */
	assert_int_equal(unlink(target), 0);
	assert_int_equal(mkfifo(target, 0600), 0);
	configure(f, "traces:\n  path: real.jsonl\n");
	assert_int_equal(ward_trace_check(f->s), WARD_EIO);
	assert_true(tu_error_has("not a regular file"));
	json_decref(rec);
	free(target);
	free(link);
	free(dir);
	free(inner);
}

static void test_store_traces__chain_intact(void **state)
{
	fixture *f = *state;
	char *path = tu_path(f->home, "traces.jsonl");
	char **v;
	size_t n;
	json_t *res, *rec;
	uint8_t h[32];
	char hex[65];

	configure(f, "");
	assert_int_equal(ward_trace_verify(path, NULL, &res), WARD_EIO); /* not yet created */
	for (int i = 0; i < 5; i++)
		append(f, i);
	assert_int_equal(ward_trace_flush(), 0);
	v = lines_of(path, &n);
	assert_int_equal(n, 5);
	rec = json_loads(v[0], 0, NULL);
	assert_string_equal(json_string_value(json_object_get(rec, "prev")), WARD_TRACE_GENESIS);
	json_decref(rec);
	assert_int_equal(ward_sha256(h, v[0], strlen(v[0])), 0);
	ward_hex_encode_to(hex, h, 32);
	rec = json_loads(v[1], 0, NULL);
	assert_string_equal(json_string_value(json_object_get(rec, "prev")), hex);
	json_decref(rec);
	assert_int_equal(ward_sha256(h, v[4], strlen(v[4])), 0);
	ward_hex_encode_to(hex, h, 32);

	res = verify(path, NULL);
	assert_true(json_is_true(json_object_get(res, "ok")));
	assert_int_equal(json_integer_value(json_object_get(res, "lines")), 5);
	assert_int_equal(json_integer_value(json_object_get(res, "unchained")), 0);
	assert_string_equal(json_string_value(json_object_get(res, "head")), hex);
	assert_true(json_is_null(json_object_get(res, "broken")));
	json_decref(res);
	free_lines(v, n);
	free(path);
}

/* Must fail: every kind of edit is found, at the line after it. */
static void test_store_traces__chain_tamper_found(void **state)
{
	fixture *f = *state;
	char *path = tu_path(f->home, "traces.jsonl");
	static const size_t keep[] = {0, 1, 2, 3, 4}, drop1[] = {0, 2, 3, 4}, drop0[] = {1, 2, 3, 4},
	                    swap[] = {0, 2, 1, 3, 4}, drop4[] = {0, 1, 2, 3};
	char **v, *orig, head[65];
	size_t n;
	json_t *res;

	configure(f, "");
	for (int i = 0; i < 5; i++)
		append(f, i);
	v = lines_of(path, &n);
	assert_int_equal(n, 5);
	res = verify(path, NULL);
	snprintf(head, sizeof(head), "%s", json_string_value(json_object_get(res, "head")));
	json_decref(res);

	/* an edited line: one character of the query */
	orig = v[1];
	v[1] = strdup(orig);
	*strstr(v[1], "\"n\":1") = ' ';
	write_lines(path, v, keep, 5);
	res = verify(path, NULL);
	assert_false(json_is_true(json_object_get(res, "ok")));
	assert_int_equal(broken_at(res), 2); /* not JSON any more */
	json_decref(res);
	free(v[1]);
	v[1] = strdup(orig);
	v[1][strstr(v[1], "\"n\":1") - v[1] + 4] = '7'; /* still valid JSON */
	write_lines(path, v, keep, 5);
	res = verify(path, NULL);
	assert_int_equal(broken_at(res), 3);
	json_decref(res);
	free(v[1]);
	v[1] = orig;

	write_lines(path, v, drop1, 4);
	res = verify(path, NULL);
	assert_false(json_is_true(json_object_get(res, "ok")));
	assert_int_equal(broken_at(res), 2);
	json_decref(res);

	write_lines(path, v, drop0, 4);
	res = verify(path, NULL);
	assert_int_equal(broken_at(res), 1);
	json_decref(res);

	write_lines(path, v, swap, 5);
	res = verify(path, NULL);
	assert_int_equal(broken_at(res), 2);
	json_decref(res);

	/* the last line removed: only a head kept elsewhere tells */
	write_lines(path, v, drop4, 4);
	res = verify(path, NULL);
	assert_true(json_is_true(json_object_get(res, "ok")));
	json_decref(res);
	res = verify(path, head);
	assert_false(json_is_true(json_object_get(res, "ok")));
	assert_int_equal(broken_at(res), 5);
	json_decref(res);
	write_lines(path, v, keep, 5);
	res = verify(path, head);
	assert_true(json_is_true(json_object_get(res, "ok")));
	json_decref(res);

	/* a line whose "prev" was removed after the chain began */
	{
		char *line = v[3], *p = strstr(line, ",\"prev\"");
		*p++ = '}';
		*p = '\0';
		write_lines(path, v, keep, 5);
		res = verify(path, NULL);
		assert_int_equal(broken_at(res), 4);
		json_decref(res);
	}
	assert_int_equal(ward_trace_verify(path, "nothex", &res), WARD_EINVAL);
	free_lines(v, n);
	free(path);
}

/* Lines written by another writer (another process) are continued: the
 * appender reads the tail when the file grew behind its back. A torn last
 * line is ended, chained, and reported by verify. */
static void test_store_traces__chain_continues_other_writers(void **state)
{
	fixture *f = *state;
	char *path = tu_path(f->home, "traces.jsonl"), *moved = tu_path(f->home, "traces.1");
	char line[256], hex[65];
	uint8_t h[32];
	char **v;
	size_t n;
	json_t *res;
	FILE *fp;

	configure(f, "");
	append(f, 0);
	append(f, 1);
	v = lines_of(path, &n);
	assert_int_equal(ward_sha256(h, v[1], strlen(v[1])), 0);
	ward_hex_encode_to(hex, h, 32);
	snprintf(line, sizeof(line), "{\"trace_id\":\"other\",\"prev\":\"%s\"}\n", hex);
	fp = fopen(path, "a");
	fputs(line, fp);
	fclose(fp);
	append(f, 2);
	res = verify(path, NULL);
	assert_true(json_is_true(json_object_get(res, "ok")));
	assert_int_equal(json_integer_value(json_object_get(res, "lines")), 4);
	json_decref(res);
	free_lines(v, n);

	/* rotated: the next line starts a new file and a new chain */
	assert_int_equal(rename(path, moved), 0);
	append(f, 3);
	v = lines_of(path, &n);
	assert_int_equal(n, 1);
	assert_non_null(strstr(v[0], WARD_TRACE_GENESIS));
	free_lines(v, n);
	res = verify(moved, NULL);
	assert_true(json_is_true(json_object_get(res, "ok")));
	json_decref(res);

	/* torn: a write cut short */
	fp = fopen(path, "a");
	fputs("{\"trace_id\":\"cut", fp);
	fclose(fp);
	append(f, 4);
	v = lines_of(path, &n);
	assert_int_equal(n, 3);
	assert_string_equal(v[1], "{\"trace_id\":\"cut");
	free_lines(v, n);
	res = verify(path, NULL);
	assert_false(json_is_true(json_object_get(res, "ok")));
	assert_int_equal(broken_at(res), 2);
	json_decref(res);
	free(path);
	free(moved);
}

static void *append_many(void *arg)
{
	fixture *f = arg;

	for (int i = 0; i < 40; i++)
		append(f, i);
	return NULL;
}

/* Threads of this process and two other processes append at once: one
 * chain, no line lost or torn (the flock and the mutex). */
static void test_store_traces__concurrent_writers_one_chain(void **state)
{
	fixture *f = *state;
	char *path = tu_path(f->home, "traces.jsonl");
	pthread_t t[3];
	pid_t kid[2];
	json_t *res;
	int st;

	configure(f, "traces:\n  sync: none\n");
	append(f, -1);
	for (int k = 0; k < 2; k++) {
		kid[k] = fork();
		assert_true(kid[k] >= 0);
		if (kid[k] == 0) {
			ward_store *s = NULL;
			json_t *rec = json_pack("{s:s}", "trace_id", "child");
			int bad = !rec || ward_store_open(&s, f->home, 0) != 0;
			for (int i = 0; !bad && i < 40; i++)
				bad = ward_trace_append(s, rec, 0) != 0;
			_exit(bad);
		}
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, append_many, f), 0);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	for (int k = 0; k < 2; k++) {
		assert_int_equal(waitpid(kid[k], &st, 0), kid[k]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	res = verify(path, NULL);
	assert_true(json_is_true(json_object_get(res, "ok")));
	assert_int_equal(json_integer_value(json_object_get(res, "lines")), 1 + 3 * 40 + 2 * 40);
	json_decref(res);
	free(path);
}

/* Lines without "prev" before the chain began (an older file) are counted,
 * and the chain continues from them. */
static void test_store_traces__unchained_prefix(void **state)
{
	fixture *f = *state;
	char *path = tu_path(f->home, "traces.jsonl");
	json_t *res;

	tu_write_str(path, "{\"trace_id\":\"old1\"}\n{\"trace_id\":\"old2\"}\n");
	assert_int_equal(chmod(path, 0600), 0);
	configure(f, "");
	append(f, 0);
	res = verify(path, NULL);
	assert_true(json_is_true(json_object_get(res, "ok")));
	assert_int_equal(json_integer_value(json_object_get(res, "unchained")), 2);
	json_decref(res);
	free(path);
}

static void discard(void *ctx, int priority, const char *line)
{
	(void)ctx;
	(void)priority;
	(void)line;
}

/* Every allocation failure of an append or a check is an error (or a
 * success), never a broken chain or a leak. */
static void test_store_traces__alloc_failures(void **state)
{
	fixture *f = *state;
	char *path = tu_path(f->home, "traces.jsonl");
	json_t *rec = json_pack("{s:s, s:i}", "trace_id", "faults", "withheld", 0), *res = NULL;
	int rc = -1, appended = 0;

	configure(f, "traces:\n  sink: both\n");
	ward_trace_set_syslog_sink(discard, NULL);
	append(f, 0);
	for (long n = 0; n < 5000; n++) {
		ward_alloc_fail_after(n);
		rc = ward_trace_append(f->s, rec, WARD_TRACE_SYNC_BATCH);
		ward_alloc_fail_reset();
		if (rc != 0)
			assert_int_equal(rc, WARD_ENOMEM);
		else if (++appended == 3)
			break;
	}
	assert_int_equal(rc, 0);
	for (long n = 0; n < 5000; n++) {
		ward_alloc_fail_after(n);
		rc = ward_trace_verify(path, NULL, &res);
		ward_alloc_fail_reset();
		if (rc == 0)
			break;
		assert_int_equal(rc, WARD_ENOMEM);
		assert_null(res);
	}
	assert_int_equal(rc, 0);
	assert_true(json_is_true(json_object_get(res, "ok")));
	json_decref(res);
	json_decref(rec);
	rec = json_pack("{s:s}", "prev", "x"); /* the writer's field */
	assert_int_equal(ward_trace_append(f->s, rec, 0), WARD_EINVAL);
	json_decref(rec);
	free(path);
}

/* ---- syslog ------------------------------------------------------------------------- */

static struct {
	int n, priority;
	char line[WARD_TRACE_SYSLOG_MAX + 1];
	size_t len;
} captured;

static void capture(void *ctx, int priority, const char *line)
{
	assert_ptr_equal(ctx, &captured);
	captured.n++;
	captured.priority = priority;
	captured.len = strlen(line);
	assert_true(captured.len <= WARD_TRACE_SYSLOG_MAX);
	memcpy(captured.line, line, captured.len + 1);
}

static void test_store_traces__syslog_sink(void **state)
{
	fixture *f = *state;
	char *path = tu_path(f->home, "traces.jsonl");
	json_t *rec = json_pack("{s:s, s:i}", "trace_id", "abc", "withheld", 0), *big;
	char **v;
	size_t n;
	struct stat sb;

	memset(&captured, 0, sizeof(captured));
	ward_trace_set_syslog_sink(capture, &captured);

	/* syslog only: the record as JSON, no file, no chain */
	configure(f, "traces:\n  sink: syslog\n  syslog_facility: local3\n");
	assert_int_equal(ward_trace_append(f->s, rec, WARD_TRACE_SYNC_NOW), 0);
	assert_int_equal(captured.n, 1);
	assert_int_equal(LOG_FAC(captured.priority) << 3, LOG_LOCAL3);
	assert_int_equal(LOG_PRI(captured.priority), LOG_INFO);
	assert_string_equal(captured.line, "{\"trace_id\":\"abc\",\"withheld\":0}");
	assert_int_equal(stat(path, &sb), -1);
	assert_int_equal(ward_trace_check(f->s), 0);

	/* both: the file's line, "prev" included; withheld results: notice */
	configure(f, "traces:\n  sink: both\n");
	json_object_set_new(rec, "withheld", json_integer(2));
	assert_int_equal(ward_trace_append(f->s, rec, 0), 0);
	assert_int_equal(captured.n, 2);
	assert_int_equal(LOG_FAC(captured.priority) << 3, LOG_USER);
	assert_int_equal(LOG_PRI(captured.priority), LOG_NOTICE);
	v = lines_of(path, &n);
	assert_int_equal(n, 1);
	assert_string_equal(captured.line, v[0]);
	free_lines(v, n);

	/* a line over the cap: cut, and says so with the whole line's size and hash */
	big = json_pack("{s:s, s:s%}", "trace_id", "big", "query", "", (size_t)0);
	{
		char *q = malloc(20001);
		memset(q, 'q', 20000);
		q[20000] = '\0';
		json_object_set_new(big, "query", json_string(q));
		free(q);
	}
	assert_int_equal(ward_trace_append(f->s, big, 0), 0);
	assert_int_equal(captured.n, 3);
	assert_true(captured.len <= WARD_TRACE_SYSLOG_MAX);
	assert_non_null(strstr(captured.line, " [truncated: "));
	v = lines_of(path, &n);
	{
		uint8_t h[32];
		char hex[65], want[160];
		assert_int_equal(ward_sha256(h, v[1], strlen(v[1])), 0);
		ward_hex_encode_to(hex, h, 32);
		snprintf(want, sizeof(want), " [truncated: %zu bytes, sha256 %s]", strlen(v[1]), hex);
		assert_non_null(strstr(captured.line, want));
		assert_int_equal(strncmp(captured.line, v[1], 100), 0);
	}
	free_lines(v, n);
	json_decref(big);
	json_decref(rec);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_store_traces__config_garbage_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_store_traces__config_values, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_store_traces__unsafe_path_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_store_traces__chain_intact, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_store_traces__chain_tamper_found, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_store_traces__chain_continues_other_writers, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_store_traces__concurrent_writers_one_chain, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_store_traces__unchained_prefix, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_store_traces__alloc_failures, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_store_traces__syslog_sink, setup, teardown),
	};

	ward_alloc_install_jansson();

	return cmocka_run_group_tests(tests, NULL, NULL);
}
