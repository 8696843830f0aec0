/*
 * Re-scan on rule change: stored documents judged again by the current rule
 * set, from their kept bytes, through the same type gate, extractor, scanner
 * and verdict policy as ingest (ingest/pipeline_internal.h).
 *
 * What may change is the judgement, never the content a reader was given:
 * chunk ids, offsets and text stay (except that the strip action removes
 * invisible characters), the statements are re-signed with the new rule-set
 * hash and verdict. What may change the state is one-way: a rescan can move
 * a document into quarantine, never out of it — leaving quarantine is a
 * reviewer's decision (two-person rule), and a looser rule set must not be a
 * way around it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/chunk.h"
#include "ragward/extract.h"
#include "ragward/rescan.h"
#include "ragward/scandoc.h"
#include "ragward/typegate.h"
#include "ragward/verdict.h"
#include "ingest/pipeline_internal.h"
#include "core/banned.h"

const char *ward_rescan_outcome_name(ward_rescan_outcome o)
{
	static const char *const names[] = {"unchanged", "changed", "quarantined", "skipped", "failed"};

	return (o >= WARD_RESCAN_UNCHANGED && o <= WARD_RESCAN_FAILED) ? names[o] : "?";
}

void ward_rescan_item_dispose(ward_rescan_item *it)
{
	if (!it)
		return;
	ward_free(it->uri);
	ward_free(it->from_verdict);
	ward_free(it->from_state);
	ward_free(it->from_ruleset);
	ward_free(it->to_verdict);
	ward_free(it->to_state);
	ward_free(it->to_ruleset);
	ward_free(it->reason);
	memset(it, 0, sizeof(*it));
}

void ward_rescan_report_dispose(ward_rescan_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; r->items && i < r->nitems; i++)
		ward_rescan_item_dispose(&r->items[i]);
	ward_free(r->items);
	memset(r, 0, sizeof(*r));
}

static int dup_into(char **dst, const char *src)
{
	ward_free(*dst);
	*dst = NULL;
	if (src && !(*dst = ward_strdup(src)))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	return 0;
}

static int item_set(ward_rescan_item *it, ward_rescan_outcome o, const char *reason)
{
	it->outcome = o;
	return dup_into(&it->reason, reason);
}

/* Errors that describe the document, not the store: they become its outcome. */
static int item_from_error(ward_rescan_item *it, int rc)
{
	switch (rc) {
	case WARD_EVERIFY:
		it->tampered = 1;
		/* fall through */
	case WARD_EPOLICY:
	case WARD_ETOOBIG:
	case WARD_EINVAL:
	case WARD_ESTATE:
		return item_set(it, WARD_RESCAN_FAILED, ward_error_last()->message);
	default:
		return rc;
	}
}

static int max_severity(const ward_findings *f)
{
	int m = 0;

	for (size_t i = 0; i < f->n; i++)
		if (f->items[i].severity > m)
			m = f->items[i].severity;
	return m;
}

/* The chunks of the re-extracted text must be the stored ones: otherwise the
 * extractor or chunker changed since ingest, and the verdict would judge a
 * text that is not the one served. */
static int chunks_match(const ward_rescan_doc *d, const ward_extracted *x, int *match)
{
	ward_chunk *c = NULL;
	size_t n = 0;
	int rc;

	*match = 0;
	if ((rc = ward_chunk_text(&c, &n, x, NULL)) < 0)
		return rc;
	*match = n == d->nchunks;
	for (size_t i = 0; *match && i < n; i++)
		*match = (int64_t)c[i].start == d->chunk_start[i] && (int64_t)c[i].end == d->chunk_end[i];
	ward_chunks_free(c, n);
	return 0;
}

/* The strip action on the stored chunk texts. *out stays NULL when nothing
 * would be removed (already stripped, or nothing invisible). */
static int strip_chunks(const ward_rescan_doc *d, char ***out, size_t **lens)
{
	char **t = NULL;
	size_t *l = NULL, removed = 0;
	int rc = 0;

	*out = NULL;
	*lens = NULL;
	if (!d->nchunks)
		return 0;
	if (!(t = ward_calloc(d->nchunks, sizeof(*t))) || !(l = ward_calloc(d->nchunks, sizeof(*l)))) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < d->nchunks; i++)
		if ((rc = ward_pipeline_strip_invisible(&t[i], &l[i], &removed, d->chunk_text[i], d->chunk_len[i])) < 0)
			goto done;
	if (removed) {
		*out = t;
		*lens = l;
		t = NULL;
		l = NULL;
	}
done:
	for (size_t i = 0; t && i < d->nchunks; i++)
		ward_free(t[i]);
	ward_free(t);
	ward_free(l);
	return rc;
}

/*
 * Where the new verdict leaves the document (docs/rescan.md):
 *   quarantined            stays quarantined, whatever the verdict;
 *   active, verdict quarantine or reject:
 *     released by a reviewer, no finding above what was released: active;
 *     otherwise: quarantined (reject included: a rescan never deletes);
 *   active, verdict accept/flag/strip: active.
 */
static const char *new_state(const ward_rescan_doc *d, ward_verdict v, int sev, int *kept_released)
{
	*kept_released = 0;
	if (strcmp(d->state, "quarantined") == 0)
		return "quarantined";
	if (v == WARD_VERDICT_QUARANTINE || v == WARD_VERDICT_REJECT) {
		if (d->released && sev <= d->max_severity) {
			*kept_released = 1;
			return "active";
		}
		return "quarantined";
	}
	*kept_released = d->released;
	return "active";
}

static int judge_one(ward_store *s, const ward_actor *who, const ward_rescan_opts *o, const ward_rescan_doc *d,
		     ward_rescan_item *it)
{
	ward_gate_result gate;
	ward_extracted *x = NULL;
	ward_findings found;
	ward_policy policy;
	ward_verdict verdict = WARD_VERDICT_ACCEPT;
	ward_finding_in *fin = NULL;
	ward_rescan_update u;
	char **stripped = NULL, why[320];
	size_t *stripped_len = NULL;
	const char *ruleset = ward_ruleset_sha256(o->rules), *to_verdict, *to_state, *gate_why = NULL;
	double score = 0;
	int rc, match = 0, sev, kept_released = 0;

	memset(&gate, 0, sizeof(gate));
	memset(&u, 0, sizeof(u));
	ward_findings_init(&found);
	if ((rc = ward_pipeline_policy(s, &policy)) < 0)
		goto done;
	/* 3. Type gate, as at ingest: a file's type is declared by its name, an
	 * HTTP document's by its (normalized) Content-Type. */
	if ((rc = ward_typegate(&gate, (const char *)d->bytes, d->len,
				d->source_is_file || !d->declared_type[0] ? NULL : d->declared_type, d->final_url, 0)) < 0) {
		rc = item_from_error(it, rc);
		goto done;
	}
	if (gate.decision != WARD_GATE_ACCEPT) {
		/* Never parsed: nothing for the rules to judge. A document the gate
		 * now rejects is kept for a reviewer, like a reject verdict. */
		verdict = gate.decision == WARD_GATE_REJECT ? WARD_VERDICT_REJECT : WARD_VERDICT_QUARANTINE;
		gate_why = gate.reason;
	} else if (gate.type == WARD_TYPE_FEED) {
		rc = item_set(it, WARD_RESCAN_SKIPPED, "a feed: its items are separate documents; re-ingest to rescan");
		goto done;
	} else {
		/* 4. Extract, 5. scan and decide. */
		if ((rc = ward_extract(&x, gate.utf8, gate.utf8_len, gate.type)) < 0 ||
		    (rc = ward_pipeline_judge(o->rules, &policy, d->trust, x, &found, &verdict, &score)) < 0) {
			rc = item_from_error(it, rc);
			goto done;
		}
		if ((rc = chunks_match(d, x, &match)) < 0) {
			rc = item_from_error(it, rc);
			goto done;
		}
		if (!match) {
			rc = item_set(it, WARD_RESCAN_SKIPPED,
				      "the extracted text no longer gives the stored chunks (extractor changed since"
				      " ingest); re-ingest to rescan");
			goto done;
		}
	}
	sev = max_severity(&found);
	to_state = new_state(d, verdict, sev, &kept_released);
	/* Statements never say "reject": a rejected document kept for review is
	 * in quarantine. */
	to_verdict = verdict == WARD_VERDICT_REJECT ? "quarantine" : ward_verdict_name(verdict);
	if (verdict == WARD_VERDICT_STRIP && (rc = strip_chunks(d, &stripped, &stripped_len)) < 0)
		goto done;
	if (found.n) {
		if (!(fin = ward_calloc(found.n, sizeof(*fin)))) {
			rc = ward_error_set(WARD_ENOMEM, "out of memory");
			goto done;
		}
		ward_pipeline_findings_to_rows(fin, &found);
	}
	if (gate_why)
		snprintf(why, sizeof(why), "type gate: %s", gate_why);
	else
		snprintf(why, sizeof(why), "verdict %s (score %.1f, %zu findings)%s", ward_verdict_name(verdict), score,
			 found.n,
			 kept_released && strcmp(to_verdict, "quarantine") == 0
				 ? "; released by a reviewer, no finding above the severity released"
			 : verdict == WARD_VERDICT_REJECT ? "; kept in quarantine for a reviewer (a rescan never deletes)"
			 : !strcmp(d->state, "quarantined") && strcmp(to_verdict, "quarantine") != 0
				 ? "; stays quarantined until a reviewer releases it"
			 : stripped ? "; invisible characters stripped"
				    : "");

	u.document_id = d->id;
	u.expect_state = d->state;
	u.expect_ruleset = d->ruleset_sha256;
	u.ruleset_sha256 = ruleset;
	u.verdict = to_verdict;
	u.state = to_state;
	u.score = score;
	u.findings = fin;
	u.nfindings = found.n;
	u.chunk_text = stripped;
	u.chunk_len = stripped_len;
	u.nchunks = stripped ? d->nchunks : 0;
	u.reviewed_severity = kept_released ? (sev > d->max_severity ? sev : d->max_severity) : -1;
	u.reason = why;
	/* The item is filled before the write: once the document is committed,
	 * nothing may fail and report it as not rescanned. */
	if ((rc = dup_into(&it->to_verdict, to_verdict)) < 0 || (rc = dup_into(&it->to_state, to_state)) < 0 ||
	    (rc = dup_into(&it->to_ruleset, ruleset)) < 0 ||
	    (rc = item_set(it,
			   !strcmp(d->state, "active") && !strcmp(to_state, "quarantined") ? WARD_RESCAN_QUARANTINED
			   : strcmp(d->verdict, to_verdict) != 0 || strcmp(d->state, to_state) != 0 ? WARD_RESCAN_CHANGED
												     : WARD_RESCAN_UNCHANGED,
			   why)) < 0)
		goto done;
	if ((rc = ward_rescan_store(s, who, &u)) < 0) {
		dup_into(&it->to_verdict, NULL);
		dup_into(&it->to_state, NULL);
		dup_into(&it->to_ruleset, NULL);
		rc = item_from_error(it, rc);
		goto done;
	}
done:
	for (size_t i = 0; stripped && i < d->nchunks; i++)
		ward_free(stripped[i]);
	ward_free(stripped);
	ward_free(stripped_len);
	ward_free(fin);
	ward_findings_dispose(&found);
	ward_extracted_free(x);
	ward_gate_result_dispose(&gate);
	return rc;
}

int ward_rescan_document(ward_store *s, const ward_actor *who, const ward_rescan_opts *o, int64_t id,
			 ward_rescan_item *it)
{
	ward_rescan_doc d;
	int rc;

	memset(it, 0, sizeof(*it));
	it->document_id = id;
	if (!o || !o->rules)
		return ward_error_set(WARD_EINVAL, "rescan needs a rule set");
	if ((rc = ward_rescan_doc_load(s, id, &d)) < 0) {
		/* Unreadable chunk rows are this document's problem. */
		return rc == WARD_EVERIFY ? item_from_error(it, rc) : rc;
	}
	if (strcmp(d.state, "active") != 0 && strcmp(d.state, "quarantined") != 0) {
		rc = ward_error_set(WARD_ESTATE, "document %" PRId64 " is %s: only active or quarantined documents are rescanned",
				    id, d.state);
		goto done;
	}
	if ((rc = dup_into(&it->uri, d.uri)) < 0 || (rc = dup_into(&it->from_verdict, d.verdict)) < 0 ||
	    (rc = dup_into(&it->from_state, d.state)) < 0 || (rc = dup_into(&it->from_ruleset, d.ruleset_sha256)) < 0)
		goto done;
	if (!d.has_bytes) {
		rc = item_set(it, WARD_RESCAN_SKIPPED, "bytes not kept; re-ingest to rescan");
		goto done;
	}
	rc = judge_one(s, who, o, &d, it);
done:
	ward_rescan_doc_dispose(&d);
	return rc;
}

int ward_rescan_run(ward_store *s, const ward_actor *who, const ward_rescan_opts *o, ward_rescan_report *r)
{
	int64_t *ids = NULL;
	size_t n = 0;
	int rc;

	memset(r, 0, sizeof(*r));
	if (!o || !o->rules)
		return ward_error_set(WARD_EINVAL, "rescan needs a rule set");
	if ((rc = ward_rescan_candidates(s, o->source_id, ward_ruleset_sha256(o->rules), o->force, &ids, &n)) < 0)
		return rc;
	if (n && !(r->items = ward_calloc(n, sizeof(*r->items)))) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		ward_rescan_item *it = &r->items[i];

		rc = ward_rescan_document(s, who, o, ids[i], it);
		r->nitems++;
		if (rc < 0)
			goto done;
		switch (it->outcome) {
		case WARD_RESCAN_QUARANTINED:
			r->quarantined++;
			/* fall through */
		case WARD_RESCAN_CHANGED:
			r->changed++;
			r->rescanned++;
			break;
		case WARD_RESCAN_UNCHANGED:
			r->unchanged++;
			r->rescanned++;
			break;
		case WARD_RESCAN_SKIPPED:
			r->skipped++;
			break;
		case WARD_RESCAN_FAILED:
			r->failed++;
			break;
		}
		if (o->progress)
			o->progress(o->progress_ctx, i + 1, n, it);
	}
done:
	ward_free(ids);
	return rc;
}
