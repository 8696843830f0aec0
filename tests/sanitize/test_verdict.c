/*
 * Verdicts from findings: per-rule dedupe, channel factors, trust tiers,
 * strip for never-served channels, scan.incomplete always quarantines, and
 * configured thresholds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "ragward/verdict.h"

static ward_finding mk(const char *id, int sev, ward_channel ch)
{
	ward_finding f;

	memset(&f, 0, sizeof(f));
	f.rule_id = (char *)id;
	f.category = (char *)"test";
	f.severity = f.base_severity = sev;
	f.channel = ch;
	return f;
}

static void decide(ward_finding *items, size_t n, int trust, ward_verdict *v, double *score)
{
	ward_findings f;
	ward_policy p;

	memset(&f, 0, sizeof(f));
	f.items = items;
	f.n = f.cap = n;
	ward_policy_default(&p);
	ward_verdict_decide(v, score, &f, trust, &p);
}

static void test_sanitize_verdict__tiers_and_dedupe(void **state)
{
	ward_verdict v;
	double score;
	ward_finding one[] = {mk("override.x", 3, WARD_CH_VISIBLE)};
	ward_finding same_rule_twice[] = {mk("override.x", 3, WARD_CH_VISIBLE), mk("override.x", 3, WARD_CH_VISIBLE)};
	ward_finding hidden[] = {mk("override.x", 3, WARD_CH_HIDDEN)};

	(void)state;
	decide(NULL, 0, 1, &v, &score);
	assert_int_equal(v, WARD_VERDICT_ACCEPT);
	decide(one, 1, 1, &v, &score);
	assert_int_equal(v, WARD_VERDICT_QUARANTINE); /* 6 at standard */
	assert_true(score == 6.0);
	decide(same_rule_twice, 2, 1, &v, &score);
	assert_true(score == 6.0); /* a rule counts once */
	decide(one, 1, 2, &v, &score);
	assert_int_equal(v, WARD_VERDICT_FLAG); /* high trust: more room */
	decide(hidden, 1, 1, &v, &score);
	assert_true(score == 9.0); /* hidden placement weighs more */
}

static void test_sanitize_verdict__strip_only_for_unserved_channels(void **state)
{
	ward_verdict v;
	double score;
	ward_finding zw[] = {mk("scan.invisible.zero-width", 1, WARD_CH_INVISIBLE)};
	ward_finding visible_low[] = {mk("persona.x", 1, WARD_CH_VISIBLE)};

	(void)state;
	decide(zw, 1, 1, &v, &score);
	assert_int_equal(v, WARD_VERDICT_STRIP);
	decide(visible_low, 1, 1, &v, &score);
	assert_int_equal(v, WARD_VERDICT_FLAG);
}

static void test_sanitize_verdict__incomplete_scan_never_passes(void **state)
{
	ward_verdict v;
	double score;
	ward_finding inc[] = {mk("scan.incomplete", 1, WARD_CH_VISIBLE)};
	ward_findings f;
	ward_policy p;

	(void)state;
	decide(inc, 1, 2, &v, &score);
	assert_int_equal(v, WARD_VERDICT_QUARANTINE);
	/* the flag alone, without a finding, also quarantines */
	memset(&f, 0, sizeof(f));
	f.incomplete = 1;
	ward_policy_default(&p);
	ward_verdict_decide(&v, &score, &f, 2, &p);
	assert_int_equal(v, WARD_VERDICT_QUARANTINE);
}

static void test_sanitize_verdict__configured_thresholds(void **state)
{
	ward_policy p;
	double th[3][3];

	(void)state;
	for (int t = 0; t < 3; t++)
		for (int l = 0; l < 3; l++)
			th[t][l] = -1;
	ward_policy_default(&p);
	th[1][1] = 12;
	assert_int_equal(ward_policy_configure(&p, th), 0);
	assert_true(p.tier[1].quarantine == 12 && p.tier[1].reject == 20);
	th[1][1] = 25; /* above reject: not ascending */
	ward_policy_default(&p);
	assert_int_equal(ward_policy_configure(&p, th), WARD_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sanitize_verdict__tiers_and_dedupe),
		cmocka_unit_test(test_sanitize_verdict__strip_only_for_unserved_channels),
		cmocka_unit_test(test_sanitize_verdict__incomplete_scan_never_passes),
		cmocka_unit_test(test_sanitize_verdict__configured_thresholds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
