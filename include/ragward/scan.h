/*
 * The injection scanner: YAML rule packs compiled to PCRE2 (JIT), with all
 * patterns also in one Vectorscan database that finds candidates in one pass
 * per view; PCRE2 confirms each candidate. Without Vectorscan (or with the
 * prefilter disabled) every rule runs on PCRE2 alone, with identical results.
 *
 * PCRE2 always runs with match, depth and heap limits. A limit hit is a
 * finding of rule "scan.incomplete" (severity high), never a silent pass.
 */
#ifndef RAGWARD_SCAN_H
#define RAGWARD_SCAN_H

#include <stddef.h>
#include "ragward/error.h"
#include "ragward/extract.h"
#include "ragward/normalize.h"

typedef struct ward_ruleset ward_ruleset;

typedef struct {
	const char *cache_dir; /* where compiled databases are cached; NULL: no cache */
	int no_prefilter;      /* 1: PCRE2 only (tests compare both paths) */
	int no_jit;            /* 1: PCRE2 interpreter (tests compare) */
	int skip_examples;     /* 1: do not run the packs' examples at load */
	int skip_pump_check;   /* 1: skip the adversarial (pumped input) limit check; `rules check`
				  runs it, a service may skip it since limits still fail closed */
	int revalidate;        /* 1: run the examples and the pumped-input check even when
				  cache_dir holds a record that this exact set passed them
				  (`rules check`, `rules test`) */
} ward_ruleset_opts;

/*
 * Loads every *.yaml pack under `dir` (sorted by file name), validates and
 * compiles every rule, runs every rule's examples and the adversarial limit
 * check. Any failure rejects the whole set, naming file, rule and reason.
 *
 * With a cache_dir, a set that passed the examples and the adversarial check
 * in full is recorded there (<rule-set sha>-<validation key>.validated); a
 * later load of the same bytes under the same PCRE2, ICU and limits skips
 * those two checks (everything else, and every limit at scan time, stays).
 * `revalidate` ignores the record.
 */
int ward_ruleset_load(ward_ruleset **out, const char *dir, const ward_ruleset_opts *opts) WARD_MUST_CHECK;
void ward_ruleset_free(ward_ruleset *rs);

/* Hex SHA-256 over the packs (file names and bytes, in load order). */
const char *ward_ruleset_sha256(const ward_ruleset *rs);
size_t ward_ruleset_count(const ward_ruleset *rs);
int ward_ruleset_has_prefilter(const ward_ruleset *rs); /* 1 when Vectorscan is in use */

/* How the set was compiled, for `rules check` and for tests of the cache. */
typedef struct {
	size_t patterns;        /* PCRE2 patterns in the set */
	size_t hs_exact;        /* (pattern, view) pairs in a Vectorscan database as exact */
	size_t hs_prefilter;    /* ... compiled with HS_FLAG_PREFILTER or approximated */
	size_t always_confirm;  /* ... Vectorscan cannot take: run on PCRE2 for every text */
	unsigned dbs_built;     /* Vectorscan databases compiled by this load */
	unsigned dbs_cached;    /* ... loaded from a verified cache file */
	unsigned cache_rejected; /* cache files that were corrupt, truncated or foreign */
	unsigned validation_run;      /* 1: examples and pumped-input check ran in full at this load */
	unsigned validation_cached;   /* 1: both skipped on a valid record of this exact set */
	unsigned validation_rejected; /* records that were corrupt, truncated, foreign or mismatched */
} ward_ruleset_stats;
void ward_ruleset_stats_get(const ward_ruleset *rs, ward_ruleset_stats *out);

/* The rule directory to use when none is given: $RAGWARD_RULES, else
 * /usr/share/ragward/rules/injection when it exists, else ./rules/injection. */
const char *ward_ruleset_default_dir(void);

/* Runs every example of every rule (as the load does unless skip_examples)
 * and lists each failure instead of stopping at the first. */
typedef struct {
	char *file;
	char *rule_id;
	char *example;
	int expected; /* 1: a `match` example that did not match; 0: a `no_match` one that did */
} ward_example_failure;
int ward_ruleset_test(const ward_ruleset *rs, ward_example_failure **failures, size_t *nfailures,
		      size_t *nexamples) WARD_MUST_CHECK;
void ward_example_failures_free(ward_example_failure *f, size_t n);

/* A rule's action hint (the verdict decides; this is what the author suggests). */
typedef enum {
	WARD_ACTION_FLAG = 0,
	WARD_ACTION_STRIP,
	WARD_ACTION_QUARANTINE,
	WARD_ACTION_REJECT,
} ward_action_hint;
const char *ward_action_hint_name(ward_action_hint a); /* "flag", "strip", ... */

typedef struct {
	char *rule_id;
	char *category;
	int severity;           /* 1 low .. 4 critical */
	ward_channel channel;
	ward_view_kind view;
	size_t start, end;      /* byte range in the scanned text's raw view */
	char *excerpt;          /* a short excerpt, control characters escaped */
	int base_severity;      /* the rule's severity before context lowered it */
	int quoted;             /* 1: the match lies inside a quoted/code range of the context */
	ward_action_hint action;
} ward_finding;

typedef struct {
	ward_finding *items;
	size_t n, cap;
	int incomplete; /* a PCRE2 limit was hit */
} ward_findings;

void ward_findings_init(ward_findings *f);
void ward_findings_dispose(ward_findings *f);

/*
 * Where a text sits beyond its channel. `quoted` lists [start, end) byte
 * ranges of the scanned (raw) text that are code blocks, inline code or
 * quoted examples (from ward_extracted.blocks of kind CODE/QUOTE, fenced
 * Markdown...), in any order, possibly overlapping. A finding whose whole
 * raw range lies inside one of them gets quoted = 1, and rules with the
 * `not_in_code` context modifier lower its severity by 2 (never below 1).
 */
typedef struct {
	size_t start, end;
} ward_span;

typedef struct {
	const ward_span *quoted;
	size_t nquoted;
} ward_scan_context;

/*
 * Scans one text of a channel: normalizes it, runs the rules that apply to
 * the channel on each view they declare, and appends findings (offsets mapped
 * to `text`). Thread-safe for concurrent calls on one ruleset.
 */
int ward_scan_text(const ward_ruleset *rs, ward_channel channel, const char *text, size_t len,
		   ward_findings *out) WARD_MUST_CHECK;

/* Same, over an already normalized text (the caller reuses views). */
int ward_scan_normalized(const ward_ruleset *rs, ward_channel channel, const ward_normalized *norm,
			 ward_findings *out) WARD_MUST_CHECK;

/* The same two with a context (NULL: none, as above). Findings appended by
 * one call are sorted by (start, end, rule id) and de-duplicated on (rule,
 * raw range); at most WARD_MAX_FINDINGS per call, then one
 * "scan.too-many-findings" finding. */
int ward_scan_text_ex(const ward_ruleset *rs, ward_channel channel, const ward_scan_context *ctx, const char *text,
		      size_t len, ward_findings *out) WARD_MUST_CHECK;
int ward_scan_normalized_ex(const ward_ruleset *rs, ward_channel channel, const ward_scan_context *ctx,
			    const ward_normalized *norm, ward_findings *out) WARD_MUST_CHECK;

#endif
