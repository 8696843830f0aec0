/*
 * Throughput of ward_normalize (all four views, inventory and decoding) over
 * a directory of documents read as text, next to ICU's own NFKC_Casefold and
 * NFKC on the same data in the same run. Prints figures; asserts nothing.
 * Times are this thread's CPU time (one core; other load inflates wall time).
 *
 * Not built by default. Build against a release build of the library:
 *
 *   cmake -S . -B /tmp/build-rel -DCMAKE_BUILD_TYPE=Release -DRAGWARD_TESTS=OFF
 *   cmake --build /tmp/build-rel -j2 --target ragward_lib
 *   gcc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -I. \
 *       bench/normalize_bench.c /tmp/build-rel/libragward.a \
 *       $(pkg-config --libs icu-i18n icu-uc libcrypto libcurl sqlite3 libxml-2.0 \
 *         libpcre2-8 libmagic jansson yaml-0.1 libmicrohttpd) \
 *       $(pkg-config --libs libhs 2>/dev/null) -lpthread -o /tmp/normalize_bench
 *   /tmp/normalize_bench [DIR] [PASSES]     (default ../shared/eval/dev/docs, 5)
 *
 * Each figure is the best of PASSES passes over every file (invalid UTF-8 and
 * files over WARD_MAX_SCAN_BYTES are skipped). The ICU figures normalize
 * UTF-16 converted beforehand (the conversion is not timed), so they are the
 * normalizer alone; "ICU NFKC_CF incl. UTF-8<->16" adds the two conversions
 * a C caller of ICU pays.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "ragward/normalize.h"
#include "core/limits.h"

typedef struct {
	char *u8;
	size_t len;
	UChar *u16;
	int32_t len16;
} doc;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		if (buf != NULL) {
			buf[n] = '\0';
			*len = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

static double run_ward(doc *d, size_t nd)
{
	double t0 = now();
	size_t i;

	for (i = 0; i < nd; i++) {
		ward_normalized *n = NULL;

		if (ward_normalize(&n, d[i].u8, d[i].len) != 0) {
			fprintf(stderr, "normalize failed on doc %zu\n", i);
			exit(1);
		}
		ward_normalized_free(n);
	}
	return now() - t0;
}

static double run_icu(doc *d, size_t nd, const UNormalizer2 *nm, UChar *out, int32_t cap, int with_conv, char *u8out)
{
	double t0 = now();
	size_t i;

	for (i = 0; i < nd; i++) {
		UErrorCode e = U_ZERO_ERROR;
		int32_t n, n8;
		UChar *src = d[i].u16;
		int32_t len16 = d[i].len16;

		if (with_conv) {
			u_strFromUTF8(out + cap / 2, cap / 2, &len16, d[i].u8, (int32_t)d[i].len, &e);
			src = out + cap / 2;
		}
		n = unorm2_normalize(nm, src, len16, out, cap / 2, &e);
		if (with_conv)
			u_strToUTF8(u8out, cap * 2, &n8, out, n, &e);
		if (U_FAILURE(e)) {
			fprintf(stderr, "ICU failed on doc %zu: %s\n", i, u_errorName(e));
			exit(1);
		}
	}
	return now() - t0;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "../shared/eval/dev/docs";
	int passes = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 5;
	DIR *dh = opendir(dir);
	struct dirent *de;
	doc *d = NULL;
	size_t nd = 0, cap = 0, total = 0, ascii = 0, i;
	int32_t maxu16 = 0;
	UChar *out;
	char *u8out;
	UErrorCode e = U_ZERO_ERROR;
	const UNormalizer2 *cf = unorm2_getNFKCCasefoldInstance(&e);
	const UNormalizer2 *kc = unorm2_getNFKCInstance(&e);
	double best[4] = {1e30, 1e30, 1e30, 1e30};
	int p;

	if (dh == NULL || U_FAILURE(e)) {
		fprintf(stderr, "cannot open '%s' or ICU\n", dir);
		return 2;
	}
	while ((de = readdir(dh)) != NULL) {
		char path[4096];
		size_t len = 0;
		char *s;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		s = slurp(path, &len);
		if (s == NULL || len > WARD_MAX_SCAN_BYTES || !ward_utf8_valid(s, len, NULL)) {
			free(s);
			continue;
		}
		if (nd == cap) {
			cap = cap ? cap * 2 : 256;
			d = realloc(d, cap * sizeof(*d));
		}
		d[nd].u8 = s;
		d[nd].len = len;
		d[nd].u16 = malloc((len + 1) * sizeof(UChar));
		e = U_ZERO_ERROR;
		u_strFromUTF8(d[nd].u16, (int32_t)len + 1, &d[nd].len16, s, (int32_t)len, &e);
		if (d[nd].len16 > maxu16)
			maxu16 = d[nd].len16;
		total += len;
		{
			size_t k;

			for (k = 0; k < len && (unsigned char)s[k] < 0x80; k++)
				;
			ascii += k == len;
		}
		nd++;
	}
	closedir(dh);
	/* NFKC_CF output fits in 18x; half the buffer is output, half input. */
	out = malloc((size_t)maxu16 * 2 * 20 * sizeof(UChar));
	u8out = malloc((size_t)maxu16 * 2 * 20 * 4);
	printf("%zu documents, %.1f MB, %zu ASCII-only, best of %d passes\n", nd, (double)total / 1e6, ascii, passes);
	for (p = 0; p < passes; p++) {
		double t;

		t = run_ward(d, nd);
		best[0] = t < best[0] ? t : best[0];
		t = run_icu(d, nd, cf, out, maxu16 * 40, 0, u8out);
		best[1] = t < best[1] ? t : best[1];
		t = run_icu(d, nd, cf, out, maxu16 * 40, 1, u8out);
		best[2] = t < best[2] ? t : best[2];
		t = run_icu(d, nd, kc, out, maxu16 * 40, 0, u8out);
		best[3] = t < best[3] ? t : best[3];
	}
	printf("ward_normalize (4 views)         %8.1f MB/s\n", (double)total / 1e6 / best[0]);
	printf("ICU NFKC_Casefold (UTF-16)       %8.1f MB/s\n", (double)total / 1e6 / best[1]);
	printf("ICU NFKC_CF incl. UTF-8<->16     %8.1f MB/s\n", (double)total / 1e6 / best[2]);
	printf("ICU NFKC (UTF-16)                %8.1f MB/s\n", (double)total / 1e6 / best[3]);
	printf("ratio ward / ICU NFKC_Casefold   %8.2f\n", best[1] / best[0]);
	printf("ratio ward / ICU NFKC            %8.2f\n", best[3] / best[0]);
	for (i = 0; i < nd; i++) {
		free(d[i].u8);
		free(d[i].u16);
	}
	free(d);
	free(out);
	free(u8out);
	return 0;
}
