/*
 * Scanning a whole extracted document (include/ragward/scandoc.h).
 */
#include <stdio.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "ragward/normalize.h"
#include "ragward/scandoc.h"
#include "core/limits.h"
#include "core/banned.h"

int ward_findings_push(ward_findings *f, const char *rule_id, const char *category, int severity, ward_channel ch,
		       size_t start, size_t end, const char *excerpt)
{
	ward_finding *it;

	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 16;
		ward_finding *grown = ward_realloc(f->items, cap * sizeof(*grown));
		if (!grown)
			return ward_error_set(WARD_ENOMEM, "out of memory");
		f->items = grown;
		f->cap = cap;
	}
	it = &f->items[f->n];
	memset(it, 0, sizeof(*it));
	it->rule_id = ward_strdup(rule_id);
	it->category = ward_strdup(category);
	it->excerpt = ward_strdup(excerpt);
	if (!it->rule_id || !it->category || !it->excerpt) {
		ward_free(it->rule_id);
		ward_free(it->category);
		ward_free(it->excerpt);
		return ward_error_set(WARD_ENOMEM, "out of memory");
	}
	it->severity = it->base_severity = severity;
	it->channel = ch;
	it->view = WARD_VIEW_RAW;
	it->start = start;
	it->end = end;
	it->action = severity >= 3 ? WARD_ACTION_QUARANTINE : WARD_ACTION_STRIP;
	f->n++;
	return 0;
}

/* Printable ASCII copy of what tag characters spell, for the excerpt. */
static void ascii_excerpt(char *out, size_t cap, const char *s)
{
	size_t o = 0;

	for (; s && *s && o + 5 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
	}
	out[o] = '\0';
}

/*
 * Built-in findings from the inventory the normalizer takes before it
 * normalizes anything. `map` (may be NULL) maps raw offsets of the scanned
 * text to the original document; without it, [fallback_start, fallback_end)
 * is used.
 */
static int inventory_findings(const ward_normalized *n, const ward_offmap *map, size_t fallback_start,
			      size_t fallback_end, ward_findings *out)
{
	for (size_t i = 0; i < n->ninvisible; i++) {
		const ward_invisible *v = &n->invisible[i];
		size_t s = map ? ward_offmap_lookup(map, v->start) : fallback_start;
		size_t e = map ? ward_offmap_lookup(map, v->end) : fallback_end;
		char text[WARD_EXCERPT_LEN + 64], spelled[WARD_EXCERPT_LEN];
		const char *id;
		int sev, rc;

		switch (v->kind) {
		case WARD_INV_TAG:
			ascii_excerpt(spelled, sizeof(spelled), v->decoded);
			snprintf(text, sizeof(text), "%zu tag characters spelling \"%s\"", v->count, spelled);
			id = "scan.invisible.tag";
			sev = v->decoded && strlen(v->decoded) >= 8 ? 4 : 3;
			break;
		case WARD_INV_ZERO_WIDTH:
			snprintf(text, sizeof(text), "%zu zero-width character(s) inside a word", v->count);
			id = "scan.invisible.zero-width";
			sev = 1; /* alone: strip and serve; with a phrase rule it adds up */
			break;
		case WARD_INV_BIDI:
		case WARD_INV_BIDI_UNBALANCED:
			snprintf(text, sizeof(text), "%zu bidi control(s)%s", v->count,
				 v->kind == WARD_INV_BIDI_UNBALANCED ? ", unbalanced" : "");
			id = "scan.invisible.bidi";
			sev = 2;
			break;
		case WARD_INV_VARIATION_RUN:
			snprintf(text, sizeof(text), "a run of %zu variation selectors", v->count);
			id = "scan.invisible.variation";
			sev = 1;
			break;
		default:
			snprintf(text, sizeof(text), "%zu private-use character(s)", v->count);
			id = "scan.invisible.private-use";
			sev = 1;
			break;
		}
		if ((rc = ward_findings_push(out, id, "invisible-smuggling", sev, WARD_CH_INVISIBLE, s, e, text)) < 0)
			return rc;
	}
	return 0;
}

/* Code and quote blocks of the visible text: quoting an attack is not aiming it. */
static int quoted_spans(const ward_extracted *x, ward_span **spans, size_t *n)
{
	size_t count = 0;

	*spans = NULL;
	*n = 0;
	for (size_t i = 0; i < x->nblocks; i++)
		count += x->blocks[i].kind == WARD_BLOCK_CODE || x->blocks[i].kind == WARD_BLOCK_QUOTE;
	if (!count)
		return 0;
	if (!(*spans = ward_calloc(count, sizeof(**spans))))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	for (size_t i = 0; i < x->nblocks; i++)
		if (x->blocks[i].kind == WARD_BLOCK_CODE || x->blocks[i].kind == WARD_BLOCK_QUOTE) {
			(*spans)[*n].start = x->blocks[i].start;
			(*spans)[*n].end = x->blocks[i].end;
			(*n)++;
		}
	return 0;
}

/* The same rule already matched this span in [from, to) (a rule that names
 * the decoded view finds what this rescan finds). */
static int found_before(const ward_findings *out, size_t from, size_t to, const ward_finding *f)
{
	for (size_t i = from; i < to; i++) {
		const ward_finding *o = &out->items[i];

		if (strcmp(o->rule_id, f->rule_id) == 0 && o->start < f->end + 1 && f->start < o->end + 1)
			return 1;
	}
	return 0;
}

/*
 * What base64, hex, percent, rot13 or tag characters decode to is text a
 * reader never sees: it is normalized and scanned on its own, as channel
 * "decoded", by every rule (not only the rules that name the decoded view),
 * so "ignore previous instructions" hidden in base64 is found by the same
 * rule as in plain text. Findings get offsets in `n`'s raw text (through the
 * decoded view's map): the caller maps those to the document. The decoder
 * already unwraps nested encodings (WARD_DECODE_MAX_DEPTH), so one level of
 * this is enough.
 */
static int scan_decoded(const ward_ruleset *rs, const ward_normalized *n, size_t outer, ward_findings *out)
{
	const ward_view *d = &n->views[WARD_VIEW_DECODED];
	ward_normalized *dn = NULL;
	size_t first = out->n;
	int rc;

	if (d->len == 0 || d->text == NULL)
		return 0;
	if ((rc = ward_normalize(&dn, d->text, d->len)) < 0)
		return rc;
	rc = ward_scan_normalized_ex(rs, WARD_CH_DECODED, NULL, dn, out);
	ward_normalized_free(dn);
	if (rc < 0)
		return rc;
	size_t keep = first;
	for (size_t i = first; i < out->n; i++) {
		ward_finding *f = &out->items[i];

		f->start = ward_offmap_lookup(&d->map, f->start);
		f->end = ward_offmap_lookup(&d->map, f->end);
		if (f->end < f->start)
			f->end = f->start;
		if (found_before(out, outer, first, f)) {
			ward_free(f->rule_id);
			ward_free(f->category);
			ward_free(f->excerpt);
			continue;
		}
		out->items[keep++] = *f;
	}
	out->n = keep;
	return 0;
}

/* Normalizes and scans one text; findings get offsets in the original
 * document (through `map`, or the fixed source range). */
static int scan_piece(const ward_ruleset *rs, ward_channel ch, const ward_scan_context *ctx, const char *text,
		      size_t len, const ward_offmap *map, size_t src_start, size_t src_end, ward_findings *out)
{
	ward_normalized *n = NULL;
	size_t before = out->n;
	int rc;

	if (len == 0)
		return 0;
	if ((rc = ward_normalize(&n, text, len)) < 0)
		return rc;
	if ((rc = ward_scan_normalized_ex(rs, ch, ctx, n, out)) < 0)
		goto done;
	if ((rc = scan_decoded(rs, n, before, out)) < 0)
		goto done;
	for (size_t i = before; i < out->n; i++) {
		out->items[i].start = map ? ward_offmap_lookup(map, out->items[i].start) : src_start;
		out->items[i].end = map ? ward_offmap_lookup(map, out->items[i].end) : src_end;
	}
	rc = inventory_findings(n, map, src_start, src_end, out);
done:
	ward_normalized_free(n);
	return rc;
}

int ward_scan_document(const ward_ruleset *rs, const ward_extracted *x, ward_findings *out)
{
	ward_scan_context ctx;
	ward_span *spans = NULL;
	size_t nspans = 0;
	ward_buf link;
	int rc;

	memset(&ctx, 0, sizeof(ctx));
	ward_buf_init(&link, 2 * WARD_MAX_URL_LEN + 1024);
	if ((rc = quoted_spans(x, &spans, &nspans)) < 0)
		return rc;
	ctx.quoted = spans;
	ctx.nquoted = nspans;
	if ((rc = scan_piece(rs, WARD_CH_VISIBLE, &ctx, x->text, x->len, &x->map, 0, 0, out)) < 0)
		goto done;
	for (size_t i = 0; i < x->nsegments; i++) {
		const ward_segment *sg = &x->segments[i];
		if ((rc = scan_piece(rs, sg->channel, NULL, sg->text, sg->len, NULL, sg->src_start, sg->src_end, out)) <
		    0)
			goto done;
	}
	/* Link and image URLs are not in the visible text, yet a model may render
	 * them: scan each in Markdown form, where exfiltration rules look. A
	 * link's text is visible and was scanned as such: it is left out here, so
	 * that the stricter rules of hidden channels do not judge what a reader
	 * sees ("Can you help?" in a FAQ's table of contents). An image's alt
	 * text is not visible and stays. */
	for (size_t i = 0; i < x->nlinks; i++) {
		const ward_link *l = &x->links[i];
		ward_buf_reset(&link);
		if ((rc = ward_buf_printf(&link, "%s[%s](%s)", l->is_image ? "!" : "",
					  l->is_image && l->text ? l->text : "", l->url ? l->url : "")) < 0) {
			if (rc != WARD_ETOOBIG)
				goto done; /* out of memory: never a silent skip */
			continue; /* an over-long link is cut by the extractor's caps; skip it here */
		}
		if ((rc = scan_piece(rs, WARD_CH_ATTRIBUTE, NULL, link.ptr, link.len, NULL, l->src_start,
				     l->src_start + 1, out)) < 0) {
			/* A link that is not valid UTF-8 cannot reach a model intact. */
			if (rc == WARD_EINVAL)
				continue;
			goto done;
		}
	}
	rc = 0;
done:
	ward_free(spans);
	ward_buf_dispose(&link);
	return rc;
}
