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
} ward_ruleset_opts;

/*
 * Loads every *.yaml pack under `dir` (sorted by file name), validates and
 * compiles every rule, runs every rule's examples and the adversarial limit
 * check. Any failure rejects the whole set, naming file, rule and reason.
 */
int ward_ruleset_load(ward_ruleset **out, const char *dir, const ward_ruleset_opts *opts) WARD_MUST_CHECK;
void ward_ruleset_free(ward_ruleset *rs);

/* Hex SHA-256 over the packs (file names and bytes, in load order). */
const char *ward_ruleset_sha256(const ward_ruleset *rs);
size_t ward_ruleset_count(const ward_ruleset *rs);
int ward_ruleset_has_prefilter(const ward_ruleset *rs); /* 1 when Vectorscan is in use */

typedef struct {
	char *rule_id;
	char *category;
	int severity;           /* 1 low .. 4 critical */
	ward_channel channel;
	ward_view_kind view;
	size_t start, end;      /* byte range in the scanned text's raw view */
	char *excerpt;          /* a short excerpt, control characters escaped */
} ward_finding;

typedef struct {
	ward_finding *items;
	size_t n, cap;
	int incomplete; /* a PCRE2 limit was hit */
} ward_findings;

void ward_findings_init(ward_findings *f);
void ward_findings_dispose(ward_findings *f);

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

#endif
