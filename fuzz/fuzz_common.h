/*
 * Helpers shared by the fuzz targets: invariant checks that abort (so both
 * libFuzzer and the standalone replay driver report them as crashes), NUL-
 * terminated copies of the input, and a per-process scratch directory for the
 * parsers that read files.
 */
#ifndef RAGWARD_FUZZ_COMMON_H
#define RAGWARD_FUZZ_COMMON_H

#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant the code under test promised and broke: abort with where. */
#define FUZZ_CHECK(cond)                                                                                      \
	do {                                                                                                  \
		if (!(cond)) {                                                                                \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);          \
			abort();                                                                              \
		}                                                                                             \
	} while (0)

/* A NUL-terminated copy of the input (malloc'd; never NULL on success). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* Splits the input at the first '\n' into two NUL-terminated strings; the
 * second is "" when there is no newline. Free *a only (one allocation). */
static inline void fuzz_split2(const uint8_t *data, size_t size, char **a, char **b)
{
	char *s = fuzz_cstr(data, size), *nl = memchr(s, '\n', size);

	*a = s;
	if (nl) {
		*nl = '\0';
		*b = nl + 1;
	} else {
		*b = s + size;
	}
}

/* ---- scratch directory ------------------------------------------------------ */

static char fuzz_scratch_path[4096];

static inline void fuzz_scratch_cleanup(void)
{
	DIR *d;
	struct dirent *e;
	char p[8192];

	if (!fuzz_scratch_path[0])
		return;
	if ((d = opendir(fuzz_scratch_path)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", fuzz_scratch_path, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(fuzz_scratch_path);
}

/* A private directory for this process, removed at exit. */
static inline const char *fuzz_scratch_dir(void)
{
	if (!fuzz_scratch_path[0]) {
		const char *t = getenv("TMPDIR");

		snprintf(fuzz_scratch_path, sizeof(fuzz_scratch_path), "%s/ragward-fuzz-XXXXXX",
			 t && *t ? t : "/tmp");
		if (!mkdtemp(fuzz_scratch_path)) {
			perror("fuzz: mkdtemp");
			abort();
		}
		atexit(fuzz_scratch_cleanup);
	}
	return fuzz_scratch_path;
}

/* Writes the input to scratch/<name> (replacing it); returns its path in a
 * static buffer. */
static inline const char *fuzz_write_file(const char *name, const uint8_t *data, size_t size)
{
	static char path[8192];
	int fd;
	size_t off = 0;

	snprintf(path, sizeof(path), "%s/%s", fuzz_scratch_dir(), name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror("fuzz: open");
		abort();
	}
	while (off < size) {
		ssize_t w = write(fd, data + off, size - off);

		if (w <= 0) {
			perror("fuzz: write");
			abort();
		}
		off += (size_t)w;
	}
	close(fd);
	return path;
}

#endif
