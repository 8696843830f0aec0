/*
 * HTML extraction throughput, next to libxml2's own parse rates measured in
 * the same run on the same bytes: the raw SAX parse with no callbacks (the
 * ceiling for any extractor built on libxml2) and htmlReadMemory building and
 * freeing a tree (the DOM alternative). Prints figures, asserts nothing.
 *
 * Not built by default. Build against a release build of the library:
 *
 *   cmake -S . -B /tmp/build-rel -DCMAKE_BUILD_TYPE=Release -DRAGWARD_TESTS=OFF
 *   cmake --build /tmp/build-rel --target ragward_lib
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -I. \
 *      $(pkg-config --cflags libxml-2.0) bench/extract_bench.c /tmp/build-rel/libragward.a \
 *      $(pkg-config --libs libxml-2.0 jansson libcrypto) -lpthread -o /tmp/extract_bench
 *
 * Run: /tmp/extract_bench DIR [ROUNDS]   (every *.html file in DIR; best of
 * ROUNDS, default 3, warm: files are read into memory first).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/HTMLparser.h>

#include "ragward/extract.h"
#include "ragward/error.h"

typedef struct {
	char *data;
	size_t len;
} doc;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void silent(void *ctx, xmlErrorPtr err)
{
	(void)ctx;
	(void)err;
}

/* The SAX parse with no callbacks at all, with the extractor's options. */
static void raw_sax(const doc *d)
{
	htmlParserCtxtPtr ctxt = htmlNewParserCtxt();
	htmlSAXHandler sax;
	htmlDocPtr out;

	memset(&sax, 0, sizeof(sax));
	sax.initialized = XML_SAX2_MAGIC;
	sax.serror = silent;
	memcpy(ctxt->sax, &sax, sizeof(sax));
	out = htmlCtxtReadMemory(ctxt, d->data, (int)d->len, NULL, "UTF-8",
	                         HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_IGNORE_ENC);
	if (out != NULL)
		xmlFreeDoc(out);
	htmlFreeParserCtxt(ctxt);
}

static void dom(const doc *d)
{
	htmlDocPtr out = htmlReadMemory(d->data, (int)d->len, NULL, "UTF-8",
	                                HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING);

	if (out != NULL)
		xmlFreeDoc(out);
}

static size_t failures;

static void extract(const doc *d)
{
	ward_extracted *x = NULL;

	if (ward_extract(&x, d->data, d->len, WARD_TYPE_HTML) != 0)
		failures++;
	ward_extracted_free(x);
}

static double best_rate(void (*fn)(const doc *), const doc *docs, size_t n, size_t total, int rounds)
{
	double best = 0;
	int r;

	for (r = 0; r < rounds; r++) {
		double t0 = now();
		size_t i;
		double rate;

		for (i = 0; i < n; i++)
			fn(&docs[i]);
		rate = (double)total / (now() - t0) / 1e6;
		if (rate > best)
			best = rate;
	}
	return best;
}

int main(int argc, char **argv)
{
	DIR *dir;
	struct dirent *e;
	doc *docs = NULL;
	size_t n = 0, cap = 0, total = 0;
	int rounds = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 3;
	double r_sax, r_dom, r_ext;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR [ROUNDS]\n", argv[0]);
		return 2;
	}
	dir = opendir(argv[1]);
	if (dir == NULL) {
		perror(argv[1]);
		return 2;
	}
	while ((e = readdir(dir)) != NULL) {
		char path[4096];
		FILE *f;
		long sz;

		if (!ends_with(e->d_name, ".html"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", argv[1], e->d_name);
		f = fopen(path, "rb");
		if (f == NULL)
			continue;
		fseek(f, 0, SEEK_END);
		sz = ftell(f);
		fseek(f, 0, SEEK_SET);
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			docs = realloc(docs, cap * sizeof(*docs));
		}
		docs[n].data = malloc((size_t)sz + 1);
		docs[n].len = fread(docs[n].data, 1, (size_t)sz, f);
		total += docs[n].len;
		n++;
		fclose(f);
	}
	closedir(dir);
	if (n == 0) {
		fprintf(stderr, "no .html files in %s\n", argv[1]);
		return 2;
	}
	extract(&docs[0]); /* libxml2 initialisation outside the timing */
	failures = 0;
	r_sax = best_rate(raw_sax, docs, n, total, rounds);
	r_dom = best_rate(dom, docs, n, total, rounds);
	r_ext = best_rate(extract, docs, n, total, rounds);
	printf("corpus: %zu html files, %.1f MB, best of %d rounds\n", n, (double)total / 1e6, rounds);
	printf("libxml2 raw SAX parse (no callbacks): %7.1f MB/s\n", r_sax);
	printf("libxml2 htmlReadMemory + xmlFreeDoc:  %7.1f MB/s\n", r_dom);
	printf("ward_extract (HTML, SAX):             %7.1f MB/s  (%.2fx raw SAX, %.1f docs/s)\n", r_ext, r_ext / r_sax,
	       r_ext * 1e6 / ((double)total / (double)n));
	printf("extraction failures: %zu of %zu per round\n", failures / (size_t)rounds, n);
	return 0;
}
