/*
 * Tests for store/sources.c: requests, the state machine, the two-person
 * rule, config.yaml, the allowlist lookup (incl. the evil prefix cases of
 * issue 2) and the all-or-nothing baseline import.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "ragward/alloc.h"
#include "ragward/audit.h"
#include "ragward/crypto.h"
#include "ragward/sources.h"
#include "ragward/store.h"
#include "tests/support/testutil.h"
#include "core/banned.h"

typedef struct {
	char *home;
	ward_store *s;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->home = tu_new_home("sources");
	f->s = tu_open(f->home, WARD_STORE_SIGN);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	ward_alloc_fail_reset();
	ward_store_close(f->s);
	tu_home_free(f->home);
	free(f);
	return 0;
}

static ward_source_request req_of(const char *name, const char *pattern)
{
	ward_source_request r;

	memset(&r, 0, sizeof(r));
	r.name = name;
	r.pattern = pattern;
	r.trust = WARD_TRUST_STANDARD;
	return r;
}

static int64_t request_ok(ward_store *s, const char *by, const char *name, const char *pattern)
{
	ward_actor a = tu_actor(by);
	ward_source_request r = req_of(name, pattern);
	int64_t id = 0;
	int rc = ward_sources_request(s, &a, &r, &id);

	if (rc != 0)
		fail_msg("request '%s' '%s': %d %s", name, pattern, rc, ward_error_last()->message);
	assert_true(id > 0);
	return id;
}

static int decide(ward_store *s, const char *by, int64_t id, ward_decision d)
{
	ward_actor a = tu_actor(by);

	return ward_sources_decide(s, &a, id, d, NULL);
}

static void decide_ok(ward_store *s, const char *by, int64_t id, ward_decision d)
{
	int rc = decide(s, by, id, d);

	if (rc != 0)
		fail_msg("decide %lld: %d %s", (long long)id, rc, ward_error_last()->message);
}

static char *state_of(ward_store *s, int64_t id)
{
	ward_source src;
	char *st;

	assert_int_equal(ward_sources_get(s, id, &src), 0);
	st = strdup(src.state);
	ward_source_dispose(&src);
	return st;
}

static void assert_state(ward_store *s, int64_t id, const char *want)
{
	char *st = state_of(s, id);

	assert_string_equal(st, want);
	free(st);
}

/* ---- request --------------------------------------------------------- */

static void test_store_sources__request_canonicalizes(void **state)
{
	fixture *f = *state;
	ward_actor a = tu_actor("alice");
	ward_source_request r = req_of("docs", "HTTPS://Docs.Example.COM:443/guide/");
	ward_source src;
	ward_audit_event *ev = NULL;
	size_t n = 0;
	int64_t id = 0;

	r.trust = WARD_TRUST_HIGH;
	r.labels = "public,docs";
	r.reason = "vendor docs";
	assert_int_equal(ward_sources_request(f->s, &a, &r, &id), 0);
	assert_int_equal(ward_sources_get(f->s, id, &src), 0);
	assert_string_equal(src.pattern, "https://docs.example.com/guide/");
	assert_int_equal(src.kind, WARD_KIND_HTTPS);
	assert_int_equal(src.trust, WARD_TRUST_HIGH);
	assert_string_equal(src.state, "requested");
	assert_string_equal(src.origin, "cli");
	assert_string_equal(src.requested_by, "alice");
	assert_int_equal(src.requested_uid, (long)geteuid());
	assert_string_equal(src.reason, "vendor docs");
	assert_string_equal(src.labels, "[\"docs\",\"public\"]");
	assert_null(src.decided_by);
	ward_source_dispose(&src);

	/* the audit event records the canonical pattern too */
	assert_int_equal(ward_audit_list(f->s, 1, &ev, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ev[0].action, "source.request");
	assert_string_equal(ev[0].actor, "alice");
	assert_non_null(strstr(ev[0].details, "https://docs.example.com/guide/"));
	ward_audit_events_free(ev, n);

	/* userinfo, query/fragment in a pattern, non-http schemes, control
	 * characters: refused, nothing stored */
	r = req_of("bad", "https://docs.example.com/guide/#frag");
	assert_int_equal(ward_sources_request(f->s, &a, &r, &id), WARD_EINVAL);
	r = req_of("bad", "https://docs.example.com/guide/?all=1");
	assert_int_equal(ward_sources_request(f->s, &a, &r, &id), WARD_EINVAL);
	r = req_of("bad", "https://bob:pw@a.com/");
	assert_int_equal(ward_sources_request(f->s, &a, &r, &id), WARD_EINVAL);
	assert_int_equal(id, 0);
	r = req_of("bad", "ftp://a.com/");
	r.kind_given = 1;
	r.kind = WARD_KIND_HTTPS;
	assert_int_equal(ward_sources_request(f->s, &a, &r, &id), WARD_EINVAL);
	r = req_of("bad", "https://a.com/\x1b[2J");
	assert_int_equal(ward_sources_request(f->s, &a, &r, &id), WARD_EINVAL);
	/* same name twice */
	r = req_of("docs", "https://other.example.com/");
	assert_int_equal(ward_sources_request(f->s, &a, &r, &id), WARD_EEXISTS);
	assert_int_equal(tu_count_rows(f->home, "sources"), 1);
	/* empty actor */
	{
		ward_actor empty = tu_actor("");
		r = req_of("x", "https://x.example.com/");
		assert_int_equal(ward_sources_request(f->s, &empty, &r, &id), WARD_EINVAL);
	}
	assert_int_equal(tu_count_rows(f->home, "sources"), 1);
}

static void test_store_sources__kind_inference(void **state)
{
	fixture *f = *state;
	ward_actor a = tu_actor("alice");
	ward_source_request r;
	ward_source src;
	int64_t id;
	long events = tu_count_rows(f->home, "audit_events");

	/* an absolute path is a file source, canonicalized */
	id = request_ok(f->s, "alice", "local", "/srv//docs/./guide/");
	assert_int_equal(ward_sources_get(f->s, id, &src), 0);
	assert_int_equal(src.kind, WARD_KIND_FILE);
	assert_string_equal(src.pattern, "/srv/docs/guide");
	ward_source_dispose(&src);

	/* https inferred */
	id = request_ok(f->s, "alice", "web", "https://a.example.com/x/");
	assert_int_equal(ward_sources_get(f->s, id, &src), 0);
	assert_int_equal(src.kind, WARD_KIND_HTTPS);
	ward_source_dispose(&src);

	/* plaintext http must be asked for */
	r = req_of("plain", "http://a.example.com/");
	assert_int_equal(ward_sources_request(f->s, &a, &r, &id), WARD_EINVAL);
	assert_true(tu_error_has("--kind http"));
	r.kind_given = 1;
	r.kind = WARD_KIND_HTTP;
	assert_int_equal(ward_sources_request(f->s, &a, &r, &id), 0);
	assert_int_equal(ward_sources_get(f->s, id, &src), 0);
	assert_int_equal(src.kind, WARD_KIND_HTTP);
	assert_string_equal(src.pattern, "http://a.example.com/");
	ward_source_dispose(&src);

	/* kind and scheme must agree; a file kind needs a path; '..' refused */
	r = req_of("mismatch", "http://b.example.com/");
	r.kind_given = 1;
	r.kind = WARD_KIND_HTTPS;
	assert_int_equal(ward_sources_request(f->s, &a, &r, &id), WARD_EINVAL);
	r = req_of("mismatch", "https://b.example.com/");
	r.kind_given = 1;
	r.kind = WARD_KIND_FILE;
	assert_int_equal(ward_sources_request(f->s, &a, &r, &id), WARD_EINVAL);
	r = req_of("mismatch", "/srv/../etc");
	assert_int_equal(ward_sources_request(f->s, &a, &r, &id), WARD_EINVAL);
	r = req_of("mismatch", "relative/dir");
	assert_true(ward_sources_request(f->s, &a, &r, &id) < 0);

	assert_int_equal(tu_count_rows(f->home, "sources"), 3);
	assert_int_equal(tu_count_rows(f->home, "audit_events"), events + 3);
}

static void test_store_sources__labels(void **state)
{
	fixture *f = *state;
	ward_actor a = tu_actor("alice");
	ward_source_request r;
	ward_source src;
	int64_t id;
	char many[33 * 4], big[80];
	static const struct {
		const char *csv, *want;
	} good[] = {
		{NULL, "[]"},
		{"", "[]"},
		{"b,a,c", "[\"a\",\"b\",\"c\"]"},
		{"x,x,a,x", "[\"a\",\"x\"]"},
		{"team-1,v2.0,under_score", "[\"team-1\",\"under_score\",\"v2.0\"]"},
	};
	static const char *const bad[] = {"A", "a,,b", "a,", ",a", "a b", "a;b", "caf\xc3\xa9", "a\tb"};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char name[32];
		snprintf(name, sizeof(name), "good%zu", i);
		r = req_of(name, "https://labels.example.com/");
		r.labels = good[i].csv;
		assert_int_equal(ward_sources_request(f->s, &a, &r, &id), 0);
		assert_int_equal(ward_sources_get(f->s, id, &src), 0);
		assert_string_equal(src.labels, good[i].want);
		ward_source_dispose(&src);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = req_of("bad", "https://labels.example.com/");
		r.labels = bad[i];
		if (ward_sources_request(f->s, &a, &r, &id) != WARD_EINVAL)
			fail_msg("labels '%s' accepted", bad[i]);
	}
	/* 33 distinct labels: over the cap */
	many[0] = '\0';
	for (int i = 0; i < 33; i++) {
		char one[8];
		snprintf(one, sizeof(one), "%sl%d", i ? "," : "", i);
		memcpy(many + strlen(many), one, strlen(one) + 1);
	}
	r = req_of("bad", "https://labels.example.com/");
	r.labels = many;
	assert_int_equal(ward_sources_request(f->s, &a, &r, &id), WARD_EINVAL);
	/* 65-character label */
	memset(big, 'a', 65);
	big[65] = '\0';
	r.labels = big;
	assert_int_equal(ward_sources_request(f->s, &a, &r, &id), WARD_EINVAL);
	big[64] = '\0';
	r.labels = big;
	assert_int_equal(ward_sources_request(f->s, &a, &r, &id), 0);
	assert_int_equal(tu_count_rows(f->home, "sources"), 6);
}

static void test_store_sources__names_and_text_validated(void **state)
{
	fixture *f = *state;
	ward_actor a = tu_actor("alice");
	ward_source_request r;
	int64_t id;
	char longname[200], longreason[5000];
	static const char *const bad_names[] = {"", "a b", "a/b", "a\nb", "a\x01", "caf\xc3\xa9", "\xff\xfe", "a;drop"};
	static const char *const bad_reasons[] = {"line\x01", "esc \x1b[31m red", "del\x7f", "bad utf8 \xc3\x28",
						  "overlong \xc0\xaf", "surrogate \xed\xa0\x80"};
	tu_counts before = tu_counts_get(f->home);

	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		r = req_of(bad_names[i], "https://a.example.com/");
		if (ward_sources_request(f->s, &a, &r, &id) != WARD_EINVAL)
			fail_msg("name %zu accepted", i);
	}
	for (size_t i = 0; i < sizeof(bad_reasons) / sizeof(bad_reasons[0]); i++) {
		r = req_of("ok-name", "https://a.example.com/");
		r.reason = bad_reasons[i];
		if (ward_sources_request(f->s, &a, &r, &id) != WARD_EINVAL)
			fail_msg("reason %zu accepted: %s", i, ward_error_last()->message);
	}
	/* actor names are text too */
	{
		ward_actor evil = tu_actor("mallory\x1b[2K");
		r = req_of("ok-name", "https://a.example.com/");
		assert_int_equal(ward_sources_request(f->s, &evil, &r, &id), WARD_EINVAL);
		evil = tu_actor("bad\xc3");
		assert_int_equal(ward_sources_request(f->s, &evil, &r, &id), WARD_EINVAL);
	}
	memset(longname, 'n', 129);
	longname[129] = '\0';
	r = req_of(longname, "https://a.example.com/");
	assert_int_equal(ward_sources_request(f->s, &a, &r, &id), WARD_EINVAL);
	memset(longreason, 'r', 4097);
	longreason[4097] = '\0';
	r = req_of("ok-name", "https://a.example.com/");
	r.reason = longreason;
	assert_true(ward_sources_request(f->s, &a, &r, &id) < 0);
	/* notes on decisions are checked the same way */
	id = request_ok(f->s, "alice", "ok-name", "https://a.example.com/");
	{
		ward_actor bob = tu_actor("bob");
		tu_counts mid = tu_counts_get(f->home);
		assert_int_equal(ward_sources_decide(f->s, &bob, id, WARD_DECIDE_APPROVE, "note\x07"), WARD_EINVAL);
		assert_int_equal(ward_sources_decide(f->s, &bob, id, WARD_DECIDE_APPROVE, "\xe2\x82"), WARD_EINVAL);
		assert_int_equal(tu_counts_get(f->home).events, mid.events);
		assert_state(f->s, id, "requested");
		/* newlines and tabs are fine in notes and reasons */
		assert_int_equal(ward_sources_decide(f->s, &bob, id, WARD_DECIDE_APPROVE, "ok\n\tfine \xc3\xa9"), 0);
	}
	assert_int_equal(tu_counts_get(f->home).sources, before.sources + 1);
}

/* ---- state machine ----------------------------------------------------- */

/* A source brought into `st` (requested by alice, decided by bob). */
static int64_t source_in_state(ward_store *s, const char *name, const char *st)
{
	int64_t id = request_ok(s, "alice", name, "https://sm.example.com/");

	if (!strcmp(st, "approved") || !strcmp(st, "revoked"))
		decide_ok(s, "bob", id, WARD_DECIDE_APPROVE);
	if (!strcmp(st, "revoked"))
		decide_ok(s, "bob", id, WARD_DECIDE_REVOKE);
	if (!strcmp(st, "rejected"))
		decide_ok(s, "bob", id, WARD_DECIDE_REJECT);
	assert_state(s, id, st);
	return id;
}

static void test_store_sources__state_machine(void **state)
{
	fixture *f = *state;
	static const char *const states[] = {"requested", "approved", "rejected", "revoked"};
	static const ward_decision decisions[] = {WARD_DECIDE_APPROVE, WARD_DECIDE_REJECT, WARD_DECIDE_REVOKE};
	/* expected next state, NULL: illegal (WARD_ESTATE) */
	static const char *const next[4][3] = {
		{"approved", "rejected", NULL}, /* requested */
		{NULL, NULL, "revoked"},        /* approved */
		{NULL, NULL, NULL},             /* rejected: final */
		{"approved", NULL, NULL},       /* revoked: may be approved again */
	};
	static const char *const actions[] = {"source.approve", "source.reject", "source.revoke"};
	int k = 0;

	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 3; j++) {
			char name[32];
			int64_t id;
			tu_counts before;
			int rc;

			snprintf(name, sizeof(name), "sm%d", k++);
			id = source_in_state(f->s, name, states[i]);
			before = tu_counts_get(f->home);
			rc = decide(f->s, "carol", id, decisions[j]);
			if (next[i][j]) {
				ward_audit_event *ev = NULL;
				size_t n = 0;
				ward_source src;
				if (rc != 0)
					fail_msg("%s -> %d refused: %s", states[i], j, ward_error_last()->message);
				assert_state(f->s, id, next[i][j]);
				assert_int_equal(tu_count_rows(f->home, "audit_events"), before.events + 1);
				assert_int_equal(tu_count_rows(f->home, "checkpoints"), before.checkpoints + 1);
				assert_int_equal(ward_audit_list(f->s, 1, &ev, &n), 0);
				assert_string_equal(ev[0].action, actions[j]);
				assert_string_equal(ev[0].actor, "carol");
				ward_audit_events_free(ev, n);
				assert_int_equal(ward_sources_get(f->s, id, &src), 0);
				assert_string_equal(src.decided_by, "carol");
				ward_source_dispose(&src);
			} else {
				tu_counts after;
				if (rc != WARD_ESTATE)
					fail_msg("%s -> %d: want ESTATE, got %d (%s)", states[i], j, rc,
						 ward_error_last()->message);
				assert_true(tu_error_has(states[i]));
				assert_state(f->s, id, states[i]);
				after = tu_counts_get(f->home);
				assert_int_equal(after.events, before.events);
				assert_int_equal(after.checkpoints, before.checkpoints);
			}
		}
	/* the cases the issue names, spelled out */
	{
		int64_t rej = source_in_state(f->s, "named-rejected", "rejected");
		int64_t req = source_in_state(f->s, "named-requested", "requested");
		int64_t app = source_in_state(f->s, "named-approved", "approved");
		int64_t rev = source_in_state(f->s, "named-revoked", "revoked");
		assert_int_equal(decide(f->s, "carol", rej, WARD_DECIDE_APPROVE), WARD_ESTATE);
		assert_int_equal(decide(f->s, "carol", req, WARD_DECIDE_REVOKE), WARD_ESTATE);
		assert_int_equal(decide(f->s, "carol", app, WARD_DECIDE_REJECT), WARD_ESTATE);
		assert_int_equal(decide(f->s, "carol", rev, WARD_DECIDE_APPROVE), 0);
		assert_state(f->s, rev, "approved");
	}
	/* an unknown id */
	assert_int_equal(decide(f->s, "carol", 999999, WARD_DECIDE_APPROVE), WARD_ENOTFOUND);
	assert_int_equal(tu_verify(f->s, NULL, NULL), 0);
}

static void test_store_sources__two_person_rule(void **state)
{
	fixture *f = *state;
	int64_t id = request_ok(f->s, "alice", "tpr", "https://tpr.example.com/");
	tu_counts before = tu_counts_get(f->home);
	ward_source src;

	assert_true(ward_store_config(f->s)->two_person_rule);
	assert_int_equal(decide(f->s, "alice", id, WARD_DECIDE_APPROVE), WARD_EPOLICY);
	assert_true(tu_error_has("two-person"));
	assert_true(tu_error_has("alice"));
	assert_state(f->s, id, "requested");
	assert_int_equal(tu_counts_get(f->home).events, before.events);
	assert_int_equal(tu_counts_get(f->home).checkpoints, before.checkpoints);
	assert_int_equal(ward_sources_get(f->s, id, &src), 0);
	assert_null(src.decided_by);
	ward_source_dispose(&src);

	/* the requester may still reject (withdraw) it; the rule is about approval */
	assert_int_equal(decide(f->s, "bob", id, WARD_DECIDE_APPROVE), 0);
	assert_state(f->s, id, "approved");
	/* re-approval after a revocation is an approval too: the requester may not */
	decide_ok(f->s, "bob", id, WARD_DECIDE_REVOKE);
	assert_int_equal(decide(f->s, "alice", id, WARD_DECIDE_APPROVE), WARD_EPOLICY);
	assert_state(f->s, id, "revoked");
	/* the details record that the rule was on */
	{
		ward_audit_event *ev = NULL;
		size_t n = 0;
		assert_int_equal(ward_audit_list(f->s, 2, &ev, &n), 0);
		assert_string_equal(ev[0].action, "source.approve");
		assert_non_null(strstr(ev[0].details, "\"two_person_rule\":true"));
		ward_audit_events_free(ev, n);
	}
}

static void test_store_sources__config_two_person_off(void **state)
{
	fixture *f = *state;
	char *cfg = tu_path(f->home, "config.yaml");
	ward_store *s;
	int64_t id;

	ward_store_close(f->s);
	f->s = NULL;
	tu_write_str(cfg, "# reviewed by the security team\ntwo_person_rule: false\n");
	s = tu_open(f->home, WARD_STORE_SIGN);
	f->s = s;
	assert_false(ward_store_config(s)->two_person_rule);
	id = request_ok(s, "alice", "solo", "https://solo.example.com/");
	assert_int_equal(decide(s, "alice", id, WARD_DECIDE_APPROVE), 0);
	assert_state(s, id, "approved");
	{
		ward_audit_event *ev = NULL;
		size_t n = 0;
		assert_int_equal(ward_audit_list(s, 1, &ev, &n), 0);
		assert_non_null(strstr(ev[0].details, "\"two_person_rule\":false"));
		ward_audit_events_free(ev, n);
	}
	/* explicit true behaves like the default */
	ward_store_close(s);
	f->s = NULL;
	tu_write_str(cfg, "two_person_rule: true\n");
	f->s = s = tu_open(f->home, WARD_STORE_SIGN);
	id = request_ok(s, "alice", "solo2", "https://solo2.example.com/");
	assert_int_equal(decide(s, "alice", id, WARD_DECIDE_APPROVE), WARD_EPOLICY);
	/* an empty file means defaults */
	ward_store_close(s);
	f->s = NULL;
	tu_write_str(cfg, "");
	f->s = s = tu_open(f->home, WARD_STORE_SIGN);
	assert_true(ward_store_config(s)->two_person_rule);
	free(cfg);
}

static void test_store_sources__config_invalid_refused(void **state)
{
	fixture *f = *state;
	char *cfg = tu_path(f->home, "config.yaml");
	ward_store *s = NULL;
	static const struct {
		const char *text;
		const char *needle;
	} bad[] = {
		{"two_person_rule: false\ntwo_person_rules: true\n", "two_person_rules"}, /* typo */
		{"unknown_setting: 1\n", "unknown_setting"},
		{"two_person_rule: \"no\"\n", "true or false"},
		{"two_person_rule: 0\n", "true or false"},
		{"- two_person_rule\n", "mapping"},
		{"two_person_rule: false\ntwo_person_rule: true\n", "duplicate"},
		{"a: &x false\n", "anchor"},
		{"two_person_rule: [\n", NULL},
	};

	ward_store_close(f->s);
	f->s = NULL;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc;
		tu_write_str(cfg, bad[i].text);
		rc = ward_store_open(&s, f->home, WARD_STORE_SIGN);
		if (rc != WARD_EINVAL)
			fail_msg("config %zu: want EINVAL, got %d", i, rc);
		assert_null(s);
		if (bad[i].needle && !tu_error_has(bad[i].needle))
			fail_msg("config %zu: message '%s' lacks '%s'", i, ward_error_last()->message, bad[i].needle);
		/* read-only opens read the config too: a typo is never ignored */
		assert_int_equal(ward_store_open(&s, f->home, 0), WARD_EINVAL);
	}
	unlink(cfg);
	free(cfg);
	f->s = tu_open(f->home, WARD_STORE_SIGN);
}

/* ---- allowlist lookup -------------------------------------------------- */

static void expect_match(ward_store *s, const char *target, const char *want_name)
{
	ward_source src;
	int rc = ward_sources_match(s, target, &src);

	if (rc != 0)
		fail_msg("'%s' not matched: %s", target, ward_error_last()->message);
	if (strcmp(src.name, want_name) != 0)
		fail_msg("'%s' matched '%s', want '%s'", target, src.name, want_name);
	ward_source_dispose(&src);
}

static void expect_no_match(ward_store *s, const char *target)
{
	ward_source src;
	int rc = ward_sources_match(s, target, &src);

	if (rc != WARD_EPOLICY)
		fail_msg("'%s': want EPOLICY, got %d (%s)", target, rc, rc == 0 ? src.name : ward_error_last()->message);
	assert_true(tu_error_has("ragward sources request"));
	assert_null(src.name);
}

static int64_t approved(ward_store *s, const char *name, const char *pattern, int kind_http)
{
	ward_actor a = tu_actor("alice");
	ward_source_request r = req_of(name, pattern);
	int64_t id = 0;

	if (kind_http) {
		r.kind_given = 1;
		r.kind = WARD_KIND_HTTP;
	}
	assert_int_equal(ward_sources_request(s, &a, &r, &id), 0);
	decide_ok(s, "bob", id, WARD_DECIDE_APPROVE);
	return id;
}

static void test_store_sources__match(void **state)
{
	fixture *f = *state;
	int64_t rev;

	expect_no_match(f->s, "https://a.com/docs"); /* nothing approved yet */

	approved(f->s, "docs", "https://a.com/docs", 0);
	approved(f->s, "docs-api", "https://a.com/docs/api/", 0);
	approved(f->s, "whole-b", "https://*.b.org/", 0);
	approved(f->s, "plain", "http://c.net/pub/", 1);
	approved(f->s, "files", "/srv/corpus", 0);
	approved(f->s, "files-deep", "/srv/corpus/private/", 0);
	request_ok(f->s, "alice", "requested-only", "https://d.com/");
	{
		int64_t rej = request_ok(f->s, "alice", "rejected", "https://e.com/");
		decide_ok(f->s, "bob", rej, WARD_DECIDE_REJECT);
	}
	rev = approved(f->s, "revoked", "https://f.com/", 0);
	decide_ok(f->s, "bob", rev, WARD_DECIDE_REVOKE);

	/* exact prefix, segment-wise */
	expect_match(f->s, "https://a.com/docs", "docs");
	expect_match(f->s, "https://a.com/docs/", "docs");
	expect_match(f->s, "https://a.com/docs/intro.html", "docs");
	expect_match(f->s, "HTTPS://A.COM:443/docs/x#frag", "docs"); /* canonicalized first */
	/* the longest pattern wins */
	expect_match(f->s, "https://a.com/docs/api/v1", "docs-api");
	expect_match(f->s, "https://a.com/docs/apis", "docs");
	/* host wildcard */
	expect_match(f->s, "https://b.org/x", "whole-b");
	expect_match(f->s, "https://www.b.org/x", "whole-b");
	/* http kind covers both schemes */
	expect_match(f->s, "http://c.net/pub/a.txt", "plain");
	expect_match(f->s, "https://c.net/pub/a.txt", "plain");
	/* file kind */
	expect_match(f->s, "/srv/corpus", "files");
	expect_match(f->s, "/srv/corpus/a/b.md", "files");
	expect_match(f->s, "/srv//corpus/./a.md", "files");
	expect_match(f->s, "/srv/corpus/private/x", "files-deep");

	/* the evil cases of issue 2 and friends */
	expect_no_match(f->s, "https://a.com/docs-evil");
	expect_no_match(f->s, "https://a.com.evil.net/docs");
	expect_no_match(f->s, "https://a.com.evil.net/docs/x");
	expect_no_match(f->s, "https://evil-a.com/docs");
	expect_no_match(f->s, "https://x.a.com/docs");
	expect_no_match(f->s, "https://a.com/doc");
	expect_no_match(f->s, "https://a.com/Docs/x");
	expect_no_match(f->s, "https://a.com/x?u=/docs");
	expect_no_match(f->s, "https://a.com:8443/docs");
	expect_no_match(f->s, "http://a.com/docs"); /* https source does not cover plaintext */
	expect_no_match(f->s, "https://b.org.evil.net/");
	expect_no_match(f->s, "https://notb.org/");
	expect_no_match(f->s, "/srv/corpus-evil/x");
	{
		/* '..' is refused outright, never resolved into a match */
		ward_source src;
		assert_int_equal(ward_sources_match(f->s, "/srv/corpus/../etc/passwd", &src), WARD_EINVAL);
		assert_null(src.name);
	}
	expect_no_match(f->s, "/srv");
	/* requested, rejected and revoked sources never match */
	expect_no_match(f->s, "https://d.com/x");
	expect_no_match(f->s, "https://e.com/x");
	expect_no_match(f->s, "https://f.com/x");
	/* a re-approved source matches again */
	decide_ok(f->s, "carol", rev, WARD_DECIDE_APPROVE);
	expect_match(f->s, "https://f.com/x", "revoked");

	/* neither a URL nor an absolute path */
	{
		ward_source src;
		assert_int_equal(ward_sources_match(f->s, "a.com/docs", &src), WARD_EINVAL);
		assert_int_equal(ward_sources_match(f->s, "https://u:p@a.com/docs", &src), WARD_EINVAL);
	}
}

static void test_store_sources__match_tie_lowest_id(void **state)
{
	fixture *f = *state;
	ward_source src;
	int64_t first = approved(f->s, "first", "https://tie.example.com/x/", 0);

	approved(f->s, "second", "https://tie.example.com/x/", 0);
	assert_int_equal(ward_sources_match(f->s, "https://tie.example.com/x/y", &src), 0);
	assert_int_equal(src.id, first);
	ward_source_dispose(&src);
}

static void test_store_sources__list(void **state)
{
	fixture *f = *state;
	ward_source *list = NULL;
	size_t n = 0;
	int64_t a = request_ok(f->s, "alice", "l1", "https://l1.example.com/");

	request_ok(f->s, "alice", "l2", "https://l2.example.com/");
	decide_ok(f->s, "bob", a, WARD_DECIDE_APPROVE);
	assert_int_equal(ward_sources_list(f->s, NULL, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "l1");
	ward_sources_free(list, n);
	assert_int_equal(ward_sources_list(f->s, "approved", &list, &n), 0);
	assert_int_equal(n, 1);
	ward_sources_free(list, n);
	assert_int_equal(ward_sources_list(f->s, "rejected", &list, &n), 0);
	assert_int_equal(n, 0);
	ward_sources_free(list, n);
	assert_int_equal(ward_sources_list(f->s, "approved' OR 1=1 --", &list, &n), WARD_EINVAL);
}

/* ---- import ------------------------------------------------------------ */

static const char baseline[] = "version: 1\n"
			       "sources:\n"
			       "  - name: vendor-docs\n"
			       "    pattern: https://Docs.Vendor.example/guide/\n"
			       "    trust: high\n"
			       "    labels: [public, docs]\n"
			       "    reason: the vendor's manual\n"
			       "  - name: intranet\n"
			       "    pattern: http://wiki.corp.example/\n"
			       "    kind: http\n"
			       "    allow_private: true\n"
			       "    labels:\n"
			       "      - internal\n"
			       "  - name: corpus\n"
			       "    pattern: /srv/corpus/\n";

static char *write_yaml(const char *home, const char *name, const char *text)
{
	char *dir = tu_path(home, "..");
	char *p = tu_path(dir, name);

	free(dir);
	tu_write_str(p, text);
	return p;
}

static int import(ward_store *s, const char *path, ward_import_result *res)
{
	ward_actor a = tu_actor("importer");

	return ward_sources_import(s, &a, path, res);
}

static void test_store_sources__import_adds_then_idempotent(void **state)
{
	fixture *f = *state;
	char *path = write_yaml(f->home, "sources.yaml", baseline);
	ward_import_result res;
	ward_source *list = NULL;
	ward_audit_event *ev = NULL;
	size_t n = 0;
	tu_counts before = tu_counts_get(f->home), after;
	uint8_t digest[32];
	char hex[65];

	assert_int_equal(ward_sha256(digest, baseline, strlen(baseline)), 0);
	ward_hex_encode_to(hex, digest, sizeof(digest));

	assert_int_equal(import(f->s, path, &res), 0);
	assert_int_equal(res.added, 3);
	assert_int_equal(res.unchanged, 0);
	assert_string_equal(res.sha256_hex, hex);
	after = tu_counts_get(f->home);
	assert_int_equal(after.sources, before.sources + 3);
	assert_int_equal(after.events, before.events + 4); /* 3 per-source events + 1 summary */
	assert_int_equal(after.checkpoints, before.checkpoints + 1);

	assert_int_equal(ward_sources_list(f->s, NULL, &list, &n), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(list[i].state, "approved");
		assert_string_equal(list[i].origin, "import");
		assert_string_equal(list[i].decided_by, "importer");
		assert_non_null(strstr(list[i].note, hex));
	}
	assert_string_equal(list[0].pattern, "https://docs.vendor.example/guide/");
	assert_int_equal(list[0].trust, WARD_TRUST_HIGH);
	assert_string_equal(list[0].labels, "[\"docs\",\"public\"]");
	assert_string_equal(list[0].reason, "the vendor's manual");
	assert_int_equal(list[1].kind, WARD_KIND_HTTP);
	assert_int_equal(list[1].allow_private, 1);
	assert_int_equal(list[1].trust, WARD_TRUST_STANDARD);
	assert_int_equal(list[2].kind, WARD_KIND_FILE);
	assert_string_equal(list[2].pattern, "/srv/corpus");
	ward_sources_free(list, n);

	assert_int_equal(ward_audit_list(f->s, 4, &ev, &n), 0);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(ev[i].action, "source.import");
		assert_non_null(strstr(ev[i].details, hex));
	}
	assert_string_equal(ev[3].action, "sources.import");
	assert_string_equal(ev[3].subject, hex);
	assert_non_null(strstr(ev[3].details, "vendor-docs"));
	ward_audit_events_free(ev, n);

	/* imported sources are approved: they match */
	expect_match(f->s, "https://docs.vendor.example/guide/a", "vendor-docs");
	expect_match(f->s, "/srv/corpus/x", "corpus");

	/* re-import: nothing changes, not even the audit log */
	before = tu_counts_get(f->home);
	assert_int_equal(import(f->s, path, &res), 0);
	assert_int_equal(res.added, 0);
	assert_int_equal(res.unchanged, 3);
	after = tu_counts_get(f->home);
	assert_memory_equal(&after, &before, sizeof(after));

	/* the same definitions written differently are still "unchanged" */
	{
		char *p2 = write_yaml(f->home, "reordered.yaml",
				      "version: 1\nsources:\n"
				      "  - {name: corpus, pattern: /srv//corpus}\n"
				      "  - name: vendor-docs\n    labels: [docs, public, docs]\n    trust: high\n"
				      "    pattern: https://docs.vendor.example:443/guide/\n    reason: changed wording\n"
				      "  - {name: new-one, pattern: 'https://new.example/'}\n");
		assert_int_equal(import(f->s, p2, &res), 0);
		assert_int_equal(res.added, 1);
		assert_int_equal(res.unchanged, 2);
		assert_int_equal(tu_count_rows(f->home, "audit_events"), before.events + 2);
		free(p2);
	}
	assert_int_equal(tu_verify(f->s, NULL, NULL), 0);
	free(path);
}

static void test_store_sources__import_changed_definition_all_or_nothing(void **state)
{
	fixture *f = *state;
	char *path = write_yaml(f->home, "sources.yaml", baseline);
	char *changed;
	ward_import_result res;
	tu_counts before;
	static const char *const variants[] = {
		/* trust changed */
		"version: 1\nsources:\n  - {name: brand-new, pattern: 'https://brand-new.example/'}\n"
		"  - {name: vendor-docs, pattern: 'https://docs.vendor.example/guide/', trust: low,"
		" labels: [public, docs]}\n",
		/* pattern widened */
		"version: 1\nsources:\n  - {name: brand-new, pattern: 'https://brand-new.example/'}\n"
		"  - {name: vendor-docs, pattern: 'https://docs.vendor.example/', trust: high, labels: [public, docs]}\n",
		/* a label dropped */
		"version: 1\nsources:\n  - {name: brand-new, pattern: 'https://brand-new.example/'}\n"
		"  - {name: vendor-docs, pattern: 'https://docs.vendor.example/guide/', trust: high, labels: [docs]}\n",
		/* allow_private turned on */
		"version: 1\nsources:\n  - {name: brand-new, pattern: 'https://brand-new.example/'}\n"
		"  - {name: corpus, pattern: /srv/corpus, allow_private: true}\n",
		/* kind changed */
		"version: 1\nsources:\n  - {name: brand-new, pattern: 'https://brand-new.example/'}\n"
		"  - {name: intranet, pattern: 'https://wiki.corp.example/', allow_private: true, labels: [internal]}\n",
	};

	assert_int_equal(import(f->s, path, &res), 0);
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		int rc;
		before = tu_counts_get(f->home);
		changed = write_yaml(f->home, "changed.yaml", variants[i]);
		rc = import(f->s, changed, &res);
		if (rc != WARD_EEXISTS)
			fail_msg("variant %zu: want EEXISTS, got %d (%s)", i, rc, ward_error_last()->message);
		assert_true(tu_error_has("nothing imported"));
		assert_int_equal(res.added, 0);
		{
			tu_counts after = tu_counts_get(f->home);
			assert_memory_equal(&after, &before, sizeof(after));
		}
		assert_int_equal(tu_query_int(f->home, "SELECT count(*) FROM sources WHERE name = 'brand-new'"), 0);
		free(changed);
	}
	/* a source created by request is not overwritten by import either */
	request_ok(f->s, "alice", "requested-by-hand", "https://hand.example/");
	changed = write_yaml(f->home, "changed.yaml",
			     "version: 1\nsources:\n  - {name: requested-by-hand, pattern: 'https://hand.example/x/'}\n");
	assert_int_equal(import(f->s, changed, &res), WARD_EEXISTS);
	free(changed);
	assert_int_equal(tu_verify(f->s, NULL, NULL), 0);
	free(path);
}

static void expect_import_refused(fixture *f, const char *name, const char *text, int want, const char *needle)
{
	char *p = write_yaml(f->home, name, text);
	tu_counts before = tu_counts_get(f->home), after;
	ward_import_result res;
	int rc = import(f->s, p, &res);

	free(p);
	after = tu_counts_get(f->home);
	if (rc != want)
		fail_msg("%s: want %d, got %d (%s)", name, want, rc, rc ? ward_error_last()->message : "accepted");
	if (needle && !tu_error_has(needle))
		fail_msg("%s: message '%s' lacks '%s'", name, ward_error_last()->message, needle);
	assert_int_equal(res.added, 0);
	assert_memory_equal(&after, &before, sizeof(after));
}

static void test_store_sources__import_rejects_bad_files(void **state)
{
	fixture *f = *state;
	char deep[2048];
	size_t off = 0;

	expect_import_refused(f, "unknown-top.yaml",
			      "version: 1\nsources: []\nsigned_off_by: eve\n", WARD_EINVAL, "unknown key 'signed_off_by'");
	expect_import_refused(f, "unknown-entry.yaml",
			      "version: 1\nsources:\n  - {name: a, pattern: 'https://a.example/'}\n"
			      "  - {name: b, pattern: 'https://b.example/', approved_by: eve}\n",
			      WARD_EINVAL, "approved_by");
	expect_import_refused(f, "wrong-type.yaml",
			      "version: 1\nsources:\n  - {name: a, pattern: 'https://a.example/', allow_private: yes}\n",
			      WARD_EINVAL, "allow_private");
	expect_import_refused(f, "labels-not-list.yaml",
			      "version: 1\nsources:\n  - {name: a, pattern: 'https://a.example/', labels: public}\n",
			      WARD_EINVAL, "labels");
	expect_import_refused(f, "bad-label.yaml",
			      "version: 1\nsources:\n  - {name: a, pattern: 'https://a.example/', labels: [Public]}\n",
			      WARD_EINVAL, "sources[0]");
	expect_import_refused(f, "missing-pattern.yaml", "version: 1\nsources:\n  - {name: a}\n", WARD_EINVAL,
			      "required");
	expect_import_refused(f, "dup.yaml",
			      "version: 1\nsources:\n  - {name: a, pattern: 'https://a.example/'}\n"
			      "  - {name: a, pattern: 'https://a.example/'}\n",
			      WARD_EINVAL, "listed twice");
	expect_import_refused(f, "dup-key.yaml",
			      "version: 1\nsources:\n  - name: a\n    pattern: 'https://a.example/'\n"
			      "    pattern: 'https://evil.example/'\n",
			      WARD_EINVAL, "duplicate key");
	expect_import_refused(f, "anchor.yaml",
			      "version: 1\nsources:\n  - &e {name: a, pattern: 'https://a.example/'}\n", WARD_EINVAL,
			      "anchors are not allowed");
	expect_import_refused(f, "alias.yaml",
			      "version: 1\nx: &p 'https://a.example/'\nsources:\n  - {name: a, pattern: *p}\n",
			      WARD_EINVAL, NULL);
	expect_import_refused(f, "alias-only.yaml",
			      "version: 1\nsources:\n  - {name: a, pattern: 'https://a.example/'}\n  - *a\n",
			      WARD_EINVAL, NULL);
	expect_import_refused(f, "laughs.yaml",
			      "version: 1\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
			      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nsources: []\n",
			      WARD_EINVAL, NULL);
	/* deep nesting */
	off += (size_t)snprintf(deep + off, sizeof(deep) - off,
				"version: 1\nsources:\n  - {name: a, pattern: 'https://a.example/', labels: ");
	for (int i = 0; i < 200; i++)
		deep[off++] = '[';
	for (int i = 0; i < 200; i++)
		deep[off++] = ']';
	snprintf(deep + off, sizeof(deep) - off, "}\n");
	expect_import_refused(f, "deep.yaml", deep, WARD_EINVAL, "nested too deeply");
	/* versions */
	expect_import_refused(f, "noversion.yaml", "sources:\n  - {name: a, pattern: 'https://a.example/'}\n",
			      WARD_EINVAL, "version: 1");
	expect_import_refused(f, "version2.yaml", "version: 2\nsources: []\n", WARD_EINVAL, "version: 1");
	expect_import_refused(f, "versionstr.yaml", "version: '1'\nsources: []\n", WARD_EINVAL, "version: 1");
	expect_import_refused(f, "not-a-map.yaml", "- version: 1\n", WARD_EINVAL, "mapping");
	expect_import_refused(f, "sources-map.yaml", "version: 1\nsources: {name: a}\n", WARD_EINVAL, "list");
	expect_import_refused(f, "two-docs.yaml", "version: 1\nsources: []\n---\nversion: 1\n", WARD_EINVAL, NULL);
	/* garbage */
	expect_import_refused(f, "garbage.yaml", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", WARD_EINVAL, NULL);
	expect_import_refused(f, "tabs.yaml", "version: 1\nsources:\n\t- {name: a}\n", WARD_EINVAL, NULL);
	expect_import_refused(f, "unclosed.yaml", "version: 1\nsources: [{name: a, pattern: 'x'\n", WARD_EINVAL, NULL);
	/* invalid entries in the middle: entries before them are not imported */
	expect_import_refused(f, "bad-url.yaml",
			      "version: 1\nsources:\n  - {name: good, pattern: 'https://good.example/'}\n"
			      "  - {name: bad, pattern: 'https://user:pw@bad.example/'}\n",
			      WARD_EINVAL, "sources[1]");
	expect_import_refused(f, "plain-http.yaml",
			      "version: 1\nsources:\n  - {name: good, pattern: 'https://good.example/'}\n"
			      "  - {name: bad, pattern: 'http://bad.example/'}\n",
			      WARD_EINVAL, "--kind http");
	expect_import_refused(f, "bad-trust.yaml",
			      "version: 1\nsources:\n  - {name: a, pattern: 'https://a.example/', trust: ultra}\n",
			      WARD_EINVAL, "trust");
	/* names and reasons with control characters or invalid UTF-8 */
	expect_import_refused(f, "ctl-name.yaml",
			      "version: 1\nsources:\n  - {name: \"a\\x1bb\", pattern: 'https://a.example/'}\n", WARD_EINVAL,
			      NULL);
	expect_import_refused(f, "ctl-reason.yaml",
			      "version: 1\nsources:\n  - {name: a, pattern: 'https://a.example/', reason: \"x\\x07y\"}\n",
			      WARD_EINVAL, "control character");
	expect_import_refused(f, "utf8-reason.yaml",
			      "version: 1\nsources:\n  - {name: a, pattern: 'https://a.example/', reason: \"x\xc3\x28\"}\n",
			      WARD_EINVAL, NULL);
	expect_import_refused(f, "utf8-name.yaml",
			      "version: 1\nsources:\n  - {name: \"\xff\xfe\", pattern: 'https://a.example/'}\n", WARD_EINVAL,
			      NULL);
	expect_import_refused(f, "bidi-name.yaml",
			      "version: 1\nsources:\n  - {name: \"a\xe2\x80\xae\", pattern: 'https://a.example/'}\n",
			      WARD_EINVAL, NULL);
	assert_int_equal(tu_count_rows(f->home, "sources"), 0);
}

/*
 * YAML's "\0" escape puts a NUL byte inside a scalar. Every text field must
 * refuse it: read as a C string it would be silently cut short, and a cut
 * pattern covers more than the reviewed file shows.
 */
static void test_store_sources__import_rejects_nul_bytes(void **state)
{
	fixture *f = *state;

	expect_import_refused(f, "nul-pattern.yaml",
			      "version: 1\nsources:\n  - {name: a, pattern: \"https://a.example/\\0only/this/\"}\n",
			      WARD_EINVAL, NULL);
	expect_import_refused(f, "nul-name.yaml",
			      "version: 1\nsources:\n  - {name: \"a\\0b\", pattern: 'https://a.example/'}\n", WARD_EINVAL,
			      NULL);
	expect_import_refused(f, "nul-reason.yaml",
			      "version: 1\nsources:\n  - {name: a, pattern: 'https://a.example/', reason: \"x\\0y\"}\n",
			      WARD_EINVAL, NULL);
	assert_int_equal(tu_count_rows(f->home, "sources"), 0);
}

static void test_store_sources__import_rejects_bad_paths(void **state)
{
	fixture *f = *state;
	char *dir = tu_path(f->home, "..");
	char *big = tu_path(dir, "big.yaml"), *link = tu_path(dir, "link.yaml"), *real = tu_path(dir, "real.yaml");
	char *sub = tu_path(dir, "a-directory"), *missing = tu_path(dir, "missing.yaml");
	tu_counts before = tu_counts_get(f->home), after;
	ward_import_result res;
	FILE *fp;
	size_t written = 0;
	static const char line[] = "# padding padding padding padding padding padding padding padding padding pad\n";

	/* a 5 MB file: over the cap, refused before parsing */
	fp = fopen(big, "wb");
	assert_non_null(fp);
	fputs("version: 1\nsources: []\n", fp);
	while (written < 5 * 1024 * 1024)
		written += fwrite(line, 1, sizeof(line) - 1, fp);
	fclose(fp);
	assert_int_equal(import(f->s, big, &res), WARD_ETOOBIG);
	assert_true(tu_error_has("larger than"));

	/* a directory and a character device are not regular files */
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(import(f->s, sub, &res), WARD_EINVAL);
	assert_true(tu_error_has("not a regular file"));
	assert_int_equal(import(f->s, "/dev/null", &res), WARD_EINVAL);
	assert_true(tu_error_has("not a regular file"));
	/* a symlink is not followed */
	tu_write_str(real, baseline);
	assert_int_equal(symlink(real, link), 0);
	assert_true(import(f->s, link, &res) < 0);
	assert_true(tu_error_has("symlink"));
	/* missing */
	assert_int_equal(import(f->s, missing, &res), WARD_ENOTFOUND);

	after = tu_counts_get(f->home);
	assert_memory_equal(&after, &before, sizeof(after));
	free(dir);
	free(big);
	free(link);
	free(real);
	free(sub);
	free(missing);
}

static void test_store_sources__import_empty_list(void **state)
{
	fixture *f = *state;
	char *p = write_yaml(f->home, "empty.yaml", "version: 1\nsources: []\n");
	tu_counts before = tu_counts_get(f->home), after;
	ward_import_result res;

	assert_int_equal(import(f->s, p, &res), 0);
	assert_int_equal(res.added, 0);
	after = tu_counts_get(f->home);
	assert_memory_equal(&after, &before, sizeof(after));
	free(p);
}

static void test_store_sources__read_only_store_refuses_changes(void **state)
{
	fixture *f = *state;
	ward_store *ro = tu_open(f->home, 0);
	ward_actor a = tu_actor("alice");
	ward_source_request r = req_of("ro", "https://ro.example/");
	int64_t id;

	assert_true(ward_sources_request(ro, &a, &r, &id) < 0);
	ward_store_close(ro);
	/* read-write without the key: the change cannot be sealed, so none is made */
	ro = tu_open(f->home, WARD_STORE_RW);
	assert_int_equal(ward_sources_request(ro, &a, &r, &id), WARD_EKEY);
	ward_store_close(ro);
	assert_int_equal(tu_count_rows(f->home, "sources"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store_sources__request_canonicalizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_sources__kind_inference, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_sources__labels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_sources__names_and_text_validated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_sources__state_machine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_sources__two_person_rule, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_sources__config_two_person_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_sources__config_invalid_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_sources__match, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_sources__match_tie_lowest_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_sources__list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_sources__import_adds_then_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_sources__import_changed_definition_all_or_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_store_sources__import_rejects_bad_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_sources__import_rejects_nul_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_sources__import_rejects_bad_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_sources__import_empty_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_sources__read_only_store_refuses_changes, setup, teardown),
	};

	ward_alloc_install_jansson();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
