/*
 * Verdicts: from a document's findings to what happens to it.
 *
 * Each rule counts once, at its highest-weighted finding: weight(severity)
 * times a channel factor (hidden, attribute, comment, decoded and invisible
 * channels weigh more: a payload placed where readers cannot see it shows
 * intent). The sum is compared with the thresholds of the source's trust tier.
 * A "scan incomplete" finding forces at least quarantine.
 */
#ifndef RAGWARD_VERDICT_H
#define RAGWARD_VERDICT_H

#include "ragward/error.h"
#include "ragward/scan.h"

typedef enum {
	WARD_VERDICT_ACCEPT = 0,
	WARD_VERDICT_FLAG,       /* stored and served with its findings attached */
	WARD_VERDICT_STRIP,      /* offending invisible/hidden content removed from the served text */
	WARD_VERDICT_QUARANTINE, /* stored, not served until a reviewer releases it */
	WARD_VERDICT_REJECT,     /* not stored; the decision is audited */
} ward_verdict;

const char *ward_verdict_name(ward_verdict v); /* "accept", "flag", "strip", "quarantine", "reject" */

typedef struct {
	double flag, quarantine, reject; /* score thresholds, ascending */
} ward_thresholds;

typedef struct {
	ward_thresholds tier[3];             /* by ward_trust: low, standard, high */
	double severity_weight[5];           /* index 1..4 */
	double channel_factor[WARD_CH_COUNT];
} ward_policy;

/* The documented defaults (docs/verdicts.md). */
void ward_policy_default(ward_policy *p);

/* Applies configured thresholds (HOME/config.yaml "verdict:", see
 * ward_config) over the defaults; WARD_EINVAL when a tier's thresholds are
 * then not ascending. */
int ward_policy_configure(ward_policy *p, const double thresholds[3][3]) WARD_MUST_CHECK;

/* Scores the findings for a source of the given trust tier (0 low, 1
 * standard, 2 high). */
void ward_verdict_decide(ward_verdict *v, double *score, const ward_findings *f, int trust, const ward_policy *p);

#endif
