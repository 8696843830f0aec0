/*
 * Prefilter vs PCRE2 alone vs the interpreter on a real corpus: every file
 * of the evaluation set (../shared/eval/dev/docs, or $RAGWARD_EVAL_DOCS) read
 * as text and scanned on every view, with the fixture packs and, when they
 * exist, the shipped packs of rules/injection. Findings must be identical.
 * Slow (tens of seconds under sanitizers): candidate for the "slow" label.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ragward/alloc.h"
#include "ragward/normalize.h"
#include "ragward/scan.h"
#include "core/limits.h"
#include "support/testutil.h"
#include "core/banned.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int same(const ward_findings *a, const ward_findings *b)
{
	if (a->n != b->n || a->incomplete != b->incomplete)
		return 0;
	for (size_t i = 0; i < a->n; i++) {
		const ward_finding *x = &a->items[i], *y = &b->items[i];
		if (strcmp(x->rule_id, y->rule_id) || x->view != y->view || x->start != y->start || x->end != y->end ||
		    x->severity != y->severity || strcmp(x->excerpt, y->excerpt))
			return 0;
	}
	return 1;
}

static void run_corpus(const char *rules_dir)
{
	const char *src = getenv("RAGWARD_SOURCE_DIR"), *env = getenv("RAGWARD_EVAL_DOCS");
	char docs[4096];
	ward_ruleset *sets[3] = {NULL, NULL, NULL};
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0, scanned = 0, findings = 0;

	snprintf(docs, sizeof(docs), "%s", env ? env : "");
	if (!env)
		snprintf(docs, sizeof(docs), "%s/../shared/eval/dev/docs", src ? src : ".");
	if (!(d = opendir(docs))) {
		print_message("no corpus at %s: skipped\n", docs);
		skip();
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			names = realloc(names, cap * sizeof(*names));
			assert_non_null(names);
		}
		names[n++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_str);

	for (int s = 0; s < 3; s++) {
		ward_ruleset_opts o = {0};
		o.no_prefilter = s > 0;
		o.no_jit = s == 2;
		o.skip_pump_check = 1; /* admission is test_rules' business */
		if (ward_ruleset_load(&sets[s], rules_dir, &o) != 0)
			print_error("%s: %s\n", rules_dir, ward_error_last()->message);
		assert_non_null(sets[s]);
	}
	for (size_t i = 0; i < n; i++) {
		char *path = tu_path(docs, names[i]);
		size_t len = 0;
		char *text = tu_read_file(path, &len);
		ward_normalized *norm = NULL;
		ward_findings f[3];

		free(path);
		if (!text || len > WARD_MAX_SCAN_BYTES || ward_normalize(&norm, text, len) != 0) {
			free(text);
			ward_error_clear();
			continue;
		}
		for (int s = 0; s < 3; s++) {
			ward_findings_init(&f[s]);
			assert_int_equal(ward_scan_normalized(sets[s], WARD_CH_VISIBLE, norm, &f[s]), 0);
		}
		for (int s = 1; s < 3; s++) {
			if (!same(&f[0], &f[s]))
				print_error("%s: set %d differs (%zu vs %zu findings)\n", names[i], s, f[0].n, f[s].n);
			assert_true(same(&f[0], &f[s]));
		}
		scanned++;
		findings += f[0].n;
		for (int s = 0; s < 3; s++)
			ward_findings_dispose(&f[s]);
		ward_normalized_free(norm);
		free(text);
	}
	print_message("%s: %zu of %zu files scanned, %zu findings, identical on 3 paths\n", rules_dir, scanned, n,
	              findings);
	assert_true(scanned > 0);
	for (int s = 0; s < 3; s++)
		ward_ruleset_free(sets[s]);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static void test_sanitize_scan_equiv__fixture_packs(void **state)
{
	const char *src = getenv("RAGWARD_SOURCE_DIR");
	char dir[4096];

	(void)state;
	snprintf(dir, sizeof(dir), "%s/tests/fixtures/rules/valid", src ? src : ".");
	run_corpus(dir);
}

static void test_sanitize_scan_equiv__shipped_packs(void **state)
{
	const char *src = getenv("RAGWARD_SOURCE_DIR");
	char dir[4096];
	struct stat sb;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/rules/injection", src ? src : ".");
	if (stat(dir, &sb) != 0)
		skip();
	run_corpus(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_sanitize_scan_equiv__fixture_packs),
	        cmocka_unit_test(test_sanitize_scan_equiv__shipped_packs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
