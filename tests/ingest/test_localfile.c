/*
 * Local file sources: confinement beneath the root (openat2), regular files
 * only, the size cap on the descriptor and on the bytes read, change during
 * read, and the listing that never follows a symlink.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "ragward/fetch.h"
#include "ragward/crypto.h"
#include "ragward/error.h"
#include "ingest/fetch_internal.h"
#include "core/limits.h"
#include "tests/support/testutil.h"
#include "core/banned.h"

typedef struct {
	char *home;  /* scratch: HOME/root is the approved root, HOME/outside is not */
	char *root;
	char *outside;
} fixture;

static char *join(const char *a, const char *b)
{
	return tu_path(a, b);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	f->home = tu_home_path("localfile");
	assert_int_equal(mkdir(f->home, 0700), 0);
	f->root = join(f->home, "root");
	f->outside = join(f->home, "outside");
	assert_int_equal(mkdir(f->root, 0700), 0);
	assert_int_equal(mkdir(f->outside, 0700), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	ward_fetch_file_set_test_hook(NULL, NULL);
	free(f->root);
	free(f->outside);
	tu_home_free(f->home);
	free(f);
	return 0;
}

static void put(const char *dir, const char *name, const char *text)
{
	char *p = join(dir, name);

	tu_write_str(p, text);
	free(p);
}

static void expect_refused(const char *root, const char *path, int code, const char *needle)
{
	ward_fetch_result *r = (ward_fetch_result *)(uintptr_t)1;
	int rc = ward_fetch_file(&r, root, path, 1024);

	if (rc != code || (needle && !tu_error_has(needle)))
		print_error("'%s': got %d (%s), want %d with '%s'\n", path, rc, ward_error_last()->message, code,
			    needle ? needle : "");
	assert_int_equal(rc, code);
	assert_null(r);
	if (needle)
		assert_true(tu_error_has(needle));
}

static void test_ingest_localfile__reads_and_hashes(void **state)
{
	fixture *f = *state;
	ward_fetch_result *r = NULL;
	uint8_t want[WARD_SHA256_LEN];
	char *path;

	path = join(f->root, "sub");
	assert_int_equal(mkdir(path, 0700), 0);
	free(path);
	put(f->root, "sub/a.md", "# title\nbody\n");
	path = join(f->root, "sub/a.md");
	assert_int_equal(ward_fetch_file(&r, f->root, path, 1024), 0);
	assert_string_equal(r->body, "# title\nbody\n");
	assert_int_equal(r->len, 13);
	assert_int_equal(ward_sha256(want, "# title\nbody\n", 13), 0);
	assert_memory_equal(r->sha256, want, sizeof(want));
	assert_string_equal(r->url, path);
	assert_string_equal(r->final_url, path);
	assert_int_equal(r->status, 0);
	assert_null(r->peer_ip);
	assert_int_equal(strlen(r->fetched_at), 20);
	ward_fetch_result_free(r);

	/* A path relative to the root names the same file. */
	assert_int_equal(ward_fetch_file(&r, f->root, "sub/a.md", 1024), 0);
	assert_string_equal(r->url, path);
	ward_fetch_result_free(r);
	free(path);
}

static void test_ingest_localfile__symlink_outside_refused(void **state)
{
	fixture *f = *state;
	char *target = join(f->outside, "secret");
	char *link = join(f->root, "link");
	char *inside = join(f->root, "inside-link");
	char *path;

	put(f->outside, "secret", "s3cret");
	put(f->root, "real", "ok");
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(symlink("real", inside), 0);
	expect_refused(f->root, link, WARD_EPOLICY, "symlink");
	/* Even a symlink that stays inside is not followed. */
	expect_refused(f->root, inside, WARD_EPOLICY, "symlink");
	/* Nor one in a parent directory. */
	path = join(f->root, "dirlink");
	assert_int_equal(symlink(f->outside, path), 0);
	free(path);
	path = join(f->root, "dirlink/secret");
	expect_refused(f->root, path, WARD_EPOLICY, "symlink");
	free(path);
	free(target);
	free(link);
	free(inside);
}

static void test_ingest_localfile__dotdot_escape_refused(void **state)
{
	fixture *f = *state;
	char *path;

	put(f->outside, "secret", "s3cret");
	expect_refused(f->root, "../outside/secret", WARD_EPOLICY, "escapes the source root");
	path = join(f->root, "../outside/secret");
	expect_refused(f->root, path, WARD_EPOLICY, "escapes the source root");
	free(path);
	expect_refused(f->root, "/etc/passwd", WARD_EPOLICY, "outside the source root");
	expect_refused(f->root, f->root, WARD_EPOLICY, "not a regular file");
}

static void test_ingest_localfile__special_files_refused(void **state)
{
	fixture *f = *state;
	char *fifo = join(f->root, "fifo");
	char *dir = join(f->root, "dir");

	/* A FIFO with no writer: opening it must not block. */
	assert_int_equal(mkfifo(fifo, 0600), 0);
	expect_refused(f->root, fifo, WARD_EPOLICY, "not a regular file");
	assert_int_equal(mkdir(dir, 0700), 0);
	expect_refused(f->root, dir, WARD_EPOLICY, "not a regular file");
	/* Devices: /dev as the root, since making a device node needs root. */
	expect_refused("/dev", "/dev/null", WARD_EPOLICY, "not a regular file");
	expect_refused("/dev", "/dev/zero", WARD_EPOLICY, "not a regular file");
	/* /proc/self is a magic symlink. */
	expect_refused("/proc", "/proc/self/environ", WARD_EPOLICY, "symlink");
	expect_refused(f->root, "missing.txt", WARD_ENOTFOUND, "does not exist");
	free(fifo);
	free(dir);
}

static void test_ingest_localfile__size_cap(void **state)
{
	fixture *f = *state;
	ward_fetch_result *r = NULL;
	char *at = join(f->root, "at");
	char *over = join(f->root, "over");
	char *sparse = join(f->root, "sparse");
	char buf[1025];
	int fd;

	memset(buf, 'a', sizeof(buf));
	tu_write_file(at, buf, 1024);
	tu_write_file(over, buf, 1025);
	assert_int_equal(ward_fetch_file(&r, f->root, at, 1024), 0);
	assert_int_equal(r->len, 1024);
	ward_fetch_result_free(r);
	expect_refused(f->root, over, WARD_ETOOBIG, "exceeds the cap of 1024 bytes");
	/* A huge sparse file is refused on fstat, before any read. */
	fd = open(sparse, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)1 << 40), 0);
	close(fd);
	expect_refused(f->root, sparse, WARD_ETOOBIG, "exceeds the cap");
	free(at);
	free(over);
	free(sparse);
}

typedef struct {
	int attempts; /* modify during attempts [0, attempts) */
	size_t append;
	int calls;
} hook_ctx;

static void append_hook(void *vctx, int attempt, const char *path)
{
	hook_ctx *h = vctx;
	char *extra;
	int fd;

	h->calls++;
	if (attempt >= h->attempts)
		return;
	extra = malloc(h->append);
	assert_non_null(extra);
	memset(extra, 'z', h->append);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, extra, h->append), (ssize_t)h->append);
	close(fd);
	free(extra);
}

static void test_ingest_localfile__changed_once_is_reread(void **state)
{
	fixture *f = *state;
	ward_fetch_result *r = NULL;
	hook_ctx h = {1, 5, 0};
	char *p = join(f->root, "growing");
	uint8_t want[WARD_SHA256_LEN];

	tu_write_str(p, "hello");
	ward_fetch_file_set_test_hook(append_hook, &h);
	assert_int_equal(ward_fetch_file(&r, f->root, p, 1024), 0);
	assert_int_equal(h.calls, 2);
	/* The second, stable read is what is returned and hashed. */
	assert_string_equal(r->body, "hellozzzzz");
	assert_int_equal(ward_sha256(want, "hellozzzzz", 10), 0);
	assert_memory_equal(r->sha256, want, sizeof(want));
	ward_fetch_result_free(r);
	free(p);
}

static void test_ingest_localfile__changing_file_refused(void **state)
{
	fixture *f = *state;
	hook_ctx h = {2, 5, 0};
	char *p = join(f->root, "busy");

	tu_write_str(p, "hello");
	ward_fetch_file_set_test_hook(append_hook, &h);
	expect_refused(f->root, p, WARD_EIO, "changed while reading");
	assert_int_equal(h.calls, 2);
	free(p);
}

static void test_ingest_localfile__growth_past_cap_during_read(void **state)
{
	fixture *f = *state;
	hook_ctx h = {2, 1000, 0};
	char *p = join(f->root, "big");
	size_t n = WARD_FETCH_READ_CHUNK + 10;
	char *data = malloc(n);
	ward_fetch_result *r = (ward_fetch_result *)(uintptr_t)1;

	memset(data, 'b', n);
	tu_write_file(p, data, n);
	ward_fetch_file_set_test_hook(append_hook, &h);
	assert_int_equal(ward_fetch_file(&r, f->root, p, n + 100), WARD_ETOOBIG);
	assert_null(r);
	assert_true(tu_error_has("grew past the cap"));
	free(data);
	free(p);
}

static void test_ingest_localfile__list_skips_symlinks_and_specials(void **state)
{
	fixture *f = *state;
	char **paths = NULL;
	size_t n = 0;
	char *p;

	put(f->outside, "secret", "s3cret");
	put(f->root, "b.txt", "b");
	put(f->root, "a.md", "a");
	p = join(f->root, "sub");
	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
	put(f->root, "sub/c.html", "c");
	p = join(f->root, "link-file");
	assert_int_equal(symlink("/etc/passwd", p), 0);
	free(p);
	p = join(f->root, "link-dir");
	assert_int_equal(symlink(f->outside, p), 0);
	free(p);
	p = join(f->root, "fifo");
	assert_int_equal(mkfifo(p, 0600), 0);
	free(p);

	assert_int_equal(ward_fetch_list_files(&paths, &n, f->root, 100), 0);
	assert_int_equal(n, 3);
	p = join(f->root, "a.md");
	assert_string_equal(paths[0], p);
	free(p);
	p = join(f->root, "b.txt");
	assert_string_equal(paths[1], p);
	free(p);
	p = join(f->root, "sub/c.html");
	assert_string_equal(paths[2], p);
	free(p);
	ward_fetch_paths_free(paths, n);

	/* Over the cap is an error, never a silently shortened list. */
	assert_int_equal(ward_fetch_list_files(&paths, &n, f->root, 2), WARD_ETOOBIG);
	assert_null(paths);
	assert_int_equal(n, 0);
	assert_true(tu_error_has("more than 2 files"));
}

static void test_ingest_localfile__root_must_not_be_symlink(void **state)
{
	fixture *f = *state;
	char *link = join(f->home, "rootlink");
	char **paths = NULL;
	size_t n = 0;

	put(f->root, "a.md", "a");
	assert_int_equal(symlink(f->root, link), 0);
	expect_refused(link, "a.md", WARD_EPOLICY, "symlink");
	assert_int_equal(ward_fetch_list_files(&paths, &n, link, 10), WARD_EPOLICY);
	assert_null(paths);
	free(link);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ingest_localfile__reads_and_hashes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_localfile__symlink_outside_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_localfile__dotdot_escape_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_localfile__special_files_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_localfile__size_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_localfile__changed_once_is_reread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_localfile__changing_file_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_localfile__growth_past_cap_during_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_localfile__list_skips_symlinks_and_specials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_localfile__root_must_not_be_symlink, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
