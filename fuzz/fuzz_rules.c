/*
 * Rule-pack loading: YAML validation, PCRE2 compilation with its limits, the
 * examples, and the Vectorscan prefilter databases. The input is one pack
 * file in a scratch rule directory.
 *
 * When the pack loads, it is loaded a second time without the prefilter and
 * the input itself (which holds the rules' examples) is scanned with both:
 * the findings must be identical (scan.h promises the same results).
 */
#include "fuzz_common.h"
#include "ragward/scan.h"

#define FUZZ_MAX_INPUT (32 * 1024)

static int same_findings(const ward_findings *a, const ward_findings *b)
{
	if (a->n != b->n || a->incomplete != b->incomplete)
		return 0;
	for (size_t i = 0; i < a->n; i++) {
		const ward_finding *x = &a->items[i], *y = &b->items[i];

		if (strcmp(x->rule_id, y->rule_id) != 0 || x->start != y->start || x->end != y->end ||
		    x->view != y->view || x->severity != y->severity)
			return 0;
	}
	return 1;
}

static void check_findings(const ward_findings *f, size_t len)
{
	for (size_t i = 0; i < f->n; i++) {
		FUZZ_CHECK(f->items[i].rule_id != NULL);
		FUZZ_CHECK(f->items[i].start <= f->items[i].end && f->items[i].end <= len);
		FUZZ_CHECK(f->items[i].severity >= 1 && f->items[i].severity <= 4);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ward_ruleset_opts opts = {0};
	ward_ruleset *rs = NULL, *rs2 = NULL;
	ward_findings f1, f2;
	const char *dir;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	/* The admission harness pumps every pattern with up to 64 KiB inputs:
	 * seconds per rule, so leave it to `rules check` and its unit tests. */
	opts.skip_pump_check = 1;
	fuzz_write_file("pack.yaml", data, size);
	dir = fuzz_scratch_dir();
	if (ward_ruleset_load(&rs, dir, &opts) != 0) {
		FUZZ_CHECK(rs == NULL);
		return 0;
	}
	FUZZ_CHECK(ward_ruleset_count(rs) >= 1);
	FUZZ_CHECK(strlen(ward_ruleset_sha256(rs)) == 64);
	opts.no_prefilter = 1;
	FUZZ_CHECK(ward_ruleset_load(&rs2, dir, &opts) == 0);
	FUZZ_CHECK(strcmp(ward_ruleset_sha256(rs), ward_ruleset_sha256(rs2)) == 0);
	if (ward_utf8_valid((const char *)data, size, NULL)) {
		for (int ch = 0; ch < WARD_CH_COUNT; ch += 3) {
			int r1, r2;

			ward_findings_init(&f1);
			ward_findings_init(&f2);
			r1 = ward_scan_text(rs, (ward_channel)ch, (const char *)data, size, &f1);
			r2 = ward_scan_text(rs2, (ward_channel)ch, (const char *)data, size, &f2);
			FUZZ_CHECK(r1 == r2);
			if (r1 == 0) {
				check_findings(&f1, size);
				FUZZ_CHECK(same_findings(&f1, &f2));
			}
			ward_findings_dispose(&f1);
			ward_findings_dispose(&f2);
		}
	}
	ward_ruleset_free(rs2);
	ward_ruleset_free(rs);
	return 0;
}
