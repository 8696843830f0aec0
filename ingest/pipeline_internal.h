/*
 * Pieces of the ingest pipeline that `ragward rescan` (ingest/rescan.c)
 * shares, so a stored document is judged exactly as a fetched one is.
 * Internal to ingest/: not a public header.
 */
#ifndef RAGWARD_INGEST_PIPELINE_INTERNAL_H
#define RAGWARD_INGEST_PIPELINE_INTERNAL_H

#include <stddef.h>
#include "ragward/documents.h"
#include "ragward/extract.h"
#include "ragward/scan.h"
#include "ragward/store.h"
#include "ragward/verdict.h"

/* The verdict policy of a store: the documented defaults with the
 * thresholds configured in HOME/config.yaml. */
int ward_pipeline_policy(ward_store *s, ward_policy *p) WARD_MUST_CHECK;

/* 5. Scan `x` with `rules` and decide for a source of trust tier `trust`
 * (0 low, 1 standard, 2 high). Findings are appended to `found` (the caller
 * initialises and disposes it). Returns the scanner's error, if any. */
int ward_pipeline_judge(const ward_ruleset *rules, const ward_policy *p, int trust, const ward_extracted *x,
			ward_findings *found, ward_verdict *verdict, double *score) WARD_MUST_CHECK;

/* Fills rows[0..f->n) from the findings (borrowed strings). */
void ward_pipeline_findings_to_rows(ward_finding_in *rows, const ward_findings *f);

/* The strip action on one chunk's text: a ward_malloc'd copy without the
 * normalizer's invisible characters; *removed grows by their count. */
int ward_pipeline_strip_invisible(char **out, size_t *out_len, size_t *removed, const char *text, size_t len)
	WARD_MUST_CHECK;

#endif
