/*
 * Shared between sanitize/rules.c (loading, admission checks), sanitize/hsdb.c
 * (Vectorscan databases and their cache) and sanitize/scan.c (the engine).
 * A loaded ward_ruleset is immutable, so any number of threads may scan with
 * it at once; per-thread state (match data, JIT stack, scratch) lives in scan.c.
 */
#ifndef RAGWARD_SANITIZE_SCAN_INTERNAL_H
#define RAGWARD_SANITIZE_SCAN_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "ragward/scan.h"

/* Context modifiers of a rule (bit mask). */
#define WARD_CTX_NOT_IN_CODE 0x1u

typedef struct {
	char *text;
	size_t len;
} ward_example;

typedef struct {
	char *file; /* pack file name (not the path), for messages */
	char *id;
	char *title;
	char *category;
	int severity;
	ward_action_hint action;
	unsigned channels; /* bit per ward_channel */
	unsigned views;    /* bit per ward_view_kind */
	int caseless;
	unsigned context;        /* WARD_CTX_* */
	size_t first_pat, npats; /* range in ward_ruleset.pats */
	ward_example *match, *no_match;
	size_t nmatch, nno_match;
} ward_rule;

typedef struct {
	char *src; /* the pattern as written */
	size_t len;
	size_t rule; /* index in ward_ruleset.rules */
	pcre2_code *code;
	int jit;          /* 1: JIT compiled */
	uint32_t options; /* compile options (for helper patterns of the converter) */
} ward_pattern;

/* How a pattern takes part in the Vectorscan database of one view. */
enum { WARD_HS_NONE = 0, WARD_HS_EXACT, WARD_HS_PREFILTER, WARD_HS_CONFIRM };

typedef struct ward_hsdb ward_hsdb;

struct ward_ruleset {
	ward_rule *rules;
	size_t nrules;
	ward_pattern *pats;
	size_t npats;
	char sha256[65];
	int no_jit;
	int prefilter;                 /* 1: Vectorscan databases in use */
	unsigned long long generation; /* distinguishes sets for per-thread scratch */
	/* Per view: patterns that must run on PCRE2 for every text of that view
	 * (every pattern of the view without a database). Indices into pats. */
	size_t *confirm[WARD_VIEW_COUNT];
	size_t nconfirm[WARD_VIEW_COUNT];
	ward_hsdb *hs[WARD_VIEW_COUNT]; /* NULL: no database for the view */
	void *hs_scratch_proto;         /* hs_scratch_t *, allocated for every database */
	ward_ruleset_stats stats;
};

/* --- scan.c: matching with limits, shared with the admission checks. */

/* Result of one pcre2_match under the set's limits: 1 match (ovector filled),
 * 0 no match, WARD_LIMIT_HIT when a match/depth/heap/JIT-stack limit was hit,
 * another negative ward code on error. */
#define WARD_LIMIT_HIT 1000
int ward_scan_match1(const ward_pattern *p, int no_jit, const char *subj, size_t len, size_t start, size_t *mstart,
                     size_t *mend, int *pcre_rc);
/* 1 when any declared view of `rule` matches `text` after normalization; 0
 * none; WARD_LIMIT_HIT on a limit; negative on error (invalid UTF-8...). */
int ward_scan_rule_matches(const ward_ruleset *rs, const ward_rule *rule, const char *text, size_t len);

/* --- hsdb.c: the cache directory, shared by the Vectorscan databases and
 * the validated-set records of rules.c. */

/* 1 when `dir` is a directory of this user that nobody else may write
 * (created 0700 when missing); 0 and the cache is not used. */
int ward_cache_dir_ok(const char *dir);
/* Reads one cache file of at most `max` bytes. 0: read (*out is the
 * caller's); 1: present but not usable: a symlink, not a regular file,
 * another owner, writable by group or others, larger than max, unreadable
 * (a rejection); 2: missing. Leaves ward_error clear. */
int ward_cache_read(char **out, size_t *len, const char *path, size_t max);
/* Writes `path` atomically: a 0600 temporary in `dir`, fsync, rename. A
 * failure is silent (the next load redoes the work). */
void ward_cache_write(const char *dir, const char *path, const void *data, size_t len);

/* --- hsdb.c: Vectorscan databases. Without Vectorscan these are no-ops that
 * leave every pattern to PCRE2. */

/* Builds (or loads from opts->cache_dir) one database per view in use and
 * fills rs->confirm / rs->hs / rs->stats. */
int ward_hsdb_build_all(ward_ruleset *rs, const char *cache_dir) WARD_MUST_CHECK;
void ward_hsdb_free_all(ward_ruleset *rs);
/* Scans one view's text: sets cand[i] = 1 for every pattern index i the
 * database reports. Returns 0, or a negative code when the scan failed (the
 * caller then confirms every pattern of the view). */
int ward_hsdb_scan(const ward_ruleset *rs, ward_view_kind v, const char *text, size_t len, uint8_t *cand);

/* One Vectorscan scan of `text` (short texts padded, see hsdb.c) with a
 * hs_scratch_t: cand[id] = 1 for each id < ncand reported. */
int ward_hs_scan_bytes(const void *db, void *scratch, const char *text, size_t len, uint8_t *cand, size_t ncand);

/* The view's hs_database_t (NULL when none), for bench/scan_bench.c. */
const void *ward_hsdb_database(const ward_ruleset *rs, ward_view_kind v);

/* Pattern → Vectorscan expression over UTF-8 bytes whose language contains
 * every text PCRE2 (UTF, UCP, caseless as declared) would find a match in.
 * *exact = 1 when it is not an approximation. Returns 0, or 1 when the
 * pattern uses a construct the conversion does not handle (always confirm),
 * negative on allocation failure. Exposed for tests. */
int ward_hs_convert(char **out, int *exact, const ward_pattern *p);

#endif
