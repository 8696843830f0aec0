/*
 * Local file sources: reading beneath an approved root.
 *
 * Confinement is the kernel's job, not string checks: the file is opened
 * with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
 * relative to a descriptor of the root, so "..", absolute symlinks, symlinks
 * in a parent directory and /proc magic links are all refused during the
 * one path walk that also opens the file (no check-then-open race). glibc
 * 2.36 has no openat2() wrapper, hence syscall(2).
 *
 * Everything after the open works on the descriptor: fstat decides "regular
 * file" and the size cap, the bytes hashed are exactly the bytes read, and a
 * second fstat tells whether the file changed while it was being read.
 */
#define _GNU_SOURCE /* O_PATH */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ragward/fetch.h"
#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "ragward/crypto.h"
#include "ragward/error.h"
#include "ragward/store.h"
#include "ingest/fetch_internal.h"
#include "core/limits.h"
#include "core/banned.h"

static ward_fetch_file_hook test_hook;
static void *test_hook_ctx;

void ward_fetch_file_set_test_hook(ward_fetch_file_hook fn, void *ctx)
{
	test_hook = fn;
	test_hook_ctx = ctx;
}

/* The root itself must not be a symlink; its own ancestors are the
 * administrator's choice when the source was approved. */
static int open_root(int *fd, const char *root, int flags)
{
	*fd = open(root, flags | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*fd >= 0)
		return 0;
	if (errno == ENOENT)
		return ward_error_set(WARD_ENOTFOUND, "root '%.200s': does not exist", root);
	if (errno == ELOOP || errno == ENOTDIR)
		return ward_error_set(WARD_EPOLICY, "root '%.200s': not a directory (or a symlink)", root);
	return ward_error_set(WARD_EIO, "root '%.200s': cannot open: %s", root, strerror(errno));
}

/* `path` is absolute under `root`, or relative to it. Only the prefix is
 * compared here; whether the rest stays beneath is openat2's decision. */
static int relative_to_root(const char **rel, const char *root, const char *path)
{
	size_t n = strlen(root);

	*rel = NULL;
	if (strcmp(path, root) == 0)
		return ward_error_set(WARD_EPOLICY, "file '%.200s': not a regular file (the root itself)", path);
	if (path[0] != '/') {
		*rel = path;
	} else if (strcmp(root, "/") == 0) {
		*rel = path + 1;
	} else if (strncmp(path, root, n) == 0 && path[n] == '/') {
		*rel = path + n + 1;
	} else {
		return ward_error_set(WARD_EPOLICY, "file '%.200s': outside the source root '%.200s'", path, root);
	}
	if ((*rel)[0] == '\0')
		return ward_error_set(WARD_EPOLICY, "file '%.200s': not a regular file (the root itself)", path);
	return 0;
}

static int open_beneath(int *fd, int dirfd, const char *rel, const char *path)
{
	struct open_how how;
	long rc;

	memset(&how, 0, sizeof(how));
	/* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused
	 * by the S_ISREG check right after. O_NOCTTY: a tty never becomes ours. */
	how.flags = O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	do
		rc = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	while (rc < 0 && errno == EINTR);
	if (rc >= 0) {
		*fd = (int)rc;
		return 0;
	}
	*fd = -1;
	switch (errno) {
	case EXDEV:
		return ward_error_set(WARD_EPOLICY, "file '%.200s': escapes the source root", path);
	case ELOOP:
		return ward_error_set(WARD_EPOLICY, "file '%.200s': symlink in the path (symlinks are not followed)",
				      path);
	case ENOENT:
	case ENOTDIR:
		return ward_error_set(WARD_ENOTFOUND, "file '%.200s': does not exist", path);
	case ENXIO:
	case EOPNOTSUPP:
		return ward_error_set(WARD_EPOLICY, "file '%.200s': not a regular file", path);
	case ENOSYS:
		return ward_error_set(WARD_EIO, "file '%.200s': openat2 is not available (Linux 5.6 or later needed)",
				      path);
	case EAGAIN:
		/* The kernel could not guarantee a race-free RESOLVE_BENEATH
		 * walk (a concurrent rename); report it, do not retry blindly. */
		return ward_error_set(WARD_EIO, "file '%.200s': path changed while resolving", path);
	default:
		return ward_error_set(WARD_EIO, "file '%.200s': cannot open: %s", path, strerror(errno));
	}
}

static int same_state(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/*
 * One attempt: open, check, read to EOF into `body` (reset first). *changed
 * is set when the descriptor's size, mtime or ctime moved during the read or
 * the bytes read differ from the size seen at the start.
 */
static int read_attempt(ward_buf *body, int *changed, int rootfd, const char *rel, const char *path, size_t max,
			int attempt)
{
	char chunk[WARD_FETCH_READ_CHUNK];
	struct stat before, after;
	int fd = -1;
	int err = 0;
	int first = 1;

	*changed = 0;
	ward_buf_reset(body);
	if ((err = open_beneath(&fd, rootfd, rel, path)) < 0)
		goto done;
	if (fstat(fd, &before) < 0) {
		err = ward_error_set(WARD_EIO, "file '%.200s': fstat failed: %s", path, strerror(errno));
		goto done;
	}
	if (!S_ISREG(before.st_mode)) {
		err = ward_error_set(WARD_EPOLICY, "file '%.200s': not a regular file", path);
		goto done;
	}
	if (before.st_size < 0 || (unsigned long long)before.st_size > (unsigned long long)max) {
		err = ward_error_set(WARD_ETOOBIG, "file '%.200s': %lld bytes exceeds the cap of %zu bytes", path,
				     (long long)before.st_size, max);
		goto done;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = ward_error_set(WARD_EIO, "file '%.200s': read failed: %s", path, strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		/* The cap holds on what is read, not only on what fstat said. */
		if ((size_t)n > max - body->len) {
			err = ward_error_set(WARD_ETOOBIG, "file '%.200s': grew past the cap of %zu bytes while reading",
					     path, max);
			goto done;
		}
		if ((err = ward_buf_append(body, chunk, (size_t)n)) < 0)
			goto done;
		if (first && test_hook != NULL)
			test_hook(test_hook_ctx, attempt, path);
		first = 0;
	}
	if (fstat(fd, &after) < 0) {
		err = ward_error_set(WARD_EIO, "file '%.200s': fstat failed: %s", path, strerror(errno));
		goto done;
	}
	*changed = !same_state(&before, &after) || body->len != (size_t)before.st_size;

done:
	if (fd >= 0)
		close(fd);
	return err;
}

int ward_fetch_file(ward_fetch_result **out, const char *root, const char *path, size_t max_bytes)
{
	ward_fetch_result *r = NULL;
	ward_buf body;
	ward_buf full;
	const char *rel = NULL;
	int rootfd = -1;
	int changed = 0;
	int attempt;
	int err = 0;
	size_t max = max_bytes ? max_bytes : (size_t)WARD_MAX_DOC_BYTES;

	ward_buf_init(&body, max);
	ward_buf_init(&full, WARD_MAX_PATH_LEN);
	*out = NULL;
	if (root == NULL || path == NULL || root[0] != '/') {
		err = ward_error_set(WARD_EINVAL, "fetch file: root must be an absolute path");
		goto done;
	}
	if ((err = relative_to_root(&rel, root, path)) < 0)
		goto done;
	if ((err = ward_buf_puts(&full, root)) < 0 ||
	    (strcmp(root, "/") != 0 && (err = ward_buf_putc(&full, '/')) < 0) || (err = ward_buf_puts(&full, rel)) < 0)
		goto done;
	if ((err = open_root(&rootfd, root, O_PATH)) < 0)
		goto done;

	/* A file rewritten under us is read again once; a second change means
	 * it is being written continuously and any bytes we got are torn. */
	for (attempt = 0; attempt < 2; attempt++) {
		if ((err = read_attempt(&body, &changed, rootfd, rel, full.ptr, max, attempt)) < 0)
			goto done;
		if (!changed)
			break;
	}
	if (changed) {
		err = ward_error_set(WARD_EIO, "file '%.200s': changed while reading (read twice)", full.ptr);
		goto done;
	}

	r = ward_calloc(1, sizeof(*r));
	if (r == NULL || (r->url = ward_strdup(full.ptr)) == NULL || (r->final_url = ward_strdup(full.ptr)) == NULL) {
		err = ward_error_set(WARD_ENOMEM, "fetch file: out of memory");
		goto done;
	}
	ward_now_rfc3339(r->fetched_at);
	if ((err = ward_buf_detach(&body, &r->body, &r->len)) < 0)
		goto done;
	if ((err = ward_sha256(r->sha256, r->body, r->len)) < 0)
		goto done;
	*out = r;
	r = NULL;

done:
	if (rootfd >= 0)
		close(rootfd);
	ward_fetch_result_free(r);
	ward_buf_dispose(&full);
	ward_buf_dispose(&body);
	return err;
}

/* ------------------------------------------------------------ listing */

typedef struct {
	char **v;
	size_t n;
	size_t cap;
	size_t max;
} path_list;

static int list_add(path_list *l, const char *path)
{
	if (l->n >= l->max)
		return ward_error_set(WARD_ETOOBIG, "listing files: more than %zu files beneath the root", l->max);
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		char **v = ward_realloc(l->v, cap * sizeof(*v));

		if (v == NULL)
			return ward_error_set(WARD_ENOMEM, "listing files: out of memory");
		l->v = v;
		l->cap = cap;
	}
	if ((l->v[l->n] = ward_strdup(path)) == NULL)
		return ward_error_set(WARD_ENOMEM, "listing files: out of memory");
	l->n++;
	return 0;
}

/*
 * Walks one directory given as an open descriptor (taken over). Entries are
 * judged with fstatat(AT_SYMLINK_NOFOLLOW) and subdirectories opened with
 * O_NOFOLLOW relative to their parent, so a symlink swapped in between the
 * two calls fails the open instead of being followed.
 */
static int walk(path_list *l, int dfd, ward_buf *prefix, int depth)
{
	DIR *d = NULL;
	struct dirent *e;
	size_t keep = prefix->len;
	int err = 0;

	d = fdopendir(dfd);
	if (d == NULL) {
		err = ward_error_set(WARD_EIO, "listing '%.200s': %s", prefix->ptr, strerror(errno));
		close(dfd);
		goto done;
	}
	if (depth > WARD_FETCH_MAX_DIR_DEPTH) {
		err = ward_error_set(WARD_ETOOBIG, "listing '%.200s': nested deeper than %d directories", prefix->ptr,
				     WARD_FETCH_MAX_DIR_DEPTH);
		goto done;
	}
	for (;;) {
		struct stat st;

		errno = 0;
		e = readdir(d);
		if (e == NULL) {
			if (errno != 0)
				err = ward_error_set(WARD_EIO, "listing '%.200s': %s", prefix->ptr, strerror(errno));
			break;
		}
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue; /* removed meanwhile */
			err = ward_error_set(WARD_EIO, "listing '%.200s/%.100s': %s", prefix->ptr, e->d_name,
					     strerror(errno));
			break;
		}
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
			continue; /* symlinks, FIFOs, devices, sockets */
		prefix->len = keep;
		if ((strcmp(prefix->ptr, "/") != 0 && (err = ward_buf_putc(prefix, '/')) < 0) ||
		    (err = ward_buf_puts(prefix, e->d_name)) < 0) {
			err = ward_error_set(WARD_ETOOBIG, "listing '%.200s': a path is longer than %d bytes",
					     prefix->ptr, WARD_MAX_PATH_LEN);
			break;
		}
		if (S_ISREG(st.st_mode)) {
			if ((err = list_add(l, prefix->ptr)) < 0)
				break;
		} else {
			int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub < 0) {
				if (errno == ELOOP || errno == ENOTDIR || errno == ENOENT)
					continue; /* replaced by a symlink or removed: skip */
				err = ward_error_set(WARD_EIO, "listing '%.200s': %s", prefix->ptr, strerror(errno));
				break;
			}
			if ((err = walk(l, sub, prefix, depth + 1)) < 0)
				break;
		}
	}
	prefix->len = keep;
	if (prefix->ptr != NULL)
		prefix->ptr[keep] = '\0';
done:
	if (d != NULL)
		closedir(d);
	return err;
}

static int cmp_paths(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ward_fetch_list_files(char ***paths, size_t *n, const char *root, size_t max)
{
	path_list l;
	ward_buf prefix;
	int rootfd = -1;
	int err = 0;

	memset(&l, 0, sizeof(l));
	l.max = max ? max : (size_t)WARD_FETCH_MAX_FILES;
	ward_buf_init(&prefix, WARD_MAX_PATH_LEN);
	*paths = NULL;
	*n = 0;
	if (root == NULL || root[0] != '/') {
		err = ward_error_set(WARD_EINVAL, "listing files: root must be an absolute path");
		goto done;
	}
	if ((err = ward_buf_puts(&prefix, root)) < 0)
		goto done;
	/* "/srv/docs/" and "/srv/docs" list the same names. */
	while (prefix.len > 1 && prefix.ptr[prefix.len - 1] == '/')
		prefix.ptr[--prefix.len] = '\0';
	if ((err = open_root(&rootfd, prefix.ptr, O_RDONLY)) < 0)
		goto done;
	err = walk(&l, rootfd, &prefix, 0);
	rootfd = -1; /* taken over by walk */
	if (err < 0)
		goto done;
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), cmp_paths);
	*paths = l.v;
	*n = l.n;
	l.v = NULL;
	l.n = 0;

done:
	if (rootfd >= 0)
		close(rootfd);
	ward_fetch_paths_free(l.v, l.n);
	ward_buf_dispose(&prefix);
	return err;
}

void ward_fetch_paths_free(char **paths, size_t n)
{
	size_t i;

	if (paths == NULL)
		return;
	for (i = 0; i < n; i++)
		ward_free(paths[i]);
	ward_free(paths);
}
