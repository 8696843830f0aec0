/*
 * Normalization: the views of a text that injection rules are matched
 * against, each with an offset map back to the raw text, and an inventory of
 * invisible characters taken before anything is normalized away.
 *
 *   raw       the text as extracted (validated UTF-8)
 *   folded    NFKC case-fold, default-ignorables removed, whitespace collapsed,
 *             separator-split words ("i.g.n.o.r.e", "i g n o r e") rejoined;
 *             in a letter-spaced run, a wider gap (two or more whitespace
 *             characters, a line break with indentation) or punctuation
 *             between letter groups (" / ", " | ", "_") is a word gap
 *             ("i g n o r e   a l l" and "i g n o r e / a l l" -> "ignore
 *             all"); a hyphen at a line break inside a word is dropped, and
 *             so are the hyphens of a word of the scanner's vocabulary split
 *             by them ("i-nstruction", "ig-nore"; "e-mail" stays)
 *   skeleton  ICU uspoof confusable skeleton of folded, anchored on ASCII:
 *             every non-ASCII code point is replaced by its UTS #39 skeleton
 *             (marks after an ASCII base dropped), mapped back to the ASCII
 *             character with that skeleton where one exists (Cyrillic "і" ->
 *             "i", "ⅿ" -> "m"); ASCII is kept as is, so a rule written for
 *             folded text also matches the skeleton of a look-alike spelling
 *             ("m" is not turned into "rn", "0" not into "O")
 *   decoded   bounded, recursive decoding of base64, hex, percent-encoded and
 *             rot13 runs and of Unicode tag characters
 *
 * ASCII-only input takes a fast path (folded is a lowercase copy with
 * whitespace collapsed; skeleton equals folded; no invisible characters).
 */
#ifndef RAGWARD_NORMALIZE_H
#define RAGWARD_NORMALIZE_H

#include <stddef.h>
#include "ragward/error.h"
#include "ragward/offmap.h"

typedef enum {
	WARD_VIEW_RAW = 0,
	WARD_VIEW_FOLDED,
	WARD_VIEW_SKELETON,
	WARD_VIEW_DECODED,
	WARD_VIEW_COUNT
} ward_view_kind;

const char *ward_view_name(ward_view_kind v); /* "raw", "folded", "skeleton", "decoded" */
int ward_view_parse(ward_view_kind *out, const char *s) WARD_MUST_CHECK;

typedef struct {
	ward_view_kind kind;
	char *text; /* UTF-8, NUL-terminated; "" when the view is empty */
	size_t len;
	ward_offmap map; /* view offsets -> raw offsets */
} ward_view;

typedef enum {
	WARD_INV_TAG = 0,          /* Unicode tag characters U+E0000..E007F (not a flag sequence) */
	WARD_INV_ZERO_WIDTH,       /* ZWSP/ZWNJ/ZWJ/WJ/... inside a word, not a legitimate use */
	WARD_INV_BIDI,             /* bidi embedding/override/isolate controls */
	WARD_INV_BIDI_UNBALANCED,  /* unterminated embeddings or isolates */
	WARD_INV_VARIATION_RUN,    /* runs of variation selectors (data smuggling) */
	WARD_INV_PRIVATE_USE,      /* private-use code points */
} ward_invisible_kind;

const char *ward_invisible_name(ward_invisible_kind k); /* "tag", "zero-width", "bidi", ... */

typedef struct {
	ward_invisible_kind kind;
	size_t start, end; /* raw byte range of the run */
	size_t count;      /* code points in the run */
	char *decoded;     /* for WARD_INV_TAG: the ASCII they spell, else NULL */
} ward_invisible;

/* A range [start, end) of the folded view. */
typedef struct {
	size_t start, end;
} ward_folded_span;

typedef struct {
	ward_view views[WARD_VIEW_COUNT];
	ward_invisible *invisible;
	size_t ninvisible;
	size_t invisible_dropped;  /* runs past WARD_MAX_INVISIBLE_RUNS: counted, not listed */
	size_t mixed_script_words; /* words mixing scripts (e.g. Latin + Cyrillic); mixes
				      UTS #39 "highly restrictive" allows (Latin + Han +
				      kana, + Hangul, + Bopomofo) do not count */
	int decoded_truncated;     /* the decoded view hit its cap; later runs were not decoded */
	/* Letter-spaced runs spaced uniformly, so that their word gaps could not
	 * be told from letter gaps ("i g n o r e a l l p r e v i o u s"): where
	 * they are in the folded view, rejoined as one word ("ignoreallprevious").
	 * The scanner runs the folded rules over them again with the spaces
	 * between words optional (scan.c, the squashed pass). In order. */
	ward_folded_span *squashed;
	size_t nsquashed;
	int ascii_only;
} ward_normalized;

/* Normalizes `len` bytes. Invalid UTF-8 is WARD_EINVAL (message names the
 * byte offset). Input over WARD_MAX_SCAN_BYTES is WARD_ETOOBIG, and so is a
 * folded or skeleton view over WARD_NORMALIZE_MAX_GROWTH times the input
 * (adversarial expansion). Free *out with ward_normalized_free. */
int ward_normalize(ward_normalized **out, const char *text, size_t len) WARD_MUST_CHECK;
void ward_normalized_free(ward_normalized *n);

/* Strict UTF-8 validation (no overlongs, surrogates or code points > 10FFFF,
 * no truncated sequences). Returns 1 when valid; otherwise 0 and, when
 * bad_offset is not NULL, the offset of the first byte of the first
 * ill-formed sequence. */
int ward_utf8_valid(const char *s, size_t len, size_t *bad_offset);

#endif
