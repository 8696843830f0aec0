/*
 * Rule packs: the YAML files of rules/injection → validated rules with PCRE2 (JIT)
 * patterns. Loading is the admission gate of security-controls.md §3: strict
 * keys, dangerous constructs refused, compiled size capped, examples run, and
 * every pattern pumped with adversarial input under the match limits. The last
 * two are recorded per rule set in the cache (see "the validated-set record").
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <unicode/uchar.h>
#include <unicode/uversion.h>

#include "ragward/alloc.h"
#include "ragward/buf.h"
#include "ragward/crypto.h"
#include "core/limits.h"
#include "core/yaml.h"
#include "sanitize/scan_internal.h"
#include "core/banned.h"

/* The categories a rule may declare; extend here (and in rules/README.md). */
static const char *const categories[] = {
        "instruction-override",  "role-token",   "persona-switch",  "prompt-exfiltration",
        "markdown-exfiltration", "tool-forgery", "encoded-payload", "invisible-smuggling",
        "hidden-placement",      "multilingual",
};

static const char *const severities[] = {"low", "medium", "high", "critical"};
static const char *const actions[] = {"flag", "strip", "quarantine", "reject"};

const char *ward_action_hint_name(ward_action_hint a)
{
	return (unsigned)a < 4 ? actions[a] : "?";
}

const char *ward_ruleset_default_dir(void)
{
	const char *env = getenv("RAGWARD_RULES");
	struct stat sb;

	if (env && *env)
		return env;
	if (stat("/usr/share/ragward/rules/injection", &sb) == 0 && S_ISDIR(sb.st_mode))
		return "/usr/share/ragward/rules/injection";
	return "./rules/injection";
}

static int lookup(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], s))
			return (int)i;
	return -1;
}

/* Ids and pack names: lowercase ASCII, digits, '.', '-', '_'. The "scan."
 * prefix is the engine's own (scan.incomplete, scan.too-many-findings). */
static int id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > WARD_MAX_RULE_ID_LEN || !strncmp(s, "scan.", 5))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

static void rule_dispose(ward_rule *r)
{
	ward_free(r->file);
	ward_free(r->id);
	ward_free(r->title);
	ward_free(r->category);
	for (size_t i = 0; i < r->nmatch; i++)
		ward_free(r->match[i].text);
	for (size_t i = 0; i < r->nno_match; i++)
		ward_free(r->no_match[i].text);
	ward_free(r->match);
	ward_free(r->no_match);
}

void ward_ruleset_free(ward_ruleset *rs)
{
	if (!rs)
		return;
	ward_hsdb_free_all(rs);
	for (size_t i = 0; i < rs->nrules; i++)
		rule_dispose(&rs->rules[i]);
	for (size_t i = 0; i < rs->npats; i++) {
		ward_free(rs->pats[i].src);
		pcre2_code_free(rs->pats[i].code);
	}
	ward_free(rs->rules);
	ward_free(rs->pats);
	ward_free(rs);
}

const char *ward_ruleset_sha256(const ward_ruleset *rs)
{
	return rs->sha256;
}

size_t ward_ruleset_count(const ward_ruleset *rs)
{
	return rs->nrules;
}

int ward_ruleset_has_prefilter(const ward_ruleset *rs)
{
	return rs->prefilter;
}

void ward_ruleset_stats_get(const ward_ruleset *rs, ward_ruleset_stats *out)
{
	*out = rs->stats;
}

/* --- one rule */

typedef struct {
	const char *file; /* for messages */
	const char *id;   /* may be NULL before the id is known */
	size_t idx;
} where;

#define RFAIL(w, code, ...) rule_fail(w, code, __VA_ARGS__)
static int rule_fail(const where *w, int code, const char *fmt, ...) WARD_PRINTF(3, 4);
static int rule_fail(const where *w, int code, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (w->id)
		return ward_error_set(code, "'%s' rule '%s': %s", w->file, w->id, msg);
	return ward_error_set(code, "'%s' rules[%zu]: %s", w->file, w->idx, msg);
}

/* Parses a list of names into a bit mask through `parse`. */
static int parse_set(const where *w, json_t *arr, const char *key, unsigned *out, int is_view)
{
	size_t i;
	json_t *v;

	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return RFAIL(w, WARD_EINVAL, "'%s' must be a non-empty list", key);
	*out = 0;
	json_array_foreach(arr, i, v)
	{
		int rc;
		unsigned bit;
		if (!json_is_string(v))
			return RFAIL(w, WARD_EINVAL, "'%s' must list names", key);
		/* The bit only after a successful parse: the kind is unset on
		 * failure (fuzz/corpora/rules/crash-unknown-view-shift). */
		if (is_view) {
			ward_view_kind k = WARD_VIEW_RAW;
			rc = ward_view_parse(&k, json_string_value(v));
			bit = rc < 0 ? 0 : 1u << (unsigned)k;
		} else {
			ward_channel c = WARD_CH_VISIBLE;
			rc = ward_channel_parse(&c, json_string_value(v));
			bit = rc < 0 ? 0 : 1u << (unsigned)c;
		}
		if (rc < 0)
			return RFAIL(w, WARD_EINVAL, "unknown %s '%s'", is_view ? "view" : "channel",
			             json_string_value(v));
		*out |= bit;
	}
	return 0;
}

static int parse_examples(const where *w, json_t *arr, const char *key, ward_example **out, size_t *n)
{
	size_t i;
	json_t *v;

	if (!json_is_array(arr))
		return RFAIL(w, WARD_EINVAL, "'examples.%s' must be a list of strings", key);
	if (json_array_size(arr) > WARD_MAX_EXAMPLES_PER_RULE)
		return RFAIL(w, WARD_ETOOBIG, "more than %d '%s' examples", WARD_MAX_EXAMPLES_PER_RULE, key);
	*out = ward_calloc(json_array_size(arr) + 1, sizeof(**out));
	if (!*out)
		return ward_error_set(WARD_ENOMEM, "out of memory");
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v))
			return RFAIL(w, WARD_EINVAL, "'examples.%s' must be a list of strings", key);
		if (json_string_length(v) > WARD_MAX_EXAMPLE_LEN)
			return RFAIL(w, WARD_ETOOBIG, "an example is longer than %d bytes", WARD_MAX_EXAMPLE_LEN);
		(*out)[i].text = ward_strndup(json_string_value(v), json_string_length(v));
		if (!(*out)[i].text)
			return ward_error_set(WARD_ENOMEM, "out of memory");
		(*out)[i].len = json_string_length(v);
		(*n)++;
	}
	return 0;
}

static int enumerate_callout(pcre2_callout_enumerate_block *b, void *data)
{
	(void)b;
	(*(int *)data)++;
	return 0;
}

/* Compiles one pattern under the admission rules; appends it to rs->pats. */
static int compile_pattern(ward_ruleset *rs, const where *w, size_t rule_idx, const char *src, size_t len, int caseless,
                           size_t pat_no)
{
	uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_NEVER_BACKSLASH_C | (caseless ? PCRE2_CASELESS : 0);
	pcre2_compile_context *cctx = NULL;
	pcre2_code *code = NULL;
	PCRE2_SIZE erroff = 0;
	ward_pattern *p;
	size_t size = 0;
	int err = 0, ncallouts = 0, rc = 0;

	if (len == 0)
		return RFAIL(w, WARD_EINVAL, "pattern %zu is empty", pat_no);
	if (len > WARD_MAX_PATTERN_LEN)
		return RFAIL(w, WARD_ETOOBIG, "pattern %zu is longer than %d bytes", pat_no, WARD_MAX_PATTERN_LEN);
	if (memchr(src, '\0', len))
		return RFAIL(w, WARD_EINVAL, "pattern %zu contains a NUL byte", pat_no);
	/* Leading verbs change how the pattern is compiled or matched:
	 * (*UTF), (*UCP), (*LIMIT_MATCH=), (*NO_JIT), (*CR)... The set decides. */
	if (len >= 2 && src[0] == '(' && src[1] == '*')
		return RFAIL(w, WARD_EPOLICY, "pattern %zu starts with a '(*' verb (option settings are refused)",
		             pat_no);
	if (!(cctx = pcre2_compile_context_create(NULL)))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	pcre2_set_max_pattern_length(cctx, WARD_MAX_PATTERN_LEN);
	pcre2_set_parens_nest_limit(cctx, WARD_MAX_PATTERN_NEST);
	code = pcre2_compile((PCRE2_SPTR)src, len, options, &err, &erroff, cctx);
	if (!code) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(err, msg, sizeof(msg));
		rc = RFAIL(w, WARD_EINVAL, "pattern %zu does not compile at offset %zu: %s", pat_no, (size_t)erroff,
		           (const char *)msg);
		goto done;
	}
	if (pcre2_callout_enumerate(code, enumerate_callout, &ncallouts) != 0 || ncallouts > 0) {
		rc = RFAIL(w, WARD_EPOLICY, "pattern %zu contains a callout", pat_no);
		goto done;
	}
	if (pcre2_pattern_info(code, PCRE2_INFO_SIZE, &size) != 0 || size > WARD_MAX_PATTERN_COMPILED) {
		rc = RFAIL(w, WARD_ETOOBIG, "pattern %zu compiles to %zu bytes (limit %d)", pat_no, size,
		           WARD_MAX_PATTERN_COMPILED);
		goto done;
	}
	p = &rs->pats[rs->npats];
	memset(p, 0, sizeof(*p));
	p->src = ward_strndup(src, len);
	if (!p->src) {
		rc = ward_error_set(WARD_ENOMEM, "out of memory");
		goto done;
	}
	p->len = len;
	p->rule = rule_idx;
	p->options = options;
	/* No JIT support on this platform is not an error: the interpreter
	 * gives the same answers under the same limits, only slower. */
	p->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
	p->code = code;
	code = NULL;
	rs->npats++;
done:
	pcre2_code_free(code);
	pcre2_compile_context_free(cctx);
	return rc;
}

static int parse_rule(ward_ruleset *rs, const char *file, size_t idx, json_t *obj)
{
	const char *key, *id = NULL, *title = NULL, *category = NULL, *severity = NULL, *action = NULL;
	json_t *v, *channels = NULL, *views = NULL, *patterns = NULL, *context = NULL, *examples = NULL;
	where w = {file, NULL, idx};
	ward_rule *r = &rs->rules[rs->nrules];
	int caseless = 1, rc, sev, act;
	size_t i;

	if (!json_is_object(obj))
		return RFAIL(&w, WARD_EINVAL, "expected a mapping");
	if ((v = json_object_get(obj, "id")) && json_is_string(v))
		w.id = id = json_string_value(v);
	json_object_foreach(obj, key, v)
	{
		if (!strcmp(key, "id") && json_is_string(v))
			;
		else if (!strcmp(key, "title") && json_is_string(v))
			title = json_string_value(v);
		else if (!strcmp(key, "category") && json_is_string(v))
			category = json_string_value(v);
		else if (!strcmp(key, "severity") && json_is_string(v))
			severity = json_string_value(v);
		else if (!strcmp(key, "action") && json_is_string(v))
			action = json_string_value(v);
		else if (!strcmp(key, "channels"))
			channels = v;
		else if (!strcmp(key, "views"))
			views = v;
		else if (!strcmp(key, "caseless") && json_is_boolean(v))
			caseless = json_is_true(v);
		else if (!strcmp(key, "patterns"))
			patterns = v;
		else if (!strcmp(key, "context"))
			context = v;
		else if (!strcmp(key, "examples") && json_is_object(v))
			examples = v;
		else if ((!strcmp(key, "description") && json_is_string(v)) ||
		         (!strcmp(key, "references") && json_is_array(v)))
			; /* documentation only */
		else
			return RFAIL(&w, WARD_EINVAL, "unknown key '%s' or wrong type", key);
	}
	if (!id)
		return RFAIL(&w, WARD_EINVAL, "'id' is required");
	if (!id_ok(id))
		return RFAIL(&w, WARD_EINVAL,
		             "bad id (lowercase letters, digits, '.', '-', '_'; at most %d; not 'scan.')",
		             WARD_MAX_RULE_ID_LEN);
	for (i = 0; i < rs->nrules; i++)
		if (!strcmp(rs->rules[i].id, id))
			return RFAIL(&w, WARD_EEXISTS, "duplicate rule id (first in '%s')", rs->rules[i].file);
	if (!title || !*title || strlen(title) > WARD_MAX_RULE_TITLE_LEN)
		return RFAIL(&w, WARD_EINVAL, "'title' is required (at most %d bytes)", WARD_MAX_RULE_TITLE_LEN);
	if (!category || lookup(categories, sizeof(categories) / sizeof(categories[0]), category) < 0)
		return RFAIL(&w, WARD_EINVAL, "'category' is missing or unknown ('%s')", category ? category : "");
	if (!severity || (sev = lookup(severities, 4, severity)) < 0)
		return RFAIL(&w, WARD_EINVAL, "'severity' must be low, medium, high or critical");
	act = WARD_ACTION_FLAG;
	if (action && (act = lookup(actions, 4, action)) < 0)
		return RFAIL(&w, WARD_EINVAL, "'action' must be flag, strip, quarantine or reject");
	if (!json_is_array(patterns) || json_array_size(patterns) == 0)
		return RFAIL(&w, WARD_EINVAL, "'patterns' must be a non-empty list of strings");
	if (json_array_size(patterns) > WARD_MAX_PATTERNS_PER_RULE)
		return RFAIL(&w, WARD_ETOOBIG, "more than %d patterns", WARD_MAX_PATTERNS_PER_RULE);

	memset(r, 0, sizeof(*r));
	rs->nrules++; /* from here on the rule is disposed with the set */
	if (!(r->file = ward_strdup(file)) || !(r->id = ward_strdup(id)) || !(r->title = ward_strdup(title)) ||
	    !(r->category = ward_strdup(category)))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	r->severity = sev + 1;
	r->action = (ward_action_hint)act;
	r->caseless = caseless;
	r->channels = (1u << WARD_CH_COUNT) - 1;
	r->views = 1u << WARD_VIEW_FOLDED;
	if (channels && (rc = parse_set(&w, channels, "channels", &r->channels, 0)) < 0)
		return rc;
	if (views && (rc = parse_set(&w, views, "views", &r->views, 1)) < 0)
		return rc;
	if (context) {
		if (!json_is_array(context))
			return RFAIL(&w, WARD_EINVAL, "'context' must be a list");
		json_array_foreach(context, i, v)
		{
			if (json_is_string(v) && !strcmp(json_string_value(v), "not_in_code"))
				r->context |= WARD_CTX_NOT_IN_CODE;
			else
				return RFAIL(&w, WARD_EINVAL, "unknown context modifier (known: not_in_code)");
		}
	}
	if (examples) {
		json_object_foreach(examples, key, v)
		{
			if (!strcmp(key, "match"))
				rc = parse_examples(&w, v, "match", &r->match, &r->nmatch);
			else if (!strcmp(key, "no_match"))
				rc = parse_examples(&w, v, "no_match", &r->no_match, &r->nno_match);
			else
				rc = RFAIL(&w, WARD_EINVAL, "unknown key 'examples.%s'", key);
			if (rc < 0)
				return rc;
		}
	}
	/* The pumped-input check starts from a real match, and a rule nobody
	 * showed matching something is a rule nobody tested. */
	if (r->nmatch == 0)
		return RFAIL(&w, WARD_EINVAL, "'examples.match' must list at least one example");
	r->first_pat = rs->npats;
	json_array_foreach(patterns, i, v)
	{
		if (!json_is_string(v))
			return RFAIL(&w, WARD_EINVAL, "'patterns' must be a list of strings");
		if ((rc = compile_pattern(rs, &w, rs->nrules - 1, json_string_value(v), json_string_length(v), caseless,
		                          i)) < 0)
			return rc;
		r->npats++;
	}
	return 0;
}

/* --- admission checks */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* A pattern that matches the empty string matches every text. */
static int check_not_empty(const ward_ruleset *rs, const ward_pattern *p, const where *w, size_t pat_no)
{
	size_t s = 0, e = 0;
	int prc;
	int m = ward_scan_match1(p, rs->no_jit, "", 0, 0, &s, &e, &prc);

	if (m < 0)
		return m;
	if (m == 1 && s == e)
		return RFAIL(w, WARD_EINVAL, "pattern %zu matches the empty string", pat_no);
	return 0;
}

/* Runs one pumped subject: `unit` repeated up to `size` bytes, then "\x01"
 * and every character of the pattern (`tail`): PCRE2 skips a subject that
 * lacks a required character ("y" of `(x+x+)+y`), so the tail makes it try. */
static int pump_one(const ward_ruleset *rs, const ward_pattern *p, ward_buf *b, const char *unit, size_t ulen,
                    size_t size, const char *tail, const where *w, size_t pat_no)
{
	size_t s = 0, e = 0;
	double t0, dt;
	int m, prc = 0;

	ward_buf_reset(b);
	if (ward_buf_append(b, unit, ulen) < 0)
		return ward_error_set(b->err, "out of memory");
	while (b->len * 2 <= size) { /* doubling: 64 KiB in a few copies */
		/* from a copy: b->ptr moves when the buffer grows */
		char *copy = ward_malloc(b->len);
		int arc;
		if (!copy)
			return ward_error_set(WARD_ENOMEM, "out of memory");
		memcpy(copy, b->ptr, b->len);
		arc = ward_buf_append(b, copy, b->len);
		ward_free(copy);
		if (arc < 0)
			return ward_error_set(b->err, "out of memory");
	}
	while (b->len + ulen <= size)
		if (ward_buf_append(b, unit, ulen) < 0)
			return ward_error_set(b->err, "out of memory");
	if (ward_buf_putc(b, '\x01') < 0 || ward_buf_puts(b, tail) < 0)
		return ward_error_set(b->err, "out of memory");
	t0 = now_ms();
	m = ward_scan_match1(p, rs->no_jit, b->ptr, b->len, 0, &s, &e, &prc);
	dt = now_ms() - t0;
	if (m == WARD_LIMIT_HIT) {
		PCRE2_UCHAR msg[128];
		pcre2_get_error_message(prc, msg, sizeof(msg));
		return RFAIL(w, WARD_EPOLICY,
		             "pattern %zu hits a PCRE2 limit on pumped input (%zu bytes of \"%.*s\"): %s", pat_no, size,
		             (int)(ulen > 24 ? 24 : ulen), unit, (const char *)msg);
	}
	if (m < 0)
		return m;
	if (dt > WARD_RULE_PUMP_BUDGET_MS)
		return RFAIL(w, WARD_EPOLICY,
		             "pattern %zu takes %.0f ms on pumped input (%zu bytes of \"%.*s\"; budget %d ms)", pat_no,
		             dt, size, (int)(ulen > 24 ? 24 : ulen), unit, WARD_RULE_PUMP_BUDGET_MS);
	return 0;
}

/*
 * The adversarial check of security-controls.md §3: long runs of what the
 * pattern accepts followed by a byte it does not. Each match example repeated,
 * and each distinct character of the pattern text repeated (a simple stand-in
 * for "the characters its classes accept": `(\w+\s?)*$` is pumped with "w",
 * `(a+)+$` with "a"), plus letters, digits and spaces for classes.
 */
static int pump_pattern(const ward_ruleset *rs, const ward_rule *r, const ward_pattern *p, const where *w,
                        size_t pat_no)
{
	static const size_t sizes[] = {WARD_RULE_PUMP_SMALL, WARD_RULE_PUMP_LARGE};
	char seen[128] = {0};
	char chars[WARD_RULE_PUMP_MAX_CHARS + 1];
	size_t nchars = 0;
	ward_buf b;
	int rc = 0;

	for (const char *q = "a 0"; *q; q++) {
		seen[(unsigned char)*q] = 1;
		chars[nchars++] = *q;
	}
	for (size_t i = 0; i < p->len && nchars < WARD_RULE_PUMP_MAX_CHARS; i++) {
		unsigned char c = (unsigned char)p->src[i];
		if (c < 0x20 || c >= 0x7f || seen[c] || strchr("\\()[]{}|^$*+?", c))
			continue;
		seen[c] = 1;
		chars[nchars++] = (char)c;
	}
	chars[nchars] = 0;
	ward_buf_init(&b, WARD_RULE_PUMP_LARGE + 64 + WARD_MAX_EXAMPLE_LEN);
	for (size_t si = 0; si < 2 && rc == 0; si++) {
		for (size_t i = 0; i < r->nmatch && rc == 0; i++)
			rc = pump_one(rs, p, &b, r->match[i].text, r->match[i].len, sizes[si], chars, w, pat_no);
		for (size_t i = 0; i < nchars && rc == 0; i++)
			rc = pump_one(rs, p, &b, &chars[i], 1, sizes[si], chars, w, pat_no);
	}
	ward_buf_dispose(&b);
	return rc;
}

/* Runs the examples of one rule; with `fail_fast` the first failure is an
 * error naming file and rule, otherwise failures are collected. */
static int run_examples(const ward_ruleset *rs, const ward_rule *r, ward_example_failure **fails, size_t *nfails,
                        size_t *cap, size_t *nexamples, int fail_fast)
{
	where w = {r->file, r->id, 0};

	for (int want = 1; want >= 0; want--) {
		const ward_example *ex = want ? r->match : r->no_match;
		size_t n = want ? r->nmatch : r->nno_match;
		for (size_t i = 0; i < n; i++) {
			int m = ward_scan_rule_matches(rs, r, ex[i].text, ex[i].len);
			if (nexamples)
				(*nexamples)++;
			if (m < 0)
				return ward_error_wrap("'%s' rule '%s' example %zu", r->file, r->id, i);
			if ((m == 1) == (want == 1) && m != WARD_LIMIT_HIT)
				continue;
			if (fail_fast)
				return RFAIL(&w, WARD_EVERIFY, "%s example %zu %s: \"%.60s\"",
				             want ? "match" : "no_match", i,
				             m == WARD_LIMIT_HIT ? "hits a PCRE2 limit"
				             : want              ? "does not match"
				                                 : "matches",
				             ex[i].text);
			if (*nfails == *cap) {
				size_t ncap = *cap ? *cap * 2 : 8;
				ward_example_failure *nf = ward_realloc(*fails, ncap * sizeof(*nf));
				if (!nf)
					return ward_error_set(WARD_ENOMEM, "out of memory");
				*fails = nf;
				*cap = ncap;
			}
			(*fails)[*nfails].file = ward_strdup(r->file);
			(*fails)[*nfails].rule_id = ward_strdup(r->id);
			(*fails)[*nfails].example = ward_strdup(ex[i].text);
			(*fails)[*nfails].expected = want;
			(*nfails)++;
			if (!(*fails)[*nfails - 1].file || !(*fails)[*nfails - 1].rule_id ||
			    !(*fails)[*nfails - 1].example)
				return ward_error_set(WARD_ENOMEM, "out of memory");
		}
	}
	return 0;
}

void ward_example_failures_free(ward_example_failure *f, size_t n)
{
	if (!f)
		return;
	for (size_t i = 0; i < n; i++) {
		ward_free(f[i].file);
		ward_free(f[i].rule_id);
		ward_free(f[i].example);
	}
	ward_free(f);
}

int ward_ruleset_test(const ward_ruleset *rs, ward_example_failure **failures, size_t *nfailures, size_t *nexamples)
{
	size_t cap = 0;
	int rc = 0;

	*failures = NULL;
	*nfailures = 0;
	*nexamples = 0;
	for (size_t i = 0; i < rs->nrules && rc == 0; i++)
		rc = run_examples(rs, &rs->rules[i], failures, nfailures, &cap, nexamples, 0);
	if (rc < 0) {
		ward_example_failures_free(*failures, *nfailures);
		*failures = NULL;
		*nfailures = 0;
	}
	return rc;
}

/* --- the validated-set record
 *
 * Running every example and pumping every pattern is nearly all of a load
 * (about 1.3 s of CPU for the bundled packs, against some 20 ms to parse and
 * compile them), and its outcome is a function of the packs' bytes and of
 * what ran the checks: the PCRE2 and ICU versions, JIT or interpreter, the
 * limits and pumped sizes, and the checks themselves (VALIDATION_FORMAT). A
 * set that passed both in full is therefore recorded in the cache directory
 * as <rule-set sha>-<key>.validated, and a later load of the same bytes
 * under the same key skips the two checks.
 *
 * Why this is safe:
 *  - A record only vouches for the exact bytes that passed: its name and its
 *    content carry the full rule-set SHA-256 and key, and the content must
 *    be exactly what this load would write. One changed byte in a pack is
 *    another set, which runs every check again.
 *  - Records are read only from a directory and a file owned by this user
 *    and writable by nobody else, never through a symlink. Whoever can write
 *    there can already replace the rule packs or the binary.
 *  - What is skipped is testing, not protection: parsing, the refusal of
 *    dangerous constructs, the compiled-size caps and the empty-match check
 *    still run, and at scan time every match still runs under the match,
 *    depth, heap and JIT-stack limits, a limit hit being the finding
 *    scan.incomplete. A set that would hit a limit fails closed either way.
 *  - `rules check` and `rules test` (opts->revalidate), and every load
 *    without a cache directory, run the full checks: a pack is still tested
 *    where it is reviewed and in CI.
 */

/* Bump when the examples or the pumped-input check change. */
#define VALIDATION_FORMAT 1
#define RECORD_MAGIC      "ragward validated rule set\n"

static int validation_key(char out[65], const ward_ruleset *rs)
{
	char pcre[64] = "?", icu[U_MAX_VERSION_STRING_LENGTH], uni[U_MAX_VERSION_STRING_LENGTH];
	uint8_t d[WARD_SHA256_LEN];
	UVersionInfo iv, uv;
	size_t njit = 0;
	ward_buf b;
	int rc;

	if (pcre2_config(PCRE2_CONFIG_VERSION, NULL) > (int)sizeof(pcre) ||
	    pcre2_config(PCRE2_CONFIG_VERSION, pcre) < 0)
		memcpy(pcre, "?", 2);
	u_getVersion(iv);
	u_versionToString(iv, icu);
	u_getUnicodeVersion(uv);
	u_versionToString(uv, uni);
	for (size_t i = 0; i < rs->npats; i++)
		njit += rs->pats[i].jit != 0;
	ward_buf_init(&b, 1024);
	rc = ward_buf_printf(&b,
	                     "ragward %s; validation %d; pcre2 %s; icu %s; unicode %s; no_jit %d; jit %zu/%zu; "
	                     "match %d; depth %d; heap %d KiB; jit stack %d; pump %d %d %d; budget %d ms; example %d",
	                     RAGWARD_VERSION, VALIDATION_FORMAT, pcre, icu, uni, rs->no_jit, njit, rs->npats,
	                     WARD_PCRE2_MATCH_LIMIT, WARD_PCRE2_DEPTH_LIMIT, WARD_PCRE2_HEAP_LIMIT_KIB,
	                     WARD_PCRE2_JIT_STACK_MAX, WARD_RULE_PUMP_SMALL, WARD_RULE_PUMP_LARGE,
	                     WARD_RULE_PUMP_MAX_CHARS, WARD_RULE_PUMP_BUDGET_MS, WARD_MAX_EXAMPLE_LEN);
	if (rc < 0)
		rc = ward_error_set(rc, "out of memory");
	else
		rc = ward_sha256(d, b.ptr, b.len);
	ward_buf_dispose(&b);
	if (rc < 0)
		return rc;
	ward_hex_encode_to(out, d, sizeof(d));
	return 0;
}

/* The record's path and the exact content it must have. */
static int record_expect(char **path, char **content, size_t *clen, const ward_ruleset *rs, const char *dir,
                         const char *key)
{
	ward_buf p, c;

	*path = *content = NULL;
	ward_buf_init(&p, WARD_MAX_PATH_LEN);
	ward_buf_init(&c, 1024);
	if (ward_buf_printf(&p, "%s/%s-%.16s.validated", dir, rs->sha256, key) < 0 ||
	    ward_buf_printf(&c, RECORD_MAGIC "format %d\nruleset %s\nkey %s\n", VALIDATION_FORMAT, rs->sha256, key) <
	            0 ||
	    ward_buf_detach(&p, path, NULL) < 0 || ward_buf_detach(&c, content, clen) < 0) {
		int err = p.err ? p.err : c.err;
		ward_buf_dispose(&p);
		ward_buf_dispose(&c);
		ward_free(*path);
		*path = NULL;
		return ward_error_set(err ? err : WARD_ENOMEM, "validation record path too long under '%s'", dir);
	}
	return 0;
}

/* 0: a record of this exact set and key is there; 1: a file is there but
 * is not one (corrupt, truncated, foreign, not ours); 2: none. */
static int record_check(const ward_ruleset *rs, const char *dir, const char *key)
{
	char *path = NULL, *want = NULL, *got = NULL;
	size_t wlen = 0, glen = 0;
	int rc;

	if (record_expect(&path, &want, &wlen, rs, dir, key) < 0) {
		ward_error_clear();
		return 2;
	}
	rc = ward_cache_read(&got, &glen, path, wlen + 1);
	if (rc == 0 && (glen != wlen || memcmp(got, want, wlen) != 0))
		rc = 1;
	ward_free(got);
	ward_free(want);
	ward_free(path);
	return rc;
}

static void record_store(const ward_ruleset *rs, const char *dir, const char *key)
{
	char *path = NULL, *content = NULL;
	size_t clen = 0;

	if (record_expect(&path, &content, &clen, rs, dir, key) == 0)
		ward_cache_write(dir, path, content, clen);
	ward_free(content);
	ward_free(path);
	ward_error_clear();
}

/* --- the set */

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_packs(const char *dir, char ***names, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t cap = 0;

	*names = NULL;
	*n = 0;
	if (!d)
		return ward_error_set(errno == ENOENT ? WARD_ENOTFOUND : WARD_EIO,
		                      "cannot open rule directory '%s': %s", dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len < 6 || strcmp(de->d_name + len - 5, ".yaml"))
			continue;
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **nn = ward_realloc(*names, ncap * sizeof(*nn));
			if (!nn)
				goto oom;
			*names = nn;
			cap = ncap;
		}
		if (!((*names)[*n] = ward_strdup(de->d_name)))
			goto oom;
		(*n)++;
	}
	closedir(d);
	qsort(*names, *n, sizeof(**names), cmp_names);
	return 0;
oom:
	closedir(d);
	return ward_error_set(WARD_ENOMEM, "out of memory");
}

static int load_pack(ward_ruleset *rs, const char *dir, const char *name, ward_sha256_ctx *sha, size_t *cap_rules,
                     size_t *cap_pats)
{
	char *path = NULL, *data = NULL;
	json_t *doc = NULL, *v, *rules = NULL;
	const char *key, *pack = NULL;
	size_t len = 0, i, npats = 0;
	long long version = 0;
	ward_buf pb;
	int rc;

	ward_buf_init(&pb, WARD_MAX_PATH_LEN);
	if ((rc = ward_buf_printf(&pb, "%s/%s", dir, name)) < 0 || (rc = ward_buf_detach(&pb, &path, NULL)) < 0) {
		rc = ward_error_set(rc, "rule pack path too long: '%s/%s'", dir, name);
		goto done;
	}
	if ((rc = ward_file_read(&data, &len, path, WARD_MAX_RULE_FILE)) < 0)
		goto done;
	if ((rc = ward_sha256_update(sha, name, strlen(name) + 1)) < 0 || (rc = ward_sha256_update(sha, data, len)) < 0)
		goto done;
	if ((rc = ward_yaml_parse(&doc, data, len, name)) < 0)
		goto done;
	if (!json_is_object(doc)) {
		rc = ward_error_set(WARD_EINVAL, "'%s': expected a mapping with pack, version and rules", name);
		goto done;
	}
	json_object_foreach(doc, key, v)
	{
		if (!strcmp(key, "pack") && json_is_string(v))
			pack = json_string_value(v);
		else if (!strcmp(key, "version") && json_is_integer(v))
			version = json_integer_value(v);
		else if (!strcmp(key, "rules") && json_is_array(v))
			rules = v;
		else if (!strcmp(key, "description") && json_is_string(v))
			;
		else {
			rc = ward_error_set(WARD_EINVAL, "'%s': unknown key '%s' or wrong type", name, key);
			goto done;
		}
	}
	if (!pack || !id_ok(pack) || version != 1 || !rules) {
		rc = ward_error_set(WARD_EINVAL,
		                    "'%s': 'pack' (a name), 'version: 1' and 'rules' (a list) are required", name);
		goto done;
	}
	/* Room for this pack's rules and patterns, so that parse_rule can fill
	 * slots without reallocating under its feet. */
	json_array_foreach(rules, i, v)
	{
		json_t *p = json_is_object(v) ? json_object_get(v, "patterns") : NULL;
		npats += json_is_array(p) ? json_array_size(p) : 0;
	}
	if (rs->nrules + json_array_size(rules) > WARD_MAX_RULES) {
		rc = ward_error_set(WARD_ETOOBIG, "'%s': more than %d rules in the set", name, WARD_MAX_RULES);
		goto done;
	}
	if (rs->nrules + json_array_size(rules) > *cap_rules) {
		size_t ncap = rs->nrules + json_array_size(rules) + 16;
		ward_rule *nr = ward_realloc(rs->rules, ncap * sizeof(*nr));
		if (!nr)
			goto oom;
		rs->rules = nr;
		*cap_rules = ncap;
	}
	if (rs->npats + npats > *cap_pats) {
		size_t ncap = rs->npats + npats + 16;
		ward_pattern *np = ward_realloc(rs->pats, ncap * sizeof(*np));
		if (!np)
			goto oom;
		rs->pats = np;
		*cap_pats = ncap;
	}
	json_array_foreach(rules, i, v) if ((rc = parse_rule(rs, name, i, v)) < 0) goto done;
	rc = 0;
	goto done;
oom:
	rc = ward_error_set(WARD_ENOMEM, "out of memory");
done:
	json_decref(doc);
	ward_free(data);
	ward_free(path);
	return rc;
}

static unsigned long long next_generation(void)
{
	static unsigned long long gen;

	return __atomic_add_fetch(&gen, 1, __ATOMIC_RELAXED);
}

int ward_ruleset_load(ward_ruleset **out, const char *dir, const ward_ruleset_opts *opts)
{
	static const ward_ruleset_opts defaults;
	ward_ruleset *rs = NULL;
	ward_sha256_ctx *sha = NULL;
	char **names = NULL;
	size_t nnames = 0, cap_rules = 0, cap_pats = 0;
	uint8_t digest[WARD_SHA256_LEN];
	char vkey[65] = "";
	int rc, skip = 0;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	if (!(rs = ward_calloc(1, sizeof(*rs))))
		return ward_error_set(WARD_ENOMEM, "out of memory");
	rs->no_jit = opts->no_jit;
	rs->generation = next_generation();
	if ((rc = list_packs(dir, &names, &nnames)) < 0 || (rc = ward_sha256_new(&sha)) < 0)
		goto done;
	if (nnames == 0) {
		rc = ward_error_set(WARD_ENOTFOUND, "rule directory '%s' holds no *.yaml pack", dir);
		goto done;
	}
	for (size_t i = 0; i < nnames; i++)
		if ((rc = load_pack(rs, dir, names[i], sha, &cap_rules, &cap_pats)) < 0)
			goto done;
	if ((rc = ward_sha256_final(sha, digest)) < 0)
		goto done;
	ward_hex_encode_to(rs->sha256, digest, sizeof(digest));
	rs->stats.patterns = rs->npats;
	if (opts->cache_dir && ward_cache_dir_ok(opts->cache_dir)) {
		if ((rc = validation_key(vkey, rs)) < 0)
			goto done;
		if (!opts->revalidate) {
			int vr = record_check(rs, opts->cache_dir, vkey);
			skip = vr == 0;
			rs->stats.validation_rejected += vr == 1;
		}
	}
	for (size_t i = 0; i < rs->nrules; i++) {
		const ward_rule *r = &rs->rules[i];
		for (size_t k = 0; k < r->npats; k++) {
			where w = {r->file, r->id, 0};
			const ward_pattern *p = &rs->pats[r->first_pat + k];
			if (!skip && !opts->skip_pump_check && (rc = pump_pattern(rs, r, p, &w, k)) < 0)
				goto done;
			if ((rc = check_not_empty(rs, p, &w, k)) < 0)
				goto done;
		}
		if (!skip && !opts->skip_examples && (rc = run_examples(rs, r, NULL, NULL, NULL, NULL, 1)) < 0)
			goto done;
	}
	rs->stats.validation_cached = (unsigned)skip;
	rs->stats.validation_run = !skip && !opts->skip_pump_check && !opts->skip_examples;
	if (!opts->no_prefilter && (rc = ward_hsdb_build_all(rs, opts->cache_dir)) < 0)
		goto done;
	if (!rs->prefilter) {
		/* PCRE2 alone: every pattern of a view is confirmed on every text. */
		ward_hsdb_free_all(rs);
		for (int v = 0; v < WARD_VIEW_COUNT; v++) {
			size_t n = 0;
			if (!(rs->confirm[v] = ward_calloc(rs->npats + 1, sizeof(size_t)))) {
				rc = ward_error_set(WARD_ENOMEM, "out of memory");
				goto done;
			}
			for (size_t i = 0; i < rs->npats; i++)
				if (rs->rules[rs->pats[i].rule].views & (1u << v))
					rs->confirm[v][n++] = i;
			rs->nconfirm[v] = n;
			rs->stats.always_confirm += n;
		}
	}
	if (rs->stats.validation_run && vkey[0])
		record_store(rs, opts->cache_dir, vkey);
	*out = rs;
	rs = NULL;
done:
	for (size_t i = 0; i < nnames; i++)
		ward_free(names[i]);
	ward_free(names);
	ward_sha256_free(sha);
	ward_ruleset_free(rs);
	return rc;
}
