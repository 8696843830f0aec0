/*
 * Scanner throughput, single core: MB/s of raw text over a corpus, all views
 * the rules declare, with the Vectorscan prefilter and without (PCRE2 JIT
 * one pattern at a time), plus the raw Vectorscan rate of the same databases
 * (hs_scan with a no-op callback) measured in the same run. Prints figures;
 * asserts nothing. Not built by default. Times are this thread's CPU time
 * (single core by definition; other load on the machine inflates wall time).
 *
 * Build (release library, no sanitizers):
 *   cmake -S . -B /tmp/build-rel -DCMAKE_BUILD_TYPE=Release -DRAGWARD_TESTS=OFF
 *   cmake --build /tmp/build-rel -j2 --target ragward_lib
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DRAGWARD_HAVE_VECTORSCAN=1 \
 *      -Iinclude -I. $(pkg-config --cflags libpcre2-8 jansson) bench/scan_bench.c \
 *      -o /tmp/scan_bench /tmp/build-rel/libragward.a \
 *      $(pkg-config --libs sqlite3 libxml-2.0 libpcre2-8 libcurl libcrypto libmagic icu-uc \
 *        icu-i18n jansson yaml-0.1 libmicrohttpd libhs) -lpthread -lstdc++
 * Run:
 *   /tmp/scan_bench RULES_DIR [DOCS_DIR] [ROUNDS]
 *   (defaults: ../shared/eval/dev/docs, 3 rounds; the best round is reported)
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef RAGWARD_HAVE_VECTORSCAN
#include <hs/hs.h>
#endif

#include "ragward/scan.h"
#include "core/limits.h"
#include "core/yaml.h"
#include "sanitize/scan_internal.h"

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

typedef struct {
	char *text;
	size_t len;
	ward_normalized *norm;
} doc;

#ifdef RAGWARD_HAVE_VECTORSCAN
static int noop(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags, void *ctx)
{
	(void)id, (void)from, (void)to, (void)flags, (void)ctx;
	return 0;
}
#endif

static ward_ruleset *load(const char *dir, int no_prefilter)
{
	ward_ruleset_opts o;
	ward_ruleset *rs = NULL;
	double t0 = now();

	memset(&o, 0, sizeof(o));
	o.no_prefilter = no_prefilter;
	o.skip_pump_check = 1;
	o.skip_examples = 1;
	if (ward_ruleset_load(&rs, dir, &o) != 0) {
		fprintf(stderr, "scan_bench: %s\n", ward_error_last()->message);
		exit(2);
	}
	printf("load %-14s %.3f s\n", no_prefilter ? "(pcre2 only)" : "(prefilter)", now() - t0);
	return rs;
}

int main(int argc, char **argv)
{
	const char *rules = argc > 1 ? argv[1] : "rules/injection";
	const char *docs_dir = argc > 2 ? argv[2] : "../shared/eval/dev/docs";
	int rounds = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 3;
	doc *docs = NULL;
	size_t ndocs = 0, cap = 0, total = 0, findings = 0;
	ward_ruleset *pre, *plain;
	ward_ruleset_stats st;
	DIR *d;
	struct dirent *de;
	double best_pre = 1e9, best_plain = 1e9, best_hs = 1e9, t0, t_norm;

	if (!(d = opendir(docs_dir))) {
		fprintf(stderr, "scan_bench: cannot open '%s'\n", docs_dir);
		return 2;
	}
	while ((de = readdir(d)) != NULL) {
		char path[4096];
		doc x;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", docs_dir, de->d_name);
		memset(&x, 0, sizeof(x));
		if (ward_file_read(&x.text, &x.len, path, WARD_MAX_SCAN_BYTES) != 0 ||
		    ward_normalize(&x.norm, x.text, x.len) != 0)
			continue; /* not UTF-8 text or too big: the scanner would refuse it too */
		if (ndocs == cap) {
			cap = cap ? cap * 2 : 256;
			docs = realloc(docs, cap * sizeof(*docs));
		}
		docs[ndocs++] = x;
		total += x.len;
	}
	closedir(d);
	printf("corpus %s: %zu files, %.1f MB\n", docs_dir, ndocs, (double)total / 1e6);

	t0 = now();
	for (size_t i = 0; i < ndocs; i++) {
		ward_normalized *n = NULL;
		if (ward_normalize(&n, docs[i].text, docs[i].len) == 0)
			ward_normalized_free(n);
	}
	t_norm = now() - t0;
	printf("normalize (all views): %.1f MB/s\n", (double)total / 1e6 / t_norm);

	pre = load(rules, 0);
	plain = load(rules, 1);
	ward_ruleset_stats_get(pre, &st);
	printf("rules %zu, patterns %zu; vectorscan: %zu exact, %zu approximate, %zu always-confirm (pattern, view)\n",
	       ward_ruleset_count(pre), st.patterns, st.hs_exact, st.hs_prefilter, st.always_confirm);

	for (int r = 0; r < rounds; r++) {
		double t;
		size_t nf = 0;
		t0 = now();
		for (size_t i = 0; i < ndocs; i++) {
			ward_findings f;
			ward_findings_init(&f);
			if (ward_scan_normalized(pre, WARD_CH_VISIBLE, docs[i].norm, &f) != 0)
				fprintf(stderr, "scan_bench: %s\n", ward_error_last()->message);
			nf += f.n;
			ward_findings_dispose(&f);
		}
		t = now() - t0;
		if (t < best_pre)
			best_pre = t;
		findings = nf;
		t0 = now();
		for (size_t i = 0; i < ndocs; i++) {
			ward_findings f;
			ward_findings_init(&f);
			if (ward_scan_normalized(plain, WARD_CH_VISIBLE, docs[i].norm, &f) != 0)
				fprintf(stderr, "scan_bench: %s\n", ward_error_last()->message);
			ward_findings_dispose(&f);
		}
		t = now() - t0;
		if (t < best_plain)
			best_plain = t;
#ifdef RAGWARD_HAVE_VECTORSCAN
		{
			hs_scratch_t *s = NULL;
			for (int v = 0; v < WARD_VIEW_COUNT; v++)
				if (ward_hsdb_database(pre, (ward_view_kind)v))
					hs_alloc_scratch(
					        (const hs_database_t *)ward_hsdb_database(pre, (ward_view_kind)v), &s);
			t0 = now();
			for (size_t i = 0; i < ndocs; i++)
				for (int v = 0; v < WARD_VIEW_COUNT; v++) {
					const hs_database_t *db = ward_hsdb_database(pre, (ward_view_kind)v);
					const ward_view *view = &docs[i].norm->views[v];
					if (db && view->len)
						hs_scan(db, view->text, (unsigned)view->len, 0, s, noop, NULL);
				}
			t = now() - t0;
			if (t < best_hs)
				best_hs = t;
			hs_free_scratch(s);
		}
#endif
	}
	printf("findings: %zu\n", findings);
	printf("scan with prefilter:     %7.1f MB/s (raw bytes; every view the rules declare)\n",
	       (double)total / 1e6 / best_pre);
	printf("scan PCRE2 only (JIT):   %7.1f MB/s\n", (double)total / 1e6 / best_plain);
	printf("normalize + scan:        %7.1f MB/s (the two together: what one text costs after extraction)\n",
	       (double)total / 1e6 / (t_norm + best_pre));
#ifdef RAGWARD_HAVE_VECTORSCAN
	printf("raw vectorscan (no-op):  %7.1f MB/s (same databases, same views)\n", (double)total / 1e6 / best_hs);
#endif
	ward_ruleset_free(pre);
	ward_ruleset_free(plain);
	for (size_t i = 0; i < ndocs; i++) {
		ward_normalized_free(docs[i].norm);
		free(docs[i].text);
	}
	free(docs);
	return 0;
}
