/*
 * Verdicts from findings (include/ragward/verdict.h, docs/verdicts.md).
 */
#include <string.h>

#include "ragward/verdict.h"
#include "core/banned.h"

const char *ward_verdict_name(ward_verdict v)
{
	static const char *const names[] = {"accept", "flag", "strip", "quarantine", "reject"};

	return (v >= WARD_VERDICT_ACCEPT && v <= WARD_VERDICT_REJECT) ? names[v] : "?";
}

void ward_policy_default(ward_policy *p)
{
	memset(p, 0, sizeof(*p));
	/* A low-severity hit alone only flags; one high-severity hit in visible
	 * text quarantines a standard source; critical intent or several strong
	 * hits reject. High-trust sources get more room, low-trust less. */
	p->tier[0] = (ward_thresholds){.flag = 1, .quarantine = 4, .reject = 15};
	p->tier[1] = (ward_thresholds){.flag = 1, .quarantine = 6, .reject = 20};
	p->tier[2] = (ward_thresholds){.flag = 1, .quarantine = 10, .reject = 30};
	p->severity_weight[1] = 1;
	p->severity_weight[2] = 3;
	p->severity_weight[3] = 6;
	p->severity_weight[4] = 10;
	p->channel_factor[WARD_CH_VISIBLE] = 1.0;
	p->channel_factor[WARD_CH_HIDDEN] = 1.5;
	p->channel_factor[WARD_CH_ATTRIBUTE] = 1.5;
	p->channel_factor[WARD_CH_COMMENT] = 1.5;
	p->channel_factor[WARD_CH_DECODED] = 1.5;
	p->channel_factor[WARD_CH_INVISIBLE] = 2.0;
}

int ward_policy_configure(ward_policy *p, const double thresholds[3][3])
{
	static const char *const tiers[] = {"low", "standard", "high"};

	for (int t = 0; t < 3; t++) {
		ward_thresholds *th = &p->tier[t];
		if (thresholds[t][0] > 0)
			th->flag = thresholds[t][0];
		if (thresholds[t][1] > 0)
			th->quarantine = thresholds[t][1];
		if (thresholds[t][2] > 0)
			th->reject = thresholds[t][2];
		if (!(th->flag <= th->quarantine && th->quarantine <= th->reject))
			return ward_error_set(WARD_EINVAL,
					      "verdict thresholds for '%s' must ascend: flag %.0f <= quarantine %.0f <= reject %.0f",
					      tiers[t], th->flag, th->quarantine, th->reject);
	}
	return 0;
}

void ward_verdict_decide(ward_verdict *v, double *score, const ward_findings *f, int trust, const ward_policy *p)
{
	const ward_thresholds *t = &p->tier[(trust >= 0 && trust <= 2) ? trust : 1];
	double total = 0;
	int incomplete = f->incomplete, only_removable = f->n > 0;

	for (size_t i = 0; i < f->n; i++) {
		const ward_finding *a = &f->items[i];
		int sev = a->severity < 1 ? 1 : a->severity > 4 ? 4 : a->severity;
		double w = p->severity_weight[sev] * p->channel_factor[a->channel < WARD_CH_COUNT ? a->channel : 0];
		int dup = 0;

		if (strcmp(a->rule_id, "scan.incomplete") == 0)
			incomplete = 1;
		if (a->channel == WARD_CH_VISIBLE || a->channel == WARD_CH_DECODED)
			only_removable = 0;
		/* Each rule counts once, at its highest weight. */
		for (size_t j = 0; j < f->n && !dup; j++) {
			const ward_finding *b = &f->items[j];
			int sevb;
			double wb;
			if (j == i || strcmp(a->rule_id, b->rule_id) != 0)
				continue;
			sevb = b->severity < 1 ? 1 : b->severity > 4 ? 4 : b->severity;
			wb = p->severity_weight[sevb] * p->channel_factor[b->channel < WARD_CH_COUNT ? b->channel : 0];
			if (wb > w || (wb == w && j < i))
				dup = 1;
		}
		if (!dup)
			total += w;
	}
	*score = total;
	if (total >= t->reject)
		*v = WARD_VERDICT_REJECT;
	else if (incomplete || total >= t->quarantine)
		*v = WARD_VERDICT_QUARANTINE;
	else if (total >= t->flag)
		/* Findings only in channels that are never served (hidden elements,
		 * comments, attributes, invisible characters) can be removed. */
		*v = only_removable ? WARD_VERDICT_STRIP : WARD_VERDICT_FLAG;
	else
		*v = WARD_VERDICT_ACCEPT;
}
