/*
 * The matcher: the bundled rule set (rules/injection) over any text, on the
 * channel the first byte picks, with and without the Vectorscan prefilter;
 * both must report the same findings, inside the text.
 */
#include <errno.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "core/limits.h"
#include "ragward/extract.h"
#include "ragward/scan.h"
#include "ragward/scandoc.h"

#define FUZZ_MAX_INPUT (64 * 1024)

#ifndef RAGWARD_FUZZ_RULES_DIR
#define RAGWARD_FUZZ_RULES_DIR "rules/injection"
#endif

static ward_ruleset *rs_pre, *rs_pcre;

static void free_rulesets(void)
{
	ward_ruleset_free(rs_pre);
	ward_ruleset_free(rs_pcre);
	rs_pre = rs_pcre = NULL;
}

static void load_once(void)
{
	ward_ruleset_opts opts = {0};
	const char *dir = getenv("RAGWARD_FUZZ_RULES");

	if (rs_pre)
		return;
	if (!dir)
		dir = RAGWARD_FUZZ_RULES_DIR;
	/* Compiling the bundled set's Vectorscan databases takes seconds under
	 * ASan: keep them in a cache that outlives the process (the cache is
	 * verified on load, so a stale one is rebuilt). */
	{
		static char cache[4096];
		const char *t = getenv("TMPDIR");

		snprintf(cache, sizeof(cache), "%s/ragward-fuzz-hscache", t && *t ? t : "/tmp");
		if (mkdir(cache, 0700) == 0 || errno == EEXIST)
			opts.cache_dir = cache;
	}
	/* The packs' own checks (examples, pumped inputs) are the rules tests'
	 * business; here the set is only the matcher's input. */
	opts.skip_pump_check = 1;
	opts.skip_examples = 1;
	/* Both sets must come from the same packs: when someone edits them
	 * between the two loads, load both again. */
	for (int attempt = 0;; attempt++) {
		opts.no_prefilter = 0;
		if (ward_ruleset_load(&rs_pre, dir, &opts) != 0) {
			fprintf(stderr, "fuzz_scan: cannot load rules from '%s': %s\n", dir,
				ward_error_last()->message);
			abort();
		}
		opts.no_prefilter = 1;
		if (ward_ruleset_load(&rs_pcre, dir, &opts) != 0) {
			fprintf(stderr, "fuzz_scan: cannot load rules from '%s': %s\n", dir,
				ward_error_last()->message);
			abort();
		}
		if (strcmp(ward_ruleset_sha256(rs_pre), ward_ruleset_sha256(rs_pcre)) == 0)
			break;
		free_rulesets();
		if (attempt == 5) {
			fprintf(stderr, "fuzz_scan: the rule packs in '%s' keep changing while loading\n", dir);
			abort();
		}
	}
	atexit(free_rulesets);
}

static int same(const ward_findings *a, const ward_findings *b)
{
	if (a->n != b->n || a->incomplete != b->incomplete)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->items[i].rule_id, b->items[i].rule_id) != 0 || a->items[i].start != b->items[i].start ||
		    a->items[i].end != b->items[i].end || a->items[i].view != b->items[i].view)
			return 0;
	return 1;
}

static void dump(const char *what, const ward_findings *f)
{
	fprintf(stderr, "%s: %zu findings%s\n", what, f->n, f->incomplete ? " (incomplete)" : "");
	for (size_t i = 0; i < f->n; i++)
		fprintf(stderr, "  %s view=%s [%zu,%zu) %s\n", f->items[i].rule_id, ward_view_name(f->items[i].view),
			f->items[i].start, f->items[i].end, f->items[i].excerpt);
}

/* The whole-document path too (ward_scan_document): the same bytes as a
 * Markdown document, so links, comments, reference definitions and decoded
 * runs (rescanned as text) all take part; both engines agree and every
 * offset stays inside the document. */
static void scan_as_document(const char *text, size_t len)
{
	ward_extracted *x = NULL;
	ward_findings f1, f2;
	int r1, r2;

	if (ward_extract(&x, text, len, WARD_TYPE_MARKDOWN) != 0) {
		ward_error_clear();
		return;
	}
	ward_findings_init(&f1);
	ward_findings_init(&f2);
	r1 = ward_scan_document(rs_pre, x, &f1);
	r2 = ward_scan_document(rs_pcre, x, &f2);
	FUZZ_CHECK(r1 == r2);
	if (r1 == 0) {
		if (!same(&f1, &f2)) {
			dump("document, prefilter", &f1);
			dump("document, pcre2-only", &f2);
			FUZZ_CHECK(!"the prefilter and PCRE2-only document scans disagree");
		}
		for (size_t i = 0; i < f1.n; i++)
			FUZZ_CHECK(f1.items[i].start <= f1.items[i].end && f1.items[i].end <= len);
	}
	ward_error_clear();
	ward_findings_dispose(&f1);
	ward_findings_dispose(&f2);
	ward_extracted_free(x);
}

/* Loading (seconds the first time: Vectorscan compiles) happens before the
 * first input, outside libFuzzer's per-input timeout. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	load_once();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ward_findings f1, f2;
	ward_channel ch;
	const char *text;
	size_t len;
	int r1, r2;

	if (size < 1 || size > FUZZ_MAX_INPUT)
		return 0;
	load_once();
	ch = (ward_channel)(data[0] % WARD_CH_COUNT);
	text = (const char *)data + 1;
	len = size - 1;
	ward_findings_init(&f1);
	ward_findings_init(&f2);
	r1 = ward_scan_text(rs_pre, ch, text, len, &f1);
	r2 = ward_scan_text(rs_pcre, ch, text, len, &f2);
	FUZZ_CHECK(r1 == r2);
	if (!ward_utf8_valid(text, len, NULL))
		FUZZ_CHECK(r1 == WARD_EINVAL);
	if (r1 == 0 && !same(&f1, &f2)) {
		dump("prefilter", &f1);
		dump("pcre2-only", &f2);
		FUZZ_CHECK(!"the prefilter and PCRE2-only scans disagree");
	}
	if (r1 == 0) {
		FUZZ_CHECK(f1.n <= WARD_MAX_FINDINGS + 1);
		for (size_t i = 0; i < f1.n; i++) {
			const ward_finding *x = &f1.items[i];

			FUZZ_CHECK(x->start <= x->end && x->end <= len);
			FUZZ_CHECK(x->severity >= 1 && x->severity <= 4);
			FUZZ_CHECK(x->excerpt != NULL);
		}
	}
	ward_findings_dispose(&f1);
	ward_findings_dispose(&f2);
	scan_as_document(text, len);
	return 0;
}
