/*
 * Scanning a whole extracted document: the visible text (with its code and
 * quote blocks as context), every hidden, attribute and comment segment, the
 * URLs of links and images, and the invisible-character inventory of each.
 * Used by `ragward scan` and by ingest, so both judge a document the same way.
 */
#ifndef RAGWARD_SCANDOC_H
#define RAGWARD_SCANDOC_H

#include "ragward/extract.h"
#include "ragward/scan.h"

/*
 * Appends the findings of `x` to `out`. Offsets of every finding are byte
 * offsets into the original document: visible-text findings through the
 * extraction map, segment and link findings at their source range.
 *
 * Besides the rule packs, the invisible-character inventory yields built-in
 * findings (category "invisible-smuggling", channel "invisible"):
 * scan.invisible.tag (tag characters spelling text: high, critical when they
 * spell 8 or more characters), scan.invisible.zero-width (inside words: low),
 * scan.invisible.bidi (override/embedding controls, unbalanced isolates:
 * medium), scan.invisible.variation (variation-selector runs: low) and
 * scan.invisible.private-use (low). Alone, the low and medium ones lead to the
 * strip verdict: the characters are removed and the text served.
 */
int ward_scan_document(const ward_ruleset *rs, const ward_extracted *x, ward_findings *out) WARD_MUST_CHECK;

/* Appends a finding that no rule pack produced (the engine's own: invisible
 * characters, the type gate). Strings are copied; view is raw. */
int ward_findings_push(ward_findings *f, const char *rule_id, const char *category, int severity, ward_channel ch,
		       size_t start, size_t end, const char *excerpt) WARD_MUST_CHECK;

#endif
