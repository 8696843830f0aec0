/*
 * HTML extraction with libxml2's SAX interface (no tree).
 *
 * Why SAX: measured on the dev corpus, a tree costs twice the time of the
 * parse alone (performance.md §4: 41 vs 83 MB/s) and gives no source
 * offsets; SAX callbacks see the parser's input position, which is how every
 * text run is anchored to its bytes in the original (bench/extract_bench.c).
 *
 * What the callbacks maintain: a stack of element frames (block context,
 * script/style, pre, table row, inherited background colour), the outermost
 * hidden element (its text goes to a segment, never to the visible text),
 * the open link and the title. Hiding is decided at the start tag from the
 * element, its attributes, its inline style and the page's own stylesheet
 * rules for simple class and id selectors.
 *
 * Offsets: at a characters callback the parser's cursor sits at (or a
 * character past) the end of the run, so the run is found there with one
 * memcmp and mapped exactly. A character reference (&amp;) arrives as its
 * own decoded run that cannot match the source; it is mapped to the start of
 * the reference. Anything else that fails to match maps to the end of the
 * previous token ("start of the run").
 *
 * Stylesheet rules: only selectors of the forms `.x`, `#y`, `tag.x`,
 * `tag#y` (comma lists allowed, inside @media/@supports too) are applied.
 * Descendant, child, attribute and pseudo selectors are ignored: matching
 * them needs a cascade this extractor deliberately does not implement.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/HTMLparser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>

#include "core/limits.h"
#include "ingest/extract_internal.h"
#include "ragward/alloc.h"
#include "ragward/error.h"
#include "core/banned.h"

#define HTML_OPTIONS  (HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_IGNORE_ENC)
#define LINK_TEXT_MAX 1024 /* bytes of anchor text kept for a link */
#define WHY_MAX       160
/* An attribute value reads like prose: at least this many words and letters. */
#define ATTR_PROSE_MIN_WORDS   4
#define ATTR_PROSE_MIN_LETTERS 16

enum {
	TAG_OTHER = 0,
	TAG_BLOCK, /* generic block: div, section, ... */
	TAG_P,
	TAG_TITLE,
	TAG_SCRIPT,
	TAG_STYLE,
	TAG_H,
	TAG_UL,
	TAG_LI,
	TAG_TR,
	TAG_CELL,
	TAG_PRE,
	TAG_BLOCKQUOTE,
	TAG_A,
	TAG_IMG,
	TAG_META,
	TAG_BR,
	TAG_NOSCRIPT,
	TAG_TEMPLATE,
	TAG_INPUT,
};

typedef struct {
	const char *name;
	unsigned char id;
	unsigned char level;
} tagdef;

static const tagdef tags[] = {
        {"div", TAG_BLOCK, 0},
        {"p", TAG_P, 0},
        {"a", TAG_A, 0},
        {"li", TAG_LI, 0},
        {"td", TAG_CELL, 0},
        {"tr", TAG_TR, 0},
        {"th", TAG_CELL, 0},
        {"img", TAG_IMG, 0},
        {"br", TAG_BR, 0},
        {"h1", TAG_H, 1},
        {"h2", TAG_H, 2},
        {"h3", TAG_H, 3},
        {"h4", TAG_H, 4},
        {"h5", TAG_H, 5},
        {"h6", TAG_H, 6},
        {"ul", TAG_UL, 0},
        {"ol", TAG_UL, 0},
        {"pre", TAG_PRE, 0},
        {"blockquote", TAG_BLOCKQUOTE, 0},
        {"script", TAG_SCRIPT, 0},
        {"style", TAG_STYLE, 0},
        {"title", TAG_TITLE, 0},
        {"meta", TAG_META, 0},
        {"noscript", TAG_NOSCRIPT, 0},
        {"template", TAG_TEMPLATE, 0},
        {"input", TAG_INPUT, 0},
        {"section", TAG_BLOCK, 0},
        {"article", TAG_BLOCK, 0},
        {"header", TAG_BLOCK, 0},
        {"footer", TAG_BLOCK, 0},
        {"nav", TAG_BLOCK, 0},
        {"aside", TAG_BLOCK, 0},
        {"main", TAG_BLOCK, 0},
        {"dl", TAG_BLOCK, 0},
        {"dt", TAG_BLOCK, 0},
        {"dd", TAG_BLOCK, 0},
        {"table", TAG_BLOCK, 0},
        {"caption", TAG_BLOCK, 0},
        {"form", TAG_BLOCK, 0},
        {"fieldset", TAG_BLOCK, 0},
        {"figure", TAG_BLOCK, 0},
        {"figcaption", TAG_BLOCK, 0},
        {"address", TAG_BLOCK, 0},
        {"hr", TAG_BLOCK, 0},
        {"details", TAG_BLOCK, 0},
        {"summary", TAG_BLOCK, 0},
        {"center", TAG_BLOCK, 0},
        {"legend", TAG_BLOCK, 0},
        {"body", TAG_BLOCK, 0},
        {"html", TAG_BLOCK, 0},
        {"head", TAG_BLOCK, 0},
        {"textarea", TAG_BLOCK, 0},
        {"option", TAG_BLOCK, 0},
        {"menu", TAG_BLOCK, 0},
        {"dir", TAG_UL, 0},
};

static const tagdef *tag_lookup(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
		if (tags[i].name[0] == name[0] && strcmp(tags[i].name, name) == 0)
			return &tags[i];
	return NULL;
}

/* ---- CSS ---------------------------------------------------------------------- */

typedef struct {
	char kind; /* '.' or '#' */
	char *name;
	char *tag; /* NULL: any element */
	char why[WHY_MAX];
} css_rule;

typedef struct {
	int display_none, vis_hidden, font0, opacity0, positioned, offscreen, margin_off, clip, clip_path, indent,
	        transparent, zero_h, zero_w, overflow_hidden, scale0;
	int has_color, has_bg;
	uint32_t color, bg;
} css_seen;

static const struct {
	const char *name;
	uint32_t rgb;
} color_names[] = {
        {"white", 0xFFFFFF},  {"black", 0x000000},  {"red", 0xFF0000},     {"green", 0x008000},
        {"blue", 0x0000FF},   {"yellow", 0xFFFF00}, {"gray", 0x808080},    {"grey", 0x808080},
        {"silver", 0xC0C0C0}, {"snow", 0xFFFAFA},   {"ivory", 0xFFFFF0},   {"whitesmoke", 0xF5F5F5},
        {"lime", 0x00FF00},   {"navy", 0x000080},   {"fuchsia", 0xFF00FF}, {"aqua", 0x00FFFF},
};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Parses one lowercase colour token. Returns 1 with *rgb, 2 for a fully
 * transparent colour, 0 when it is not a colour we know. */
static int css_color(const char *v, uint32_t *rgb)
{
	size_t n = strlen(v);
	size_t i;

	if (strcmp(v, "transparent") == 0)
		return 2;
	if (v[0] == '#') {
		int d[8];

		if (n != 4 && n != 5 && n != 7 && n != 9)
			return 0;
		for (i = 1; i < n; i++)
			if ((d[i - 1] = hexval(v[i])) < 0)
				return 0;
		if (n == 4 || n == 5) {
			if (n == 5 && d[3] == 0)
				return 2;
			*rgb = (uint32_t)(d[0] * 17) << 16 | (uint32_t)(d[1] * 17) << 8 | (uint32_t)(d[2] * 17);
			return 1;
		}
		if (n == 9 && d[6] == 0 && d[7] == 0)
			return 2;
		*rgb = (uint32_t)(d[0] * 16 + d[1]) << 16 | (uint32_t)(d[2] * 16 + d[3]) << 8 |
		       (uint32_t)(d[4] * 16 + d[5]);
		return 1;
	}
	if (strncmp(v, "rgb(", 4) == 0 || strncmp(v, "rgba(", 5) == 0) {
		const char *p = strchr(v, '(') + 1;
		double c[4] = {0, 0, 0, 1};
		int k;

		for (k = 0; k < 4; k++) {
			char *end;

			while (*p == ' ' || *p == ',' || *p == '/')
				p++;
			if (*p == ')' || *p == '\0')
				break;
			c[k] = strtod(p, &end);
			if (end == p)
				return 0;
			if (*end == '%') {
				c[k] = k < 3 ? c[k] * 2.55 : c[k] / 100.0;
				end++;
			}
			p = end;
		}
		if (k < 3)
			return 0;
		if (k == 4 && c[3] <= 0.01)
			return 2;
		for (k = 0; k < 3; k++)
			c[k] = c[k] < 0 ? 0 : (c[k] > 255 ? 255 : c[k]);
		*rgb = (uint32_t)(c[0] + 0.5) << 16 | (uint32_t)(c[1] + 0.5) << 8 | (uint32_t)(c[2] + 0.5);
		return 1;
	}
	for (i = 0; i < sizeof(color_names) / sizeof(color_names[0]); i++)
		if (strcmp(v, color_names[i].name) == 0) {
			*rgb = color_names[i].rgb;
			return 1;
		}
	return 0;
}

/* Colours a reader cannot tell apart count as equal. */
static int color_near(uint32_t a, uint32_t b)
{
	int k;

	for (k = 0; k < 24; k += 8) {
		int d = (int)((a >> k) & 0xFF) - (int)((b >> k) & 0xFF);

		if (d > 8 || d < -8)
			return 0;
	}
	return 1;
}

/* A CSS length: number and unit ("" for a bare number). */
static int css_len(const char *v, double *num, const char **unit)
{
	char *end;

	*num = strtod(v, &end);
	if (end == v)
		return 0;
	*unit = end;
	return 1;
}

static int len_le(const char *v, double px_limit, double em_limit)
{
	double x;
	const char *u;

	if (!css_len(v, &x, &u))
		return 0;
	if (*u == '\0' || strcmp(u, "px") == 0 || strcmp(u, "pt") == 0)
		return x <= px_limit;
	if (strcmp(u, "em") == 0 || strcmp(u, "rem") == 0 || strcmp(u, "ch") == 0 || strcmp(u, "ex") == 0)
		return x <= em_limit;
	if (strcmp(u, "%") == 0 || strcmp(u, "vw") == 0 || strcmp(u, "vh") == 0)
		return x <= (em_limit < 0 ? -100.0 : 0.0);
	return 0;
}

static int len_zero(const char *v)
{
	double x;
	const char *u;

	if (!css_len(v, &x, &u))
		return 0;
	return x <= 0.0 || ((strcmp(u, "px") == 0 || strcmp(u, "pt") == 0) && x <= 1.0);
}

/* One declaration (lowercased, trimmed) into what it tells about hiding. */
static void css_decl(css_seen *c, const char *prop, const char *val)
{
	uint32_t rgb;
	int r;

	if (strcmp(prop, "display") == 0)
		c->display_none |= strcmp(val, "none") == 0;
	else if (strcmp(prop, "visibility") == 0)
		c->vis_hidden |= strcmp(val, "hidden") == 0 || strcmp(val, "collapse") == 0;
	else if (strcmp(prop, "font-size") == 0)
		c->font0 |= len_le(val, 1.0, 0.1);
	else if (strcmp(prop, "opacity") == 0) {
		double x;
		const char *u;

		if (css_len(val, &x, &u))
			c->opacity0 |= (*u == '%' ? x / 100.0 : x) <= 0.05;
	} else if (strcmp(prop, "position") == 0)
		c->positioned |= strcmp(val, "absolute") == 0 || strcmp(val, "fixed") == 0;
	else if (strcmp(prop, "left") == 0 || strcmp(prop, "top") == 0 || strcmp(prop, "right") == 0 ||
	         strcmp(prop, "bottom") == 0)
		c->offscreen |= len_le(val, -1000.0, -50.0);
	else if (strcmp(prop, "margin-left") == 0 || strcmp(prop, "margin-top") == 0)
		c->margin_off |= len_le(val, -1000.0, -50.0);
	else if (strcmp(prop, "clip") == 0) {
		/* rect(0,0,0,0) and the sr-only rect(1px,1px,1px,1px) */
		if (strncmp(val, "rect(", 5) == 0) {
			const char *p = val + 5;
			int k = 0;
			int small = 1;

			while (*p != '\0' && *p != ')' && k < 4) {
				char *end;
				double x;

				while (*p == ' ' || *p == ',')
					p++;
				x = strtod(p, &end);
				if (end == p)
					break;
				if (x > 1.0)
					small = 0;
				p = end;
				while (*p >= 'a' && *p <= 'z')
					p++;
				k++;
			}
			c->clip |= k == 4 && small;
		}
	} else if (strcmp(prop, "clip-path") == 0) {
		double x;
		const char *u;

		if (strncmp(val, "inset(", 6) == 0 && css_len(val + 6, &x, &u))
			c->clip_path |= (*u == '%' && x >= 50.0);
		else if (strncmp(val, "circle(", 7) == 0 && css_len(val + 7, &x, &u))
			c->clip_path |= x <= 0.0;
	} else if (strcmp(prop, "text-indent") == 0)
		c->indent |= len_le(val, -999.0, -50.0);
	else if (strcmp(prop, "color") == 0) {
		r = css_color(val, &rgb);
		if (r == 2)
			c->transparent = 1;
		else if (r == 1) {
			c->has_color = 1;
			c->color = rgb;
		}
	} else if (strcmp(prop, "background-color") == 0 || strcmp(prop, "background") == 0) {
		/* the shorthand: the first token that is a colour */
		char tok[64];
		const char *p = val;

		while (*p != '\0') {
			size_t k = 0;

			while (*p == ' ')
				p++;
			while (*p != '\0' && *p != ' ' && k + 1 < sizeof(tok)) {
				/* keep rgb(a, b, c) together */
				if (*p == '(') {
					while (*p != '\0' && *p != ')' && k + 2 < sizeof(tok))
						tok[k++] = *p++;
					if (*p == ')')
						tok[k++] = *p++;
					else if (*p != '\0')
						break; /* token full: no progress (fuzz/corpora/html/crash-css-paren-loop) */
					continue;
				}
				tok[k++] = *p++;
			}
			tok[k] = '\0';
			if (k > 0 && css_color(tok, &rgb) == 1) {
				c->has_bg = 1;
				c->bg = rgb;
				break;
			}
			while (*p != '\0' && *p != ' ')
				p++;
		}
	} else if (strcmp(prop, "height") == 0 || strcmp(prop, "max-height") == 0)
		c->zero_h |= len_zero(val);
	else if (strcmp(prop, "width") == 0 || strcmp(prop, "max-width") == 0)
		c->zero_w |= len_zero(val);
	else if (strcmp(prop, "overflow") == 0 || strcmp(prop, "overflow-x") == 0 || strcmp(prop, "overflow-y") == 0)
		c->overflow_hidden |= strcmp(val, "hidden") == 0 || strcmp(val, "clip") == 0;
	else if (strcmp(prop, "transform") == 0)
		c->scale0 |= strcmp(val, "scale(0)") == 0 || strcmp(val, "scale(0,0)") == 0 ||
		             strcmp(val, "scale(0, 0)") == 0;
}

/* Copies [s, e) trimmed and lowercased into dst (truncating). */
static void css_word(char *dst, size_t cap, const char *s, const char *e)
{
	size_t k = 0;

	while (s < e && xb_is_space((unsigned char)*s))
		s++;
	while (e > s && xb_is_space((unsigned char)e[-1]))
		e--;
	while (s < e && k + 1 < cap) {
		char ch = *s++;

		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		dst[k++] = ch;
	}
	dst[k] = '\0';
}

/* Evaluates a declaration block. inh_bg: the background inherited from
 * ancestors (has_inh 0: unknown). Returns the reason it hides, or NULL; the
 * block's own background (if any) comes back in *bg. */
static const char *css_eval(const char *s, size_t n, int has_inh, uint32_t inh_bg, int *has_bg, uint32_t *bg)
{
	css_seen c;
	const char *end = s + n;

	memset(&c, 0, sizeof(c));
	while (s < end) {
		const char *semi = memchr(s, ';', (size_t)(end - s));
		const char *colon;
		char prop[32];
		char val[128];
		char *imp;

		if (semi == NULL)
			semi = end;
		colon = memchr(s, ':', (size_t)(semi - s));
		if (colon != NULL) {
			css_word(prop, sizeof(prop), s, colon);
			css_word(val, sizeof(val), colon + 1, semi);
			imp = strstr(val, "!important");
			if (imp != NULL) {
				*imp = '\0';
				while (imp > val && imp[-1] == ' ')
					*--imp = '\0';
			}
			css_decl(&c, prop, val);
		}
		s = semi + 1;
	}
	if (c.has_bg) {
		*has_bg = 1;
		*bg = c.bg;
	}
	if (c.display_none)
		return "display:none";
	if (c.vis_hidden)
		return "visibility:hidden";
	if (c.font0)
		return "font-size:0";
	if (c.opacity0)
		return "opacity:0";
	if ((c.positioned && c.offscreen) || c.margin_off)
		return "off-screen";
	if (c.clip)
		return "clip";
	if (c.clip_path)
		return "clip-path";
	if (c.indent)
		return "text-indent";
	if (c.transparent)
		return "color:transparent";
	if (c.has_color && (c.has_bg || has_inh) && color_near(c.color, c.has_bg ? c.bg : inh_bg))
		return "color=background";
	if ((c.zero_h || c.zero_w) && c.overflow_hidden)
		return "zero-size";
	if (c.scale0)
		return "transform:scale(0)";
	return NULL;
}

/* ---- SAX state ------------------------------------------------------------------ */

typedef struct {
	unsigned char tag;
	unsigned char skip; /* inside script/style */
	unsigned char pre;
	unsigned char in_row;
	unsigned char has_bg;
	unsigned char list_depth;
	unsigned char kind; /* ward_block_kind of text here */
	unsigned char level;
	uint32_t bg;
} frame;

typedef struct {
	xb b;
	htmlParserCtxtPtr ctxt;
	const char *src;
	size_t n;
	frame st[WARD_MAX_DOM_DEPTH + 1];
	size_t depth;
	size_t last_pos; /* source offset just past the last token handled */

	int in_hidden;
	size_t hid_depth;
	size_t hid_src;
	char hid_why[WHY_MAX];
	ward_buf hid;
	int hid_pending;

	int in_link;
	size_t link_depth;
	size_t link_src;
	char *link_url;
	ward_buf ltext;
	int lpending;

	int in_title;
	ward_buf tbuf;
	int tpending;

	css_rule *rules;
	size_t nrules;
	unsigned long nerrors;
} hx;

static size_t hx_pos(const hx *h)
{
	const xmlParserInput *in = h->ctxt->input;
	size_t p;

	if (in == NULL || in->cur == NULL || in->base == NULL)
		return h->last_pos;
	p = (size_t)in->consumed + (size_t)(in->cur - in->base);
	return p < h->n ? p : h->n;
}

static void hx_fail(hx *h, int code)
{
	xb_fail(&h->b, code);
	xmlStopParser(h->ctxt);
}

/* Where a run of decoded text starts in the source (see the file comment).
 * Returns 1 when the run is a verbatim copy of the source there. */
static int hx_locate(const hx *h, const char *ch, size_t len, size_t p, size_t *start)
{
	static const int deltas[] = {0, 1, 2, 3, 4, -1, -2, -3, -4};
	size_t i;

	for (i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++) {
		size_t end;

		if (deltas[i] < 0 && p < (size_t)-deltas[i])
			continue;
		end = deltas[i] < 0 ? p - (size_t)-deltas[i] : p + (size_t)deltas[i];
		if (end < len || end > h->n)
			continue;
		if (memcmp(h->src + end - len, ch, len) == 0) {
			*start = end - len;
			return 1;
		}
	}
	if (len <= 8)
		for (i = p; i > h->last_pos && p - i < 64; i--)
			if (h->src[i - 1] == '&') {
				*start = i - 1;
				return 0;
			}
	*start = h->last_pos;
	return 0;
}

static void hx_css_rule(hx *h, const char *sel, size_t n, const char *why)
{
	const char *s = sel;
	const char *e = sel + n;
	const char *t0;
	const char *t1;
	const char *name;
	char kind;
	css_rule *r;
	css_rule *grown;

	while (s < e && xb_is_space((unsigned char)*s))
		s++;
	while (e > s && xb_is_space((unsigned char)e[-1]))
		e--;
	t0 = s;
	while (s < e && ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
		s++;
	t1 = s;
	if (s >= e || (*s != '.' && *s != '#'))
		return;
	kind = *s++;
	name = s;
	while (s < e && ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
	                 *s == '-' || *s == '_' || (unsigned char)*s >= 0x80))
		s++;
	if (s != e || s == name)
		return; /* complex selector: ignored (see the file comment) */
	if (h->nrules >= WARD_MAX_CSS_RULES)
		return;
	grown = ward_realloc(h->rules, (h->nrules + 1) * sizeof(css_rule));
	if (grown == NULL) {
		ward_error_set(WARD_ENOMEM, "html: out of memory");
		hx_fail(h, WARD_ENOMEM);
		return;
	}
	h->rules = grown;
	r = &h->rules[h->nrules];
	r->kind = kind;
	r->name = ward_strndup(name, (size_t)(e - name));
	r->tag = t1 > t0 ? ward_strndup(t0, (size_t)(t1 - t0)) : NULL;
	if (r->name == NULL || (t1 > t0 && r->tag == NULL)) {
		ward_free(r->name);
		ward_free(r->tag);
		ward_error_set(WARD_ENOMEM, "html: out of memory");
		hx_fail(h, WARD_ENOMEM);
		return;
	}
	(void)snprintf(r->why, sizeof(r->why), "%s %c%.*s: %s", kind == '.' ? "class" : "id", kind,
	               (int)(e - name > 60 ? 60 : e - name), name, why);
	h->nrules++;
}

static size_t css_skip_comment(const char *s, size_t i, size_t n)
{
	if (i + 1 < n && s[i] == '/' && s[i + 1] == '*') {
		const char *e = extract_memmem(s + i + 2, n - i - 2, "*/", 2);

		return e == NULL ? n : (size_t)(e - s) + 2;
	}
	return i;
}

/* One stylesheet: rules whose declarations hide become css_rules. At-rules
 * that hold rules (@media, @supports, ...) are entered, others skipped. */
static void hx_css_sheet(hx *h, const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && h->b.err == 0) {
		size_t j;
		size_t k;
		const char *why;
		int has_bg = 0;
		uint32_t bg = 0;

		j = css_skip_comment(s, i, n);
		if (j != i || xb_is_space((unsigned char)s[i]) || s[i] == '}' || s[i] == ';') {
			i = j != i ? j : i + 1;
			continue;
		}
		for (j = i; j < n && s[j] != '{' && s[j] != ';'; j++)
			;
		if (j >= n)
			break;
		if (s[i] == '@') {
			int depth = 1;

			if (s[j] == ';') {
				i = j + 1;
				continue;
			}
			if (j - i >= 6 && (strncmp(s + i, "@media", 6) == 0 || strncmp(s + i, "@supports", 9) == 0 ||
			                   strncmp(s + i, "@layer", 6) == 0 || strncmp(s + i, "@container", 10) == 0)) {
				i = j + 1; /* rules inside; the closing brace is skipped above */
				continue;
			}
			for (k = j + 1; k < n && depth > 0; k++)
				depth += s[k] == '{' ? 1 : (s[k] == '}' ? -1 : 0);
			i = k;
			continue;
		}
		if (s[j] == ';') {
			i = j + 1;
			continue;
		}
		for (k = j + 1; k < n && s[k] != '}'; k++)
			;
		why = css_eval(s + j + 1, k - j - 1, 0, 0, &has_bg, &bg);
		if (why != NULL) {
			size_t a = i;
			size_t c;

			for (c = i; c <= j; c++)
				if (c == j || s[c] == ',') {
					hx_css_rule(h, s + a, c - a, why);
					a = c + 1;
				}
		}
		i = k + 1;
	}
}

/* The page's own <style> blocks, found in the raw bytes before parsing so a
 * stylesheet placed after the elements it hides still applies. A "<style"
 * inside a comment or script is taken too: that can only hide more. */
static void hx_css_collect(hx *h)
{
	const char *s = h->src;
	size_t n = h->n;
	size_t i = 0;

	while (i < n && h->b.err == 0) {
		const char *lt = memchr(s + i, '<', n - i);
		size_t a;
		const char *close;

		if (lt == NULL)
			break;
		i = (size_t)(lt - s) + 1;
		if (n - i < 6 || strncasecmp(s + i, "style", 5) != 0 ||
		    !(s[i + 5] == '>' || xb_is_space((unsigned char)s[i + 5])))
			continue;
		lt = memchr(s + i, '>', n - i);
		if (lt == NULL)
			break;
		a = (size_t)(lt - s) + 1;
		for (close = s + a; (close = memchr(close, '<', (size_t)(s + n - close))) != NULL; close++)
			if ((size_t)(s + n - close) >= 7 && strncasecmp(close, "</style", 7) == 0)
				break;
		if (close == NULL)
			close = s + n;
		hx_css_sheet(h, s + a, (size_t)(close - (s + a)));
		i = (size_t)(close - s);
	}
}

/* The first stylesheet rule that hides an element with this class list/id. */
static const char *hx_css_match(const hx *h, const char *tag, const char *cls, const char *id)
{
	size_t r;

	for (r = 0; r < h->nrules; r++) {
		const css_rule *rule = &h->rules[r];

		if (rule->tag != NULL && strcasecmp(rule->tag, tag) != 0)
			continue;
		if (rule->kind == '#') {
			if (id != NULL && strcmp(id, rule->name) == 0)
				return rule->why;
			continue;
		}
		if (cls != NULL) {
			const char *p = cls;
			size_t nl = strlen(rule->name);

			while (*p != '\0') {
				const char *q;

				while (xb_is_space((unsigned char)*p))
					p++;
				for (q = p; *q != '\0' && !xb_is_space((unsigned char)*q); q++)
					;
				if ((size_t)(q - p) == nl && memcmp(p, rule->name, nl) == 0)
					return rule->why;
				p = q;
			}
		}
	}
	return NULL;
}

/* Source offset of an attribute value inside its start tag, for segments;
 * the tag start when it is not there verbatim (entities). */
static size_t hx_attr_pos(const hx *h, size_t tag_start, size_t tag_end, const char *val)
{
	size_t vl = strlen(val);
	const char *p;

	if (tag_end > h->n)
		tag_end = h->n;
	if (vl == 0 || tag_end <= tag_start)
		return tag_start;
	p = extract_memmem(h->src + tag_start, tag_end - tag_start, val, vl);
	return p != NULL ? (size_t)(p - h->src) : tag_start;
}

static void hx_attr_segment(hx *h, ward_channel ch, const char *val, size_t tag_start, size_t tag_end, const char *why)
{
	size_t at = hx_attr_pos(h, tag_start, tag_end, val);

	xb_segment(&h->b, ch, val, strlen(val), at, at + strlen(val), why);
}

/* Any other attribute whose value reads like a sentence is scanned too:
 * `data-*`, custom and framework attributes are where instructions hide from
 * a reader ("data-ai-instructions=..."). Event handlers hold script, not
 * prose; tokens, ids and URLs have too few words to qualify. */
static int attr_carries_prose(const char *name, const char *val)
{
	size_t words = 0, letters = 0;
	int in_token = 0, token_has_letter = 0;

	if ((name[0] == 'o' || name[0] == 'O') && (name[1] == 'n' || name[1] == 'N'))
		return 0;
	/* words: space-separated tokens with a letter in them */
	for (const unsigned char *p = (const unsigned char *)val;; p++) {
		int space = *p == '\0' || *p == ' ' || (*p >= '\t' && *p <= '\r');

		if (space) {
			words += in_token && token_has_letter;
			in_token = token_has_letter = 0;
			if (*p == '\0')
				break;
			continue;
		}
		in_token = 1;
		if (((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z') || *p >= 0x80) {
			token_has_letter = 1;
			letters++;
		}
	}
	return words >= ATTR_PROSE_MIN_WORDS && letters >= ATTR_PROSE_MIN_LETTERS;
}

static int is_block_tag(unsigned char t)
{
	switch (t) {
	case TAG_BLOCK:
	case TAG_P:
	case TAG_TITLE:
	case TAG_H:
	case TAG_UL:
	case TAG_LI:
	case TAG_TR:
	case TAG_PRE:
	case TAG_BLOCKQUOTE:
		return 1;
	default:
		return 0;
	}
}

static void hx_start(void *ud, const xmlChar *xname, const xmlChar **atts)
{
	hx *h = ud;
	const char *name = (const char *)xname;
	const tagdef *td = tag_lookup(name);
	unsigned char tag = td != NULL ? td->id : TAG_OTHER;
	size_t tag_end = hx_pos(h);
	size_t tag_start = tag_end;
	const char *lt;
	frame *parent;
	frame *f;
	const char *style = NULL, *cls = NULL, *id = NULL, *href = NULL, *src = NULL, *alt = NULL;
	const char *mname = NULL, *mprop = NULL, *mcontent = NULL, *type = NULL, *value = NULL;
	const char *why = NULL;
	int hidden_attr = 0, aria_hidden = 0;
	size_t i;

	if (h->b.err != 0)
		return;
	if (h->last_pos < tag_end) {
		lt = memchr(h->src + h->last_pos, '<', tag_end - h->last_pos);
		if (lt != NULL)
			tag_start = (size_t)(lt - h->src);
	}
	if (tag_end < h->n)
		tag_end++; /* the cursor sits on '>' (or "/>") */
	if (h->depth >= WARD_MAX_DOM_DEPTH) {
		ward_error_set(WARD_ETOOBIG, "html: elements nested deeper than %d", WARD_MAX_DOM_DEPTH);
		hx_fail(h, WARD_ETOOBIG);
		return;
	}
	parent = &h->st[h->depth];
	f = &h->st[++h->depth];
	*f = *parent;
	f->tag = tag;

	for (i = 0; atts != NULL && atts[i] != NULL; i += 2) {
		const char *an = (const char *)atts[i];
		const char *av = atts[i + 1] != NULL ? (const char *)atts[i + 1] : "";

		if (strcasecmp(an, "style") == 0)
			style = av;
		else if (strcasecmp(an, "class") == 0)
			cls = av;
		else if (strcasecmp(an, "id") == 0)
			id = av;
		else if (strcasecmp(an, "hidden") == 0)
			hidden_attr = 1;
		else if (strcasecmp(an, "aria-hidden") == 0)
			aria_hidden = strcasecmp(av, "true") == 0;
		else if (strcasecmp(an, "href") == 0)
			href = av;
		else if (strcasecmp(an, "src") == 0)
			src = av;
		else if (strcasecmp(an, "name") == 0)
			mname = av;
		else if (strcasecmp(an, "property") == 0)
			mprop = av;
		else if (strcasecmp(an, "content") == 0)
			mcontent = av;
		else if (strcasecmp(an, "type") == 0)
			type = av;
		else if (strcasecmp(an, "value") == 0)
			value = av;
		else if (strcasecmp(an, "alt") == 0) {
			alt = av;
			hx_attr_segment(h, WARD_CH_ATTRIBUTE, av, tag_start, tag_end, "alt");
		} else if (strcasecmp(an, "title") == 0 || strcasecmp(an, "aria-label") == 0 ||
		           strcasecmp(an, "placeholder") == 0 || strcasecmp(an, "aria-description") == 0)
			hx_attr_segment(h, WARD_CH_ATTRIBUTE, av, tag_start, tag_end, an);
		else if (attr_carries_prose(an, av))
			hx_attr_segment(h, WARD_CH_ATTRIBUTE, av, tag_start, tag_end, an);
	}

	if (tag == TAG_SCRIPT || tag == TAG_STYLE)
		f->skip = 1;
	if (tag == TAG_META && mcontent != NULL) {
		const char *key = mprop != NULL ? mprop : mname;

		if (key != NULL && (strcasecmp(key, "description") == 0 || strcasecmp(key, "keywords") == 0 ||
		                    strncasecmp(key, "og:", 3) == 0 || strncasecmp(key, "twitter:", 8) == 0)) {
			char w[WHY_MAX];

			(void)snprintf(w, sizeof(w), "meta %s", key);
			hx_attr_segment(h, WARD_CH_ATTRIBUTE, mcontent, tag_start, tag_end, w);
		}
	}
	if (tag == TAG_INPUT && type != NULL && value != NULL && strcasecmp(type, "hidden") == 0)
		hx_attr_segment(h, WARD_CH_HIDDEN, value, tag_start, tag_end, "input type=hidden");
	if (tag == TAG_IMG && src != NULL)
		xb_link(&h->b, src, strlen(src), alt, alt != NULL ? strlen(alt) : 0, 1, tag_start);
	if (tag == TAG_A && href != NULL && !h->in_link) {
		h->link_url = ward_strdup(href);
		if (h->link_url == NULL) {
			ward_error_set(WARD_ENOMEM, "html: out of memory");
			hx_fail(h, WARD_ENOMEM);
			return;
		}
		h->in_link = 1;
		h->link_depth = h->depth;
		h->link_src = tag_start;
		ward_buf_reset(&h->ltext);
		h->lpending = 0;
	}

	/* Hiding: decided once, at the outermost hidden element. */
	if (!h->in_hidden && !f->skip) {
		int has_bg = 0;
		uint32_t bg = 0;

		if (tag == TAG_NOSCRIPT)
			why = "noscript";
		else if (tag == TAG_TEMPLATE)
			why = "template";
		else if (hidden_attr)
			why = "hidden";
		else if (aria_hidden)
			why = "aria-hidden";
		if (why == NULL && style != NULL) {
			why = css_eval(style, strlen(style), f->has_bg, f->bg, &has_bg, &bg);
			if (has_bg) {
				f->has_bg = 1;
				f->bg = bg;
			}
		}
		if (why == NULL && h->nrules > 0 && (cls != NULL || id != NULL))
			why = hx_css_match(h, name, cls, id);
		if (why != NULL) {
			h->in_hidden = 1;
			h->hid_depth = h->depth;
			h->hid_src = tag_start;
			(void)snprintf(h->hid_why, sizeof(h->hid_why), "%s", why);
			ward_buf_reset(&h->hid);
			h->hid_pending = 0;
		}
	}

	if (h->in_hidden) {
		if (is_block_tag(tag) || tag == TAG_BR || tag == TAG_CELL)
			h->hid_pending = h->hid.len > 0;
	} else if (!f->skip) {
		switch (tag) {
		case TAG_TITLE:
			if (!parent->pre && !parent->in_row) {
				h->in_title = 1;
				ward_buf_reset(&h->tbuf);
				h->tpending = 0;
				f->kind = WARD_BLOCK_TITLE;
				f->level = 0;
				xb_block(&h->b, WARD_BLOCK_TITLE, 0);
			}
			break;
		case TAG_BR:
			xb_text(&h->b, f->pre ? "\n" : " ", 1, tag_start, 0, f->pre);
			break;
		case TAG_CELL:
			if (f->in_row)
				xb_sep(&h->b, " | ");
			break;
		default:
			if (!is_block_tag(tag) || parent->pre)
				break;
			if (parent->in_row && tag != TAG_TR)
				break;
			if (tag == TAG_H) {
				f->kind = WARD_BLOCK_HEADING;
				f->level = td->level;
			} else if (tag == TAG_UL) {
				if (f->list_depth < 255)
					f->list_depth++;
			} else if (tag == TAG_LI) {
				f->kind = WARD_BLOCK_LIST_ITEM;
				f->level = f->list_depth > 0 ? f->list_depth : 1;
			} else if (tag == TAG_TR) {
				f->kind = WARD_BLOCK_TABLE_ROW;
				f->level = 0;
				f->in_row = 1;
			} else if (tag == TAG_PRE) {
				f->kind = WARD_BLOCK_CODE;
				f->level = 0;
				f->pre = 1;
			} else if (tag == TAG_BLOCKQUOTE) {
				f->kind = WARD_BLOCK_QUOTE;
				f->level = 0;
			} else if (f->kind != WARD_BLOCK_QUOTE && f->kind != WARD_BLOCK_LIST_ITEM) {
				f->kind = WARD_BLOCK_PARAGRAPH;
				f->level = 0;
			}
			xb_block(&h->b, (ward_block_kind)f->kind, f->level);
			break;
		}
	}
	h->last_pos = tag_end > h->last_pos ? tag_end : h->last_pos;
}

static void hx_end(void *ud, const xmlChar *xname)
{
	hx *h = ud;
	frame *f;
	frame *parent;
	size_t end = hx_pos(h);

	(void)xname;
	if (h->b.err != 0 || h->depth == 0)
		return;
	f = &h->st[h->depth];
	parent = &h->st[h->depth - 1];
	if (h->in_link && h->depth == h->link_depth) {
		xb_link(&h->b, h->link_url, strlen(h->link_url), h->ltext.ptr != NULL ? h->ltext.ptr : "", h->ltext.len,
		        0, h->link_src);
		ward_free(h->link_url);
		h->link_url = NULL;
		h->in_link = 0;
	}
	if (f->tag == TAG_TITLE && h->in_title) {
		xb_title(&h->b, h->tbuf.ptr != NULL ? h->tbuf.ptr : "", h->tbuf.len);
		h->in_title = 0;
	}
	if (h->in_hidden && h->depth == h->hid_depth) {
		if (h->hid.err != 0) {
			ward_error_set(h->hid.err, "html: hidden text exceeds its limit");
			hx_fail(h, h->hid.err);
			return;
		}
		xb_segment(&h->b, WARD_CH_HIDDEN, h->hid.ptr != NULL ? h->hid.ptr : "", h->hid.len, h->hid_src, end,
		           h->hid_why);
		h->in_hidden = 0;
	} else if (h->in_hidden) {
		if (is_block_tag(f->tag) || f->tag == TAG_CELL)
			h->hid_pending = h->hid.len > 0;
	} else if (!f->skip && is_block_tag(f->tag) && !parent->pre && (!parent->in_row || f->tag == TAG_TR)) {
		xb_block(&h->b, (ward_block_kind)parent->kind, parent->level);
	}
	h->depth--;
	if (end > h->last_pos)
		h->last_pos = end;
}

static void hx_chars(void *ud, const xmlChar *xch, int ilen)
{
	hx *h = ud;
	const char *ch = (const char *)xch;
	size_t len = ilen > 0 ? (size_t)ilen : 0;
	const frame *f = &h->st[h->depth];
	size_t p;
	size_t start;
	int exact;

	if (h->b.err != 0 || len == 0)
		return;
	p = hx_pos(h);
	if (f->skip) {
		h->last_pos = p > h->last_pos ? p : h->last_pos;
		return;
	}
	exact = hx_locate(h, ch, len, p, &start);
	if (h->in_title)
		if (h->tbuf.len < LINK_TEXT_MAX)
			ws_append(&h->tbuf, ch, len, &h->tpending);
	if (h->in_link && h->ltext.len < LINK_TEXT_MAX)
		ws_append(&h->ltext, ch, len, &h->lpending);
	if (h->in_hidden) {
		ws_append(&h->hid, ch, len, &h->hid_pending);
	} else {
		xb_text(&h->b, ch, len, start, exact, f->pre);
	}
	if (exact && start + len > h->last_pos)
		h->last_pos = start + len;
	else if (!exact && p > h->last_pos)
		h->last_pos = p;
}

static void hx_comment(void *ud, const xmlChar *value)
{
	hx *h = ud;
	size_t p = hx_pos(h);
	size_t start = h->last_pos;
	const char *c;

	if (h->b.err != 0)
		return;
	if (p > h->last_pos) {
		c = extract_memmem(h->src + h->last_pos, p - h->last_pos, "<!--", 4);
		if (c != NULL)
			start = (size_t)(c - h->src);
	}
	xb_segment_raw(&h->b, WARD_CH_COMMENT, (const char *)value, strlen((const char *)value), start, p, "comment");
	if (p > h->last_pos)
		h->last_pos = p;
}

/* Parser errors are expected on real pages; they are counted, never printed. */
static void hx_error(void *ud, xmlErrorPtr err)
{
	hx *h = ud;

	if (h == NULL)
		return;
	h->nerrors++;
	/* libxml2 stops on allocation failure and returns what it has: that
	 * partial text must not pass for the document. */
	if (err != NULL && err->code == XML_ERR_NO_MEMORY && h->b.err == 0) {
		ward_error_set(WARD_ENOMEM, "html: out of memory in the parser");
		xb_fail(&h->b, WARD_ENOMEM);
	}
}

static void silent_generic(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

int extract_html(ward_extracted **out, const char *bytes, size_t len, ward_doctype type)
{
	hx *h = NULL;
	htmlParserCtxtPtr ctxt = NULL;
	htmlSAXHandler sax;
	htmlDocPtr doc = NULL;
	xmlGenericErrorFunc prev_generic;
	void *prev_generic_ctx;
	xmlStructuredErrorFunc prev_structured;
	void *prev_structured_ctx;
	int rc = 0;
	size_t i;

	extract_libxml_init();
	/* Per-thread in libxml2: anything not tied to our context is
	 * swallowed too, so the library never prints. */
	prev_generic = xmlGenericError;
	prev_generic_ctx = xmlGenericErrorContext;
	prev_structured = xmlStructuredError;
	prev_structured_ctx = xmlStructuredErrorContext;

	h = ward_calloc(1, sizeof(*h));
	if (h == NULL) {
		rc = ward_error_set(WARD_ENOMEM, "html: out of memory");
		goto done;
	}
	xb_init(&h->b, len);
	ward_buf_init(&h->hid, 2 * (size_t)WARD_MAX_DOC_BYTES);
	ward_buf_init(&h->ltext, LINK_TEXT_MAX * 2);
	ward_buf_init(&h->tbuf, LINK_TEXT_MAX * 2);
	h->src = bytes;
	h->n = len;
	h->st[0].kind = WARD_BLOCK_PARAGRAPH;

	xmlSetGenericErrorFunc(NULL, silent_generic);
	xmlSetStructuredErrorFunc(h, hx_error);

	ctxt = htmlNewParserCtxt();
	if (ctxt == NULL) {
		rc = ward_error_set(WARD_ENOMEM, "html: cannot create a parser");
		goto done;
	}
	h->ctxt = ctxt;
	hx_css_collect(h);
	if (h->b.err != 0) {
		rc = h->b.err;
		goto done;
	}
	memset(&sax, 0, sizeof(sax));
	sax.startElement = hx_start;
	sax.endElement = hx_end;
	sax.characters = hx_chars;
	sax.ignorableWhitespace = hx_chars;
	sax.comment = hx_comment;
	sax.serror = hx_error;
	sax.initialized = XML_SAX2_MAGIC;
	memcpy(ctxt->sax, &sax, sizeof(sax));
	ctxt->userData = h;
	if (len > (size_t)0x7fffffff) {
		rc = ward_error_set(WARD_ETOOBIG, "html: document too large");
		goto done;
	}
	/* The explicit "UTF-8": without it 2.9.14 obeys a <meta charset> (even
	 * with IGNORE_ENC) and transcodes what the type gate already decided;
	 * with an encoder installed, the meta is ignored. */
	doc = htmlCtxtReadMemory(ctxt, len > 0 ? bytes : " ", len > 0 ? (int)len : 1, NULL, "UTF-8", HTML_OPTIONS);
	if (h->b.err == 0 && ctxt->errNo == XML_ERR_NO_MEMORY) {
		ward_error_set(WARD_ENOMEM, "html: out of memory in the parser");
		xb_fail(&h->b, WARD_ENOMEM);
	}
	if (h->b.err != 0) {
		rc = h->b.err;
		goto done;
	}
	if (h->hid.err != 0) {
		rc = ward_error_set(h->hid.err, "html: hidden text exceeds its limit");
		goto done;
	}
	/* An element still open at the end (no end tag, parser stopped). */
	if (h->in_hidden)
		xb_segment(&h->b, WARD_CH_HIDDEN, h->hid.ptr != NULL ? h->hid.ptr : "", h->hid.len, h->hid_src, len,
		           h->hid_why);
	if (h->in_link)
		xb_link(&h->b, h->link_url, strlen(h->link_url), h->ltext.ptr != NULL ? h->ltext.ptr : "", h->ltext.len,
		        0, h->link_src);
	rc = xb_finish(&h->b, out, type);
done:
	xmlSetGenericErrorFunc(prev_generic_ctx, prev_generic);
	xmlSetStructuredErrorFunc(prev_structured_ctx, prev_structured);
	if (doc != NULL)
		xmlFreeDoc(doc);
	if (ctxt != NULL)
		htmlFreeParserCtxt(ctxt);
	if (h != NULL) {
		xb_dispose(&h->b); /* no-op after xb_finish */
		ward_buf_dispose(&h->hid);
		ward_buf_dispose(&h->ltext);
		ward_buf_dispose(&h->tbuf);
		ward_free(h->link_url);
		for (i = 0; i < h->nrules; i++) {
			ward_free(h->rules[i].name);
			ward_free(h->rules[i].tag);
		}
		ward_free(h->rules);
		ward_free(h);
	}
	return rc;
}
